"""Benchmark: importing a generated batch file of orders (3 items each, with extensions).

The batch is processed by the same Processor `opencdp serve` and `opencdp worker` run, in a child
process whose peak memory is reported. The floor, measured in the same run on a fresh database: the
same orders, items and contacts bulk-inserted by the database's fastest plain path (executemany on
SQLite, COPY on PostgreSQL), without validation, matching or identity.

    .venv/bin/python bench/batch_import.py --count 20000
    .venv/bin/python bench/batch_import.py --count 20000 --database-url postgresql://postgres@127.0.0.1:5432/bench_a \\
        --floor-url postgresql://postgres@127.0.0.1:5432/bench_b
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import orjson

from opencdp.demo import write_orders

CHILD = """
import json, resource, sys, time
from pathlib import Path
from opencdp.config import Settings
from opencdp.jobs import processor_for
from opencdp.core.batch import batches
from opencdp.core.tenants import create_tenant
from opencdp.core.values import utcnow
from opencdp.store import migrate
from opencdp.store.database import Database
url, data_dir, path, md5, size = sys.argv[1:6]
settings = Settings(database_url=url, data_dir=Path(data_dir))
db = Database(url)
migrate.upgrade(db)
ref = "6f0c2d1e-0000-4000-8000-000000000001"
with db.write() as conn:
    tenant = create_tenant(conn, "bench").tenant
    batches.allocate(conn, tenant, ref, md5, int(size), utcnow(), utcnow())
processor = processor_for(settings, db)
target = processor.files.path("uploads", tenant.id, ref)
target.parent.mkdir(parents=True, exist_ok=True)
Path(path).replace(target)
with db.write() as conn:
    batches.receive(conn, tenant, ref, int(size), md5, utcnow())
start = time.perf_counter()
processor.run_available()
elapsed = time.perf_counter() - start
with db.read() as conn:
    from opencdp.store import batches as store
    batch = store.get(conn, tenant.id, ref)
print(json.dumps({"seconds": elapsed, "records": batch["totalRecords"], "failed": batch["failedRecords"],
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def floor(url: str, file: Path) -> tuple[float, int]:
    """The same rows bulk-inserted with no rule applied: what the database alone can take."""
    from opencdp.store import migrate
    from opencdp.store.database import Database

    db = Database(url)
    migrate.upgrade(db)
    now = datetime.now(UTC)
    order_rows, item_rows, people_rows = [], [], []
    with gzip.open(file, "rb") as lines:
        for line in lines:
            value = orjson.loads(line)["value"]
            ref = str(uuid.uuid4())
            order_rows.append((ref, 1, value["referenceId"], value["orderedAt"], "EUR", str(value["price"]), now, now))
            for item in value["orderItems"]:
                item_rows.append(
                    (str(uuid.uuid4()), 1, ref, item["type"], item["name"], str(item["price"]), "EUR", now, now)
                )
            emails = orjson.dumps([value["contact"]["email"]]).decode()
            people_rows.append((str(uuid.uuid4()), 1, ref, "contact", emails, now, now))
    raw = db.engine.raw_connection()
    start = time.perf_counter()
    cursor = raw.cursor()
    if db.is_sqlite:
        cursor.execute("BEGIN")  # the driver runs in autocommit mode here: one transaction, as COPY has
    cursor.execute(
        "INSERT INTO tenants (id, name, client_key, identity_rules, points_of_sale, session_timeout_minutes, "
        "default_currency, created_at) VALUES (1, 'floor', 'ck_floor', '[]', '[]', 20, 'EUR', '2025-01-01')"
    )
    statements = [
        (
            "orders (ref, tenant_id, reference_id, ordered_at, currency_code, price, created_at, modified_at)",
            order_rows,
        ),
        (
            "order_items (ref, tenant_id, order_ref, type, name, price, currency_code, created_at, modified_at)",
            item_rows,
        ),
        ("order_people (ref, tenant_id, order_ref, role, emails, created_at, modified_at)", people_rows),
    ]
    for target, rows in statements:
        if db.is_sqlite:
            marks = ", ".join("?" * len(rows[0]))
            cursor.executemany(f"INSERT INTO {target} VALUES ({marks})", rows)
        else:
            with cursor.copy(f"COPY {target} FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
    raw.commit()
    elapsed = time.perf_counter() - start
    raw.close()
    return elapsed, len(order_rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--database-url", default="", help="an empty database; default: a fresh SQLite file")
    parser.add_argument("--floor-url", default="", help="another empty database for the floor")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work)
        file = folder / "orders.gz"
        write_orders(file, args.count, items=3)
        data = file.read_bytes()
        md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
        floor_seconds, floor_rows = floor(args.floor_url or f"sqlite:///{folder / 'floor.db'}", file)
        url = args.database_url or f"sqlite:///{folder / 'opencdp.db'}"
        copy = folder / "upload.gz"
        copy.write_bytes(data)
        child = subprocess.run([sys.executable, "-c", CHILD, url, str(folder / "data"), str(copy), md5, str(len(data))],
                               capture_output=True, text=True, check=True)  # fmt: skip
        result = json.loads(child.stdout.strip().splitlines()[-1])
    store = url.split(":", 1)[0]
    print(f"{args.count:,} orders, 3 items each, with extensions; {len(data) / 1e6:.1f} MB gzipped; {store}")
    print(f"floor: bulk insert, no rules   {floor_rows / floor_seconds:>10,.0f} records/s")
    print(f"batch import (Processor)       {result['records'] / result['seconds']:>10,.0f} records/s   "
          f"peak memory {result['peak_mb']:.0f} MB   failed {result['failed']}")  # fmt: skip


if __name__ == "__main__":
    main()
