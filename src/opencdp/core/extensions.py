"""Data extensions: flat key/value groups on orders, order items and guests (rest-api.md §5.7, §6.7)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from opencdp.core.errors import (
    ApiError,
    Conflict,
    ExtensionRuleError,
    InvalidField,
    MissingField,
    NeedsDatabase,
    NotFound,
)
from opencdp.core.fields import IDENTITY_FIELDS, Mode
from opencdp.core.tenants import Tenant
from opencdp.core.values import uuid5
from opencdp.store import extensions as extension_store
from opencdp.store.database import Memory, memory_of
from opencdp.store.extensions import EXTENSIONS
from opencdp.store.rows import Record

MAX_PAIRS = 100
MAX_KEY_LENGTH = 200
KEY = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
ORDER_NAMES = ("ext",)
GUEST_NAMES = ("ext", "ext1", "ext2", "ext3", "ext4", "ext5")


@dataclass(frozen=True)
class Owner:
    """What an extension hangs on: its type (for names and key types), its ref, and its words in messages."""

    kind: str  # "order", "orderItem", "guest"
    ref: str
    label: str  # "Order", "Order item", "Guest"


ENVELOPE = IDENTITY_FIELDS | {"name", "key", "order", "orderItem", "guest"}


class IncorrectType(ExtensionRuleError):
    """A value of another type than the one its key was first stored with."""

    def __init__(self, key: str) -> None:
        super().__init__(f"Attribute {key} is invalid (Incorrect data type).", "Incorrect data type", key)
        self.key = key


def check_name(owner_kind: str, name: str | None) -> None:
    names = GUEST_NAMES if owner_kind == "guest" else ORDER_NAMES
    if name is not None and name not in names:
        allowed = ",".join(names)
        raise ApiError(
            f"name: value must be one of {allowed}",
            f"Attribute name is invalid (value must be one of {allowed}).",
        )


def pick_name(owner_kind: str, path_name: str | None, body: Mapping[str, Any]) -> str:
    """The extension named in the path, the body, or both (then they must agree)."""
    body_name = body.get("name")
    if body_name is not None and not isinstance(body_name, str):
        raise InvalidField("name")
    if path_name is not None and body_name not in (None, path_name):
        check_name(owner_kind, path_name)
        raise InvalidField("name")
    name = path_name or body_name
    if not name:
        raise MissingField("name")
    check_name(owner_kind, name)
    return name


def parse_pairs(body: Mapping[str, Any], mode: Mode) -> dict[str, Any]:
    """The custom pairs of a body; on PATCH a None value means "remove this key"."""
    if body.get("key") not in (None, "default"):
        raise InvalidField("key")
    pairs: dict[str, Any] = {}
    for key, value in body.items():
        if key in ENVELOPE:
            continue
        if not KEY.match(key) or len(key) > MAX_KEY_LENGTH:
            raise InvalidField(key)
        if value is None:
            if mode is not Mode.PATCH:
                raise MissingField(key)
        elif not isinstance(value, str | int | float | bool) or (isinstance(value, str) and "\x00" in value):
            raise InvalidField(key)
        pairs[key] = value
    return pairs


def value_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    return "number" if isinstance(value, int | float) else "string"


def get(conn: Connection, tenant: Tenant, owner: Owner, name: str) -> Record:
    check_name(owner.kind, name)
    found = extension_store.get(conn, tenant.id, owner.ref, name)
    if found is None:
        raise NotFound(
            f"Data extension {name} for {owner.label} ref {owner.ref} and client key {tenant.client_key} "
            "was not found for v2.1"
        )
    return found


def list_of(conn: Connection, tenant: Tenant, owner: Owner) -> list[Record]:
    return of_owner_ref(conn, tenant, owner.ref)


def of_owner_ref(conn: Connection, tenant: Tenant, owner_ref: str) -> list[Record]:
    """Every group an owner holds, whatever kind of owner it is (the console shows an order's and its
    items' together)."""
    return extension_store.of_owner(conn, tenant.id, owner_ref)


def create(
    conn: Connection,
    tenant: Tenant,
    owner: Owner,
    path_name: str | None,
    body: Mapping[str, Any],
    now: datetime,
    *,
    new_owner: bool = False,
) -> Record:
    """A new extension; `new_owner` (an owner created in this transaction) skips the lookup for one."""
    name = pick_name(owner.kind, path_name, body)
    pairs = parse_pairs(body, Mode.CREATE)
    if not new_owner and extension_store.get(conn, tenant.id, owner.ref, name) is not None:
        raise Conflict(
            f"Data extension {name} already exists.",
            f"Data extension {name} for {owner.label} ref {owner.ref} already exists.",
        )
    _check_rules(conn, tenant, owner, name, pairs)
    record = extension_record(tenant, owner, name, pairs, now)
    EXTENSIONS.insert(conn, record)
    return record


def extension_record(tenant: Tenant, owner: Owner, name: str, pairs: Mapping[str, Any], now: datetime) -> Record:
    return {
        "ref": extension_ref(owner.ref, name),
        "tenantId": tenant.id,
        "ownerType": owner.kind,
        "ownerRef": owner.ref,
        "name": name,
        "data": pairs,
        "createdAt": now,
        "modifiedAt": now,
    }


def create_for_new_owners(conn: Connection, tenant: Tenant, groups: Sequence[tuple[Owner, Mapping[str, Any]]],
                          now: datetime) -> None:  # fmt: skip
    """The `ext` extensions of owners created in this transaction, each checked, in one statement."""
    records = []
    for owner, body in groups:
        pairs = parse_pairs(body, Mode.CREATE)
        _check_rules(conn, tenant, owner, "ext", pairs)
        records.append(extension_record(tenant, owner, "ext", pairs, now))
    EXTENSIONS.insert_many(conn, records)


def write(
    conn: Connection,
    tenant: Tenant,
    owner: Owner,
    name: str,
    body: Mapping[str, Any],
    mode: Mode,
    now: datetime,
    *,
    current: Record | None = None,
) -> Record:
    """PUT replaces every pair; PATCH sets the keys sent and removes those sent as null. `current`: the
    stored extension, when the caller has just read it."""
    current = current or get(conn, tenant, owner, name)
    pairs = parse_pairs(body, mode)
    if mode is Mode.PATCH:
        data = {**current["data"], **pairs}
        data = {key: value for key, value in data.items() if value is not None}
    else:
        data = pairs
    _check_rules(conn, tenant, owner, name, data, changed=pairs)
    return EXTENSIONS.modify(conn, current, {"data": data}, now)


def delete(conn: Connection, tenant: Tenant, owner: Owner, name: str) -> None:
    current = get(conn, tenant, owner, name)
    EXTENSIONS.delete(conn, tenant.id, current["ref"])


def delete_fields(
    conn: Connection, tenant: Tenant, owner: Owner, name: str, keys: Iterable[str] | None, now: datetime
) -> Record:
    """Remove the listed keys, or every pair when none are listed; the extension itself stays."""
    current = get(conn, tenant, owner, name)
    doomed = set(keys) if keys else set(current["data"])
    data = {key: value for key, value in current["data"].items() if key not in doomed}
    return EXTENSIONS.modify(conn, current, {"data": data}, now)


def extension_ref(owner_ref: str, name: str) -> str:
    """Stable across delete and re-create: UUID v5 of the parent ref and the extension's name."""
    return uuid5(owner_ref, name)


def _check_rules(
    conn: Connection,
    tenant: Tenant,
    owner: Owner,
    name: str,
    data: Mapping[str, Any],
    changed: Mapping[str, Any] | None = None,
) -> None:
    others = extension_store.of_owner(conn, tenant.id, owner.ref) if owner.kind == "guest" else []
    check_beside(name, data, {other["name"]: other["data"] for other in others})
    written = {key: value for key, value in (data if changed is None else changed).items() if value is not None}
    check_types(conn, tenant, owner.kind, written)


def check_beside(name: str, data: Mapping[str, Any], others: Mapping[str, Mapping[str, Any]]) -> None:
    """The rules of a group's pairs beside the owner's other groups (by name, in name order): a guest's
    key lives in one of its groups only. Orders and items have one group, so `others` is empty."""
    if len(data) > MAX_PAIRS:
        raise ExtensionRuleError(
            f"Data extension {name} may hold at most {MAX_PAIRS} attributes.", f"at most {MAX_PAIRS} attributes"
        )
    for other, pairs in others.items():
        if other != name:
            clash = next((key for key in data if key in pairs), None)
            if clash is not None:
                raise ExtensionRuleError(
                    f"Attribute {clash} already exists in data extension {other}.",
                    f"already exists in data extension {other}",
                    clash,
                )


def check_types(conn: Connection | Memory, tenant: Tenant, owner_kind: str, pairs: Mapping[str, Any]) -> None:
    """The first type stored for a key, per tenant and owner kind, is the only type it may ever hold.

    Given the database's `Memory` instead of a connection, the check is decided from the types this process
    knows, or raises `NeedsDatabase` when it knows too little: a key seen first is claimed in a write."""
    wanted = types_of(pairs)
    known = extension_store.known_key_types(memory_of(conn), tenant.id, owner_kind, wanted)
    if len(known) < len(wanted):
        if isinstance(conn, Memory):
            raise NeedsDatabase
        known = extension_store.key_types(conn, tenant.id, owner_kind, wanted)
        fresh = {key: kind for key, kind in wanted.items() if key not in known}
        if fresh:
            extension_store.claim_key_types(conn, tenant.id, owner_kind, fresh)
            known.update(extension_store.key_types(conn, tenant.id, owner_kind, fresh))
    clash = first_clash(wanted, known)
    if clash is not None:
        raise IncorrectType(clash)


def types_of(pairs: Mapping[str, Any]) -> dict[str, str]:
    return {key: value_type(value) for key, value in pairs.items()}


def first_clash(wanted: Mapping[str, str], known: Mapping[str, str]) -> str | None:
    """The first key whose value has another type than the one the key holds."""
    return next((key for key, kind in wanted.items() if known[key] != kind), None)
