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
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from opencdp.core import profiles
from opencdp.core.errors import ApiError
from opencdp.core.fields import parse_ref
from opencdp.core.tenants import Tenant, authenticate, hash_token
from opencdp.store import console as console_store
from opencdp.store import orders as order_store
from opencdp.store import tenants as tenant_store
from opencdp.store.guests import GUESTS
from opencdp.store.records import Guest
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


@dataclass(frozen=True)
class Spend:
    """What a guest's orders in one currency add up to. Money is never added across currencies."""

    currency: str
    orders: int
    total: Decimal
    first: datetime
    last: datetime

    @property
    def average(self) -> Decimal:
        return (self.total / self.orders).quantize(Decimal("0.01"))


@dataclass(frozen=True)
class GuestSummary:
    """A profile at a glance: spend per currency, every order with its date (for the chart), and when any
    channel first and last saw the guest."""

    spend: list[Spend]
    orders: list[tuple[str, Decimal, datetime]]  # currency, price, orderedAt; oldest first
    first_seen: datetime
    last_seen: datetime

    @property
    def order_count(self) -> int:
        return len(self.orders)


def guest_summary(conn: Connection, tenant: Tenant, guest: Guest) -> GuestSummary:
    """The figures a profile shows. First and last seen take every channel: the Stream API's seen times and
    the guest's orders (REST, batch or a CHECKOUT) by when they were placed, so a guest who only came in
    through a batch file was seen when its orders were placed. The guest's creation counts for first seen
    (and for last seen only when nothing else does): an import made today is not the customer's visit."""
    placed = order_store.prices_of_guest(conn, tenant.id, guest["ref"])
    by_currency: dict[str, list[tuple[Decimal, datetime]]] = {}
    for currency, price, ordered_at in placed:
        by_currency.setdefault(currency, []).append((price, ordered_at))
    spend = [
        Spend(currency, len(rows), sum((price for price, _at in rows), Decimal(0)), rows[0][1], rows[-1][1])
        for currency, rows in sorted(by_currency.items())
    ]
    activity = [at for _c, _p, at in placed] + [at for at in (guest["firstSeen"], guest["lastSeen"]) if at]
    return GuestSummary(spend, placed, min([guest["createdAt"], *activity]), max(activity or [guest["createdAt"]]))


@dataclass(frozen=True)
class Overview:
    """The tenant at a glance, for the console's home page: what it holds, and what came in each day of
    the last `days` (every day listed, quiet ones as 0; revenue per currency, never added across them)."""

    guests: int
    customers: int
    orders: int
    revenue: list[tuple[str, int, Decimal]]  # currency, orders, total
    new_guests: list[tuple[datetime, Decimal]]
    new_customers: list[tuple[datetime, Decimal]]  # of the day's new guests, those that are customers now
    orders_per_day: list[tuple[datetime, Decimal]]
    revenue_per_day: dict[str, list[tuple[datetime, Decimal]]]


def overview(conn: Connection, tenant: Tenant, now: datetime, days: int = 90) -> Overview:
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    calendar = [today - timedelta(days=back) for back in range(days - 1, -1, -1)]
    since = calendar[0]

    def series(values: dict[str, Decimal]) -> list[tuple[datetime, Decimal]]:
        return [(day, values.get(f"{day:%Y-%m-%d}", Decimal(0))) for day in calendar]

    totals = console_store.tenant_totals(conn, tenant.id)
    new_guests = console_store.new_guests_by_day(conn, tenant.id, since)
    placed = console_store.orders_by_day(conn, tenant.id, since)
    per_day: dict[str, Decimal] = {}
    revenue: dict[str, dict[str, Decimal]] = {}
    for day, currency, count, total in placed:
        per_day[day] = per_day.get(day, Decimal(0)) + count
        revenue.setdefault(currency, {})[day] = _cents(total)
    return Overview(
        totals["guests"],
        totals["customers"],
        totals["orders"],
        [
            (currency, count, _cents(total))
            for currency, count, total in console_store.revenue_by_currency(conn, tenant.id)
        ],
        series({day: Decimal(count) for day, count, _customers in new_guests}),
        series({day: Decimal(customers) for day, _count, customers in new_guests}),
        series(per_day),
        {currency: series(values) for currency, values in sorted(revenue.items())},
    )


def _cents(total: Any) -> Decimal:
    """A sum of money as the store gives it (exact on PostgreSQL, a double on SQLite), to the cent."""
    return Decimal(str(total or 0)).quantize(Decimal("0.01"))
