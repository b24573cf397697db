"""Guests and the identity lookup table beside them."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection, Select, delete, insert, or_, select

from opencdp.store.tables import guest_keys, guests

Key = tuple[str, str, datetime | None]  # (provider, normalised id, expiry)


def digest(provider: str, key: str) -> str:
    return hashlib.sha256(f"{provider}\x1f{key}".encode()).hexdigest()


def _live_holders(tenant_id: int, provider: str, key: str) -> Select[tuple[str]]:
    return (
        select(guests.c.ref)
        .join(guest_keys, guest_keys.c.guest_ref == guests.c.ref)
        .where(
            guest_keys.c.tenant_id == tenant_id,
            guest_keys.c.key == digest(provider, key),
            guests.c.merged_into.is_(None),
        )
    )


def find_holder(conn: Connection, tenant_id: int, provider: str, key: str, now: datetime) -> str | None:
    """The earliest-created live guest holding an unexpired key."""
    stmt = (
        _live_holders(tenant_id, provider, key)
        .where(or_(guest_keys.c.expires_at.is_(None), guest_keys.c.expires_at > now))
        .order_by(guests.c.created_at, guests.c.ref)
        .limit(1)
    )
    return conn.execute(stmt).scalar()


def holders(conn: Connection, tenant_id: int, provider: str, key: str) -> list[str]:
    """Every live guest holding the key, expired or not: an identifier is never handed to a second guest."""
    return list(conn.execute(_live_holders(tenant_id, provider, key)).scalars())


def replace_keys(conn: Connection, tenant_id: int, guest_ref: str, keys: Iterable[Key]) -> None:
    conn.execute(delete(guest_keys).where(guest_keys.c.guest_ref == guest_ref))
    rows: dict[str, dict[str, object]] = {}
    for provider, key, expiry in keys:
        hashed = digest(provider, key)
        rows[hashed] = {"tenant_id": tenant_id, "guest_ref": guest_ref, "key": hashed, "expires_at": expiry}
    if rows:
        conn.execute(insert(guest_keys), list(rows.values()))
