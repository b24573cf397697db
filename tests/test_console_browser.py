"""The web console in a real browser: Playwright driving Debian's Chromium against a real `opencdp serve`
(which builds, exports and imports in the background itself), on SQLite and PostgreSQL.

Screenshots of every page visited land in `test-output/screenshots/` for review.
"""

from __future__ import annotations

import gzip
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect, sync_playwright
from typer.testing import CliRunner

from conftest import CHROMIUM, requires_chromium
from opencdp.cli.main import app as cli_app
from opencdp.core.tenants import create_tenant
from opencdp.store.database import Database
from opencdp.testing import running_server

SHOTS = Path(__file__).parent.parent / "test-output" / "screenshots"
pytestmark = requires_chromium


@pytest.fixture(scope="module")
def server(database: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with database.write() as conn:
        credentials = create_tenant(conn, f"ui-{uuid.uuid4().hex[:8]}")
    env = {"OPENCDP_DATABASE_URL": database.url, "OPENCDP_BATCH_POLL_SECONDS": "0.2"}
    with running_server(env, tmp_path_factory.mktemp("ui-server")) as base:
        yield {"base": base, "key": credentials.tenant.client_key, "token": credentials.api_token,
               "backend": "sqlite" if database.is_sqlite else "postgresql"}  # fmt: skip


@pytest.fixture(scope="module")
def browser_page(server: dict[str, Any]) -> Iterator[Page]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900}, base_url=server["base"])
        yield page
        browser.close()


def shot(page: Page, server: dict[str, Any], name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{server['backend']}-{name}.png"), full_page=True)


def api(server: dict[str, Any]) -> httpx.Client:
    return httpx.Client(base_url=server["base"], auth=(server["key"], server["token"]), timeout=30)


def test_sign_in_find_a_guest_and_read_an_item_extension(server, browser_page):
    page = browser_page
    with api(server) as client:
        order = client.post("/v2.1/orders", json={"referenceId": "PW-1", "orderedAt": "2025-03-07T16:15:11Z",
                            "currencyCode": "EUR", "price": 129.9, "status": "PURCHASED", "channel": "WEB"}).json()  # fmt: skip
        contact = {"firstName": "Maeve", "lastName": "Byrne", "emails": ["maeve@example.ie"]}
        client.post(f"/v2.1/orders/{order['ref']}/contacts", json=contact).raise_for_status()
        item = client.post(f"/v2.1/orders/{order['ref']}/orderItems", json={"type": "SHOES", "name": "Trail runner",
                           "price": 129.9, "currencyCode": "EUR", "quantity": 1}).json()  # fmt: skip
        client.post(f"/v2.1/orderItems/{item['ref']}/extensions",
                    json={"name": "ext", "key": "default", "shoeSize": "42"}).raise_for_status()  # fmt: skip

    page.goto("/ui/guests")
    expect(page).to_have_url(f"{server['base']}/ui/login?next=/ui/guests")
    shot(page, server, "01-login")
    page.fill("#client_key", server["key"])
    page.fill("#api_token", server["token"])
    page.click("button[type=submit]")
    expect(page.locator("#tenant")).to_be_visible()

    page.fill("input[name=q]", "maeve@example.ie")
    page.click("form.search button")
    expect(page.locator("#guests")).to_contain_text("Maeve Byrne")
    shot(page, server, "02-guests")
    page.click("#guests a:has-text('Maeve Byrne')")
    expect(page.locator("h1")).to_contain_text("Maeve Byrne")
    shot(page, server, "03-guest-properties")
    page.click(".tabs a:has-text('Orders')")
    expect(page.locator("#orders")).to_contain_text("PW-1")
    shot(page, server, "04-guest-orders")
    page.click("#orders a:has-text('PW-1')")
    expect(page.locator("#items")).to_contain_text("Trail runner")
    expect(page.locator(".item-ext td.ext-value[data-key=shoeSize]")).to_have_text("42")
    shot(page, server, "05-order")
    page.click("nav.top a:has-text('Home')")
    expect(page.locator("#total-orders")).to_have_text("1")
    expect(page.locator("figure.chart svg[aria-label^='New guests per day:']")).to_be_visible()
    shot(page, server, "00-home")


def test_a_batch_uploaded_by_the_cli_shows_its_status(server, browser_page, tmp_path):
    page = browser_page
    file = tmp_path / "orders.gz"
    generated = CliRunner().invoke(cli_app, ["demo-data", "orders", "--count", "3", "--out", str(file)])
    assert generated.exit_code == 0, generated.output
    env = {
        "OPENCDP_URL": server["base"],
        "OPENCDP_CLIENT_KEY": server["key"],
        "OPENCDP_API_TOKEN": server["token"],
    }
    ref = str(uuid.uuid4())
    uploaded = CliRunner().invoke(cli_app, ["batch", "upload", str(file), "--ref", ref], env=env)
    assert uploaded.exit_code == 0, uploaded.output
    page.goto(f"/ui/batches/{ref}")
    for _ in range(50):  # reload until the server's own processor finishes it
        if page.locator("#status").inner_text() == "success":
            break
        page.wait_for_timeout(200)
        page.reload()
    expect(page.locator("#status")).to_have_text("success")
    expect(page.locator("#batch")).to_contain_text("3 total, 3 successful")
    expect(page.locator("#batch")).to_contain_text("0 failed")
    shot(page, server, "06-batch")
    page.goto("/ui/batches")
    expect(page.locator("#batches")).to_contain_text(ref)
    shot(page, server, "07-batches")


def test_build_a_segment_and_export_it(server, browser_page):
    page = browser_page
    with api(server) as client:
        for name in ("Niamh", "Oisin"):
            client.post(
                "/v2.1/guests", json={"guestType": "customer", "firstName": name, "country": "IE"}
            ).raise_for_status()
    page.goto("/ui/segments/new")
    page.fill("#name", "Irish customers")
    page.fill("#definition", '{"guestTypes": ["customer"], "match": {"attr": "guest.country", "op": "gt", "value": 1}}')
    page.click("button[value=validate]")
    expect(page.locator("#errors")).to_contain_text("definition.match.op: comparator 'gt' is not valid for type string")
    expect(page.locator("#definition")).to_have_value(
        '{"guestTypes": ["customer"], "match": {"attr": "guest.country", "op": "gt", "value": 1}}'
    )
    shot(page, server, "08-segment-errors")
    page.fill(
        "#definition", '{"guestTypes": ["customer"], "match": {"attr": "guest.country", "op": "equals", "value": "IE"}}'
    )
    page.click("button[value=size]")
    expect(page.locator("#notice")).to_contain_text("guests")
    page.click("button[value=save]")
    expect(page.locator("h1")).to_contain_text("Irish customers")
    page.click("button:has-text('Build now')")
    for _ in range(50):
        if page.locator("#builds td.size").count() and page.locator("#builds td.size").first.inner_text():
            break
        page.wait_for_timeout(200)
        page.reload()
    expect(page.locator("#builds")).to_contain_text("success")
    expect(page.locator("svg.chart")).to_be_visible()
    shot(page, server, "09-segment")

    page.goto("/ui/exports/new")
    page.fill("#name", "Irish to ESP")
    page.select_option("#segmentRef", label="Irish customers")
    page.select_option("#format", "ndjson")
    page.uncheck("#guest-email")
    page.uncheck("#guest-lastName")
    page.check("#guest-country")
    page.fill("#orderLimit", "0")
    page.check("input[name=scheduleType][value=daily]")
    page.fill("#scheduleTime", "05:30")
    page.click("button:has-text('Save')")
    expect(page.locator("h1")).to_contain_text("irish_to_esp")
    expect(page.locator("#schedule-words")).to_contain_text("Every day at 05:30 UTC")
    expect(page.locator("#guest-country")).to_be_checked()
    page.click("a:has-text('Preview')")
    expect(page.locator("#preview-table")).to_contain_text("Niamh")
    shot(page, server, "10a-export-preview")
    page.click("button:has-text('Run now')")
    for _ in range(50):
        if "success" in page.locator("#executions").inner_text():
            break
        page.wait_for_timeout(200)
        page.reload()
    link = page.locator("#executions a").first
    expect(link).to_contain_text("irish_to_esp-")
    shot(page, server, "10-export")
    downloaded = httpx.get(link.get_attribute("href") or "", timeout=30)
    names = sorted(orjson.loads(line)["firstName"] for line in gzip.decompress(downloaded.content).splitlines())
    assert "Niamh" in names and "Oisin" in names
    page.goto("/ui/segments")
    expect(page.locator("#segments")).to_contain_text("Irish customers")
    shot(page, server, "11-segments")
    page.goto("/ui/exports")
    shot(page, server, "12-exports")


SERIOUS = ("serious", "critical")


def test_the_pages_have_no_serious_accessibility_violations_at_1280_and_768_px(server, browser_page):
    """axe-core, run in each page by Chromium, finds nothing serious or critical on the console's pages
    (they are signed in to by the tests above), at a desktop's width and a tablet's; no page scrolls
    sideways at 768 px but for its wide tables, which scroll inside their own box."""
    page = browser_page
    with api(server) as client:
        guest = client.get("/v2.1/guests", params={"email": "maeve@example.ie"}).json()["items"][0]
        order = client.get("/v2.1/orders", params={"referenceId": "PW-1"}).json()["items"][0]
        segment = client.get("/opencdp/v1/segments").json()["items"][0]
    paths = ["/ui/home", "/ui/guests", f"/ui/guests/{guest['ref']}", f"/ui/guests/{guest['ref']}/timeline",
             f"/ui/guests/{guest['ref']}/orders", f"/ui/orders/{order['ref']}", "/ui/batches", "/ui/segments",
             "/ui/segments/new", f"/ui/segments/{segment['ref']}", "/ui/exports", "/ui/exports/new",
             "/ui/exports/irish_to_esp"]  # fmt: skip
    axe = Axe()
    found: dict[str, list[str]] = {}
    for width in (1280, 768):
        page.set_viewport_size({"width": width, "height": 900})
        for path in paths:
            page.goto(path)
            results = axe.run(page)
            serious = [f"{v['id']}: {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
                       for v in results.response["violations"] if v["impact"] in SERIOUS]  # fmt: skip
            if serious:
                found[f"{width} {path}"] = serious
            overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
            if overflow > 0:
                found.setdefault(f"{width} {path}", []).append(f"the page scrolls sideways by {overflow} px")
            if path in ("/ui/home", "/ui/exports/irish_to_esp"):
                shot(page, server, f"13-{path.rsplit('/', 1)[-1]}-{width}")
    page.set_viewport_size({"width": 1280, "height": 900})
    assert not found, "\n".join(f"{where}: {what}" for where, what in found.items())


def _buyer(client: httpx.Client, country: str, orders: int, item_type: str, tag: str) -> None:
    """A customer of `country` with `orders` PURCHASED orders of 150 EUR in the last weeks, each holding one
    item of `item_type`."""
    email = f"{tag}-{uuid.uuid4().hex[:6]}@example.com"
    for number in range(orders):
        body = {"referenceId": f"{tag}-{number}-{uuid.uuid4().hex[:6]}", "currencyCode": "EUR", "price": 150,
                "status": "PURCHASED", "channel": "WEB",
                "orderedAt": (datetime.now(UTC) - timedelta(days=10 + number)).strftime("%Y-%m-%dT%H:%M:%SZ")}  # fmt: skip
        order = client.post("/v2.1/orders", json=body).json()
        client.post(f"/v2.1/orders/{order['ref']}/contacts", json={"firstName": tag, "lastName": "Buyer", "emails": [email]}).raise_for_status()
        item = {"type": item_type, "name": "Thing", "price": 150, "currencyCode": "EUR", "quantity": 1}
        client.post(f"/v2.1/orders/{order['ref']}/orderItems", json=item).raise_for_status()
    guest = client.get("/v2.1/guests", params={"email": email}).json()["items"][0]
    client.patch(f"/v2.1/guests/{guest['ref']}", json={"country": country}).raise_for_status()


BUILT = {"guestTypes": ["customer"], "match": {"all": [
    {"attr": "guest.country", "op": "in", "value": ["IE", "GB"]},
    {"entity": "order", "window": {"lastDays": 365}, "op": "gte", "value": 2, "where": {"all": [
        {"attr": "order.status", "op": "equals", "value": "PURCHASED"},
        {"attr": "order.price", "op": "gt", "value": 100},
        {"attr": "order.currencyCode", "op": "equals", "value": "EUR"}]}},
    {"entity": "orderItem", "where": {"attr": "orderItem.type", "op": "equals", "value": "SHOE"}}]}}  # fmt: skip


def test_a_marketer_builds_a_segment_without_typing_json(server, browser_page):
    """Customers in IE or GB with at least 2 purchased orders over 100 EUR in the last 365 days who bought an
    item of type SHOE, built with the builder's controls alone: the JSON it writes is that definition, the
    saved segment's size equals the same definition's sent as JSON, and the saved segment reads back into
    the same controls."""
    page = browser_page
    with api(server) as client:
        _buyer(client, "IE", 2, "SHOE", "match")
        _buyer(client, "GB", 1, "SHOE", "once")
        _buyer(client, "FR", 2, "SHOE", "france")
        _buyer(client, "GB", 2, "BOOK", "books")
        by_json = client.post("/opencdp/v1/segments/preview", json={"definition": BUILT})
        assert by_json.status_code == 200, by_json.text
    page.goto("/ui/segments/new")
    page.fill("#name", "IE/GB shoe buyers")
    page.uncheck(".b-guest-type[value=visitor]")
    page.uncheck(".b-guest-type[value=traveller]")
    page.click("#builder .b-add-rule")
    page.select_option("#builder .b-attr", "guest.country")
    page.select_option("#builder .b-op", "in")
    page.fill("#builder .b-value", "IE, GB")
    page.press("#builder .b-value", "Tab")
    page.click("#builder > .b-slot > .b-add .b-add-entity")  # the guest-level adder: the rule and an entity, under all
    orders = page.locator("#builder .b-entity").first
    orders.locator(".b-window-kind").select_option("lastDays")
    orders.locator(".b-window-days").fill("365")
    orders.locator(".b-window-days").press("Tab")
    orders.locator(".b-measure-value").fill("2")
    orders.locator(".b-measure-value").press("Tab")
    for attr, op, value in (("order.status", "equals", "PURCHASED"), ("order.price", "gt", "100"),
                            ("order.currencyCode", "equals", "EUR")):  # fmt: skip
        orders = page.locator("#builder .b-entity").first
        orders.locator(".b-add-rule").last.click()
        rule = page.locator("#builder .b-entity").first.locator(".b-rule").last
        rule.locator(".b-attr").select_option(attr)
        rule = page.locator("#builder .b-entity").first.locator(".b-rule").last
        rule.locator(".b-op").select_option(op)
        rule = page.locator("#builder .b-entity").first.locator(".b-rule").last
        field = rule.locator(".b-value")
        if field.evaluate("e => e.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)
            field.press("Tab")
    page.locator("#builder > .b-group > .b-add .b-add-entity").click()
    items = page.locator("#builder .b-entity").last
    items.locator(".b-entity-kind").select_option("orderItem")
    page.locator("#builder .b-entity").last.locator(".b-add-rule").click()
    rule = page.locator("#builder .b-entity").last.locator(".b-rule")
    rule.locator(".b-attr").select_option("orderItem.type")
    rule = page.locator("#builder .b-entity").last.locator(".b-rule")
    rule.locator(".b-value").fill("SHOE")
    rule.locator(".b-value").press("Tab")
    assert orjson.loads(page.input_value("#definition")) == BUILT
    expect(page.locator("#estimate")).to_contain_text(f"About {by_json.json()['size']} of")
    shot(page, server, "14-builder")
    page.click("button[value=save]")
    expect(page.locator("#notice")).to_contain_text("Saved: version 1")
    assert orjson.loads(page.input_value("#definition")) == BUILT  # the saved definition, read back
    expect(page.locator("#builder .b-guest-type[value=visitor]")).not_to_be_checked()
    expect(page.locator("#builder .b-entity").first.locator(".b-window-days")).to_have_value("365")
    expect(page.locator("#builder .b-entity").last.locator(".b-value")).to_have_value("SHOE")
    page.click("button[value=size]")
    expect(page.locator("#notice")).to_contain_text(f"{by_json.json()['size']} of")
    assert by_json.json()["size"] == 1


def test_a_guest_with_three_orders_over_two_years_is_summed_up_on_a_time_axis(server, browser_page):
    page = browser_page
    email = f"three-{uuid.uuid4().hex[:6]}@example.com"
    with api(server) as client:
        for reference, at, price, currency in (("TY-1", "2024-02-01T10:00:00Z", 100, "EUR"),
                                               ("TY-2", "2025-06-15T10:00:00Z", 50.5, "EUR"),
                                               ("TY-3", "2026-01-20T10:00:00Z", 30, "GBP")):  # fmt: skip
            body = {"referenceId": reference, "orderedAt": at, "currencyCode": currency, "price": price,
                    "status": "PURCHASED", "channel": "WEB"}  # fmt: skip
            order = client.post("/v2.1/orders", json=body).json()
            contact = {"firstName": "Three", "lastName": "Orders", "emails": [email]}
            client.post(f"/v2.1/orders/{order['ref']}/contacts", json=contact).raise_for_status()
        guest = client.get("/v2.1/guests", params={"email": email}).json()["items"][0]
    page.goto(f"/ui/guests/{guest['ref']}/orders")
    expect(page.locator("#seen")).to_have_text("2024-02-01 10:00:00 / 2026-01-20 10:00:00")
    expect(page.locator("#order-count")).to_have_text("3")
    expect(page.locator(".spend[data-currency=EUR]")).to_contain_text("150.50 EUR · 2 orders, average 75.25")
    expect(page.locator(".spend[data-currency=GBP]")).to_contain_text("30.00 GBP · 1 order")
    eur = page.locator("svg[aria-label^='Order value over time, EUR']")
    year = eur.locator("text.x-label", has_text=re.compile(r"^2025$"))
    expect(year).to_have_count(1)
    expect(eur.locator("text.x-label").first).to_have_text("2025")
    expect(eur.locator("text.y-label").first).to_have_text("100.00 EUR")
    dots = [float(x) for x in eur.locator("circle").evaluate_all("nodes => nodes.map(n => n.getAttribute('cx'))")]
    tick = float(year.get_attribute("x") or 0)
    assert dots[0] < tick < dots[1]
    shot(page, server, "15-guest-three-orders")
