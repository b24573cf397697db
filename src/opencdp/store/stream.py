"""Browsers, sessions and events of the Stream API."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, delete, select, update

from opencdp.store.rows import Record, Rows, SortTerm, page, records, to_record
from opencdp.store.tables import browsers, events, sessions

BROWSERS: Rows[Record] = Rows(browsers)  # Browsers (Stream API clients).
SESSIONS: Rows[Record] = Rows(sessions)  # Sessions.
EVENTS: Rows[Record] = Rows(events)  # Stream events.

OPEN = "OPEN"
CLOSED = "CLOSED"


_OPEN_SESSION = (
    select(sessions)
    .where(
        sessions.c.tenant_id == bindparam("_tenant"),
        sessions.c.browser_ref == bindparam("_browser"),
        sessions.c.channel == bindparam("_channel"),
        sessions.c.status == OPEN,
    )
    .limit(1)
)


def open_session(conn: Connection, tenant_id: int, browser_ref: str, channel: str) -> Record | None:
    """The browser's open session on a channel; the statement is built once (every event asks)."""
    row = conn.execute(_OPEN_SESSION, {"_tenant": tenant_id, "_browser": browser_ref, "_channel": channel})
    found = row.mappings().first()
    return to_record(found) if found else None


def open_sessions(conn: Connection, tenant_id: int, browser_refs: Sequence[str]) -> dict[tuple[str, str], Record]:
    """The open sessions of many browsers, by (browser, channel): a journal batch reads them at once."""
    if not browser_refs:
        return {}
    stmt = select(sessions).where(
        sessions.c.tenant_id == tenant_id, sessions.c.browser_ref.in_(browser_refs), sessions.c.status == OPEN
    )
    return {(found["browserRef"], found["channel"]): found for found in records(conn, stmt)}


def idle_sessions(conn: Connection, tenant_id: int, cutoff: datetime, limit: int) -> list[Record]:
    """Open sessions of a tenant whose last event is older than the cutoff.

    On PostgreSQL the rows are locked and skipped by other sweepers, so several processes can sweep.
    """
    stmt = (
        select(sessions)
        .where(sessions.c.tenant_id == tenant_id, sessions.c.status == OPEN, sessions.c.last_event_at < cutoff)
        .order_by(sessions.c.last_event_at)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return records(conn, stmt)


def page_sessions(
    conn: Connection,
    tenant_id: int,
    guest_ref: str,
    sort: Sequence[SortTerm],
    offset: int,
    limit: int,
    filters: SessionFilters | None = None,
) -> tuple[int, list[Record]]:
    stmt = select(sessions).where(sessions.c.tenant_id == tenant_id, sessions.c.guest_ref == guest_ref)
    if filters is not None:
        if filters.channel:
            stmt = stmt.where(sessions.c.channel == filters.channel)
        if filters.cart_type:
            stmt = stmt.where(sessions.c.cart_type == filters.cart_type)
        if filters.since:
            stmt = stmt.where(sessions.c.started_at >= filters.since)
        if filters.until:
            stmt = stmt.where(sessions.c.started_at <= filters.until)
    return page(conn, sessions, stmt, sort, offset, limit)


@dataclass(frozen=True)
class SessionFilters:
    channel: str | None = None
    cart_type: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def events_of_sessions(conn: Connection, tenant_id: int, session_refs: Sequence[str]) -> list[Record]:
    if not session_refs:
        return []
    stmt = (
        select(events)
        .where(events.c.tenant_id == tenant_id, events.c.session_ref.in_(session_refs))
        .order_by(events.c.created_at, events.c.ref)
    )
    return records(conn, stmt)


def move_guest(conn: Connection, tenant_id: int, from_ref: str, to_ref: str) -> None:
    """A merge: the retired guest's browsers, sessions and events now belong to the survivor."""
    for table in (browsers, sessions, events):
        conn.execute(
            update(table).where(table.c.tenant_id == tenant_id, table.c.guest_ref == from_ref).values(guest_ref=to_ref)
        )


def delete_of_guests(conn: Connection, tenant_id: int, guest_refs: Sequence[str]) -> None:
    for table in (events, sessions, browsers):
        conn.execute(delete(table).where(table.c.tenant_id == tenant_id, table.c.guest_ref.in_(guest_refs)))
