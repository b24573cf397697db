"""The web console over HTTP (segments-exports.md §5), on SQLite and PostgreSQL: sessions, CSRF, tenancy,
escaping, and what each page shows. The same flows in a real browser: tests/test_console_browser.py.
"""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient

from conftest import create_order, csrf_of, make_client, sign_in
from opencdp.core.batch import batches
from opencdp.core.exports.runs import Exporter
from opencdp.core.segments.builds import Builder
from opencdp.core.tenants import create_tenant
from opencdp.core.values import utcnow
from opencdp.store import tenants as tenant_store

PAGES = ["/ui/guests", "/ui/batches", "/ui/segments", "/ui/segments/new", "/ui/exports", "/ui/exports/new",
         f"/ui/guests/{uuid.uuid4()}", f"/ui/orders/{uuid.uuid4()}"]  # fmt: skip


def test_without_a_session_every_page_and_action_sends_to_the_sign_in(anonymous):
    for path in PAGES:
        response = anonymous.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/ui/login?next=/ui/")
    for path in ("/ui/segments/new", "/ui/logout", f"/ui/segments/{uuid.uuid4()}/build"):
        assert anonymous.post(path, data={"csrf": "x"}, follow_redirects=False).status_code == 303
    assert anonymous.get("/ui/", follow_redirects=False).headers["location"] == "/ui/guests"


def test_signing_in_and_out(app, client):
    browser = TestClient(app, raise_server_exceptions=False)
    form = browser.get("/ui/login?next=/ui/batches")
    assert form.headers["content-security-policy"] == "default-src 'self'; frame-ancestors 'none'"
    signed = sign_in(browser, *client.credentials, next_path="/ui/batches")
    assert signed.status_code == 303 and signed.headers["location"] == "/ui/batches"
    cookie = signed.headers["set-cookie"]
    assert (
        "opencdp_session=" in cookie
        and "HttpOnly" in cookie
        and "SameSite=strict" in cookie.replace("Strict", "strict")
    )
    assert "Path=/ui" in cookie and "Secure" not in cookie
    page = browser.get("/ui/guests")
    assert page.status_code == 200 and client.tenant.name in page.text
    out = browser.post("/ui/logout", data={"csrf": csrf_of(page.text)}, follow_redirects=False)
    assert out.status_code == 303 and browser.get("/ui/guests", follow_redirects=False).status_code == 303


def test_sign_in_is_refused_politely_then_rate_limited(app, client):
    browser = TestClient(app, raise_server_exceptions=False, client=(f"10.0.{uuid.uuid4().int % 250}.7", 5000))
    key, _token = client.credentials
    wrong = sign_in(browser, key, "tok_wrong")
    assert wrong.status_code == 401 and "was refused" in wrong.text and key in wrong.text
    no_token = browser.post("/ui/login", data={"client_key": key, "api_token": "x"}, follow_redirects=False)
    assert no_token.status_code == 403
    for _ in range(9):
        sign_in(browser, key, "tok_wrong")
    assert sign_in(browser, *client.credentials).status_code == 429
    assert sign_in(browser, key, "x", next_path="https://evil.example/").status_code == 429


def test_next_only_leads_to_console_pages(app, client):
    browser = TestClient(app, raise_server_exceptions=False)
    for target in ("https://evil.example/ui/", "//evil.example/ui/x", "/v2.1/orders"):
        assert sign_in(browser, *client.credentials, next_path=target).headers["location"] == "/ui/guests"


def test_changes_need_the_csrf_token_and_our_origin(console):
    assert console.post("/ui/segments/new", data={"name": "x", "definition": "{}", "action": "save"}).status_code == 403
    wrong = {"csrf": "nope", "name": "x", "definition": "{}", "action": "save"}
    assert console.post("/ui/segments/new", data=wrong).status_code == 403
    foreign = {"csrf": console.csrf, "name": "x", "definition": "{}", "action": "save"}
    assert console.post("/ui/segments/new", data=foreign, headers={"Origin": "https://evil.example"}).status_code == 403
    assert "No segments yet" in console.get("/ui/segments").text


def test_a_revoked_token_ends_its_sessions(console, client, database):
    with database.write() as conn:
        tenant = tenant_store.find_by_client_key(conn, client.credentials[0])
        for row in tenant_store.list_tokens(conn, tenant["id"]):
            tenant_store.revoke_token(conn, tenant["id"], row["id"], utcnow())
    assert console.get("/ui/guests", follow_redirects=False).status_code == 303


def test_another_tenants_records_are_not_found(console, other):
    guest = other.post("/v2.1/guests", json={"guestType": "customer", "firstName": "Foreign"}).json()["ref"]
    order = create_order(other)
    assert console.get(f"/ui/guests/{guest}").status_code == 404
    assert console.get(f"/ui/guests/{guest}/orders").status_code == 404
    assert console.get(f"/ui/orders/{order['ref']}").status_code == 404
    assert "Foreign" not in console.get("/ui/guests").text
    assert "No guest matches" in console.get("/ui/guests", params={"q": guest}).text
    assert "No guest matches" in console.get("/ui/guests", params={"q": order["referenceId"], "by": "order"}).text


def test_guest_supplied_strings_are_escaped(console, client):
    ref = client.post("/v2.1/guests", json={"guestType": "customer", "firstName": "<script>alert(1)</script>",
                                           "emails": ["x@example.com"]}).json()["ref"]  # fmt: skip
    client.post(f"/v2.1/guests/{ref}/extensions", json={"name": "ext", "key": "default", "note": "<b>bold</b>"})
    for path in ("/ui/guests", f"/ui/guests/{ref}"):
        text = console.get(path).text
        assert "<script>alert(1)</script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&lt;b&gt;bold&lt;/b&gt;" in console.get(f"/ui/guests/{ref}").text


def test_guests_profile_orders_and_order_detail(console, client):
    order = create_order(client, referenceId="UI-ORDER-1", price=129.9)
    contact = {"firstName": "Ann", "lastName": "Lee", "emails": ["ann.ui@example.com"],
               "identifiers": [{"provider": "CRM_ID", "id": "CRM-UI-7"}]}  # fmt: skip
    guest = client.post(f"/v2.1/orders/{order['ref']}/contacts", json=contact).json()["guest"]["href"].rsplit("/", 1)[1]
    item = client.post(f"/v2.1/orders/{order['ref']}/orderItems", json={"type": "SHOES", "name": "Trail runner",
                       "price": 129.9, "currencyCode": "EUR", "quantity": 1}).json()  # fmt: skip
    client.post(f"/v2.1/orderItems/{item['ref']}/extensions", json={"name": "ext", "key": "default", "shoeSize": "42"})
    client.post(f"/v2.1/guests/{guest}/extensions", json={"name": "ext1", "key": "default", "loyaltyTier": "gold"})
    for query, by in (("ann.ui@example.com", "email"), ("CRM-UI-7", "identifier"), ("UI-ORDER-1", "order"),
                      (guest, "ref"), ("ann.ui@example.com", "any")):  # fmt: skip
        found = console.get("/ui/guests", params={"q": query, "by": by}).text
        assert f"/ui/guests/{guest}" in found and "Ann Lee" in found, (query, by)
    assert "No guest matches" in console.get("/ui/guests", params={"q": "nobody@example.com"}).text
    profile = console.get(f"/ui/guests/{guest}").text
    assert "Loyalty Tier" in profile and "loyaltyTier" in profile and "CRM-UI-7" in profile
    orders_tab = console.get(f"/ui/guests/{guest}/orders").text
    assert "UI-ORDER-1" in orders_tab and "contact" in orders_tab and "129.90" in orders_tab and "<svg" in orders_tab
    detail = console.get(f"/ui/orders/{order['ref']}").text
    assert "Trail runner" in detail and "Shoe Size" in detail and ">42<" in detail and "Ann" in detail
    assert "No sessions" in console.get(f"/ui/guests/{guest}/timeline", params={"days": "7"}).text


def test_segments_in_the_console(console, client, database):
    client.post("/v2.1/guests", json={"guestType": "customer", "firstName": "Irish", "country": "IE"})
    bad = {"csrf": console.csrf, "name": "Irish", "definition": '{"match": {"attr": "guest.country", "op": "gt", "value": 1}}',
           "action": "validate"}  # fmt: skip
    refused = console.post("/ui/segments/new", data=bad)
    assert refused.status_code == 400 and "definition.match.op: comparator" in refused.text
    assert "&#34;gt&#34;" in refused.text or "&quot;gt&quot;" in refused.text  # the input is kept
    good = {
        **bad,
        "definition": '{"match": {"attr": "guest.country", "op": "equals", "value": "IE"}}',
        "action": "size",
    }
    assert "1 of 1 guests" in console.post("/ui/segments/new", data=good).text
    saved = console.post("/ui/segments/new", data={**good, "action": "save"}, follow_redirects=False)
    assert saved.status_code == 303
    segment_page = saved.headers["location"]
    built = console.post(f"{segment_page}/build", data={"csrf": console.csrf}, follow_redirects=False)
    assert built.status_code == 303
    Builder(database).run_available()
    page = console.get(segment_page).text
    assert "success" in page and 'class="size">1<' in page and "Irish" in page
    assert console.post(f"{segment_page}/pause", data={"csrf": console.csrf}).status_code == 409
    listing = console.get("/ui/segments").text
    assert "Irish" in listing and "+1 / −0" in listing


def test_exports_and_batches_in_the_console(console, client, database):
    client.post("/v2.1/guests", json={"guestType": "customer", "firstName": "Irish", "country": "IE"})
    segment = client.post(
        "/opencdp/v1/segments",
        json={"name": "Irish", "definition": {"match": {"attr": "guest.country", "op": "equals", "value": "IE"}}},
    ).json()
    form = {"csrf": console.csrf, "name": "Irish daily", "friendlyId": "", "segmentRef": segment["ref"], "type": "full",
            "format": "ndjson", "delimiter": ",", "header": "true", "schedule": '{"type": "instant"}',
            "maxRecordsPerFile": "500000", "webhookUrl": "", "output": '{"guest": ["firstName"]}'}  # fmt: skip
    refused = console.post("/ui/exports/new", data={**form, "output": '{"guest": ["shoeSize"]}'})
    assert refused.status_code == 400 and "output.guest[0]: unknown field" in refused.text
    saved = console.post("/ui/exports/new", data=form, follow_redirects=False)
    assert saved.headers["location"] == "/ui/exports/irish_daily"
    assert (
        console.post("/ui/exports/irish_daily/run", data={"csrf": console.csrf}, follow_redirects=False).status_code
        == 303
    )
    Builder(database).run_available()  # the segment was never built: the run built it first
    Exporter(database, client.app.state.settings.files()).run_available()
    page = console.get("/ui/exports/irish_daily").text
    assert "success" in page and "irish_daily-" in page and "/files/exports/" in page
    assert '"firstName":"Irish"' in console.get("/ui/exports/irish_daily", params={"preview": "1"}).text.replace(
        "&#34;", '"'
    )
    assert "irish_daily" in console.get("/ui/exports").text

    with database.write() as conn:
        tenant = client.tenant
        batches.allocate(conn, tenant, str(uuid.uuid4()), "0" * 32, 10, utcnow(), utcnow())
    listed = console.get("/ui/batches").text
    assert "uploading" in listed


def test_each_tenant_only_sees_its_own_lists(app, database, console, client):
    with database.write() as conn:
        create_tenant(conn, f"quiet-{uuid.uuid4().hex[:6]}")
    stranger = make_client(app, database)
    stranger.post("/opencdp/v1/segments", json={"name": "Stranger things", "definition": {}})
    assert "Stranger things" not in console.get("/ui/segments").text


def test_expired_sessions_are_forgotten(console, database):
    from datetime import timedelta

    from opencdp.core import console as console_core

    with database.write() as conn:
        console_core.forget_expired(conn, utcnow() + timedelta(hours=3))
    assert console.get("/ui/guests", follow_redirects=False).status_code == 303


def test_timeline_segments_held_and_merged_guests(console, client, database):
    from datetime import timedelta

    from opencdp.core.stream import journal
    from test_stream import Browser

    buyer = Browser(client)
    buyer.send("VIEW", page="/home")
    buyer.buy("TL-1", email="tl@example.com")
    with database.write() as conn:
        journal.sweep(conn, utcnow() + timedelta(hours=1))
    guest = buyer.owner()["ref"]
    timeline = console.get(f"/ui/guests/{guest}/timeline").text
    assert "CONVERTED" in timeline and "CHECKOUT" in timeline and "/home" in timeline and "/ui/orders/" in timeline
    assert "No sessions" in console.get(f"/ui/guests/{guest}/timeline", params={"cart": "ABANDONED"}).text
    assert "CONVERTED" in console.get(f"/ui/guests/{guest}/timeline", params={"channel": "WEB", "days": "7"}).text

    segment = client.post(
        "/opencdp/v1/segments", json={"name": "Buyers", "definition": {"match": {"entity": "order"}}}
    ).json()
    client.post(f"/opencdp/v1/segments/{segment['ref']}/build")
    Builder(database).run_available()
    assert f"/ui/segments/{segment['ref']}" in console.get(f"/ui/guests/{guest}").text

    visitor = Browser(client)
    visitor.send("IDENTITY", identifiers=[{"provider": "email", "id": "tl@example.com"}])
    found = console.get("/ui/guests", params={"q": visitor.guest, "by": "ref"}).text
    assert "(merged)" in found and f'href="/ui/guests/{guest}"' in found
    assert console.get(f"/ui/guests/{visitor.guest}").status_code == 200  # a retired ref shows its survivor
