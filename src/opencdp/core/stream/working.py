"""A batch of journal entries' working set: the rows it reads once per table and writes once per table.

The applier decides each event in order against rows read together for the whole batch (the browsers,
the live guests owning them, their open sessions) and collects the rows the events make and change;
`flush` writes them table by table. An event whose rules act through the database (identity, a checkout,
a payment) asks for the connection with `through_database`: what is pending is written first, and the
rows such an event may have changed are read again before the next event uses them. Those are its own
browser (a switch moves it to another guest and closes its session) and the batch's browsers of its
guest: the only guest a Stream event's rules can retire is the one owning the event's browser (an
IDENTITY or a checkout merging a visitor into the guest that holds its identifier).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection

from opencdp.core import guests
from opencdp.core.errors import ApiError
from opencdp.core.tenants import Tenant
from opencdp.store import stream as stream_store
from opencdp.store.rows import Record
from opencdp.store.stream import BROWSERS, EVENTS, SESSIONS


class WorkingSet:
    """The rows a batch of a tenant's journal entries reads and writes."""

    def __init__(self, conn: Connection, tenant: Tenant, browser_refs: Iterable[str]) -> None:
        self.conn = conn
        self.tenant = tenant
        self._browsers: dict[str, Record] = {}
        self._live_guests: dict[str, str] = {}
        self._open: dict[tuple[str, str], Record] = {}
        self._to_read = set(browser_refs)
        self._guests_to_check: set[str] = set()
        self._new_sessions: dict[str, Record] = {}
        self._changed_sessions: dict[str, dict[str, Any]] = {}
        self._changed_browsers: dict[str, dict[str, Any]] = {}
        self._events: list[Record] = []

    def _read(self) -> None:
        """Read the browsers still to read, their live guests and their open sessions, a statement each,
        and look up again the guests an event may have retired. What is pending is written first, so that
        it is what is read."""
        self.flush()
        refs, self._to_read = sorted(self._to_read), set()
        found = BROWSERS.get_many(self.conn, self.tenant.id, refs) if refs else []
        for ref in refs:
            self._browsers.pop(ref, None)
        self._browsers.update((browser["ref"], browser) for browser in found)
        owners = self._guests_to_check | {browser["guestRef"] for browser in found}
        self._guests_to_check = set()
        for ref in owners:
            self._live_guests.pop(ref, None)
        self._live_guests.update(guests.live_refs(self.conn, self.tenant, owners))
        if refs:
            read = set(refs)
            for key in [key for key in self._open if key[0] in read]:
                del self._open[key]
            self._open.update(stream_store.open_sessions(self.conn, self.tenant.id, refs))

    def _stale(self) -> bool:
        return bool(self._to_read or self._guests_to_check)

    def browser(self, ref: str) -> Record:
        """A browser of the batch (404 when it is gone: deleted with its guest after the event came)."""
        if self._stale():
            self._read()
        browser = self._browsers.get(ref)
        if browser is None:
            raise ApiError(f"Browser {ref} was not found", status=404)
        return browser

    def guest_ref(self, browser: Record) -> str:
        """The live guest owning a browser of the batch now (after a merge, the survivor)."""
        if self._stale():
            self._read()
        live = self._live_guests.get(browser["guestRef"])
        if live is None:
            raise ApiError(f"Guest with ref {browser['guestRef']} for client key {self.tenant.client_key} "
                           "was not found", status=404)  # fmt: skip
        return live

    def open_session(self, browser_ref: str, channel: str) -> Record | None:
        if self._stale():
            self._read()
        return self._open.get((browser_ref, channel))

    def insert_session(self, session: Record) -> None:
        self._new_sessions[session["ref"]] = session
        self._open[(session["browserRef"], session["channel"])] = session

    def update_session(self, session: Record, changes: Mapping[str, Any]) -> Record:
        """Change a session; one that closes leaves the open sessions. Returns the session as it now stands."""
        changed = {**session, **changes}
        if changed["ref"] in self._new_sessions:
            self._new_sessions[changed["ref"]] = changed
        else:
            self._changed_sessions.setdefault(changed["ref"], {}).update(changes)
        key = (changed["browserRef"], changed["channel"])
        if changed["status"] == stream_store.OPEN:
            self._open[key] = changed
        elif self._open.get(key, {}).get("ref") == changed["ref"]:
            del self._open[key]
        return changed

    def update_browser(self, browser: Record, changes: Mapping[str, Any]) -> None:
        self._changed_browsers.setdefault(browser["ref"], {}).update(changes)
        current = self._browsers.get(browser["ref"])
        if current is not None:  # as read last, which may be newer than the caller's copy
            self._browsers[browser["ref"]] = {**current, **changes}

    def add_event(self, event: Record) -> None:
        self._events.append(event)

    def through_database(self, browser: Record, *, may_switch: bool = False) -> Connection:
        """The connection, for the rules of an event of `browser` that read and write through it. What is
        pending is written first. Before the next event, the guest owning the browser is looked up again
        (a merge may have retired it into another), and with `may_switch` (an IDENTITY) the browser and
        its open sessions are read again (a switch moves it to another guest and closes its session)."""
        self.flush()
        self._guests_to_check.add(browser["guestRef"])
        if may_switch:
            self._to_read.add(browser["ref"])
        return self.conn

    def flush(self) -> None:
        """Write what the batch made and changed, table by table (events last: they name their session)."""
        tenant_id = self.tenant.id
        if self._new_sessions:
            SESSIONS.insert_many(self.conn, list(self._new_sessions.values()))
        if self._changed_sessions:
            SESSIONS.update_many(self.conn, tenant_id, self._changed_sessions)
        if self._changed_browsers:
            BROWSERS.update_many(self.conn, tenant_id, self._changed_browsers)
        if self._events:
            EVENTS.insert_many(self.conn, self._events)
        self._new_sessions, self._changed_sessions, self._changed_browsers, self._events = {}, {}, {}, []
