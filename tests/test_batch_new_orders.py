"""The set-based path of batch imports (core/batch/new_orders.py) against the record-by-record path.

The same lines are applied to two tenants of one database, one with the set-based path and one with
every record alone; the two tenants must then hold the same orders, items, extensions, contacts,
consumers, guests, identity keys, key types and outcomes. The lines are built to make records of a chunk
meet: repeat customers, addresses differing in case, expired identifiers, consumers named as their
contact, extension keys given another type, referenceIds repeated within and across chunks, upserts of
stored orders, lines sent twice, guest records in between, bad lines.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from batch_helpers import order, record
from opencdp.core.batch import new_orders, processor
from opencdp.core.batch.checks import check_lines
from opencdp.core.batch.lines import Outcome
from opencdp.core.tenants import Tenant, create_tenant, set_identity_rules
from opencdp.store.database import Database
from opencdp.store.tables import (
    consumer_items,
    extension_key_types,
    extensions,
    guest_keys,
    guests,
    order_items,
    order_people,
    orders,
)

PEOPLE = [
    {"email": "ann@example.com", "firstName": "Ann", "lastName": "Lee"},
    {"email": "ANN@example.com"},
    {"email": "bob@example.com", "lastName": "Ng", "city": "Dublin"},
    {"email": "bob@example.com", "firstName": "Bob", "title": "Mr"},
    {"email": "cy@example.com", "identifiers": [{"provider": "CRM", "id": "C-1"}]},
    {"identifiers": [{"provider": "CRM", "id": "C-1"}], "firstName": "Cy"},
    {
        "identifiers": [{"provider": "CRM", "id": "C-2", "expiryDate": "2020-01-01T00:00:00Z"}],
        "email": "di@example.com",
    },
    {"identifiers": [{"provider": "CRM", "id": "C-2"}], "email": "dee@example.com"},
    {"identifiers": [{"provider": "LOYALTY", "id": "L-9"}], "email": "eve@example.com", "firstName": "Eve"},
    {"email": "fay@example.com", "emails": None, "firstName": "Fay", "lastName": "Okafor"},
]


def lines(seed: int, count: int = 260) -> Iterator[bytes]:
    rng = random.Random(seed)
    start = datetime(2025, 3, 1, tzinfo=UTC)
    plain: list[bytes] = []

    def seeded(schema: str, mode: str, value: dict[str, Any]) -> dict[str, Any]:
        return {
            "ref": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "schema": schema,
            "mode": mode,
            "value": value,
        }

    for index in range(count):
        roll = 1.0 if index == 0 else rng.random()
        reference = f"R-{rng.randrange(120)}"
        at = (start + timedelta(hours=rng.choice([0, 1, 30, 50, 200]) + index % 3)).isoformat().replace("+00:00", "Z")
        contact = {k: v for k, v in (PEOPLE[6] if index == 0 else rng.choice(PEOPLE)).items() if v is not None}
        value: dict[str, Any] = order(reference, orderedAt=at, contact=contact)
        value["orderItems"] = [
            {**value["orderItems"][0], "referenceId": f"{reference}-{n}", "extensions": [{"giftWrap": n % 2 == 0}]}
            for n in range(rng.randrange(1, 4))
        ]
        if roll < 0.08:
            line = orjson.dumps(seeded("order", "upsert", {"referenceId": reference, "orderedAt": at, "price": 1.5}))
        elif roll < 0.14:  # keys whose first type is random: later records of the other type are refused
            where = rng.choice(["order", "item", "within"])
            if where == "order":
                value["extensions"] = [{"name": "ext", "wrapped": rng.choice([True, "yes"])}]
            elif where == "item":
                value["orderItems"][-1]["extensions"] = [{"size": rng.choice([1, "L"])}]
            else:
                value["orderItems"][0]["extensions"] = [{"colour": "red"}]
                value["orderItems"].append(
                    {**value["orderItems"][0], "referenceId": f"{reference}-9", "extensions": [{"colour": 3}]}
                )
            line = orjson.dumps(seeded("order", "insert", value))
        elif roll < 0.24:  # consumers: named as the contact, with or without items, or naming an unknown item
            first = value["orderItems"][0]["referenceId"]
            contact.setdefault("firstName", "Zed")
            contact.setdefault("lastName", "Zed")
            consumers: list[dict[str, Any]] = [
                {"firstName": contact["firstName"].upper(), "lastName": contact["lastName"]},
                {"firstName": "Tom", "lastName": "Varga", "orderItems": [{"referenceId": first}]},
                {"email": rng.choice(PEOPLE).get("email") or "x@example.com", "firstName": "Ann", "lastName": "Lee"},
            ]
            if rng.random() < 0.2:
                consumers[1]["orderItems"] = [{"referenceId": "NOPE"}]
            value["consumers"] = consumers[: rng.randrange(1, 4)]
            line = orjson.dumps(seeded("order", rng.choice(["insert", "upsert"]), value))
        elif roll < 0.28:
            line = rng.choice([b"{broken", orjson.dumps(seeded("order", "insert", {**value, "price": "abc"}))])
        elif roll < 0.32:
            person = {k: v for k, v in rng.choice(PEOPLE).items() if v is not None}
            line = orjson.dumps(seeded("guest", "upsert", {**person, "guestType": "customer"}))
        elif roll < 0.36 and plain:
            line = rng.choice(plain)  # the same line again: already applied, or refused again
        elif roll < 0.38:
            line = orjson.dumps(seeded("order", "delete", {"referenceId": reference}))
        elif roll < 0.40:
            value["extensions"] = [{"name": "ext", "totalUnits": rng.choice([1, "one"])}]
            line = orjson.dumps(seeded("order", "insert", value))
        else:
            line = orjson.dumps(seeded("order", rng.choice(["insert", "insert", "upsert"]), value))
            plain.append(line)
        yield line


def apply(
    database: Database, tenant: Tenant, data: list[bytes], per_commit: int, first: int = 0
) -> list[tuple[int, Outcome]]:
    results = []
    now = datetime(2026, 1, 1, tzinfo=UTC)
    numbered = list(enumerate(data, first))
    for start in range(0, len(data), per_commit):
        with database.write() as conn:
            chunk = numbered[start : start + per_commit]
            checked = check_lines(chunk, 1_048_576)
            results += processor.apply_lines(conn, tenant, checked, now + timedelta(seconds=chunk[0][0]))
    return sorted(results, key=lambda pair: pair[0])


def snapshot(database: Database, tenant: Tenant) -> dict[str, Any]:
    """The tenant's data with every generated ref replaced by a name derived from what the row holds."""
    stamps = ("ref", "tenant_id", "modified_at")
    with database.read() as conn:

        def rows(table: Any) -> list[dict[str, Any]]:
            found = conn.execute(select(table).where(table.c.tenant_id == tenant.id)).mappings()
            return [{str(k): v for k, v in r.items()} for r in found]

        order_rows, item_rows, people_rows = rows(orders), rows(order_items), rows(order_people)
        guest_rows, ext_rows = rows(guests), rows(extensions)
        key_rows = rows(guest_keys)
        types = {(r["owner_type"], r["key"]): r["value_type"] for r in rows(extension_key_types)}
        used = [{str(k): v for k, v in r.items()} for r in conn.execute(select(consumer_items)).mappings()]
    names = {r["ref"]: f"order {r['reference_id']} {r['ordered_at'].isoformat()}" for r in order_rows}
    names |= {r["ref"]: f"{names[r['order_ref']]} item {r['reference_id']}" for r in item_rows}
    people_rows.sort(key=lambda r: (names[r["order_ref"]], r["role"], r["created_at"]))
    names |= {r["ref"]: f"{names[r['order_ref']]} {r['role']} {n}" for n, r in enumerate(people_rows)}
    for guest in sorted(guest_rows, key=lambda r: r["created_at"]):
        linked = sorted(names[p["ref"]] for p in people_rows if p["guest_ref"] == guest["ref"])
        held = orjson.dumps([guest["emails"], guest["identifiers"]]).decode()
        names[guest["ref"]] = f"guest of {linked[0]}" if linked else f"guest holding {held}"

    def named(row: dict[str, Any], *refs: str) -> dict[str, Any]:
        kept = {k: v for k, v in row.items() if k not in stamps and k not in refs}
        return kept | {k: names.get(row[k], row[k]) for k in refs if row[k] is not None}

    return {
        "orders": sorted(orjson.dumps(named(r), default=str) for r in order_rows),
        "items": sorted(orjson.dumps(named(r, "order_ref"), default=str) for r in item_rows),
        "people": sorted(orjson.dumps(named(r, "order_ref", "guest_ref"), default=str) for r in people_rows),
        "guests": sorted(
            orjson.dumps(named(r, "merged_into") | {"name": names[r["ref"]]}, default=str) for r in guest_rows
        ),
        "keys": sorted((names[r["guest_ref"]], r["key"], str(r["expires_at"])) for r in key_rows),
        "extensions": sorted((names.get(r["owner_ref"], "?"), r["name"], orjson.dumps(r["data"])) for r in ext_rows),
        "consumer items": sorted(
            (names[u["consumer_ref"]], names[u["item_ref"]], u["position"]) for u in used if u["consumer_ref"] in names
        ),
        "key types": types,
    }


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_chunk_applied_together_ends_as_records_applied_one_by_one(database, monkeypatch, caplog, seed):
    """Compared after every chunk: a difference a later record would paper over still shows."""
    with database.write() as conn:
        tenants = [create_tenant(conn, f"differential-{seed}-{n}-{uuid.uuid4().hex[:6]}").tenant for n in (0, 1)]
        for tenant in tenants:
            set_identity_rules(conn, tenant, {"identityRules": ["CRM", "email"]})
    data = list(lines(seed))
    outcomes: list[tuple[int, Outcome]] = []
    for start in range(0, len(data), 37):
        chunk = data[start : start + 37]
        together = apply(database, tenants[0], chunk, per_commit=37, first=start)
        with monkeypatch.context() as patched:
            patched.setattr(new_orders, "check", lambda number, envelope, value: None)
            alone = apply(database, tenants[1], chunk, per_commit=37, first=start)
        assert together == alone
        first, second = snapshot(database, tenants[0]), snapshot(database, tenants[1])
        for part in first:
            assert first[part] == second[part], f"{part} after line {start + len(chunk)}"
        outcomes += together
    codes = {outcome.code for _, outcome in outcomes}
    assert {"200", "400"} <= codes, "the lines exercise success and refusal"
    assert any(o.skipped for _, o in outcomes) and any("Incorrect data type" in o.message for _, o in outcomes)
    assert len(first["guests"]) > 3 and first["consumer items"]
    assert "one by one" not in caplog.text, "no run fell back to the record-by-record path"


def test_new_orders_take_the_set_based_path_whole(database, monkeypatch, caplog):
    """A file of new orders never falls back to the record-by-record path."""
    from opencdp.demo import order_records

    with database.write() as conn:
        tenant = create_tenant(conn, f"set-based-{uuid.uuid4().hex[:6]}").tenant
    alone: list[Any] = []
    original = processor.apply_record
    monkeypatch.setattr(processor, "apply_record", lambda *args: alone.append(args) or original(*args))
    data = [e if isinstance(e, bytes) else orjson.dumps(e) for e in order_records(150, bad_share=0.1, seed=4)]
    results = apply(database, tenant, data, per_commit=1000)
    assert alone == [] and "one by one" not in caplog.text
    assert sum(o.ok for _, o in results) == sum(
        not isinstance(e, bytes) for e in order_records(150, bad_share=0.1, seed=4)
    )


def test_a_run_that_fails_as_a_whole_is_applied_record_by_record(database, monkeypatch, caplog):
    """Should another writer give an extension key its first type meanwhile, the run is redone one by one."""
    with database.write() as conn:
        tenant = create_tenant(conn, f"fallback-{uuid.uuid4().hex[:6]}").tenant

    def changed(self, conn):
        raise new_orders.KeyTypesChanged

    monkeypatch.setattr(new_orders._KeyTypes, "write", changed)
    data = [orjson.dumps(record("order", "insert", order(f"FB-{n}"))) for n in range(5)] + [b"{bad"]
    results = apply(database, tenant, data, per_commit=100)
    assert [o.code for _, o in results] == ["200"] * 5 + ["400"]
    assert "one by one" in caplog.text
    with database.read() as conn:
        stored = conn.execute(select(orders.c.reference_id).where(orders.c.tenant_id == tenant.id)).scalars().all()
    assert sorted(stored) == [f"FB-{n}" for n in range(5)]


def test_a_file_of_stored_orders_is_checked_once_per_record(database, monkeypatch):
    """Upserts of stored orders all go alone; the run around them is still checked and looked up once."""
    with database.write() as conn:
        tenant = create_tenant(conn, f"upserts-{uuid.uuid4().hex[:6]}").tenant
    inserts = [orjson.dumps(record("order", "insert", order(f"UP-{n}"))) for n in range(200)]
    assert {o.code for _, o in apply(database, tenant, inserts, per_commit=1000)} == {"200"}
    checked: list[int] = []
    original = new_orders.check
    monkeypatch.setattr(new_orders, "check", lambda number, *rest: checked.append(number) or original(number, *rest))
    value = {"referenceId": "UP-{}", "orderedAt": "2025-03-07T16:15:11.000Z", "price": 12.5}
    upserts = [orjson.dumps(record("order", "upsert", {**value, "referenceId": f"UP-{n}"})) for n in range(200)]
    results = apply(database, tenant, upserts, per_commit=1000)
    assert {o.code for _, o in results} == {"200"} and sorted(checked) == list(range(200))
    with database.read() as conn:
        prices = conn.execute(select(orders.c.price).where(orders.c.tenant_id == tenant.id)).scalars().all()
    assert len(prices) == 200 and {float(p) for p in prices} == {12.5}
