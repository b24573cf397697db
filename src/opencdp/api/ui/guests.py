"""Console pages about people and what they bought: guest search, the profile with its tabs, an order."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from sqlalchemy import Connection
from starlette.responses import Response

from opencdp.api.deps import path_ref
from opencdp.api.ui.security import Session
from opencdp.api.ui.templates import page, stamp, time_chart
from opencdp.core import console, extensions, guests, orders, people
from opencdp.core.identity import CONSUMER, CONTACT
from opencdp.core.segments import reads as segment_reads
from opencdp.core.stream import timeline
from opencdp.core.stream.parsing import CHANNELS
from opencdp.core.tenants import Tenant
from opencdp.core.values import parse_timestamp, utcnow
from opencdp.store.rows import Record

router = APIRouter(include_in_schema=False)
PAGE = 25
ALL = 1000
PROPERTY_FIELDS = (
    ("Title", "title"), ("First name", "firstName"), ("Last name", "lastName"), ("Gender", "gender"),
    ("Date of birth", "dateOfBirth"), ("Emails", "emails"), ("Phone numbers", "phoneNumbers"),
    ("Nationality", "nationality"), ("Street", "street"), ("City", "city"), ("State", "state"),
    ("Post code", "postCode"), ("Country", "country"), ("Language", "language"), ("Created", "createdAt"),
    ("Modified", "modifiedAt"),
)  # fmt: skip


def offset_of(request: Request) -> int:
    raw = request.query_params.get("offset", "0")
    return int(raw) if raw.isdigit() and len(raw) < 10 else 0


@router.get("/ui/guests")
async def guest_search(request: Request, session: Session, q: str = "", by: str = "any") -> Response:
    by = by if by in console.SEARCH_BY else "any"
    offset = offset_of(request)
    total, found, counts = await request.app.state.db.reading(
        lambda conn: console.search(conn, session.tenant, q, by, offset, PAGE)
    )
    return page(request, "guests.html", guests=found, counts=counts, q=q, by=by, total=total, offset=offset, limit=PAGE)


def _profile(conn: Connection, tenant: Tenant, raw_ref: str) -> dict[str, Any]:
    guest = guests.require(conn, tenant, path_ref(raw_ref, "Guest", tenant))
    holding = segment_reads.segments_holding(conn, tenant.id, guest["ref"])
    return {"guest": guest, "holding": holding, "summary": console.guest_summary(conn, tenant, guest)}


@router.get("/ui/guests/{guest_ref}")
async def guest_properties(request: Request, session: Session, guest_ref: str) -> Response:
    tenant = session.tenant

    def work(conn: Connection) -> dict[str, Any]:
        found = _profile(conn, tenant, guest_ref)
        found["extensions"] = extensions.of_owner_ref(conn, tenant, found["guest"]["ref"])
        return found

    found = await request.app.state.db.reading(work)
    guest = found["guest"]
    fields = [(label, _shown(guest.get(name))) for label, name in PROPERTY_FIELDS]
    return page(request, "guest.html", tab="properties", fields=fields, **found)


def _shown(value: Any) -> Any:
    if isinstance(value, list):
        return ", ".join(str(part) for part in value)
    return stamp(value)


@router.get("/ui/guests/{guest_ref}/timeline")
async def guest_timeline(request: Request, session: Session, guest_ref: str) -> Response:
    params = request.query_params
    chosen = {name: params.get(name, "") for name in ("channel", "cart", "days", "from", "to")}
    now = utcnow()
    since = now - timedelta(days=int(chosen["days"])) if chosen["days"] in ("7", "30", "365") else None
    since = parse_timestamp(chosen["from"], allow_date=True) or since
    until = parse_timestamp(chosen["to"], allow_date=True)
    if until is not None and len(chosen["to"]) == 10:
        until += timedelta(days=1)
    filters = timeline.SessionFilters(chosen["channel"] or None, chosen["cart"] or None, since, until)
    offset = offset_of(request)
    tenant = session.tenant

    def work(conn: Connection) -> dict[str, Any]:
        found = _profile(conn, tenant, guest_ref)
        total, listed = timeline.sessions_of(conn, tenant, found["guest"]["ref"], offset, PAGE, filters)
        for listed_session in listed:
            listed_session["orderRef"] = next(
                (e["orderRef"] for e in listed_session["events"] if e.get("orderRef")), None
            )
        return {**found, "sessions": listed, "total": total}

    found = await request.app.state.db.reading(work)
    query = urlencode({k: v for k, v in chosen.items() if v})
    return page(request, "guest.html", tab="timeline", filters=chosen, channels=CHANNELS, offset=offset, limit=PAGE,
                query=query, **found)  # fmt: skip


@router.get("/ui/guests/{guest_ref}/orders")
async def guest_orders(request: Request, session: Session, guest_ref: str) -> Response:
    offset = offset_of(request)
    tenant = session.tenant

    def work(conn: Connection) -> dict[str, Any]:
        found = _profile(conn, tenant, guest_ref)
        ref = found["guest"]["ref"]
        newest = (("orderedAt", True),)
        total, listed = orders.list_by_guest(conn, tenant, ref, newest, offset, PAGE)
        shown = []
        for order in listed:
            _count, items = orders.list_items(conn, tenant, order["ref"], (("createdAt", False),), 0, 100)
            names = [item["name"] for item in items[:3]]
            roles = _roles(conn, tenant, order["ref"], ref)
            shown.append({**order, "itemCount": len(items), "itemNames": names, "roles": roles})
        return {**found, "orders": shown, "total": total}

    found = await request.app.state.db.reading(work)
    placed = found["summary"].orders
    charts = [
        (spend.currency, time_chart([(at, price) for currency, price, at in placed if currency == spend.currency],
                                    spend.currency))
        for spend in found["summary"].spend
    ]  # fmt: skip
    return page(request, "guest.html", tab="orders", offset=offset, limit=PAGE, value_charts=charts, **found)


def _roles(conn: Connection, tenant: Tenant, order_ref: str, guest_ref: str) -> list[str]:
    roles = []
    for role in (CONTACT, CONSUMER):
        _total, found = people.list_people(conn, tenant, order_ref, role, (("createdAt", False),), 0, 100)
        if any(person.get("guestRef") == guest_ref for person in found):
            roles.append(role)
    return roles


@router.get("/ui/orders/{order_ref}")
async def order_detail(request: Request, session: Session, order_ref: str) -> Response:
    tenant = session.tenant

    def work(conn: Connection) -> dict[str, Any]:
        order = orders.require_order(conn, tenant, path_ref(order_ref, "Order", tenant))
        oldest = (("createdAt", False),)
        _n, items = orders.list_items(conn, tenant, order["ref"], oldest, 0, 100)
        _n, contacts = people.list_people(conn, tenant, order["ref"], CONTACT, oldest, 0, 100)
        _n, consumers = people.list_people(conn, tenant, order["ref"], CONSUMER, oldest, 0, 100)
        names = {item["ref"]: item["name"] for item in items}
        shown_consumers = []
        for consumer in consumers:
            _n, held = people.list_consumer_items(conn, tenant, consumer["ref"], oldest, 0, 100)
            shown_consumers.append({**consumer, "itemNames": [names.get(item["ref"], item["ref"]) for item in held]})
        ext = {(e["ownerRef"], e["name"]): e["data"] for e in _extensions(conn, tenant, [order["ref"], *names])}
        shown_items = [{**item, "ext": ext.get((item["ref"], "ext"), {})} for item in items]
        order_ext = [{"name": name, "data": data} for (owner, name), data in ext.items() if owner == order["ref"]]
        return {"order": order, "items": shown_items, "contacts": contacts, "consumers": shown_consumers,
                "order_extensions": order_ext}  # fmt: skip

    return page(request, "order.html", **await request.app.state.db.reading(work))


def _extensions(conn: Connection, tenant: Tenant, owners: list[str]) -> list[Record]:
    return [found for owner in owners for found in extensions.of_owner_ref(conn, tenant, owner)]
