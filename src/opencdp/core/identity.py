"""The identity resolver: which guest a person (contact, consumer, event, batch record) belongs to.

One implementation for every surface, following rest-api.md §6.4 and the identity decisions of the
spec's README: the tenant's rules in priority order, provider compared exactly, email ids without
regard to case, expired identifiers never matching, the earliest-created holder winning.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from opencdp.core import guests
from opencdp.core.tenants import Tenant
from opencdp.core.values import parse_timestamp
from opencdp.store import guests as store
from opencdp.store.database import lock

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
    keyed = [(p, guests.normalize_id(p, i)) for p, i in candidates(person, now) if p in tenant.identity_rules]
    for provider, key in sorted(set(keyed)):
        lock(conn, f"identity:{tenant.id}:{provider}:{key}")
    for rule in tenant.identity_rules:
        for provider, key in keyed:
            if provider == rule:
                holder = store.find_holder(conn, tenant.id, provider, key, now)
                if holder is not None:
                    return holder
    return None


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
    hit = resolve(conn, tenant, person, now)
    if hit is not None:
        guests.enrich(conn, tenant, hit, person, now, customer=role == CONTACT)
        return hit
    if role == CONSUMER and contact is not None and contact.get("guestRef") and _same_name(person, contact):
        return str(contact["guestRef"])
    return guests.create(conn, tenant, "customer" if role == CONTACT else "traveller", person, now)


def _same_name(person: Mapping[str, Any], other: Mapping[str, Any]) -> bool:
    return all(
        str(person.get(name) or "").casefold() == str(other.get(name) or "").casefold()
        for name in ("firstName", "lastName")
    )
