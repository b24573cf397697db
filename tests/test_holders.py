"""Who holds an identifier: one rule, asked of the database and of a batch's working set alike."""

from __future__ import annotations

import uuid
from datetime import timedelta

from opencdp.core import holders, identity, profiles
from opencdp.core.batch.identities import IdentityBook
from opencdp.core.tenants import create_tenant, set_identity_rules
from opencdp.core.values import utcnow

NOW = utcnow()
EARLY, LATE = NOW - timedelta(days=2), NOW - timedelta(days=1)


def test_the_earliest_created_live_holder_wins_and_ties_go_by_ref():
    held = [("b", EARLY, None), ("c", LATE, None), ("a", EARLY, None)]
    assert holders.earliest_live(held, NOW) == "a"
    assert holders.earliest_live(held, NOW, besides="a") == "b"
    assert holders.by_age(held) == ["a", "b", "c"]


def test_an_expired_key_resolves_to_no_one_but_stays_taken():
    held = [("a", EARLY, NOW - timedelta(seconds=1)), ("b", LATE, NOW + timedelta(days=1))]
    assert holders.earliest_live(held, NOW) == "b"
    assert holders.earliest_live(held[:1], NOW) is None
    assert holders.taken(held[:1], "b") and not holders.taken(held[:1], "a")
    assert holders.taken(held[:1], None)


def test_the_database_and_a_batch_working_set_resolve_every_person_alike(database):
    """Guests made by `POST /v2.1/guests` (which never de-duplicates) share identifiers, some expired; each
    person resolves to the same guest whether the database or an IdentityBook answers."""
    with database.write() as conn:
        tenant = create_tenant(conn, f"holders-{uuid.uuid4().hex[:8]}").tenant
        set_identity_rules(conn, tenant, {"identityRules": ["CRM", "email"]})
        expired = (NOW - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")

        def guest(created, emails, crm=None, expiry=None):
            identifier = {"provider": "CRM", "id": crm, **({"expiryDate": expiry} if expiry else {})}
            body = {"guestType": "customer", "emails": emails, "identifiers": [identifier] if crm else []}
            return profiles.create(conn, tenant, body, created)["ref"]

        first = guest(EARLY, ["shared@example.com"], "C1", expired)
        second = guest(LATE, ["Shared@example.com", "own@example.com"], "C1")
        third = guest(NOW, ["third@example.com"], "C2")
    people = {
        "the earliest holder of an address": ({"emails": ["SHARED@example.com"]}, first),
        "a rule ranked first beats body order": (
            {"emails": ["third@example.com"], "identifiers": [{"provider": "CRM", "id": "C1"}]},
            second,  # C1 outranks email; C1 of the first guest has expired
        ),
        "a later key when the first is unheld": ({"emails": ["nobody@example.com", "own@example.com"]}, second),
        "a provider no rule names": ({"identifiers": [{"provider": "LOYALTY", "id": "C2"}]}, None),
        "no one": ({"emails": ["nobody@example.com"]}, None),
    }
    with database.write() as conn:
        stored = identity.StoredGuests(conn, tenant, NOW)
        book = IdentityBook(conn, tenant, [person for person, _ in people.values()], NOW)
        for name, (person, expected) in people.items():
            assert identity.holder(stored, person) == expected, name
            assert identity.holder(book, person) == expected, name
        assert third not in {identity.holder(stored, person) for person, _ in people.values()}
