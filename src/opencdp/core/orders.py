"""Orders and order items: creation with the matching rule, updates, deletes with their cascade.

Every surface that makes an order (REST, Stream, Batch) comes through here, so the 48-hour matching
rule and immutability hold the same for all of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar, cast

from sqlalchemy import Connection

from opencdp.core.errors import ImmutableField, NotFound
from opencdp.core.fields import Mode, validate
from opencdp.core.models import ORDER, ORDER_ITEM
from opencdp.core.tenants import Tenant
from opencdp.core.values import new_ref, nth_instant
from opencdp.store import extensions as extension_store
from opencdp.store import orders as order_store
from opencdp.store.database import lock
from opencdp.store.guests import GUESTS
from opencdp.store.orders import ITEMS, ORDERS
from opencdp.store.records import Order, OrderItem
from opencdp.store.rows import SortTerm

MATCH_WINDOW = timedelta(hours=48)
M = TypeVar("M", bound=Mapping[str, Any])  # an order, or what the matching rule reads of one
IMMUTABLE: tuple[Literal["referenceId"], Literal["orderedAt"]] = ("referenceId", "orderedAt")


def require_order(conn: Connection, tenant: Tenant, ref: str) -> Order:
    order = ORDERS.get(conn, tenant.id, ref)
    if order is None:
        raise NotFound(f"Order with ref {ref} for client key {tenant.client_key} was not found")
    return order


def require_item(conn: Connection, tenant: Tenant, ref: str) -> OrderItem:
    item = ITEMS.get(conn, tenant.id, ref)
    if item is None:
        raise NotFound(f"Order item with ref {ref} for client key {tenant.client_key} was not found")
    return item


def sent(values: Mapping[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
    """The parsed values of the fields a body actually carried: what "update as a PATCH would" writes."""
    return {name: value for name, value in values.items() if name in body}


def header_changes(values: Mapping[str, Any], body: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What an order that matches a stored one writes on it: its parsed header fields but the two that
    identify it; given the body as sent, only the fields the client sent, as a PATCH would."""
    return {k: v for k, v in (values if body is None else sent(values, body)).items() if k not in IMMUTABLE}


def create_order(conn: Connection, tenant: Tenant, body: Mapping[str, Any], now: datetime) -> tuple[Order, bool]:
    """Create, or update the order this one matches (same referenceId, orderedAt within 48 hours)."""
    values = validate(ORDER, body, Mode.CREATE)
    match = find_match(conn, tenant, values["referenceId"], values["orderedAt"])
    if match is not None:
        return ORDERS.modify(conn, match, header_changes(values, body), now), False
    return insert_order(conn, tenant, values, now), True


def find_match(conn: Connection, tenant: Tenant, reference_id: str, ordered_at: datetime) -> Order | None:
    """The order a new one is the same as, under a lock on its referenceId held until the caller commits."""
    lock(conn, f"order:{tenant.id}:{reference_id}")
    return closest(order_store.within_window(conn, tenant.id, reference_id, ordered_at, MATCH_WINDOW), ordered_at)


def closest(stored: Sequence[M], ordered_at: datetime) -> M | None:
    """Among the orders of one referenceId (earliest created first), the one a new order is the same as:
    within the window, the closest orderedAt, then the earliest created."""
    within = [order for order in stored if abs(order["orderedAt"] - ordered_at) <= MATCH_WINDOW]
    return min(within, key=lambda order: abs(order["orderedAt"] - ordered_at), default=None)


def insert_order(conn: Connection, tenant: Tenant, values: Mapping[str, Any], now: datetime) -> Order:
    record = order_record(tenant, values, now)
    ORDERS.insert(conn, record)
    return record


def order_record(tenant: Tenant, values: Mapping[str, Any], now: datetime) -> Order:
    """A new order from its checked values (every field of the model, those not sent as None)."""
    return cast(Order, {**values, "ref": new_ref(), "tenantId": tenant.id, "createdAt": now, "modifiedAt": now})


def update_order(
    conn: Connection, tenant: Tenant, ref: str, body: Mapping[str, Any], mode: Mode, now: datetime
) -> Order:
    order = require_order(conn, tenant, ref)
    values = validate(ORDER, body, mode)
    check_immutable(order, values)
    return ORDERS.modify(conn, order, values, now)


def check_immutable(order: Order, values: Mapping[str, Any]) -> None:
    for name in IMMUTABLE:
        if name in values and values[name] != order[name]:
            raise ImmutableField(name)


def delete_order(conn: Connection, tenant: Tenant, ref: str, *, found: bool = False) -> None:
    """An order, its items and their extensions; `found`: the caller has just read the order."""
    if not found:
        require_order(conn, tenant, ref)
    delete_orders(conn, tenant, [ref])


def delete_orders(conn: Connection, tenant: Tenant, refs: Sequence[str]) -> None:
    """Stored orders with their items and the extensions of both; their people go with them (cascade)."""
    extension_store.delete_of_owners(conn, tenant.id, [*refs, *order_store.item_refs(conn, tenant.id, refs)])
    ORDERS.delete_many(conn, tenant.id, refs)


def create_item(
    conn: Connection, tenant: Tenant, order_ref: str, body: Mapping[str, Any], now: datetime
) -> tuple[OrderItem, bool]:
    """Create an item, or update the order's item with the same referenceId (§6.3)."""
    order = require_order(conn, tenant, order_ref)
    values = validate(ORDER_ITEM, body, Mode.CREATE)
    if values.get("referenceId") is not None:
        lock(conn, f"item:{order_ref}:{values['referenceId']}")
        existing = order_store.find_item_by_reference(conn, tenant.id, order_ref, values["referenceId"])
        if existing is not None:
            return ITEMS.modify(conn, existing, sent(values, body), now), False
    return insert_item(conn, tenant, order, values, now), True


def insert_item(conn: Connection, tenant: Tenant, order: Order, values: Mapping[str, Any], now: datetime) -> OrderItem:
    record = _item_record(tenant, order, values, now)
    ITEMS.insert(conn, record)
    return record


def insert_items(
    conn: Connection, tenant: Tenant, order: Order, items: Sequence[Mapping[str, Any]], now: datetime
) -> list[OrderItem]:
    """The items of an order just created, in one statement; each a microsecond after the one before,
    so that they list in the order given."""
    records = item_records(tenant, order, items, now)
    ITEMS.insert_many(conn, records)
    return records


def item_records(tenant: Tenant, order: Order, items: Sequence[Mapping[str, Any]], now: datetime) -> list[OrderItem]:
    return [_item_record(tenant, order, values, nth_instant(now, n)) for n, values in enumerate(items)]


def _item_record(tenant: Tenant, order: Order, values: Mapping[str, Any], now: datetime) -> OrderItem:
    """A new item of `order` from its checked values (every field of the model, those not sent as None)."""
    return cast(
        OrderItem,
        {
            **values,
            "orderedAt": values.get("orderedAt") or order["orderedAt"],
            "ref": new_ref(),
            "tenantId": tenant.id,
            "orderRef": order["ref"],
            "createdAt": now,
            "modifiedAt": now,
        },
    )


def update_item(
    conn: Connection, tenant: Tenant, ref: str, body: Mapping[str, Any], mode: Mode, now: datetime
) -> OrderItem:
    item = require_item(conn, tenant, ref)
    values = validate(ORDER_ITEM, body, mode)
    if mode is Mode.PUT or ("orderedAt" in values and values["orderedAt"] is None):
        values["orderedAt"] = values.get("orderedAt") or require_order(conn, tenant, item["orderRef"])["orderedAt"]
    return ITEMS.modify(conn, item, values, now)


def delete_item(conn: Connection, tenant: Tenant, ref: str) -> None:
    require_item(conn, tenant, ref)
    extension_store.delete_of_owners(conn, tenant.id, [ref])
    ITEMS.delete(conn, tenant.id, ref)


def list_by_reference(
    conn: Connection, tenant: Tenant, reference_id: str, sort: Sequence[SortTerm], offset: int, limit: int
) -> tuple[int, list[Order]]:
    return order_store.page_by_reference(conn, tenant.id, reference_id, sort, offset, limit)


def list_by_guest(
    conn: Connection, tenant: Tenant, guest_ref: str, sort: Sequence[SortTerm], offset: int, limit: int
) -> tuple[int, list[Order]]:
    """Orders where the guest (or the guest a retired ref now points to) is contact or consumer."""
    guest = GUESTS.get(conn, tenant.id, guest_ref)
    if guest is None:
        return 0, []
    return order_store.page_by_guest(conn, tenant.id, guest["mergedInto"] or guest_ref, sort, offset, limit)


def list_items(
    conn: Connection,
    tenant: Tenant,
    order_ref: str,
    sort: Sequence[SortTerm],
    offset: int,
    limit: int,
    *,
    found: bool = False,
) -> tuple[int, list[OrderItem]]:
    """A page of an order's items (404 for an unknown order); `found`: the caller has just read the order."""
    if not found:
        require_order(conn, tenant, order_ref)
    return order_store.page_items(conn, tenant.id, order_ref, sort, offset, limit)
