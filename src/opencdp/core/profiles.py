"""The Guest REST API's operations on guests (rest-api.md §5.6, §6.5, §6.6).

`POST /guests` stores a guest as sent and never de-duplicates. A PUT or PATCH that gives a guest an
identifier another live guest holds is an identity event: under a rule provider the guest is merged
into the holder (the response then shows the survivor); otherwise, or when both are known customers,
it is refused, so no update ever leaves two live guests holding one identifier.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection

from opencdp.core import guests, holders, identity
from opencdp.core.errors import ApiError, InvalidField, InvalidParameter
from opencdp.core.fields import Mode, parse_ref, validate
from opencdp.core.models import GUEST
from opencdp.core.orders import delete_order
from opencdp.core.tenants import Tenant, identity_rules
from opencdp.core.values import new_ref
from opencdp.store import extensions as extension_store
from opencdp.store import guests as guest_store
from opencdp.store import stream as stream_store
from opencdp.store.database import lock
from opencdp.store.guests import GUESTS
from opencdp.store.records import Guest
from opencdp.store.rows import Record, SortTerm


def _values(body: Mapping[str, Any], mode: Mode) -> dict[str, Any]:
    """Validated guest fields; the deprecated `email` stands for `emails: [email]` when `emails` is absent."""
    values = validate(GUEST, body, mode)
    alias = values.pop("email", None)
    values.pop("subscriptions", None)
    if alias is not None and not body.get("emails"):
        if "@" not in alias.strip("@") or " " in alias:
            raise InvalidField("email")
        values["emails"] = [alias]
    return values


def create(conn: Connection, tenant: Tenant, body: Mapping[str, Any], now: datetime) -> Guest:
    values = _values(body, Mode.CREATE)
    fresh = {**values, "ref": new_ref(), "tenantId": tenant.id, "mergedInto": None, "firstSeen": None}
    record = cast(Guest, {**fresh, "lastSeen": None, "createdAt": now, "modifiedAt": now})
    GUESTS.insert(conn, record)
    guest_store.replace_keys(conn, tenant.id, record["ref"], guests.keys_of(values))
    return record


def update(
    conn: Connection, tenant: Tenant, ref: str, body: Mapping[str, Any], mode: Mode, now: datetime, source: str
) -> Guest:
    guests.require(conn, tenant, ref)
    values = _values(body, mode)
    identity.lock_keys(conn, tenant, [(p, k) for p, k, _ in guests.keys_of(values)])
    guest = _locked(conn, tenant, ref)
    updated: dict[str, Any] = {**guest, **values}
    survivor = _claim(conn, tenant, guest, updated, now)
    if "guestType" not in body and _gains_rule_identifier(conn, tenant, guest, updated):
        values["guestType"] = updated["guestType"] = "customer"
    record = GUESTS.modify(conn, guest, values, now)
    guest_store.replace_keys(conn, tenant.id, guest["ref"], guests.keys_of(updated))
    if survivor is None:
        return record
    identity.merge(conn, tenant, survivor[0], guest["ref"], survivor[1], source, now)
    return guests.require(conn, tenant, survivor[0])


def _locked(conn: Connection, tenant: Tenant, ref: str) -> Guest:
    """The guest a ref leads to, read again under a lock of its own: a concurrent merge may have
    retired it since the first read, and then the guest it now leads to is the one to change."""
    while True:
        guest = guests.require(conn, tenant, ref)
        lock(conn, f"guest:{guest['ref']}")
        fresh = guests.require(conn, tenant, ref)
        if fresh["ref"] == guest["ref"]:
            return fresh


def _claim(
    conn: Connection, tenant: Tenant, guest: Guest, updated: Mapping[str, Any], now: datetime
) -> tuple[str, tuple[str, str]] | None:
    """The guest this one must merge into, with the identifier that proves it, or None.

    Only identifiers and addresses the update adds are looked at: what the guest already held stays as is.
    """
    before = {(p, k) for p, k, _ in guests.keys_of(guest)}
    added = [(p, k, expiry) for p, k, expiry in guests.keys_of(updated) if (p, k) not in before]
    identity.lock_keys(conn, tenant, [(p, k) for p, k, _ in added])
    rules = identity_rules(conn, tenant)
    target: tuple[str, tuple[str, str]] | None = None
    for provider, key, expiry in sorted(added, key=lambda k: rules.index(k[0]) if k[0] in rules else len(rules)):
        held = guest_store.holdings(conn, tenant.id, provider, key)
        if not holders.taken(held, guest["ref"]):
            continue
        live = expiry is None or expiry > now
        holder = holders.earliest_live(held, now, besides=guest["ref"])
        if provider not in rules or not live or holder is None:
            raise _held(updated, provider, key, "held by another guest")
        if _known_customer_of(guest, provider, key):
            raise _held(updated, provider, key, "held by another customer")
        if target is None:
            target = (holder, (provider, key))
        elif target[0] != holder:
            raise _held(updated, provider, key, "held by another guest")
    return target


def _gains_rule_identifier(conn: Connection, tenant: Tenant, guest: Guest, updated: Mapping[str, Any]) -> bool:
    """A guest that gains an identifier of a rule provider is a known customer from then on."""
    rules = identity_rules(conn, tenant)
    before = {(p, k) for p, k, _ in guests.keys_of(guest)}
    return guest["guestType"] != "customer" and any(
        p in rules and (p, k) not in before for p, k, _ in guests.keys_of(updated)
    )


def _known_customer_of(guest: Guest, provider: str, key: str) -> bool:
    """Two known customers are never merged: this guest already holds another id of the provider."""
    if guest["guestType"] != "customer":
        return False
    return any(p == provider and k != key for p, k, _ in guests.keys_of(guest))


def _held(updated: Mapping[str, Any], provider: str, key: str, reason: str) -> ApiError:
    for index, identifier in enumerate(updated.get("identifiers") or ()):
        if identifier["provider"] == provider and guests.normalize_id(provider, identifier["id"]) == key:
            return InvalidField(f"identifiers[{index}]", reason)
    for index, address in enumerate(updated.get("emails") or ()):
        if provider == guests.EMAIL and address.lower() == key:
            return InvalidField(f"emails[{index}]", reason)
    return InvalidField("identifiers", reason)


def delete(conn: Connection, tenant: Tenant, ref: str) -> None:
    """Delete a guest with its extensions, keys, browsers, sessions and events, the orders it is the
    contact of, its consumer records on other orders, and the guests retired into it."""
    guest = guests.require(conn, tenant, ref)
    doomed = [guest["ref"], *guest_store.retired_into(conn, tenant.id, guest["ref"])]
    for guest_ref in doomed:
        for order_ref in guest_store.contact_order_refs(conn, tenant.id, guest_ref):
            delete_order(conn, tenant, order_ref)
        guest_store.delete_roles(conn, tenant.id, guest_ref)
    stream_store.delete_of_guests(conn, tenant.id, doomed)
    extension_store.delete_of_owners(conn, tenant.id, doomed)
    guest_store.delete_merges(conn, tenant.id, doomed)
    for guest_ref in doomed:
        GUESTS.delete(conn, tenant.id, guest_ref)


SEARCH_PARAMETERS = ("email", "identifiers.provider", "identifiers.id", "orderReferenceId", "orderRef")


def search(
    conn: Connection,
    tenant: Tenant,
    filters: Mapping[str, str],
    sort: Sequence[SortTerm],
    offset: int,
    limit: int,
) -> tuple[int, list[Record]]:
    """Live guests matching every filter given (exact; e-mail without regard to case)."""
    provider, identifier = filters.get("identifiers.provider"), filters.get("identifiers.id")
    if (provider is None) != (identifier is None):
        missing = "identifiers.id" if identifier is None else "identifiers.provider"
        raise InvalidParameter(missing, "identifiers.provider and identifiers.id come together")
    keys: list[tuple[str, str]] = []
    if filters.get("email") is not None:
        keys.append((guests.EMAIL, filters["email"].lower()))
    if provider is not None and identifier is not None:
        keys.append((provider, guests.normalize_id(provider, identifier)))
    in_orders = []
    if filters.get("orderReferenceId") is not None:
        in_orders.append(guest_store.orders_with_reference(tenant.id, filters["orderReferenceId"]))
    if filters.get("orderRef") is not None:
        ref = parse_ref(filters["orderRef"])
        if ref is None:
            return 0, []
        in_orders.append(guest_store.orders_with_ref(tenant.id, ref))
    return guest_store.page_guests(conn, tenant.id, keys, in_orders, sort, offset, limit)


def merges(conn: Connection, tenant: Tenant, ref: str) -> list[Record]:
    """The merges a guest took part in, as survivor or as the guest retired, oldest first."""
    guest = guests.require(conn, tenant, ref)
    found = identity.merges_of(conn, tenant, guest["ref"])
    if ref != guest["ref"]:
        found += [m for m in identity.merges_of(conn, tenant, ref) if m not in found]
    return sorted(found, key=lambda merge: (merge["mergedAt"], merge["id"]))
