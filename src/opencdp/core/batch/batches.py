"""Allocating batches, receiving their files, reporting their status (batch-api.md §2, §3)."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, BinaryIO

from sqlalchemy import Connection

from opencdp.core.errors import ApiError
from opencdp.core.fields import parse_ref
from opencdp.core.tenants import Tenant
from opencdp.core.values import utcnow
from opencdp.store import batches as batch_store
from opencdp.store import tenants as tenant_store
from opencdp.store.database import Database
from opencdp.store.files import FileStore, batch_key, chunks
from opencdp.store.rows import Record

STATUSES = ("uploading", "file_uploaded", "processing", "success", "corrupted", "error")
FINAL = frozenset({"success", "corrupted", "error"})
_HEX = re.compile(r"^[0-9a-fA-F]{32}$")


def batch_ref(raw: Any) -> str | None:
    """Any UUID version, compared lowercase; `parse_ref` only knows the canonical 36-character form."""
    return parse_ref(raw.lower()) if isinstance(raw, str) else None


def _invalid(name: str, why: str) -> ApiError:
    return ApiError(f"Attribute {name} is invalid ({why})", f"Attribute {name} is invalid ({why}).")


def parse_allocation(body: Mapping[str, Any], max_size: int) -> tuple[str, int]:
    for key in body:
        if key not in ("checksum", "size"):
            raise ApiError(f"Attribute {key} is not supported", f"Attribute {key} is not supported.")
    for key in ("checksum", "size"):
        if body.get(key) in (None, ""):
            raise ApiError(f"Attribute {key} is required", f"Attribute {key} is required.")
    checksum = body["checksum"]
    if not isinstance(checksum, str) or not _HEX.match(checksum):
        raise _invalid("checksum", "must be 32 hexadecimal characters")
    size = body["size"]
    if isinstance(size, str) and size.isdigit():
        size = int(size)
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise _invalid("size", "must be a positive integer")
    if size > max_size:
        raise ApiError(f"Batch file size exceeds the limit of {max_size} bytes")
    return checksum.lower(), size


def allocate(
    conn: Connection, tenant: Tenant, ref: str, checksum: str, size: int, now: datetime, location_expires: datetime
) -> tuple[Record, bool]:
    """A new batch (201), or the same one again (200); another checksum or size under the ref is a 409."""
    existing = batch_store.get(conn, tenant.id, ref)
    if existing is not None:
        if existing["checksum"] != checksum or existing["size"] != size:
            raise ApiError("Batch already exists with a different checksum or size", status=409)
        if existing["status"] == "uploading":
            batch_store.update_batch(conn, tenant.id, ref, {"locationExpires": location_expires})
            existing["locationExpires"] = location_expires
        return existing, False
    batch = {
        "tenantId": tenant.id,
        "ref": ref,
        "checksum": checksum,
        "size": size,
        "status": "uploading",
        "locationExpires": location_expires,
        "verified": False,
        "position": 0,
        "totalRecords": 0,
        "successfulRecords": 0,
        "failedRecords": 0,
        "skippedRecords": 0,
        "createdAt": now,
        "modifiedAt": now,
    }
    batch_store.insert_batch(conn, batch)
    return batch, True


def require(conn: Connection, tenant: Tenant, raw: str) -> Record:
    ref = batch_ref(raw)
    batch = batch_store.get(conn, tenant.id, ref) if ref else None
    if batch is None:
        raise ApiError("Batch not found", status=404)
    return batch


def receive(conn: Connection, tenant: Tenant, ref: str, size: int, md5_hex: str, now: datetime) -> tuple[Record, bool]:
    """Record an upload's outcome: size first, then MD5, against the allocation. Returns the batch and
    whether the file must be kept (False for a repeat of an accepted upload, or a corrupted one)."""
    batch = batch_store.get(conn, tenant.id, ref, locked=True)
    if batch is None:
        raise ApiError("Batch not found", status=404)
    if batch["status"] != "uploading":
        if batch["status"] != "corrupted" and batch["size"] == size and batch["checksum"] == md5_hex:
            return batch, False
        raise ApiError("Batch file already uploaded", status=409)
    changes: dict[str, Any]
    if batch["size"] != size:
        changes = {"status": "corrupted", "message": "Size does not match"}
    elif batch["checksum"] != md5_hex:
        changes = {"status": "corrupted", "message": "Checksum does not match"}
    else:
        changes = {"status": "file_uploaded", "uploadedAt": now}
    batch_store.update_batch(conn, tenant.id, ref, {**changes, "modifiedAt": now})
    return {**batch, **changes}, changes["status"] == "file_uploaded"


def take_upload(
    conn: Connection, files: FileStore, tenant: Tenant, ref: str, size: int, md5_hex: str, now: datetime
) -> Record:
    """A file received whole under the batch's `incoming` key, judged against the allocation (`receive`):
    moved to where the processor reads it, or dropped (a repeat, or corrupted). However it arrived, through
    OpenCDP's upload route or straight into the bucket, this is where it is judged."""
    batch, keep = receive(conn, tenant, ref, size, md5_hex, now)
    incoming = batch_key("incoming", tenant.id, ref)
    if keep:
        files.rename(incoming, batch_key("uploads", tenant.id, ref))
    else:
        files.delete(incoming)
    return batch


def receiving(files: FileStore, tenant_id: int, ref: str) -> AbstractContextManager[BinaryIO]:
    """Where OpenCDP's upload route writes a batch's bytes as they come, before `take_upload` judges them."""
    return files.writer(batch_key("incoming", tenant_id, ref))


def drop_received(files: FileStore, tenant_id: int, ref: str) -> None:
    """Forget bytes received and not taken (refused, or the upload failed half-way)."""
    files.delete(batch_key("incoming", tenant_id, ref))


def log_chunks(files: FileStore, tenant_id: int, ref: str) -> Iterator[bytes] | None:
    """The batch's log as it is stored (gzipped NDJSON), chunk by chunk; None when it has none."""
    key = batch_key("logs", tenant_id, ref)
    return None if files.size(key) is None else chunks(files, key)


def arrived(files: FileStore, tenant_id: int, ref: str) -> tuple[int, str] | None:
    """The size and MD5 of a file put straight into the store for the batch, once it is there."""
    incoming = batch_key("incoming", tenant_id, ref)
    size = files.size(incoming)
    return None if size is None else (size, files.md5(incoming) or "")


def upload_link(files: FileStore, tenant_id: int, batch: Record, now: datetime) -> str | None:
    """A presigned PUT straight into the store that only the allocated bytes pass (their MD5 is signed
    in), valid as long as the allocation's location; None when the store takes no such uploads."""
    seconds = int((batch["locationExpires"] - now).total_seconds())
    md5 = base64.b64encode(bytes.fromhex(batch["checksum"])).decode()
    return files.upload_url(batch_key("incoming", tenant_id, batch["ref"]), md5, max(seconds, 1))


def discover_uploads(db: Database, files: FileStore, now: datetime, limit: int = 100) -> int:
    """Take the files clients have put straight into the store since the last look: a worker's part of
    presigned uploads, since the store tells nobody. The store is asked outside any transaction."""
    with db.read() as conn:
        waiting = batch_store.uploading(conn, now, limit)
    taken = 0
    for batch in waiting:
        found = arrived(files, batch["tenantId"], batch["ref"])
        if found is None:
            continue
        with db.write() as conn:
            tenant = Tenant.from_record(tenant_store.find_by_id(conn, batch["tenantId"]))
            take_upload(conn, files, tenant, batch["ref"], *found, utcnow())
        taken += 1
    return taken


def inspect_page(
    conn: Connection,
    tenant: Tenant,
    since: datetime,
    statuses: list[str],
    before: datetime | None,
    offset: int,
    limit: int,
) -> tuple[int, list[Record]]:
    return batch_store.page(conn, tenant.id, since, statuses, before, offset, limit)


def progress(batch: Record) -> dict[str, Any]:
    """How far a batch has been read: lines done of the file's lines, counted when its file was verified
    (null before that), so a client can show a percentage, a rate and an estimate of the time left."""
    total = batch.get("totalLines")
    done = total if batch["status"] in FINAL and total is not None else batch["position"]
    return {
        "ref": batch["ref"],
        "status": batch["status"],
        "lines": done,
        "totalLines": total,
        "percent": round(done / total * 100, 1) if total else (100.0 if batch["status"] in FINAL else None),
    }


def failures(conn: Connection, tenant: Tenant, ref: str, offset: int, limit: int) -> tuple[int, list[Record]]:
    """A page of the failed records with their line numbers (the first line is 1), which the log of
    batch-api.md §3.3 leaves out: its lines are exactly `{ref, code, message}`."""
    total, found = batch_store.failure_page(conn, tenant.id, ref, offset, limit)
    items = [{"line": f["line"] + 1, "ref": f["recordRef"], "code": f["code"], "message": f["message"]} for f in found]
    return total, items
