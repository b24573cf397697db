"""The lean reference floor of a batch import (#16): the least a Python importer of the same file can do.

It reads the gzipped file, parses each line, builds the same logical rows the import writes (a guest per
new contact email with its key, the order, its items, its and its items' extensions, its contact and
consumers, the registry of applied records) with time-ordered (UUID v7) keys, and writes them into a lean
schema that has only the indexes those rows' lookups need: executemany on SQLite, COPY on PostgreSQL,
10,000 records per transaction. No rule is checked (no validation, matching or identity rules beyond one
guest per email). Building the rows in Python is timed with the writes.

    .venv/bin/python bench/lean_floor.py FILE.gz [--database-url URL]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg

from opencdp.core.values import new_ref

CHUNK = 10_000
SCHEMA = {
    "guests": "ref {uuid} PRIMARY KEY, email TEXT, first_name TEXT, last_name TEXT",
    "guest_keys": "type TEXT, value TEXT, guest_ref {uuid}, PRIMARY KEY (type, value)",
    "orders": "ref {uuid} PRIMARY KEY, reference_id TEXT, ordered_at TEXT, channel TEXT, point_of_sale TEXT,"
    " status TEXT, currency_code TEXT, price NUMERIC, payment_type TEXT, card_type TEXT",
    "order_items": "ref {uuid} PRIMARY KEY, order_ref {uuid}, reference_id TEXT, type TEXT, product_id TEXT,"
    " name TEXT, description TEXT, vendor TEXT, price NUMERIC, currency_code TEXT, status TEXT, quantity INTEGER",
    "extensions": "ref {uuid} PRIMARY KEY, owner_ref {uuid}, name TEXT, attributes TEXT, UNIQUE (owner_ref, name)",
    "order_people": "ref {uuid} PRIMARY KEY, order_ref {uuid}, role TEXT, guest_ref {uuid}, email TEXT,"
    " first_name TEXT, last_name TEXT",
    "consumer_items": "consumer_ref {uuid}, item_ref {uuid}, PRIMARY KEY (consumer_ref, item_ref)",
    "registry": "record_ref {uuid} PRIMARY KEY, digest BYTEA",
}
INDEXES = (
    "CREATE INDEX orders_by_reference ON orders (reference_id)",
    "CREATE INDEX items_by_order ON order_items (order_ref)",
    "CREATE INDEX people_by_order ON order_people (order_ref)",
    "CREATE INDEX people_by_guest ON order_people (guest_ref)",
)
ITEM_FIELDS = ("referenceId", "type", "productId", "name", "description", "vendor", "price", "currencyCode",
               "status", "quantity")  # fmt: skip
ORDER_FIELDS = ("referenceId", "orderedAt", "channel", "pointOfSale", "status", "currencyCode", "price",
                "paymentType", "cardType")  # fmt: skip


def rows(path: Path) -> Iterator[dict[str, list[tuple[Any, ...]]]]:
    """The file's rows, table by table, a chunk of records at a time."""
    guests: dict[str, str] = {}
    chunk: dict[str, list[tuple[Any, ...]]] = {table: [] for table in SCHEMA}
    count = 0
    with gzip.open(path, "rb") as lines:
        for line in lines:
            record = orjson.loads(line)
            value = record["value"]
            chunk["registry"].append((record["ref"], hashlib.md5(line, usedforsecurity=False).digest()))
            order = new_ref()
            chunk["orders"].append((order, *(value.get(name) for name in ORDER_FIELDS)))
            items = []
            for item in value.get("orderItems", ()):
                items.append(ref := new_ref())
                chunk["order_items"].append((ref, order, *(item.get(name) for name in ITEM_FIELDS)))
                _extensions(chunk, ref, item)
            _extensions(chunk, order, value)
            for role, person in [("contact", value.get("contact"))] + [("consumer", c) for c in value.get("consumers", ())]:  # fmt: skip
                if not person:
                    continue
                email = person.get("email")
                if (guest := guests.get(email)) is None:
                    guests[email] = guest = new_ref()
                    chunk["guests"].append((guest, email, person.get("firstName"), person.get("lastName")))
                    chunk["guest_keys"].append(("email", email, guest))
                chunk["order_people"].append((ref := new_ref(), order, role, guest, email, person.get("firstName"),
                                              person.get("lastName")))  # fmt: skip
                if role == "consumer":
                    chunk["consumer_items"].extend((ref, item) for item in items)
            count += 1
            if count % CHUNK == 0:
                yield chunk
                chunk = {table: [] for table in SCHEMA}
    yield chunk


def _extensions(chunk: dict[str, list[tuple[Any, ...]]], owner: str, value: dict[str, Any]) -> None:
    for extension in value.get("extensions", ()):
        attributes = {k: v for k, v in extension.items() if k not in ("name", "key")}
        chunk["extensions"].append((new_ref(), owner, extension["name"], orjson.dumps(attributes).decode()))


def lean_floor(path: Path, url: str) -> float:
    """Seconds to read, build and write every row of `path` into a fresh lean schema at `url` (a SQLite
    file, or a PostgreSQL database whose `lean` schema is replaced)."""
    if url.startswith("sqlite"):
        conn: Any = sqlite3.connect(url.split("///", 1)[1], isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA cache_size=-65536")
        for table, columns in SCHEMA.items():
            conn.execute(f"CREATE TABLE {table} ({columns.format(uuid='TEXT').replace('BYTEA', 'BLOB')})")
    else:
        conn = psycopg.connect(url, autocommit=True)
        conn.execute("DROP SCHEMA IF EXISTS lean CASCADE")
        conn.execute("CREATE SCHEMA lean")
        conn.execute("SET search_path = lean")
        for table, columns in SCHEMA.items():
            conn.execute(f"CREATE TABLE {table} ({columns.format(uuid='uuid')})")
    for index in INDEXES:
        conn.execute(index)
    start = time.perf_counter()
    for chunk in rows(path):
        if isinstance(conn, sqlite3.Connection):
            conn.execute("BEGIN")
            for table, values in chunk.items():
                if values:
                    conn.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(values[0]))})", values)
            conn.execute("COMMIT")
        else:
            with conn.transaction(), conn.cursor() as cursor:
                for table, values in chunk.items():
                    with cursor.copy(f"COPY {table} FROM STDIN") as copy:
                        for row in values:
                            copy.write_row(row)
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", type=Path)
    parser.add_argument("--database-url", default="sqlite:///lean.db")
    args = parser.parse_args()
    with gzip.open(args.file, "rb") as lines:
        records = sum(1 for _ in lines)
    seconds = lean_floor(args.file, args.database_url)
    print(f"lean reference floor {records / seconds:>10,.0f} records/s")


if __name__ == "__main__":
    main()
