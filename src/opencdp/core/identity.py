"""The identity resolver: which guest a person (contact, consumer, event, batch record) belongs to.

One implementation for every surface, following rest-api.md §6.4 and the identity decisions of the
spec's README: the tenant's rules in priority order, provider compared exactly, email ids without
regard to case, expired identifiers never matching, the earliest-created holder winning.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from opencdp.core import guests
from opencdp.core.extensions import extension_ref
from opencdp.core.tenants import Tenant, identity_rules
from opencdp.core.values import parse_timestamp
from opencdp.store import extensions as extension_store
from opencdp.store import guests as guest_store
from opencdp.store import stream as stream_store
from opencdp.store.database import lock_all
from opencdp.store.guests import GUESTS
from opencdp.store.rows import Record

CONTACT = "contact"
CONSUMER = "consumer"


def candidates(person: Mapping[str, Any], now: datetime) -> list[tuple[str, str]]:
    """Unexpired identifiers in body order, then each address in `emails` as an email identifier."""
    found = []
    for identifier in person.get("identifiers") or ():
        expiry = parse_timestamp(identifier.get("expiryDate"))
        if expiry is None or expiry > now:
            found.append((identifier["provider"], identifier["id"]))
    found += [(guests.EMAIL, address) for address in person.get("emails") or ()]
    return found


def resolve(conn: Connection, tenant: Tenant, person: Mapping[str, Any], now: datetime) -> str | None:
    """The live guest the tenant's identity rules say this person is, or None.

    Every candidate key is locked first (in a fixed order, so two writers cannot deadlock), which makes
    "look up, then create or claim" atomic per identifier on PostgreSQL as it already is on SQLite.
    """
    rules = identity_rules(conn, tenant)
    keyed = rule_keys(rules, person, now)
    lock_keys(conn, tenant, keyed)
    return first_holder(
        rules, keyed, lambda provider, key: guest_store.find_holder(conn, tenant.id, provider, key, now)
    )


def rule_keys(rules: Sequence[str], person: Mapping[str, Any], now: datetime) -> list[tuple[str, str]]:
    """The person's unexpired (provider, normalised id) keys that some identity rule looks at."""
    return [(p, guests.normalize_id(p, i)) for p, i in candidates(person, now) if p in rules]


def first_holder(
    rules: Sequence[str], keyed: Sequence[tuple[str, str]], holder: Callable[[str, str], str | None]
) -> str | None:
    """Rules in priority order, each key of the rule's provider in body order: the first key held wins."""
    for rule in rules:
        for provider, key in keyed:
            if provider == rule:
                found = holder(provider, key)
                if found is not None:
                    return found
    return None


def lock_keys(conn: Connection, tenant: Tenant, keys: Iterable[tuple[str, str]]) -> None:
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
    """The guest a contact or consumer links to, enriched or created as the rules say."""
    return link_resolved(conn, tenant, person, role, now, resolve(conn, tenant, person, now), contact=contact)


def link_resolved(
    conn: Connection,
    tenant: Tenant,
    person: Mapping[str, Any],
    role: str,
    now: datetime,
    hit: str | None,
    *,
    contact: Mapping[str, Any] | None = None,
) -> str:
    """`link_person` for a person its caller has already resolved (to `hit`, or to no one)."""
    if hit is not None:
        guests.enrich(conn, tenant, hit, person, now, customer=role == CONTACT)
        return hit
    if consumer_of_contact(role, person, contact):
        assert contact is not None
        return str(contact["guestRef"])
    return guests.create(conn, tenant, guest_type(role), person, now)


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
