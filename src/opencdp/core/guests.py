"""Guest records as identity resolution creates and enriches them.

The Guest REST API builds on these; contacts and consumers already need them to link people to guests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection

from opencdp.core import holders
from opencdp.core.errors import NotFound
from opencdp.core.holders import Held
from opencdp.core.models import PERSON_FIELDS
from opencdp.core.tenants import Tenant
from opencdp.core.values import new_ref, parse_timestamp
from opencdp.store import guests as guest_store
from opencdp.store.guests import GUESTS
from opencdp.store.records import Guest

EMAIL = "email"
PERSON_NAMES = tuple(f.name for f in PERSON_FIELDS)
# What a batch guest upsert may also set: when a channel first and last saw the guest.
SEEN_NAMES = ("firstSeen", "lastSeen")
# What one profile can fill in another: person fields and the guest's own language.
FILLABLE = tuple(name for name in (*PERSON_NAMES, "language") if name not in ("emails", "identifiers"))


def normalize_id(provider: str, identifier: str) -> str:
    return identifier.lower() if provider == EMAIL else identifier


def keys_of(person: Mapping[str, Any]) -> list[guest_store.Key]:
    """The lookup keys a person holds: each identifier, and each address in `emails` under provider email."""
    keys: list[guest_store.Key] = [
        (i["provider"], normalize_id(i["provider"], i["id"]), parse_timestamp(i.get("expiryDate")))
        for i in person.get("identifiers") or ()
    ]
    keys += [(EMAIL, address.lower(), None) for address in person.get("emails") or ()]
    return keys


def require(conn: Connection, tenant: Tenant, ref: str) -> Guest:
    """The live guest a ref names: a guest retired by a merge answers with the guest it was merged into."""
    guest = GUESTS.get(conn, tenant.id, ref)
    if guest is not None and guest["mergedInto"]:
        guest = GUESTS.get(conn, tenant.id, guest["mergedInto"])
    if guest is None:
        raise NotFound(f"Guest with ref {ref} for client key {tenant.client_key} was not found")
    return guest


def live_refs(conn: Connection, tenant: Tenant, refs: Iterable[str]) -> dict[str, str]:
    """`require` for many refs at once, by ref: the live guest each names (a ref whose guest is gone is
    left out). A merge leaves no chains: a retired guest names its survivor directly."""
    found = guest_store.merged_into(conn, tenant.id, refs)
    survivors = guest_store.merged_into(conn, tenant.id, {into for into in found.values() if into})
    return {ref: into or ref for ref, into in found.items() if not into or into in survivors}


def create(conn: Connection, tenant: Tenant, guest_type: str, person: Mapping[str, Any], now: datetime) -> str:
    """A new guest from person fields, taking only the identifiers and addresses no live guest holds."""
    record = new_guest(tenant, guest_type, person, holders.held_besides(holders.stored(conn, tenant.id), None), now)
    GUESTS.insert(conn, record)
    guest_store.insert_keys(conn, tenant.id, record["ref"], keys_of(record))
    return str(record["ref"])


def new_guest(tenant: Tenant, guest_type: str, person: Mapping[str, Any], held: Held, now: datetime) -> Guest:
    """A guest made from a person: its person fields, and the language and seen times a batch guest
    upsert may carry (no other person carries them), with only the identifiers no other guest holds.
    Every field is there, an empty one as None, so that new guests' rows all have one shape."""
    values = {name: person.get(name) for name in (*PERSON_NAMES, "language", *SEEN_NAMES)}
    values["identifiers"] = _unheld_identifiers(held, person.get("identifiers") or (), [])
    values["emails"] = _unheld_emails(held, person.get("emails") or (), [])
    values = {name: None if value == [] else value for name, value in values.items()}
    fields = {**values, "ref": new_ref(), "tenantId": tenant.id, "guestType": guest_type, "mergedInto": None}
    return cast(Guest, {**fields, "createdAt": now, "modifiedAt": now})


def enrich(
    conn: Connection,
    tenant: Tenant,
    guest_ref: str,
    person: Mapping[str, Any],
    now: datetime,
    *,
    customer: bool,
    stored: Guest | None = None,
) -> None:
    """Fill what the guest lacks from a person who resolved to it, never overwriting a stored value.
    `stored`: the guest as the caller has just read it in this transaction."""
    guest = stored if stored is not None and stored["ref"] == guest_ref else GUESTS.get(conn, tenant.id, guest_ref)
    assert guest is not None, "identity resolution only returns live guests"
    changes = enrichment(
        guest, person, holders.held_besides(holders.stored(conn, tenant.id), guest_ref), customer=customer
    )
    if changes:
        GUESTS.update(conn, tenant.id, guest_ref, {**changes, "modifiedAt": now})
        guest_store.replace_keys(conn, tenant.id, guest_ref, keys_of({**guest, **changes}))


def enrichment(guest: Mapping[str, Any], person: Mapping[str, Any], held: Held, *, customer: bool) -> dict[str, Any]:
    """What a person who resolved to the guest adds to it: empty fields filled, identifiers and addresses
    no other guest holds, and the customer type."""
    changes: dict[str, Any] = {}
    for name in FILLABLE:
        if guest.get(name) in (None, "", []) and person.get(name) not in (None, "", []):
            changes[name] = person[name]
    stored_ids = guest.get("identifiers") or []
    added_ids = _unheld_identifiers(held, person.get("identifiers") or (), stored_ids)
    if added_ids:
        changes["identifiers"] = stored_ids + added_ids
    stored_emails = guest.get("emails") or []
    added_emails = _unheld_emails(held, person.get("emails") or (), stored_emails)
    if added_emails:
        changes["emails"] = stored_emails + added_emails
    if customer and guest["guestType"] != "customer":
        changes["guestType"] = "customer"
    return changes


def _unheld_identifiers(
    held: Held, sent: Iterable[dict[str, str]], stored: list[dict[str, str]]
) -> list[dict[str, str]]:
    have = {(i["provider"], normalize_id(i["provider"], i["id"])) for i in stored}
    added = []
    for identifier in sent:
        pair = (identifier["provider"], normalize_id(identifier["provider"], identifier["id"]))
        if pair not in have and not held(*pair):
            have.add(pair)
            added.append(dict(identifier))
    return added


def _unheld_emails(held: Held, sent: Iterable[str], stored: list[str]) -> list[str]:
    have = {address.lower() for address in stored}
    added = []
    for address in sent:
        if address.lower() not in have and not held(EMAIL, address.lower()):
            have.add(address.lower())
            added.append(address)
    return added
