"""Files in an S3-compatible bucket: a real S3-protocol server (moto's, on loopback) behind real OpenCDP
processes, on SQLite and PostgreSQL. A batch goes up through its presigned URL (a corrupted one
included) or through OpenCDP's own upload route, is processed from the bucket, and its log and an
export's files come back down; nothing lands in the local data directory. Then several machines: two
API processes and a worker that share PostgreSQL and the bucket.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import os
import subprocess
import sys
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson
import pytest

from batch_helpers import gz, order, record
from conftest import fresh_postgres_database
from opencdp.core.tenants import create_tenant
from opencdp.store.database import Database
from opencdp.store.s3_files import PART_BYTES, S3Files
from opencdp.testing import free_port, running_server

BUCKET = "opencdp-test"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's S3 server as a process of its own on a loopback port, as a real bucket would be: the
    processes under test, and this one, reach it over HTTP."""
    os.environ.update(CREDENTIALS)
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("wb")
    server = subprocess.Popen([str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
                              stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(endpoint, timeout=1)
                break
            except httpx.HTTPError:
                assert server.poll() is None and time.monotonic() < deadline, "moto_server did not start"
                time.sleep(0.1)
        S3Files(f"s3://{BUCKET}", endpoint).client.create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def s3_env(endpoint: str, prefix: str, **more: str) -> dict[str, str]:
    return {**CREDENTIALS, "OPENCDP_FILE_STORE": f"s3://{BUCKET}/{prefix}", "OPENCDP_S3_ENDPOINT_URL": endpoint,
            "OPENCDP_BATCH_POLL_SECONDS": "0.2", **more}  # fmt: skip


@pytest.fixture
def tenant_of(database: Database) -> Any:
    def make() -> tuple[str, str]:
        with database.write() as conn:
            made = create_tenant(conn, f"s3-{uuid.uuid4().hex[:8]}")
        return made.tenant.client_key, made.api_token

    return make


def allocate(api: httpx.Client, data: bytes, size: int | None = None) -> dict[str, Any]:
    ref = str(uuid.uuid4())
    body = {"checksum": hashlib.md5(data).hexdigest(), "size": len(data) if size is None else size}
    answer = api.put(f"/v2/batches/{ref}", json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()


def put(batch: dict[str, Any], data: bytes) -> httpx.Response:
    md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
    return httpx.put(batch["location"]["href"], content=data, headers={"Content-MD5": md5})


def final(api: httpx.Client, ref: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status = api.get(f"/v2/batches/{ref}").json()
        if status["status"]["code"] in ("success", "error", "corrupted") or time.monotonic() > deadline:
            return status
        time.sleep(0.2)


def exported(asked: httpx.Client, followed: httpx.Client, file_format: str) -> dict[str, Any]:
    """An export of every guest run through `asked`, followed to its end and listed through `followed`."""
    segment = asked.post("/opencdp/v1/segments", json={"name": "All", "definition": {}}).json()
    body = {"name": "All", "segmentRef": segment["ref"], "format": file_format, "output": {"guest": ["email"]}}
    export = asked.post("/opencdp/v1/exports", json=body).json()
    run = asked.post(f"/opencdp/v1/exports/{export['ref']}/run", json={"buildSegment": True}).json()
    deadline = time.monotonic() + 30
    while (found := followed.get(urlsplit(run["href"]).path).json())["status"] not in ("success", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert found["status"] == "success", found
    return followed.get(f"/v2/audienceExports/executions/{found['executionRef']}/export").json()


def test_batches_and_exports_live_in_the_bucket(database, s3_endpoint, tenant_of, tmp_path):
    key, token = tenant_of()
    prefix = uuid.uuid4().hex[:8]
    with running_server({"OPENCDP_DATABASE_URL": database.url, **s3_env(s3_endpoint, prefix)}, tmp_path) as base, \
            httpx.Client(base_url=base, auth=(key, token), timeout=30) as api:  # fmt: skip
        good = gz([record("order", "insert", order(f"S3-{uuid.uuid4().hex[:8]}", contact={"email": "s3@example.com"}))
                   for _ in range(3)] + ["{bad"])  # fmt: skip
        batch = allocate(api, good)
        link = urlsplit(batch["location"]["href"])
        assert link.netloc == urlsplit(s3_endpoint).netloc  # the presigned PUT goes to the bucket itself
        assert "content-md5" in parse_qs(link.query)["X-Amz-SignedHeaders"][0].split(";")
        assert put(batch, good).status_code == 200
        status = final(api, batch["ref"])
        assert status["status"]["code"] == "error" and status["statistics"]["successfulRecords"] == 3
        log = httpx.get(status["status"]["log"])
        assert log.status_code == 200
        assert [orjson.loads(line)["message"] for line in gzip.decompress(log.content).splitlines()] == [
            "Failed to parse import line"
        ]

        other = bytearray(good)
        other[-5] ^= 1  # the same size, another checksum
        corrupted = allocate(api, good)
        assert put(corrupted, bytes(other)).status_code in (
            200,
            400,
        )  # S3 refuses it (BadDigest), or keeps it to be judged
        shown = final(api, corrupted["ref"], timeout=5)
        assert shown["status"]["code"] in ("corrupted", "uploading")
        if shown["status"]["code"] == "corrupted":
            assert shown["status"]["message"] == "Checksum does not match"
        short = allocate(api, good, size=len(good) + 1)
        assert put(short, good).status_code == 200
        assert final(api, short["ref"])["status"] == {"code": "corrupted", "message": "Size does not match"}

        [file] = exported(api, api, "ndjson")["exports"]
        assert urlsplit(file["url"]).netloc == urlsplit(s3_endpoint).netloc  # a presigned GET from the bucket
        rows = [orjson.loads(line) for line in gzip.decompress(httpx.get(file["url"]).content).splitlines()]
        assert {row["email"] for row in rows} == {"s3@example.com"}
    assert not (tmp_path / "files").exists()  # nothing went to the local directory


def test_opencdp_s_own_upload_route_with_the_bucket_behind_it(database, s3_endpoint, tenant_of, tmp_path):
    key, token = tenant_of()
    env = s3_env(s3_endpoint, uuid.uuid4().hex[:8], OPENCDP_S3_PRESIGNED_UPLOADS="false")
    with running_server({"OPENCDP_DATABASE_URL": database.url, **env}, tmp_path) as base, \
            httpx.Client(base_url=base, auth=(key, token), timeout=30) as api:  # fmt: skip
        data = gz([record("order", "insert", order(f"S3-{uuid.uuid4().hex[:8]}")) for _ in range(2)])
        batch = allocate(api, data)
        assert batch["location"]["href"].startswith(f"{base}/v2/batches/")
        assert put(batch, data).status_code == 200
        assert final(api, batch["ref"])["status"]["code"] == "success"
        corrupted = allocate(api, data)
        other = bytearray(data)
        other[-5] ^= 1
        assert put(corrupted, bytes(other)).status_code == 200
        assert final(api, corrupted["ref"])["status"]["code"] == "corrupted"
    assert not (tmp_path / "files").exists()


def workers(script: Path, env: dict[str, str], count: int) -> list[subprocess.Popen[bytes]]:
    return [subprocess.Popen([str(script), "worker", "--every", "0.2"], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL) for _ in range(count)]  # fmt: skip


def event(api: httpx.Client, key: str, browser: str, kind: str, **fields: Any) -> None:
    body = {"type": kind, "browser_id": browser, "client_key": key, "channel": "WEB", "pos": "shop.example",
            "currency": "EUR", "language": "EN", "page": "/", **fields}  # fmt: skip
    answer = api.post("/v1.2/events", json=body)
    assert answer.status_code == 201, answer.text


def test_several_machines_share_postgresql_and_the_bucket(s3_endpoint, tmp_path):
    """Two API processes that do no background work and two workers, on one PostgreSQL database and one
    bucket: a batch allocated through A and polled through B is processed by a worker and its log
    downloads through A; an export a worker built is listed through either; one browser's Stream events
    sent alternately to A and B make one order; a worker killed mid-batch leaves the batch to another,
    which finishes it exactly once, reading the file from the bucket."""
    key, token = "ck_multi", "tok_multi"
    script = Path(sys.executable).with_name("opencdp")
    with fresh_postgres_database("opencdp_multi") as url:
        env = {"OPENCDP_DATABASE_URL": url, "OPENCDP_BATCH_IN_PROCESS": "false", "OPENCDP_CLIENT_KEY": key,
               "OPENCDP_API_TOKEN": token, "OPENCDP_BATCH_LEASE_SECONDS": "2", "OPENCDP_BATCH_LINES_PER_COMMIT": "50",
               **s3_env(s3_endpoint, uuid.uuid4().hex[:8])}  # fmt: skip
        for name in ("a", "b", "w"):
            (tmp_path / name).mkdir()
        worker_env = {**os.environ, **env, "OPENCDP_DATA_DIR": str(tmp_path / "w")}
        with running_server(env, tmp_path / "a") as one, running_server(env, tmp_path / "b") as two, \
                httpx.Client(base_url=one, auth=(key, token), timeout=30) as first, \
                httpx.Client(base_url=two, auth=(key, token), timeout=30) as second:  # fmt: skip
            data = gz([record("order", "insert", order(f"MN-{uuid.uuid4().hex[:8]}", contact={"email": "mn@example.com"}))
                       for _ in range(3)] + ["{bad"])  # fmt: skip
            batch = allocate(first, data)
            assert put(batch, data).status_code == 200
            time.sleep(1)
            assert second.get(f"/v2/batches/{batch['ref']}").json()["status"]["code"] == "uploading"  # no worker yet
            running = workers(script, worker_env, 2)
            try:
                status = final(second, batch["ref"])
                assert status["status"]["code"] == "error" and status["statistics"]["successfulRecords"] == 3
                log = first.get(f"/v2/batches/{batch['ref']}").json()["status"]["log"]
                assert log.startswith(one) and gzip.decompress(httpx.get(log).content).count(b"\n") == 1
                listed = exported(first, second, "csv")
                through_first = first.get(f"/v2/audienceExports/executions/{listed['executionRef']}/export").json()
                for shown in (listed, through_first):
                    assert b"mn@example.com" in gzip.decompress(httpx.get(shown["exports"][0]["url"]).content)

                browser = first.get("/v1.2/browser/create.json", params={"client_key": key}).json()["ref"]
                steps = [("ADD", {"product": {"item_id": "SKU_1", "type": "MOBILE", "name": "Phone", "price": 30.6,
                                              "quantity": 2}}),
                         ("ADD_CONTACTS", {"contact": {"email": "alt@example.com", "firstname": "Al"}}),
                         ("CONFIRM", {"product": [{"item_id": "SKU_1"}]}),
                         ("CHECKOUT", {"reference_id": f"ALT-{uuid.uuid4().hex[:6]}", "status": "PURCHASED"})]  # fmt: skip
                for number, (kind, fields) in enumerate(steps):
                    event((first, second)[number % 2], key, browser, kind, **fields)
                reference = steps[-1][1]["reference_id"]
                [made] = second.get("/v2.1/orders", params={"referenceId": reference, "expand": "true"}).json()["items"]
                assert made["price"] == 61.2 and made["status"] == "PURCHASED"

                lines = [record("order", "insert", order(f"KILL-{uuid.uuid4().hex[:8]}")) for _ in range(1500)]
                big = gz(lines)
                killed = allocate(first, big)
                assert put(killed, big).status_code == 200
                deadline = time.monotonic() + 60
                while first.get(f"/opencdp/v1/batches/{killed['ref']}/progress").json()["lines"] == 0:
                    assert time.monotonic() < deadline
                    time.sleep(0.05)
                for worker in running:  # whichever holds it dies mid-batch, without a word
                    worker.kill()
                    worker.wait(timeout=30)
                midway = first.get(f"/opencdp/v1/batches/{killed['ref']}/progress").json()
                assert midway["status"] == "processing" and 0 < midway["lines"] < 1500
                running = workers(script, worker_env, 1)  # another, elsewhere
                done = final(second, killed["ref"], timeout=120)
                assert done["status"]["code"] == "success"
                assert done["statistics"]["totalRecords"] == done["statistics"]["successfulRecords"] == 1500
                for line in lines[::100]:
                    found = first.get("/v2.1/orders", params={"referenceId": line["value"]["referenceId"]}).json()
                    assert len(found["items"]) == 1
            finally:
                for worker in running:
                    worker.terminate()
                    worker.wait(timeout=30)
        for name in ("a", "b", "w"):
            assert not (tmp_path / name / "files").exists()


def test_streams_keep_memory_flat(s3_endpoint):
    store = S3Files(f"s3://{BUCKET}/flat-{uuid.uuid4().hex[:8]}", s3_endpoint)
    block = os.urandom(64 * 1024)
    tracemalloc.start()
    with store.writer("big.bin") as out:
        for _ in range(1280):  # 80 MiB in 64 KiB writes
            out.write(block)
    _, written_peak = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    total = 0
    with store.reader("big.bin") as stream:
        while chunk := stream.read(64 * 1024):
            total += len(chunk)
    _, read_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert total == 1280 * 64 * 1024 == store.size("big.bin")
    # a few parts in flight at most, whatever the size of the file; a read holds about one chunk
    assert written_peak < 4 * PART_BYTES and read_peak < 4 * 1024 * 1024, (written_peak, read_peak)
