"""Purging batches after the retention period: the batch, its files, its failures, old registrations."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from opencdp.store import batches as batch_store
from opencdp.store.files import FileStore, batch_key


def purge(conn: Connection, files: FileStore, cutoff: datetime, limit: int = 500) -> int:
    """Forget batches created before the cutoff (then 404) and registrations applied before it."""
    old = batch_store.created_before(conn, cutoff, limit)
    for batch in old:
        for kind in ("incoming", "uploads", "logs"):
            files.delete(batch_key(kind, batch["tenantId"], batch["ref"]))
    batch_store.delete_batches(conn, [(batch["tenantId"], batch["ref"]) for batch in old])
    batch_store.forget_registrations(conn, cutoff)
    return len(old)
