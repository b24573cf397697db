"""The Stream journal's applier: accepted events become their effects, in the order they were accepted.

An event's answer (201) needs only its checks and a durable append (`events.accept`); everything else it
does (sessions, carts, orders, identity, the event row) is applied here, a tenant's entries at a time in
one transaction. Applying an entry removes it in the same transaction, so a crash anywhere applies
nothing twice and loses nothing. An entry whose applying fails (a conflict the checks could not foresee)
is kept with its reason, and the tenant's later entries go on.

Whoever reads a tenant's data first applies what the tenant has pending (`settle`), so every read that
begins after a 201 sees that event's effects (spec README §4); the embedded server and `opencdp worker`
apply in the background as well, so that reads seldom find anything to do.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from opencdp.core.errors import ApiError, NotFound
from opencdp.core.stream import events, sessions
from opencdp.core.stream.working import WorkingSet
from opencdp.core.tenants import Tenant, list_tenants
from opencdp.store import guests as guest_store
from opencdp.store import journal as journal_store
from opencdp.store import tenants as tenant_store
from opencdp.store.database import forget, lock
from opencdp.store.rows import Record

log = logging.getLogger("opencdp.stream")
BATCH = 200  # entries applied in one transaction: a reader waits at most for one batch
# On SQLite, the background applier's batch also stops after this long: every write, the API's appends
# included, waits while a batch is applied, and a batch of checkouts (orders made through the database)
# takes five times as long as one of views. (On PostgreSQL appends do not wait, and smaller batches cost.)
BATCH_SECONDS = 0.03


def apply_tenant(conn: Connection, tenant_id: int, limit: int = BATCH, seconds: float = math.inf) -> int:
    """Apply up to `limit` of a tenant's pending entries, in order, stopping after the entry that ends
    `seconds` after the first began; how many were taken (applied or failed).

    The tenant's journal lock makes appliers in other processes and threads take turns, so no entry is
    applied twice and a browser's events keep their order. The batch is applied in one go; should an
    entry fail, the batch is undone and applied again entry by entry, each in a savepoint of its own, so
    that only the failing entry is kept back (a savepoint per entry costs two round trips on PostgreSQL,
    and entries seldom fail).
    """
    lock(conn, f"stream-journal:{tenant_id}")
    entries = journal_store.pending(conn, tenant_id, limit)
    if not entries:
        return 0
    tenant = Tenant.from_record(tenant_store.find_by_id(conn, tenant_id))
    conn.exec_driver_sql("SAVEPOINT batch")
    try:
        working = WorkingSet(conn, tenant, (entry["browserRef"] for entry in entries))
        applied: list[tuple[Record, str]] = []
        ends = time.monotonic() + seconds
        for entry in entries:
            applied.append((entry, events.apply(working, entry)))
            if time.monotonic() > ends:
                break
        entries = entries[: len(applied)]  # the rest wait for the next batch, still in order
        working.flush()
    except Exception:
        conn.exec_driver_sql("ROLLBACK TO SAVEPOINT batch")
        forget(conn)
        applied = _apply_each(conn, tenant, entries)
    conn.exec_driver_sql("RELEASE SAVEPOINT batch")
    seen: dict[str, tuple[datetime, datetime]] = {}
    for entry, guest_ref in applied:
        at = entry["receivedAt"]
        first, last = seen.get(guest_ref, (at, at))
        seen[guest_ref] = (min(first, at), max(last, at))
    guest_store.seen(conn, tenant_id, seen)
    journal_store.remove(conn, [entry["id"] for entry, _ in applied])
    return len(entries)


def _apply_each(conn: Connection, tenant: Tenant, entries: list[Record]) -> list[tuple[Record, str]]:
    """Entries one by one, each in a savepoint: a failing one is kept with its reason, the others applied."""
    applied = []
    for entry in entries:
        conn.exec_driver_sql("SAVEPOINT entry")
        try:
            working = WorkingSet(conn, tenant, [entry["browserRef"]])
            guest_ref = events.apply(working, entry)
            working.flush()
        except Exception as error:  # kept with its reason; the tenant's other entries go on
            conn.exec_driver_sql("ROLLBACK TO SAVEPOINT entry")
            forget(conn)
            conn.exec_driver_sql("RELEASE SAVEPOINT entry")
            reason = error.developer_message if isinstance(error, ApiError) else "Internal error"
            if not isinstance(error, ApiError):
                log.exception("stream event %s could not be applied", entry["eventRef"])
            journal_store.fail(conn, entry["id"], reason)
            continue
        conn.exec_driver_sql("RELEASE SAVEPOINT entry")
        applied.append((entry, guest_ref))
    return applied


def sweep(conn: Connection, now: datetime, limit: int = 500) -> int:
    """Close every session idle past its tenant's timeout, once the tenant's accepted events are applied:
    an event still in the journal may belong to a session that only looks idle. (What is left to apply
    is applied here, in this transaction: callers with a long journal apply it first, a batch per
    transaction, as `jobs.sweep_sessions` does.)"""
    closed = 0
    for tenant in list_tenants(conn):
        while apply_tenant(conn, tenant.id):
            pass
        closed += sessions.close_idle(conn, tenant, now, limit)
    return closed


def append(conn: Connection, entries: Sequence[Record]) -> None:
    """Accepted events, in the order given: each is applied once, after the entries appended before it."""
    journal_store.append(conn, entries)


def tenants_pending(conn: Connection) -> list[int]:
    return journal_store.tenants_pending(conn)


def newest_pending(conn: Connection, tenant_id: int) -> int | None:
    """Where a read that begins now must wait until: the tenant's last entry accepted so far."""
    return journal_store.newest_pending(conn, tenant_id)


def pending_through(conn: Connection, tenant_id: int, last_id: int) -> bool:
    return journal_store.pending_through(conn, tenant_id, last_id)


def lag_seconds(conn: Connection, tenant_id: int, now: datetime) -> float:
    """How long the tenant's oldest entry still to apply has waited (0 when none waits)."""
    oldest = journal_store.oldest_waiting_at(conn, tenant_id)
    return max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0


def status(conn: Connection, tenant: Tenant, now: datetime) -> dict[str, Any]:
    """The tenant's journal: entries waiting and failed, and the lag, how long the oldest has waited."""
    found = journal_store.status(conn, tenant.id)
    oldest = found["oldestWaitingAt"]
    lag = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
    return {**found, "lagSeconds": round(lag, 3)}


def failed(conn: Connection, tenant: Tenant, offset: int, limit: int) -> tuple[int, list[Record]]:
    return journal_store.failed(conn, tenant.id, offset, limit)


def replay(conn: Connection, tenant: Tenant, event_ref: str) -> None:
    """Put a failed entry back in line, where it was accepted: the next pass applies it again."""
    journal_store.requeue(conn, _failed_entry(conn, tenant, event_ref)["id"])


def discard(conn: Connection, tenant: Tenant, event_ref: str) -> None:
    """Give up on a failed entry: it is removed, and the event never happened."""
    journal_store.remove(conn, [_failed_entry(conn, tenant, event_ref)["id"]])


def _failed_entry(conn: Connection, tenant: Tenant, event_ref: str) -> Record:
    entry = journal_store.failed_entry(conn, tenant.id, event_ref)
    if entry is None:
        raise NotFound(f"No failed stream event with ref {event_ref} for client key {tenant.client_key}")
    return entry
