"""Identity resolution for a chunk of batch records, answered from keys read once for the whole chunk.

The rules are those of `core.identity`, `core.holders` and `core.guests` (the same functions decide: the
book is an `identity.Guests`, as the database is); only the questions "who holds this key" and "what does
this guest hold" are answered from memory: the live
holders of every key the chunk's people carry are read in one query, their guests in another, and each
guest the chunk creates or enriches updates that memory before the next record asks. The guests and keys
are written at the end, each table in one statement.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection

from opencdp.core import guests, holders, identity
from opencdp.core.holders import Held
from opencdp.core.tenants import Tenant, identity_rules
from opencdp.store import guests as guest_store
from opencdp.store.guests import GUESTS, Holding
from opencdp.store.records import Guest

KeyPair = tuple[str, str]  # (provider, normalised id)


def keys_carried(person: Mapping[str, Any]) -> list[KeyPair]:
    """Every key a person names, expired or not: resolution reads some, and "held by another" reads all."""
    return [(provider, key) for provider, key, _expiry in guests.keys_of(person)]


class IdentityBook:
    """The guests and key holders a chunk's people can reach, kept current as the chunk is applied."""

    def __init__(self, conn: Connection, tenant: Tenant, people: Iterable[Mapping[str, Any]], now: datetime) -> None:
        self.tenant = tenant
        self.now = now
        self.rules = identity_rules(conn, tenant)
        everyone = list(people)
        locked = {key for person in everyone for key in identity.rule_keys(self.rules, person, now)}
        identity.lock_keys(conn, tenant, locked)
        pairs = {guest_store.digest(*pair): pair for person in everyone for pair in keys_carried(person)}
        held = guest_store.holders_of_keys(conn, tenant.id, pairs)
        refs = sorted({guest_ref for _digest, guest_ref, _expiry in held})
        rows = GUESTS.get_many(conn, tenant.id, refs)
        self._guests: dict[str, Guest] = {row["ref"]: row for row in rows if not row["mergedInto"]}
        self._holders: dict[KeyPair, dict[str, Holding]] = {}  # each key's holdings, by guest
        for digest, guest_ref, expiry in held:
            if guest_ref in self._guests:
                holding = (guest_ref, self._guests[guest_ref]["createdAt"], expiry)
                self._holders.setdefault(pairs[digest], {})[guest_ref] = holding
        self._created: set[str] = set()
        self._changes: dict[str, dict[str, Any]] = {}

    def lock(self, keys: Sequence[identity.Key]) -> None:
        """Nothing to do: every key the chunk's people carry was locked when the book was opened."""

    def holdings(self, provider: str, key: str) -> list[Holding]:
        """`store.guests.holdings`, answered from memory: the live guests holding the key, expired or not."""
        held = self._holders.get((provider, key))
        return list(held.values()) if held else []

    def create(self, guest_type: str, person: Mapping[str, Any]) -> str:
        """`guests.create`, in memory."""
        record = guests.new_guest(self.tenant, guest_type, person, self._held_besides(None), self.now)
        self._guests[record["ref"]] = record
        self._created.add(record["ref"])
        self._hold(record)
        return str(record["ref"])

    def stored(self) -> list[str]:
        """The stored guests the run's people can reach (read when the book was opened)."""
        return [ref for ref in self._guests if ref not in self._created]

    def enrich(self, guest_ref: str, person: Mapping[str, Any], *, customer: bool) -> None:
        """`guests.enrich`, in memory."""
        changes = guests.enrichment(self._guests[guest_ref], person, self._held_besides(guest_ref), customer=customer)
        if changes:
            self._change(guest_ref, {**changes, "modifiedAt": self.now})

    def write(self, conn: Connection) -> None:
        """The guests created and changed, and their keys: one statement per table and set of fields."""
        GUESTS.insert_many(conn, [self._guests[ref] for ref in self._created])
        GUESTS.update_many(conn, self.tenant.id, {r: c for r, c in self._changes.items() if r not in self._created})
        touched = self._created | set(self._changes)
        keys = {ref: guests.keys_of(self._guests[ref]) for ref in sorted(touched)}
        guest_store.replace_keys_of(conn, self.tenant.id, keys, fresh=self._created)

    def _held_besides(self, guest_ref: str | None) -> Held:
        return holders.held_besides(self.holdings, guest_ref)

    def change(self, guest_ref: str, changes: Mapping[str, Any]) -> None:
        """`GUESTS.modify`, in memory."""
        self._change(guest_ref, {**changes, "modifiedAt": self.now})

    def _change(self, guest_ref: str, changes: Mapping[str, Any]) -> None:
        self._guests[guest_ref] = cast(Guest, {**self._guests[guest_ref], **changes})
        self._changes.setdefault(guest_ref, {}).update(changes)
        self._hold(self._guests[guest_ref])

    def _hold(self, guest: Guest) -> None:
        for provider, key, expiry in guests.keys_of(guest):
            self._holders.setdefault((provider, key), {})[guest["ref"]] = (guest["ref"], guest["createdAt"], expiry)
