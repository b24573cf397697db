"""Sessions keyed by (browser, channel): opened by events, closed by inactivity, FORCE_CLOSE or a switch.

The cart lives on its session; at close the cart type and abandoned revenue are decided (§4.8) and the
cart is discarded.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from opencdp.core.stream import carts
from opencdp.core.stream.working import WorkingSet
from opencdp.core.tenants import Tenant
from opencdp.core.values import new_ref
from opencdp.store import stream as stream_store
from opencdp.store.rows import Record
from opencdp.store.stream import SESSIONS

TIMEOUT, FORCE_CLOSE, SWITCH = "TIMEOUT", "FORCE_CLOSE", "SWITCH"


def session_for(working: WorkingSet, browser: Record, guest_ref: str, channel: str, pos: str, now: datetime) -> Record:
    """The open session this event joins, after closing the key's session if it timed out."""
    current = working.open_session(browser["ref"], channel)
    timeout = timedelta(minutes=working.tenant.session_timeout_minutes)
    if current is not None and current["lastEventAt"] + timeout >= now:
        return current
    if current is not None:
        working.update_session(current, closing(current, TIMEOUT, current["lastEventAt"] + timeout))
    session = {
        "ref": new_ref(),
        "tenantId": working.tenant.id,
        "guestRef": guest_ref,
        "browserRef": browser["ref"],
        "channel": channel,
        "pointOfSale": pos,
        "status": stream_store.OPEN,
        "startedAt": now,
        "lastEventAt": now,
        "eventCount": 0,
        "cart": carts.empty_cart(),
    }
    working.insert_session(session)
    return session


def closing(session: Record, reason: str, at: datetime) -> dict[str, Any]:
    """What closing a session for good changes: its cart type is decided, the abandoned revenue kept, the
    cart dropped."""
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
    return {
        "status": stream_store.CLOSED,
        "closedAt": at,
        "closeReason": reason,
        "cartType": cart_type,
        "abandonedRevenue": revenue,
        "abandonedCurrency": currency,
        "cart": carts.empty_cart(),
    }


def close(conn: Connection, session: Record, reason: str, at: datetime) -> None:
    """Close a stored session for good (`closing`)."""
    SESSIONS.update(conn, session["tenantId"], session["ref"], closing(session, reason, at))


def close_idle(conn: Connection, tenant: Tenant, now: datetime, limit: int) -> int:
    """Close the tenant's sessions idle past its timeout; safe to run in several processes at once. Only
    once the tenant's accepted events are applied is a session's last event known (journal.sweep)."""
    timeout = timedelta(minutes=tenant.session_timeout_minutes)
    closed = 0
    for session in stream_store.idle_sessions(conn, tenant.id, now - timeout, limit):
        close(conn, session, TIMEOUT, session["lastEventAt"] + timeout)
        closed += 1
    return closed
