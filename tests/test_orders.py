"""Orders: create and match, read, replace, patch, delete, list (rest-api.md §5.1, §6.1, §6.2, §6.6)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from conftest import CONTACT, ITEM, ORDER, assert_error, create_order, order_body
from opencdp.store.rows import get_row
from opencdp.store.tables import orders


def test_create_answers_201_with_location_and_the_spec_shape(client):
    response = client.post("/v2.1/orders", json=ORDER)
    assert response.status_code == 201
    body = response.json()
    ref = body["ref"]
    assert response.headers["location"] == f"http://testserver/v2.1/orders/{ref}"
    assert response.headers["content-type"] == "application/json"
    assert body["href"] == response.headers["location"]
    assert body["createdAt"].endswith("Z") and len(body["createdAt"]) == 24
    expected = {
        "referenceId": "B94TXY-1",
        "orderedAt": "2025-03-07T16:15:11.000Z",
        "currencyCode": "EUR",
        "price": 100,
        "status": "PURCHASED",
        "channel": "WEB",
        "pointOfSale": "myretailsite.com",
        "paymentType": "Card",
        "cardType": "Visa",
        "orderItems": {"href": f"http://testserver/v2.1/orders/{ref}/orderItems"},
        "contacts": {"href": f"http://testserver/v2.1/orders/{ref}/contacts"},
        "consumers": {"href": f"http://testserver/v2.1/orders/{ref}/consumers"},
    }
    assert {k: body[k] for k in expected} == expected
    assert list(body)[:4] == ["href", "ref", "createdAt", "modifiedAt"]
    assert client.get(f"/v2.1/orders/{ref}").json() == body


def test_a_retried_create_within_48_hours_updates_the_same_order(client):
    first = create_order(client, referenceId="B94TXY-1")
    again = client.post(
        "/v2.1/orders", json=order_body(referenceId="B94TXY-1", orderedAt="2025-03-08T09:00:00Z", status="CONFIRMED")
    )
    assert again.status_code == 200
    assert "location" not in again.headers
    body = again.json()
    assert body["ref"] == first["ref"]
    assert body["status"] == "CONFIRMED"
    assert body["orderedAt"] == "2025-03-07T16:15:11.000Z"
    listed = client.get("/v2.1/orders?referenceId=B94TXY-1").json()
    assert [item["ref"] for item in listed["items"]] == [first["ref"]]


def test_matching_is_inclusive_at_48_hours_and_creates_beyond(client):
    first = create_order(client, referenceId="M-1", orderedAt="2025-03-01T00:00:00Z")
    edge = client.post("/v2.1/orders", json=order_body(referenceId="M-1", orderedAt="2025-03-03T00:00:00Z"))
    assert edge.status_code == 200 and edge.json()["ref"] == first["ref"]
    beyond = client.post("/v2.1/orders", json=order_body(referenceId="M-1", orderedAt="2025-03-03T00:00:00.001Z"))
    assert beyond.status_code == 201 and beyond.json()["ref"] != first["ref"]


def test_matching_prefers_the_closest_ordered_at(client):
    early = create_order(client, referenceId="M-2", orderedAt="2025-03-01T00:00:00Z")
    late = create_order(client, referenceId="M-2", orderedAt="2025-03-04T00:00:00Z")
    near_late = client.post("/v2.1/orders", json=order_body(referenceId="M-2", orderedAt="2025-03-03T00:00:00Z"))
    assert near_late.json()["ref"] == late["ref"]
    near_early = client.post("/v2.1/orders", json=order_body(referenceId="M-2", orderedAt="2025-03-02T11:00:00Z"))
    assert near_early.json()["ref"] == early["ref"]


def test_matching_does_not_cross_reference_ids_or_tenants(client, other):
    first = create_order(client, referenceId="M-3")
    assert create_order(client, referenceId="m-3")["ref"] != first["ref"]
    assert create_order(other, referenceId="M-3")["ref"] != first["ref"]


def test_money_is_stored_exactly(client, database):
    ref = create_order(client, price=30.6)["ref"]
    assert client.get(f"/v2.1/orders/{ref}").json()["price"] == 30.6
    with database.read() as conn:
        assert get_row(conn, orders, client.tenant.id, ref)["price"] == Decimal("30.6")
    ref = create_order(client, price=-1234567.89)["ref"]
    with database.read() as conn:
        assert get_row(conn, orders, client.tenant.id, ref)["price"] == Decimal("-1234567.89")
    assert client.get(f"/v2.1/orders/{ref}").json()["price"] == -1234567.89


@pytest.mark.parametrize("field", ["referenceId", "orderedAt", "currencyCode", "price"])
@pytest.mark.parametrize("value", ["absent", None, ""])
def test_required_fields(client, field, value):
    body = dict(ORDER)
    if value == "absent":
        del body[field]
    else:
        body[field] = value
    response = client.post("/v2.1/orders", json=body)
    assert_error(response, 400, f"{field}: may not be null.", f"Attribute {field} is invalid (may not be null).")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("currencyCode", "EURO"),
        ("currencyCode", "E1R"),
        ("currencyCode", 978),
        ("price", "100"),
        ("price", True),
        ("orderedAt", "yesterday"),
        ("orderedAt", "2025-03-07"),
        ("orderedAt", "2025-02-30T10:00:00Z"),
        ("status", "SHIPPED"),
        ("channel", "FAX"),
        ("referenceId", 42),
        ("pointOfSale", ["a"]),
        ("referenceId", "x" * 1025),
        ("referenceId", "nul\u0000byte"),
    ],
)
def test_invalid_values(client, field, value):
    response = client.post("/v2.1/orders", json={**ORDER, field: value})
    assert_error(response, 400, f"{field}: not a valid value")
    assert response.json()["developerMessage"].startswith(f"Attribute {field} is invalid (")


def test_enums_ignore_case_and_accept_the_spelled_out_aliases(client):
    body = create_order(client, status="partially_confirmed", channel="mobile_web")
    assert body["status"] == "PARTIALY_CONFIRMED"
    assert body["channel"] == "MOBILE_WEB"
    assert create_order(client, status="PARTIALLY_REFUNDED")["status"] == "PARTIALY_REFUNDED"


def test_timestamps_accept_offsets_and_fractions_and_output_utc_milliseconds(client):
    assert create_order(client, orderedAt="2025-03-07T17:15:11.123456+01:00")["orderedAt"] == "2025-03-07T16:15:11.123Z"
    assert create_order(client, orderedAt="2025-03-07T16:15:11")["orderedAt"] == "2025-03-07T16:15:11.000Z"


def test_unknown_attributes_are_refused_before_field_rules(client):
    response = client.post("/v2.1/orders", json={"colour": "red"})
    assert_error(response, 400, "Attribute colour is not supported", "Attribute colour is invalid (not supported).")


def test_read_only_attributes_are_ignored_so_a_get_body_can_be_put_back(client):
    body = create_order(client)
    body["status"] = "CANCELLED"
    response = client.put(body["href"], json=body)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "CANCELLED"
    assert response.json()["ref"] == body["ref"]


def test_put_replaces_every_field_and_clears_the_optional_ones_left_out(client):
    order = create_order(client)
    body = {k: order[k] for k in ("referenceId", "orderedAt")} | {"currencyCode": "usd", "price": 5}
    response = client.put(f"/v2.1/orders/{order['ref']}", json=body)
    assert response.status_code == 200
    result = response.json()
    assert result["currencyCode"] == "USD" and result["price"] == 5
    for cleared in ("status", "channel", "pointOfSale", "paymentType", "cardType"):
        assert cleared not in result
    assert result["modifiedAt"] >= order["modifiedAt"]
    assert client.get(order["href"]).json() == result


def test_put_needs_the_required_fields(client):
    order = create_order(client)
    response = client.put(order["href"], json={"referenceId": order["referenceId"], "orderedAt": order["orderedAt"]})
    assert_error(response, 400, "currencyCode: may not be null.")


def test_reference_id_and_ordered_at_are_immutable(client):
    order = create_order(client)
    changed = {**order, "referenceId": "OTHER"}
    assert_error(
        client.put(order["href"], json=changed),
        400,
        "referenceId: cannot be updated.",
        "Attribute referenceId is invalid (cannot be updated).",
    )
    assert_error(
        client.patch(order["href"], json={"orderedAt": "2025-03-07T16:15:12Z"}), 400, "orderedAt: cannot be updated."
    )
    same_instant = client.patch(order["href"], json={"orderedAt": "2025-03-07T17:15:11+01:00"})
    assert same_instant.status_code == 200
    assert client.get(order["href"]).json()["referenceId"] == order["referenceId"]


def test_patch_changes_only_what_is_sent(client):
    order = create_order(client)
    response = client.patch(order["href"], json={"status": "REFUNDED", "cardType": None})
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "REFUNDED" and "cardType" not in body and body["paymentType"] == "Card"
    assert_error(client.patch(order["href"], json={"price": None}), 400, "price: may not be null.")
    noop = client.patch(order["href"], json={})
    assert noop.status_code == 200 and noop.json()["status"] == "REFUNDED"


def test_merge_patch_media_type_is_accepted(client):
    order = create_order(client)
    response = client.patch(
        order["href"], content=b'{"status":"PENDING"}', headers={"content-type": "application/merge-patch+json"}
    )
    assert response.status_code == 200 and response.json()["status"] == "PENDING"


def test_get_unknown_or_malformed_refs_is_404(client):
    missing = "0d6f1e2a-3b4c-4d5e-8f60-718293a4b5c6"
    assert_error(
        client.get(f"/v2.1/orders/{missing}"),
        404,
        "The specified resource does not exist.",
        f"Order with ref {missing} for client key {client.tenant.client_key} was not found",
    )
    assert client.get("/v2.1/orders/not-a-uuid").status_code == 404
    assert client.patch(f"/v2.1/orders/{missing}", json={"status": "x"}).status_code == 404
    assert client.delete(f"/v2.1/orders/{missing}").status_code == 404


def test_path_refs_match_case_insensitively(client):
    order = create_order(client)
    response = client.get(f"/v2.1/orders/{order['ref'].upper()}")
    assert response.status_code == 200 and response.json()["ref"] == order["ref"]


def test_delete_cascades_to_items_contact_consumers_and_extensions(client):
    order = create_order(client)
    ref = order["ref"]
    item = client.post(f"/v2.1/orders/{ref}/orderItems", json=ITEM).json()
    contact = client.post(f"/v2.1/orders/{ref}/contacts", json=CONTACT).json()
    consumer = client.post(f"/v2.1/orders/{ref}/consumers", json={"firstName": "A", "lastName": "B"}).json()
    assert client.post(f"/v2.1/orders/{ref}/extensions/ext", json={"a": 1}).status_code == 201
    assert client.post(f"/v2.1/orderItems/{item['ref']}/extensions/ext", json={"b": 1}).status_code == 201
    response = client.delete(order["href"])
    assert response.status_code == 204 and response.content == b""
    for href in (order["href"], item["href"], contact["href"], consumer["href"]):
        assert client.get(href).status_code == 404
    assert client.get(f"/v2.1/orders/{ref}/extensions/ext").status_code == 404
    assert client.get(f"/v2.1/orderItems/{item['ref']}/extensions/ext").status_code == 404
    recreated = create_order(client, referenceId=order["referenceId"])
    assert client.get(f"/v2.1/orders/{recreated['ref']}/extensions/ext").status_code == 404


def test_list_needs_exactly_one_of_reference_id_and_guest_ref(client):
    message = "Parameter referenceId is invalid (exactly one of referenceId and guestRef is required)."
    assert_error(client.get("/v2.1/orders"), 400, "referenceId: not a valid value", message)
    both = client.get("/v2.1/orders?referenceId=a&guestRef=0d6f1e2a-3b4c-4d5e-8f60-718293a4b5c6")
    assert_error(both, 400, "referenceId: not a valid value", message)


def test_list_by_reference_id_is_exact_and_case_sensitive(client):
    a = create_order(client, referenceId="CASE-1", orderedAt="2025-01-01T00:00:00Z")
    b = create_order(client, referenceId="CASE-1", orderedAt="2025-02-01T00:00:00Z")
    create_order(client, referenceId="case-1")
    listed = client.get("/v2.1/orders?referenceId=CASE-1").json()
    assert [i["ref"] for i in listed["items"]] == [a["ref"], b["ref"]]
    assert listed["items"][0] == {"href": a["href"], "ref": a["ref"]}
    assert client.get("/v2.1/orders?referenceId=nothing").json()["items"] == []


def test_ordered_at_sort_is_allowed_only_with_guest_ref(client):
    assert_error(client.get("/v2.1/orders?referenceId=x&sort=orderedAt"), 400, "sort: not a valid value")


def test_list_by_guest_ref_covers_contact_and_consumer_orders_once_each(client):
    first = create_order(client, orderedAt="2025-01-01T00:00:00Z")
    second = create_order(client, orderedAt="2025-03-01T00:00:00Z")
    third = create_order(client, orderedAt="2025-02-01T00:00:00Z")
    contact = client.post(f"/v2.1/orders/{first['ref']}/contacts", json=CONTACT).json()
    guest_ref = contact["guest"]["href"].rsplit("/", 1)[1]
    client.post(f"/v2.1/orders/{second['ref']}/consumers", json=CONTACT)
    client.post(f"/v2.1/orders/{third['ref']}/contacts", json=CONTACT)
    client.post(f"/v2.1/orders/{third['ref']}/consumers", json=CONTACT)
    listed = client.get(f"/v2.1/orders?guestRef={guest_ref}&sort=orderedAt::DESC&expand=true").json()
    assert [i["ref"] for i in listed["items"]] == [second["ref"], third["ref"], first["ref"]]
    assert listed["items"][0]["referenceId"] == second["referenceId"]
    assert listed["items"][0]["orderItems"] == {"href": f"{second['href']}/orderItems"}
    unknown = client.get("/v2.1/orders?guestRef=0d6f1e2a-3b4c-4d5e-8f60-718293a4b5c6").json()
    assert unknown["items"] == []
    assert client.get("/v2.1/orders?guestRef=garbage").json()["items"] == []
