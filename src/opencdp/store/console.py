"""The web console's sessions and sign-in failures, and the guest lookups its search needs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Float, cast, delete, func, insert, literal, or_, select, true, update
from sqlalchemy.dialects.postgresql import JSONB

from opencdp.store.rows import Record, records, to_columns, to_record
from opencdp.store.tables import console_login_failures, console_sessions, guests, order_people, orders


def insert_session(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert(console_sessions), to_columns(values))


def get_session(conn: Connection, id_hash: str) -> Record | None:
    row = conn.execute(select(console_sessions).where(console_sessions.c.id_hash == id_hash)).mappings().first()
    return to_record(row) if row else None


def touch_session(conn: Connection, id_hash: str, now: datetime) -> None:
    conn.execute(update(console_sessions).where(console_sessions.c.id_hash == id_hash).values(last_seen_at=now))


def delete_session(conn: Connection, id_hash: str) -> None:
    conn.execute(delete(console_sessions).where(console_sessions.c.id_hash == id_hash))


def delete_idle_sessions(conn: Connection, idle_before: datetime, created_before: datetime) -> None:
    table = console_sessions
    conn.execute(delete(table).where(or_(table.c.last_seen_at < idle_before, table.c.created_at < created_before)))


def record_failure(conn: Connection, address: str, now: datetime) -> None:
    conn.execute(insert(console_login_failures).values(address=address, failed_at=now))


def count_failures(conn: Connection, address: str, since: datetime) -> int:
    table = console_login_failures
    stmt = select(func.count()).where(table.c.address == address, table.c.failed_at >= since)
    return conn.execute(stmt).scalar_one()


def forget_failures(conn: Connection, before: datetime) -> None:
    conn.execute(delete(console_login_failures).where(console_login_failures.c.failed_at < before))


def guests_with_identifier(conn: Connection, tenant_id: int, identifier: str) -> list[str]:
    """Live guests holding an identifier with this id, whatever its provider."""
    live = (guests.c.tenant_id == tenant_id, guests.c.merged_into.is_(None))
    if conn.dialect.name == "postgresql":
        held = guests.c.identifiers.op("@>")(cast(literal([{"id": identifier}], JSONB), JSONB))
        stmt = select(guests.c.ref).where(*live, held)
    else:
        each = func.json_each(guests.c.identifiers).table_valued("value").alias()
        matched = func.json_extract(each.c.value, "$.id") == identifier
        stmt = select(guests.c.ref).select_from(guests.join(each, true())).where(*live, matched).distinct()
    return list(conn.execute(stmt.limit(1000)).scalars())


def order_counts(conn: Connection, tenant_id: int, guest_refs: Sequence[str]) -> dict[str, int]:
    """How many orders each guest is contact or consumer of."""
    if not guest_refs:
        return {}
    stmt = (
        select(order_people.c.guest_ref, func.count(order_people.c.order_ref.distinct()))
        .where(order_people.c.tenant_id == tenant_id, order_people.c.guest_ref.in_(list(guest_refs)))
        .group_by(order_people.c.guest_ref)
    )
    return dict(conn.execute(stmt).all())


def latest_guests(
    conn: Connection, tenant_id: int, refs: Sequence[str] | None, offset: int, limit: int
) -> tuple[int, list[Record]]:
    """Guests (all of the tenant's, or those named), most recently modified first."""
    stmt = select(guests).where(guests.c.tenant_id == tenant_id)
    if refs is not None:
        stmt = stmt.where(guests.c.ref.in_(list(refs)))
    total = conn.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    found = records(conn, stmt.order_by(guests.c.modified_at.desc(), guests.c.ref).offset(offset).limit(limit))
    return total, found


def _day(conn: Connection, column: Any) -> Any:
    """A stored UTC time's calendar day, as `YYYY-MM-DD` text on both databases."""
    if conn.dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.date(column)


def _money_sum(conn: Connection, column: Any) -> Any:
    """PostgreSQL sums NUMERIC exactly; SQLite keeps money as decimal text and sums it as a double, which
    the caller rounds to the cent (the home page's charts and totals, never a stored figure)."""
    return func.sum(column) if conn.dialect.name == "postgresql" else func.sum(cast(column, Float))


def tenant_totals(conn: Connection, tenant_id: int) -> Record:
    """The tenant's live guests, of them customers, and orders."""
    live = (guests.c.tenant_id == tenant_id) & guests.c.merged_into.is_(None)
    guest_count, customer_count = conn.execute(
        select(func.count(), func.count().filter(guests.c.guest_type == "customer")).where(live)
    ).one()
    order_count = conn.execute(select(func.count()).where(orders.c.tenant_id == tenant_id)).scalar_one()
    return {"guests": guest_count, "customers": customer_count, "orders": order_count}


def revenue_by_currency(conn: Connection, tenant_id: int) -> list[tuple[str, int, Any]]:
    """Every order's currency with how many orders and their total, currencies in order."""
    stmt = (
        select(orders.c.currency_code, func.count(), _money_sum(conn, orders.c.price))
        .where(orders.c.tenant_id == tenant_id)
        .group_by(orders.c.currency_code)
        .order_by(orders.c.currency_code)
    )
    return [(currency, count, total) for currency, count, total in conn.execute(stmt)]


def new_guests_by_day(conn: Connection, tenant_id: int, since: datetime) -> list[tuple[str, int, int]]:
    """Guests created per day since `since` (merged ones included: they were new that day), and of them
    those that are customers now."""
    day = _day(conn, guests.c.created_at)
    stmt = (
        select(day, func.count(), func.count().filter(guests.c.guest_type == "customer"))
        .where(guests.c.tenant_id == tenant_id, guests.c.created_at >= since)
        .group_by(day)
        .order_by(day)
    )
    return [(str(when), count, customers) for when, count, customers in conn.execute(stmt)]


def orders_by_day(conn: Connection, tenant_id: int, since: datetime) -> list[tuple[str, str, int, Any]]:
    """Per day placed (orderedAt) and currency since `since`: how many orders and their total."""
    day = _day(conn, orders.c.ordered_at)
    stmt = (
        select(day, orders.c.currency_code, func.count(), _money_sum(conn, orders.c.price))
        .where(orders.c.tenant_id == tenant_id, orders.c.ordered_at >= since)
        .group_by(day, orders.c.currency_code)
        .order_by(day, orders.c.currency_code)
    )
    return [(str(when), currency, count, total) for when, currency, count, total in conn.execute(stmt)]
