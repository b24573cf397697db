"""Benchmark: importing a generated batch file of orders (3 items each, with extensions).

The batch is processed by the same Processor `opencdp serve` and `opencdp worker` run, in a child
process whose peak memory is reported, beside that of the helper process checking its lines. The floor,
measured in the same run on a fresh database: every row the import wrote (guests and their keys,
orders, items, extensions, contacts, consumers, key types, the registry), read back and bulk-inserted
by the database's fastest plain path (executemany on SQLite, COPY on PostgreSQL) in one transaction, without validation, matching or identity.
Beside it the lean reference floor (`bench/lean_floor.py`): the same file read, its rows built in Python with
time-ordered keys and written into a lean schema (on PostgreSQL, the floor database's `lean` schema).

    .venv/bin/python bench/batch_import.py --count 20000
    .venv/bin/python bench/batch_import.py --count 20000 --write-every 0.2     # an API-like write beside it
    .venv/bin/python bench/batch_import.py --count 20000 --database-url postgresql://postgres@127.0.0.1:5432/bench_a \\
        --floor-url postgresql://postgres@127.0.0.1:5432/bench_b
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
from lean_floor import lean_floor

from opencdp.demo import write_orders

CHILD = """
import json, resource, sys, threading, time
from pathlib import Path
from sqlalchemy import text
from opencdp.config import Settings
from opencdp.jobs import processor_for
from opencdp.core.batch import batches, checks
from opencdp.core.tenants import create_tenant
from opencdp.core.values import utcnow
from opencdp.store import migrate
from opencdp.store.database import Database
url, data_dir, path, md5, size, every = sys.argv[1:7]
helper_peaks = [0.0]
stop = checks.ChunkChecker._stop
def measured_stop(self):  # the helper's own peak, read before it ends (fork-time pages would count otherwise)
    if self.process is not None:
        status = Path(f"/proc/{self.process.pid}/status").read_text().splitlines()
        peak = next(line.split()[1] for line in status if line.startswith("VmHWM"))
        helper_peaks.append(int(peak) / 1024)
    stop(self)
checks.ChunkChecker._stop = measured_stop
settings = Settings(database_url=url, data_dir=Path(data_dir))
db = Database(url)
migrate.upgrade(db)
ref = "6f0c2d1e-0000-4000-8000-000000000001"
with db.write() as conn:
    tenant = create_tenant(conn, "bench").tenant
    batches.allocate(conn, tenant, ref, md5, int(size), utcnow(), utcnow())
processor = processor_for(settings, db)
with batches.receiving(processor.files, tenant.id, ref) as received, open(path, "rb") as source:
    while chunk := source.read(1 << 20):
        received.write(chunk)
with db.write() as conn:
    batches.take_upload(conn, processor.files, tenant, ref, int(size), md5, utcnow())
waits, done = [], threading.Event()
def write_now_and_then():  # an API-like write beside the import: how long it waits for the writer
    while not done.wait(float(every)):
        began = time.perf_counter()
        with db.write() as conn:
            conn.execute(text("UPDATE tenants SET name = name WHERE id = :id"), {"id": tenant.id})
        waits.append(time.perf_counter() - began)
writer = threading.Thread(target=write_now_and_then)
if float(every) > 0:
    writer.start()
start = time.perf_counter()
processor.run_available()
elapsed = time.perf_counter() - start
done.set()
if float(every) > 0:
    writer.join()
waits.sort()
with db.read() as conn:
    from opencdp.store import batches as store
    batch = store.get(conn, tenant.id, ref)
print(json.dumps({"seconds": elapsed, "records": batch["totalRecords"], "failed": batch["failedRecords"],
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "helper_mb": max(helper_peaks), "waits": waits}))
"""


# Every table the import writes, parents before children.
TABLES = ("guests", "guest_keys", "orders", "order_items", "extensions", "order_people", "consumer_items",
          "extension_key_types", "batch_registry")  # fmt: skip


def floor(source_url: str, url: str) -> float:
    """The rows the import wrote, read back and bulk-inserted into an empty database with no rule
    applied: what the database alone takes for the same work. Only the inserts are timed."""
    from opencdp.store import migrate
    from opencdp.store.database import Database

    source, target = Database(source_url), Database(url)
    migrate.upgrade(target)
    reader, writer = source.engine.raw_connection(), target.engine.raw_connection()
    cursor = writer.cursor()
    if target.is_sqlite:
        cursor.execute("BEGIN")  # the driver runs in autocommit mode here: one transaction, as COPY has
    elapsed = 0.0
    read = reader.cursor()
    read.execute("SELECT * FROM tenants")
    columns = [d[0] for d in read.description]
    tenants = [tuple(_plain(v) for v in row) for row in read.fetchall()]
    for table, rows in [("tenants", tenants)] + [(t, None) for t in TABLES]:
        if rows is None:
            read.execute(f"SELECT * FROM {table}")
            columns = [d[0] for d in read.description]
            rows = [tuple(_plain(v) for v in row) for row in read.fetchall()]
        if not rows:
            continue
        start = time.perf_counter()
        if target.is_sqlite:
            marks = ", ".join("?" * len(columns))
            cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)
        else:
            with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        elapsed += time.perf_counter() - start
    start = time.perf_counter()
    writer.commit()
    elapsed += time.perf_counter() - start
    reader.close()
    writer.close()
    return elapsed


def _plain(value: object) -> object:
    """A value as COPY takes it: JSON documents as text."""
    return orjson.dumps(value).decode() if isinstance(value, dict | list) else value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--database-url", default="", help="an empty database; default: a fresh SQLite file")
    parser.add_argument("--floor-url", default="", help="another empty database for the floor")
    parser.add_argument("--write-every", type=float, default=0.0,
                        help="seconds between single-row writes made beside the import, to see how long they wait")  # fmt: skip
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work)
        file = folder / "orders.gz"
        write_orders(file, args.count, items=3)
        data = file.read_bytes()
        md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
        url = args.database_url or f"sqlite:///{folder / 'opencdp.db'}"
        copy = folder / "upload.gz"
        copy.write_bytes(data)
        arguments = [url, str(folder / "data"), str(copy), md5, str(len(data)), str(args.write_every)]
        child = subprocess.run([sys.executable, "-c", CHILD, *arguments], capture_output=True, text=True)
        if child.returncode:
            sys.exit(child.stderr)
        result = json.loads(child.stdout.strip().splitlines()[-1])
        floor_seconds = floor(url, args.floor_url or f"sqlite:///{folder / 'floor.db'}")
        lean_seconds = lean_floor(file, args.floor_url or f"sqlite:///{folder / 'lean.db'}")
    store = url.split(":", 1)[0]
    print(f"{args.count:,} orders, 3 items each, with extensions; {len(data) / 1e6:.1f} MB gzipped; {store}")
    print(f"floor: the same rows bulk-inserted {result['records'] / floor_seconds:>10,.0f} records/s")
    print(f"lean reference floor (rows built)  {result['records'] / lean_seconds:>10,.0f} records/s")
    print(f"batch import (Processor)           {result['records'] / result['seconds']:>10,.0f} records/s   "
          f"peak memory {result['peak_mb']:.0f} MB (+ {result['helper_mb']:.0f} MB checking lines)   "
          f"failed {result['failed']}")  # fmt: skip
    if waits := result["waits"]:
        print(f"writes beside it ({len(waits)})       waited {waits[len(waits) // 2] * 1000:,.0f} ms at the median, "
              f"{waits[-1] * 1000:,.0f} ms at most")  # fmt: skip


if __name__ == "__main__":
    main()
