"""Every segment definition and export definition in docs/segments-exports.md is valid as written, and
the first examples select who they say they do. On SQLite and PostgreSQL."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from batch_helpers import order, run_batch

DOC = (Path(__file__).parent.parent / "docs" / "segments-exports.md").read_text()


def json_blocks(section: str) -> list[dict[str, object]]:
    text = DOC.split(section, 1)[1].split("\n## ", 1)[0]
    return [orjson.loads(block) for block in re.findall(r"```json\n(.*?)```", text, flags=re.S)]


def record(value: dict[str, object]) -> dict[str, object]:
    return {"ref": str(uuid.uuid4()), "schema": "order", "mode": "insert", "value": value}


def test_the_documented_definitions(client, database, settings):
    definitions = json_blocks("### Examples")
    assert len(definitions) == 7
    email = f"ann-{uuid.uuid4().hex[:8]}@example.com"
    ann = client.post("/v2.1/guests", json={"guestType": "customer", "firstName": "Ann", "country": "IE",
                                            "emails": [email], "identifiers": [{"provider": "CRM_ID", "id": "C-1"}]})  # fmt: skip
    assert ann.status_code == 201, ann.text
    ext = {"name": "ext1", "key": "default", "loyaltyTier": "gold"}
    assert client.post(f"/v2.1/guests/{ann.json()['ref']}/extensions", json=ext).status_code == 201
    recent = (datetime.now(UTC) - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    orders = [order(f"DOC-{uuid.uuid4().hex[:6]}", orderedAt=recent, contact={"email": email}) for _ in range(3)]
    status = run_batch(client, database, settings, [record(value) for value in orders])
    assert status["status"]["code"] == "success", status

    sizes = []
    for definition in definitions:
        checked = client.post("/opencdp/v1/segments/validate", json={"definition": definition})
        assert checked.status_code == 200, (definition, checked.text)
        preview = client.post("/opencdp/v1/segments/preview", json={"definition": definition})
        assert preview.status_code == 200, preview.text
        sizes.append(preview.json()["size"])
    assert sizes[:2] == [1, 1]  # Ann: gold and Irish; three purchases three days ago
    assert sizes[2] == 0  # 179.7 EUR, and ordering lately


def test_the_documented_export_definition(client):
    (export,) = json_blocks("## Exports")
    client.post("/v2.1/guests", json={"guestType": "customer", "identifiers": [{"provider": "CRM_ID", "id": "C-2"}]})
    guest = client.post("/v2.1/guests", json={"guestType": "customer"}).json()
    ext = {"name": "ext1", "key": "default", "loyaltyTier": "gold"}
    assert client.post(f"/v2.1/guests/{guest['ref']}/extensions", json=ext).status_code == 201
    segment = client.post("/opencdp/v1/segments", json={"name": "All", "definition": {}}).json()
    body = {**export, "segmentRef": segment["ref"]}
    created = client.post("/opencdp/v1/exports", json=body)
    assert created.status_code == 201, created.text
    shown = created.json()
    assert shown["friendlyId"] == "gold_daily" and shown["output"]["orders"]["limit"] == 3
