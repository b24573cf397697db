"""The set-based path of batch imports (core/batch/new_orders.py) against the record-by-record path.

The same lines are applied to two tenants of one database, one with the set-based path and one with
every record alone; the two tenants must then hold the same orders, items, extensions, contacts,
consumers, guests, identity keys, key types and outcomes. The lines are built to make records of a chunk
meet: repeat customers, addresses differing in case, expired identifiers, consumers named as their
contact, extension keys given another type, referenceIds repeated within and across chunks, upserts of
stored orders (header changes among them, to the closest of several), lines sent twice, guest records in
between, bad lines.
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

from batch_helpers import applied_alone, apply, both_ways, key_types_changed_meanwhile, new_tenant, order, record
from opencdp.core.batch import new_orders
from opencdp.store.tables import (
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
        shifted = (datetime.fromisoformat(at) + timedelta(hours=rng.choice([0, 20, 47, 49]))).isoformat()
        if roll < 0.12:  # header changes: to the closest stored order, refused, or sent whole
            change = rng.choice([{"price": 1.5}, {"status": "CANCELLED", "paymentType": "Cash"}, {"price": "abc"},
                                 {"cardType": None}, {k: v for k, v in value.items() if k not in ("orderItems",)}])  # fmt: skip
            change.pop("contact", None)
            line = orjson.dumps(seeded("order", "upsert", {**change, "referenceId": reference, "orderedAt": shifted}))
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
        elif roll < 0.41:  # deletes: by referenceId alone, with orderedAt, naming no order, naming none at all
            named = rng.choice([{}, {"orderedAt": at}, {"orderedAt": shifted}, {"orderRef": str(uuid.UUID(int=7))},
                                {"referenceId": ""}])  # fmt: skip
            line = orjson.dumps(seeded("order", "delete", {"referenceId": reference, **named}))
        elif roll < 0.43:
            value["extensions"] = [{"name": "ext", "totalUnits": rng.choice([1, "one"])}]
            line = orjson.dumps(seeded("order", "insert", value))
        else:
            line = orjson.dumps(seeded("order", rng.choice(["insert", "insert", "upsert"]), value))
            plain.append(line)
        yield line


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_chunk_applied_together_ends_as_records_applied_one_by_one(database, monkeypatch, caplog, seed):
    outcomes, first = both_ways(database, monkeypatch, caplog, f"differential-{seed}", list(lines(seed)))
    codes = {outcome.code for _, outcome in outcomes}
    assert {"200", "400"} <= codes, "the lines exercise success and refusal"
    assert any(o.skipped for _, o in outcomes) and any("Incorrect data type" in o.message for _, o in outcomes)
    assert len(first["guests"]) > 3 and first["consumer items"]


def test_new_orders_take_the_set_based_path_whole(database, monkeypatch, caplog):
    """A file of new orders never falls back to the record-by-record path."""
    from opencdp.demo import order_records

    tenant, alone = new_tenant(database, "set-based"), applied_alone(monkeypatch)
    data = [e if isinstance(e, bytes) else orjson.dumps(e) for e in order_records(150, bad_share=0.1, seed=4)]
    results = apply(database, tenant, data, per_commit=1000)
    assert alone == [] and "one by one" not in caplog.text
    assert sum(o.ok for _, o in results) == sum(
        not isinstance(e, bytes) for e in order_records(150, bad_share=0.1, seed=4)
    )


def test_a_run_that_fails_as_a_whole_is_applied_record_by_record(database, monkeypatch, caplog):
    """Should another writer give an extension key its first type meanwhile, the run is redone one by one."""
    tenant = new_tenant(database, "fallback")
    key_types_changed_meanwhile(monkeypatch)
    data = [orjson.dumps(record("order", "insert", order(f"FB-{n}"))) for n in range(5)] + [b"{bad"]
    results = apply(database, tenant, data, per_commit=100)
    assert [o.code for _, o in results] == ["200"] * 5 + ["400"]
    assert "one by one" in caplog.text
    with database.read() as conn:
        stored = conn.execute(select(orders.c.reference_id).where(orders.c.tenant_id == tenant.id)).scalars().all()
    assert sorted(stored) == [f"FB-{n}" for n in range(5)]


def test_a_file_of_header_changes_to_stored_orders_takes_the_set_based_path(database, monkeypatch, caplog):
    """Upserts that only change stored orders' header fields (a status feed) are decided together too;
    each record is checked once."""
    tenant = new_tenant(database, "upserts")
    inserts = [orjson.dumps(record("order", "insert", order(f"UP-{n}"))) for n in range(200)]
    assert {o.code for _, o in apply(database, tenant, inserts, per_commit=1000)} == {"200"}
    alone = applied_alone(monkeypatch)
    checked: list[int] = []
    original = new_orders.check
    monkeypatch.setattr(new_orders, "check", lambda number, *rest: checked.append(number) or original(number, *rest))
    value = {"referenceId": "UP-{}", "orderedAt": "2025-03-07T16:15:11.000Z", "price": 12.5}
    upserts = [orjson.dumps(record("order", "upsert", {**value, "referenceId": f"UP-{n}"})) for n in range(200)]
    results = apply(database, tenant, upserts, per_commit=1000)
    assert {o.code for _, o in results} == {"200"} and sorted(checked) == list(range(200))
    assert alone == [] and "one by one" not in caplog.text
    with database.read() as conn:
        prices = conn.execute(select(orders.c.price).where(orders.c.tenant_id == tenant.id)).scalars().all()
    assert len(prices) == 200 and {float(p) for p in prices} == {12.5}


def test_deletes_decided_together_end_as_deletes_applied_alone(database, monkeypatch, caplog):
    """Deletes of stored orders by referenceId, by orderedAt, by orderRef, ambiguous, missing, repeated."""
    rng = random.Random(8)
    day = datetime(2025, 3, 1, tzinfo=UTC)

    def stamp(days: float) -> str:
        return (day + timedelta(days=days)).isoformat().replace("+00:00", "Z")

    inserts = [record("order", "insert", order(f"D-{n}", orderedAt=stamp(0))) for n in range(27)]
    inserts += [record("order", "insert", order(f"D-{n}", orderedAt=stamp(10))) for n in range(10)]  # two each
    deletes = [
        {"referenceId": f"D-{n}", **rng.choice([{}, {"orderedAt": stamp(0)}, {"orderedAt": stamp(10.5)},
                                                 {"orderedAt": stamp(3)}, {"orderRef": str(uuid.UUID(int=n))}])}
        for n in rng.sample(range(30), 30)
    ] + [{"referenceId": "D-20"}, {"referenceId": "NOPE"}, {"orderedAt": stamp(0)}]  # fmt: skip
    data = [orjson.dumps(line) for line in inserts + [record("order", "delete", value) for value in deletes]]
    decided: list[str] = []
    original = new_orders._Chunk.delete
    monkeypatch.setattr(new_orders._Chunk, "delete", lambda self, ref: decided.append(ref) or original(self, ref))
    outcomes, last = both_ways(database, monkeypatch, caplog, "deletes", data)
    messages = [outcome.message for _, outcome in outcomes[37:]]
    assert messages.count("") >= 5, "deletes succeed"
    for refusal in ("No order found", "More than one order exists"):
        assert any(message.startswith(refusal) for message in messages)
    assert len(last["orders"]) == 37 - messages.count("")
    assert len(decided) >= messages.count("") - 1, "only the repeated delete may go alone"


def _replacement(n: int) -> dict[str, Any]:
    """An insert of a stored order's referenceId and orderedAt that changes it in one of several ways."""
    value = order(f"RP-{n}", price=10 + n)
    item = value["orderItems"][0]
    shape = n % 6
    if shape == 0:  # its item kept and rewritten, a new one beside it, the order's extension changed
        value["orderItems"] = [{**item, "name": "2nd ed."}, {**item, "referenceId": f"RP-{n}-2", "extensions": [{"size": 2}]}]
        value["extensions"] = [{"name": "ext", "giftWrap": True}]
    elif shape == 1:  # its item dropped for another; no extension sent (the stored one stays)
        value["orderItems"] = [{**item, "referenceId": f"RP-{n}-9"}]
        value.pop("extensions")
    elif shape == 2:  # no contact (the stored one stays), consumers named by item (the earlier one dropped)
        value.pop("contact")
        value["consumers"] = [{"firstName": "Tom", "lastName": "Varga", "orderItems": [{"referenceId": f"RP-{n}-1"}]}]
    elif shape == 3:  # a contact no rule places: it keeps the stored contact's guest
        value["contact"] = {"firstName": "Ann", "identifiers": [{"provider": "LOYALTY", "id": f"L-{n}"}]}
    elif shape == 4:  # a new customer, and an extension of the other type: refused, nothing changes
        value["contact"] = {"email": f"other-{n}@example.com"}
        value["extensions"] = [{"name": "ext", "giftWrap": "yes"}]
    else:  # an item extension of the other type than shape 0 gave its key: refused, nothing changes
        value["consumers"] = [{"firstName": "A", "lastName": "B"}]
        value["orderItems"] = [{**item, "extensions": [{"size": "L"}]}]
    return value


def _upsert(n: int) -> dict[str, Any]:
    """An upsert of a stored order that sends items, people or extensions: it changes only what it sends."""
    value: dict[str, Any] = {"referenceId": f"RP-{n}", "orderedAt": "2025-03-08T10:00:00.000Z"}
    shape = n % 6
    if shape == 0:  # its item patched, a complete new one beside it, the order's extension replaced
        value["orderItems"] = [{"referenceId": f"RP-{n}-1", "name": "2nd ed."},
                               {**order("x")["orderItems"][0], "referenceId": f"RP-{n}-2", "extensions": [{"size": 2}]}]  # fmt: skip
        value["extensions"] = [{"name": "ext", "giftWrap": True}]
    elif shape == 1:  # a new item that is not complete: refused, nothing changes
        value["orderItems"] = [{"referenceId": f"RP-{n}-7", "name": "No type"}]
    elif shape == 2:  # consumers only: they use the stored items
        value["consumers"] = [{"firstName": "Tom", "lastName": "Varga"}]
    elif shape == 3:  # a contact no rule places, and a price
        value.update(price=1.5, contact={"firstName": "Ann", "identifiers": [{"provider": "LOYALTY", "id": f"L-{n}"}]})
    elif shape == 4:  # an extension of the other type: refused
        value["extensions"] = [{"name": "ext", "giftWrap": "yes"}]
    else:  # an item extension of the other type than shape 0 gave its key: refused
        value["orderItems"] = [{"referenceId": f"RP-{n}-1", "extensions": [{"size": "L"}]}]
    return value


@pytest.mark.parametrize(("mode", "refused"), [("insert", 8), ("upsert", 12)])
def test_records_that_change_stored_orders_take_the_set_based_path(database, monkeypatch, caplog, mode, refused):
    """A file that re-sends stored orders as inserts (each replaces its order whole), or as upserts that
    send items, people or extensions, is decided together and ends as the same file applied record by
    record."""
    firsts = [record("order", "insert", order(f"RP-{n}", consumers=[{"firstName": "Ann", "lastName": "B"}]))
              for n in range(24)]  # fmt: skip
    seconds = [record("order", mode, (_replacement if mode == "insert" else _upsert)(n)) for n in range(24)]
    tenant = new_tenant(database, "replace")
    assert {o.code for _, o in apply(database, tenant, [orjson.dumps(r) for r in firsts], 1000)} == {"200"}
    alone = applied_alone(monkeypatch)
    results = apply(database, tenant, [orjson.dumps(r) for r in seconds], 1000)
    assert alone == [] and "one by one" not in caplog.text
    codes = [o.code for _, o in results]
    assert codes.count("400") == refused and codes.count("200") == 24 - refused
    monkeypatch.undo()
    outcomes, last = both_ways(database, monkeypatch, caplog, "changes", [orjson.dumps(r) for r in firsts + seconds])
    assert [o.code for _, o in outcomes[24:]] == codes
    assert len(last["orders"]) == 24 and last["consumer items"]


@pytest.mark.parametrize("together", [True, False])
def test_an_insert_replacing_an_order_drops_every_item_it_does_not_name(database, monkeypatch, together):
    """Items REST made carry no referenceId; an insert that replaces their order leaves none of them, on
    either path (the record-by-record one used to drop only the last)."""
    from opencdp.core import orders as core_orders
    from opencdp.core.values import utcnow
    from opencdp.store.tables import order_items

    tenant = new_tenant(database, "drop")
    value = order("DR-1")
    with database.write() as conn:
        stored, _ = core_orders.create_order(conn, tenant, {k: v for k, v in value.items() if k in (
            "referenceId", "orderedAt", "currencyCode", "price")}, utcnow())  # fmt: skip
        for _ in range(2):
            core_orders.insert_item(conn, tenant, stored, {"type": "BOOK", "name": "REST", "price": 1,
                                                           "currencyCode": "EUR", "quantity": 1}, utcnow())  # fmt: skip
    if not together:
        monkeypatch.setattr(new_orders, "check", lambda number, envelope, line_value: None)
    assert [o.code for _, o in apply(database, tenant, [orjson.dumps(record("order", "insert", value))], 1000)] == [
        "200"
    ]
    with database.read() as conn:
        names = conn.execute(select(order_items.c.name).where(order_items.c.tenant_id == tenant.id)).scalars().all()
    assert names == ["SICP"]
