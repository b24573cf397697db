"""Building batch files and driving the Batch API's three calls, for the batch tests."""

from __future__ import annotations

import base64
import gzip
import hashlib
import uuid
from typing import Any

import orjson

from opencdp.jobs import processor_for


def gz(lines: list[Any]) -> bytes:
    """NDJSON of the given records (dicts are dumped, bytes and str written as they are), gzipped."""
    body = b"".join(
        (orjson.dumps(x) if isinstance(x, dict) else x.encode() if isinstance(x, str) else x) + b"\n" for x in lines
    )
    return gzip.compress(body, mtime=0)


def allocate(client, data: bytes, ref: str | None = None) -> dict[str, Any]:
    ref = ref or str(uuid.uuid4())
    response = client.put(f"/v2/batches/{ref}", json={"checksum": hashlib.md5(data).hexdigest(), "size": len(data)})
    assert response.status_code in (200, 201), response.text
    return response.json()


def upload(client, batch: dict[str, Any], data: bytes, md5: bool = True):
    headers = {"Content-Md5": base64.b64encode(hashlib.md5(data).digest()).decode()} if md5 else {}
    return client.put(batch["location"]["href"], content=data, headers=headers, auth=None)


def run_batch(client, database, settings, lines: list[Any]) -> dict[str, Any]:
    """Allocate, upload, process, and return the final status resource."""
    data = gz(lines)
    batch = allocate(client, data)
    assert upload(client, batch, data).status_code == 200
    processor_for(settings, database).run_available()
    return client.get(f"/v2/batches/{batch['ref']}").json()


def read_log(client, status: dict[str, Any]) -> list[dict[str, Any]]:
    response = client.get(status["status"]["log"], auth=None)
    assert response.status_code == 200 and response.headers["content-type"] == "application/gzip"
    return [orjson.loads(line) for line in gzip.decompress(response.content).splitlines()]


def order(reference: str, **changes: Any) -> dict[str, Any]:
    value = {
        "referenceId": reference, "channel": "WEB", "pointOfSale": "shop.example", "status": "PURCHASED",
        "orderedAt": "2025-03-07T16:15:11.000Z", "currencyCode": "EUR", "price": 59.9, "paymentType": "Card",
        "cardType": "Visa", "contact": {"email": f"{reference.lower()}@example.com"},
        "orderItems": [{"type": "BOOK", "referenceId": f"{reference}-1", "productId": "B-17", "name": "SICP",
                        "description": "Hardcover", "vendor": "MIT Press", "price": 59.9, "currencyCode": "EUR",
                        "status": "PURCHASED"}],
        "extensions": [{"name": "ext", "key": "default", "giftWrap": False}],
    }  # fmt: skip
    value.update(changes)
    return value


def record(schema: str, mode: str, value: dict[str, Any], ref: str | None = None) -> dict[str, Any]:
    return {"ref": ref or str(uuid.uuid4()), "schema": schema, "mode": mode, "value": value}
