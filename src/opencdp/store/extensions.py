"""Data extensions of orders, order items and guests, and the per-tenant type of each key."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import Connection, bindparam, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from opencdp.store.database import Memory, memory_of, remembered
from opencdp.store.rows import Record, Rows, to_record
from opencdp.store.tables import extension_key_types, extensions

EXTENSIONS: Rows[Record] = Rows(extensions)  # Data extensions of orders, order items and guests.

_GET = select(extensions).where(
    extensions.c.tenant_id == bindparam("tenant_id"),
    extensions.c.owner_ref == bindparam("owner_ref"),
    extensions.c.name == bindparam("name"),
)


def get(conn: Connection, tenant_id: int, owner_ref: str, name: str) -> Record | None:
    row = conn.execute(_GET, {"tenant_id": tenant_id, "owner_ref": owner_ref, "name": name}).mappings().first()
    return to_record(row) if row else None


_OF_OWNER = (
    select(extensions)
    .where(extensions.c.tenant_id == bindparam("tenant_id"), extensions.c.owner_ref == bindparam("owner_ref"))
    .order_by(extensions.c.name)
)


def of_owner(conn: Connection, tenant_id: int, owner_ref: str) -> list[Record]:
    rows = conn.execute(_OF_OWNER, {"tenant_id": tenant_id, "owner_ref": owner_ref}).mappings()
    return [to_record(row) for row in rows]


def of_owners(conn: Connection, tenant_id: int, owner_refs: Iterable[str]) -> list[Record]:
    """The extensions of many owners, by owner and name."""
    refs = sorted(set(owner_refs))
    if not refs:
        return []
    stmt = (
        select(extensions)
        .where(extensions.c.tenant_id == tenant_id, extensions.c.owner_ref.in_(refs))
        .order_by(extensions.c.owner_ref, extensions.c.name)
    )
    return [to_record(row) for row in conn.execute(stmt).mappings()]


def delete_of_owners(conn: Connection, tenant_id: int, owner_refs: Iterable[str]) -> None:
    refs = list(owner_refs)
    if refs:
        conn.execute(delete(extensions).where(extensions.c.tenant_id == tenant_id, extensions.c.owner_ref.in_(refs)))


_KEY_TYPES = select(extension_key_types.c.key, extension_key_types.c.value_type).where(
    extension_key_types.c.tenant_id == bindparam("tenant_id"),
    extension_key_types.c.owner_type == bindparam("owner_type"),
    extension_key_types.c.key.in_(bindparam("keys", expanding=True)),
)


def key_types(conn: Connection, tenant_id: int, owner_type: str, keys: Iterable[str]) -> dict[str, str]:
    """The stored type of each key that has one. A key's type never changes once stored: this transaction
    remembers what it read (claims made in a savepoint are forgotten if it rolls back), and once it commits,
    so does the process (`known_key_types`)."""
    keys = list(keys)
    found = known_key_types(memory_of(conn), tenant_id, owner_type, keys)
    memo = remembered(conn, "key_types", lasting=True)
    found.update((key, memo[tenant_id, owner_type, key]) for key in keys if (tenant_id, owner_type, key) in memo)
    missing = [key for key in keys if key not in found]
    if missing:
        params = {"tenant_id": tenant_id, "owner_type": owner_type, "keys": missing}
        for key, value_type in conn.execute(_KEY_TYPES, params):
            found[key] = memo[tenant_id, owner_type, key] = value_type
    return found


def known_key_types(memory: Memory, tenant_id: int, owner_type: str, keys: Iterable[str]) -> dict[str, str]:
    """The types of the keys this process has seen committed; a key it has not may have one all the same."""
    known = memory.facts("key_types")
    return {key: known[tenant_id, owner_type, key] for key in keys if (tenant_id, owner_type, key) in known}


def claim_key_types(conn: Connection, tenant_id: int, owner_type: str, types: Mapping[str, str]) -> None:
    """Record the first type seen for each key; a concurrent first writer's type wins and is read back."""
    if not types:
        return
    rows = [
        {"tenant_id": tenant_id, "owner_type": owner_type, "key": key, "value_type": value_type}
        for key, value_type in types.items()
    ]
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    conn.execute(dialect_insert(extension_key_types).values(rows).on_conflict_do_nothing())


def move(conn: Connection, tenant_id: int, extension_ref: str, owner_ref: str, new_ref: str) -> None:
    """Hang an extension on another owner (its ref, derived from the owner, changes with it)."""
    conn.execute(
        update(extensions)
        .where(extensions.c.tenant_id == tenant_id, extensions.c.ref == extension_ref)
        .values(owner_ref=owner_ref, ref=new_ref)
    )


def all_key_types(conn: Connection, tenant_id: int) -> dict[str, dict[str, str]]:
    """Every key the tenant's extensions ever held, by owner type: {owner type: {key: value type}}."""
    stmt = select(extension_key_types).where(extension_key_types.c.tenant_id == tenant_id)
    found: dict[str, dict[str, str]] = {}
    for row in conn.execute(stmt).mappings():
        found.setdefault(row["owner_type"], {})[row["key"]] = row["value_type"]
    return found
