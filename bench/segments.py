"""Benchmark: segment builds and an audience export over 1,000,000 orders of 200,000 guests.

The data is bulk-loaded (executemany on SQLite, COPY on PostgreSQL). Three realistic segments are built
by the same Builder `opencdp serve` and `opencdp worker` run (members stored by INSERT ... SELECT, delta
and statistics included), each beside its floor measured in the same run: hand-written SQL of the same
question storing its member refs into a scratch table keyed by ref. DuckDB, when installed, answers the same
questions over the same rows for reference. Then the largest segment is exported (NDJSON, guest fields,
identifiers and the last 3 orders with items) and guests/s is printed.

    .venv/bin/python bench/segments.py
    .venv/bin/python bench/segments.py --database-url postgresql://postgres@127.0.0.1:5432/bench_segments
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
from sqlalchemy import text

from opencdp.core.exports.runs import Exporter
from opencdp.core.segments.builds import Builder
from opencdp.core.segments.segments import request_build
from opencdp.core.tenants import create_tenant
from opencdp.store import migrate
from opencdp.store.database import Database
from opencdp.store.files import FileStore
from opencdp.store.rows import insert_row
from opencdp.store.tables import audience_exports, export_executions, segments

NOW = datetime.now(UTC).replace(microsecond=0)
COUNTRIES = ["IE", "GB", "DE", "FR", "ES", "IT", "NL", "US"]
STATUSES = ["PURCHASED"] * 6 + ["CANCELLED", "CONFIRMED", "REFUNDED"]
STORES = ["London", "Dublin", "Paris", "Berlin", "Madrid"]

DEFINITIONS = {
    "repeat buyers (>= 3 PURCHASED in 90 days)": {"match": {"entity": "order",
        "where": {"attr": "order.status", "op": "equals", "value": "PURCHASED"},
        "window": {"lastDays": 90}, "op": "gte", "value": 3}},
    "lapsed London VIPs (> 1000 EUR in London, no order in 180 days)": {"match": {"all": [
        {"entity": "order", "where": {"attr": "order.ext.storeLocation", "op": "equals", "value": "London"},
         "measure": {"fn": "sum", "attr": "order.price", "currency": "EUR"}, "op": "gt", "value": 1000},
        {"not": {"entity": "order", "window": {"lastDays": 180}}}]}},
    "IE/GB customers": {"guestTypes": ["customer"], "match": {"attr": "guest.country", "op": "in",
                                                              "value": ["IE", "GB"]}},
}  # fmt: skip


def hand_written(postgres: bool) -> list[str]:
    """The same three questions as a person would write them (bind :t tenant, :d90, :d180 cut-offs)."""
    ext_join = "LEFT JOIN extensions e ON e.owner_ref = o.ref AND e.name = 'ext'"
    store = "e.data ->> 'storeLocation'" if postgres else "json_extract(e.data, '$.storeLocation')"
    return [
        """INSERT INTO bench_scratch SELECT p.guest_ref FROM order_people p JOIN orders o ON o.ref = p.order_ref
           JOIN guests g ON g.ref = p.guest_ref
           WHERE p.tenant_id = :t AND p.role = 'contact' AND g.merged_into IS NULL
             AND o.status = 'PURCHASED' AND o.ordered_at >= :d90
           GROUP BY p.guest_ref HAVING count(*) >= 3""",
        f"""INSERT INTO bench_scratch SELECT p.guest_ref FROM order_people p JOIN orders o ON o.ref = p.order_ref
           JOIN guests g ON g.ref = p.guest_ref {ext_join}
           WHERE p.tenant_id = :t AND p.role = 'contact' AND g.merged_into IS NULL
           GROUP BY p.guest_ref
           HAVING sum(CASE WHEN {store} = 'London' AND o.currency_code = 'EUR'
                           THEN {"o.price" if postgres else "CAST(o.price AS REAL)"} ELSE 0 END) > 1000
              AND max(o.ordered_at) < :d180""",
        """INSERT INTO bench_scratch SELECT g.ref FROM guests g
           WHERE g.tenant_id = :t AND g.merged_into IS NULL AND g.guest_type = 'customer'
             AND upper(g.country) IN ('IE', 'GB')""",
    ]


def load(db: Database, tenant_id: int, guests: int, orders: int, seed: int) -> None:
    rng = random.Random(seed)
    guest_refs = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(guests)]
    stamp = NOW - timedelta(days=400)
    guest_rows = [
        {"ref": ref, "tenant_id": tenant_id, "guest_type": "customer" if rng.random() < 0.8 else "visitor",
         "first_name": f"Guest{n}", "last_name": "Bench", "country": rng.choice(COUNTRIES),
         "emails": orjson.dumps([f"g{n}@example.com"]).decode(),
         "identifiers": orjson.dumps([{"provider": "CRM_ID", "id": f"C-{n}"}]).decode(),
         "created_at": stamp, "modified_at": stamp}
        for n, ref in enumerate(guest_refs)
    ]  # fmt: skip
    order_rows, people_rows, item_rows, ext_rows = [], [], [], []
    for n in range(orders):
        ref, guest = str(uuid.UUID(int=rng.getrandbits(128))), rng.choice(guest_refs)
        at = NOW - timedelta(days=rng.random() * 365)
        price = f"{rng.choice([19.9, 49.5, 120, 250, 640]):.2f}"
        order_rows.append({"ref": ref, "tenant_id": tenant_id, "reference_id": f"B-{n}", "ordered_at": at,
                           "currency_code": "EUR" if rng.random() < 0.9 else "GBP", "price": price,
                           "status": rng.choice(STATUSES), "channel": "WEB", "created_at": at, "modified_at": at})  # fmt: skip
        people_rows.append({"ref": str(uuid.UUID(int=rng.getrandbits(128))), "tenant_id": tenant_id, "order_ref": ref,
                            "role": "contact", "guest_ref": guest, "created_at": at, "modified_at": at})  # fmt: skip
        item_rows.append({"ref": str(uuid.UUID(int=rng.getrandbits(128))), "tenant_id": tenant_id, "order_ref": ref,
                          "type": "SHOES", "name": "Trail", "price": price, "currency_code": "EUR", "quantity": 1,
                          "product_id": f"P{rng.randrange(500)}", "created_at": at, "modified_at": at})  # fmt: skip
        if rng.random() < 0.3:
            ext_rows.append({"ref": str(uuid.UUID(int=rng.getrandbits(128))), "tenant_id": tenant_id, "owner_type": "order",
                             "owner_ref": ref, "name": "ext",
                             "data": orjson.dumps({"storeLocation": rng.choice(STORES)}).decode(),
                             "created_at": at, "modified_at": at})  # fmt: skip
    key_type = [{"tenant_id": tenant_id, "owner_type": "order", "key": "storeLocation", "value_type": "string"}]
    for table, rows in (("guests", guest_rows), ("orders", order_rows), ("order_people", people_rows),
                        ("order_items", item_rows), ("extensions", ext_rows), ("extension_key_types", key_type)):  # fmt: skip
        bulk_insert(db, table, rows)
    with db.write() as conn:
        conn.exec_driver_sql("ANALYZE")


def bulk_insert(db: Database, table: str, rows: list[dict[str, Any]]) -> None:
    """executemany on SQLite, COPY on PostgreSQL: the fastest plain path of each."""
    if not rows:
        return
    columns = list(rows[0])
    raw = db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        if db.is_sqlite:

            def value(v: Any) -> Any:
                return v.replace(tzinfo=None).isoformat(sep=" ") if isinstance(v, datetime) else v

            marks = ",".join("?" for _ in columns)
            cursor.execute("BEGIN")
            cursor.executemany(f"INSERT INTO {table} ({','.join(columns)}) VALUES ({marks})",
                               [tuple(value(row[c]) for c in columns) for row in rows])  # fmt: skip
        else:
            with cursor.copy(f"COPY {table} ({','.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row([row[c] for c in columns])
        raw.commit()
    finally:
        raw.close()


def duckdb_reference(db: Database, tenant_id: int) -> list[tuple[float, int]] | None:
    """Seconds and size of each hand-written query in DuckDB over the same rows (None without duckdb)."""
    try:
        import duckdb
    except ImportError:
        return None
    con = duckdb.connect()
    with db.read() as conn:
        for table in ("guests", "orders", "order_people", "extensions"):
            result = conn.exec_driver_sql(f"SELECT * FROM {table}")
            names = list(result.keys())
            rows = [
                tuple(
                    orjson.dumps(v).decode() if isinstance(v, dict | list) else str(v) if isinstance(v, datetime) else v
                    for v in r
                )
                for r in result
            ]
            arrays = {name: pa.array([r[i] for r in rows]) for i, name in enumerate(names)}
            con.register(f"src_{table}", pa.table(arrays))
            con.execute(f"CREATE TABLE {table} AS SELECT * FROM src_{table}")
    con.execute("CREATE TABLE bench_scratch (guest_ref VARCHAR)")
    timings: list[float] = []
    sizes: list[int] = []
    for sql in hand_written(postgres=True):
        sql = sql.replace("e.data ->> 'storeLocation'", "json_extract_string(e.data, '$.storeLocation')")
        sql = sql.replace(":t", str(tenant_id)).replace(":d90", f"'{NOW - timedelta(days=90)}'").replace(
            ":d180", f"'{NOW - timedelta(days=180)}'")  # fmt: skip
        sql = sql.replace("o.ordered_at", "CAST(o.ordered_at AS TIMESTAMPTZ)").replace(
            "o.price", "CAST(o.price AS DOUBLE)"
        )
        started = time.perf_counter()
        con.execute(sql)
        timings.append(time.perf_counter() - started)
        sizes.append(con.execute("SELECT count(*) FROM bench_scratch").fetchone()[0])
        con.execute("DELETE FROM bench_scratch")
    return list(zip(timings, sizes, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--guests", type=int, default=200_000)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--database-url", help="An empty database (default: a new SQLite file).")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="opencdp-bench-"))
    db = Database(args.database_url or f"sqlite:///{workdir / 'bench.db'}")
    migrate.upgrade(db)
    with db.write() as conn:
        tenant = create_tenant(conn, f"bench-{uuid.uuid4().hex[:6]}").tenant
        # a set of refs, keyed as a person would key it (the build keys its members the same way)
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS bench_scratch (guest_ref VARCHAR(36) PRIMARY KEY)")
    started = time.perf_counter()
    load(db, tenant.id, args.guests, args.orders, args.seed)
    print(f"loaded {args.guests:,} guests, {args.orders:,} orders in {time.perf_counter() - started:.1f} s "
          f"({'PostgreSQL' if not db.is_sqlite else 'SQLite'})")  # fmt: skip

    floors = []
    for sql in hand_written(postgres=not db.is_sqlite):
        params = {"t": tenant.id, "d90": NOW - timedelta(days=90), "d180": NOW - timedelta(days=180)}
        if db.is_sqlite:
            params = {k: v.replace(tzinfo=None).isoformat(sep=" ") if isinstance(v, datetime) else v
                      for k, v in params.items()}  # fmt: skip
        with db.write() as conn:
            begun = time.perf_counter()
            conn.execute(text(sql), params)
            floors.append(time.perf_counter() - begun)
            conn.exec_driver_sql("DELETE FROM bench_scratch")
    reference = duckdb_reference(db, tenant.id)

    builder = Builder(db)
    largest: tuple[int, str] = (-1, "")
    print(
        f"\n{'segment':66} {'build s':>8} {'floor s':>8} {'ratio':>6} {'size':>8}" + ("  duckdb s" if reference else "")
    )
    for n, (name, definition) in enumerate(DEFINITIONS.items()):
        ref = str(uuid.uuid4())
        with db.write() as conn:
            insert_row(conn, segments, {"ref": ref, "tenantId": tenant.id, "name": name, "status": "draft",
                                        "version": 1, "definition": definition, "createdAt": NOW, "modifiedAt": NOW})  # fmt: skip
            request_build(conn, tenant, ref, "manual", NOW)
        begun = time.perf_counter()
        builder.run_available()
        seconds = time.perf_counter() - begun
        with db.read() as conn:
            size = conn.execute(text("SELECT size FROM segment_builds WHERE segment_ref = :r"), {"r": ref}).scalar_one()
        largest = max(largest, (size, ref))
        duck = f"  {reference[n][0]:8.3f} ({reference[n][1]:,})" if reference else ""
        print(f"{name:66} {seconds:8.2f} {floors[n]:8.2f} {seconds / floors[n]:6.2f} {size:8,}{duck}")

    export_ref, execution_ref = str(uuid.uuid4()), str(uuid.uuid4())
    output = {"guest": ["email", "firstName", "lastName", "country"], "identifiers": ["CRM_ID"], "extensions": [],
              "orders": {"limit": 3, "fields": ["referenceId", "orderedAt", "status", "price", "currencyCode"],
                         "itemFields": ["productId", "quantity", "price"], "extensions": False}}  # fmt: skip
    with db.write() as conn:
        insert_row(conn, audience_exports, {"ref": export_ref, "tenantId": tenant.id, "friendlyId": "bench",
            "name": "bench", "segmentRef": largest[1], "type": "full", "format": "ndjson",
            "csv": {"delimiter": ",", "header": True, "quoteAll": False}, "output": output,
            "schedule": {"type": "instant"}, "maxRecordsPerFile": 500000, "status": "draft",
            "createdAt": NOW, "modifiedAt": NOW})  # fmt: skip
        insert_row(conn, export_executions, {"ref": execution_ref, "tenantId": tenant.id, "definitionRef": export_ref,
            "executionType": "INSTANT_RUN", "definitionType": "FULL_SYNC", "status": "pending", "buildSegment": False,
            "segmentRef": largest[1], "errors": [], "errorLogs": [], "files": [], "createdAt": NOW})  # fmt: skip
    begun = time.perf_counter()
    Exporter(db, FileStore(workdir / "files")).run_available()
    seconds = time.perf_counter() - begun
    with db.read() as conn:
        written = conn.execute(
            text("SELECT successes FROM export_executions WHERE ref = :r"), {"r": execution_ref}
        ).scalar_one()
    print(f"\nexport of the largest segment (NDJSON, last 3 orders with items): {written:,} guests in {seconds:.1f} s "
          f"= {written / seconds:,.0f} guests/s (goal 50,000)")  # fmt: skip
    if db.is_sqlite:
        print(f"(data in {workdir})", file=sys.stderr)


if __name__ == "__main__":
    main()
