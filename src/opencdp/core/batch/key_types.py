"""The type each extension key holds, for a run of batch records decided in memory.

`extensions.check_types` asks the database for each group; a run asks once for every key its records
send and answers the rest from memory, keeping a type a record gives a new key only if the record is
applied, as its savepoint would.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection

from opencdp.core import extensions
from opencdp.core.tenants import Tenant
from opencdp.store import extensions as extension_store


class KeyTypesChanged(Exception):
    """Another writer gave an extension key its first type while the chunk was deciding: apply one by one."""


class KeyTypes:
    """The type each extension key holds, read once for the run; keys a record gives their first type are
    kept only if the record is applied, as a savepoint would keep them."""

    def __init__(self, conn: Connection, tenant: Tenant, wanted: Mapping[str, set[str]]) -> None:
        self.tenant = tenant
        self.known = {kind: extension_store.key_types(conn, tenant.id, kind, keys) for kind, keys in wanted.items()}
        self.claimed: dict[str, dict[str, str]] = {}

    def clash(self, kind: str, pairs: Mapping[str, Any], fresh: dict[str, dict[str, str]]) -> str | None:
        """`extensions.check_types` in memory: unknown keys take the type sent, then every key is compared."""
        wanted = extensions.types_of(pairs)
        known, mine = self.known.setdefault(kind, {}), fresh.setdefault(kind, {})
        for key, kind_sent in wanted.items():
            if key not in known:
                mine.setdefault(key, kind_sent)
        return extensions.first_clash(wanted, {**known, **mine})

    def keep(self, fresh: Mapping[str, Mapping[str, str]]) -> None:
        for kind, types in fresh.items():
            self.known[kind].update(types)
            self.claimed.setdefault(kind, {}).update(types)

    def write(self, conn: Connection) -> None:
        for kind, types in self.claimed.items():
            extension_store.claim_key_types(conn, self.tenant.id, kind, types)
            if extension_store.key_types(conn, self.tenant.id, kind, types) != types:
                raise KeyTypesChanged
