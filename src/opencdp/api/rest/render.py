"""Domain records as the wire's JSON: absolute hrefs, links, UTC milliseconds, no nulls."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from opencdp.core.fields import Kind, Model
from opencdp.core.models import CONSUMER, CONTACT, GUEST, ORDER, ORDER_ITEM
from opencdp.core.values import format_timestamp, money_to_json


class Links:
    """Absolute URLs of every resource, under one base (`OPENCDP_PUBLIC_URL` or the request's own)."""

    def __init__(self, base: str) -> None:
        self.root = base
        self.base = f"{base}/v2.1"

    def order(self, ref: str) -> str:
        return f"{self.base}/orders/{ref}"

    def item(self, ref: str) -> str:
        return f"{self.base}/orderItems/{ref}"

    def contact(self, ref: str) -> str:
        return f"{self.base}/orderContacts/{ref}"

    def consumer(self, ref: str) -> str:
        return f"{self.base}/orderConsumers/{ref}"

    def guest(self, ref: str) -> str:
        return f"{self.base}/guests/{ref}"

    def owner(self, kind: str, ref: str) -> str:
        return {"order": self.order, "orderItem": self.item, "guest": self.guest}[kind](ref)


def wire(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, Decimal):
        return money_to_json(value)
    return value


def _resource(model: Model, href: str, record: Mapping[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "href": href,
        "ref": record["ref"],
        "createdAt": format_timestamp(record["createdAt"]),
        "modifiedAt": format_timestamp(record["modifiedAt"]),
    }
    for field in model.fields:
        value = record.get(field.name)
        if value is None or field.name == "orderItems":
            continue
        if field.kind is Kind.IDENTIFIERS:
            value = [{k: i[k] for k in ("provider", "id", "expiryDate") if k in i} for i in value]
        body[field.name] = wire(value)
    return body


def link(href: str) -> dict[str, str]:
    return {"href": href}


def order(links: Links, record: Mapping[str, Any]) -> dict[str, Any]:
    href = links.order(record["ref"])
    body = _resource(ORDER, href, record)
    body["orderItems"] = link(f"{href}/orderItems")
    body["contacts"] = link(f"{href}/contacts")
    body["consumers"] = link(f"{href}/consumers")
    return body


def item(links: Links, record: Mapping[str, Any]) -> dict[str, Any]:
    body = _resource(ORDER_ITEM, links.item(record["ref"]), record)
    if record.get("flightSegments"):
        body["flightSegments"] = record["flightSegments"]
    body["order"] = link(links.order(record["orderRef"]))
    return body


def contact(links: Links, record: Mapping[str, Any]) -> dict[str, Any]:
    body = _resource(CONTACT, links.contact(record["ref"]), record)
    return _person_links(links, body, record)


def consumer(links: Links, record: Mapping[str, Any]) -> dict[str, Any]:
    href = links.consumer(record["ref"])
    body = _resource(CONSUMER, href, record)
    body["orderItems"] = link(f"{href}/orderItems")
    return _person_links(links, body, record)


def _person_links(links: Links, body: dict[str, Any], record: Mapping[str, Any]) -> dict[str, Any]:
    if record.get("guestRef"):
        body["guest"] = link(links.guest(record["guestRef"]))
    body["order"] = link(links.order(record["orderRef"]))
    return body


def guest(links: Links, record: Mapping[str, Any]) -> dict[str, Any]:
    href = links.guest(record["ref"])
    body = _resource(GUEST, href, record)
    for name in ("email", "subscriptions"):
        body.pop(name, None)
    for name in ("firstSeen", "lastSeen"):
        if record.get(name):
            body[name] = format_timestamp(record[name])
    body["dataExtensions"] = link(f"{href}/extensions")
    return body


def extension(links: Links, record: Mapping[str, Any]) -> dict[str, Any]:
    owner_href = links.owner(record["ownerType"], record["ownerRef"])
    return {
        "name": record["name"],
        "key": "default",
        "ref": record["ref"],
        "href": f"{owner_href}/extensions/{record['name']}",
        "createdAt": format_timestamp(record["createdAt"]),
        "modifiedAt": format_timestamp(record["modifiedAt"]),
        record["ownerType"]: link(owner_href),
        **record["data"],
    }
