"""Guest upserts of a chunk applied together: the set-based path of the guest upsert record.

A CRM's feed is a file of guest upserts. For a run of them the chunk asks each question once (applied
before? who holds these identifiers, and which guests are they? which extension groups do those guests
have? which type does each extension key hold?), decides every record in file order by the same rules as
`records.guest_upsert` (`records.guest_fields`, `records.guest_groups`, `identity.holder` and `upsert`,
`guests.new_guest` and `enrichment`, `extensions.check_beside` and `first_clash`), and writes each table
in one statement. A record refused by a rule leaves nothing behind, as its savepoint would.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import Connection

from opencdp.core import extensions, identity
from opencdp.core.batch import records
from opencdp.core.batch.identities import IdentityBook
from opencdp.core.batch.key_types import KeyTypes
from opencdp.core.batch.lines import Envelope, Outcome
from opencdp.core.errors import ApiError
from opencdp.core.tenants import Tenant
from opencdp.store import batches as batch_store
from opencdp.store import extensions as extension_store
from opencdp.store.database import planned_each_time
from opencdp.store.extensions import EXTENSIONS
from opencdp.store.rows import Record

GUEST = "guest"


@dataclass
class GuestEntry:
    """A guest upsert as checked without the database (on whichever process checked its chunk)."""

    number: int
    envelope: Envelope
    fields: dict[str, Any] | None = None
    groups: Any = None  # `extensions` as sent: each group is checked when applied, beside the guest's others
    outcome: Outcome | None = None  # refused without the database


def check(number: int, envelope: Envelope, value: Any) -> GuestEntry | None:
    """Everything about a guest upsert that needs no database; None for any other record."""
    if envelope.schema != GUEST or envelope.mode != "upsert" or not isinstance(value, dict):
        return None
    entry = GuestEntry(number, envelope)
    try:
        entry.fields, entry.groups = records.guest_fields(value)
    except Exception as error:  # reported as the record-by-record path reports it
        entry.outcome = envelope.failure(error)
    return entry


def apply(conn: Connection, tenant: Tenant, run: list[GuestEntry], now: datetime) -> list[tuple[int, Outcome]]:
    """Apply a run of checked guest upserts in file order, and write what they did."""
    with planned_each_time(conn):
        return _Run(conn, tenant, run, now).apply()


class _Run:
    """The guests, extension groups and key types a run can reach, read once, kept current as it goes."""

    def __init__(self, conn: Connection, tenant: Tenant, run: list[GuestEntry], now: datetime) -> None:
        self.conn, self.tenant, self.now, self.run = conn, tenant, now, run
        self.applied = batch_store.registered_among(conn, tenant.id, [entry.envelope.ref for entry in run])
        todo = [entry for entry in run if entry.fields is not None and _done(entry) not in self.applied]
        self.book = IdentityBook(conn, tenant, [entry.fields for entry in todo if entry.fields], now)
        self.groups: dict[str, dict[str, Record]] = {}
        for group in extension_store.of_owners(conn, tenant.id, self.book.stored()):
            self.groups.setdefault(group["ownerRef"], {})[group["name"]] = group
        keys = {key for entry in todo for key in _keys_sent(entry.groups)}
        self.types = KeyTypes(conn, tenant, {GUEST: keys})
        self.created: dict[str, Record] = {}
        self.changed: dict[str, dict[str, Any]] = {}
        self.registry: list[tuple[str, str]] = []

    def apply(self) -> list[tuple[int, Outcome]]:
        outcomes = []
        for entry in self.run:
            envelope = entry.envelope
            if _done(entry) in self.applied:
                outcomes.append((entry.number, envelope.outcome(skipped=True)))
            elif entry.outcome is not None:
                outcomes.append((entry.number, entry.outcome))
            else:
                try:
                    self._add(entry)
                except ApiError as error:
                    outcomes.append((entry.number, envelope.failure(error)))
                    continue
                self.applied.add(_done(entry))
                self.registry.append(_done(entry))
                outcomes.append((entry.number, envelope.outcome()))
        self._write()
        return outcomes

    def _add(self, entry: GuestEntry) -> None:
        """One record, decided as `records.guest_upsert` decides it; nothing is kept if a rule refuses it."""
        fields = entry.fields
        assert fields is not None
        records.identifying(self.book.rules, fields, self.now)
        hit = identity.holder(self.book, fields)
        beside = {name: group["data"] for name, group in self.groups.get(hit or "", {}).items()}
        fresh: dict[str, dict[str, str]] = {}
        sent: dict[str, dict[str, Any]] = {}
        if entry.groups is not None:
            for path, name, pairs in records.guest_groups(entry.groups):
                records.validation(path, partial(self._check, name, pairs, dict(sorted(beside.items())), fresh))
                beside[name] = sent[name] = pairs
        self.types.keep(fresh)
        guest_ref = identity.upsert(self.book, hit, fields)
        for name, pairs in sent.items():
            self._put(guest_ref, name, pairs)

    def _check(
        self, name: str, pairs: dict[str, Any], beside: dict[str, Any], fresh: dict[str, dict[str, str]]
    ) -> None:
        """`extensions._check_rules` for a group sent whole, answered from memory."""
        extensions.check_beside(name, pairs, beside)
        if (clash := self.types.clash(GUEST, pairs, fresh)) is not None:
            raise extensions.IncorrectType(clash)

    def _put(self, guest_ref: str, name: str, pairs: dict[str, Any]) -> None:
        """A group sent replaces that group whole, or is created."""
        groups = self.groups.setdefault(guest_ref, {})
        current = groups.get(name)
        if current is None:
            owner = extensions.Owner(GUEST, guest_ref, "Guest")
            current = extensions.extension_record(self.tenant, owner, name, pairs, self.now)
            self.created[current["ref"]] = current
        else:
            current = {**current, "data": pairs, "modifiedAt": self.now}
            if current["ref"] in self.created:
                self.created[current["ref"]] = current
            else:
                self.changed[current["ref"]] = {"data": pairs, "modifiedAt": self.now}
        groups[name] = current

    def _write(self) -> None:
        self.book.write(self.conn)
        self.types.write(self.conn)
        EXTENSIONS.insert_many(self.conn, list(self.created.values()))
        EXTENSIONS.update_many(self.conn, self.tenant.id, self.changed)
        batch_store.register_all(self.conn, self.tenant.id, self.registry, self.now)


def _done(entry: GuestEntry) -> tuple[str, str]:
    """How the registry knows a record was applied: its ref and its line's digest."""
    return entry.envelope.ref, entry.envelope.digest


def _keys_sent(groups: Any) -> set[str]:
    """Every key the extension groups of a record may set, read leniently: their checks come later."""
    if not isinstance(groups, list):
        return set()
    return {key for group in groups if isinstance(group, dict) for key in group if key not in ("name", "key")}
