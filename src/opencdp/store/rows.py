"""Generic, tenant-scoped row access shared by every resource table.

Records cross the store boundary keyed by the wire's camelCase names (`referenceId`), so the core never
sees a column name; the conversion is mechanical and lives here alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Delete,
    Insert,
    Select,
    Table,
    Update,
    and_,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)

Record = dict[str, Any]
SortTerm = tuple[str, bool]  # (camelCase field, descending)

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


@cache
def to_column(name: str) -> str:
    return _CAMEL.sub("_", name).lower()


@cache
def to_field(column: str) -> str:
    head, *rest = column.split("_")
    return head + "".join(part.title() for part in rest)


def to_columns(values: Mapping[str, Any]) -> dict[str, Any]:
    return {to_column(name): value for name, value in values.items()}


def to_record(row: Mapping[str, Any]) -> Record:
    return {to_field(column): value for column, value in row.items()}


# Statements are built once per table with bound parameters: building one per call costs more than
# running it on SQLite.


@cache
def _by_ref(table: Table) -> ColumnElement[bool]:
    return and_(table.c.tenant_id == bindparam("_tenant"), table.c.ref == bindparam("_ref"))


@cache
def _insert(table: Table) -> Insert:
    return insert(table)


@cache
def _select(table: Table) -> Select[Any]:
    return select(table).where(_by_ref(table))


@cache
def _update(table: Table) -> Update:
    return update(table).where(_by_ref(table))


@cache
def _delete(table: Table) -> Delete:
    return delete(table).where(_by_ref(table))


def insert_row(conn: Connection, table: Table, values: Mapping[str, Any]) -> None:
    conn.execute(_insert(table), to_columns(values))


def insert_rows(conn: Connection, table: Table, records: Sequence[Mapping[str, Any]]) -> None:
    """Several rows in one executemany; a column some rows leave out is NULL in them."""
    rows = [to_columns(record) for record in records]
    columns = {column for row in rows for column in row}
    if rows:
        conn.execute(_insert(table), [{column: row.get(column) for column in columns} for row in rows])


def get_row(conn: Connection, table: Table, tenant_id: int, ref: str) -> Record | None:
    row = conn.execute(_select(table), {"_tenant": tenant_id, "_ref": ref}).mappings().first()
    return to_record(row) if row else None


def update_row(conn: Connection, table: Table, tenant_id: int, ref: str, values: Mapping[str, Any]) -> None:
    if values:
        conn.execute(_update(table), {"_tenant": tenant_id, "_ref": ref, **to_columns(values)})


def modify(conn: Connection, table: Table, record: Record, changes: Mapping[str, Any], now: datetime) -> Record:
    """Write changes to a stored row and move its modifiedAt; return the record as it now stands."""
    update_row(conn, table, record["tenantId"], record["ref"], {**changes, "modifiedAt": now})
    return {**record, **changes, "modifiedAt": now}


def delete_row(conn: Connection, table: Table, tenant_id: int, ref: str) -> None:
    conn.execute(_delete(table), {"_tenant": tenant_id, "_ref": ref})


def records(conn: Connection, stmt: Select[Any]) -> list[Record]:
    return [to_record(row) for row in conn.execute(stmt).mappings()]


def page(
    conn: Connection, table: Table, stmt: Select[Any], sort: Sequence[SortTerm], offset: int, limit: int
) -> tuple[int, list[Record]]:
    """One page of a filtered select and the total behind it; ties fall back to `ref` so paging is stable."""
    total = conn.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    order = [table.c[to_column(name)].desc() if desc else table.c[to_column(name)].asc() for name, desc in sort]
    rows = records(conn, stmt.order_by(*order, table.c.ref).offset(offset).limit(limit))
    return total, rows
