"""Benchmark: each kind of batch record by itself: new orders, changes to stored orders (a status feed,
a file of inserts that replace them, upserts that add items and a contact), deletes, guest upserts, and a
file sent again. Each kind is a file of its own, applied 1,000 lines per transaction by
`processor.apply_lines`, as the processor does (without the helper process, which only moves the checks
of lines to another core).

    .venv/bin/python bench/batch_alone.py --count 3000
    .venv/bin/python bench/batch_alone.py --count 3000 --database-url postgresql://postgres@127.0.0.1:5432/bench_a
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from typing import Any

import orjson

from opencdp.core.batch.checks import check_lines
from opencdp.core.batch.processor import apply_lines
from opencdp.core.tenants import create_tenant
from opencdp.core.values import utcnow
from opencdp.store import migrate
from opencdp.store.database import Database


def line(schema: str, mode: str, value: dict[str, Any]) -> bytes:
    return orjson.dumps({"ref": str(uuid.uuid4()), "schema": schema, "mode": mode, "value": value})


def order(reference: str, price: float) -> dict[str, Any]:
    return {
        "referenceId": reference, "orderedAt": "2025-03-07T16:15:11.000Z", "currencyCode": "EUR", "price": price,
        "channel": "WEB", "pointOfSale": "shop.example", "status": "PURCHASED", "paymentType": "Cash", "contact": {"email": f"{reference.lower()}@example.com"},
        "orderItems": [{"type": "BOOK", "referenceId": f"{reference}-1", "productId": "B-17", "name": "SICP",
                        "description": "Hardcover", "vendor": "MIT Press", "price": price, "currencyCode": "EUR",
                        "status": "PURCHASED"}],
        "extensions": [{"name": "ext", "giftWrap": False}],
    }  # fmt: skip


def added(reference: str) -> dict[str, Any]:
    """An upsert of a stored order that sends a second item (its first one patched) and a new contact."""
    item = {**order(reference, 5.0)["orderItems"][0], "referenceId": f"{reference}-2"}
    return {
        "referenceId": reference, "orderedAt": "2025-03-07T16:15:11.000Z", "contact": {"email": f"{reference}@new.example"},
        "orderItems": [{"referenceId": f"{reference}-1", "quantity": 2}, item],
    }  # fmt: skip


def guest(index: int, tier: str) -> bytes:
    value = {"email": f"g{index}@example.com", "lastName": f"L{index}-{tier}", "extensions": [{"tier": tier}]}
    return line("guest", "upsert", value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--database-url", default="", help="an empty database; default: a fresh SQLite file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        db = Database(args.database_url or f"sqlite:///{work}/opencdp.db")
        migrate.upgrade(db)
        with db.write() as conn:
            tenant = create_tenant(conn, "bench").tenant
        n = args.count
        files = {
            "new orders (together)": [line("order", "insert", order(f"B-{i}", 10.0)) for i in range(n)],
            "upserts of stored orders": [
                line(
                    "order",
                    "upsert",
                    {"referenceId": f"B-{i}", "orderedAt": "2025-03-07T16:15:11.000Z", "status": "CANCELLED"},
                )
                for i in range(n)
            ],
            "inserts replacing stored orders": [line("order", "insert", order(f"B-{i}", 20.0)) for i in range(n)],
            "upserts adding items and a contact": [line("order", "upsert", added(f"B-{i}")) for i in range(n)],
            "deletes of stored orders": [line("order", "delete", {"referenceId": f"B-{i}"}) for i in range(n)],
            "guest upserts (new guests)": [guest(i, "gold") for i in range(n)],
            "guest upserts (stored guests)": [guest(i, "silver") for i in range(n)],
        }
        files["the new orders' file sent again"] = files["new orders (together)"]  # every record applied before
        print(f"{n:,} records of each kind; {db.engine.dialect.name}")
        for kind, lines in files.items():
            start = time.perf_counter()
            codes: set[str] = set()
            for first in range(0, n, 1000):
                with db.write() as conn:
                    checked = check_lines(list(enumerate(lines[first : first + 1000], first)), 1_048_576)
                    codes |= {outcome.code for _, outcome in apply_lines(conn, tenant, checked, utcnow())}
            print(f"{kind:<34}{n / (time.perf_counter() - start):>8,.0f} records/s   codes {sorted(codes)}")
        db.dispose()


if __name__ == "__main__":
    main()
