"""Benchmark: which way of storing refs makes bulk inserts fastest, on each database.

The batch import's floor is bounded by how fast the database takes an order's rows: the order, 3 items,
its contact and its extension, each row keyed by a time-ordered ref (UUID v7) and reached through the
same secondary indexes as OpenCDP's schema. This inserts the same rows, built in Python inside the timing,
into layouts that differ only in how refs are stored, with plain executemany (SQLite) or COPY
(PostgreSQL) in transactions of 10,000 orders, and prints orders/s for each:

- SQLite: refs as 36-character text in rowid tables (OpenCDP's schema today); text in `WITHOUT ROWID`
  tables (each table clustered by its ref); 16-byte blobs in `WITHOUT ROWID` tables.
- PostgreSQL: refs as text (today) and as the native `uuid` type.

    .venv/bin/python bench/ref_layouts.py --orders 100000
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from opencdp.core.values import new_ref

TABLES = {
    "orders": ["ref", "tenant_id", "reference_id", "ordered_at", "currency_code", "price", "status", "created_at"],
    "order_items": ["ref", "tenant_id", "order_ref", "type", "name", "price", "reference_id", "created_at"],
    "order_people": ["ref", "tenant_id", "order_ref", "role", "guest_ref", "emails", "created_at"],
    "extensions": ["ref", "tenant_id", "owner_type", "owner_ref", "name", "data", "created_at"],
}
REFS = {"ref", "order_ref", "guest_ref", "owner_ref"}
INDEXES = [
    ("orders", "tenant_id, reference_id"),
    ("order_items", "order_ref, created_at"),
    ("order_people", "tenant_id, order_ref, role"),
    ("order_people", "tenant_id, guest_ref"),
    ("extensions", "owner_ref, name"),
]
CHUNK = 10_000


def rows(count: int, ref: Callable[[], Any]) -> Iterator[dict[str, list[tuple[Any, ...]]]]:
    """The rows of `count` orders, CHUNK orders at a time, refs made by `ref`."""
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for first in range(0, count, CHUNK):
        chunk: dict[str, list[tuple[Any, ...]]] = {name: [] for name in TABLES}
        for n in range(first, min(count, first + CHUNK)):
            at = (start + timedelta(seconds=n)).isoformat()
            order = ref()
            chunk["orders"].append((order, 1, f"R-{n}", at, "EUR", "59.90", "PURCHASED", at))
            for i in range(3):
                chunk["order_items"].append((ref(), 1, order, "BOOK", "SICP", "19.90", f"R-{n}-{i}", at))
            chunk["order_people"].append((ref(), 1, order, "contact", ref(), f'["g{n}@example.com"]', at))
            chunk["extensions"].append((ref(), 1, "order", order, "ext", '{"giftWrap": false}', at))
        yield chunk


def text_ref() -> str:
    return new_ref()


def blob_ref() -> bytes:
    return uuid.UUID(new_ref()).bytes


def sqlite_layout(count: int, *, without_rowid: bool, ref: Callable[[], Any]) -> float:
    with tempfile.TemporaryDirectory() as data:
        conn = sqlite3.connect(os.path.join(data, "layout.db"), isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA cache_size=-32768")
        suffix = " WITHOUT ROWID" if without_rowid else ""
        for table, columns in TABLES.items():
            defined = ", ".join(f"{c} {'BLOB' if c in REFS and ref is blob_ref else 'TEXT'}" for c in columns[1:])
            conn.execute(f"CREATE TABLE {table} (ref {'BLOB' if ref is blob_ref else 'TEXT'} PRIMARY KEY, {defined}){suffix}")
        for n, (table, columns) in enumerate(INDEXES):
            conn.execute(f"CREATE {'UNIQUE ' if table == 'extensions' else ''}INDEX ix{n} ON {table} ({columns})")
        started = time.perf_counter()
        for chunk in rows(count, ref):
            conn.execute("BEGIN")
            for table, values in chunk.items():
                marks = ", ".join("?" * len(TABLES[table]))
                conn.executemany(f"INSERT INTO {table} VALUES ({marks})", values)
            conn.execute("COMMIT")
        elapsed = time.perf_counter() - started
        conn.close()
    return count / elapsed


def postgres_layout(url: str, count: int, *, native: bool) -> float:
    with psycopg.connect(url, autocommit=True) as conn:
        kind = "uuid" if native else "text"
        for table, columns in TABLES.items():
            conn.execute(f"DROP TABLE IF EXISTS {table}")
            defined = ", ".join(f"{c} {kind if c in REFS else 'text'}" for c in columns[1:])
            conn.execute(f"CREATE TABLE {table} (ref {kind} PRIMARY KEY, {defined})")
        for n, (table, columns) in enumerate(INDEXES):
            conn.execute(f"CREATE {'UNIQUE ' if table == 'extensions' else ''}INDEX ix{n} ON {table} ({columns})")
        conn.autocommit = False
        started = time.perf_counter()
        for chunk in rows(count, text_ref):  # COPY parses the text form into either column type
            with conn.transaction():
                for table, values in chunk.items():
                    with conn.cursor().copy(f"COPY {table} ({', '.join(TABLES[table])}) FROM STDIN") as copy:
                        for row in values:
                            copy.write_row(row)
        elapsed = time.perf_counter() - started
        conn.autocommit = True
        for table in TABLES:
            conn.execute(f"DROP TABLE {table}")
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    n = args.orders
    print(f"{n:,} orders (3 items, a contact, an extension each), rows built in the timing")
    base = sqlite_layout(n, without_rowid=False, ref=text_ref)
    print(f"{'SQLite, text refs, rowid tables (today)':<48}{base:>9,.0f} orders/s")
    for label, without_rowid, ref in (("text refs, WITHOUT ROWID", True, text_ref), ("16-byte refs, WITHOUT ROWID", True, blob_ref)):
        rate = sqlite_layout(n, without_rowid=without_rowid, ref=ref)
        print(f"{'SQLite, ' + label:<48}{rate:>9,.0f} orders/s   {rate / base:.2f}x today's")
    name = f"opencdp_layout_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.postgres_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = args.postgres_url.rsplit("/", 1)[0] + f"/{name}"
        text = postgres_layout(url, n, native=False)
        print(f"{'PostgreSQL, text refs (today)':<48}{text:>9,.0f} orders/s")
        native = postgres_layout(url, n, native=True)
        print(f"{'PostgreSQL, uuid refs':<48}{native:>9,.0f} orders/s   {native / text:.2f}x today's")
    finally:
        with psycopg.connect(args.postgres_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}"')


if __name__ == "__main__":
    main()
