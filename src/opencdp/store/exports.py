"""Audience export definitions, executions, delta baselines, and the reads an export run streams through."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    String,
    Table,
    and_,
    cast,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import JSONB, aggregate_order_by

from opencdp.store.rows import Record, Rows, records, to_column, to_columns, to_record
from opencdp.store.tables import (
    audience_exports,
    export_executions,
    export_members,
    extensions,
    guests,
    order_items,
    order_people,
    orders,
    segment_builds,
    segment_members,
)
from opencdp.store.types import Money, UTCDateTime

EXPORTS: Rows[Record] = Rows(audience_exports)  # Audience export definitions.
EXECUTIONS: Rows[Record] = Rows(export_executions)  # Runs of audience exports.

ACTIVE = ("pending", "running")
MAX_ITEMS = 100


def find_definition(conn: Connection, tenant_id: int, ident: str) -> Record | None:
    table = audience_exports
    stmt = select(table).where(
        table.c.tenant_id == tenant_id, or_(table.c.ref == ident.lower(), table.c.friendly_id == ident)
    )
    found = records(conn, stmt.limit(1))
    return found[0] if found else None


def page_definitions(conn: Connection, tenant_id: int, offset: int, limit: int) -> tuple[int, list[Record]]:
    stmt = select(audience_exports).where(audience_exports.c.tenant_id == tenant_id)
    total = conn.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    order = (audience_exports.c.created_at.desc(), audience_exports.c.ref)
    return total, records(conn, stmt.order_by(*order).offset(offset).limit(limit))


def due_definitions(conn: Connection, now: datetime) -> list[Record]:
    table = audience_exports
    stmt = select(table).where(table.c.status == "scheduled", table.c.next_run_at <= now).limit(100)
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return records(conn, stmt)


def set_next_run(conn: Connection, ref: str, at: datetime | None) -> None:
    conn.execute(update(audience_exports).where(audience_exports.c.ref == ref).values(next_run_at=at))


def set_baseline(conn: Connection, definition_ref: str, execution_ref: str) -> None:
    conn.execute(
        update(audience_exports).where(audience_exports.c.ref == definition_ref).values(baseline_ref=execution_ref)
    )


def known_providers(conn: Connection, tenant_id: int, providers: Sequence[str]) -> set[str]:
    """The providers some guest of the tenant holds an identifier of."""
    known = set()
    for provider in dict.fromkeys(providers):
        if conn.dialect.name == "postgresql":
            held = guests.c.identifiers.op("@>")(cast(literal([{"provider": provider}], JSONB), JSONB))
            stmt = select(exists().where(guests.c.tenant_id == tenant_id, held))
        else:
            each = func.json_each(guests.c.identifiers).table_valued("value").alias()
            matched = func.json_extract(each.c.value, "$.provider") == provider
            rows = select(1).select_from(guests.join(each, true())).where(guests.c.tenant_id == tenant_id, matched)
            stmt = select(exists(rows))
        if conn.execute(stmt).scalar():
            known.add(provider)
    return known


# --- executions ---------------------------------------------------------------------------------------


def get_execution(conn: Connection, tenant_id: int, ref: str) -> Record | None:
    stmt = select(export_executions).where(export_executions.c.tenant_id == tenant_id, export_executions.c.ref == ref)
    row = conn.execute(stmt).mappings().first()
    return to_record(row) if row else None


def update_execution(conn: Connection, ref: str, values: dict[str, Any]) -> None:
    conn.execute(update(export_executions).where(export_executions.c.ref == ref).values(to_columns(values)))


def active_execution(conn: Connection, definition_ref: str) -> Record | None:
    table = export_executions
    stmt = select(table).where(table.c.definition_ref == definition_ref, table.c.status.in_(ACTIVE))
    found = records(conn, stmt.order_by(table.c.created_at).limit(1))
    return found[0] if found else None


def page_executions(
    conn: Connection, tenant_id: int, definition_ref: str, offset: int, limit: int, finished: bool = False
) -> tuple[int, list[Record]]:
    table = export_executions
    stmt = select(table).where(table.c.tenant_id == tenant_id, table.c.definition_ref == definition_ref)
    if finished:
        stmt = stmt.where(table.c.status.in_(("success", "failed")))
    total = conn.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    order = (table.c.created_at.desc(), table.c.ref)
    return total, records(conn, stmt.order_by(*order).offset(offset).limit(limit))


def latest_executions(conn: Connection, definition_refs: Sequence[str]) -> dict[str, Record]:
    if not definition_refs:
        return {}
    table = export_executions
    stmt = select(table).where(table.c.definition_ref.in_(list(definition_refs))).order_by(table.c.created_at)
    return {execution["definitionRef"]: execution for execution in records(conn, stmt)}


def latest_success(conn: Connection, definition_ref: str) -> Record | None:
    table = export_executions
    stmt = select(table).where(table.c.definition_ref == definition_ref, table.c.status == "success")
    found = records(conn, stmt.order_by(table.c.end_time.desc()).limit(1))
    return found[0] if found else None


def claim_execution(conn: Connection, worker: str, now: datetime, lease_until: datetime) -> Record | None:
    """The oldest runnable execution: pending with its segment build (if any) finished, or abandoned mid-run."""
    table = export_executions
    build_done = or_(
        table.c.segment_build_ref.is_(None),
        exists().where(
            segment_builds.c.ref == table.c.segment_build_ref, segment_builds.c.status.in_(("success", "failed"))
        ),
    )
    ready = or_(
        and_(table.c.status == "pending", build_done), and_(table.c.status == "running", table.c.claim_expires < now)
    )
    stmt = select(table).where(ready).order_by(table.c.created_at).limit(1)
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(of=table, skip_locked=True)
    found = records(conn, stmt)
    if not found:
        return None
    changes = {"status": "running", "claimedBy": worker, "claimExpires": lease_until}
    update_execution(conn, found[0]["ref"], changes)
    return {**found[0], **changes}


def expired_executions(conn: Connection, before: datetime) -> list[Record]:
    table = export_executions
    stmt = select(table.c.ref, table.c.tenant_id, table.c.files).where(table.c.end_time < before)
    return [found for found in records(conn, stmt) if found["files"]]


def due_webhooks(conn: Connection, now: datetime) -> list[Record]:
    table = export_executions
    stmt = select(table).where(table.c.webhook_due <= now).order_by(table.c.webhook_due).limit(20)
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return records(conn, stmt)


# --- members ------------------------------------------------------------------------------------------


def build_members(build_id: int) -> Select[Any]:
    return select(segment_members.c.guest_ref.label("ref")).where(segment_members.c.build_id == build_id)


def baseline_members(execution_ref: str | None) -> Select[Any]:
    return select(export_members.c.guest_ref.label("ref")).where(export_members.c.execution_ref == execution_ref)


def minus(left: Select[Any], right: Select[Any]) -> Select[Any]:
    """Refs of `left` that `right` lacks."""
    wanted = left.subquery()
    other = right.subquery()
    return select(wanted.c.ref).where(~exists().where(other.c.ref == wanted.c.ref))


def count(conn: Connection, refs: Select[Any]) -> int:
    return conn.execute(select(func.count()).select_from(refs.subquery())).scalar_one()


def chunk(conn: Connection, refs: Select[Any], after: str, size: int) -> list[str]:
    """The next refs in ref order: keyset paging, so a long export never re-reads what it wrote."""
    found = refs.subquery()
    stmt = select(found.c.ref).where(found.c.ref > after).order_by(found.c.ref).limit(size)
    return list(conn.execute(stmt).scalars())


def save_baseline(conn: Connection, execution_ref: str, build_id: int) -> None:
    rows = select(literal(execution_ref, export_members.c.execution_ref.type), segment_members.c.guest_ref).where(
        segment_members.c.build_id == build_id
    )
    conn.execute(insert(export_members).from_select(["execution_ref", "guest_ref"], rows))


def drop_baseline(conn: Connection, execution_ref: str) -> None:
    conn.execute(delete(export_members).where(export_members.c.execution_ref == execution_ref))


# --- what a record shows ------------------------------------------------------------------------------


def _wire_time(conn: Connection, column: Any) -> Any:
    """A timestamp already in the wire's form (UTC, milliseconds, Z), formatted by the database."""
    if conn.dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
    return func.strftime("%Y-%m-%dT%H:%M:%fZ", column)


def _columns(conn: Connection, table: Table, fields: Sequence[str]) -> list[Any]:
    """The asked fields under their wire names; timestamps come out as wire text, not datetimes to format."""
    shown = []
    for name in dict.fromkeys(fields):
        column = table.c[to_column(name)]
        value = _wire_time(conn, column) if isinstance(column.type, UTCDateTime) else column
        shown.append(value.label(name))
    return shown


def guests_by_ref(conn: Connection, tenant_id: int, refs: Sequence[str], fields: Sequence[str]) -> dict[str, Record]:
    """Only the asked guest fields of a chunk of guests (`email` reads `emails`)."""
    wanted = ["ref", *("emails" if name == "email" else name for name in fields)]
    stmt = select(*_columns(conn, guests, wanted)).where(guests.c.tenant_id == tenant_id, guests.c.ref.in_(list(refs)))
    return {row["ref"]: dict(row) for row in conn.execute(stmt).mappings()}


def extension_data(conn: Connection, tenant_id: int, owner_refs: Sequence[str]) -> dict[tuple[str, str], Any]:
    if not owner_refs:
        return {}
    stmt = select(extensions.c.owner_ref, extensions.c.name, extensions.c.data).where(
        extensions.c.tenant_id == tenant_id, extensions.c.owner_ref.in_(list(owner_refs))
    )
    return {(row.owner_ref, row.name): row.data for row in conn.execute(stmt)}


def _json_object(conn: Connection, pairs: list[tuple[str, Any]]) -> Any:
    build = func.json_build_object if conn.dialect.name == "postgresql" else func.json_object
    return build(*(part for name, value in pairs for part in (literal(name, String()), value)))


def _json_value(conn: Connection, column: Any) -> Any:
    """A column as a JSON value: timestamps as wire text; money exactly as stored (SQLite keeps it as text,
    which `json()` turns back into the number it spells)."""
    if isinstance(column.type, UTCDateTime):
        return _wire_time(conn, column)
    if isinstance(column.type, Money) and conn.dialect.name != "postgresql":
        return func.json(column)
    return column


def _ext_of(conn: Connection, owner_ref: Any) -> Any:
    found = (
        select(extensions.c.data)
        .where(extensions.c.owner_ref == owner_ref, extensions.c.name == "ext")
        .limit(1)
        .scalar_subquery()
    )
    if conn.dialect.name == "postgresql":
        return func.coalesce(found, cast(literal("{}"), JSONB))
    return func.json(func.coalesce(found, "{}"))


def orders_as_json(
    conn: Connection, tenant_id: int, guest_refs: Sequence[str], wanted: Mapping[str, Any]
) -> list[tuple[str, str]]:
    """Each guest's last orders as contact, newest first, as (guest ref, JSON text) rows: each order a JSON
    object with the fields asked (in that order: `json`, not `jsonb`), its extension data if asked, and its
    first 100 items in the order they were added.

    The database assembles the JSON, so an export reads one row per order instead of one per field.
    """
    postgres = conn.dialect.name == "postgresql"
    rank = func.row_number().over(
        partition_by=order_people.c.guest_ref, order_by=(orders.c.ordered_at.desc(), orders.c.ref)
    )
    ranked = (
        select(orders, order_people.c.guest_ref.label("holder"), rank.label("position"))
        .join(order_people, order_people.c.order_ref == orders.c.ref)
        .where(
            order_people.c.tenant_id == tenant_id,
            order_people.c.role == "contact",
            order_people.c.guest_ref.in_(list(guest_refs)),
        )
        .subquery()
    )
    item = order_items.alias()
    item_pairs = [(name, _json_value(conn, item.c[to_column(name)])) for name in wanted["itemFields"]]
    if wanted["extensions"]:
        item_pairs.append(("ext", _ext_of(conn, item.c.ref)))
    first_items = (
        select(_json_object(conn, item_pairs).label("line"), item.c.created_at, item.c.ref)
        .where(item.c.order_ref == ranked.c.ref)
        # SQLite walks its (order_ref, created_at) index in order, ties by rowid; a second sort key would
        # cost a temporary B-tree per order
        .order_by(item.c.created_at, *([item.c.ref] if postgres else []))
        .limit(MAX_ITEMS)
        .correlate(ranked)
        .subquery()
    )
    if postgres:
        gathered: ColumnElement[Any] = func.coalesce(
            func.json_agg(aggregate_order_by(first_items.c.line, first_items.c.created_at, first_items.c.ref)),
            cast(literal("[]"), postgresql.JSON),
        )
    else:
        gathered = func.json_group_array(func.json(first_items.c.line))
    items_json = select(gathered).select_from(first_items).scalar_subquery()
    pairs = [(name, _json_value(conn, ranked.c[to_column(name)])) for name in wanted["fields"]]
    if wanted["extensions"]:
        pairs.append(("ext", _ext_of(conn, ranked.c.ref)))
    pairs.append(("items", items_json))
    stmt = (
        select(ranked.c.holder, cast(_json_object(conn, pairs), String))
        .where(ranked.c.position <= wanted["limit"])
        .order_by(ranked.c.holder, ranked.c.position)
    )
    return [(row[0], row[1]) for row in conn.execute(stmt)]
