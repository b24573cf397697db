"""Contacts, consumers and the guests they resolve to (rest-api.md §5.3–§5.5, §6.4)."""

from __future__ import annotations

import pytest

from conftest import CONTACT, ITEM, assert_error, create_order
from opencdp.store.rows import get_row
from opencdp.store.tables import guests


def guest_ref(person):
    return person["guest"]["href"].rsplit("/", 1)[1]


def guest_row(database, client, ref):
    with database.read() as conn:
        return get_row(conn, guests, client.tenant.id, ref)


def add_contact(client, order, body=CONTACT):
    return client.post(f"/v2.1/orders/{order['ref']}/contacts", json=body)


def add_consumer(client, order, body):
    return client.post(f"/v2.1/orders/{order['ref']}/consumers", json=body)


def test_a_contact_creates_a_customer_guest(client, database):
    order = create_order(client)
    response = add_contact(client, order)
    assert response.status_code == 201
    body = response.json()
    assert response.headers["location"] == body["href"]
    assert body["href"].startswith("http://testserver/v2.1/orderContacts/")
    assert body["order"] == {"href": order["href"]}
    assert body["guest"]["href"].startswith("http://testserver/v2.1/guests/")
    guest = guest_row(database, client, guest_ref(body))
    assert guest["guestType"] == "customer"
    assert guest["firstName"] == "John" and guest["emails"] == ["john.doe@example.com"]
    assert client.get(body["href"]).json() == body


def test_the_same_email_in_another_case_links_the_same_guest(client):
    first = add_contact(client, create_order(client)).json()
    second = add_contact(
        client, create_order(client), {"firstName": "J", "lastName": "D", "emails": ["John.Doe@Example.com"]}
    ).json()
    assert guest_ref(second) == guest_ref(first)


def test_a_hit_fills_only_what_the_guest_lacks(client, database):
    first = add_contact(client, create_order(client)).json()
    add_contact(
        client,
        create_order(client),
        {
            "firstName": "Other",
            "lastName": "Name",
            "city": "Leeds",
            "emails": ["john.doe@example.com", "jd@work.example"],
        },
    )
    guest = guest_row(database, client, guest_ref(first))
    assert guest["firstName"] == "John" and guest["city"] == "Leeds"
    assert guest["emails"] == ["john.doe@example.com", "jd@work.example"]


def test_providers_outside_the_identity_rules_never_match(client):
    a = add_contact(client, create_order(client), {**CONTACT, "emails": ["a@example.com"]}).json()
    b = add_contact(client, create_order(client), {**CONTACT, "emails": ["b@example.com"]}).json()
    assert guest_ref(a) != guest_ref(b)


def test_expired_identifiers_never_match(client):
    expired = [{"provider": "email", "id": "old@example.com", "expiryDate": "2020-01-01"}]
    a = add_contact(client, create_order(client), {"firstName": "A", "lastName": "B", "identifiers": expired}).json()
    b = add_contact(client, create_order(client), {"firstName": "A", "lastName": "B", "identifiers": expired}).json()
    assert guest_ref(a) != guest_ref(b)
    live = [{"provider": "email", "id": "new@example.com", "expiryDate": "2999-01-01T00:00:00Z"}]
    c = add_contact(client, create_order(client), {"firstName": "A", "lastName": "B", "identifiers": live}).json()
    d = add_contact(
        client, create_order(client), {"firstName": "A", "lastName": "B", "emails": ["NEW@example.com"]}
    ).json()
    assert guest_ref(c) == guest_ref(d)


def test_identity_never_crosses_tenants(client, other):
    a = add_contact(client, create_order(client)).json()
    b = add_contact(other, create_order(other)).json()
    assert guest_ref(a) != guest_ref(b)


def test_an_order_has_one_contact_a_second_post_updates_it(client, database):
    order = create_order(client)
    first = add_contact(client, order).json()
    again = add_contact(client, order, {"firstName": "John", "lastName": "Doe", "city": "York"})
    assert again.status_code == 200
    assert again.json()["ref"] == first["ref"] and again.json()["city"] == "York"
    assert again.json()["emails"] == ["john.doe@example.com"]
    listed = client.get(f"/v2.1/orders/{order['ref']}/contacts").json()
    assert [i["ref"] for i in listed["items"]] == [first["ref"]]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"firstName": None}, "firstName: may not be null."),
        ({"lastName": ""}, "lastName: may not be null."),
        ({"emails": ["not-an-address"]}, "emails[0]: not a valid value"),
        ({"emails": ["a@b.c", "@b.c"]}, "emails[1]: not a valid value"),
        ({"emails": "a@b.c"}, "emails: not a valid value"),
        ({"identifiers": [{"id": "1"}]}, "identifiers[0].provider: may not be null."),
        ({"identifiers": [{"provider": "CRM", "id": "1"}, {"provider": "CRM"}]}, "identifiers[1].id: may not be null."),
        (
            {"identifiers": [{"provider": "CRM", "id": "1", "expiryDate": "soon"}]},
            "identifiers[0].expiryDate: not a valid value",
        ),
        ({"gender": "robot"}, "gender: not a valid value"),
        ({"dateOfBirth": "2999-01-01"}, "dateOfBirth: not a valid value"),
        ({"country": "GBR"}, "country: not a valid value"),
        ({"phoneNumbers": [1]}, "phoneNumbers[0]: not a valid value"),
        ({"guestType": "customer"}, "Attribute guestType is not supported"),
    ],
)
def test_person_field_rules(client, changes, message):
    response = add_contact(client, create_order(client), {**CONTACT, **changes})
    assert_error(response, 400, message)


def test_date_of_birth_must_be_in_the_past(client):
    response = add_contact(client, create_order(client), {**CONTACT, "dateOfBirth": "2999-01-01"})
    assert response.json()["developerMessage"] == "Attribute dateOfBirth is invalid (must be in the past)."


def test_person_fields_round_trip(client):
    body = {
        **CONTACT,
        "title": "Mr",
        "gender": "MALE",
        "dateOfBirth": "1980-05-06",
        "country": "gb",
        "phoneNumbers": ["+44 1"],
        "street": ["1 Main St"],
        "passportExpiry": "2030-01-01T00:00:00Z",
        "identifiers": [{"provider": "CRM", "id": "1"}, {"provider": "CRM", "id": "1"}],
    }
    result = add_contact(client, create_order(client), body).json()
    assert result["gender"] == "male" and result["country"] == "GB"
    assert result["dateOfBirth"] == "1980-05-06T00:00:00.000Z"
    assert result["identifiers"] == [{"provider": "CRM", "id": "1"}]


def test_changing_emails_moves_the_guest_link(client):
    holder = add_contact(client, create_order(client), {**CONTACT, "emails": ["holder@example.com"]}).json()
    contact = add_contact(client, create_order(client), {**CONTACT, "emails": ["someone@example.com"]}).json()
    assert guest_ref(contact) != guest_ref(holder)
    renamed = client.patch(contact["href"], json={"city": "Bath"}).json()
    assert guest_ref(renamed) == guest_ref(contact)
    moved = client.patch(contact["href"], json={"emails": ["holder@example.com"]}).json()
    assert guest_ref(moved) == guest_ref(holder)
    assert client.get(contact["href"]).json()["guest"] == holder["guest"]


def test_a_guest_link_in_the_body_is_ignored(client):
    contact = add_contact(client, create_order(client), {**CONTACT, "guest": {"href": "http://x/guests/1"}}).json()
    assert contact["guest"]["href"] != "http://x/guests/1"


def test_contact_put_and_delete(client):
    order = create_order(client)
    contact = add_contact(client, order).json()
    replaced = client.put(contact["href"], json={"firstName": "Jane", "lastName": "Roe"}).json()
    assert replaced["firstName"] == "Jane" and "emails" not in replaced
    assert client.delete(contact["href"]).status_code == 204
    assert client.get(contact["href"]).status_code == 404
    assert client.get(f"/v2.1/orders?guestRef={guest_ref(contact)}").json()["items"] == []


def test_a_contact_ref_is_not_a_consumer_ref(client):
    contact = add_contact(client, create_order(client)).json()
    response = client.get(f"/v2.1/orderConsumers/{contact['ref']}")
    assert_error(
        response,
        404,
        "The specified resource does not exist.",
        f"Order consumer with ref {contact['ref']} for client key {client.tenant.client_key} was not found",
    )


def test_a_consumer_without_a_match_becomes_a_traveller(client, database):
    consumer = add_consumer(client, create_order(client), {"firstName": "Ann", "lastName": "Lee"})
    assert consumer.status_code == 201
    body = consumer.json()
    assert body["orderItems"] == {"href": f"{body['href']}/orderItems"}
    assert guest_row(database, client, guest_ref(body))["guestType"] == "traveller"


def test_a_consumer_named_like_the_contact_links_the_contacts_guest(client):
    order = create_order(client)
    contact = add_contact(client, order).json()
    consumer = add_consumer(client, order, {"firstName": "JOHN", "lastName": "doe"}).json()
    assert guest_ref(consumer) == guest_ref(contact)


def test_a_consumer_resolving_to_an_existing_consumers_guest_updates_it(client, database):
    order = create_order(client)
    first = add_consumer(client, order, {"firstName": "Ann", "lastName": "Lee", "emails": ["ann@example.com"]}).json()
    again = add_consumer(
        client, order, {"firstName": "Ann", "lastName": "Lee", "emails": ["ANN@example.com"], "city": "Oslo"}
    )
    assert again.status_code == 200 and again.json()["ref"] == first["ref"] and again.json()["city"] == "Oslo"
    assert guest_row(database, client, guest_ref(first))["guestType"] == "traveller"


def test_consumer_items_by_href_or_ref(client):
    order = create_order(client)
    items = [client.post(f"/v2.1/orders/{order['ref']}/orderItems", json=ITEM).json() for _ in range(3)]
    body = {
        "firstName": "Ann",
        "lastName": "Lee",
        "orderItems": {"items": [{"href": items[0]["href"]}, {"ref": items[2]["ref"].upper()}]},
    }
    consumer = add_consumer(client, order, body).json()
    used = client.get(f"/v2.1/orderConsumers/{consumer['ref']}/orderItems").json()
    assert {i["ref"] for i in used["items"]} == {items[0]["ref"], items[2]["ref"]}
    expanded = client.get(f"{consumer['href']}?expand=orderItems").json()
    assert {i["ref"] for i in expanded["orderItems"]["items"]} == {items[0]["ref"], items[2]["ref"]}
    assert expanded["orderItems"]["items"][0]["name"] == ITEM["name"]
    kept = client.patch(consumer["href"], json={"city": "Rome"})
    assert kept.status_code == 200
    assert len(client.get(f"{consumer['href']}/orderItems").json()["items"]) == 2
    bare = client.put(
        consumer["href"], json={"firstName": "Ann", "lastName": "Lee", "orderItems": consumer["orderItems"]}
    )
    assert bare.status_code == 200
    assert len(client.get(f"{consumer['href']}/orderItems").json()["items"]) == 2
    cleared = client.put(consumer["href"], json={"firstName": "Ann", "lastName": "Lee"})
    assert cleared.status_code == 200
    assert client.get(f"{consumer['href']}/orderItems").json()["items"] == []


def test_consumer_items_must_belong_to_the_order(client):
    order, elsewhere = create_order(client), create_order(client)
    own = client.post(f"/v2.1/orders/{order['ref']}/orderItems", json=ITEM).json()
    foreign = client.post(f"/v2.1/orders/{elsewhere['ref']}/orderItems", json=ITEM).json()
    body = {"firstName": "A", "lastName": "B", "orderItems": {"items": [{"ref": own["ref"]}, {"ref": foreign["ref"]}]}}
    assert_error(add_consumer(client, order, body), 400, "orderItems.items[1]: not a valid value")
    body["orderItems"] = {"items": [{"href": "nonsense"}]}
    assert_error(add_consumer(client, order, body), 400, "orderItems.items[0]: not a valid value")


def test_consumers_list_and_delete(client):
    order = create_order(client)
    refs = [add_consumer(client, order, {"firstName": f"P{i}", "lastName": "X"}).json()["ref"] for i in range(3)]
    listed = client.get(f"/v2.1/orders/{order['ref']}/consumers?sort=createdAt::DESC").json()
    assert [i["ref"] for i in listed["items"]] == refs[::-1]
    assert client.delete(f"/v2.1/orderConsumers/{refs[0]}").status_code == 204
    assert len(client.get(f"/v2.1/orders/{order['ref']}/consumers").json()["items"]) == 2


def test_an_orders_people_are_read_through_the_order_index_on_sqlite(client, database):
    """SQLite keeps no statistics: with two indexes led by tenant_id, it once read every person of the
    tenant for the people of one order (upserts of stored orders slowed down as the tenant grew)."""
    from sqlalchemy import event

    from opencdp.store.people import first_of_role

    if not database.is_sqlite:
        pytest.skip("PostgreSQL plans from statistics; the plan of an empty table says nothing")
    order = create_order(client)
    seen: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        seen.append((statement, parameters))

    with database.read() as conn:
        event.listen(conn, "before_cursor_execute", capture)
        first_of_role(conn, client.tenant.id, order["ref"], "contact")
        event.remove(conn, "before_cursor_execute", capture)
        [(statement, parameters)] = seen
        plan = " ".join(row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters))
    assert "ix_order_people_tenant_id_order_ref_role" in plan, plan
