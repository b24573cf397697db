"""The web console's rules (segments-exports.md §5): who is signed in, for how long, and guest search.

A session id is 256 random bits shown only to the browser; the database keeps its SHA-256, so a leaked
database row does not open a session. A session ends after 2 idle hours, 12 hours in all, at sign-out,
or when the API token it was opened with is revoked.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from opencdp.core import profiles
from opencdp.core.errors import ApiError
from opencdp.core.fields import parse_ref
from opencdp.core.tenants import Tenant, authenticate, hash_token
from opencdp.store import console as console_store
from opencdp.store import tenants as tenant_store
from opencdp.store.guests import GUESTS
from opencdp.store.rows import Record

IDLE = timedelta(hours=2)
ABSOLUTE = timedelta(hours=12)
FAILURE_WINDOW = timedelta(minutes=15)
MAX_FAILURES = 10
TOUCH_EVERY = timedelta(minutes=1)
SEARCH_BY = ("any", "ref", "email", "identifier", "order")


@dataclass(frozen=True)
class Session:
    id_hash: str
    tenant: Tenant
    csrf: str


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def sign_in(conn: Connection, client_key: str, api_token: str, address: str, now: datetime) -> str | None:
    """A new session for valid credentials: its raw id, for the cookie; None for invalid ones (the failure is
    recorded, so it must commit: it is not raised). 429 after ten failures in 15 minutes."""
    if console_store.count_failures(conn, address, now - FAILURE_WINDOW) >= MAX_FAILURES:
        raise ApiError("Too many failed sign-ins; try again in 15 minutes.", status=429)
    tenant = authenticate(conn, client_key, api_token) if client_key and api_token else None
    if tenant is None:
        console_store.record_failure(conn, address, now)
        return None
    raw = secrets.token_urlsafe(32)
    session = {"idHash": _digest(raw), "tenantId": tenant.id, "tokenHash": hash_token(api_token),
               "csrf": secrets.token_urlsafe(32), "createdAt": now, "lastSeenAt": now}  # fmt: skip
    console_store.insert_session(conn, session)
    return raw


def resolve(conn: Connection, raw: str | None, now: datetime) -> Session | None:
    """The live session a cookie names, or None (expired, signed out, or its token revoked)."""
    if not raw:
        return None
    found = console_store.get_session(conn, _digest(raw))
    if found is None:
        return None
    expired = found["lastSeenAt"] < now - IDLE or found["createdAt"] < now - ABSOLUTE
    record = tenant_store.find_by_id(conn, found["tenantId"])
    if expired or found["tokenHash"] not in tenant_store.active_token_hashes(conn, found["tenantId"]):
        console_store.delete_session(conn, found["idHash"])
        return None
    if found["lastSeenAt"] < now - TOUCH_EVERY:
        console_store.touch_session(conn, found["idHash"], now)
    return Session(found["idHash"], Tenant.from_record(record), found["csrf"])


def sign_out(conn: Connection, session: Session) -> None:
    console_store.delete_session(conn, session.id_hash)


def search(
    conn: Connection, tenant: Tenant, query: str, by: str, offset: int, limit: int
) -> tuple[int, list[Record], dict[str, int]]:
    """Guests by ref, email, identifier or order (ref or referenceId); with no query, the latest modified."""
    query = query.strip()
    if not query:
        total, found = console_store.latest_guests(conn, tenant.id, None, offset, limit)
    else:
        refs: set[str] = set()
        if by in ("any", "ref") and (ref := parse_ref(query)) and GUESTS.get(conn, tenant.id, ref):
            refs.add(ref)
        if by in ("any", "email"):
            refs |= _refs(conn, tenant, {"email": query})
        if by in ("any", "identifier"):
            refs |= set(console_store.guests_with_identifier(conn, tenant.id, query))
        if by in ("any", "order"):
            refs |= _refs(conn, tenant, {"orderReferenceId": query})
            if parse_ref(query):
                refs |= _refs(conn, tenant, {"orderRef": query})
        total, found = console_store.latest_guests(conn, tenant.id, sorted(refs), offset, limit)
    return total, found, console_store.order_counts(conn, tenant.id, [guest["ref"] for guest in found])


def _refs(conn: Connection, tenant: Tenant, filters: dict[str, Any]) -> set[str]:
    _total, found = profiles.search(conn, tenant, filters, (("modifiedAt", True),), 0, 1000)
    return {guest["ref"] for guest in found}


def forget_expired(conn: Connection, now: datetime) -> None:
    """Sessions past their idle or absolute limit, and sign-in failures past their window, are deleted."""
    console_store.delete_idle_sessions(conn, now - IDLE, now - ABSOLUTE)
    console_store.forget_failures(conn, now - FAILURE_WINDOW)
