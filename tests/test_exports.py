"""Audience exports (segments-exports.md §4) over HTTP, on SQLite and PostgreSQL: files read back and
compared with the database, delta runs across builds, listings, signed links, OAuth, webhooks.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import hmac
import io
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import pyarrow.parquet as pq
import pytest

from conftest import assert_error, create_order
from opencdp.core.exports.runs import Exporter, purge
from opencdp.core.exports.webhooks import Webhooks
from opencdp.core.segments.builds import Builder
from opencdp.core.values import utcnow
from opencdp.store.database import Database


def guest(client: Any, **fields: Any) -> str:
    response = client.post("/v2.1/guests", json={"guestType": "customer", **fields})
    assert response.status_code == 201, response.text
    return response.json()["ref"]


@pytest.fixture
def irish(client: Any) -> dict[str, Any]:
    """Two Irish guests (one with orders, items, extensions and identifiers), one German."""
    ann = guest(client, firstName="Ann, \"the\"\rfirst", lastName="Lee", country="IE", emails=["ann@example.com", "a2@x.org"],
                identifiers=[{"provider": "CRM_ID", "id": "C-1"}, {"provider": "CRM_ID", "id": "C-2"}])  # fmt: skip
    assert client.post(f"/v2.1/guests/{ann}/extensions", json={"name": "ext1", "key": "default", "loyaltyTier": "gold",
                                                               "points": 12.5}).status_code == 201  # fmt: skip
    bob = guest(client, firstName="Bob", country="IE")
    guest(client, firstName="Cy", country="DE")
    orders = []
    for day, price in ((1, 129.9), (2, 30.6)):
        order = create_order(client, orderedAt=f"2025-03-0{day}T10:00:00Z", price=price)
        contact = {"firstName": "Ann", "lastName": "Lee", "emails": ["ann@example.com"]}
        assert client.post(f"/v2.1/orders/{order['ref']}/contacts", json=contact).status_code == 201
        item = {
            "type": "SHOES",
            "name": "Trail",
            "price": price,
            "currencyCode": "EUR",
            "quantity": 1,
            "productId": "M4",
        }
        item_ref = client.post(f"/v2.1/orders/{order['ref']}/orderItems", json=item).json()["ref"]
        client.post(f"/v2.1/orderItems/{item_ref}/extensions", json={"name": "ext", "key": "default", "size": "42"})
        client.post(f"/v2.1/orders/{order['ref']}/extensions", json={"name": "ext", "key": "default", "giftWrap": True})
        orders.append(order)
    segment = client.post("/opencdp/v1/segments", json={"name": "Irish", "definition": IE_DEF}).json()
    return {"ann": ann, "bob": bob, "orders": orders, "segment": segment["ref"]}


IE_DEF = {"match": {"attr": "guest.country", "op": "equals", "value": "IE"}}
OUTPUT = {"guest": ["email", "firstName", "country", "emails"], "identifiers": ["CRM_ID"], "extensions": ["ext1.loyaltyTier", "ext1.points"],
          "orders": {"limit": 3, "fields": ["referenceId", "orderedAt", "price", "currencyCode"],
                     "itemFields": ["productId", "quantity", "price"], "extensions": True}}  # fmt: skip


def define(client: Any, segment_ref: str, **body: Any) -> dict[str, Any]:
    response = client.post("/opencdp/v1/exports", json={"name": "Gold members", "segmentRef": segment_ref,
                                                        "output": OUTPUT, **body})  # fmt: skip
    assert response.status_code == 201, response.text
    return response.json()


def run(client: Any, database: Database, settings: Any, ident: str, **body: Any) -> dict[str, Any]:
    started = client.post(f"/opencdp/v1/exports/{ident}/run", json=body)
    assert started.status_code == 202, started.text
    Builder(database).run_available()
    Exporter(database, settings.files(), chunk=2).run_available()
    return client.get(urlsplit(started.json()["href"]).path).json()


def files(client: Any, listing: dict[str, Any]) -> list[tuple[str | None, bytes]]:
    found = []
    for entry in listing["exports"]:
        parts = urlsplit(entry["url"])
        response = client.get(f"{parts.path}?{parts.query}", auth=None)
        assert response.status_code == 200
        assert entry["sizeKB"] == -(-len(response.content) // 1024)
        found.append((entry.get("deltaAction"), response.content))
    return found


def test_a_full_ndjson_run_writes_what_the_database_holds(client, database, settings, irish):
    definition = define(client, irish["segment"], format="ndjson", friendlyId="gold_daily")
    execution = run(client, database, settings, "gold_daily", buildSegment=True)
    assert execution["status"] == "success", execution
    assert (execution["total"], execution["successes"], execution["failures"]) == (2, 2, 0)
    assert execution["progress"] == {"written": 2, "total": 2} and execution["definitionType"] == "FULL_SYNC"
    listing = client.get("/v2/audienceExports/definitions/gold_daily/latestExport").json()
    assert listing["executionRef"] == execution["executionRef"] and listing["numberOfFiles"] == 1
    assert listing["exports"][0]["url"].split("?")[0].endswith(f"gold_daily-{execution['executionRef']}-1.ndjson.gz")
    ((_, content),) = files(client, listing)
    records = {r["ref"]: r for r in map(orjson.loads, gzip.decompress(content).splitlines())}
    ann = records[irish["ann"]]
    assert list(ann)[:5] == ["ref", "email", "firstName", "country", "emails"]
    assert ann["email"] == "ann@example.com" and ann["emails"] == ["ann@example.com", "a2@x.org"]
    assert ann["identifiers"] == {"CRM_ID": ["C-1", "C-2"]}
    assert ann["extensions"] == {"ext1": {"loyaltyTier": "gold", "points": 12.5}}
    assert [o["referenceId"] for o in ann["orders"]] == [o["referenceId"] for o in reversed(irish["orders"])]
    newest = ann["orders"][0]
    assert (
        newest["price"] == 30.6
        and newest["orderedAt"] == "2025-03-02T10:00:00.000Z"
        and newest["ext"] == {"giftWrap": True}
    )
    assert newest["items"] == [{"productId": "M4", "quantity": 1, "price": 30.6, "ext": {"size": "42"}}]
    bob = records[irish["bob"]]
    assert bob["identifiers"] == {"CRM_ID": []} and bob["extensions"] == {"ext1": {"loyaltyTier": None, "points": None}}
    assert bob["orders"] == [] and bob["email"] is None
    assert client.get(f"/opencdp/v1/exports/{definition['ref']}").json()["lastExecution"]["status"] == "success"


def test_csv_columns_quoting_and_file_splitting(client, database, settings, irish):
    define(client, irish["segment"], friendlyId="csv_one", maxRecordsPerFile=1, csv={"delimiter": "|"})
    execution = run(client, database, settings, "csv_one")
    listing = client.get(f"/opencdp/v1/exports/csv_one/executions/{execution['executionRef']}/files").json()
    assert listing["numberOfFiles"] == 2 and listing["totalSizeKB"] == sum(e["sizeKB"] for e in listing["exports"])
    rows = []
    for _, content in files(client, listing):
        text = gzip.decompress(content).decode()
        assert "\r\n" not in text.replace("\r", "") and text.endswith("\n")
        rows += list(csv.reader(io.StringIO(text, newline=""), delimiter="|"))
    header = rows[0]
    assert header[:8] == [
        "ref",
        "email",
        "firstName",
        "country",
        "emails",
        "identifiers.CRM_ID",
        "ext1.loyaltyTier",
        "ext1.points",
    ]
    assert header[8:14] == [
        "order1.referenceId",
        "order1.orderedAt",
        "order1.price",
        "order1.currencyCode",
        "order1.ext",
        "order1.items",
    ]
    assert len(header) == 8 + 3 * 6 and rows[2] == header  # each file keeps its header
    ann = next(r for r in rows if r[0] == irish["ann"])
    assert ann[2] == 'Ann, "the"\rfirst' and ann[4] == '["ann@example.com","a2@x.org"]' and ann[5] == "C-2"
    assert ann[7] == "12.5" and ann[12] == '{"giftWrap":true}' and orjson.loads(ann[13])[0]["productId"] == "M4"
    assert ann[14:20] != [""] * 6 and ann[20:] == [""] * 6
    raw = gzip.decompress(files(client, listing)[0][1]).decode()
    assert "\ufeff" not in raw


def test_parquet_files_are_typed_columns(client, database, settings, irish):
    define(client, irish["segment"], friendlyId="pq_one", format="parquet")
    execution = run(client, database, settings, "pq_one")
    listing = client.get(f"/v2/audienceExports/executions/{execution['executionRef']}/export").json()
    assert listing["exports"][0]["url"].split("?")[0].endswith("-1.parquet")
    ((_, content),) = files(client, listing)
    table = pq.read_table(io.BytesIO(content))
    assert pq.ParquetFile(io.BytesIO(content)).metadata.row_group(0).column(0).compression == "GZIP"
    rows = {row["ref"]: row for row in table.to_pylist()}
    ann = rows[irish["ann"]]
    assert ann["identifiers"] == {"CRM_ID": ["C-1", "C-2"]} and ann["extensions"]["ext1"]["points"] == 12.5
    assert ann["orders"][0]["orderedAt"].isoformat().startswith("2025-03-02T10:00:00")
    assert orjson.loads(ann["orders"][0]["ext"]) == {"giftWrap": True} and ann["orders"][0]["items"][0]["quantity"] == 1


def test_delta_runs_across_two_builds(client, database, settings, irish):
    define(
        client, irish["segment"], friendlyId="delta_one", type="delta", format="ndjson", output={"guest": ["firstName"]}
    )
    first = run(client, database, settings, "delta_one", buildSegment=True)
    assert (first["successAdd"], first["successRemove"], first["definitionType"]) == (2, 0, "DELTA")
    # Bob leaves Ireland, Dee arrives, Ann is deleted: one added, two removed
    client.put(f"/v2.1/guests/{irish['bob']}", json={"guestType": "customer", "firstName": "Bob", "country": "GB"})
    dee = guest(client, firstName="Dee", country="IE")
    second = run(client, database, settings, "delta_one", buildSegment=True)
    assert (second["successAdd"], second["successRemove"], second["successes"]) == (1, 1, 2)
    listing = client.get(f"/opencdp/v1/exports/delta_one/executions/{second['executionRef']}/files").json()
    assert [e["deltaAction"] for e in listing["exports"]] == ["add", "remove"]
    (_, added), (_, removed) = files(client, listing)
    assert [orjson.loads(line) for line in gzip.decompress(added).splitlines()] == [{"ref": dee, "firstName": "Dee"}]
    assert [orjson.loads(line) for line in gzip.decompress(removed).splitlines()] == [
        {"ref": irish["bob"], "firstName": "Bob"}
    ]
    client.delete(f"/v2.1/guests/{dee}")
    third = run(client, database, settings, "delta_one", buildSegment=True)
    (_, added), (_, removed) = files(
        client, client.get(f"/v2/audienceExports/executions/{third['executionRef']}/export").json()
    )
    assert gzip.decompress(added) == b"" and [orjson.loads(x) for x in gzip.decompress(removed).splitlines()] == [
        {"ref": dee}
    ]
    reports = client.get("/v2/audienceExports/definitions/delta_one/reports").json()
    assert [r["executionRef"] for r in reports] == [
        third["executionRef"],
        second["executionRef"],
        first["executionRef"],
    ]
    assert reports[0]["status"] == "SUCCESS" and reports[0]["segmentExecutionType"] == "ON_DEMAND"
    assert reports[1]["filterMatchedGuests"] == 2 and reports[1]["successAdd"] == 1


def test_a_guest_deleted_after_the_build_is_a_record_failure(client, database, settings, irish):
    define(client, irish["segment"], friendlyId="gone_one", format="ndjson")
    Builder(database).run_available()
    client.post(f"/opencdp/v1/segments/{irish['segment']}/build")
    Builder(database).run_available()
    client.delete(f"/v2.1/guests/{irish['bob']}")
    execution = run(client, database, settings, "gone_one")
    assert execution["status"] == "success"
    assert (execution["total"], execution["successes"], execution["failures"]) == (2, 1, 1)
    assert execution["errors"] == [{"description": "guest no longer exists", "count": 1}]


def test_signed_links_expire_and_retention_removes_files(client, database, settings, irish):
    define(client, irish["segment"], friendlyId="links_one")
    execution = run(client, database, settings, "links_one")
    listing = client.get(f"/v2/audienceExports/executions/{execution['executionRef']}/export").json()
    parts = urlsplit(listing["exports"][0]["url"])
    assert client.get(f"{parts.path}?{parts.query.replace('sig=', 'sig=0')}", auth=None).status_code == 403
    expired = parts.query.split("&sig=")[0].replace("expires=", "expires=1")
    assert client.get(f"{parts.path}?{expired}&sig=00", auth=None).status_code == 403
    with database.write() as conn:
        purge(conn, settings.files(), utcnow() + timedelta(days=1))
    assert client.get(f"{parts.path}?{parts.query}", auth=None).status_code == 410
    assert client.get(f"/v2/audienceExports/executions/{execution['executionRef']}/export").status_code == 410
    assert client.get("/v2/audienceExports/definitions/links_one/latestExport").status_code == 410


def test_definition_validation_and_lifecycle(client, irish):
    bad = {"name": "x", "segmentRef": irish["segment"], "format": "xml", "output": {"guest": ["shoeSize"], "identifiers": ["NOPE"],
           "extensions": ["ext1.missing"], "orders": {"limit": 21}}, "schedule": {"type": "daily", "time": "25:00"}}  # fmt: skip
    response = client.post("/opencdp/v1/exports", json=bad)
    assert_error(response, 400, "format: value must be one of csv, ndjson, parquet")
    reasons = response.json()["developerMessage"]
    for part in ("output.guest[0]: unknown field 'shoeSize'", "output.identifiers[0]: unknown provider 'NOPE'",
                 "output.extensions[0]: unknown extension key 'ext1.missing'", "output.orders.limit",
                 "schedule.time"):  # fmt: skip
        assert part in reasons, part
    assert client.post("/opencdp/v1/exports", json={"name": "x", "segmentRef": "nope"}).status_code == 400
    private = {"name": "x", "segmentRef": irish["segment"], "webhook": {"url": "http://127.0.0.1:9/hook"}}
    assert "private" in client.post("/opencdp/v1/exports", json=private).json()["message"]

    made = client.post("/opencdp/v1/exports", json={"name": "Gold members!", "segmentRef": irish["segment"]}).json()
    assert made["friendlyId"] == "gold_members" and made["status"] == "draft" and made["format"] == "csv"
    assert made["csv"] == {"delimiter": ",", "header": True, "quoteAll": False} and made["maxRecordsPerFile"] == 500000
    again = client.post("/opencdp/v1/exports", json={"name": "Gold members", "segmentRef": irish["segment"]}).json()
    assert again["friendlyId"] == "gold_members_2"
    taken = {"name": "y", "friendlyId": "gold_members", "segmentRef": irish["segment"]}
    assert client.post("/opencdp/v1/exports", json=taken).status_code == 409
    assert client.post("/opencdp/v1/exports/gold_members/start").status_code == 409  # instant schedule
    daily = {"name": "Gold members", "segmentRef": irish["segment"], "schedule": {"type": "weekly", "day": "friday"}}
    assert client.put("/opencdp/v1/exports/gold_members", json=daily).json()["schedule"] == {
        "type": "weekly",
        "day": "friday",
        "time": "01:00",
    }
    started = client.post("/opencdp/v1/exports/gold_members/start").json()
    assert started["status"] == "scheduled" and started["nextRunAt"].endswith("T01:00:00.000Z")
    assert client.put("/opencdp/v1/exports/gold_members", json=daily).status_code == 409
    assert client.delete("/opencdp/v1/exports/gold_members").status_code == 409
    assert client.delete(f"/opencdp/v1/segments/{irish['segment']}").status_code == 409  # used by exports
    used = client.get(f"/opencdp/v1/segments/{irish['segment']}").json()["usedBy"]
    assert {u["friendlyId"] for u in used} == {"gold_members", "gold_members_2"}
    assert client.post("/opencdp/v1/exports/gold_members/pause").json()["status"] == "paused"
    assert client.delete("/opencdp/v1/exports/gold_members").status_code == 204
    assert client.get("/opencdp/v1/exports/gold_members").status_code == 404
    preview = client.get("/opencdp/v1/exports/gold_members_2/preview", params={"limit": 5})
    assert preview.status_code == 200 and preview.text.splitlines()[0] == "ref" and len(preview.text.splitlines()) == 3
    assert client.get("/opencdp/v1/exports/gold_members_2/preview", params={"limit": 21}).status_code == 400
    assert_error(
        client.get("/opencdp/v1/exports/gold_members_2/preview", params={"limit": "abc"}),
        400,
        "limit: not a valid value",
    )


def test_oauth_bearer_tokens_open_the_read_api_only(client, database, settings, irish, anonymous):
    define(client, irish["segment"], friendlyId="oauth_one")
    run(client, database, settings, "oauth_one")
    key, token = client.credentials
    issued = anonymous.post(
        "/oauth/token", data={"grant_type": "client_credentials", "client_id": key, "client_secret": token}
    )
    assert (
        issued.status_code == 200 and issued.json()["token_type"] == "Bearer" and issued.json()["expires_in"] == 86400
    )
    bearer = {"Authorization": f"Bearer {issued.json()['access_token']}"}
    assert anonymous.get("/v2/audienceExports/definitions/oauth_one/latestExport", headers=bearer).status_code == 200
    assert anonymous.get("/opencdp/v1/exports", headers=bearer).status_code == 401
    wrong = anonymous.post(
        "/oauth/token", data={"grant_type": "client_credentials", "client_id": key, "client_secret": "x"}
    )
    assert wrong.status_code == 401
    signed = issued.json()["access_token"]
    tampered = {"Authorization": f"Bearer {signed[:-2]}{'ff' if signed.endswith('00') else '00'}"}  # never the same
    assert anonymous.get("/v2/audienceExports/definitions/oauth_one/latestExport", headers=tampered).status_code == 401
    from opencdp.core.tenants import hash_token
    from opencdp.store import tenants as tenant_store

    with database.write() as conn:
        tenant = tenant_store.find_by_client_key(conn, key)
        for row in tenant_store.list_tokens(conn, tenant["id"]):
            if row["tokenHash"] == hash_token(token):
                tenant_store.revoke_token(conn, tenant["id"], row["id"], utcnow())
    assert anonymous.get("/v2/audienceExports/definitions/oauth_one/latestExport", headers=bearer).status_code == 401


def test_webhooks_are_signed_retried_and_recorded(client, database, settings, irish, monkeypatch):
    monkeypatch.setattr(settings, "webhook_allow_private", True)
    define(
        client, irish["segment"], friendlyId="hook_one", webhook={"url": "http://127.0.0.1:9/hook", "secret": "s3cr3t"}
    )
    assert "secret" not in client.get("/opencdp/v1/exports/hook_one").json()["webhook"]
    execution = run(client, database, settings, "hook_one")
    seen: list[httpx.Request] = []
    answers = iter([503, 204])

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(next(answers))

    hooks = Webhooks(database, "http://cdp.test", transport=httpx.MockTransport(handler))
    assert hooks.deliver_due() == 1
    state = client.get(f"/opencdp/v1/exports/hook_one/executions/{execution['executionRef']}").json()["webhook"]
    assert state == {"status": "retrying", "attempts": 1, "responseCode": 503}
    assert hooks.deliver_due() == 0  # the retry waits a minute
    from opencdp.store import exports as export_store

    with database.write() as conn:
        export_store.update_execution(conn, execution["executionRef"], {"webhookDue": utcnow()})
    assert hooks.deliver_due() == 1
    state = client.get(f"/opencdp/v1/exports/hook_one/executions/{execution['executionRef']}").json()["webhook"]
    assert state == {"status": "delivered", "attempts": 2, "responseCode": 204}
    body = orjson.loads(seen[-1].content)
    assert (
        body["event"] == "audienceExport.finished" and body["status"] == "SUCCESS" and body["friendlyId"] == "hook_one"
    )
    assert body["apiUrl"] == f"http://cdp.test/v2/audienceExports/executions/{execution['executionRef']}/export"
    expected = "sha256=" + hmac.new(b"s3cr3t", seen[-1].content, hashlib.sha256).hexdigest()
    assert seen[-1].headers["X-OpenCDP-Signature"] == expected


def test_tenants_and_credentials(client, other, anonymous, irish):
    define(client, irish["segment"], friendlyId="mine_one")
    for path in ("/opencdp/v1/exports/mine_one", "/opencdp/v1/exports/mine_one/executions",
                 "/v2/audienceExports/definitions/mine_one/reports"):  # fmt: skip
        assert other.get(path).status_code == 404
        assert anonymous.get(path).status_code == 401
    assert other.post("/opencdp/v1/exports/mine_one/run").status_code == 404
    foreign = {"name": "x", "segmentRef": irish["segment"]}
    assert other.post("/opencdp/v1/exports", json=foreign).status_code == 400


def test_scheduled_runs_fire_once_per_slot_and_a_new_type_restarts_the_delta(client, database, settings, irish):
    from opencdp.core.exports import definitions as export_definitions

    weekly = {"type": "weekly", "day": "monday", "time": "06:30"}
    define(client, irish["segment"], friendlyId="weekly_one", type="delta", format="ndjson", schedule=weekly,
           output={"guest": ["firstName"]})  # fmt: skip
    started = client.post("/opencdp/v1/exports/weekly_one/start").json()
    assert started["nextRunAt"].endswith("T06:30:00.000Z")
    later = utcnow() + timedelta(days=15)  # two slots missed: one catch-up run
    with database.write() as conn:
        assert export_definitions.queue_scheduled(conn, later) == 1
    with database.write() as conn:
        assert export_definitions.queue_scheduled(conn, later) == 0
    Builder(database).run_available()
    Exporter(database, settings.files()).run_available()
    runs = client.get("/opencdp/v1/exports/weekly_one/executions").json()["items"]
    assert [(r["executionType"], r["status"], r["successAdd"]) for r in runs] == [("SCHEDULED", "success", 2)]
    again = run(client, database, settings, "weekly_one")
    assert (again["successAdd"], again["successRemove"]) == (0, 0)
    client.post("/opencdp/v1/exports/weekly_one/pause")
    body = {"name": "Gold members", "segmentRef": irish["segment"], "type": "full", "format": "ndjson",
            "output": {"guest": ["firstName"]}}  # fmt: skip
    assert client.put("/opencdp/v1/exports/weekly_one", json=body).status_code == 200
    body["type"] = "delta"
    assert client.put("/opencdp/v1/exports/weekly_one", json=body).status_code == 200
    fresh = run(client, database, settings, "weekly_one")
    assert fresh["successAdd"] == 2  # the baseline went with the type change


def test_a_cron_schedule_runs_at_its_slots_and_reads_in_plain_words(client, irish):
    """OpenCDP's own schedule type beside the spec's three: a 5-field cron expression in UTC."""
    from opencdp.core.exports.definitions import describe_schedule

    weekdays = {"type": "cron", "expression": "30 6 * * 1-5"}
    made = define(client, irish["segment"], friendlyId="weekdays", schedule=weekdays)
    assert made["schedule"] == weekdays
    started = client.post("/opencdp/v1/exports/weekdays/start").json()
    next_run = datetime.fromisoformat(started["nextRunAt"].replace("Z", "+00:00"))
    assert (next_run.hour, next_run.minute) == (6, 30) and next_run.weekday() < 5
    monday = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
    assert describe_schedule(weekdays, monday) == (
        "At 06:30 on Monday through Friday UTC, once started: next Monday 2026-12-07 06:30, then 2026-12-08 06:30."
    )
    for wrong, why in ((weekdays | {"expression": "every day"}, "must be a 5-field cron expression"),
                       (weekdays | {"expression": "61 6 * * *"}, "Bad minute"),
                       (weekdays | {"time": "06:30"}, "not allowed for a cron schedule"),
                       ({"type": "daily", "time": "06:30", "expression": "* * * * *"}, "not allowed for a daily schedule")):  # fmt: skip
        refused = client.post("/opencdp/v1/exports", json={"name": "x", "segmentRef": irish["segment"], "schedule": wrong})
        assert refused.status_code == 400 and why in refused.json()["developerMessage"], refused.text
