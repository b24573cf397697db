"""Generic, tenant-scoped row access shared by every resource table.

Records cross the store boundary keyed by the wire's camelCase names (`referenceId`), so the core never
sees a column name; the conversion is mechanical and lives here alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Select, Table, delete, func, insert, select, update

Record = dict[str, Any]
SortTerm = tuple[str, bool]  # (camelCase field, descending)

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def to_column(name: str) -> str:
    return _CAMEL.sub("_", name).lower()


def to_field(column: str) -> str:
    head, *rest = column.split("_")
    return head + "".join(part.title() for part in rest)


def to_columns(values: Mapping[str, Any]) -> dict[str, Any]:
    return {to_column(name): value for name, value in values.items()}


def to_record(row: Mapping[str, Any]) -> Record:
    return {to_field(column): value for column, value in row.items()}


def insert_row(conn: Connection, table: Table, values: Mapping[str, Any]) -> None:
    conn.execute(insert(table).values(to_columns(values)))


def get_row(conn: Connection, table: Table, tenant_id: int, ref: str, *, for_update: bool = False) -> Record | None:
    stmt = select(table).where(table.c.tenant_id == tenant_id, table.c.ref == ref)
    if for_update:
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).mappings().first()
    return to_record(row) if row else None


def update_row(conn: Connection, table: Table, tenant_id: int, ref: str, values: Mapping[str, Any]) -> None:
    if values:
        conn.execute(update(table).where(table.c.tenant_id == tenant_id, table.c.ref == ref).values(to_columns(values)))


def delete_row(conn: Connection, table: Table, tenant_id: int, ref: str) -> None:
    conn.execute(delete(table).where(table.c.tenant_id == tenant_id, table.c.ref == ref))


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


def refs_in(conn: Connection, table: Table, tenant_id: int, refs: Iterable[str]) -> set[str]:
    wanted = list(refs)
    if not wanted:
        return set()
    stmt = select(table.c.ref).where(table.c.tenant_id == tenant_id, table.c.ref.in_(wanted))
    return set(conn.execute(stmt).scalars())
