"""Browsers: created only by create.json, each owned by a new visitor guest (stream-api.md §1.5, §4.1)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from opencdp.core import guests
from opencdp.core.errors import ApiError
from opencdp.core.fields import parse_ref
from opencdp.core.tenants import Tenant
from opencdp.core.values import new_ref
from opencdp.store.rows import Record, get_row, insert_row
from opencdp.store.tables import browsers


def create(conn: Connection, tenant: Tenant, now: datetime) -> Record:
    guest_ref = guests.create(conn, tenant, "visitor", {}, now)
    browser = {"ref": new_ref(), "tenantId": tenant.id, "guestRef": guest_ref, "createdAt": now}
    insert_row(conn, browsers, browser)
    return browser


def require(conn: Connection, tenant: Tenant, browser_id: str) -> Record:
    ref = parse_ref(browser_id)
    browser = get_row(conn, browsers, tenant.id, ref) if ref else None
    if browser is None:
        raise ApiError(f"Browser {browser_id} was not found", status=404)
    return browser


def owner(conn: Connection, tenant: Tenant, browser_id: str) -> tuple[Record, Record]:
    """The browser and the live guest owning it now (after a merge, the survivor)."""
    browser = require(conn, tenant, browser_id)
    return browser, guests.require(conn, tenant, browser["guestRef"])
