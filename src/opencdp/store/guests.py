"""Guests and the identity lookup table beside them."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence, Set
from datetime import datetime

from sqlalchemy import Connection, Select, bindparam, case, delete, func, insert, or_, select, update

from opencdp.store.records import Guest
from opencdp.store.rows import Record, Rows, SortTerm, insert_rows, page, records
from opencdp.store.tables import guest_keys, guest_merges, guests, order_people, orders

GUESTS: Rows[Guest] = Rows(guests)  # Guests, live and merged.

Key = tuple[str, str, datetime | None]  # (provider, normalised id, expiry)


def digest(provider: str, key: str) -> str:
    return hashlib.sha256(f"{provider}\x1f{key}".encode()).hexdigest()


Holding = tuple[str, datetime, datetime | None]  # (a live guest's ref, when it was created, its key's expiry)

_HOLDINGS = (
    select(guests.c.ref, guests.c.created_at, guest_keys.c.expires_at)
    .join(guest_keys, guest_keys.c.guest_ref == guests.c.ref)
    .where(
        guest_keys.c.tenant_id == bindparam("tenant_id"),
        guest_keys.c.key == bindparam("key"),
        guests.c.merged_into.is_(None),
    )
)


def merged_into(conn: Connection, tenant_id: int, refs: Iterable[str]) -> dict[str, str | None]:
    """Of the guests that exist among `refs`: the guest each was merged into, or None for a live one."""
    refs = sorted(set(refs))
    if not refs:
        return {}
    stmt = select(guests.c.ref, guests.c.merged_into).where(guests.c.tenant_id == tenant_id, guests.c.ref.in_(refs))
    return {ref: into for ref, into in conn.execute(stmt)}


def holdings(conn: Connection, tenant_id: int, provider: str, key: str) -> list[Holding]:
    """Every live guest holding the key, expired or not, with what the identity rules weigh
    (`core.holders`): when the guest was created and when its key expires."""
    rows = conn.execute(_HOLDINGS, {"tenant_id": tenant_id, "key": digest(provider, key)})
    return [(ref, created, expires) for ref, created, expires in rows]


def holders_of_keys(conn: Connection, tenant_id: int, digests: Iterable[str]) -> list[tuple[str, str, datetime | None]]:
    """(key digest, guest ref, expiry) of every guest holding any of the keys, expired or not, retired or
    live: the caller reads the guests anyway. No join, so that no plan (a new table has no statistics
    yet) can turn it into a scan per guest."""
    wanted = sorted(set(digests))
    if not wanted:
        return []
    stmt = select(guest_keys.c.key, guest_keys.c.guest_ref, guest_keys.c.expires_at).where(
        guest_keys.c.tenant_id == tenant_id, guest_keys.c.key.in_(wanted)
    )
    return [(key, ref, expires) for key, ref, expires in conn.execute(stmt)]


def replace_keys_of(conn: Connection, tenant_id: int, keys: Mapping[str, Iterable[Key]], *, fresh: Set[str]) -> None:
    """The keys of several guests at once; the `fresh` ones (just created) hold none to delete first."""
    stale = [ref for ref in keys if ref not in fresh]
    if stale:
        conn.execute(delete(guest_keys).where(guest_keys.c.guest_ref.in_(stale)))
    rows: dict[tuple[str, str], dict[str, object]] = {}
    for guest_ref, held in keys.items():
        for provider, key, expiry in held:
            hashed = digest(provider, key)
            rows[guest_ref, hashed] = {
                "tenant_id": tenant_id,
                "guest_ref": guest_ref,
                "key": hashed,
                "expires_at": expiry,
            }
    insert_rows(conn, guest_keys, list(rows.values()))


def replace_keys(conn: Connection, tenant_id: int, guest_ref: str, keys: Iterable[Key]) -> None:
    replace_keys_of(conn, tenant_id, {guest_ref: keys}, fresh=frozenset())


def insert_keys(conn: Connection, tenant_id: int, guest_ref: str, keys: Iterable[Key]) -> None:
    """The keys of a guest that holds none yet (one just created)."""
    replace_keys_of(conn, tenant_id, {guest_ref: keys}, fresh={guest_ref})


def page_guests(
    conn: Connection,
    tenant_id: int,
    keys: list[tuple[str, str]],
    in_orders: list[Select[tuple[str]]],
    sort: Sequence[SortTerm],
    offset: int,
    limit: int,
) -> tuple[int, list[Record]]:
    """Live guests holding every (provider, key) given and playing a role in each set of orders given."""
    stmt = select(guests).where(guests.c.tenant_id == tenant_id, guests.c.merged_into.is_(None))
    for provider, key in keys:
        held = select(guest_keys.c.guest_ref).where(
            guest_keys.c.tenant_id == tenant_id, guest_keys.c.key == digest(provider, key)
        )
        stmt = stmt.where(guests.c.ref.in_(held))
    for order_refs in in_orders:
        people = select(order_people.c.guest_ref).where(
            order_people.c.tenant_id == tenant_id, order_people.c.order_ref.in_(order_refs)
        )
        stmt = stmt.where(guests.c.ref.in_(people))
    return page(conn, guests, stmt, sort, offset, limit)


def orders_with_reference(tenant_id: int, reference_id: str) -> Select[tuple[str]]:
    return select(orders.c.ref).where(orders.c.tenant_id == tenant_id, orders.c.reference_id == reference_id)


def orders_with_ref(tenant_id: int, order_ref: str) -> Select[tuple[str]]:
    return select(orders.c.ref).where(orders.c.tenant_id == tenant_id, orders.c.ref == order_ref)


def contact_order_refs(conn: Connection, tenant_id: int, guest_ref: str) -> list[str]:
    stmt = select(order_people.c.order_ref).where(
        order_people.c.tenant_id == tenant_id,
        order_people.c.guest_ref == guest_ref,
        order_people.c.role == "contact",
    )
    return list(conn.execute(stmt).scalars())


def delete_roles(conn: Connection, tenant_id: int, guest_ref: str) -> None:
    conn.execute(
        delete(order_people).where(order_people.c.tenant_id == tenant_id, order_people.c.guest_ref == guest_ref)
    )


def move_roles(conn: Connection, tenant_id: int, from_ref: str, to_ref: str) -> None:
    """Contacts and consumers of the retired guest now name the survivor."""
    conn.execute(
        update(order_people)
        .where(order_people.c.tenant_id == tenant_id, order_people.c.guest_ref == from_ref)
        .values(guest_ref=to_ref)
    )


def retired_into(conn: Connection, tenant_id: int, survivor_ref: str) -> list[str]:
    stmt = select(guests.c.ref).where(guests.c.tenant_id == tenant_id, guests.c.merged_into == survivor_ref)
    return list(conn.execute(stmt).scalars())


def repoint_retired(conn: Connection, tenant_id: int, from_ref: str, to_ref: str) -> None:
    """Guests retired into `from_ref` point straight at `to_ref`, so every alias is one hop from a live guest."""
    conn.execute(
        update(guests)
        .where(guests.c.tenant_id == tenant_id, guests.c.merged_into == from_ref)
        .values(merged_into=to_ref)
    )


def insert_merge(conn: Connection, values: dict[str, object]) -> None:
    conn.execute(insert(guest_merges), values)


def merges_of(conn: Connection, tenant_id: int, guest_ref: str) -> list[Record]:
    stmt = (
        select(guest_merges)
        .where(
            guest_merges.c.tenant_id == tenant_id,
            or_(guest_merges.c.survivor_ref == guest_ref, guest_merges.c.retired_ref == guest_ref),
        )
        .order_by(guest_merges.c.merged_at, guest_merges.c.id)
    )
    return records(conn, stmt)


def delete_merges(conn: Connection, tenant_id: int, guest_refs: Sequence[str]) -> None:
    conn.execute(
        delete(guest_merges).where(
            guest_merges.c.tenant_id == tenant_id,
            or_(guest_merges.c.survivor_ref.in_(guest_refs), guest_merges.c.retired_ref.in_(guest_refs)),
        )
    )


_LAST = bindparam("_last", type_=guests.c.last_seen.type)
_SEEN = (
    update(guests)
    .where(guests.c.tenant_id == bindparam("_tenant"), guests.c.ref == bindparam("_ref"))
    .values(
        last_seen=case(
            (or_(guests.c.last_seen.is_(None), guests.c.last_seen < _LAST), _LAST), else_=guests.c.last_seen
        ),
        first_seen=func.coalesce(guests.c.first_seen, bindparam("_first", type_=guests.c.first_seen.type)),
    )
)


def seen(conn: Connection, tenant_id: int, times: Mapping[str, tuple[datetime, datetime]]) -> None:
    """Guests seen by applied events, each with the first and last time: a guest's last seen time only
    moves forward, its first is set once. One statement, built once, for them all."""
    if times:
        conn.execute(
            _SEEN,
            [
                {"_tenant": tenant_id, "_ref": ref, "_first": first, "_last": last}
                for ref, (first, last) in times.items()
            ],
        )


def unlink_roles(conn: Connection, tenant_id: int, guest_refs: Sequence[str]) -> None:
    """A guest `delete` (not gdpr) keeps its orders and consumer records, no longer linked to anyone."""
    conn.execute(
        update(order_people)
        .where(order_people.c.tenant_id == tenant_id, order_people.c.guest_ref.in_(guest_refs))
        .values(guest_ref=None)
    )
