"""Generic, tenant-scoped row access shared by every resource table.

Records cross the store boundary keyed by the wire's camelCase names (`referenceId`), so the core never
sees a column name; the conversion is mechanical and lives here alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from functools import cache
from typing import Any, Generic, TypeVar, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Delete,
    Dialect,
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

from opencdp.store.types import UTCDateTime

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


def to_record(row: Mapping[Any, Any]) -> Record:
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
    """Many rows, one executemany per set of fields, so a field a record leaves out gets the column's
    default exactly as `insert_row` would give it.

    The hot path of batch imports: the statement is compiled once per set of columns and the values are
    converted here, straight to the driver's executemany (SQLAlchemy's per-row parameter processing
    cost more than SQLite's own work). A timestamp shared by many rows is converted once.
    """
    for names, rows in _by_fields(records).items():
        sql, converters, positions = _compiled_insert(conn.dialect, table, tuple(to_column(name) for name in names))
        columns = [list(values) for values in zip(*rows, strict=True)]
        for index, (convert, shared) in enumerate(converters):
            if convert is not None:
                columns[index] = _converted(columns[index], convert, shared)
        if conn.dialect.name != "postgresql":  # SQLite's driver takes positional parameters
            conn.exec_driver_sql(sql, list(zip(*(columns[index] for index in positions), strict=True)))
        elif len(rows) >= COPY_FROM:
            _copy(conn, table, names, columns)
        else:
            keys = [f"p{index}" for index in range(len(columns))]
            conn.exec_driver_sql(sql, [dict(zip(keys, row, strict=True)) for row in zip(*columns, strict=True)])


def _copy(conn: Connection, table: Table, names: tuple[str, ...], columns: list[list[Any]]) -> None:
    """PostgreSQL takes many rows fastest by COPY, in the caller's transaction (executemany: ~10x slower)."""
    target = ", ".join(to_column(name) for name in names)
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor, cursor.copy(f"COPY {table.name} ({target}) FROM STDIN") as copy:
        for row in zip(*columns, strict=True):
            copy.write_row(row)


def update_rows(conn: Connection, table: Table, tenant_id: int, changes: Mapping[str, Mapping[str, Any]]) -> None:
    """Each ref's changes (by field), one executemany per set of fields changed."""
    for names, rows in _by_fields([{"_ref": ref, **values} for ref, values in changes.items() if values]).items():
        keys = tuple(name if name.startswith("_") else to_column(name) for name in names)
        conn.execute(_update(table), [{"_tenant": tenant_id, **dict(zip(keys, row, strict=True))} for row in rows])


def _by_fields(records: Sequence[Mapping[str, Any]]) -> dict[tuple[str, ...], list[tuple[Any, ...]]]:
    groups: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
    for record in records:
        groups.setdefault(tuple(record), []).append(tuple(record.values()))
    return groups


Converter = Callable[[Any], Any]
COPY_FROM = 10  # rows: below, COPY's extra round trip costs more than it saves


@cache
def _compiled_insert(
    dialect: Dialect, table: Table, columns: tuple[str, ...]
) -> tuple[str, list[tuple[Converter | None, bool]], list[int]]:
    """The INSERT for these columns as the driver takes it; each column's value converter (with whether
    its values are worth converting once each: timestamps repeat across a chunk's rows); and, for a
    driver with positional parameters, which column each position takes."""
    params = {f"p{index}": bindparam(f"p{index}", type_=table.c[name].type) for index, name in enumerate(columns)}
    stmt = insert(table).values({name: params[f"p{index}"] for index, name in enumerate(columns)})
    compiled = stmt.compile(dialect=dialect)
    converters = [
        (table.c[name].type.dialect_impl(dialect).bind_processor(dialect), isinstance(table.c[name].type, UTCDateTime))
        for name in columns
    ]
    positions = [int(name[1:]) for name in compiled.positiontup or ()]
    return str(compiled), converters, positions  # type: ignore[return-value]


def _converted(values: list[Any], convert: Converter, shared: bool) -> list[Any]:
    if not shared:
        return [None if value is None else convert(value) for value in values]
    seen: dict[Any, Any] = {}
    result = []
    for value in values:
        if value not in seen:
            seen[value] = None if value is None else convert(value)
        result.append(seen[value])
    return result


def get_rows(conn: Connection, table: Table, tenant_id: int, refs: Sequence[str]) -> list[Record]:
    if not refs:
        return []
    return records(conn, select(table).where(table.c.tenant_id == tenant_id, table.c.ref.in_(refs)))


def rows_of_orders(
    conn: Connection, table: Table, tenant_id: int, order_refs: Iterable[str]
) -> dict[str, list[Record]]:
    """The rows of many orders (items, people) in one statement, by order, oldest first within each: a batch
    chunk reads those of every stored order it changes at once."""
    wanted = sorted(set(order_refs))
    found: dict[str, list[Record]] = {ref: [] for ref in wanted}
    if wanted:
        stmt = select(table).where(table.c.tenant_id == tenant_id, table.c.order_ref.in_(wanted))
        for row in records(conn, stmt.order_by(table.c.created_at, table.c.ref)):
            found[row["orderRef"]].append(row)
    return found


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


def delete_rows(conn: Connection, table: Table, tenant_id: int, refs: Sequence[str]) -> None:
    if refs:
        conn.execute(_delete(table), [{"_tenant": tenant_id, "_ref": ref} for ref in refs])


def records(conn: Connection, stmt: Select[Any]) -> list[Record]:
    return [to_record(row) for row in conn.execute(stmt).mappings()]


def page(
    conn: Connection, table: Table, stmt: Select[Any], sort: Sequence[SortTerm], offset: int, limit: int
) -> tuple[int, list[Record]]:
    """One page of a filtered select and the total behind it; ties fall back to `ref` so paging is stable.
    A page that ends short of its limit tells the total itself, so only a full page (or an empty one past
    the first) costs a second statement to count: most pages, and an order's embedded lists, are short."""
    order = [table.c[to_column(name)].desc() if desc else table.c[to_column(name)].asc() for name, desc in sort]
    rows = records(conn, stmt.order_by(*order, table.c.ref).offset(offset).limit(limit))
    if len(rows) < limit and (rows or offset == 0):
        return offset + len(rows), rows
    return conn.execute(select(func.count()).select_from(stmt.subquery())).scalar_one(), rows


R = TypeVar("R", bound=Mapping[str, Any])


class Rows(Generic[R]):
    """The stored records of one kind (orders, guests, sessions, ...), by tenant and ref: what the core
    asks of the store for that kind. The core names the kind, never its table, so how a kind is stored
    (its table, its keys, a faster write path) is the store's business alone."""

    def __init__(self, table: Table) -> None:
        self._table = table

    def get(self, conn: Connection, tenant_id: int, ref: str) -> R | None:
        return cast("R | None", get_row(conn, self._table, tenant_id, ref))

    def get_many(self, conn: Connection, tenant_id: int, refs: Sequence[str]) -> list[R]:
        return cast("list[R]", get_rows(conn, self._table, tenant_id, refs))

    def insert(self, conn: Connection, record: Mapping[str, Any]) -> None:
        insert_row(conn, self._table, record)

    def insert_many(self, conn: Connection, records: Sequence[Mapping[str, Any]]) -> None:
        insert_rows(conn, self._table, records)

    def update(self, conn: Connection, tenant_id: int, ref: str, values: Mapping[str, Any]) -> None:
        update_row(conn, self._table, tenant_id, ref, values)

    def update_many(self, conn: Connection, tenant_id: int, changes: Mapping[str, Mapping[str, Any]]) -> None:
        update_rows(conn, self._table, tenant_id, changes)

    def modify(self, conn: Connection, record: R, changes: Mapping[str, Any], now: datetime) -> R:
        return cast(R, modify(conn, self._table, dict(record), changes, now))

    def delete(self, conn: Connection, tenant_id: int, ref: str) -> None:
        delete_row(conn, self._table, tenant_id, ref)

    def delete_many(self, conn: Connection, tenant_id: int, refs: Sequence[str]) -> None:
        delete_rows(conn, self._table, tenant_id, refs)
