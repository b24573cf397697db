"""Property-based tests of identity resolution and merges over random sequences of operations.

Whatever mix of guests, contacts, consumers and identifier changes arrives, in any order:
no order role is ever orphaned, retired guests lead to a live guest in one hop, and nothing but
`POST /v2.1/guests` (which never de-duplicates, by contract) puts one identifier on a second live guest.
"""

from __future__ import annotations

import uuid
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from opencdp.core import orders, people, profiles
from opencdp.core.errors import ApiError
from opencdp.core.fields import Mode
from opencdp.core.tenants import create_tenant, set_identity_rules
from opencdp.core.values import utcnow
from opencdp.store.tables import guest_keys, guests, order_people
from opencdp.store.tables import orders as order_table

EMAILS = [f"p{i}@example.com" for i in range(4)]
CRM = ["C1", "C2", "C3"]


def person(data):
    emails = data.draw(st.lists(st.sampled_from(EMAILS), max_size=2, unique=True))
    crm = data.draw(st.lists(st.sampled_from(CRM), max_size=1))
    return {
        "firstName": data.draw(st.sampled_from(["Ann", "Bob"])),
        "lastName": "Lee",
        "emails": emails,
        "identifiers": [{"provider": "CRM", "id": c} for c in crm],
    }


OPERATIONS = st.sampled_from(["post_guest", "order_contact", "consumer", "patch_guest", "put_contact"])


def key_holders(conn, tenant_id):
    live = select(guest_keys.c.key, guest_keys.c.guest_ref).join(guests, guests.c.ref == guest_keys.c.guest_ref)
    live = live.where(guest_keys.c.tenant_id == tenant_id, guests.c.merged_into.is_(None))
    return Counter(key for key, _ in conn.execute(live))


def check_invariants(conn, tenant_id, expected_orders):
    rows = conn.execute(select(guests.c.ref, guests.c.merged_into).where(guests.c.tenant_id == tenant_id)).all()
    live = {ref for ref, merged in rows if merged is None}
    for ref, merged in rows:
        assert merged is None or merged in live, f"retired guest {ref} points at {merged}, not a live guest"
    roles = conn.execute(select(order_people.c.guest_ref).where(order_people.c.tenant_id == tenant_id)).scalars()
    assert all(ref in live for ref in roles), "an order role names a retired or missing guest"
    stored = conn.execute(select(order_table.c.ref).where(order_table.c.tenant_id == tenant_id)).scalars().all()
    assert sorted(stored) == sorted(expected_orders), "an order was lost or duplicated"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_identity_histories_keep_the_invariants(database, data):
    rules = {"identityRules": data.draw(st.sampled_from([["email"], ["CRM", "email"]]))}
    with database.write() as conn:
        tenant = create_tenant(conn, f"prop-{uuid.uuid4().hex[:8]}").tenant
        set_identity_rules(conn, tenant, rules)
    guest_refs: list[str] = []
    contacts: list[str] = []
    order_refs: list[str] = []

    def apply(conn, operation, step):
        now = utcnow()
        if operation == "post_guest":
            body = {"guestType": data.draw(st.sampled_from(["visitor", "customer"])), **person(data)}
            guest_refs.append(profiles.create(conn, tenant, body, now)["ref"])
        elif operation in ("order_contact", "consumer"):
            body = {"referenceId": f"R{step}", "orderedAt": "2025-01-01T00:00:00Z", "currencyCode": "EUR", "price": 1}
            order, _ = orders.create_order(conn, tenant, body, now)
            if operation == "order_contact":
                contact, _ = people.create_contact(conn, tenant, order["ref"], person(data), now)
                contacts.append(contact["ref"])
            else:
                people.create_consumer(conn, tenant, order["ref"], person(data), now)
            order_refs.append(order["ref"])
        elif operation == "patch_guest" and guest_refs:
            ref = data.draw(st.sampled_from(guest_refs))
            profiles.update(conn, tenant, ref, person(data), Mode.PATCH, now, "property test")
        elif operation == "put_contact" and contacts:
            ref = data.draw(st.sampled_from(contacts))
            people.update_person(conn, tenant, "contact", ref, person(data), Mode.PUT, now)

    for step in range(data.draw(st.integers(3, 14))):
        operation = data.draw(OPERATIONS)
        with database.read() as conn:
            before = key_holders(conn, tenant.id)
        try:
            with database.write() as conn:  # a refused operation rolls back whole, as a request's unit does
                apply(conn, operation, step)
        except ApiError as error:
            assert error.status == 400, error.message
        with database.read() as conn:
            after = key_holders(conn, tenant.id)
            check_invariants(conn, tenant.id, order_refs)
        if operation != "post_guest":
            for key, count in after.items():
                assert count <= max(1, before.get(key, 0)), f"{operation} gave an identifier to a second guest"
