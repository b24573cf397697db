"""The API browser (`/docs`) and the base URL in a real browser: Playwright driving Debian's Chromium
against a real `opencdp serve`, with no internet: Swagger UI comes from an installed package. On SQLite
and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from conftest import CHROMIUM, requires_chromium
from opencdp.core.tenants import create_tenant
from opencdp.store.database import Database
from opencdp.testing import running_server

pytestmark = requires_chromium


@pytest.fixture(scope="module")
def server(database: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with database.write() as conn:
        credentials = create_tenant(conn, f"docs-{uuid.uuid4().hex[:8]}")
    with running_server({"OPENCDP_DATABASE_URL": database.url}, tmp_path_factory.mktemp("docs-server")) as base:
        yield {"base": base, "key": credentials.tenant.client_key, "token": credentials.api_token}


@pytest.fixture(scope="module")
def page(server: dict[str, Any]) -> Iterator[Page]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=server["base"])
        context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(server["base"])
                      else route.abort())  # fmt: skip
        yield context.new_page()
        browser.close()


def test_the_api_browser_lists_the_operations_and_tries_one_with_basic_auth(server, page):
    page.goto("/docs")
    expect(page.locator(".opblock-summary-path[data-path='/v2.1/orders']").first).to_be_visible(timeout=15_000)
    assert page.locator(".opblock").count() > 50
    page.click("button.authorize")
    page.fill("#auth-basic-username", server["key"])
    page.fill("#auth-basic-password", server["token"])
    page.click(".auth-btn-wrapper button.authorize")
    page.click("button.btn-done")
    with httpx.Client(base_url=server["base"], auth=(server["key"], server["token"])) as api:
        order = api.post("/v2.1/orders", json={"referenceId": "DOCS-1", "orderedAt": "2026-12-01T10:00:00Z",
                         "currencyCode": "EUR", "price": 12.5, "status": "PURCHASED", "channel": "WEB"}).json()  # fmt: skip
    shown = page.locator("#operations-orders-get_order_v2_1_orders__order_ref__get")
    shown.locator(".opblock-summary-control").click()
    shown.locator(".try-out__btn").click()
    shown.locator("tr[data-param-name=order_ref] input").fill(order["ref"])
    shown.locator("button.execute").click()
    expect(shown.locator(".live-responses-table tbody .response-col_status").first).to_have_text("200", timeout=15_000)
    expect(shown.locator(".live-responses-table tbody .response-col_description")).to_contain_text("DOCS-1")


def test_the_base_url_leads_to_the_console_and_the_api_browser_is_one_click_away(server, page):
    page.goto("/")
    expect(page).to_have_url(f"{server['base']}/ui/login?next=/ui/home")
    page.click("a[href='/docs']")
    expect(page).to_have_url(f"{server['base']}/docs")
    expect(page.locator(".opblock").first).to_be_visible(timeout=15_000)
