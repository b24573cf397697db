"""Batches of different tenants take turns: a long file (even one of blank lines) cannot hold the worker
while another tenant's batch waits. On SQLite and on PostgreSQL."""

from __future__ import annotations

import gzip
import hashlib
import time
import uuid

import httpx

from batch_helpers import allocate, gz, order, record, upload
from conftest import SERVER_KEY, SERVER_TOKEN
from opencdp.core.tenants import create_tenant
from opencdp.jobs import processor_for
from opencdp.store.database import Database
from opencdp.testing import running_server


def status_of(client, batch) -> str:
    return client.get(f"/v2/batches/inspect/{batch['ref']}").json()["status"]["code"]


def test_a_long_batch_gives_its_turn_to_another_tenants(client, other, database, settings):
    lines = [b""] * 2000 + [record("order", "upsert", order(f"TURN-{i}")) for i in range(30)] + [b""] * 2000
    long_data, short_data = gz(lines), gz([record("order", "upsert", order("OTHER-1"))])
    long_batch = allocate(client, long_data)
    assert upload(client, long_batch, long_data).status_code == 200
    short_batch = allocate(other, short_data)
    assert upload(other, short_batch, short_data).status_code == 200
    quick = settings.model_copy(update={"batch_slice_seconds": 1e-6, "batch_lines_per_chunk": 10,
                                        "batch_lines_per_commit": 10, "batch_check_ahead": False})  # fmt: skip
    processor = processor_for(quick, database)
    seen = []
    while processor.process_next():
        seen.append((status_of(client, long_batch), status_of(other, short_batch)))
    assert ("processing", "success") in seen  # the short batch ended while the long one was under way
    assert seen[-1] == ("success", "success")
    stats = client.get(f"/v2/batches/{long_batch['ref']}").json()["statistics"]
    assert (stats["totalRecords"], stats["successfulRecords"]) == (30, 30)
    assert all(len(client.get(f"/v2.1/orders?referenceId=TURN-{i}").json()["items"]) == 1 for i in range(30))


def test_a_file_of_blank_lines_does_not_hold_up_another_tenant(environment, tmp_path):
    """192 MiB of blank lines (a 196 KB upload) from one tenant; another's one-line batch, sent 2 s later,
    is done while the first is still being read."""
    with running_server(environment, tmp_path) as base:
        db = Database(environment.get("OPENCDP_DATABASE_URL") or f"sqlite:///{tmp_path / 'opencdp.db'}")
        with db.write() as conn:
            second = create_tenant(conn, "second")
        db.dispose()
        blank = gzip.compress(b"\n" * (192 * 1024 * 1024), compresslevel=9)
        one = gz([record("order", "upsert", order("SECOND-1"))])
        with (
            httpx.Client(base_url=base, auth=(SERVER_KEY, SERVER_TOKEN), timeout=60) as first_api,
            httpx.Client(base_url=base, auth=(second.tenant.client_key, second.api_token), timeout=60) as second_api,
        ):
            blank_batch = send(first_api, blank)
            time.sleep(2)
            one_batch = send(second_api, one)
            started = time.monotonic()
            while status_of(second_api, one_batch) not in ("success", "error") and time.monotonic() - started < 120:
                time.sleep(0.2)
            waited = time.monotonic() - started
            assert status_of(second_api, one_batch) == "success"
            assert status_of(first_api, blank_batch) == "processing", f"the blank file ended first ({waited:.1f} s)"
            print(f"the second tenant's batch finished {waited:.1f} s after its upload")


def send(api: httpx.Client, data: bytes) -> dict:
    ref = str(uuid.uuid4())
    allocated = api.put(f"/v2/batches/{ref}", json={"checksum": hashlib.md5(data).hexdigest(), "size": len(data)})
    assert allocated.status_code == 201, allocated.text
    assert httpx.put(allocated.json()["location"]["href"], content=data, timeout=60).status_code == 200
    return allocated.json()
