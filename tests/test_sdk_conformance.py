"""The official JavaScript SDKs, unmodified, against a real OpenCDP server (stream-api.md §5).

`tests/sdk/` pins `@sitecore/engage` 1.4.3 and `@sitecore-cloudsdk/{core,events}` 0.6.1 in a lock
file; this test installs them with `npm ci` when needed, starts `opencdp serve` on 127.0.0.1, drives
each SDK in Node, then checks through the REST API what the events produced.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from opencdp.testing import running_server

SDK = Path(__file__).parent / "sdk"
KEY, TOKEN = "ck_sdk", "tok_sdk"


@pytest.fixture(scope="module")
def node_modules() -> Path:
    """`npm ci` from the lock file, once; a missing Node or npm fails the test (CI has both)."""
    npm = shutil.which("npm")
    assert npm and shutil.which("node"), "Node.js and npm are needed for the SDK conformance tests"
    stamp = SDK / "node_modules" / ".package-lock.json"
    lock = SDK / "package-lock.json"
    if not stamp.exists() or stamp.stat().st_mtime < lock.stat().st_mtime:
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=SDK, check=True, capture_output=True, timeout=600)
    return SDK / "node_modules"


@pytest.fixture
def server(environment, tmp_path, node_modules):
    env = {**environment, "OPENCDP_CLIENT_KEY": KEY, "OPENCDP_API_TOKEN": TOKEN}
    with running_server(env, tmp_path) as base:
        yield base, env


def run_node(script: str, base: str, **env: str) -> dict[str, Any]:
    result = subprocess.run(
        ["node", script],
        cwd=SDK,
        env={**os.environ, "OPENCDP_URL": base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def rest(base: str) -> httpx.Client:
    return httpx.Client(base_url=base, auth=(KEY, TOKEN), timeout=10)


def guest_of(base: str, browser_id: str, key: str = KEY) -> dict[str, Any]:
    shown = httpx.get(f"{base}/v1.2/browser/{browser_id}/show.json", params={"client_key": key})
    assert shown.status_code == 200, shown.text
    return shown.json()["customer"]


def assert_order(base: str, guest_ref: str, reference: str, email: str) -> None:
    """The flow's order exists under the identified guest: 2 lines at their latest quantities, the contact."""
    with rest(base) as api:
        [order] = api.get("/v2.1/orders", params={"guestRef": guest_ref, "expand": "true"}).json()["items"]
        assert (order["referenceId"], order["price"], order["status"], order["paymentType"]) == (
            reference, 66.2, "PURCHASED", "Card")  # fmt: skip
        items = api.get(f"{order['href']}/orderItems", params={"expand": "true"}).json()["items"]
        assert [(i["referenceId"], i["quantity"], i["price"]) for i in items] == [("SKU_1", 2, 30.6), ("SKU_2", 1, 5)]
        contact = api.get(f"{order['href']}/contacts", params={"expand": "true"}).json()["items"][0]
        assert contact["emails"] == [email] and contact["guest"]["href"].endswith(guest_ref)
        assert api.get(f"/v2.1/guests/{guest_ref}").json()["guestType"] == "customer"


def test_engage_server_mode(server):
    base, _ = server
    run = run_node("engage_server.js", base, OPENCDP_CLIENT_KEY=KEY, OPENCDP_EMAIL="srv@example.com",
                   OPENCDP_REFERENCE="ENGAGE-SRV")  # fmt: skip
    assert run["cookie"].startswith(f"bid_{KEY}=") and "SameSite=None" in run["cookie"] and "Secure" in run["cookie"]
    assert all(answer["status"] == "OK" and answer["ref"] for answer in run["answers"])
    assert_order(base, guest_of(base, run["browserId"])["ref"], "ENGAGE-SRV", "srv@example.com")


def test_engage_browser_mode_under_jsdom(server):
    base, _ = server
    run = run_node("engage_browser.js", base, OPENCDP_CLIENT_KEY=KEY, OPENCDP_EMAIL="web@example.com",
                   OPENCDP_REFERENCE="ENGAGE-WEB")  # fmt: skip
    assert run["cookie"] == f"bid_{KEY}={run['browserId']}"
    assert all(answer["status"] == "OK" for answer in run["answers"])
    assert run["guestId"] == guest_of(base, run["browserId"])["ref"]
    assert_order(base, run["guestId"], "ENGAGE-WEB", "web@example.com")


def test_cloud_sdk_server_mode_with_mapped_and_unmapped_sites(server):
    base, env = server
    opencdp = str(Path(sys.executable).with_name("opencdp"))
    subprocess.run([opencdp, "tenant", "set", "default", "--site", "site-a=mapped.example"], env=env, check=True,
                   capture_output=True)  # fmt: skip
    mapped = run_node("cloudsdk_server.js", base, OPENCDP_CONTEXT_ID=KEY, OPENCDP_SITE="site-a",
                      OPENCDP_EMAIL="cloud@example.com", OPENCDP_REFERENCE="CLOUD-1")  # fmt: skip
    unmapped = run_node("cloudsdk_server.js", base, OPENCDP_CONTEXT_ID=KEY, OPENCDP_SITE="site-b",
                        OPENCDP_EMAIL="other@example.com", OPENCDP_REFERENCE="CLOUD-2")  # fmt: skip
    assert mapped["cookie"].startswith("sc_cid=")
    assert all(answer["status"] == "OK" for answer in mapped["answers"] + unmapped["answers"])
    with rest(base) as api:
        for run, pos in ((mapped, "mapped.example"), (unmapped, "site-b")):
            guest = guest_of(base, run["browserId"])
            sessions = api.get(f"/opencdp/v1/guests/{guest['ref']}/sessions").json()["items"]
            events = [e for s in sessions for e in s["events"]]
            assert {e["pointOfSale"] for e in events} == {pos}
            assert [e["type"] for e in events][:3] == ["VIEW", "IDENTITY", "ADD"]
            assert events[2]["ext"] == {"plan": "pro"}
    assert_order(base, guest_of(base, mapped["browserId"])["ref"], "CLOUD-1", "cloud@example.com")
