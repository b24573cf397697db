"""What happened to a guest, session by session: the guest timeline (`/opencdp/v1/guests/{ref}/sessions`)."""

from __future__ import annotations

from sqlalchemy import Connection

from opencdp.core import guests
from opencdp.core.tenants import Tenant
from opencdp.store import stream as stream_store
from opencdp.store.rows import Record

NEWEST_FIRST = (("startedAt", True),)
SessionFilters = stream_store.SessionFilters  # what a reader of the timeline may narrow it by


def sessions_of(
    conn: Connection,
    tenant: Tenant,
    guest_ref: str,
    offset: int,
    limit: int,
    filters: SessionFilters | None = None,
) -> tuple[int, list[Record]]:
    """The guest's sessions, newest first, each with its events in arrival order."""
    guest = guests.require(conn, tenant, guest_ref)
    total, found = stream_store.page_sessions(conn, tenant.id, guest["ref"], NEWEST_FIRST, offset, limit, filters)
    by_session: dict[str, list[Record]] = {session["ref"]: [] for session in found}
    for event in stream_store.events_of_sessions(conn, tenant.id, list(by_session)):
        by_session[event["sessionRef"]].append(event)
    return total, [{**session, "events": by_session[session["ref"]]} for session in found]
