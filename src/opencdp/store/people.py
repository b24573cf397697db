"""Order contacts and consumers (one table, told apart by `role`) and the items consumers use."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import cast

from sqlalchemy import Connection, bindparam, delete, insert, select

from opencdp.store.records import Person
from opencdp.store.rows import Record, Rows, SortTerm, insert_rows, page, rows_of_orders, to_record
from opencdp.store.tables import consumer_items, order_items, order_people

PEOPLE: Rows[Person] = Rows(order_people)  # An order's contact and consumers.

CONTACT = "contact"
CONSUMER = "consumer"


def page_people(
    conn: Connection,
    tenant_id: int,
    order_ref: str,
    role: str,
    sort: Sequence[SortTerm],
    offset: int,
    limit: int,
) -> tuple[int, list[Person]]:
    stmt = select(order_people).where(
        order_people.c.tenant_id == tenant_id,
        order_people.c.order_ref == order_ref,
        order_people.c.role == role,
    )
    return cast("tuple[int, list[Person]]", page(conn, order_people, stmt, sort, offset, limit))


_OF_ROLE = (
    select(order_people)
    .where(
        order_people.c.tenant_id == bindparam("tenant_id"),
        order_people.c.order_ref == bindparam("order_ref"),
        order_people.c.role == bindparam("role"),
    )
    .order_by(order_people.c.created_at, order_people.c.ref)
)
_FIRST_OF_ROLE = _OF_ROLE.limit(1)
_FIRST_OF_ROLE_AND_GUEST = _OF_ROLE.where(order_people.c.guest_ref == bindparam("guest_ref")).limit(1)


def of_role(conn: Connection, tenant_id: int, order_ref: str, role: str) -> list[Person]:
    """An order's contacts or consumers, oldest first. Its statements are built once: a batch asks them
    for each stored order it changes."""
    rows = conn.execute(_OF_ROLE, {"tenant_id": tenant_id, "order_ref": order_ref, "role": role}).mappings()
    return [cast(Person, to_record(row)) for row in rows]


def of_orders(conn: Connection, tenant_id: int, order_refs: Iterable[str]) -> dict[str, list[Person]]:
    """The contacts and consumers of many orders in one statement, oldest first within each order."""
    return cast("dict[str, list[Person]]", rows_of_orders(conn, order_people, tenant_id, order_refs))


def first_of_role(
    conn: Connection, tenant_id: int, order_ref: str, role: str, guest_ref: str | None = None
) -> Person | None:
    params = {"tenant_id": tenant_id, "order_ref": order_ref, "role": role}
    if guest_ref is None:
        row = conn.execute(_FIRST_OF_ROLE, params).mappings().first()
    else:
        row = conn.execute(_FIRST_OF_ROLE_AND_GUEST, {**params, "guest_ref": guest_ref}).mappings().first()
    return cast(Person, to_record(row)) if row else None


def set_consumer_items(conn: Connection, consumer_ref: str, item_refs: Sequence[str]) -> None:
    conn.execute(delete(consumer_items).where(consumer_items.c.consumer_ref == consumer_ref))
    if item_refs:
        conn.execute(
            insert(consumer_items),
            [{"consumer_ref": consumer_ref, "item_ref": ref, "position": i} for i, ref in enumerate(item_refs)],
        )


def page_consumer_items(
    conn: Connection, tenant_id: int, consumer_ref: str, sort: Sequence[SortTerm], offset: int, limit: int
) -> tuple[int, list[Record]]:
    used = select(consumer_items.c.item_ref).where(consumer_items.c.consumer_ref == consumer_ref)
    stmt = select(order_items).where(order_items.c.tenant_id == tenant_id, order_items.c.ref.in_(used))
    return page(conn, order_items, stmt, sort, offset, limit)


def insert_consumer_items(conn: Connection, chosen: Sequence[tuple[str, Sequence[str]]]) -> None:
    """The items of consumers just created: (consumer ref, item refs in order) each."""
    rows = [
        {"consumer_ref": consumer_ref, "item_ref": ref, "position": i}
        for consumer_ref, item_refs in chosen
        for i, ref in enumerate(item_refs)
    ]
    insert_rows(conn, consumer_items, rows)
