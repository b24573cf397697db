"""Browsers: created only by create.json, each owned by a new visitor guest (stream-api.md §1.5, §4.1)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from opencdp.core import guests
from opencdp.core.errors import ApiError, NeedsDatabase
from opencdp.core.fields import parse_ref
from opencdp.core.tenants import Tenant
from opencdp.core.values import new_ref
from opencdp.store.database import Memory
from opencdp.store.records import Guest
from opencdp.store.rows import Record
from opencdp.store.stream import BROWSERS


def create(conn: Connection, tenant: Tenant, now: datetime) -> Record:
    guest_ref = guests.create(conn, tenant, "visitor", {}, now)
    browser = {"ref": new_ref(), "tenantId": tenant.id, "guestRef": guest_ref, "createdAt": now}
    BROWSERS.insert(conn, browser)
    return browser


def require(conn: Connection, tenant: Tenant, browser_id: str) -> Record:
    ref = parse_ref(browser_id)
    browser = BROWSERS.get(conn, tenant.id, ref) if ref else None
    if browser is None:
        raise ApiError(f"Browser {browser_id} was not found", status=404)
    return browser


# Browsers this process has seen to exist, by (tenant id, ref): an event's acceptance only needs to know
# that its browser exists, and a browser, once created, is only removed with its guest (an event for it
# is then accepted and kept in the journal as failed, with the reason). Bounded: the oldest go first.
_SEEN: dict[tuple[int, str], None] = {}
SEEN_LIMIT = 100_000


def known_ref(conn: Connection | Memory, tenant: Tenant, browser_id: str) -> str:
    """The ref of a browser of this tenant, from memory when this process has seen it (404 otherwise).
    Given the database's `Memory` instead of a connection, one this process has not seen raises
    `NeedsDatabase`."""
    ref = parse_ref(browser_id)
    if ref is not None and (tenant.id, ref) in _SEEN:
        return ref
    if isinstance(conn, Memory):
        raise NeedsDatabase
    browser = require(conn, tenant, browser_id)
    if len(_SEEN) >= SEEN_LIMIT:
        _SEEN.pop(next(iter(_SEEN)), None)
    stored: str = browser["ref"]
    _SEEN[(tenant.id, stored)] = None
    return stored


def owner(conn: Connection, tenant: Tenant, browser_id: str) -> tuple[Record, Guest]:
    """The browser and the live guest owning it now (after a merge, the survivor)."""
    browser = require(conn, tenant, browser_id)
    return browser, guests.require(conn, tenant, browser["guestRef"])
