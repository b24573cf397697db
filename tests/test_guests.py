"""The Guest REST API v2.1: guests, search, cascades and guest data extensions (rest-api.md §5.6, §6.5–§6.7)."""

from __future__ import annotations

import pytest

from conftest import CONTACT, ITEM, assert_error, create_order

GUEST = {"guestType": "visitor", "firstName": "Ann", "lastName": "Lee", "emails": ["ann@example.com"]}


def create_guest(client, **changes):
    response = client.post("/v2.1/guests", json={**GUEST, **changes})
    assert response.status_code == 201, response.text
    return response.json()


def ref_of(href):
    return href.rsplit("/", 1)[1]


def test_create_answers_201_with_the_guest(client):
    response = client.post("/v2.1/guests", json={**GUEST, "language": "en", "subscriptions": []})
    assert response.status_code == 201
    body = response.json()
    assert response.headers["location"] == body["href"] == f"http://testserver/v2.1/guests/{body['ref']}"
    assert body["guestType"] == "visitor" and body["language"] == "EN"
    assert body["dataExtensions"] == {"href": f"{body['href']}/extensions"}
    assert "subscriptions" not in body and "firstSeen" not in body and "email" not in body
    assert client.get(body["href"]).json() == body


def test_create_never_de_duplicates(client):
    first, second = create_guest(client), create_guest(client)
    assert first["ref"] != second["ref"]
    found = client.get("/v2.1/guests?email=ANN@example.com").json()["items"]
    assert [g["ref"] for g in found] == [first["ref"], second["ref"]]


def test_the_deprecated_email_stands_for_emails(client):
    body = {"guestType": "customer", "email": "solo@example.com"}
    assert create_guest(client, **body, emails=None)["emails"] == ["solo@example.com"]
    assert_error(
        client.post("/v2.1/guests", json={"guestType": "customer", "email": "nope"}), 400, "email: not a valid value"
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"firstName": "A"}, "guestType: may not be null."),
        ({"guestType": "alien"}, "guestType: not a valid value"),
        ({"guestType": "visitor", "subscriptions": [{"channel": "EMAIL"}]}, "subscriptions: not a valid value"),
        ({"guestType": "visitor", "language": "eng"}, "language: not a valid value"),
        ({"guestType": "visitor", "loyalty": 1}, "Attribute loyalty is not supported"),
    ],
)
def test_guest_validation(client, body, message):
    assert_error(client.post("/v2.1/guests", json=body), 400, message)


def test_put_replaces_and_patch_merges(client):
    guest = create_guest(client, city="Leeds")
    client.post(f"{guest['href']}/extensions/ext", json={"tier": "gold"})
    replaced = client.put(guest["href"], json={"guestType": "customer", "lastName": "Roe"}).json()
    assert replaced["guestType"] == "customer" and "city" not in replaced and "firstName" not in replaced
    assert client.get(f"{guest['href']}/extensions/ext").status_code == 200
    patched = client.patch(guest["href"], json={"city": "York"}).json()
    assert patched["lastName"] == "Roe" and patched["city"] == "York"
    assert_error(client.patch(guest["href"], json={"guestType": None}), 400, "guestType: may not be null.")


def test_unknown_guest_is_404(client):
    missing = "0d6f1e2a-3b4c-4d5e-8f60-718293a4b5c6"
    assert_error(
        client.get(f"/v2.1/guests/{missing}"),
        404,
        "The specified resource does not exist.",
        f"Guest with ref {missing} for client key {client.tenant.client_key} was not found",
    )


def test_search_filters_are_exact_and_anded(client):
    crm = create_guest(client, emails=["crm@example.com"], identifiers=[{"provider": "CRM", "id": "C-1"}])
    other = create_guest(
        client, emails=["other@example.com"], identifiers=[{"provider": "email", "id": "Id@Example.com"}]
    )
    assert [g["ref"] for g in client.get("/v2.1/guests?email=id@example.COM").json()["items"]] == [other["ref"]]
    by_id = client.get("/v2.1/guests?identifiers.provider=CRM&identifiers.id=C-1").json()["items"]
    assert [g["ref"] for g in by_id] == [crm["ref"]]
    assert client.get("/v2.1/guests?identifiers.provider=crm&identifiers.id=C-1").json()["items"] == []
    both = client.get("/v2.1/guests?identifiers.provider=CRM&identifiers.id=C-1&email=other@example.com").json()
    assert both["items"] == []
    assert_error(client.get("/v2.1/guests?identifiers.provider=CRM"), 400, "identifiers.id: not a valid value")
    listed = client.get("/v2.1/guests?sort=lastName::DESC|createdAt&expand=true").json()["items"]
    assert {g["ref"] for g in listed} == {crm["ref"], other["ref"]} and "firstName" in listed[0]


def test_search_by_order(client):
    order = create_order(client, referenceId="G-ORD-1")
    contact = client.post(f"/v2.1/orders/{order['ref']}/contacts", json=CONTACT).json()
    consumer = client.post(
        f"/v2.1/orders/{order['ref']}/consumers", json={"firstName": "Kid", "lastName": "Doe"}
    ).json()
    expected = {ref_of(contact["guest"]["href"]), ref_of(consumer["guest"]["href"])}
    by_reference = client.get("/v2.1/guests?orderReferenceId=G-ORD-1").json()["items"]
    assert {g["ref"] for g in by_reference} == expected
    assert {g["ref"] for g in client.get(f"/v2.1/guests?orderRef={order['ref']}").json()["items"]} == expected
    assert client.get("/v2.1/guests?orderRef=not-a-ref").json()["items"] == []


def test_sorting_guests_by_name_and_paging(client):
    for name in ("Cole", "Adams", "Baker"):
        create_guest(client, lastName=name, emails=None)
    names = [g["lastName"] for g in client.get("/v2.1/guests?sort=lastName&expand=true").json()["items"]]
    assert names == ["Adams", "Baker", "Cole"]
    assert_error(client.get("/v2.1/guests?sort=city"), 400, "sort: not a valid value")


def test_delete_cascades(client, database):
    guest = create_guest(client, guestType="customer")
    client.post(f"{guest['href']}/extensions/ext", json={"tier": "gold"})
    own = create_order(client)
    client.post(f"/v2.1/orders/{own['ref']}/contacts", json={**CONTACT, "emails": ["ann@example.com"]})
    item = client.post(f"/v2.1/orders/{own['ref']}/orderItems", json=ITEM).json()
    elsewhere = create_order(client)
    client.post(f"/v2.1/orders/{elsewhere['ref']}/contacts", json={**CONTACT, "emails": ["someone@example.com"]})
    consumer = client.post(
        f"/v2.1/orders/{elsewhere['ref']}/consumers",
        json={"firstName": "Ann", "lastName": "Lee", "emails": ["ann@example.com"]},
    ).json()
    assert ref_of(consumer["guest"]["href"]) == guest["ref"]
    assert client.delete(guest["href"]).status_code == 204
    assert client.get(guest["href"]).status_code == 404
    assert client.get(own["href"]).status_code == 404 and client.get(item["href"]).status_code == 404
    assert client.get(elsewhere["href"]).status_code == 200
    assert client.get(consumer["href"]).status_code == 404
    assert client.get(f"{guest['href']}/extensions/ext").status_code == 404
    assert client.get("/v2.1/guests?email=ann@example.com").json()["items"] == []


def test_guest_extensions(client):
    guest = create_guest(client)
    url = f"{guest['href']}/extensions"
    created = client.post(url, json={"name": "ext1", "loyaltyTier": "gold"})
    assert created.status_code == 201
    assert created.json()["guest"] == {"href": guest["href"]} and created.json()["href"] == f"{url}/ext1"
    assert client.post(f"{url}/ext2", json={"points": 10}).status_code == 201
    assert_error(client.post(url, json={"name": "ext1", "x": 1}), 409, "Data extension ext1 already exists.")
    assert_error(
        client.post(url, json={"name": "ext6", "x": 1}), 400, "name: value must be one of ext,ext1,ext2,ext3,ext4,ext5"
    )
    clash = client.post(f"{url}/ext3", json={"loyaltyTier": "silver"})
    assert_error(clash, 400, "Validation error", "Attribute loyaltyTier already exists in data extension ext1.")
    assert_error(client.patch(f"{url}/ext2", json={"loyaltyTier": "x"}), 400, "Validation error")
    listed = client.get(url).json()
    assert [i["href"].rsplit("/", 1)[1] for i in listed["items"]] == ["ext1", "ext2"]
    expanded = client.get(f"{guest['href']}?expand=dataExtensions").json()
    assert expanded["dataExtensions"]["items"][0]["loyaltyTier"] == "gold"
    assert_error(client.get(f"{guest['href']}?expand=orders"), 400, "expand: not a valid value")
    assert client.delete(f"{url}/ext1/fields?name=loyaltyTier").status_code == 200
    assert client.post(f"{url}/ext3", json={"loyaltyTier": "silver"}).status_code == 201


def test_guests_are_invisible_to_other_tenants(client, other):
    guest = create_guest(client, identifiers=[{"provider": "CRM", "id": "SHARED"}])
    client.post(f"{guest['href']}/extensions/ext", json={"tier": "gold"})
    assert other.get(guest["href"]).status_code == 404
    assert other.patch(guest["href"], json={}).status_code == 404
    assert other.delete(guest["href"]).status_code == 404
    assert other.get(f"{guest['href']}/extensions/ext").status_code == 404
    assert other.get(f"{guest['href']}/extensions").status_code == 404
    assert other.get("/v2.1/guests?email=ann@example.com").json()["items"] == []
    assert other.get("/v2.1/guests?identifiers.provider=CRM&identifiers.id=SHARED").json()["items"] == []
    assert other.get("/v2.1/guests").json()["items"] == []
    assert other.get(f"/opencdp/v1/guests/{guest['ref']}/merges").status_code == 404
