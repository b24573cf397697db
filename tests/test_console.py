"""The web console over HTTP (segments-exports.md §5), on SQLite and PostgreSQL: sessions, CSRF, tenancy,
escaping, and what each page shows. The same flows in a real browser: tests/test_console_browser.py.
"""

from __future__ import annotations

import re
import uuid

from fastapi.testclient import TestClient

from conftest import create_order, csrf_of, make_client, sign_in
from opencdp.core.batch import batches
from opencdp.core.exports.runs import Exporter
from opencdp.core.segments.builds import Builder
from opencdp.core.tenants import create_tenant
from opencdp.core.values import utcnow
from opencdp.store import tenants as tenant_store

PAGES = ["/ui/home", "/ui/guests", "/ui/batches", "/ui/segments", "/ui/segments/new", "/ui/exports", "/ui/exports/new",
         f"/ui/guests/{uuid.uuid4()}", f"/ui/orders/{uuid.uuid4()}"]  # fmt: skip


def test_without_a_session_every_page_and_action_sends_to_the_sign_in(anonymous):
    for path in PAGES:
        response = anonymous.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/ui/login?next=/ui/")
    for path in ("/ui/segments/new", "/ui/logout", f"/ui/segments/{uuid.uuid4()}/build"):
        assert anonymous.post(path, data={"csrf": "x"}, follow_redirects=False).status_code == 303
    assert anonymous.get("/ui/", follow_redirects=False).headers["location"] == "/ui/home"


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
        assert sign_in(browser, *client.credentials, next_path=target).headers["location"] == "/ui/home"


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
    assert saved.status_code == 303 and saved.headers["location"].endswith("?saved=1")
    segment_page = saved.headers["location"].split("?")[0]
    draft = console.get(saved.headers["location"]).text
    assert 'id="notice">Saved: version 1.<' in draft
    assert f'action="{segment_page}/start"' in draft and f'action="{segment_page}/pause"' not in draft
    built = console.post(f"{segment_page}/build", data={"csrf": console.csrf}, follow_redirects=False)
    assert built.status_code == 303
    Builder(database).run_available()
    page = console.get(segment_page).text
    assert "success" in page and 'class="size">1<' in page and "Irish" in page
    assert console.post(f"{segment_page}/pause", data={"csrf": console.csrf}).status_code == 409
    unnamed = {**good, "name": ""}  # a size needs no name; saving does
    assert "1 of 1 guests" in console.post("/ui/segments/new", data=unnamed).text
    assert console.post("/ui/segments/new", data={**unnamed, "action": "save"}).status_code == 400
    listing = console.get("/ui/segments").text
    assert "Irish" in listing and "+1 / −0" in listing
    # what the builder asks as it edits: an estimate, and the values in the data
    estimate = console.post("/ui/segments/estimate", data={"csrf": console.csrf, "definition": good["definition"]})
    assert estimate.json() == {"size": 1, "totalGuests": 1, "percentOfGuests": 100.0}
    wrong = console.post("/ui/segments/estimate", data={"csrf": console.csrf, "definition": bad["definition"]})
    assert wrong.status_code == 400 and "definition.match.op" in wrong.json()["errors"][0]
    assert {"status", "code", "message", "developerMessage", "moreInfoUrl"} <= set(wrong.json())
    garbled = console.post("/ui/segments/estimate", data={"csrf": console.csrf, "definition": "{not json"})
    assert garbled.status_code == 400 and garbled.json()["code"] == 400
    assert console.post("/ui/segments/estimate", data={"definition": good["definition"]}).status_code == 403
    assert console.get("/ui/segments/values", params={"attr": "guest.country"}).json()["values"] == ["ie"]  # strings compare in lower case
    unknown = console.get("/ui/segments/values", params={"attr": "guest.nope"})
    assert unknown.status_code == 404 and unknown.json()["message"] == "The specified resource does not exist."
    console.post(f"{segment_page}/start", data={"csrf": console.csrf}, follow_redirects=False)
    live = console.get(segment_page).text
    assert f'action="{segment_page}/pause"' in live and f'action="{segment_page}/start"' not in live
    assert f'action="{segment_page}/delete"' not in live and 'id="definition-locked"' in live and " readonly>" in live


def test_exports_and_batches_in_the_console(console, client, database):
    client.post("/v2.1/guests", json={"guestType": "customer", "firstName": "Irish", "country": "IE"})
    segment = client.post(
        "/opencdp/v1/segments",
        json={"name": "Irish", "definition": {"match": {"attr": "guest.country", "op": "equals", "value": "IE"}}},
    ).json()
    blank = console.get("/ui/exports/new").text
    assert 'id="guest-email" name="guest.email" checked' in blank and 'id="schedule-words">Only when asked' in blank
    form = {"csrf": console.csrf, "name": "Irish daily", "friendlyId": "", "segmentRef": segment["ref"], "type": "full",
            "format": "csv", "delimiter": ",", "header": "on", "scheduleType": "weekly", "scheduleDay": "friday",
            "scheduleTime": "25:00", "maxRecordsPerFile": "500000", "webhookUrl": "", "guest.firstName": "on",
            "guest.country": "on", "orderLimit": "2", "order.referenceId": "on", "order.price": "on"}  # fmt: skip
    refused = console.post("/ui/exports/new", data=form)
    assert refused.status_code == 400 and "schedule.time" in refused.text
    assert 'id="guest-country" name="guest.country" checked' in refused.text  # the input is kept
    assert 'value="friday" selected' in refused.text
    saved = console.post("/ui/exports/new", data={**form, "scheduleTime": "06:30"}, follow_redirects=False)
    assert saved.headers["location"] == "/ui/exports/irish_daily?saved=1"
    assert 'id="notice">Saved.<' in console.get(saved.headers["location"]).text
    stored = client.get("/opencdp/v1/exports/irish_daily").json()
    assert stored["output"] == {"guest": ["firstName", "country"], "identifiers": [], "extensions": [],
                                "orders": {"limit": 2, "fields": ["referenceId", "price"], "itemFields": [],
                                           "extensions": False}}  # fmt: skip
    assert stored["schedule"] == {"type": "weekly", "day": "friday", "time": "06:30"}
    shown = console.get("/ui/exports/irish_daily").text
    assert "Every Friday at 06:30 UTC, once started: next Friday" in shown
    cron = console.post("/ui/exports/new", data={**form, "friendlyId": "irish_daily", "scheduleType": "cron",
                                                 "scheduleExpression": "0 7 1 * *"})  # fmt: skip
    assert cron.status_code == 409  # the friendlyId is taken: the form comes back, the schedule said in words
    assert "At 07:00 on the first day of every month UTC, once started" in cron.text
    assert 'action="/ui/exports/' in shown and "/start" in shown and "/pause" not in shown
    assert (
        console.post("/ui/exports/irish_daily/run", data={"csrf": console.csrf}, follow_redirects=False).status_code
        == 303
    )
    Builder(database).run_available()  # the segment was never built: the run built it first
    Exporter(database, client.app.state.settings.files()).run_available()
    page = console.get("/ui/exports/irish_daily").text
    assert "success" in page and "irish_daily-" in page and "/files/exports/" in page
    preview = console.get("/ui/exports/irish_daily", params={"preview": "1"}).text
    table = preview.split('id="preview-table"')[1].split("</table>")[0]
    assert '<th scope="col">firstName</th>' in table and "<td>Irish</td><td>IE</td>" in table
    assert "ref,firstName,country,order1.referenceId" in preview  # the file's own header, below the table
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


def test_a_batch_guest_profile_sums_its_orders_per_currency_on_a_time_axis(console, client, database, settings):
    """A guest who only came in through a batch file, with 3 orders over 2 years in two currencies: the
    profile says when it was seen (from its orders, never "never"), what it spent in each currency, and
    charts each currency's orders where their dates fall, with year ticks; a boolean extension value
    reads as the JSON the client sent."""
    from batch_helpers import order, record, run_batch

    email = f"batch-{uuid.uuid4().hex[:8]}@example.com"
    placed = [("B-1", "2024-02-01T10:00:00Z", 100, "EUR"), ("B-2", "2025-06-15T10:00:00Z", 50.5, "EUR"),
              ("B-3", "2026-01-20T10:00:00Z", 30, "GBP")]  # fmt: skip
    lines = []
    for reference, at, price, currency in placed:
        value = order(reference, orderedAt=at, price=price, currencyCode=currency, contact={"email": email})
        value["orderItems"][0].update(price=price, currencyCode=currency)
        lines.append(record("order", "insert", value))
    status = run_batch(client, database, settings, lines)
    assert status["status"]["code"] == "success"
    [guest] = [g for g in client.get("/v2.1/guests", params={"email": email}).json()["items"]]
    profile = console.get(f"/ui/guests/{guest['ref']}/orders").text
    assert "never" not in profile
    assert 'id="seen">2024-02-01 10:00:00 / 2026-01-20 10:00:00<' in profile
    assert 'id="order-count">3<' in profile
    assert "150.50 EUR · 2 orders, average 75.25 · first 2024-02-01 10:00:00, last 2025-06-15 10:00:00" in profile
    assert "30.00 GBP · 1 order, average 30.00" in profile
    assert 'aria-label="Order value over time, EUR: 2 values in EUR from 2024-02-01 to 2025-06-15' in profile
    assert ">2025</text>" in profile and ">100.00 EUR</text>" in profile
    eur = profile.split('aria-label="Order value over time, EUR')[1].split("</svg>")[0]
    xs = [float(x) for x in re.findall(r'<circle cx="([\d.]+)"', eur)]
    tick = float(re.search(r'<text class="x-label" x="([\d.]+)"[^>]*>2025<', eur).group(1))
    assert xs[0] < tick < xs[1]  # the 2025 tick falls between the two orders' dates, by date
    [listed] = [o for o in client.get("/v2.1/orders", params={"referenceId": "B-1"}).json()["items"]]
    detail = console.get(f"/ui/orders/{listed['ref']}").text
    assert 'data-key="giftWrap">false<' in detail and "False" not in detail


def test_the_home_page_shows_totals_days_batches_segments_and_the_stream(console, client, database, settings):
    from batch_helpers import order, record, run_batch

    today = utcnow()
    for number, (currency, price) in enumerate((("EUR", 100), ("EUR", 20.5), ("GBP", 7))):
        value = order(f"HOME-{number}", orderedAt=f"{today:%Y-%m-%d}T00:00:01Z", price=price, currencyCode=currency)
        value["orderItems"][0].update(price=price, currencyCode=currency)
        assert run_batch(client, database, settings, [record("order", "insert", value)])["status"]["code"] == "success"
    client.post("/v2.1/guests", json={"guestType": "visitor", "firstName": "Quiet"})
    definition = {"match": {"entity": "order"}}
    segment = client.post("/opencdp/v1/segments", json={"name": "Buyers", "definition": definition}).json()
    client.post(f"/opencdp/v1/segments/{segment['ref']}/build").raise_for_status()
    Builder(database).run_available()
    assert client.post(f"/opencdp/v1/segments/{segment['ref']}/start").status_code == 200

    home = console.get("/ui/home").text
    assert 'id="total-guests">4<' in home and 'id="total-customers">3<' in home and 'id="total-orders">3<' in home
    assert "120.50 EUR" in home and "7.00 GBP" in home
    assert 'aria-label="New guests per day: 90 values in guests from' in home
    assert 'aria-label="New guests per day who are customers now: 90 values in customers' in home
    assert home.split('aria-label="New guests per day who are customers now')[1].split('"')[0].endswith("the largest 3")
    assert 'aria-label="Revenue per day, EUR: 90 values in EUR' in home and "the largest 120.50" in home
    assert 'aria-label="Revenue per day, GBP: 90 values in GBP' in home
    assert home.count('<a href="/ui/batches/') == 3 and "success" in home
    assert "Buyers" in home and 'class="size">3<' in home
    assert 'id="stream-waiting">0<' in home and 'id="stream-lag">lag 0.0 s<' in home
