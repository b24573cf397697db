"""Building batch files and driving the Batch API's three calls, for the batch tests."""

from __future__ import annotations

import base64
import gzip
import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import select

from opencdp.core.batch import guest_upserts, key_types, new_orders, processor
from opencdp.core.batch.checks import check_lines
from opencdp.core.batch.lines import Outcome
from opencdp.core.tenants import Tenant, create_tenant, set_identity_rules
from opencdp.jobs import processor_for
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


def gz(lines: list[Any]) -> bytes:
    """NDJSON of the given records (dicts are dumped, bytes and str written as they are), gzipped."""
    body = b"".join(
        (orjson.dumps(x) if isinstance(x, dict) else x.encode() if isinstance(x, str) else x) + b"\n" for x in lines
    )
    return gzip.compress(body, mtime=0)


def allocate(client, data: bytes, ref: str | None = None) -> dict[str, Any]:
    ref = ref or str(uuid.uuid4())
    response = client.put(f"/v2/batches/{ref}", json={"checksum": hashlib.md5(data).hexdigest(), "size": len(data)})
    assert response.status_code in (200, 201), response.text
    return response.json()


def upload(client, batch: dict[str, Any], data: bytes, md5: bool = True):
    headers = {"Content-Md5": base64.b64encode(hashlib.md5(data).digest()).decode()} if md5 else {}
    return client.put(batch["location"]["href"], content=data, headers=headers, auth=None)


def run_batch(client, database, settings, lines: list[Any]) -> dict[str, Any]:
    """Allocate, upload, process, and return the final status resource."""
    data = gz(lines)
    batch = allocate(client, data)
    assert upload(client, batch, data).status_code == 200
    processor_for(settings, database).run_available()
    return client.get(f"/v2/batches/{batch['ref']}").json()


def read_log(client, status: dict[str, Any]) -> list[dict[str, Any]]:
    response = client.get(status["status"]["log"], auth=None)
    assert response.status_code == 200 and response.headers["content-type"] == "application/gzip"
    return [orjson.loads(line) for line in gzip.decompress(response.content).splitlines()]


def order(reference: str, **changes: Any) -> dict[str, Any]:
    value = {
        "referenceId": reference, "channel": "WEB", "pointOfSale": "shop.example", "status": "PURCHASED",
        "orderedAt": "2025-03-07T16:15:11.000Z", "currencyCode": "EUR", "price": 59.9, "paymentType": "Card",
        "cardType": "Visa", "contact": {"email": f"{reference.lower()}@example.com"},
        "orderItems": [{"type": "BOOK", "referenceId": f"{reference}-1", "productId": "B-17", "name": "SICP",
                        "description": "Hardcover", "vendor": "MIT Press", "price": 59.9, "currencyCode": "EUR",
                        "status": "PURCHASED"}],
        "extensions": [{"name": "ext", "key": "default", "giftWrap": False}],
    }  # fmt: skip
    value.update(changes)
    return value


def record(schema: str, mode: str, value: dict[str, Any], ref: str | None = None) -> dict[str, Any]:
    return {"ref": ref or str(uuid.uuid4()), "schema": schema, "mode": mode, "value": value}


# --- the set-based paths against the record-by-record path ------------------------------------------


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


def both_ways(
    database: Database, monkeypatch: Any, caplog: Any, name: str, data: list[bytes]
) -> tuple[list[Any], dict[str, Any]]:
    """The lines applied to two new tenants (identity rules CRM, then email), 37 to a transaction: one by
    the set-based paths, one with every record alone. Both tenants' data are compared after every chunk, so
    a difference a later record would paper over still shows, and no run may have fallen back to the
    record-by-record path. The outcomes and the last snapshot."""
    with database.write() as conn:
        tenants = [create_tenant(conn, f"{name}-{n}-{uuid.uuid4().hex[:6]}").tenant for n in (0, 1)]
        for tenant in tenants:
            set_identity_rules(conn, tenant, {"identityRules": ["CRM", "email"]})
    outcomes: list[tuple[int, Outcome]] = []
    first: dict[str, Any] = {}
    for start in range(0, len(data), 37):
        chunk = data[start : start + 37]
        together = apply(database, tenants[0], chunk, per_commit=37, first=start)
        with monkeypatch.context() as patched:
            patched.setattr(new_orders, "check", lambda number, envelope, value: None)
            patched.setattr(guest_upserts, "check", lambda number, envelope, value: None)
            alone = apply(database, tenants[1], chunk, per_commit=37, first=start)
        assert together == alone
        first, second = snapshot(database, tenants[0]), snapshot(database, tenants[1])
        for part in first:
            assert first[part] == second[part], f"{part} after line {start + len(chunk)}"
        outcomes += together
    assert "one by one" not in caplog.text, "no run fell back to the record-by-record path"
    return outcomes, first


def new_tenant(database: Database, name: str) -> Tenant:
    with database.write() as conn:
        return create_tenant(conn, f"{name}-{uuid.uuid4().hex[:6]}").tenant


def applied_alone(monkeypatch: Any) -> list[Any]:
    """The records the record-by-record path applies from now on (the processor's `apply_record` calls)."""
    alone: list[Any] = []
    original = processor.apply_record
    monkeypatch.setattr(processor, "apply_record", lambda *a, **kw: alone.append(a) or original(*a, **kw))
    return alone


def key_types_changed_meanwhile(monkeypatch: Any) -> None:
    """As if another writer gave an extension key its first type while a run was deciding."""

    def changed(self: Any, conn: Any) -> None:
        raise key_types.KeyTypesChanged

    monkeypatch.setattr(key_types.KeyTypes, "write", changed)


def killed_at_third_commit(monkeypatch: Any, settings: Any, database: Database, ref: str) -> None:
    """Process the uploaded batches until the processor is killed as its third transaction begins (two
    committed), then put the processor back as it was, and let the claim lapse so the batch can resume."""
    import pytest
    from sqlalchemy import update

    from opencdp.core.values import utcnow
    from opencdp.store.tables import batches

    original = processor.Processor._commit
    calls = {"n": 0}

    def dying(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("killed")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(processor.Processor, "_commit", dying)
    with pytest.raises(KeyboardInterrupt):
        processor_for(settings, database).run_available()
    monkeypatch.setattr(processor.Processor, "_commit", original)
    with database.write() as conn:
        conn.execute(update(batches).where(batches.c.ref == ref).values(claim_expires=utcnow() - timedelta(seconds=1)))
