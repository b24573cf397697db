"""The session cart and the orders assembled from it (stream-api.md §4.4–§4.6).

An order from a CHECKOUT passes the same matching rule and domain validation as a REST create, through
the same core functions; what events cannot carry (contact names, refused item types) is not asked of them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Any, TypedDict, TypeVar

from sqlalchemy import Connection

from opencdp.core import extensions, guests, identity, orders, people
from opencdp.core.errors import ApiError, InvalidField, MissingField, UnsupportedField
from opencdp.core.fields import Mode, validate
from opencdp.core.models import CONTACT as CONTACT_MODEL
from opencdp.core.models import ORDER, ORDER_ITEM
from opencdp.core.stream import parsing
from opencdp.core.tenants import Tenant
from opencdp.core.values import format_timestamp, nth_instant, parse_timestamp
from opencdp.store import people as people_store
from opencdp.store.orders import ORDERS
from opencdp.store.records import Order

T = TypeVar("T")
CREATED, MATCHED = "CREATED", "MATCHED"
ORDER_CHANNELS = {"EMAIL": "OTHER", "SMS": "OTHER"}


class Cart(TypedDict):
    """A session's cart, kept as JSON in its session: the lines added, the item_ids confirmed, the contact
    and consumers sent, the payment type, and what the session's last CHECKOUT did."""

    lines: list[dict[str, Any]]  # one per item_id, as ADD sent it (stream-api.md §3.2)
    confirmed: list[str]
    contact: dict[str, Any] | None
    consumers: list[dict[str, Any]]
    payment: str | None
    cleared: bool  # CLEAR_CART emptied a cart that had lines
    converted: bool
    lastOrderRef: str | None
    lastResult: str | None  # CREATED or MATCHED


def empty_cart() -> Cart:
    return {
        "lines": [],
        "confirmed": [],
        "contact": None,
        "consumers": [],
        "payment": None,
        "cleared": False,
        "converted": False,
        "lastOrderRef": None,
        "lastResult": None,
    }


def add(cart: Cart, line: dict[str, Any]) -> None:
    """An ADD creates or replaces its line (keeping its place); quantity 0 removes it.

    Lines are a list, not an object keyed by item id: PostgreSQL's JSONB does not keep key order, and the
    order's items follow the first-ADD order.
    """
    lines = cart["lines"]
    index = next((i for i, kept in enumerate(lines) if kept["item_id"] == line["item_id"]), None)
    if line["quantity"] == 0:
        if index is not None:
            del lines[index]
    elif index is None:
        lines.append(line)
    else:
        lines[index] = line


def confirm(cart: Cart, item_ids: list[str]) -> None:
    cart["confirmed"] += [item_id for item_id in item_ids if item_id not in cart["confirmed"]]


def clear(cart: Cart) -> None:
    if cart["lines"]:
        cart["cleared"] = True
    _empty(cart)


def _empty(cart: Cart) -> None:
    """What a cleared cart and an order made from it both leave behind: no lines, people or payment."""
    cart["lines"], cart["confirmed"], cart["contact"], cart["consumers"], cart["payment"] = [], [], None, [], None


def payment(conn: Connection, tenant: Tenant, cart: Cart, pay_type: str, now: datetime) -> None:
    """Only the order this session's CHECKOUT created may be changed by an event, and only its paymentType."""
    if cart["lastResult"] == CREATED and cart["lastOrderRef"]:
        order = ORDERS.get(conn, tenant.id, cart["lastOrderRef"])
        if order is not None:
            ORDERS.update(conn, tenant.id, order["ref"], {"paymentType": pay_type, "modifiedAt": now})
    elif cart["lastResult"] is None:
        cart["payment"] = pay_type


def checkout(
    conn: Connection,
    tenant: Tenant,
    cart: Cart,
    browser_guest: str,
    event: Mapping[str, Any],
    now: datetime,
) -> tuple[str, str | None]:
    """Assemble the cart into an order; the first missing piece is the result and the cart is kept."""
    lines = [line for line in cart["lines"] if line["item_id"] in cart["confirmed"]]
    if not lines:
        return "NO_CONFIRMED_LINES", None
    if cart["contact"] is None:
        return "NO_CONTACT", None
    currencies = {line["currency"] for line in lines}
    if len(currencies) > 1:
        return "MIXED_CURRENCY", None
    body = {
        "referenceId": event["reference_id"],
        "orderedAt": format_timestamp(now),
        "currencyCode": currencies.pop(),
        "price": sum((Decimal(line["price"]) * line["quantity"] for line in lines), Decimal(0)),
        "status": event["status"],
        "channel": ORDER_CHANNELS.get(event["channel"], event["channel"]),
        "pointOfSale": event["pos"] or None,
        "paymentType": cart["payment"],
    }
    values = validate(ORDER, {k: v for k, v in body.items() if v is not None}, Mode.CREATE)
    match = orders.find_match(conn, tenant, values["referenceId"], values["orderedAt"])
    if match is not None:
        _converted(cart, match["ref"], MATCHED)
        return MATCHED, match["ref"]
    contact = revive(cart["contact"])
    guest_ref = contact_guest(conn, tenant, contact, browser_guest, now)
    order = orders.insert_order(conn, tenant, values, now)
    # A microsecond apart, so the items list in the cart's first-ADD order (collections sort by createdAt).
    items = orders.insert_items(conn, tenant, order, [_item(line, order, event) for line in lines], now)
    item_refs = {line["item_id"]: item["ref"] for line, item in zip(lines, items, strict=True)}
    contact_record = people.insert_person(conn, tenant, order["ref"], identity.CONTACT, contact, guest_ref, now)
    for position, consumer in enumerate(cart["consumers"]):
        person = revive({k: v for k, v in consumer.items() if k != "item_ids"})
        consumer_guest = identity.link_person(conn, tenant, person, identity.CONSUMER, now, contact=contact_record)
        created = nth_instant(now, position)
        record = people.insert_person(conn, tenant, order["ref"], identity.CONSUMER, person, consumer_guest, created)
        people_store.set_consumer_items(
            conn, record["ref"], [item_refs[i] for i in consumer.get("item_ids", []) if i in item_refs]
        )
    _converted(cart, order["ref"], CREATED)
    return CREATED, order["ref"]


def revive(person: Mapping[str, Any]) -> dict[str, Any]:
    """A person as kept in the cart (JSON) back to domain values: its date of birth is a datetime again."""
    revived = dict(person)
    if isinstance(revived.get("dateOfBirth"), str):
        revived["dateOfBirth"] = parse_timestamp(revived["dateOfBirth"])
    return revived


def _converted(cart: Cart, order_ref: str, result: str) -> None:
    _empty(cart)
    cart["converted"], cart["lastOrderRef"], cart["lastResult"] = True, order_ref, result


def _item(line: Mapping[str, Any], order: Order, event: Mapping[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = {
        "type": line["type"],
        "name": line["name"],
        "price": Decimal(line["price"]),
        "currencyCode": line["currency"],
        "quantity": line["quantity"],
        "referenceId": line.get("referenceId") or line["item_id"],
        "orderedAt": parse_timestamp(line.get("orderedAt")) or order["orderedAt"],
        "status": order["status"],
        "channel": order["channel"],
        "language": event.get("language"),
        "productId": line.get("productId"),
        "originalPrice": Decimal(line["originalPrice"]) if line.get("originalPrice") else None,
        "originalCurrencyCode": line.get("originalCurrencyCode"),
        "flightSegments": line.get("flightSegments"),
    }
    return {k: v for k, v in item.items() if v is not None}


def contact_guest(conn: Connection, tenant: Tenant, contact: Mapping[str, Any], current_ref: str, now: datetime) -> str:
    """§4.5 step 4: the guest an event-built contact belongs to, merging a visitor into its match."""
    book = identity.StoredGuests(conn, tenant, now)
    keyed = identity.rule_keys(book.rules, contact, now)
    book.lock(keyed)
    current = guests.require(conn, tenant, current_ref)
    match = identity.first_match(book.rules, keyed, book.holdings, now)
    if match is not None:
        if current["guestType"] == "visitor" and current["ref"] != match[0]:
            identity.merge(conn, tenant, match[0], current["ref"], match[1], "CHECKOUT event", now, copy_profile=False)
        guest_ref = match[0]
    elif current["guestType"] == "visitor" or not keyed:
        guest_ref = current["ref"]
    else:
        guest_ref = book.create("customer", contact)
    guests.enrich(conn, tenant, guest_ref, contact, now, customer=True, stored=current)  # re-read after a merge
    return guest_ref


# What an ORDER_CHECKOUT's order and items may hold (stream-api.md §3.3): the REST model's fields, with
# the order's items, extension and contact inline; an item's channel is its order's, not its own to send.
ORDER_KEYS = frozenset(field.name for field in ORDER.fields) | {"orderItems", "extensions", "contact"}
ITEM_KEYS = frozenset(field.name for field in ORDER_ITEM.fields) - {"channel"} | {"extensions"}


def at(path: str, check: Callable[[], T]) -> T:
    """Run a REST rule and say where in the event it failed (`order.price: may not be null.`)."""
    try:
        return check()
    except (InvalidField, MissingField, UnsupportedField) as error:
        where = f"{path}.{error.field}"
        if isinstance(error, MissingField):
            raise MissingField(where) from None
        if isinstance(error, UnsupportedField):
            raise ApiError(f"{where}: not supported", f"Attribute {where} is invalid (not supported).") from None
        raise InvalidField(where) from None


def parse_order(data: Any) -> dict[str, Any]:
    """ORDER_CHECKOUT's `order`, checked against the REST rules before anything is written."""
    if data is None:
        raise MissingField("order")
    if not isinstance(data, dict):
        raise InvalidField("order")
    parsing.reject_unknown(data, ORDER_KEYS, "order")
    fields = {k: v for k, v in data.items() if k not in ("orderItems", "extensions", "contact")}
    values = at("order", lambda: validate(ORDER, fields, Mode.CREATE))
    items = data.get("orderItems") or []
    if not isinstance(items, list) or len(items) > 100:
        raise InvalidField("order.orderItems")
    parsed_items = []
    for index, raw in enumerate(items):
        path = f"order.orderItems[{index}]"
        if not isinstance(raw, dict):
            raise InvalidField(path)
        parsing.reject_unknown(raw, ITEM_KEYS, path)
        defaults = {"currencyCode": data.get("currencyCode"), "status": data.get("status"), "quantity": 1,
                    "orderedAt": data.get("orderedAt")}  # fmt: skip
        item_body = {**defaults, **{k: v for k, v in raw.items() if k != "extensions" and v is not None}}
        item = at(path, partial(validate, ORDER_ITEM, item_body, Mode.CREATE))
        parsed_items.append((item, _extension(raw.get("extensions"), path)))
    contact = data.get("contact")
    if contact is not None:
        if not isinstance(contact, dict):
            raise InvalidField("order.contact")
        email = contact.get("email")
        body = {k: v for k, v in contact.items() if k != "email"}
        if email and not body.get("emails"):
            body["emails"] = [email]
        contact = at("order.contact", lambda: _contact(body))
    return {"values": values, "items": parsed_items, "extension": _extension(data.get("extensions"), "order"),
            "contact": contact}  # fmt: skip


def _contact(body: Mapping[str, Any]) -> dict[str, Any]:
    values = validate(CONTACT_MODEL, {"firstName": "-", "lastName": "-", **body}, Mode.CREATE)
    return {k: v for k, v in values.items() if v is not None and (k in body)}


def _extension(value: Any, path: str) -> dict[str, Any] | None:
    if value is None or value == []:
        return None
    if not isinstance(value, list) or len(value) > 1 or not isinstance(value[0], dict):
        raise InvalidField(f"{path}.extensions")
    group = dict(value[0])
    if group.get("name", "ext") != "ext":
        raise InvalidField(f"{path}.extensions[0].name")
    group["name"] = "ext"
    return group


def order_checkout(
    conn: Connection, tenant: Tenant, guest_ref: str, parsed: Mapping[str, Any], event: Mapping[str, Any], now: datetime
) -> tuple[str, str | None]:
    """§4.6: a whole order from an identified guest; the cart is untouched."""
    guest = guests.require(conn, tenant, guest_ref)
    if guest["guestType"] != "customer":
        return "GUEST_NOT_IDENTIFIED", None
    values = dict(parsed["values"])
    values["channel"] = values.get("channel") or ORDER_CHANNELS.get(event["channel"], event["channel"])
    values["pointOfSale"] = values.get("pointOfSale") or event["pos"] or None
    match = orders.find_match(conn, tenant, values["referenceId"], values["orderedAt"])
    if match is not None:
        return MATCHED, match["ref"]
    contact = parsed["contact"]
    if contact is not None:
        owner = contact_guest(conn, tenant, contact, guest["ref"], now)
    else:
        contact = {k: v for k, v in guest.items() if k in guests.PERSON_NAMES and v not in (None, "", [])}
        owner = guest["ref"]
    order = orders.insert_order(conn, tenant, values, now)
    if parsed["extension"] is not None:
        owner_of_ext = extensions.Owner("order", order["ref"], "Order")
        extensions.create(conn, tenant, owner_of_ext, "ext", parsed["extension"], now)
    for item_values, extension in parsed["items"]:
        item = orders.insert_item(conn, tenant, order, item_values, now)
        if extension is not None:
            extensions.create(
                conn, tenant, extensions.Owner("orderItem", item["ref"], "Order item"), "ext", extension, now
            )
    people.insert_person(conn, tenant, order["ref"], identity.CONTACT, contact, owner, now)
    return CREATED, order["ref"]
