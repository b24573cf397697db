"""IDENTITY events: resolve, take, merge or switch (stream-api.md §4.2)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from opencdp.core import guests, holders, identity
from opencdp.core.stream import sessions
from opencdp.core.tenants import Tenant, identity_rules
from opencdp.store import guests as guest_store
from opencdp.store import stream as stream_store
from opencdp.store.database import lock
from opencdp.store.guests import GUESTS
from opencdp.store.rows import Record
from opencdp.store.stream import BROWSERS


def serialise(conn: Connection, tenant: Tenant) -> None:
    """Identity resolution from events is serialised per tenant (§4.2)."""
    lock(conn, f"identity-tenant:{tenant.id}")


def identify(
    conn: Connection, tenant: Tenant, browser: Record, person: Mapping[str, Any], channel: str, now: datetime
) -> str:
    """The guest the browser belongs to after this IDENTITY: itself, the holder it merged into, or the
    holder it switched to (a shared device of two known customers)."""
    serialise(conn, tenant)
    current = guests.require(conn, tenant, browser["guestRef"])
    holder = _holder(conn, tenant, current["ref"], person, now)
    result: str
    if holder is None:
        _take(conn, tenant, current["ref"], person, now)
        result = current["ref"]
    elif current["guestType"] != "customer":
        provider_key = holder[1]
        identity.merge(conn, tenant, holder[0], current["ref"], provider_key, "IDENTITY event", now, copy_profile=False)
        _take(conn, tenant, holder[0], person, now)
        result = holder[0]
    else:
        BROWSERS.update(conn, tenant.id, browser["ref"], {"guestRef": holder[0]})
        session = stream_store.open_session(conn, tenant.id, browser["ref"], channel)
        if session is not None:
            sessions.close(conn, session, sessions.SWITCH, now)
        result = holder[0]
    overwrite_profile(conn, tenant, result, person, now)
    return result


def _holder(
    conn: Connection, tenant: Tenant, current_ref: str, person: Mapping[str, Any], now: datetime
) -> identity.Match | None:
    """Another guest an event's identifiers resolve to (its addresses are not looked at), with the key."""
    rules = identity_rules(conn, tenant)
    keyed = identity.rule_keys(rules, {"identifiers": person.get("identifiers")}, now)
    return identity.first_match(rules, keyed, holders.stored(conn, tenant.id), now, besides=current_ref)


def _take(conn: Connection, tenant: Tenant, guest_ref: str, person: Mapping[str, Any], now: datetime) -> None:
    """The guest takes the event's identifiers no other live guest holds (a re-sent one updates its
    expiry); with an identifier of a rule provider it becomes a customer."""
    guest = GUESTS.get(conn, tenant.id, guest_ref)
    assert guest is not None
    stored = list(guest.get("identifiers") or [])
    held = holders.held_besides(holders.stored(conn, tenant.id), guest_ref)
    rules = identity_rules(conn, tenant)
    customer = guest["guestType"] == "customer"
    for identifier in person.get("identifiers") or ():
        pair = (identifier["provider"], guests.normalize_id(identifier["provider"], identifier["id"]))
        same = next((i for i in stored if (i["provider"], guests.normalize_id(*pair[:1], i["id"])) == pair), None)
        if same is not None:
            same.pop("expiryDate", None)
            same.update({k: v for k, v in identifier.items() if k == "expiryDate"})
        elif not held(*pair):
            stored.append(dict(identifier))
        else:
            continue
        customer = customer or identifier["provider"] in rules
    changes: dict[str, Any] = {"identifiers": stored, "modifiedAt": now}
    if customer:
        changes["guestType"] = "customer"
    GUESTS.update(conn, tenant.id, guest_ref, changes)
    guest_store.replace_keys(conn, tenant.id, guest_ref, guests.keys_of({**guest, **changes}))


def overwrite_profile(
    conn: Connection, tenant: Tenant, guest_ref: str, person: Mapping[str, Any], now: datetime
) -> None:
    """The event's non-empty person fields overwrite the guest's; phone numbers are added."""
    guest = GUESTS.get(conn, tenant.id, guest_ref)
    assert guest is not None
    changes: dict[str, Any] = {}
    for name, value in person.items():
        if name in ("identifiers", "emails"):
            continue
        if name == "phoneNumbers":
            phones = list(guest.get("phoneNumbers") or [])
            phones += [phone for phone in value if phone not in phones]
            changes[name] = phones
        else:
            changes[name] = value
    if person.get("emails"):
        emails = list(guest.get("emails") or [])
        fresh = [e for e in person["emails"] if e.lower() not in {x.lower() for x in emails}]
        held = holders.held_besides(holders.stored(conn, tenant.id), guest_ref)
        unheld = [e for e in fresh if not held(guests.EMAIL, guests.normalize_id(guests.EMAIL, e))]
        if unheld:
            changes["emails"] = emails + unheld
    if changes:
        GUESTS.update(conn, tenant.id, guest_ref, {**changes, "modifiedAt": now})
        guest_store.replace_keys(conn, tenant.id, guest_ref, guests.keys_of({**guest, **changes}))
