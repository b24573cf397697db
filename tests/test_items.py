"""Order items (rest-api.md §5.2, §6.3)."""

from __future__ import annotations

import pytest

from conftest import ITEM, assert_error, create_order


@pytest.fixture
def order(client):
    return create_order(client)


def add(client, order, **changes):
    return client.post(f"/v2.1/orders/{order['ref']}/orderItems", json={**ITEM, **changes})


def test_create_defaults_ordered_at_to_the_orders(client, order):
    response = add(
        client,
        order,
        referenceId="I-1",
        productId="P-7",
        originalPrice=33,
        originalCurrencyCode="usd",
        language="en",
        channel="web",
    )
    assert response.status_code == 201
    body = response.json()
    assert response.headers["location"] == body["href"] == f"http://testserver/v2.1/orderItems/{body['ref']}"
    assert body["orderedAt"] == order["orderedAt"]
    assert body["order"] == {"href": order["href"]}
    assert (body["price"], body["originalCurrencyCode"], body["language"], body["channel"]) == (
        30.6,
        "USD",
        "EN",
        "WEB",
    )
    assert client.get(body["href"]).json() == body


def test_post_with_a_known_reference_id_updates_that_item(client, order):
    first = add(client, order, referenceId="I-1").json()
    again = add(client, order, referenceId="I-1", name="Phone X", quantity=2)
    assert again.status_code == 200
    assert again.json()["ref"] == first["ref"] and again.json()["quantity"] == 2
    other_order = create_order(client)
    assert add(client, other_order, referenceId="I-1").status_code == 201


@pytest.mark.parametrize("reserved", ["FLIGHT", " hotel ", "Rail", "MORTGAGE_APPLICATION"])
def test_reserved_types_are_refused(client, order, reserved):
    assert_error(add(client, order, type=reserved), 400, "type: not a valid value")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "x" * 129, "name: not a valid value"),
        ("name", "", "name: may not be null."),
        ("quantity", -1, "quantity: not a valid value"),
        ("quantity", 1.5, "quantity: not a valid value"),
        ("quantity", 2**40, "quantity: not a valid value"),
        ("price", None, "price: may not be null."),
        ("currencyCode", "euro", "currencyCode: not a valid value"),
        ("language", "eng", "language: not a valid value"),
        ("originalPrice", "1", "originalPrice: not a valid value"),
        ("status", 3, "status: not a valid value"),
    ],
)
def test_field_rules(client, order, field, value, message):
    assert_error(add(client, order, **{field: value}), 400, message)


def test_negative_prices_and_a_128_character_name_are_fine(client, order):
    response = add(client, order, price=-5.25, name="n" * 128)
    assert response.status_code == 201 and response.json()["price"] == -5.25


def test_post_to_an_unknown_order_is_404(client):
    missing = "0d6f1e2a-3b4c-4d5e-8f60-718293a4b5c6"
    response = client.post(f"/v2.1/orders/{missing}/orderItems", json=ITEM)
    assert_error(
        response,
        404,
        "The specified resource does not exist.",
        f"Order with ref {missing} for client key {client.tenant.client_key} was not found",
    )


def test_put_patch_delete(client, order):
    item = add(client, order, referenceId="I-9", vendor="ACME").json()
    put = client.put(item["href"], json={"type": "BAG", "name": "Bag", "price": 10, "currencyCode": "EUR"})
    assert put.status_code == 200
    assert "vendor" not in put.json() and put.json()["orderedAt"] == order["orderedAt"]
    patched = client.patch(item["href"], json={"vendor": "Other", "orderedAt": "2025-01-01T00:00:00Z"})
    assert patched.json()["vendor"] == "Other" and patched.json()["orderedAt"] == "2025-01-01T00:00:00.000Z"
    assert_error(client.patch(item["href"], json={"name": None}), 400, "name: may not be null.")
    assert client.delete(item["href"]).status_code == 204
    assert_error(
        client.get(item["href"]),
        404,
        "The specified resource does not exist.",
        f"Order item with ref {item['ref']} for client key {client.tenant.client_key} was not found",
    )


def test_list_items_pages(client, order):
    refs = [add(client, order, name=f"item {i}").json()["ref"] for i in range(12)]
    first = client.get(f"/v2.1/orders/{order['ref']}/orderItems").json()
    assert [i["ref"] for i in first["items"]] == refs[:10]
    assert first["next"]["href"].endswith("offset=10&limit=10")
    second = client.get(first["next"]["href"]).json()
    assert [i["ref"] for i in second["items"]] == refs[10:]
    assert "next" not in second and second["prev"]["href"].endswith("offset=0&limit=10")
    expanded = client.get(f"/v2.1/orders/{order['ref']}/orderItems?expand=true&limit=20").json()
    assert expanded["items"][0]["name"] == "item 0"


def test_deleting_an_item_takes_it_off_consumer_lists(client, order):
    item = add(client, order).json()
    consumer = client.post(
        f"/v2.1/orders/{order['ref']}/consumers",
        json={"firstName": "Ann", "lastName": "Lee", "orderItems": {"items": [{"ref": item["ref"]}]}},
    ).json()
    assert len(client.get(f"{consumer['href']}/orderItems").json()["items"]) == 1
    client.delete(item["href"])
    assert client.get(f"{consumer['href']}/orderItems").json()["items"] == []
