"""Order and order-item data extensions (rest-api.md §5.7, §6.7)."""

from __future__ import annotations

import uuid

import pytest

from conftest import ITEM, assert_error, create_order

EXAMPLE = {"firstTimeOrder": True, "storeLocation": "London", "totalUnits": 8, "totalDiscount": "20%"}


@pytest.fixture
def order(client):
    return create_order(client)


def ext_url(order):
    return f"/v2.1/orders/{order['ref']}/extensions"


def test_the_worked_example(client, order):
    created = client.post(f"{ext_url(order)}/ext", json=EXAMPLE)
    assert created.status_code == 201
    body = created.json()
    assert created.headers["location"] == body["href"] == f"{order['href']}/extensions/ext"
    assert body["ref"] == str(uuid.uuid5(uuid.UUID(order["ref"]), "ext"))
    assert {k: body[k] for k in ("name", "key", "order")} == {
        "name": "ext",
        "key": "default",
        "order": {"href": order["href"]},
    }
    assert {k: body[k] for k in EXAMPLE} == EXAMPLE

    patched = client.patch(f"{ext_url(order)}/ext", json={"totalUnits": 9, "giftWrap": False})
    assert patched.status_code == 200
    assert patched.json()["totalUnits"] == 9 and patched.json()["giftWrap"] is False
    assert patched.json()["storeLocation"] == "London"

    trimmed = client.delete(f"{ext_url(order)}/ext/fields?name=totalDiscount%7CgiftWrap")
    assert trimmed.status_code == 200
    assert {k for k in trimmed.json() if k in {*EXAMPLE, "giftWrap"}} == {
        "firstTimeOrder",
        "storeLocation",
        "totalUnits",
    }

    emptied = client.delete(f"{ext_url(order)}/ext/fields")
    assert emptied.status_code == 200
    assert emptied.json()["ref"] == body["ref"] and emptied.json()["createdAt"] == body["createdAt"]
    assert not {*EXAMPLE} & set(emptied.json())

    assert_error(
        client.post(f"{ext_url(order)}/ext", json=EXAMPLE),
        409,
        "Data extension ext already exists.",
        f"Data extension ext for Order ref {order['ref']} already exists.",
    )
    wrong_type = client.patch(f"{ext_url(order)}/ext", json={"totalUnits": "nine"})
    assert_error(wrong_type, 400, "Validation error", "Attribute totalUnits is invalid (Incorrect data type).")


def test_name_in_the_body_or_the_path(client, order):
    assert client.post(ext_url(order), json={"name": "ext", "a": 1}).status_code == 201
    other = create_order(client)
    assert_error(client.post(ext_url(other), json={"a": 1}), 400, "name: may not be null.")
    assert_error(client.post(f"{ext_url(other)}/ext", json={"name": "ext1", "a": 1}), 400, "name: not a valid value")
    assert client.post(f"{ext_url(other)}/ext", json={"name": "ext", "key": "default", "a": 1}).status_code == 201


@pytest.mark.parametrize("method", ["get", "post", "put", "patch", "delete"])
def test_other_names_are_refused_on_every_method(client, order, method):
    kwargs = {"json": {"a": 1}} if method in ("post", "put", "patch") else {}
    response = getattr(client, method)(f"{ext_url(order)}/ext1", **kwargs)
    assert_error(
        response, 400, "name: value must be one of ext", "Attribute name is invalid (value must be one of ext)."
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"key": "custom", "a": 1}, "key: not a valid value"),
        ({"1abc": 1}, "1abc: not a valid value"),
        ({"snake_case": 1}, "snake_case: not a valid value"),
        ({"nested": {"a": 1}}, "nested: not a valid value"),
        ({"listed": [1]}, "listed: not a valid value"),
        ({"gone": None}, "gone: may not be null."),
        ({"k" * 201: 1}, f"{'k' * 201}: not a valid value"),
    ],
)
def test_pair_rules(client, order, body, message):
    assert_error(client.post(f"{ext_url(order)}/ext", json=body), 400, message)
    assert client.get(f"{ext_url(order)}/ext").status_code == 404


def test_at_most_100_pairs(client, order):
    pairs = {f"k{i}": i for i in range(100)}
    assert client.post(f"{ext_url(order)}/ext", json=pairs).status_code == 201
    response = client.patch(f"{ext_url(order)}/ext", json={"oneMore": 1})
    assert_error(response, 400, "Validation error", "Data extension ext may hold at most 100 attributes.")
    assert client.patch(f"{ext_url(order)}/ext", json={"k0": None, "oneMore": 1}).status_code == 200


def test_put_replaces_and_patch_null_removes(client, order):
    client.post(f"{ext_url(order)}/ext", json={"a": 1, "b": "x"})
    assert_error(client.put(f"{ext_url(order)}/ext", json={"c": None}), 400, "c: may not be null.")
    replaced = client.put(f"{ext_url(order)}/ext", json={"c": True}).json()
    assert "a" not in replaced and replaced["c"] is True
    removed = client.patch(f"{ext_url(order)}/ext", json={"c": None, "d": 2.5}).json()
    assert "c" not in removed and removed["d"] == 2.5


def test_missing_extension_and_missing_owner(client, order):
    missing = client.get(f"{ext_url(order)}/ext")
    assert_error(
        missing,
        404,
        "The specified resource does not exist.",
        f"Data extension ext for Order ref {order['ref']} and client key {client.tenant.client_key} "
        "was not found for v2.1",
    )
    assert client.put(f"{ext_url(order)}/ext", json={"a": 1}).status_code == 404
    assert client.delete(f"{ext_url(order)}/ext").status_code == 404
    nobody = "0d6f1e2a-3b4c-4d5e-8f60-718293a4b5c6"
    assert_error(
        client.post(f"/v2.1/orders/{nobody}/extensions/ext", json={"a": 1}),
        404,
        "The specified resource does not exist.",
    )


def test_list_and_delete(client, order):
    assert client.get(ext_url(order)).json()["items"] == []
    created = client.post(f"{ext_url(order)}/ext", json={"a": 1}).json()
    listed = client.get(ext_url(order)).json()
    assert listed["items"] == [{"href": created["href"], "ref": created["ref"]}]
    assert client.get(f"{ext_url(order)}?expand=true").json()["items"][0]["a"] == 1
    assert client.delete(f"{ext_url(order)}/ext").status_code == 204
    assert client.get(ext_url(order)).json()["items"] == []
    again = client.post(f"{ext_url(order)}/ext", json={"a": 2}).json()
    assert again["ref"] == created["ref"]


def test_key_types_are_fixed_per_tenant_and_owner_type(client, other, order):
    client.post(f"{ext_url(order)}/ext", json={"units": 8, "flag": True})
    second = create_order(client)
    response = client.post(f"{ext_url(second)}/ext", json={"units": "eight"})
    assert_error(response, 400, "Validation error", "Attribute units is invalid (Incorrect data type).")
    assert_error(client.post(f"{ext_url(second)}/ext", json={"flag": 1}), 400, "Validation error")
    assert client.post(f"{ext_url(second)}/ext", json={"units": 8.5}).status_code == 201
    item = client.post(f"/v2.1/orders/{order['ref']}/orderItems", json=ITEM).json()
    assert client.post(f"/v2.1/orderItems/{item['ref']}/extensions/ext", json={"units": "eight"}).status_code == 201
    foreign = create_order(other)
    assert other.post(f"/v2.1/orders/{foreign['ref']}/extensions/ext", json={"units": "eight"}).status_code == 201


def test_order_item_extensions(client, order):
    item = client.post(f"/v2.1/orders/{order['ref']}/orderItems", json=ITEM).json()
    url = f"/v2.1/orderItems/{item['ref']}/extensions"
    created = client.post(f"{url}/ext", json={"colour": "red"})
    assert created.status_code == 201
    body = created.json()
    assert body["orderItem"] == {"href": item["href"]} and body["href"] == f"{item['href']}/extensions/ext"
    assert client.get(f"{url}/ext").json()["colour"] == "red"
    assert client.delete(f"{url}/ext/fields?name=colour").json().get("colour") is None
    missing = client.get(f"/v2.1/orderItems/{item['ref']}/extensions/ext1")
    assert_error(missing, 400, "name: value must be one of ext")
