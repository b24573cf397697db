"""Export records (segments-exports.md §4.2): one per guest, the same content as NDJSON, CSV or Parquet.

A record is first built as the NDJSON structure (a dict); CSV flattens it into cells by the column list
of its definition, and Parquet writes it into typed columns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection

from opencdp.store import exports as export_store
from opencdp.store.rows import Record

LIST_FIELDS = ("emails", "phoneNumbers", "street")


@dataclass(frozen=True)
class Shape:
    """What a definition asks each record to hold."""

    guest: tuple[str, ...]
    identifiers: tuple[str, ...]
    extensions: tuple[tuple[str, str], ...]
    orders: Mapping[str, Any] | None

    @classmethod
    def of(cls, output: Mapping[str, Any]) -> Shape:
        pairs = tuple(tuple(pair.split(".", 1)) for pair in output.get("extensions") or ())
        return cls(tuple(output.get("guest") or ()), tuple(output.get("identifiers") or ()), pairs,
                   output.get("orders"))  # fmt: skip


def guest_value(guest: Record, field: str) -> Any:
    """A guest field as records show it (the store reads timestamps already in wire form)."""
    if field == "email":
        return (guest.get("emails") or [None])[0]
    value = guest.get(field)
    if field in LIST_FIELDS:
        return list(value or [])
    return value


def fetch(conn: Connection, tenant_id: int, refs: Sequence[str], shape: Shape) -> dict[str, Record]:
    """The records of a chunk of guests, keyed by ref; a guest deleted since the build is absent."""
    fields = [*shape.guest, "identifiers"] if shape.identifiers else list(shape.guest)
    found = export_store.guests_by_ref(conn, tenant_id, refs, fields)
    ext = export_store.extension_data(conn, tenant_id, list(found)) if shape.extensions else {}
    orders_of: dict[str, list[Record]] = {}
    if shape.orders is not None and found:
        for guest_ref, order in export_store.orders_as_json(conn, tenant_id, list(found), shape.orders):
            orders_of.setdefault(guest_ref, []).append(orjson.loads(order))
    return {ref: build(guest, shape, orders_of.get(ref, []), ext) for ref, guest in found.items()}


def build(guest: Record, shape: Shape, orders: list[Record], ext: Mapping[tuple[str, str], Any]) -> Record:
    record: Record = {"ref": guest["ref"]}
    for field in shape.guest:
        record[field] = guest_value(guest, field)
    if shape.identifiers:
        record["identifiers"] = {provider: [] for provider in shape.identifiers}
        for identifier in guest.get("identifiers") or ():
            if identifier["provider"] in record["identifiers"]:
                record["identifiers"][identifier["provider"]].append(identifier["id"])
    if shape.extensions:
        groups: dict[str, dict[str, Any]] = {}
        for group, key in shape.extensions:
            groups.setdefault(group, {})[key] = (ext.get((guest["ref"], group)) or {}).get(key)
        record["extensions"] = groups
    if shape.orders is not None:
        record["orders"] = orders  # assembled by the database: fields, ext if asked, items
    return record


def gone(ref: str) -> Record:
    """A remove record of a guest deleted since: only its ref."""
    return {"ref": ref}


# --- CSV ----------------------------------------------------------------------------------------------


def csv_columns(shape: Shape) -> list[str]:
    columns = ["ref", *shape.guest]
    columns += [f"identifiers.{provider}" for provider in shape.identifiers]
    columns += [f"{group}.{key}" for group, key in shape.extensions]
    if shape.orders is not None:
        for k in range(1, shape.orders["limit"] + 1):
            columns += [f"order{k}.{field}" for field in shape.orders["fields"]]
            if shape.orders["extensions"]:
                columns.append(f"order{k}.ext")
            columns.append(f"order{k}.items")
    return columns


def csv_cells(record: Record, shape: Shape) -> list[Any]:
    """The record flattened to the CSV columns; lists and objects as JSON text, absent values empty."""
    cells: list[Any] = [record["ref"], *(record.get(field) for field in shape.guest)]
    identifiers = record.get("identifiers") or {}
    cells += [(identifiers.get(provider) or [None])[-1] for provider in shape.identifiers]
    extensions = record.get("extensions") or {}
    cells += [(extensions.get(group) or {}).get(key) for group, key in shape.extensions]
    if shape.orders is not None:
        orders = record.get("orders") or []
        for k in range(shape.orders["limit"]):
            order = orders[k] if k < len(orders) else None
            cells += [order.get(field) if order else None for field in shape.orders["fields"]]
            if shape.orders["extensions"]:
                cells.append(order["ext"] if order else None)
            cells.append(order["items"] if order else None)
    return cells


def csv_line(cells: Sequence[Any], delimiter: str, quote_all: bool) -> bytes:
    """One RFC 4180 row ending in LF.

    Written by hand because the standard csv module, with LF as terminator, leaves a lone CR unquoted,
    and §4.2 asks for cells holding CR to be quoted.
    """
    texts = []
    for cell in cells:
        text = _cell_text(cell)
        if quote_all or any(c in text for c in (delimiter, '"', "\r", "\n")):
            text = '"' + text.replace('"', '""') + '"'
        texts.append(text)
    return (delimiter.join(texts) + "\n").encode()


def _cell_text(cell: Any) -> str:
    if cell is None:
        return ""
    if isinstance(cell, bool):
        return "true" if cell else "false"
    if isinstance(cell, list | dict):
        return orjson.dumps(cell).decode()
    return str(cell)
