"""The identity resolver: which guest a person (contact, consumer, event, batch record) belongs to.

One implementation for every surface, following rest-api.md §6.4 and the identity decisions of the
spec's README: the tenant's rules in priority order, provider compared exactly, email ids without
regard to case, expired identifiers never matching, the earliest-created holder winning.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection

from opencdp.core import guests, holders
from opencdp.core.extensions import extension_ref
from opencdp.core.holders import Holdings
from opencdp.core.tenants import Tenant, identity_rules
from opencdp.core.values import parse_timestamp
from opencdp.store import extensions as extension_store
from opencdp.store import guests as guest_store
from opencdp.store import stream as stream_store
from opencdp.store.database import lock_all
from opencdp.store.guests import GUESTS, Holding
from opencdp.store.rows import Record

CONTACT = "contact"
CONSUMER = "consumer"

Key = tuple[str, str]  # (provider, normalised id)
Match = tuple[str, Key]  # the guest a person resolves to, and the key that proved it


class Guests(Protocol):
    """Where identity resolution asks who holds a key and makes or enriches the guest it decides on: the
    database, one record at a time (`StoredGuests`), or a batch's working set (`IdentityBook`)."""

    @property
    def rules(self) -> Sequence[str]: ...

    @property
    def now(self) -> datetime: ...

    def lock(self, keys: Sequence[Key]) -> None: ...

    def holdings(self, provider: str, key: str) -> Sequence[Holding]: ...

    def enrich(self, guest_ref: str, person: Mapping[str, Any], *, customer: bool) -> None: ...

    def create(self, guest_type: str, person: Mapping[str, Any]) -> str: ...

    def change(self, guest_ref: str, changes: Mapping[str, Any]) -> None: ...


class StoredGuests:
    """`Guests` over the database, in the caller's transaction."""

    def __init__(self, conn: Connection, tenant: Tenant, now: datetime) -> None:
        self.conn, self.tenant, self.now = conn, tenant, now
        self.rules: Sequence[str] = identity_rules(conn, tenant)

    def lock(self, keys: Sequence[Key]) -> None:
        lock_keys(self.conn, self.tenant, keys)

    def holdings(self, provider: str, key: str) -> Sequence[Holding]:
        return guest_store.holdings(self.conn, self.tenant.id, provider, key)

    def enrich(self, guest_ref: str, person: Mapping[str, Any], *, customer: bool) -> None:
        guests.enrich(self.conn, self.tenant, guest_ref, person, self.now, customer=customer)

    def create(self, guest_type: str, person: Mapping[str, Any]) -> str:
        return guests.create(self.conn, self.tenant, guest_type, person, self.now)

    def change(self, guest_ref: str, changes: Mapping[str, Any]) -> None:
        guest = GUESTS.get(self.conn, self.tenant.id, guest_ref)
        assert guest is not None, "identity resolution only returns live guests"
        GUESTS.modify(self.conn, guest, changes, self.now)


def candidates(person: Mapping[str, Any], now: datetime) -> list[Key]:
    """Unexpired identifiers in body order, then each address in `emails` as an email identifier."""
    found = []
    for identifier in person.get("identifiers") or ():
        expiry = parse_timestamp(identifier.get("expiryDate"))
        if expiry is None or expiry > now:
            found.append((identifier["provider"], identifier["id"]))
    found += [(guests.EMAIL, address) for address in person.get("emails") or ()]
    return found


def rule_keys(rules: Sequence[str], person: Mapping[str, Any], now: datetime) -> list[Key]:
    """The person's unexpired (provider, normalised id) keys that some identity rule looks at."""
    return [(p, guests.normalize_id(p, i)) for p, i in candidates(person, now) if p in rules]


def first_match(
    rules: Sequence[str], keyed: Sequence[Key], holdings: Holdings, now: datetime, *, besides: str | None = None
) -> Match | None:
    """The identity rules: rules in priority order, each key of the rule's provider in body order; the first
    key that resolves to a guest (`holders.earliest_live`, never `besides`) decides."""
    for rule in rules:
        for provider, key in keyed:
            if provider == rule:
                found = holders.earliest_live(holdings(provider, key), now, besides=besides)
                if found is not None:
                    return found, (provider, key)
    return None


def holder(book: Guests, person: Mapping[str, Any]) -> str | None:
    """The live guest the tenant's identity rules say this person is, or None.

    The person's keys are locked first (in a fixed order, so two writers cannot deadlock), which makes
    "look up, then create or claim" atomic per identifier on PostgreSQL as it already is on SQLite.
    """
    keyed = rule_keys(book.rules, person, book.now)
    book.lock(keyed)
    match = first_match(book.rules, keyed, book.holdings, book.now)
    return match[0] if match else None


def link(
    book: Guests, person: Mapping[str, Any], role: str, hit: str | None, contact: Mapping[str, Any] | None = None
) -> str:
    """The guest a contact or consumer links to, given who it resolved to (`hit`, or no one): the guest it
    resolved to, enriched; a consumer who is the order's contact, the contact's guest; else a new guest."""
    if hit is not None:
        book.enrich(hit, person, customer=role == CONTACT)
        return hit
    if consumer_of_contact(role, person, contact):
        assert contact is not None
        return str(contact["guestRef"])
    return book.create(guest_type(role), person)


def upsert(book: Guests, hit: str | None, person: Mapping[str, Any]) -> str:
    """What a guest upsert does with the guest it resolved to (`hit`, or no one): each field sent replaces
    the stored one, and identifiers and addresses are added as enrichment adds them (never taken from
    another guest); with no one, the person is a new customer."""
    if hit is None:
        return book.create("customer", person)
    changes = {name: value for name, value in person.items() if name not in ("identifiers", "emails")}
    if changes:
        book.change(hit, changes)
    book.enrich(hit, {name: person.get(name) for name in ("identifiers", "emails")}, customer=True)
    return hit


def resolve(conn: Connection, tenant: Tenant, person: Mapping[str, Any], now: datetime) -> str | None:
    """`holder` over the database."""
    return holder(StoredGuests(conn, tenant, now), person)


def lock_keys(conn: Connection, tenant: Tenant, keys: Iterable[Key]) -> None:
    """Lock identifier keys in one statement and a fixed order (the batch import's too), so that two
    writers claiming the same ones cannot deadlock."""
    lock_all(conn, (f"identity:{tenant.id}:{provider}:{key}" for provider, key in keys))


def link_person(
    conn: Connection,
    tenant: Tenant,
    person: Mapping[str, Any],
    role: str,
    now: datetime,
    *,
    contact: Mapping[str, Any] | None = None,
) -> str:
    """`link` over the database: the guest a contact or consumer links to, enriched or created."""
    hit = resolve(conn, tenant, person, now)
    return link(StoredGuests(conn, tenant, now), person, role, hit, contact)


def consumer_of_contact(role: str, person: Mapping[str, Any], contact: Mapping[str, Any] | None) -> bool:
    """A consumer no rule places, named as the order's contact, is the contact's guest."""
    return role == CONSUMER and contact is not None and bool(contact.get("guestRef")) and same_name(person, contact)


def guest_type(role: str) -> str:
    """A contact is the customer who bought; a consumer is a traveller until a purchase of their own."""
    return "customer" if role == CONTACT else "traveller"


def same_name(person: Mapping[str, Any], other: Mapping[str, Any]) -> bool:
    return all(
        str(person.get(name) or "").casefold() == str(other.get(name) or "").casefold()
        for name in ("firstName", "lastName")
    )


def merge(
    conn: Connection,
    tenant: Tenant,
    survivor_ref: str,
    retired_ref: str,
    identifier: tuple[str, str],
    source: str,
    now: datetime,
    *,
    copy_profile: bool = True,
) -> None:
    """Retire one guest into another that proved to be the same person, in the caller's transaction.

    The survivor keeps its values and takes the retired guest's identifiers and addresses, order roles,
    browsers, sessions and events. With `copy_profile` (the REST merge) the retired guest also fills the
    survivor's empty fields and hands over the extension groups the survivor lacks; a Stream IDENTITY
    merge copies neither (stream-api.md §4.2). The retired ref stays as an alias pointing at the
    survivor, as do the guests retired into it before (one hop).
    """
    retired = GUESTS.get(conn, tenant.id, retired_ref)
    survivor = GUESTS.get(conn, tenant.id, survivor_ref)
    assert retired is not None and survivor is not None, "merge is only called with live guests"
    guest_store.replace_keys(conn, tenant.id, retired_ref, [])
    customer = "customer" in (retired["guestType"], survivor["guestType"]) or identifier[0] in identity_rules(
        conn, tenant
    )
    profile = retired if copy_profile else {name: retired.get(name) for name in ("emails", "identifiers")}
    guests.enrich(conn, tenant, survivor_ref, profile, now, customer=customer)
    seen = [stamp for stamp in (retired["firstSeen"], survivor["firstSeen"]) if stamp]
    last = [stamp for stamp in (retired["lastSeen"], survivor["lastSeen"]) if stamp]
    if seen:
        GUESTS.update(conn, tenant.id, survivor_ref, {"firstSeen": min(seen), "lastSeen": max(last)})
    guest_store.move_roles(conn, tenant.id, retired_ref, survivor_ref)
    stream_store.move_guest(conn, tenant.id, retired_ref, survivor_ref)
    if copy_profile:
        _move_extensions(conn, tenant, retired_ref, survivor_ref)
    GUESTS.update(conn, tenant.id, retired_ref, {"mergedInto": survivor_ref, "modifiedAt": now})
    guest_store.repoint_retired(conn, tenant.id, retired_ref, survivor_ref)
    guest_store.insert_merge(
        conn,
        {
            "tenant_id": tenant.id,
            "survivor_ref": survivor_ref,
            "retired_ref": retired_ref,
            "provider": identifier[0],
            "identifier": identifier[1],
            "source": source,
            "merged_at": now,
        },
    )


def _move_extensions(conn: Connection, tenant: Tenant, from_ref: str, to_ref: str) -> None:
    """Groups the survivor lacks move over when none of their keys is already the survivor's."""
    kept = extension_store.of_owner(conn, tenant.id, to_ref)
    names = {group["name"] for group in kept}
    keys = {key for group in kept for key in group["data"]}
    for group in extension_store.of_owner(conn, tenant.id, from_ref):
        if group["name"] not in names and not keys & set(group["data"]):
            new_ref = extension_ref(to_ref, group["name"])
            extension_store.move(conn, tenant.id, group["ref"], to_ref, new_ref)
            keys |= set(group["data"])


def merges_of(conn: Connection, tenant: Tenant, guest_ref: str) -> list[Record]:
    return guest_store.merges_of(conn, tenant.id, guest_ref)
