"""Order contacts and consumers (one table, told apart by `role`) and the items consumers use."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, delete, insert, select

from opencdp.store.rows import Record, SortTerm, insert_rows, page, records
from opencdp.store.tables import consumer_items, order_items, order_people

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
) -> tuple[int, list[Record]]:
    stmt = select(order_people).where(
        order_people.c.tenant_id == tenant_id,
        order_people.c.order_ref == order_ref,
        order_people.c.role == role,
    )
    return page(conn, order_people, stmt, sort, offset, limit)


def first_of_role(
    conn: Connection, tenant_id: int, order_ref: str, role: str, guest_ref: str | None = None
) -> Record | None:
    stmt = select(order_people).where(
        order_people.c.tenant_id == tenant_id,
        order_people.c.order_ref == order_ref,
        order_people.c.role == role,
    )
    if guest_ref is not None:
        stmt = stmt.where(order_people.c.guest_ref == guest_ref)
    found = records(conn, stmt.order_by(order_people.c.created_at, order_people.c.ref).limit(1))
    return found[0] if found else None


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
