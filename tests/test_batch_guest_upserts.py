"""The set-based path of guest upserts (core/batch/guest_upserts.py) against the record-by-record path.

As for new orders: the same lines are applied to two tenants, one with the set-based path and one with
every record alone, and the two must then hold the same guests, identity keys, extension groups, key
types and orders, with the same outcomes. The lines make records of a chunk meet: the same person again
under another address case or identifier, groups replaced and created, keys moving between groups,
keys given another type, group names refused, too many pairs, identifiers no rule looks at, lines sent
twice, orders and guest deletes in between.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from batch_helpers import applied_alone, apply, both_ways, key_types_changed_meanwhile, new_tenant, order, record

PEOPLE = [
    {"email": "ann@example.com", "firstName": "Ann"},
    {"email": "ANN@example.com", "lastName": "Lee", "city": "Cork"},
    {"email": "bob@example.com", "identifiers": [{"provider": "CRM", "id": "C-1"}]},
    {"identifiers": [{"provider": "CRM", "id": "C-1"}], "firstName": "Bob", "title": "Mr"},
    {
        "identifiers": [{"provider": "CRM", "id": "C-2", "expiryDate": "2020-01-01T00:00:00Z"}],
        "email": "cy@example.com",
    },
    {"identifiers": [{"provider": "CRM", "id": "C-2"}], "email": "cyrus@example.com", "lastName": "Ng"},
    {"identifiers": [{"provider": "LOYALTY", "id": "L-9"}], "email": "eve@example.com", "language": "EN"},
    {"identifiers": [{"provider": "LOYALTY", "id": "L-8"}]},  # no key a rule looks at
    {
        "email": "gil@example.com",
        "language": "de",
        "firstSeen": "2025-01-02T10:00:00Z",
        "lastSeen": "2025-02-01T08:00:00Z",
    },
    {"email": "GIL@example.com", "lastSeen": "2025-03-01T00:00:00+01:00"},
    {"email": "gil@example.com", "firstSeen": "yesterday"},  # refused: not a timestamp
    {"firstName": "Nobody"},  # no identity at all
    {"email": "fay@example.com", "guestType": "traveller"},  # refused: upserts make customers
]
VALUES = {"tier": ["gold", "silver", 3], "points": [10, 20.5, "many"], "vip": [True, False], "store": ["Cork", "Dub"]}


def lines(seed: int, count: int = 240) -> Iterator[bytes]:
    rng = random.Random(seed)
    sent: list[bytes] = []

    def seeded(schema: str, mode: str, value: Any) -> bytes:
        ref = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        return orjson.dumps({"ref": ref, "schema": schema, "mode": mode, "value": value})

    for _index in range(count):
        roll = rng.random()
        person = dict(rng.choice(PEOPLE))
        groups = []
        for _group in range(rng.randrange(0, 3)):
            group: dict[str, Any] = {"name": rng.choice(["ext", "ext", "ext1", "ext2", "ext9"])}
            for key in rng.sample(sorted(VALUES), rng.randrange(1, 3)):
                group[key] = rng.choice(VALUES[key])
            groups.append(group)
        value: dict[str, Any] = {**person, "extensions": groups} if groups or rng.random() < 0.3 else person
        if roll < 0.04:
            line = seeded("guest", "upsert", {**person, "extensions": rng.choice(["no", [1], [{"name": ""}]])})
        elif roll < 0.06:
            line = seeded(
                "guest", "upsert", {**person, "extensions": [{"name": "ext", **{f"k{n}": n for n in range(101)}}]}
            )
        elif roll < 0.14:  # an order whose contact links to the guests the upserts made, or makes one
            contact = {k: v for k, v in person.items() if k in ("email", "identifiers", "firstName", "lastName")}
            line = seeded(
                "order", "insert", order(f"G-{rng.randrange(50)}", contact=contact or {"email": "z@example.com"})
            )
        elif roll < 0.18 and sent:
            line = rng.choice(sent)  # the same line again: already applied, or refused again
        elif roll < 0.20:
            line = seeded("guest", "delete", {"email": rng.choice(["ann@example.com", "bob@example.com"])})
        else:
            line = seeded("guest", "upsert", value)
            sent.append(line)
        yield line


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_guest_upserts_applied_together_end_as_records_applied_one_by_one(database, monkeypatch, caplog, seed):
    outcomes, first = both_ways(database, monkeypatch, caplog, f"guests-{seed}", list(lines(seed)))
    messages = {outcome.message for _, outcome in outcomes}
    assert {"200", "400"} <= {outcome.code for _, outcome in outcomes}
    assert any(o.skipped for _, o in outcomes)
    for expected in ("Not enough identifying information", "Identity information missing"):
        assert expected in messages, f"the lines exercise {expected!r}"
    for reason in ("already exists in data extension", "(Incorrect data type)", "(at most 100 attributes)"):
        assert any(m.startswith("Validation error: Attribute value.extensions[") and reason in m for m in messages)
    assert any("ext9" in message or "name" in message for message in messages)
    assert len(first["extensions"]) > 3 and len(first["guests"]) > 3


def test_a_file_of_guest_upserts_takes_the_set_based_path_whole(database, monkeypatch, caplog):
    tenant, alone = new_tenant(database, "crm"), applied_alone(monkeypatch)
    data = [
        orjson.dumps(record("guest", "upsert", {"email": f"c{n % 40}@example.com", "lastName": f"L{n}",
                                                "extensions": [{"name": "ext", "tier": "gold", "visits": n}]}))
        for n in range(120)
    ]  # fmt: skip
    results = apply(database, tenant, data, per_commit=1000)
    assert alone == [] and "one by one" not in caplog.text
    assert [outcome.code for _, outcome in results] == ["200"] * 120


def test_a_run_of_guest_upserts_that_fails_as_a_whole_is_applied_record_by_record(database, monkeypatch, caplog):
    """Should another writer give an extension key its first type meanwhile, the run is redone one by one."""
    tenant = new_tenant(database, "crm-fallback")
    key_types_changed_meanwhile(monkeypatch)
    data = [orjson.dumps(record("guest", "upsert", {"email": f"f{n}@example.com", "extensions": [{"tier": n}]}))
            for n in range(4)]  # fmt: skip
    results = apply(database, tenant, data, per_commit=100)
    assert [outcome.code for _, outcome in results] == ["200"] * 4
    assert "one by one" in caplog.text
