"""Identity rules and merges (issue: guests and identity; spec README §4 identity decisions)."""

from __future__ import annotations

import uuid

from typer.testing import CliRunner

from conftest import CONTACT, assert_error, create_order
from opencdp.cli.main import app as cli


def guest(client, **fields):
    response = client.post("/v2.1/guests", json={"guestType": "visitor", **fields})
    assert response.status_code == 201, response.text
    return response.json()


def ref_of(href):
    return href.rsplit("/", 1)[1]


def test_identity_rules_default_to_email_and_can_be_replaced(client):
    assert client.get("/opencdp/v1/tenant/identity-rules").json() == {"identityRules": ["email"]}
    response = client.put("/opencdp/v1/tenant/identity-rules", json={"identityRules": ["CRM", "email"]})
    assert response.status_code == 200 and response.json() == {"identityRules": ["CRM", "email"]}
    a = client.post(
        f"/v2.1/orders/{create_order(client)['ref']}/contacts", json={**CONTACT, "emails": ["one@example.com"]}
    ).json()
    b = client.post(
        f"/v2.1/orders/{create_order(client)['ref']}/contacts", json={**CONTACT, "emails": ["two@example.com"]}
    ).json()
    assert a["guest"] == b["guest"]  # both carry CRM C-0042, now a rule provider


def test_identity_rules_validation(client):
    url = "/opencdp/v1/tenant/identity-rules"
    assert_error(client.put(url, json={}), 400, "identityRules: may not be null.")
    assert_error(client.put(url, json={"identityRules": []}), 400, "identityRules: not a valid value")
    assert_error(client.put(url, json={"identityRules": ["email", "email"]}), 400, "identityRules: not a valid value")
    assert_error(client.put(url, json={"identityRules": ["email", 3]}), 400, "identityRules[1]: not a valid value")
    assert_error(client.put(url, json={"identityRules": ["email"], "x": 1}), 400, "Attribute x is not supported")
    assert client.get(url).json() == {"identityRules": ["email"]}


def test_identity_rules_from_the_cli(client, database, monkeypatch):
    monkeypatch.setenv("OPENCDP_DATABASE_URL", database.url)
    runner = CliRunner()
    result = runner.invoke(cli, ["tenant", "identity-rules", client.tenant.name, "loyalty", "email"])
    assert result.exit_code == 0, result.output
    assert "loyalty, email" in runner.invoke(cli, ["tenant", "identity-rules", client.tenant.name]).output
    assert client.get("/opencdp/v1/tenant/identity-rules").json() == {"identityRules": ["loyalty", "email"]}
    assert runner.invoke(cli, ["tenant", "identity-rules", client.tenant.name, "x", "x"]).exit_code == 1


def test_an_identifier_arriving_on_another_guest_merges_it_into_the_holder(client):
    known = guest(client, guestType="customer", firstName="Ann", emails=["ann@example.com"])
    order = create_order(client)
    contact = client.post(
        f"/v2.1/orders/{order['ref']}/consumers",
        json={"firstName": "Ann", "lastName": "Lee", "city": "Oslo", "emails": ["anon@example.com"]},
    ).json()
    assert ref_of(contact["guest"]["href"]) != known["ref"]
    moved_guest = ref_of(contact["guest"]["href"])
    client.post(f"/v2.1/guests/{moved_guest}/extensions/ext2", json={"score": 5})

    merged = client.patch(f"/v2.1/guests/{moved_guest}", json={"emails": ["anon@example.com", "ANN@example.com"]})
    assert merged.status_code == 200
    body = merged.json()
    assert body["ref"] == known["ref"] and body["href"] == known["href"]
    assert body["firstName"] == "Ann" and body["lastName"] == "Lee" and body["city"] == "Oslo"
    assert body["guestType"] == "customer"
    assert set(body["emails"]) == {"ann@example.com", "anon@example.com"}

    alias = client.get(f"/v2.1/guests/{moved_guest}")
    assert alias.status_code == 200 and alias.json()["ref"] == known["ref"]
    assert client.get(f"/v2.1/orderConsumers/{contact['ref']}").json()["guest"]["href"] == known["href"]
    for who in (known["ref"], moved_guest):
        assert [o["ref"] for o in client.get(f"/v2.1/orders?guestRef={who}").json()["items"]] == [order["ref"]]
    assert client.get(f"/v2.1/guests/{moved_guest}/extensions/ext2").json()["score"] == 5
    assert moved_guest not in {g["ref"] for g in client.get("/v2.1/guests").json()["items"]}

    merges = client.get(f"/opencdp/v1/guests/{moved_guest}/merges").json()["items"]
    assert len(merges) == 1
    assert merges[0]["survivor"]["ref"] == known["ref"] and merges[0]["retired"]["ref"] == moved_guest
    assert merges[0]["identifier"] == {"provider": "email", "id": "ann@example.com"}
    assert merges[0]["source"] == f"PATCH /v2.1/guests/{moved_guest}"
    assert client.get(f"/opencdp/v1/guests/{known['ref']}/merges").json()["items"] == merges


def test_two_known_customers_are_never_merged(client):
    guest(client, guestType="customer", emails=["a@example.com"])
    b = guest(client, guestType="customer", emails=["b@example.com"])
    response = client.patch(b["href"], json={"emails": ["b@example.com", "a@example.com"]})
    assert_error(
        response, 400, "emails[1]: not a valid value", "Attribute emails[1] is invalid (held by another customer)."
    )
    assert client.get(b["href"]).json()["emails"] == ["b@example.com"]
    assert client.get(f"/opencdp/v1/guests/{b['ref']}/merges").json()["items"] == []


def test_identifiers_outside_the_rules_are_never_handed_to_a_second_guest(client):
    guest(client, identifiers=[{"provider": "CRM", "id": "C-9"}])
    b = guest(client)
    response = client.patch(b["href"], json={"identifiers": [{"provider": "CRM", "id": "C-9"}]})
    assert_error(
        response,
        400,
        "identifiers[0]: not a valid value",
        "Attribute identifiers[0] is invalid (held by another guest).",
    )


def test_merges_keep_every_alias_one_hop_from_a_live_guest(client):
    client.put("/opencdp/v1/tenant/identity-rules", json={"identityRules": ["email", "CRM"]})
    a = guest(client, guestType="customer", identifiers=[{"provider": "CRM", "id": "A"}])
    b = guest(client, emails=["b@example.com"])
    c = guest(client)
    assert client.patch(c["href"], json={"emails": ["b@example.com"]}).json()["ref"] == b["ref"]
    crm = {"identifiers": [{"provider": "CRM", "id": "A"}]}
    assert client.patch(b["href"], json=crm).json()["ref"] == a["ref"]
    assert client.get(c["href"]).json()["ref"] == a["ref"]
    assert client.get(f"/opencdp/v1/guests/{a['ref']}/merges").json()["items"][0]["retired"]["ref"] == b["ref"]
    assert client.delete(c["href"]).status_code == 204
    for href in (a["href"], b["href"], c["href"]):
        assert client.get(href).status_code == 404


def test_unknown_guest_merges_is_404(client):
    assert client.get(f"/opencdp/v1/guests/{uuid.uuid4()}/merges").status_code == 404


def test_a_guest_gaining_a_rule_identifier_becomes_a_customer(client):
    visitor = guest(client)
    assert client.patch(visitor["href"], json={"city": "Rome"}).json()["guestType"] == "visitor"
    assert (
        client.patch(visitor["href"], json={"identifiers": [{"provider": "CRM", "id": "Z"}]}).json()["guestType"]
        == "visitor"
    )
    assert client.patch(visitor["href"], json={"emails": ["new@example.com"]}).json()["guestType"] == "customer"
    explicit = guest(client)
    body = {"guestType": "visitor", "emails": ["explicit@example.com"]}
    assert client.patch(explicit["href"], json=body).json()["guestType"] == "visitor"
