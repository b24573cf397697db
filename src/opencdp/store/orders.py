"""Orders and order items."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import cast

from sqlalchemy import Connection, bindparam, select

from opencdp.store.records import Order, OrderItem
from opencdp.store.rows import Record, Rows, SortTerm, page, records, rows_of_orders, to_record
from opencdp.store.tables import order_items, order_people, orders

ORDERS: Rows[Order] = Rows(orders)  # Orders' headers.
ITEMS: Rows[OrderItem] = Rows(order_items)  # Order items.

_MATCHING = (
    select(orders)
    .where(
        orders.c.tenant_id == bindparam("tenant_id"),
        orders.c.reference_id == bindparam("reference_id"),
        orders.c.ordered_at >= bindparam("earliest", type_=orders.c.ordered_at.type),
        orders.c.ordered_at <= bindparam("latest", type_=orders.c.ordered_at.type),
    )
    .order_by(orders.c.created_at, orders.c.ref)
)


def within_window(
    conn: Connection, tenant_id: int, reference_id: str, ordered_at: datetime, window: timedelta
) -> list[Order]:
    """The orders with this referenceId whose orderedAt lies within the window, earliest created first."""
    params = {
        "tenant_id": tenant_id,
        "reference_id": reference_id,
        "earliest": ordered_at - window,
        "latest": ordered_at + window,
    }
    return [cast(Order, to_record(row)) for row in conn.execute(_MATCHING, params).mappings()]


def of_references(conn: Connection, tenant_id: int, reference_ids: Iterable[str]) -> dict[str, list[Record]]:
    """The ref, orderedAt and createdAt of every order carrying one of the referenceIds, earliest created
    first: what the matching rule compares."""
    wanted = sorted(set(reference_ids))
    found: dict[str, list[Record]] = {}
    if wanted:
        stmt = (
            select(orders.c.reference_id, orders.c.ref, orders.c.ordered_at, orders.c.created_at)
            .where(orders.c.tenant_id == tenant_id, orders.c.reference_id.in_(wanted))
            .order_by(orders.c.created_at, orders.c.ref)
        )
        for reference_id, ref, ordered_at, created_at in conn.execute(stmt):
            found.setdefault(reference_id, []).append({"ref": ref, "orderedAt": ordered_at, "createdAt": created_at})
    return found


def page_by_reference(
    conn: Connection, tenant_id: int, reference_id: str, sort: Sequence[SortTerm], offset: int, limit: int
) -> tuple[int, list[Order]]:
    stmt = select(orders).where(orders.c.tenant_id == tenant_id, orders.c.reference_id == reference_id)
    return cast("tuple[int, list[Order]]", page(conn, orders, stmt, sort, offset, limit))


def page_by_guest(
    conn: Connection, tenant_id: int, guest_ref: str, sort: Sequence[SortTerm], offset: int, limit: int
) -> tuple[int, list[Order]]:
    """Orders where the guest is the contact or a consumer, each once."""
    roles = select(order_people.c.order_ref).where(
        order_people.c.tenant_id == tenant_id, order_people.c.guest_ref == guest_ref
    )
    stmt = select(orders).where(orders.c.tenant_id == tenant_id, orders.c.ref.in_(roles))
    return cast("tuple[int, list[Order]]", page(conn, orders, stmt, sort, offset, limit))


def page_items(
    conn: Connection, tenant_id: int, order_ref: str, sort: Sequence[SortTerm], offset: int, limit: int
) -> tuple[int, list[OrderItem]]:
    stmt = select(order_items).where(order_items.c.tenant_id == tenant_id, order_items.c.order_ref == order_ref)
    return cast("tuple[int, list[OrderItem]]", page(conn, order_items, stmt, sort, offset, limit))


_ITEMS_OF_ORDER = (
    select(order_items)
    .where(order_items.c.tenant_id == bindparam("tenant_id"), order_items.c.order_ref == bindparam("order_ref"))
    .order_by(order_items.c.created_at, order_items.c.ref)
)


def items_of_order(conn: Connection, tenant_id: int, order_ref: str) -> list[OrderItem]:
    """Every item of an order, oldest first; built once, as a batch asks it for each stored order it changes."""
    rows = conn.execute(_ITEMS_OF_ORDER, {"tenant_id": tenant_id, "order_ref": order_ref}).mappings()
    return [cast(OrderItem, to_record(row)) for row in rows]


def items_of_orders(conn: Connection, tenant_id: int, order_refs: Iterable[str]) -> dict[str, list[OrderItem]]:
    """`items_of_order` for many orders in one statement."""
    return cast("dict[str, list[OrderItem]]", rows_of_orders(conn, order_items, tenant_id, order_refs))


def item_refs(conn: Connection, tenant_id: int, order_refs: Sequence[str]) -> list[str]:
    """The refs of the items of these orders."""
    if not order_refs:
        return []
    stmt = select(order_items.c.ref).where(
        order_items.c.tenant_id == tenant_id, order_items.c.order_ref.in_(sorted(set(order_refs)))
    )
    return list(conn.execute(stmt).scalars())


def find_item_by_reference(conn: Connection, tenant_id: int, order_ref: str, reference_id: str) -> OrderItem | None:
    found = records(
        conn,
        select(order_items)
        .where(
            order_items.c.tenant_id == tenant_id,
            order_items.c.order_ref == order_ref,
            order_items.c.reference_id == reference_id,
        )
        .order_by(order_items.c.created_at)
        .limit(1),
    )
    return cast(OrderItem, found[0]) if found else None


def prices_of_guest(conn: Connection, tenant_id: int, guest_ref: str) -> list[tuple[str, Decimal, datetime]]:
    """The currency, price and orderedAt of each order the guest is contact or consumer of (each once),
    oldest first: what a profile's figures are made of (summed exactly by the core, per currency)."""
    roles = select(order_people.c.order_ref).where(
        order_people.c.tenant_id == tenant_id, order_people.c.guest_ref == guest_ref
    )
    stmt = (
        select(orders.c.currency_code, orders.c.price, orders.c.ordered_at)
        .where(orders.c.tenant_id == tenant_id, orders.c.ref.in_(roles))
        .order_by(orders.c.ordered_at, orders.c.ref)
    )
    return [(currency, price, ordered_at) for currency, price, ordered_at in conn.execute(stmt)]
