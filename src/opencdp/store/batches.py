"""Batches, their failures and the registry of applied records."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Connection, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from opencdp.store.rows import Record, insert_rows, records, to_columns, to_record
from opencdp.store.tables import batch_failures, batch_registry, batches, settings


def get(conn: Connection, tenant_id: int, ref: str, *, locked: bool = False) -> Record | None:
    """A batch; `locked`: held until the transaction ends, so that two processes taking the same upload
    (a worker and another worker) take it one after the other (SQLite's writer is one anyway)."""
    stmt = select(batches).where(batches.c.tenant_id == tenant_id, batches.c.ref == ref)
    if locked and conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).mappings().first()
    return to_record(row) if row else None


def insert_batch(conn: Connection, values: dict[str, object]) -> None:
    conn.execute(insert(batches), to_columns(values))


def update_batch(conn: Connection, tenant_id: int, ref: str, values: dict[str, object]) -> None:
    conn.execute(
        update(batches).where(batches.c.tenant_id == tenant_id, batches.c.ref == ref).values(to_columns(values))
    )


def page(
    conn: Connection,
    tenant_id: int,
    since: datetime,
    statuses: Sequence[str],
    before: datetime | None,
    offset: int,
    limit: int,
) -> tuple[int, list[Record]]:
    stmt = select(batches).where(batches.c.tenant_id == tenant_id, batches.c.created_at >= since)
    if statuses:
        stmt = stmt.where(batches.c.status.in_(statuses))
    if before is not None:
        stmt = stmt.where(batches.c.created_at < before)
    total = conn.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    rows = records(conn, stmt.order_by(batches.c.created_at.desc(), batches.c.ref).offset(offset).limit(limit))
    return total, rows


def _claimable(now: datetime) -> ColumnElement[bool]:
    """Queued, or processing under a lapsed claim (its worker died, or it gave its turn away)."""
    return or_(
        batches.c.status == "file_uploaded",
        (batches.c.status == "processing") & (batches.c.claim_expires < now),
    )


def claimable(conn: Connection, now: datetime, limit: int) -> list[Record]:
    """The batches a worker may claim, in upload order, the first `limit` of them.

    On PostgreSQL the rows are locked and skipped by other workers until this transaction ends, so each
    batch is claimed by one worker.
    """
    stmt = select(batches).where(_claimable(now)).order_by(batches.c.uploaded_at).limit(limit)
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return records(conn, stmt)


def take(conn: Connection, batch: Record, worker: str, lease_until: datetime) -> Record:
    """Claim one of `claimable`'s batches for a worker until the lease ends (renewed at every commit)."""
    values = {"status": "processing", "claimed_by": worker, "claim_expires": lease_until}
    conn.execute(
        update(batches).where(batches.c.tenant_id == batch["tenantId"], batches.c.ref == batch["ref"]).values(values)
    )
    return {**batch, "status": "processing", "claimedBy": worker, "claimExpires": lease_until}


def uploading(conn: Connection, now: datetime, limit: int) -> list[Record]:
    """Batches still waiting for their file whose upload link has not expired, oldest first."""
    stmt = (
        select(batches)
        .where(batches.c.status == "uploading", batches.c.location_expires > now)
        .order_by(batches.c.created_at)
        .limit(limit)
    )
    return records(conn, stmt)


def others_waiting(conn: Connection, now: datetime, tenant_id: int) -> bool:
    """Whether another tenant has a batch a worker could claim now."""
    stmt = select(batches.c.ref).where(_claimable(now), batches.c.tenant_id != tenant_id).limit(1)
    return conn.execute(stmt).first() is not None


def release(conn: Connection, tenant_id: int, ref: str, now: datetime) -> None:
    """Give a batch's turn away: still processing, but claimable by the next worker that looks."""
    conn.execute(
        update(batches)
        .where(batches.c.tenant_id == tenant_id, batches.c.ref == ref)
        .values(claimed_by=None, claim_expires=now - timedelta(seconds=1))
    )


def add_failures(
    conn: Connection, tenant_id: int, batch_ref: str, failures: Iterable[tuple[int, str, str, str]]
) -> None:
    """The failed lines of a chunk: (line, record ref as shown, code, message) each."""
    rows = [
        {
            "tenant_id": tenant_id,
            "batch_ref": batch_ref,
            "line": line,
            "record_ref": ref,
            "code": code,
            "message": message,
        }
        for line, ref, code, message in failures
    ]
    insert_rows(conn, batch_failures, rows)


def failures(conn: Connection, tenant_id: int, batch_ref: str) -> list[Record]:
    stmt = (
        select(batch_failures)
        .where(batch_failures.c.tenant_id == tenant_id, batch_failures.c.batch_ref == batch_ref)
        .order_by(batch_failures.c.line)
    )
    return records(conn, stmt)


def failure_page(conn: Connection, tenant_id: int, batch_ref: str, offset: int, limit: int) -> tuple[int, list[Record]]:
    """A page of a batch's failures in file order, and how many it has."""
    where = (batch_failures.c.tenant_id == tenant_id, batch_failures.c.batch_ref == batch_ref)
    total = conn.execute(select(func.count()).select_from(batch_failures).where(*where)).scalar_one()
    stmt = select(batch_failures).where(*where).order_by(batch_failures.c.line).offset(offset).limit(limit)
    return total, records(conn, stmt)


_REGISTERED = select(batch_registry.c.record_ref).where(
    batch_registry.c.tenant_id == bindparam("tenant_id"),
    batch_registry.c.record_ref == bindparam("record_ref"),
    batch_registry.c.line_hash == bindparam("line_hash"),
)


def registered(conn: Connection, tenant_id: int, record_ref: str, line_hash: str) -> bool:
    """Whether this line was applied before; asked once per record applied alone, so built once."""
    values = {"tenant_id": tenant_id, "record_ref": record_ref, "line_hash": line_hash}
    return conn.execute(_REGISTERED, values).first() is not None


def registered_among(conn: Connection, tenant_id: int, record_refs: Iterable[str]) -> set[tuple[str, str]]:
    """(record ref, line hash) of the applied records among these refs."""
    wanted = sorted(set(record_refs))
    if not wanted:
        return set()
    stmt = select(batch_registry.c.record_ref, batch_registry.c.line_hash).where(
        batch_registry.c.tenant_id == tenant_id, batch_registry.c.record_ref.in_(wanted)
    )
    return {(ref, line_hash) for ref, line_hash in conn.execute(stmt)}


def register_all(conn: Connection, tenant_id: int, records: Iterable[tuple[str, str]], now: datetime) -> None:
    rows = [
        {"tenant_id": tenant_id, "record_ref": ref, "line_hash": line_hash, "applied_at": now}
        for ref, line_hash in records
    ]
    insert_rows(conn, batch_registry, rows)


def register(conn: Connection, tenant_id: int, record_ref: str, line_hash: str, now: datetime) -> None:
    register_all(conn, tenant_id, [(record_ref, line_hash)], now)


def setting(conn: Connection, key: str, default: str) -> str:
    """A shared setting, created with `default` by whichever process asks first.

    It is read first: on SQLite a read transaction that tried to write would fail at once while a writer
    is busy, and the setting exists after the first write anyway.
    """
    found: str | None = conn.execute(select(settings.c.value).where(settings.c.key == key)).scalar()
    if found is not None:
        return found
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    conn.execute(dialect_insert(settings).values(key=key, value=default).on_conflict_do_nothing())
    stored: str = conn.execute(select(settings.c.value).where(settings.c.key == key)).scalar_one()
    return stored


def created_before(conn: Connection, cutoff: datetime, limit: int) -> list[Record]:
    return records(
        conn, select(batches).where(batches.c.created_at < cutoff).order_by(batches.c.created_at).limit(limit)
    )


def delete_batches(conn: Connection, keys: Sequence[tuple[int, str]]) -> None:
    for tenant_id, ref in keys:
        conn.execute(
            delete(batch_failures).where(batch_failures.c.tenant_id == tenant_id, batch_failures.c.batch_ref == ref)
        )
        conn.execute(delete(batches).where(batches.c.tenant_id == tenant_id, batches.c.ref == ref))


def forget_registrations(conn: Connection, cutoff: datetime) -> None:
    conn.execute(delete(batch_registry).where(batch_registry.c.applied_at < cutoff))


IMPORTED = ("guests", "guest_keys", "orders", "order_items", "extensions", "order_people", "consumer_items",
            "batch_registry")  # fmt: skip


def refresh_statistics(conn: Connection) -> None:
    """PostgreSQL: fresh planner statistics for the tables an import fills. Without them (autovacuum off,
    or not yet run) the queries that follow a large import (segments, exports) are planned for tables
    as small as they were before it."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"ANALYZE {', '.join(IMPORTED)}")
