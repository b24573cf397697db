"""Benchmark: concurrent OMS clients creating orders through the REST API, then reading them back.

Each order is created, given 3 items, a contact and an order extension, then read back with
`expand=true` (7 requests). The load comes from `wrk` (Debian package `wrk`), which costs far less CPU
than a Python client would on the same 2 cores. The floor is the same server process answering a
constant JSON body (`GET /healthz`) to the same number of connections in the same run. Afterwards the
database is counted, so a write answered 201 but lost would show.

    .venv/bin/python bench/rest_api.py --clients 16 --seconds 20       # SQLite, then PostgreSQL
    .venv/bin/python bench/rest_api.py --stores postgresql --clients 64
"""

from __future__ import annotations

import argparse
import base64
import json
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import psycopg
from cpu_meter import CpuMeter
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from opencdp.store.database import Database
from opencdp.store.tables import extensions, order_items, order_people, orders
from opencdp.testing import running_server

HERE = Path(__file__).parent
KEY, TOKEN = "ck_bench", "tok_bench"


def wrk(base: str, clients: int, seconds: int, script: str, path: str = "/", *args: str) -> dict[str, float]:
    command = ["wrk", f"-t{min(2, clients)}", f"-c{clients}", f"-d{seconds}s", "-s", str(HERE / script), base + path]
    if args:
        command += ["--", *args]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(line for line in output.splitlines() if line.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def count_rows(database_url: str) -> dict[str, int]:
    db = Database(database_url)
    with db.read() as conn:
        return {
            table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
            for table in (orders, order_items, order_people, extensions)
        }


def fresh_postgres(admin_url: str) -> str:
    """An empty database on the PostgreSQL server at `admin_url`, for one run (dropped by `drop_postgres`)."""
    name = f"opencdp_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_postgres(admin_url: str, url: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')


def run(args: argparse.Namespace, database_url: str, data: Path) -> float:
    """One store: its floor, then the flow; prints both and returns the writes per second."""
    env = {
        "OPENCDP_DATABASE_URL": database_url,
        "OPENCDP_CLIENT_KEY": KEY,
        "OPENCDP_API_TOKEN": TOKEN,
        "OPENCDP_SQLITE_SYNCHRONOUS": args.sqlite_synchronous,
        "OPENCDP_LOG_LEVEL": "warning",
    }
    store = database_url.split(":", 1)[0]
    if store == "sqlite":
        store += f" (synchronous={args.sqlite_synchronous})"
    print(f"\n{args.clients} clients, {args.seconds} s, {args.workers} server workers, {store}")
    auth = "Basic " + base64.b64encode(f"{KEY}:{TOKEN}".encode()).decode()
    with running_server(env, data, args=("--workers", str(args.workers))) as base:
        floor = wrk(base, args.clients, max(5, args.seconds // 4), "constant.lua", "/healthz")
        meter = CpuMeter(base.pid)
        flow = wrk(base, args.clients, args.seconds, "rest_flow.lua", "/", auth)
        cpu = meter.spent()
    counted = count_rows(database_url)

    def line(name: str, result: dict[str, float]) -> str:
        rate = result["requests"] / result["seconds"]
        return f"{name:<34} {rate:>8,.0f} req/s   p50 {result['p50_ms']:6.1f} ms   p99 {result['p99_ms']:6.1f} ms"

    print(line("floor: constant JSON body", floor))
    print(line("orders: 6 writes + 1 read each", flow))
    writes = (flow["creates"] + flow["items"] + flow["contacts"] + flow["extensions"]) / flow["seconds"]
    share = writes / (floor["requests"] / floor["seconds"])
    print(f"{'  order creates':<34} {flow['creates'] / flow['seconds']:>8,.0f} orders/s")
    print(f"{'  all writes':<34} {writes:>8,.0f} req/s   ({share:.2f} of the floor)")
    print(f"{'  reads back (expand=true)':<34} {flow['reads'] / flow['seconds']:>8,.0f} req/s")
    requests = flow["requests"]
    per_request = ", ".join(f"{side} {1000 * seconds / requests:.2f} ms" for side, seconds in cpu.items())
    print(f"CPU per request: {per_request}")
    print(f"failed requests: {int(flow['failures'] + flow['errors'])}")
    expected = {
        "orders": flow["creates"],
        "order_items": flow["items"],
        "order_people": flow["contacts"],
        "extensions": flow["extensions"],
    }
    lost = {name: expected[name] - counted[name] for name in expected if counted[name] < expected[name]}
    print(f"rows in the database: {counted}; acknowledged writes missing: {lost or 'none'}")
    return writes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--stores", default="sqlite,postgresql", help="which stores, in this order")
    parser.add_argument(
        "--postgres-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="a PostgreSQL server to create (and drop) an empty database on",
    )
    parser.add_argument("--sqlite-synchronous", default="FULL", choices=["NORMAL", "FULL"])
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench/rest_api.py needs wrk: apt-get install wrk")
    rates: dict[str, float] = {}
    for store in args.stores.split(","):
        with tempfile.TemporaryDirectory() as data:
            if store == "sqlite":
                rates[store] = run(args, f"sqlite:///{Path(data) / 'opencdp.db'}", Path(data))
                continue
            url = fresh_postgres(args.postgres_url)
            try:
                rates[store] = run(args, url, Path(data))
            finally:
                drop_postgres(args.postgres_url, url)
    if "sqlite" in rates and "postgresql" in rates:
        print(f"\nPostgreSQL's writes/s are {rates['postgresql'] / rates['sqlite']:.2f} times SQLite's in this run")


if __name__ == "__main__":
    main()
