"""Benchmark: the Stream journal's applier alone, in this process, beside the same event rows bulk-inserted.

N events of the bench's journey mix (views, adds, a contact, a confirmation, a checkout) for 200 browsers
are accepted into an empty journal in one transaction; then the applier applies them, a batch of 200
per transaction as the server's does, and the figure is events applied per second. The floor: the
event rows it stored, inserted again (new refs) in one transaction by the store's bulk insert.

    .venv/bin/python bench/stream_applier.py --events 5000 [--database-url postgresql://...]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from opencdp.core.bootstrap import ensure_default_tenant
from opencdp.core.stream import browsers, events, journal
from opencdp.core.values import new_ref, utcnow
from opencdp.store.database import Database
from opencdp.store.migrate import upgrade
from opencdp.store.rows import insert_rows, to_record
from opencdp.store.tables import events as event_table

JOURNEY = ["VIEW", "VIEW", "ADD", "VIEW", "ADD", "ADD_CONTACTS", "CONFIRM", "CHECKOUT", "VIEW", "VIEW"]


def body(browser: str, step: int) -> dict[str, Any]:
    """The event bench/stream_mix.lua sends as a browser's `step`th."""
    kind = JOURNEY[(step - 1) % len(JOURNEY)]
    sent: dict[str, Any] = {"type": kind, "browser_id": browser, "channel": "WEB", "pos": "bench.example"}
    if kind == "ADD":
        product = {"item_id": f"SKU_{step % 3}", "type": "MOBILE", "name": "Phone", "price": 30.6, "quantity": 1}
        sent.update(currency="EUR", page="product", product=product)
    elif kind == "ADD_CONTACTS":
        sent["contact"] = [{"email": f"{browser}@bench.example", "firstname": "B", "lastname": "C"}]
    elif kind == "CONFIRM":
        sent["product"] = [{"item_id": "SKU_0"}, {"item_id": "SKU_1"}, {"item_id": "SKU_2"}]
    elif kind == "CHECKOUT":
        sent.update(reference_id=f"{browser}-{step}", status="PURCHASED")
    else:
        sent.update(currency="EUR", language="EN", page="home", ext={"pageVariantId": f"v{step % 4}"})
    return sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--database-url", default="", help="an empty database; default: a fresh SQLite file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data:
        db = Database(args.database_url or f"sqlite:///{Path(data) / 'opencdp.db'}")
        upgrade(db)
        now = utcnow()
        with db.write() as conn:
            tenant, _ = ensure_default_tenant(conn, "ck_bench", "tok_bench")
            refs = [browsers.create(conn, tenant, now)["ref"] for _ in range(200)]
        steps = dict.fromkeys(refs, 0)
        with db.write() as conn:
            for number in range(args.events):
                browser = refs[number % len(refs)]
                steps[browser] += 1
                at = now + timedelta(milliseconds=number)
                journal.append(conn, [events.accept(conn, tenant, body(browser, steps[browser]), None, at)])
        started = time.perf_counter()
        applied = 0
        while True:
            with db.write() as conn:
                taken = journal.apply_tenant(conn, tenant.id)
            if not taken:
                break
            applied += taken
        applying = time.perf_counter() - started
        with db.read() as conn:
            stored = [to_record(row) for row in conn.execute(select(event_table)).mappings()]
        again = [{**row, "ref": new_ref()} for row in stored]
        started = time.perf_counter()
        with db.write() as conn:
            insert_rows(conn, event_table, again)
        floor = len(again) / (time.perf_counter() - started)
        db.dispose()
    rate = applied / applying
    print(f"{args.events} events, {db.url.split(':', 1)[0]}")
    print(f"floor: the stored event rows bulk-inserted  {floor:>9,.0f} rows/s")
    print(f"applier                                      {rate:>9,.0f} events/s   {rate / floor:.2f} of the floor")


if __name__ == "__main__":
    main()
