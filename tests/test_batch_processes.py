"""The Batch API with real processes: the CLI client against `opencdp serve`, workers killed with SIGKILL
at random moments and restarted until the batch is done, and two workers sharing PostgreSQL."""

from __future__ import annotations

import gzip
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy import func, select

from conftest import SERVER_KEY, SERVER_TOKEN, fresh_postgres_database
from opencdp.demo import order_records, write_orders
from opencdp.store.database import Database
from opencdp.store.tables import orders
from opencdp.testing import running_server

KEY, TOKEN = SERVER_KEY, SERVER_TOKEN
OPENCDP = str(Path(sys.executable).with_name("opencdp"))


def cli(env, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([OPENCDP, *args], env=env, capture_output=True, text=True, timeout=300)


def test_the_cli_uploads_and_waits(environment, tmp_path):
    file = tmp_path / "orders.gz"
    made = cli(environment, "demo-data", "orders", "--count", "60", "--bad-share", "0.1", "--out", str(file))
    assert made.returncode == 0, made.stderr
    truth = write_orders(tmp_path / "again.gz", 60, bad_share=0.1)
    with running_server(environment, tmp_path) as base:
        env = {**environment, "OPENCDP_URL": base}
        done = cli(env, "batch", "upload", str(file), "--wait")
        assert done.returncode == 1, done.stdout + done.stderr  # the batch ends in error: some lines failed
        assert "error" in done.stdout and f"the {truth.bad} failed records" in done.stdout
        listed = cli(env, "batch", "list")
        assert "1 batch\n" in listed.stdout
        with httpx.Client(base_url=base, auth=(KEY, TOKEN)) as api:
            good = next(r for r in order_records(60, bad_share=0.1) if isinstance(r, dict))
            found = api.get("/v2.1/orders", params={"referenceId": good["value"]["referenceId"]}).json()["items"]
            assert len(found) == 1


def test_workers_killed_at_random_finish_the_batch_exactly_once(environment, tmp_path):
    file = tmp_path / "orders.gz"
    truth = write_orders(file, 400, bad_share=0.05, seed=11, items=2)
    server_env = {**environment, "OPENCDP_BATCH_IN_PROCESS": "false"}
    with running_server(server_env, tmp_path) as base:
        # small commits, so that each worker has committed something when it is killed, and dies mid-file;
        # a transaction of several chunks, so that it may die between two chunks of one transaction
        env = {**environment, "OPENCDP_PUBLIC_URL": base, "OPENCDP_URL": base, "OPENCDP_BATCH_LINES_PER_CHUNK": "20",
               "OPENCDP_BATCH_LINES_PER_COMMIT": "60"}  # fmt: skip
        uploaded = cli(env, "batch", "upload", str(file), "--ref", ref := str(uuid.uuid4()))
        assert uploaded.returncode == 0, uploaded.stdout + uploaded.stderr
        rng = random.Random(5)
        kills = 0
        with httpx.Client(base_url=base, auth=(KEY, TOKEN)) as api:

            def progress() -> tuple[str, int]:
                shown = api.get(f"/v2/batches/{ref}").json()
                return shown["status"]["code"], shown["statistics"]["totalRecords"]

            deadline = time.monotonic() + 300
            code, seen = progress()
            while code not in ("success", "error"):
                assert time.monotonic() < deadline, "the batch never finished"
                worker = subprocess.Popen([OPENCDP, "worker", "--every", "0.2"], env=env,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
                while progress() == (code, seen) and time.monotonic() < deadline:
                    time.sleep(0.05)  # killed only once it has committed something, at a random moment after
                time.sleep(
                    rng.uniform(0, 0.05)
                )  # soon: a worker applies a 60-line transaction in a few hundredths of a second
                worker.send_signal(signal.SIGKILL)
                worker.wait()
                kills += 1
                time.sleep(1.1)  # let the dead worker's lease lapse
                code, seen = progress()
            status = api.get(f"/v2/batches/{ref}").json()
            stats = status["statistics"]
            assert kills >= 2
            assert stats["totalRecords"] == truth.orders + truth.bad
            assert (stats["successfulRecords"], stats["failedRecords"]) == (truth.orders, truth.bad)
            log = httpx.get(status["status"]["log"]).content
            assert len(gzip.decompress(log).splitlines()) == truth.bad
    url = environment.get("OPENCDP_DATABASE_URL") or f"sqlite:///{tmp_path / 'opencdp.db'}"
    db = Database(url)
    with db.read() as conn:
        count = conn.execute(select(func.count(), func.count(orders.c.reference_id.distinct()))).one()
    db.dispose()
    assert tuple(count) == (truth.orders, truth.orders), "every good record applied exactly once"


def test_two_workers_share_three_batches_on_postgresql(tmp_path):
    with fresh_postgres_database("opencdp_workers") as url:
        env = {**os.environ, "OPENCDP_CLIENT_KEY": KEY, "OPENCDP_API_TOKEN": TOKEN, "OPENCDP_DATA_DIR": str(tmp_path),
               "OPENCDP_DATABASE_URL": url, "OPENCDP_BATCH_IN_PROCESS": "false", "OPENCDP_LOG_LEVEL": "warning"}  # fmt: skip
        with running_server(env, tmp_path) as base:
            env["OPENCDP_PUBLIC_URL"] = env["OPENCDP_URL"] = base
            refs = []
            for index in range(3):
                file = tmp_path / f"part{index}.gz"
                write_orders(file, 120, seed=index, prefix=f"P{index}")
                refs.append(str(uuid.uuid4()))
                assert cli(env, "batch", "upload", str(file), "--ref", refs[-1]).returncode == 0
            workers = [subprocess.Popen([OPENCDP, "worker", "--every", "0.2"], env=env, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL) for _ in range(2)]  # fmt: skip
            try:
                with httpx.Client(base_url=base, auth=(KEY, TOKEN)) as api:
                    deadline = time.monotonic() + 180
                    while any(api.get(f"/v2/batches/{r}").json()["status"]["code"] != "success" for r in refs):
                        assert time.monotonic() < deadline, "the batches never finished"
                        time.sleep(0.3)
                    for ref in refs:
                        stats = api.get(f"/v2/batches/{ref}").json()["statistics"]
                        assert (stats["totalRecords"], stats["successfulRecords"], stats["skippedRecords"]) == (
                            120,
                            120,
                            0,
                        )
            finally:
                for worker in workers:
                    worker.terminate()
                    worker.wait()
        db = Database(env["OPENCDP_DATABASE_URL"])
        with db.read() as conn:
            assert conn.execute(select(func.count()).select_from(orders)).scalar_one() == 360
        db.dispose()
