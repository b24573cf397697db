"""Sessions keyed by (browser, channel): opened by events, closed by inactivity, FORCE_CLOSE or a switch.

The cart lives on its session; at close the cart type and abandoned revenue are decided (§4.8) and the
cart is discarded.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from opencdp.core.tenants import Tenant
from opencdp.core.values import new_ref
from opencdp.store import stream as store
from opencdp.store.rows import Record, insert_row, update_row
from opencdp.store.tables import sessions

TIMEOUT, FORCE_CLOSE, SWITCH = "TIMEOUT", "FORCE_CLOSE", "SWITCH"


def empty_cart() -> dict[str, Any]:
    return {
        "lines": [],
        "confirmed": [],
        "contact": None,
        "consumers": [],
        "payment": None,
        "cleared": False,
        "converted": False,
        "lastOrderRef": None,
        "lastResult": None,
    }


def session_for(
    conn: Connection, tenant: Tenant, browser: Record, guest_ref: str, channel: str, pos: str, now: datetime
) -> Record:
    """The open session this event joins, after closing the key's session if it timed out."""
    current = store.open_session(conn, tenant.id, browser["ref"], channel)
    timeout = timedelta(minutes=tenant.session_timeout_minutes)
    if current is not None and current["lastEventAt"] + timeout >= now:
        return current
    if current is not None:
        close(conn, current, TIMEOUT, current["lastEventAt"] + timeout)
    session = {
        "ref": new_ref(),
        "tenantId": tenant.id,
        "guestRef": guest_ref,
        "browserRef": browser["ref"],
        "channel": channel,
        "pointOfSale": pos,
        "status": store.OPEN,
        "startedAt": now,
        "lastEventAt": now,
        "eventCount": 0,
        "cart": empty_cart(),
    }
    insert_row(conn, sessions, session)
    return session


def close(conn: Connection, session: Record, reason: str, at: datetime) -> Record:
    """Close a session for good: decide its cart type, keep the abandoned revenue, drop the cart."""
    cart = session["cart"]
    lines = cart["lines"]
    revenue: Decimal | None = None
    currency: str | None = None
    if cart["converted"]:
        cart_type = "CONVERTED"
    elif lines:
        cart_type = "ABANDONED"
        currencies = {line.get("currency") for line in lines}
        if len(currencies) == 1:
            currency = currencies.pop()
            revenue = sum((Decimal(line["price"]) * line["quantity"] for line in lines), Decimal(0))
    elif cart["cleared"]:
        cart_type = "CLOSED"
    else:
        cart_type = "BROWSED"
    changes = {
        "status": store.CLOSED,
        "closedAt": at,
        "closeReason": reason,
        "cartType": cart_type,
        "abandonedRevenue": revenue,
        "abandonedCurrency": currency,
        "cart": empty_cart(),
    }
    update_row(conn, sessions, session["tenantId"], session["ref"], changes)
    return {**session, **changes}


def close_idle(conn: Connection, tenant: Tenant, now: datetime, limit: int) -> int:
    """Close the tenant's sessions idle past its timeout; safe to run in several processes at once. Only
    once the tenant's accepted events are applied is a session's last event known (journal.sweep)."""
    timeout = timedelta(minutes=tenant.session_timeout_minutes)
    closed = 0
    for session in store.idle_sessions(conn, tenant.id, now - timeout, limit):
        close(conn, session, TIMEOUT, session["lastEventAt"] + timeout)
        closed += 1
    return closed
