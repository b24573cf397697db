"""Bad input and abuse (issue: bad input never costs a 5xx, a half-written record or memory), by class.

Each test sends what an attacker or a careless client would, on SQLite and on PostgreSQL, and checks
the 4xx with its words, and that nothing was written.
"""

from __future__ import annotations

import base64
import json
import uuid
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from batch_helpers import order, read_log, record, run_batch
from conftest import ITEM, assert_error, create_order, order_body, sign_in
from opencdp.core.json_input import MAX_DEPTH
from opencdp.store.database import Database
from opencdp.store.tables import orders, stream_journal
from test_stream import Browser

RANGE = "must be greater than -1000000000000000 and less than 1000000000000000"


def stored_orders(database: Database, tenant_id: int) -> int:
    with database.read() as conn:
        return len(conn.execute(orders.select().where(orders.c.tenant_id == tenant_id)).all())


# 1. Numbers too large to store or render


@pytest.mark.parametrize("price", [1e20, -1e15, 10**15, 1e300])
def test_a_price_out_of_range_is_refused_and_nothing_is_stored(client, database, price):
    response = client.post("/v2.1/orders", json=order_body(price=price))
    assert_error(response, 400, "price: not a valid value", f"Attribute price is invalid ({RANGE}).")
    assert stored_orders(database, client.tenant.id) == 0


def test_the_largest_prices_are_stored_and_render_exactly(client):
    order = create_order(client, price=999_999_999_999_999)
    assert client.get(f"/v2.1/orders/{order['ref']}").json()["price"] == 999_999_999_999_999
    item = client.post(f"/v2.1/orders/{order['ref']}/orderItems", json={**ITEM, "price": -999_999_999_999.99})
    assert item.status_code == 201 and item.json()["price"] == -999_999_999_999.99
    refused = client.post(f"/v2.1/orders/{order['ref']}/orderItems", json={**ITEM, "price": 1e20})
    assert_error(refused, 400, "price: not a valid value")
    patched = client.patch(f"/v2.1/orderItems/{item.json()['ref']}", json={"originalPrice": 1e16})
    assert_error(patched, 400, "originalPrice: not a valid value")
    assert len(client.get(f"/v2.1/orders/{order['ref']}/orderItems").json()["items"]) == 1


def test_a_stored_value_beyond_the_range_still_renders(client, database):
    """Whatever a store holds (written before the range was enforced) reads back, never a 500."""
    order = create_order(client)
    with database.write() as conn:
        conn.execute(orders.update().where(orders.c.ref == order["ref"]).values(price=Decimal("1E+20")))
    for path in (f"/v2.1/orders/{order['ref']}", f"/v2.1/orders?referenceId={order['referenceId']}&expand=true"):
        response = client.get(path)
        assert response.status_code == 200, response.text
    assert client.get(f"/v2.1/orders/{order['ref']}").json()["price"] == 1e20


def test_a_stream_cart_cannot_carry_a_price_out_of_range(client, database):
    browser = Browser(client)
    refused = browser.send("ADD", expect=400, product={"item_id": "S", "type": "MOBILE", "name": "P", "price": 1e20,
                                                       "quantity": 1})  # fmt: skip
    assert refused["error_msg"] == "product.price: not a valid value"
    big = {"item_id": "S", "type": "MOBILE", "name": "P", "price": 999_999_999_999_999, "quantity": 5}
    browser.send("ADD", product=big)
    browser.send("ADD_CONTACTS", contact={"email": "big@example.com"})
    browser.send("CONFIRM", product={"item_id": "S"})
    # The total is only known once the cart is: the CHECKOUT is accepted, and applying it fails with its reason.
    browser.send("CHECKOUT", reference_id="BIG-1", status="PURCHASED")
    assert client.get("/v2.1/orders?referenceId=BIG-1").json()["items"] == []
    with database.read() as conn:
        failures = (
            conn.execute(select(stream_journal.c.failure).where(stream_journal.c.tenant_id == client.tenant.id))
            .scalars()
            .all()
        )
    assert failures == [f"Attribute price is invalid ({RANGE})."]


def test_a_batch_line_with_a_price_out_of_range_fails_alone(client, database, settings):
    lines = [record("order", "upsert", order("BIG-1", price=1e20)), record("order", "upsert", order("OK-1"))]
    status = run_batch(client, database, settings, lines)
    assert status["statistics"]["failedRecords"] == 1 and status["statistics"]["successfulRecords"] == 1
    [failure] = read_log(client, status)
    assert failure["message"] == f"Validation error: Attribute value.price is invalid ({RANGE})"
    assert stored_orders(database, client.tenant.id) == 1


# 2. Unbounded recursion


def nested(levels: int) -> dict[str, Any]:
    node: dict[str, Any] = {"attr": "guest.country", "op": "equals", "value": "IE"}
    for _ in range(levels):
        node = {"not": node}
    return node


@pytest.mark.parametrize("route", ["/opencdp/v1/segments/validate", "/opencdp/v1/segments/preview"])
def test_a_segment_nested_hundreds_of_levels_deep_is_refused(client, route):
    response = client.post(route, json={"definition": {"match": nested(300)}})
    assert response.status_code == 400, response.text
    assert response.json()["developerMessage"].startswith("Attribute definition.match.not.not.not")
    assert f"nests more than {MAX_DEPTH} levels" in response.json()["developerMessage"]


def test_the_console_refuses_a_deep_definition_with_its_path(console):
    form = {"csrf": console.csrf, "name": "deep", "definition": json.dumps({"match": nested(300)}),
            "action": "validate"}  # fmt: skip
    refused = console.post("/ui/segments/new", data=form)
    assert refused.status_code == 400 and "definition.match.not.not" in refused.text


def test_any_json_body_nested_too_deep_is_refused(client, database):
    deep: Any = "x"
    for _ in range(MAX_DEPTH + 1):
        deep = [deep]
    response = client.post("/v2.1/orders", json=order_body(pointOfSale=deep))
    assert response.status_code == 400 and "nests more than" in response.json()["developerMessage"]
    thousand = b'{"a":' + b"[" * 1000 + b"]" * 1000 + b"}"
    response = client.post("/v2.1/orders", content=thousand, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert stored_orders(database, client.tenant.id) == 0


# 3. Authentication decided per route


@pytest.mark.parametrize("action", ["log", "upload"])
def test_a_path_shaped_like_a_signed_link_still_needs_credentials(anonymous, action):
    """GET /v2/batches/inspect/log is `/inspect/{ref}`'s, which needs credentials, not the signed log's."""
    response = anonymous.get(f"/v2/batches/inspect/{action}")
    assert response.status_code == 401 and response.json()["status"] == "UNAUTHORIZED"
    assert_error(anonymous.put("/v2/batches/inspect/upload", content=b"x"), 403, "Signature does not match")


def test_every_protected_route_answers_401_without_credentials(app, anonymous):
    """Every documented route under a protected prefix, with any path parameter filled in."""
    checked = 0
    for path, operations in app.openapi()["paths"].items():
        if not path.startswith(("/v2.1", "/v2/", "/opencdp/")):
            continue
        concrete = path.replace("{", "").replace("}", "")
        for method in operations:
            response = anonymous.request(method.upper(), concrete, content=b"{}")
            assert response.status_code == 401, (method, path, response.text)
            checked += 1
    assert checked > 50


def test_signed_links_verify_their_own_signature(anonymous):
    ref = uuid.uuid4()
    assert_error(anonymous.get(f"/v2/batches/{ref}/log?clientKey=x&expires=1&signature=x"), 403,
                 "Signature does not match")  # fmt: skip
    assert anonymous.put(f"/v2/batches/{ref}/upload", content=b"x").status_code == 403


# 4. NUL characters


@pytest.mark.parametrize(
    "path",
    [
        "/v2.1/orders?referenceId=%00",
        "/v2.1/guests?email=a%00b",
        "/v2/batches/inspect?status=%00",
        "/opencdp/v1/segments?limit=%00",
        "/v2.1/orders?referenceId=x&%00=y",
    ],
)
def test_a_nul_in_a_query_parameter_is_a_400(client, path):
    response = client.get(path)
    assert response.status_code == 400, response.text
    assert "contains a NUL character" in response.json()["developerMessage"]


def test_a_nul_on_the_public_routes_is_a_400(client, anonymous):
    created = anonymous.get("/v1.2/browser/create.json?client_key=%00")
    assert created.status_code == 400 and created.json()["error_msg"] == "client_key: not a valid value"
    token = anonymous.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": "\x00",
                                                 "client_secret": "x"})  # fmt: skip
    assert token.status_code == 400 and token.json()["error"] == "invalid_request"
    browser = Browser(client)
    event = browser.send("VIEW", expect=400, page="/a\x00b")
    assert event["error_msg"] == "page: not a valid value"
    keyed = browser.send("VIEW", expect=400, ext={"a\x00": 1})
    assert keyed["error_msg"] == "ext.a\\u0000: not a valid value"
    assert (
        anonymous.get("/v1.2/browser/a%00b/show.json", params={"client_key": client.tenant.client_key}).status_code
        == 400
    )


def test_credentials_holding_a_nul_are_refused_like_any_wrong_ones(anonymous):
    basic = "Basic " + base64.b64encode(b"ck\x00x:tok\x00").decode()
    response = anonymous.get("/v2.1/orders?referenceId=x", headers={"Authorization": basic})
    assert response.status_code == 401 and response.json()["status"] == "UNAUTHORIZED"
    bearer = "Bearer " + base64.b64encode(b"a\x00b").decode()
    assert (
        anonymous.get("/v2/audienceExports/definitions/x/reports", headers={"Authorization": bearer}).status_code == 401
    )


def test_a_nul_in_a_body_or_form_is_a_400_and_nothing_is_written(client, database, anonymous):
    response = client.post("/v2.1/orders", json=order_body(referenceId="A\x00B"))
    assert response.status_code == 400
    extension = create_order(client)
    response = client.post(f"/v2.1/orders/{extension['ref']}/extensions/ext", json={"k\x00": "v"})
    assert response.status_code == 400
    assert stored_orders(database, client.tenant.id) == 1
    signed_in = sign_in(anonymous, "ck\x00", "tok\x00")
    assert signed_in.status_code == 400


def test_a_nul_in_a_batch_line_fails_that_record(client, database, settings):
    lines = [record("order", "upsert", order("A\x00")), record("order", "upsert", order("B", contact={"email\x00": 1}))]
    status = run_batch(client, database, settings, lines)
    assert status["statistics"]["failedRecords"] == 2
    assert [failure["message"] for failure in read_log(client, status)] == [
        "Validation error: Attribute value.referenceId is invalid (contains a NUL character, which cannot be stored)",
        "Validation error: Attribute value.contact.email\\u0000 is invalid (contains a NUL character, which cannot be stored)",
    ]
    assert stored_orders(database, client.tenant.id) == 0


# 5. Body limits


def test_a_body_over_its_route_limit_is_a_413(client, anonymous):
    big = b'{"referenceId": "' + b"x" * (1024 * 1024) + b'"}'
    assert_error(client.post("/v2.1/orders", content=big, headers={"content-type": "application/json"}), 413,
                 "Request Entity Too Large")  # fmt: skip

    def chunks() -> Any:  # no Content-Length: counted as it streams in
        for _ in range(300):
            yield b"a" * 4096

    streamed = anonymous.post(
        "/oauth/token", content=chunks(), headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert streamed.status_code == 413
    login = anonymous.post("/ui/login", content=b"a=" + b"x" * (2 * 1024 * 1024),
                           headers={"content-type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert login.status_code == 413
    event = anonymous.post("/v1.2/events", content=chunks(), headers={"content-type": "application/json"})
    assert event.status_code == 413 and event.json()["error_msg"] == "Request Entity Too Large"
