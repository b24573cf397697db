"""Benchmark: what one statement and one transaction cost the server's own process on each store.

A REST write is a handful of statements in a transaction. On SQLite each is a call into a library in the
same process; on PostgreSQL each is a message to another process on the same cores, built, sent, waited
for and decoded by psycopg. This prints, per store, the CPU time (`time.process_time`, this process
only) and the wall time of: a primary-key lookup through SQLAlchemy Core, the same lookup through the
driver alone (the floor of any SQL layer), and a write transaction that makes one such lookup (what each
request pays around its statements). The database's own CPU is not counted here: on PostgreSQL it comes on
top, on the same two cores (`bench/rest_api.py` prints it per request).

    .venv/bin/python bench/statement_cost.py [--postgres-url postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections.abc import Callable

import psycopg
from sqlalchemy import bindparam, select
from sqlalchemy.engine import make_url

from opencdp.store import migrate
from opencdp.store.database import Database
from opencdp.store.tables import orders

LOOKUP = select(orders).where(orders.c.tenant_id == bindparam("tenant"), orders.c.ref == bindparam("ref"))
TIMES = 3000


def measure(run: Callable[[], object], times: int = TIMES) -> tuple[float, float]:
    """Microseconds of CPU and of wall time per call, after a warm-up (statements prepared, caches full)."""
    for _ in range(200):
        run()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(times):
        run()
    return 1e6 * (time.process_time() - cpu) / times, 1e6 * (time.perf_counter() - wall) / times


def costs(db: Database) -> dict[str, tuple[float, float]]:
    found: dict[str, tuple[float, float]] = {}
    with db.read() as conn:
        found["a lookup through SQLAlchemy Core"] = measure(
            lambda: conn.execute(LOOKUP, {"tenant": 1, "ref": "x"}).mappings().first()
        )
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        marker = "?" if db.is_sqlite else "%s"
        sql = f"SELECT * FROM orders WHERE tenant_id = {marker} AND ref = {marker}"
        found["the same lookup through the driver"] = measure(lambda: (cursor.execute(sql, (1, "x")), cursor.fetchone()))

    def unit() -> None:
        with db.write() as conn:
            conn.execute(LOOKUP, {"tenant": 1, "ref": "x"}).first()

    found["a write transaction with that lookup"] = measure(unit, 1000)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as data:
        db = Database(f"sqlite:///{data}/opencdp.db")
        migrate.upgrade(db)
        results["sqlite"] = costs(db)
        db.dispose()
    name = f"opencdp_cost_{uuid.uuid4().hex[:8]}"
    admin = make_url(args.postgres_url)
    with psycopg.connect(args.postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        db = Database(admin.set(database=name).render_as_string(hide_password=False))
        migrate.upgrade(db)
        results["postgresql"] = costs(db)
        db.dispose()
    finally:
        with psycopg.connect(args.postgres_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}"')
    print(f"{'microseconds per call (this process)':<42}{'SQLite cpu':>12}{'wall':>8}{'PostgreSQL cpu':>16}{'wall':>8}{'cpu ratio':>11}")
    for what, (cpu, wall) in results["sqlite"].items():
        pg_cpu, pg_wall = results["postgresql"][what]
        print(f"{what:<42}{cpu:>12.0f}{wall:>8.0f}{pg_cpu:>16.0f}{pg_wall:>8.0f}{pg_cpu / cpu:>10.1f}x")


if __name__ == "__main__":
    main()
