"""The shared error contract: media types, JSON parsing, routing, query parameters, 5xx (rest-api.md §1, §2)."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ORDER, assert_error, create_order, order_body
from opencdp.core import orders as core_orders


def test_a_wrong_content_type_is_415(client):
    response = client.post("/v2.1/orders", content=json.dumps(ORDER), headers={"content-type": "text/plain"})
    assert_error(
        response, 415, "Unsupported Media Type", "Content type 'text/plain' is not supported. Use application/json."
    )


def test_json_with_a_charset_or_no_content_type_is_fine(client):
    body = json.dumps({**ORDER, "referenceId": "CT-1"}).encode()
    with_charset = client.post(
        "/v2.1/orders", content=body, headers={"content-type": "application/json; charset=utf-8"}
    )
    assert with_charset.status_code == 201
    bare = client.build_request("POST", "/v2.1/orders", content=json.dumps({**ORDER, "referenceId": "CT-2"}))
    assert "content-type" not in bare.headers
    assert client.send(bare).status_code == 201


def test_malformed_json_says_where(client):
    response = client.post(
        "/v2.1/orders", content=b'{\n  "referenceId": "x",\n  oops\n}', headers={"content-type": "application/json"}
    )
    assert_error(response, 400, "Unable to parse JSON string")
    assert response.json()["developerMessage"].startswith("JSON parse error [line: 3, column: ")


@pytest.mark.parametrize("raw", [b"", b"[1,2]", b'"text"', b"null", b"\xff\xfe"])
def test_bodies_that_are_not_json_objects(client, raw):
    response = client.post("/v2.1/orders", content=raw, headers={"content-type": "application/json"})
    assert_error(response, 400, "Unable to parse JSON string")


def test_media_type_is_checked_before_json_and_json_before_the_path_ref(client):
    missing = "/v2.1/orders/0d6f1e2a-3b4c-4d5e-8f60-718293a4b5c6"
    assert client.put(missing, content=b"nope", headers={"content-type": "text/xml"}).status_code == 415
    assert client.put(missing, content=b"nope", headers={"content-type": "application/json"}).status_code == 400
    assert client.put(missing, json={"status": "x"}).status_code == 404


def test_unknown_paths_are_404_and_wrong_methods_405_with_allow(client):
    assert_error(client.get("/v2.1/nothing-here"), 404, "The specified resource does not exist.")
    response = client.delete("/v2.1/orders")
    assert_error(response, 405, "Method Not Allowed", "Method DELETE is not supported on /v2.1/orders.")
    assert set(response.headers["allow"].split(", ")) >= {"GET", "POST"}
    order = create_order(client)
    response = client.post(order["href"], json={})
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) >= {"GET", "PUT", "PATCH", "DELETE"}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("limit=5", "limit: not a valid value"),
        ("limit=101", "limit: not a valid value"),
        ("limit=ten", "limit: not a valid value"),
        ("offset=-1", "offset: not a valid value"),
        ("expand=maybe", "expand: not a valid value"),
        ("sort=price", "sort: not a valid value"),
        ("sort=createdAt::asc", "sort: not a valid value"),
        ("sort=createdAt::ASC|", "sort: not a valid value"),
    ],
)
def test_bad_query_parameters(client, query, message):
    assert_error(client.get(f"/v2.1/orders?referenceId=x&{query}"), 400, message)


def test_sort_terms_combine_and_created_is_an_alias(client):
    a = create_order(client, referenceId="S-1", orderedAt="2025-01-01T00:00:00Z")
    b = create_order(client, referenceId="S-1", orderedAt="2025-02-01T00:00:00Z")
    desc = client.get("/v2.1/orders?referenceId=S-1&sort=created::DESC%7CmodifiedAt").json()
    assert [i["ref"] for i in desc["items"]] == [b["ref"], a["ref"]]
    assert "sort=created::DESC|modifiedAt" in desc["href"]


def test_paging_envelope(client):
    refs = [create_order(client, referenceId="P-1", orderedAt=f"20{10 + i}-01-01T00:00:00Z")["ref"] for i in range(25)]
    page = client.get("/v2.1/orders?referenceId=P-1&offset=10&limit=10").json()
    assert page["offset"] == 10 and page["limit"] == 10
    assert [i["ref"] for i in page["items"]] == refs[10:20]
    assert page["href"] == "http://testserver/v2.1/orders?referenceId=P-1&offset=10&limit=10"
    assert page["first"]["href"].endswith("offset=0&limit=10")
    assert page["last"]["href"].endswith("offset=20&limit=10")
    assert page["prev"]["href"].endswith("offset=0&limit=10")
    assert page["next"]["href"].endswith("offset=20&limit=10")
    first = client.get("/v2.1/orders?referenceId=P-1").json()
    assert "prev" not in first
    past = client.get("/v2.1/orders?referenceId=P-1&offset=50").json()
    assert past["items"] == [] and "next" not in past
    empty = client.get("/v2.1/orders?referenceId=none").json()
    assert empty["last"]["href"].endswith("offset=0&limit=10") and "next" not in empty


def test_an_unexpected_failure_is_a_500_with_a_reference_and_no_trace(client, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(core_orders, "create_order", explode)
    response = client.post("/v2.1/orders", json=ORDER)
    assert_error(response, 500, "Internal Server Error")
    assert "Reference: " in response.json()["developerMessage"]
    assert "secret" not in response.text and "Traceback" not in response.text


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=8,
)
ORDER_KEYS = st.sampled_from([*ORDER, "orderItems", "ref", "bogus"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(ORDER_KEYS, JSON_VALUES, max_size=8), st.sampled_from(["orders", "items", "contacts", "ext"]))
def test_no_body_ever_causes_a_5xx(client, body, target):
    """Whatever JSON object arrives, the answer is a 2xx or a clean 4xx in the error shape."""
    order = client.post("/v2.1/orders", json={**ORDER, "referenceId": "FUZZ"}).json()
    url = {
        "orders": "/v2.1/orders",
        "items": f"/v2.1/orders/{order['ref']}/orderItems",
        "contacts": f"/v2.1/orders/{order['ref']}/contacts",
        "ext": f"/v2.1/orders/{order['ref']}/extensions/ext",
    }[target]
    response = client.post(url, json={**ORDER, **body} if target == "orders" else body)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert set(response.json()) == {"status", "code", "message", "developerMessage", "moreInfoUrl"}
    patched = client.patch(order["href"], json=body)
    assert patched.status_code < 500, patched.text


def test_a_timestamp_in_another_format_names_the_format_expected(client):
    response = client.post("/v2.1/orders", json=order_body(orderedAt="07/03/2025 16:15"))
    assert_error(response, 400, "orderedAt: not a valid value",
                 "Attribute orderedAt is invalid (not a valid value: expected an ISO 8601 date and time such as "
                 "2025-03-07T16:15:11Z).")  # fmt: skip
