"""The Stream API: browsers, events, sessions, carts, orders from events, identity (stream-api.md)."""

from __future__ import annotations

import json
from typing import Any

import pytest


class Browser:
    """One simulated website visitor talking to the Stream API as the SDKs do."""

    def __init__(self, client, key: str | None = None) -> None:
        self.client = client
        self.key = key or client.tenant.client_key
        created = client.get("/v1.2/browser/create.json", params={"client_key": self.key, "message": "{}"})
        assert created.status_code == 200, created.text
        self.ref = created.json()["ref"]
        self.guest = created.json()["customer_ref"]

    def send(self, kind: str, expect: int = 201, **fields: Any) -> dict[str, Any]:
        body = {"type": kind, "browser_id": self.ref, "client_key": self.key, "channel": "WEB", "pos": "shop.example",
                "currency": "EUR", "language": "EN", "page": "/", **fields}  # fmt: skip
        response = self.client.post("/v1.2/events", json=body, headers={"origin": "https://shop.example"})
        assert response.status_code == expect, response.text
        return response.json()

    def owner(self) -> dict[str, Any]:
        shown = self.client.get(f"/v1.2/browser/{self.ref}/show.json", params={"client_key": self.key})
        assert shown.status_code == 200, shown.text
        return shown.json()["customer"]

    def buy(self, reference: str, email: str | None = None, **checkout: Any) -> dict[str, Any]:
        self.send("ADD", product={"item_id": "SKU_1", "type": "MOBILE", "name": "Phone", "price": 30.6, "quantity": 1})
        self.send("ADD", product={"item_id": "SKU_1", "type": "MOBILE", "name": "Phone", "price": 30.6, "quantity": 2})
        self.send("ADD", product={"item_id": "SKU_2", "type": "BAG", "name": "Bag", "price": 5, "quantity": 1})
        contact = {"firstname": "Ann", "lastname": "Lee"}
        if email:
            contact["email"] = email
        self.send("ADD_CONTACTS", contact=contact)
        self.send("CONFIRM", product=[{"item_id": "SKU_1"}, {"item_id": "SKU_2"}])
        return self.send("CHECKOUT", reference_id=reference, status="PURCHASED", **checkout)


def orders_of(client, guest_ref):
    return client.get(f"/v2.1/orders?guestRef={guest_ref}&expand=true").json()["items"]


def test_create_and_show(client):
    browser = Browser(client)
    assert browser.owner()["ref"] == browser.guest and browser.owner()["guestType"] == "visitor"
    assert client.get(f"/v2.1/guests/{browser.guest}").json()["guestType"] == "visitor"
    created = client.get("/v1.2/browser/create.json", params={"client_key": client.tenant.client_key})
    assert created.json()["status"] == "OK" and created.json()["version"] == "1.2"
    assert created.headers["cache-control"] == "no-store" and created.headers["access-control-allow-origin"] == "*"
    assert "firstSeen" not in client.get(f"/v2.1/guests/{browser.guest}").json()
    browser.send("VIEW")
    seen = client.get(f"/v2.1/guests/{browser.guest}").json()
    assert seen["firstSeen"] <= seen["lastSeen"] and seen["lastSeen"].endswith("Z")


def test_a_cart_becomes_an_order_under_the_identified_guest(client):
    browser = Browser(client)
    answer = browser.buy("WEB-1", email="ann@example.com")
    assert answer["status"] == "OK" and answer["ref"]
    guest = browser.owner()
    assert guest["ref"] == browser.guest and guest["guestType"] == "customer"
    [order] = orders_of(client, guest["ref"])
    assert order["referenceId"] == "WEB-1" and order["price"] == 66.2 and order["currencyCode"] == "EUR"
    items = client.get(f"{order['href']}/orderItems?expand=true").json()["items"]
    assert [(i["referenceId"], i["quantity"], i["price"]) for i in items] == [("SKU_1", 2, 30.6), ("SKU_2", 1, 5)]
    contact = client.get(f"{order['href']}/contacts?expand=true").json()["items"][0]
    assert contact["emails"] == ["ann@example.com"] and contact["guest"]["href"].endswith(guest["ref"])


def test_out_of_order_and_missing_events_never_make_half_an_order(client):
    browser = Browser(client)
    browser.send("CONFIRM", product={"item_id": "SKU_9"})
    browser.send("ADD", product={"item_id": "SKU_9", "type": "HOTEL", "name": "Room", "price": 100, "quantity": 1})
    browser.send("CHECKOUT", reference_id="LATE-1", status="purchased")
    assert orders_of(client, browser.guest) == []
    browser.send("ADD_CONTACTS", contact=[{"email": "late@example.com"}])
    browser.send("CHECKOUT", reference_id="LATE-1", status="PURCHASED")
    [order] = orders_of(client, browser.guest)
    assert order["price"] == 100
    browser.send("CHECKOUT", reference_id="LATE-1", status="PURCHASED")
    assert len(orders_of(client, browser.guest)) == 1


def test_a_retried_flow_matches_the_same_order(client):
    first, second = Browser(client), Browser(client)
    first.buy("RETRY-1", email="r@example.com")
    second.buy("RETRY-1", email="r@example.com")
    listed = client.get("/v2.1/orders?referenceId=RETRY-1").json()["items"]
    assert len(listed) == 1
    again = client.post(
        "/v2.1/orders",
        json={"referenceId": "RETRY-1", "orderedAt": "2099-01-01T00:00:00Z", "currencyCode": "EUR", "price": 1},
    )
    assert again.status_code == 201  # far outside the window: a new order
    now = client.get(listed[0]["href"]).json()["orderedAt"]
    same = client.post(
        "/v2.1/orders", json={"referenceId": "RETRY-1", "orderedAt": now, "currencyCode": "EUR", "price": 66.2}
    )
    assert same.status_code == 200 and same.json()["ref"] == listed[0]["ref"]


def test_identity_merges_a_visitor_into_the_known_customer(client):
    known = Browser(client)
    known.send("IDENTITY", identifiers=[{"provider": "email", "id": "m@example.com"}], firstname="Mia")
    assert known.owner()["guestType"] == "customer"
    visitor = Browser(client)
    visitor.send("ADD", product={"item_id": "A", "type": "BOOK", "name": "Book", "price": 10, "quantity": 1})
    visitor.send("IDENTITY", identifiers=[{"provider": "email", "id": "M@example.com"}], city="Oslo")
    assert visitor.owner()["ref"] == known.guest
    retired = client.get(f"/v2.1/guests/{visitor.guest}").json()
    assert retired["ref"] == known.guest and retired["city"] == "Oslo"
    merges = client.get(f"/opencdp/v1/guests/{known.guest}/merges").json()["items"]
    assert merges[0]["retired"]["ref"] == visitor.guest and merges[0]["source"] == "IDENTITY event"
    visitor.send("ADD_CONTACTS", contact={"firstname": "Mia", "lastname": "Berg"})
    visitor.send("CONFIRM", product={"item_id": "A"})
    visitor.send("CHECKOUT", reference_id="MERGED-1", status="PURCHASED")
    assert [o["referenceId"] for o in orders_of(client, known.guest)] == ["MERGED-1"]
    sessions = client.get(f"/opencdp/v1/guests/{known.guest}/sessions").json()["items"]
    assert len(sessions) == 2


def test_two_known_customers_on_one_device_switch_instead_of_merging(client):
    mine = Browser(client)
    mine.send("IDENTITY", identifiers=[{"provider": "email", "id": "c@example.com"}])
    mine.buy("C-1", email="c@example.com")
    other = Browser(client)
    other.send("IDENTITY", identifiers=[{"provider": "email", "id": "m2@example.com"}])
    mine.send("IDENTITY", identifiers=[{"provider": "email", "id": "m2@example.com"}])
    assert mine.owner()["ref"] == other.guest
    assert client.get(f"/v2.1/guests/{mine.guest}").json()["ref"] == mine.guest
    assert [o["referenceId"] for o in orders_of(client, mine.guest)] == ["C-1"]
    closed = client.get(f"/opencdp/v1/guests/{mine.guest}/sessions").json()["items"]
    assert closed[0]["closeReason"] == "SWITCH"


def test_order_checkout_needs_an_identified_guest(client):
    browser = Browser(client)
    order = {"referenceId": "OC-1", "orderedAt": "2025-03-07T16:15:11Z", "status": "PURCHASED", "currencyCode": "EUR",
             "price": 12, "orderItems": [{"type": "BOOK", "name": "Atlas", "price": 12,
                                          "extensions": [{"name": "ext", "giftWrap": True}]}],
             "extensions": [{"name": "ext", "key": "default", "storeLocation": "Leeds"}]}  # fmt: skip
    browser.send("ORDER_CHECKOUT", order=order)
    assert orders_of(client, browser.guest) == []
    browser.send("IDENTITY", identifiers=[{"provider": "email", "id": "oc@example.com"}])
    browser.send("ORDER_CHECKOUT", order=order)
    [created] = orders_of(client, browser.guest)
    assert client.get(f"{created['href']}/extensions/ext").json()["storeLocation"] == "Leeds"
    item = client.get(f"{created['href']}/orderItems?expand=true").json()["items"][0]
    assert item["quantity"] == 1 and item["currencyCode"] == "EUR"
    assert client.get(f"{item['href']}/extensions/ext").json()["giftWrap"] is True
    bad = browser.send("ORDER_CHECKOUT", expect=400, order={**order, "colour": "red"})
    assert bad["error_msg"] == "order.colour: not supported"
    missing = browser.send("ORDER_CHECKOUT", expect=400, order={k: v for k, v in order.items() if k != "price"})
    assert missing["error_msg"] == "order.price: may not be null."


def test_cart_types_at_close(client):
    def session_of(browser):
        return client.get(f"/opencdp/v1/guests/{browser.guest}/sessions").json()["items"][0]

    abandoned = Browser(client)
    abandoned.send("ADD", product={"item_id": "X", "type": "T", "name": "N", "price": 2.5, "quantity": 2})
    abandoned.send("FORCE_CLOSE")
    closed = session_of(abandoned)
    assert (closed["status"], closed["cartType"], closed["abandonedRevenue"], closed["closeReason"]) == (
        "CLOSED", "ABANDONED", 5, "FORCE_CLOSE")  # fmt: skip
    cleared = Browser(client)
    cleared.send("ADD", product={"item_id": "X", "type": "T", "name": "N", "price": 1, "quantity": 1})
    cleared.send("CLEAR_CART")
    cleared.send("FORCE_CLOSE")
    assert session_of(cleared)["cartType"] == "CLOSED"
    browsed = Browser(client)
    browsed.send("VIEW")
    browsed.send("FORCE_CLOSE")
    assert session_of(browsed)["cartType"] == "BROWSED"
    bought = Browser(client)
    bought.buy("CT-1", email="ct@example.com")
    bought.send("FORCE_CLOSE")
    assert session_of(bought)["cartType"] == "CONVERTED"


def test_the_sweep_closes_idle_sessions(client, database):
    from datetime import timedelta

    from opencdp.core.stream import journal
    from opencdp.core.values import utcnow

    browser = Browser(client)
    browser.send("ADD", product={"item_id": "X", "type": "T", "name": "N", "price": 1, "quantity": 1})
    with database.write() as conn:
        assert journal.sweep(conn, utcnow()) == 0
        assert journal.sweep(conn, utcnow() + timedelta(minutes=21)) >= 1
    session = client.get(f"/opencdp/v1/guests/{browser.guest}/sessions").json()["items"][0]
    assert session["closeReason"] == "TIMEOUT" and session["cartType"] == "ABANDONED"


def test_payment_sets_the_payment_type(client):
    browser = Browser(client)
    browser.send("PAYMENT", pay_type="Voucher")
    browser.buy("PAY-1", email="pay@example.com")
    [order] = orders_of(client, browser.guest)
    assert order["paymentType"] == "Voucher"
    browser.send("PAYMENT", pay_type="Card")
    assert client.get(order["href"]).json()["paymentType"] == "Card"


def test_flight_items_carry_their_segments(client):
    browser = Browser(client)
    flight = {
        "item_id": "FLIGHT_1",
        "type": "FLIGHT",
        "name": "DUB-LHR",
        "price": 99,
        "quantity": 1,
        "origin": "dub",
        "destination": "lhr",
        "departureDateTime": "2025-06-01T07:00Z",
        "flight_number": "EI152",
    }
    browser.send("ADD", product=flight)
    browser.send("ADD", product={"item_id": "BAG_1", "type": "BAG", "name": "Bag", "price": 25, "quantity": 1})
    browser.send(
        "ADD_CONSUMERS",
        consumer=[
            {"firstname": "Ann", "lastname": "Lee", "item_id": ["FLIGHT_1", "BAG_1"]},
            {"firstname": "Kid", "lastname": "Lee", "item_id": "FLIGHT_1"},
        ],
    )
    browser.send("ADD_CONTACTS", contact={"firstname": "Ann", "lastname": "Lee", "email": "fly@example.com"})
    browser.send("CONFIRM", product=[{"item_id": "FLIGHT_1"}, {"item_id": "BAG_1"}])
    browser.send("CHECKOUT", reference_id="PNR-1", status="CONFIRMED")
    [order] = orders_of(client, browser.guest)
    items = client.get(f"{order['href']}/orderItems?expand=true").json()["items"]
    segment = items[0]["flightSegments"][0]
    assert (segment["origin"], segment["departureDateTime"], segment["flightNumber"]) == (
        "DUB",
        "2025-06-01T07:00Z",
        "EI152",
    )
    consumers = client.get(f"{order['href']}/consumers?expand=true").json()["items"]
    assert consumers[0]["guest"]["href"].endswith(browser.guest)
    used = client.get(f"{consumers[1]['href']}/orderItems").json()["items"]
    assert [i["ref"] for i in used] == [items[0]["ref"]]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"browser_id": "x"}, 400, "type: may not be null."),
        ({"type": "VIEW", "browser_id": ""}, 400, "browser_id: may not be null."),
        ({"type": "VIEW", "browser_id": "0d6f1e2a-3b4c-4d5e-8f60-718293a4b5c6"}, 404,
         "Browser 0d6f1e2a-3b4c-4d5e-8f60-718293a4b5c6 was not found"),
        ({"type": "ADD", "product": {"item_id": "A"}}, 400, "product.type: may not be null."),
        ({"type": "VIEW", "ext": {f"k{i}": i for i in range(51)}}, 400, "ext: not a valid value"),
        ({"type": "VIEW", "ext": {"nested": {"a": 1}}}, 400, "ext.nested: not a valid value"),
        ({"type": "VIEW", "channel": "FAX"}, 400, "channel: not a valid value"),
        ({"type": "IDENTITY"}, 400, "identifiers: may not be null."),
        ({"type": "CHECKOUT", "reference_id": "R"}, 400, "status: may not be null."),
        ({"type": "Has Space"}, 400, "type: not a valid value"),
    ],
)  # fmt: skip
def test_event_errors(client, body, status, message):
    browser = Browser(client)
    body = {"browser_id": browser.ref, "client_key": client.tenant.client_key, **body}
    response = client.post("/v1.2/events", json=body)
    assert response.status_code == status, response.text
    answer = response.json()
    assert answer["error_msg"] == message and answer["status"] == status and answer["version"] == "1.2"
    assert answer["client_key"] == client.tenant.client_key and answer["moreInfo"]


def test_ext_types_are_fixed_per_event_type(client):
    browser = Browser(client)
    browser.send("VIEW", ext={"pageVariantId": 3})
    assert (
        browser.send("VIEW", expect=400, ext={"pageVariantId": "three"})["error_msg"]
        == "ext.pageVariantId: Incorrect data type"
    )
    browser.send("SIGNUP", ext={"pageVariantId": "three"})


def test_transport_errors(client, anonymous):
    key = client.tenant.client_key
    unknown = anonymous.post("/v1.2/events", json={"type": "VIEW", "browser_id": "x", "client_key": "nope"})
    assert unknown.status_code == 401 and unknown.json()["error_msg"] == "Invalid client key"
    assert unknown.json()["client_key"] == "nope"
    assert (
        anonymous.get("/v1.2/event/create.json", params={"client_key": key}).json()["error_msg"]
        == "message: may not be null."
    )
    bad = anonymous.post("/v1.2/events", content=b"not json", headers={"content-type": "application/json"})
    assert bad.status_code == 400 and bad.json()["error_msg"] == "Unable to parse JSON string"
    xml = anonymous.post("/v1.2/events", content=b"{}", headers={"content-type": "application/xml"})
    assert xml.status_code == 415 and xml.json()["error_msg"] == "Unsupported media type"
    huge = anonymous.post("/v1.2/events", content=b" " * (257 * 1024), headers={"content-type": "text/plain"})
    assert huge.status_code == 413
    assert anonymous.delete("/v1.2/events").status_code == 405
    # served by plain routes: a GET route must not answer HEAD (a HEAD making a browser would be a write)
    assert anonymous.head("/v1.2/browser/create.json", params={"client_key": key}).status_code == 405
    shown = anonymous.get("/v1.2/browser/nope/show.json", params={"client_key": key})
    assert shown.status_code == 404 and shown.json()["client_key"] == key
    preflight = anonymous.options("/v1.2/events", headers={"origin": "https://shop.example"})
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "https://shop.example"
    assert preflight.headers["access-control-allow-methods"] == "GET, POST, OPTIONS"
    assert preflight.headers["access-control-allow-headers"] == "Content-Type, X-Library-Version, X-Client-Software-ID"
    assert preflight.headers["access-control-max-age"] == "86400" and preflight.headers["vary"] == "Origin"
    assert "access-control-allow-credentials" not in preflight.headers


def test_get_event_and_edge_aliases(client, database):
    from opencdp.core.tenants import configure

    with database.write() as conn:
        configure(conn, client.tenant, context_ids=["ctx-1"], sites={"site-a": "mapped.example"})
    created = client.get("/v1/events/v1.2/browser/create.json", params={"sitecoreContextId": "ctx-1", "client_key": ""})
    assert created.status_code == 200, created.text
    browser = created.json()["ref"]
    event = {"type": "VIEW", "browser_id": browser, "client_key": "", "pos": ""}
    posted = client.post("/v1/events/v1.2/events?sitecoreContextId=ctx-1&siteId=site-a", json=event)
    assert posted.status_code == 201, posted.text
    via_get = client.get(
        "/v1.2/event/create.json",
        params={"client_key": client.tenant.client_key, "message": json.dumps({"type": "VIEW", "browser_id": browser})},
    )
    assert via_get.status_code == 201
    shown = client.get(f"/v1/events/v1.2/browser/{browser}/show.json", params={"sitecoreContextId": "ctx-1"})
    assert shown.status_code == 200 and shown.json()["customer"]["ref"] == created.json()["customer_ref"]
    sessions = client.get(f"/opencdp/v1/guests/{created.json()['customer_ref']}/sessions").json()["items"]
    assert sessions[0]["pointOfSale"] == "mapped.example"


def test_an_unknown_point_of_sale_is_stored_without_effect(client, database):
    from opencdp.core.tenants import configure

    with database.write() as conn:
        configure(conn, client.tenant, points_of_sale=["shop.example"])
    browser = Browser(client)
    browser.send(
        "ADD", pos="elsewhere.example", product={"item_id": "A", "type": "T", "name": "N", "price": 1, "quantity": 1}
    )
    browser.send("ADD_CONTACTS", pos="elsewhere.example", contact={"email": "pos@example.com"})
    browser.send("CONFIRM", pos="elsewhere.example", product={"item_id": "A"})
    browser.send("CHECKOUT", pos="elsewhere.example", reference_id="POS-1", status="PURCHASED")
    assert orders_of(client, browser.guest) == []


def test_stream_tenants_are_isolated(client, other):
    browser = Browser(client)
    response = other.post(
        "/v1.2/events", json={"type": "VIEW", "browser_id": browser.ref, "client_key": other.tenant.client_key}
    )
    assert response.status_code == 404
    shown = other.get(f"/v1.2/browser/{browser.ref}/show.json", params={"client_key": other.tenant.client_key})
    assert shown.status_code == 404
