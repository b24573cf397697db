"""The Stream journal: events accepted and not applied yet, and those whose applying failed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, bindparam, delete, func, select, update

from opencdp.store.rows import Record, insert_rows, records
from opencdp.store.tables import stream_journal


def append(conn: Connection, entries: Sequence[Record]) -> None:
    """Entries in one executemany (a COPY for many on PostgreSQL); ids follow their order."""
    insert_rows(conn, stream_journal, entries)


_NEWEST_PENDING = (
    select(stream_journal.c.id)
    .where(stream_journal.c.tenant_id == bindparam("_tenant"), stream_journal.c.failure.is_(None))
    .order_by(stream_journal.c.id.desc())
    .limit(1)
)


def newest_pending(conn: Connection, tenant_id: int) -> int | None:
    """The id of the tenant's last entry still to apply (a failed one is not waited for), if any. Every
    authenticated request asks, so the statement is built once."""
    return conn.scalar(_NEWEST_PENDING, {"_tenant": tenant_id})


_OLDEST_WAITING = (
    select(stream_journal.c.received_at)
    .where(stream_journal.c.tenant_id == bindparam("_tenant"), stream_journal.c.failure.is_(None))
    .order_by(stream_journal.c.id)
    .limit(1)
)


def oldest_waiting_at(conn: Connection, tenant_id: int) -> datetime | None:
    """When the tenant's first entry still to apply was accepted; asked often, so built once."""
    return conn.scalar(_OLDEST_WAITING, {"_tenant": tenant_id})


def pending_through(conn: Connection, tenant_id: int, last_id: int) -> bool:
    """Whether any of the tenant's entries up to `last_id` is still to apply."""
    stmt = select(stream_journal.c.id).where(
        stream_journal.c.tenant_id == tenant_id, stream_journal.c.failure.is_(None), stream_journal.c.id <= last_id
    )
    return conn.execute(stmt.limit(1)).first() is not None


def tenants_pending(conn: Connection) -> list[int]:
    stmt = select(stream_journal.c.tenant_id).where(stream_journal.c.failure.is_(None)).distinct()
    return list(conn.scalars(stmt))


def pending(conn: Connection, tenant_id: int, limit: int) -> list[Record]:
    """The tenant's entries still to apply, in the order they were accepted."""
    stmt = (
        select(stream_journal)
        .where(stream_journal.c.tenant_id == tenant_id, stream_journal.c.failure.is_(None))
        .order_by(stream_journal.c.id)
        .limit(limit)
    )
    return records(conn, stmt)


def remove(conn: Connection, ids: Sequence[int]) -> None:
    if ids:
        conn.execute(delete(stream_journal).where(stream_journal.c.id.in_(ids)))


def fail(conn: Connection, entry_id: int, reason: str) -> None:
    conn.execute(update(stream_journal).where(stream_journal.c.id == entry_id).values(failure=reason))


def status(conn: Connection, tenant_id: int) -> Record:
    """How many of the tenant's entries wait and how many failed, and when the oldest waiting one came."""
    waiting = stream_journal.c.failure.is_(None)
    stmt = select(
        func.count().filter(waiting),
        func.count().filter(~waiting),
        func.min(stream_journal.c.received_at).filter(waiting),
    ).where(stream_journal.c.tenant_id == tenant_id)
    count_waiting, count_failed, oldest = conn.execute(stmt).one()
    return {"waiting": count_waiting, "failed": count_failed, "oldestWaitingAt": oldest}


def failed(conn: Connection, tenant_id: int, offset: int, limit: int) -> tuple[int, list[Record]]:
    """The tenant's entries whose applying failed, oldest first, and how many there are."""
    where = (stream_journal.c.tenant_id == tenant_id, stream_journal.c.failure.is_not(None))
    total = conn.execute(select(func.count()).where(*where)).scalar_one()
    stmt = select(stream_journal).where(*where).order_by(stream_journal.c.id).offset(offset).limit(limit)
    return total, records(conn, stmt)


def failed_entry(conn: Connection, tenant_id: int, event_ref: str) -> Record | None:
    stmt = select(stream_journal).where(
        stream_journal.c.tenant_id == tenant_id,
        stream_journal.c.event_ref == event_ref,
        stream_journal.c.failure.is_not(None),
    )
    found = records(conn, stmt)
    return found[0] if found else None


def requeue(conn: Connection, entry_id: int) -> None:
    conn.execute(update(stream_journal).where(stream_journal.c.id == entry_id).values(failure=None))
