"""Tenants and their API tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from opencdp.store.rows import Record, records, to_columns, to_record
from opencdp.store.tables import api_tokens, tenants


def insert_tenant(conn: Connection, values: dict[str, Any]) -> int:
    result = conn.execute(insert(tenants).values(to_columns(values)).returning(tenants.c.id))
    return int(result.scalar_one())


def find_by_client_key(conn: Connection, client_key: str) -> Record | None:
    found = records(conn, select(tenants).where(tenants.c.client_key == client_key))
    return found[0] if found else None


def find_by_name(conn: Connection, name: str) -> Record | None:
    found = records(conn, select(tenants).where(tenants.c.name == name))
    return found[0] if found else None


def list_tenants(conn: Connection) -> list[Record]:
    return records(conn, select(tenants).order_by(tenants.c.id))


def update_tenant(conn: Connection, tenant_id: int, values: dict[str, Any]) -> None:
    conn.execute(update(tenants).where(tenants.c.id == tenant_id).values(to_columns(values)))


def insert_token(conn: Connection, tenant_id: int, token_hash: str, label: str, now: datetime) -> int:
    stmt = insert(api_tokens).values(tenant_id=tenant_id, token_hash=token_hash, label=label, created_at=now)
    return int(conn.execute(stmt.returning(api_tokens.c.id)).scalar_one())


def active_token_hashes(conn: Connection, tenant_id: int) -> list[str]:
    stmt = select(api_tokens.c.token_hash).where(api_tokens.c.tenant_id == tenant_id, api_tokens.c.revoked_at.is_(None))
    return list(conn.execute(stmt).scalars())


def list_tokens(conn: Connection, tenant_id: int) -> list[Record]:
    return records(conn, select(api_tokens).where(api_tokens.c.tenant_id == tenant_id).order_by(api_tokens.c.id))


def revoke_token(conn: Connection, tenant_id: int, token_id: int, now: datetime) -> bool:
    stmt = (
        update(api_tokens)
        .where(
            api_tokens.c.tenant_id == tenant_id,
            api_tokens.c.id == token_id,
            api_tokens.c.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    return conn.execute(stmt).rowcount == 1


_BY_ID = select(tenants).where(tenants.c.id == bindparam("tenant_id"))


def find_by_id(conn: Connection, tenant_id: int) -> Record:
    return to_record(conn.execute(_BY_ID, {"tenant_id": tenant_id}).mappings().one())
