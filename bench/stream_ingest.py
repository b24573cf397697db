"""Benchmark: simulated browsers sending a realistic event mix to the Stream API of a real server.

M browsers are created first (create.json); then `wrk` (Debian package `wrk`) sends their journeys
(views, adds, a contact, a confirmation, a checkout) over C connections. Printed beside the figure: the
floor, the same server answering a constant JSON body (`GET /healthz`) to the same connections in the
same run, and the CPU each side spent per request of it. Events are applied by the server's journal
applier after their 201 or, with `--appliers N`, by N `opencdp worker` processes beside a server that
applies nothing itself (OPENCDP_STREAM_APPLIER=none), counted as the server's CPU. During the load the bench
samples the applier's lag ten times a second (how long the oldest event still waiting has waited) and
prints its p99; afterwards it waits for the journal to empty, says how long that took, then counts the
events table: every 201 must be a stored event (or an entry kept in the journal because applying it
failed).

    .venv/bin/python bench/stream_ingest.py --browsers 200 --clients 32 --seconds 20
    .venv/bin/python bench/stream_ingest.py --browsers 200 --clients 32 --seconds 20 --workers 1 --appliers 1
    .venv/bin/python bench/stream_ingest.py --browsers 200 --clients 32 --seconds 20 --ingest-only
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from cpu_meter import CpuMeter
from sqlalchemy import func, select

from opencdp.core.values import utcnow
from opencdp.jobs import apply_stream_journal
from opencdp.store.database import Database
from opencdp.store.tables import events, orders, stream_journal
from opencdp.testing import running_server

HERE = Path(__file__).parent
KEY = "ck_bench"


def wrk(base: str, clients: int, seconds: int, script: str, path: str, *args: str) -> dict[str, float]:
    threads = 2
    command = ["wrk", f"-t{threads}", f"-c{clients}", f"-d{seconds}s", "-s", str(HERE / script), base + path]
    if args:
        command += ["--", args[0], str(threads), *args[1:]]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(line for line in output.splitlines() if line.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--browsers", type=int, default=200)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--appliers", type=int, default=0, help="applier processes beside the server (0: its own)")
    parser.add_argument("--stream-applier", choices=["process", "thread"], default="process",
                        help="OPENCDP_STREAM_APPLIER of the server (with --appliers or --ingest-only: none)")
    parser.add_argument("--ingest-only", action="store_true",
                        help="nothing applies during the load (no applier, no brake); the bench applies the journal "
                             "after it, and the CPU per event is that of accepting alone")  # fmt: skip
    parser.add_argument("--database-url", default="", help="an empty database; default: a fresh SQLite file")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench/stream_ingest.py needs wrk: apt-get install wrk")
    with tempfile.TemporaryDirectory() as data:
        database_url = args.database_url or f"sqlite:///{Path(data) / 'opencdp.db'}"
        env = {"OPENCDP_DATABASE_URL": database_url, "OPENCDP_CLIENT_KEY": KEY, "OPENCDP_LOG_LEVEL": "warning"}
        print(f"{args.browsers} browsers, {args.clients} connections, {args.seconds} s, {args.workers} server workers, "
              f"{database_url.split(':', 1)[0]}")  # fmt: skip
        env["OPENCDP_STREAM_APPLIER"] = args.stream_applier
        if args.appliers:
            env["OPENCDP_STREAM_APPLIER"] = "none"
        if args.ingest_only:
            env["OPENCDP_STREAM_APPLIER"] = "none"
            env["OPENCDP_STREAM_MAX_LAG_SECONDS"] = "0"
            env["OPENCDP_SWEEP_SECONDS"] = "0"
        with (
            running_server(env, Path(data), args=("--workers", str(args.workers))) as base,
            appliers(env, args.appliers) as applier_pids,
        ):
            browsers = []
            for _ in range(args.browsers):
                with urllib.request.urlopen(f"{base}/v1.2/browser/create.json?client_key={KEY}") as answer:
                    browsers.append(json.load(answer)["ref"])
            floor_meter = CpuMeter(base.pid, *applier_pids)
            floor = wrk(base, args.clients, max(5, args.seconds // 4), "constant.lua", "/healthz")
            floor_cpu = floor_meter.spent()
            db = Database(database_url)
            meter = CpuMeter(base.pid, *applier_pids)
            with LagSampler(db) as lag:
                mix = wrk(base, args.clients, args.seconds, "stream_mix.lua", "/", KEY, *browsers)
            if args.ingest_only:
                cpu = meter.spent()  # accepting alone
                drained, failed = drain(db, apply=True)
            else:
                drained, failed = drain(db)
                cpu = meter.spent()  # accepting and applying every event of the load
            with db.read() as conn:
                stored = conn.execute(select(func.count()).select_from(events)).scalar_one()
                made = conn.execute(select(func.count()).select_from(orders)).scalar_one()
            db.dispose()

    def line(name: str, result: dict[str, float]) -> str:
        rate = result["requests"] / result["seconds"]
        return f"{name:<30} {rate:>8,.0f} req/s   p50 {result['p50_ms']:6.1f} ms   p99 {result['p99_ms']:6.1f} ms"

    print(line("floor: constant JSON body", floor))
    print(line("events (mix)", mix))
    print(f"accepted (201): {mix['accepted']}, refused: {mix['failed']}, stored: {stored}, orders assembled: {made}")
    print(f"applier lag during the load: p50 {lag.percentile(50):.3f} s, p99 {lag.percentile(99):.3f} s, "
          f"max {max(lag.samples, default=0.0):.3f} s")  # fmt: skip
    print(f"journal applied {drained:.1f} s after the load stopped; entries that failed to apply: {failed}")
    print(f"events lost: {max(0, mix['accepted'] - stored - failed)}")
    per_event = ", ".join(f"{side} {1000 * seconds / max(1, mix['accepted']):.2f} ms" for side, seconds in cpu.items())
    print(f"CPU per event {'accepted' if args.ingest_only else 'accepted and applied'}: {per_event}")
    per_request = ", ".join(f"{side} {1000 * seconds / max(1, floor['requests']):.2f} ms"
                            for side, seconds in floor_cpu.items())  # fmt: skip
    print(f"CPU per request of the floor: {per_request}")


@contextlib.contextmanager
def appliers(env: dict[str, str], count: int) -> Iterator[list[int]]:
    """`count` processes of `opencdp worker` beside the server, applying the journal it leaves to them."""
    opencdp = str(Path(sys.executable).with_name("opencdp"))
    processes = [subprocess.Popen([opencdp, "worker", "--every", "60"], env={**os.environ, **env})
                 for _ in range(count)]  # fmt: skip
    try:
        yield [process.pid for process in processes]
    finally:
        for process in processes:
            process.terminate()
            process.wait()


class LagSampler:
    """Samples, ten times a second, how long the oldest journal entry still to apply has waited (0 when the
    journal is empty): the applier's lag, read from the database as the console's status route reads it."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        oldest = select(func.min(stream_journal.c.received_at)).where(stream_journal.c.failure.is_(None))
        while not self._stop.wait(0.1):
            with self.db.read() as conn:
                waiting_since = conn.execute(oldest).scalar()
            self.samples.append(0.0 if waiting_since is None else max(0.0, (utcnow() - waiting_since).total_seconds()))

    def percentile(self, p: int) -> float:
        if len(self.samples) < 2:
            return self.samples[0] if self.samples else 0.0
        return statistics.quantiles(self.samples, n=100, method="inclusive")[p - 1]

    def __enter__(self) -> LagSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


def drain(db: Database, limit: float = 300.0, apply: bool = False) -> tuple[float, int]:
    """Wait for the server's applier to empty the journal (or, with `apply`, empty it here): how long it
    took, and how many entries failed."""
    started = time.monotonic()
    while apply and apply_stream_journal(db):
        pass
    while True:
        with db.read() as conn:
            waiting = conn.execute(select(func.count()).where(stream_journal.c.failure.is_(None))).scalar_one()
            failed = conn.execute(select(func.count()).where(stream_journal.c.failure.is_not(None))).scalar_one()
        if not waiting or time.monotonic() - started > limit:
            return time.monotonic() - started, failed
        time.sleep(0.1)


if __name__ == "__main__":
    main()
