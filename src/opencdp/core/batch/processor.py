"""Processing uploaded batches: claim, check the file, apply its lines exactly once, finish with a log.

Progress is checkpointed in the same transaction as the records it covers (position, statistics,
failures, registrations), so a worker killed at any moment resumes where the last commit left off and
nothing is applied twice. The file is streamed: memory stays flat whatever its size.
"""

from __future__ import annotations

import gzip
import hashlib
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from sqlalchemy import Connection

from opencdp.core.batch.batches import batch_ref
from opencdp.core.batch.records import HANDLERS
from opencdp.core.batch.retention import purge
from opencdp.core.errors import ApiError
from opencdp.core.tenants import Tenant
from opencdp.core.values import utcnow
from opencdp.store import batches as store
from opencdp.store import tenants as tenant_store
from opencdp.store.database import Database, forget
from opencdp.store.files import FileStore
from opencdp.store.rows import Record

CHUNK = 64 * 1024
LINES_PER_COMMIT = 100
ENVELOPE = ("ref", "schema", "mode", "value")


@dataclass(frozen=True)
class Limits:
    uncompressed: int
    line: int
    lease_seconds: int
    retention_days: int = 30


class FileRejected(Exception):
    """The whole file is refused (§5.1): nothing is applied and the batch ends as `error`."""


def check_file(path: Path, limit: int) -> None:
    """Stream the file once through the decompressor: valid gzip, one member, not a bomb."""
    inflater = zlib.decompressobj(wbits=31)
    total = 0
    with path.open("rb") as raw:
        while chunk := raw.read(CHUNK):
            if inflater.eof:
                raise FileRejected("File must contain exactly one gzip member")
            try:
                total += len(inflater.decompress(chunk, 0))
                while inflater.unconsumed_tail:
                    total += len(inflater.decompress(inflater.unconsumed_tail, 0))
            except zlib.error:
                raise FileRejected("File is not a valid gzip file") from None
            if total > limit:
                raise FileRejected(f"Uncompressed size exceeds the limit of {limit} bytes")
            if inflater.eof and inflater.unused_data:
                raise FileRejected("File must contain exactly one gzip member")
    if not inflater.eof:
        raise FileRejected("File is not a valid gzip file")


def lines(stream: BinaryIO, limit: int) -> Iterator[bytes | None]:
    """Every line without its terminator; None for a line over the limit, which is skipped unread."""
    pending = b""
    oversize = False
    while True:
        chunk = stream.read(CHUNK)
        if not chunk:
            break
        pending += chunk
        while (end := pending.find(b"\n")) != -1:
            line, pending = pending[:end], pending[end + 1 :]
            yield None if oversize or len(line.rstrip(b"\r")) > limit else line.rstrip(b"\r")
            oversize = False
        if len(pending) > limit:
            oversize, pending = True, b""
    if pending or oversize:
        yield None if oversize or len(pending.rstrip(b"\r")) > limit else pending.rstrip(b"\r")


def apply_line(
    conn: Connection, tenant: Tenant, line: bytes | None, limit: int, now: datetime
) -> tuple[str, str, str, bool]:
    """One record: (code, message, ref for the log, skipped). Only 2xx codes leave effects behind."""
    if line is None:
        return "400", f"Line exceeds the maximum length of {limit} bytes", "null", False
    try:
        record = orjson.loads(line.removeprefix(b"\xef\xbb\xbf"))
    except orjson.JSONDecodeError:
        return "400", "Failed to parse import line", "null", False
    if not isinstance(record, dict):
        return "400", "Failed to parse import line", "null", False
    shown_ref = record["ref"] if isinstance(record.get("ref"), str) else "null"
    for key in record:
        if key not in ENVELOPE:
            return "400", f"Validation error: Attribute {key} is not supported", shown_ref, False
    ref = batch_ref(record.get("ref"))
    if ref is None:
        what = "is required" if record.get("ref") is None else "is invalid (must be a UUID)"
        return "400", f"Validation error: Attribute ref {what}", shown_ref, False
    for key in ("schema", "mode"):
        if not isinstance(record.get(key), str):
            return "400", f"Validation error: Attribute {key} is invalid (must be a string)", shown_ref, False
    digest = hashlib.sha256(line).hexdigest()
    if store.registered(conn, tenant.id, ref, digest):
        return "200", "", shown_ref, True
    handler = HANDLERS.get((record["schema"], record["mode"]))
    if handler is None:
        return "402", "Unsupported mode", shown_ref, False
    if not isinstance(record.get("value"), dict):
        what = "is required" if record.get("value") is None else "is invalid (must be an object)"
        return "400", f"Validation error: Attribute value {what}", shown_ref, False
    conn.exec_driver_sql("SAVEPOINT record")
    try:
        handler(conn, tenant, record["value"], now)
    except ApiError as error:
        conn.exec_driver_sql("ROLLBACK TO SAVEPOINT record")
        forget(conn)
        return str(error.status), error.message, shown_ref, False
    except Exception:  # an unexpected failure of one record: rolled back, logged, the file goes on
        conn.exec_driver_sql("ROLLBACK TO SAVEPOINT record")
        forget(conn)
        return "500", "Internal error", shown_ref, False
    finally:
        conn.exec_driver_sql("RELEASE SAVEPOINT record")
    store.register(conn, tenant.id, ref, digest, now)
    return "200", "", shown_ref, False


class Processor:
    """Works through uploaded batches; several processors (in one or many processes) may run at once."""

    def __init__(self, db: Database, files: FileStore, limits: Limits) -> None:
        self.db = db
        self.files = files
        self.limits = limits
        self.worker = f"worker-{uuid.uuid4().hex[:12]}"

    def run_available(self) -> int:
        """Purge what is past retention, then process batches until none is waiting; how many were finished."""
        with self.db.write() as conn:
            purge(conn, self.files, utcnow() - timedelta(days=self.limits.retention_days))
        done = 0
        while self.process_next():
            done += 1
        return done

    def process_next(self) -> bool:
        now = utcnow()
        with self.db.write() as conn:
            batch = store.claim(conn, self.worker, now, self._lease(now))
            if batch is None:
                return False
            if batch.get("startedAt") is None:
                store.update_batch(conn, batch["tenantId"], batch["ref"], {"startedAt": now, "modifiedAt": now})
                batch["startedAt"] = now
            tenant = Tenant.from_record(tenant_store.find_by_id(conn, batch["tenantId"]))
        path = self.files.path("uploads", tenant.id, batch["ref"])
        if not batch["verified"]:
            try:
                check_file(path, self.limits.uncompressed)
            except FileRejected as rejected:
                self._finish(tenant, batch, "error", str(rejected))
                return True
            with self.db.write() as conn:
                store.update_batch(conn, tenant.id, batch["ref"], {"verified": True})
        self._apply(tenant, batch, path)
        return True

    def _lease(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.limits.lease_seconds)

    def _apply(self, tenant: Tenant, batch: Record, path: Path) -> None:
        position = batch["position"]
        stats = {k: batch[k] for k in ("totalRecords", "successfulRecords", "failedRecords", "skippedRecords")}
        with gzip.open(path, "rb") as stream:
            pending: list[tuple[int, bytes | None]] = []
            for number, line in enumerate(lines(stream, self.limits.line)):
                if number < position:
                    continue
                pending.append((number, line))
                if len(pending) == LINES_PER_COMMIT:
                    position = self._commit(tenant, batch, pending, stats)
                    pending = []
            position = self._commit(tenant, batch, pending, stats)
        status = "error" if stats["failedRecords"] else "success"
        self._finish(tenant, {**batch, **stats, "position": position}, status, None)

    def _commit(
        self, tenant: Tenant, batch: Record, pending: list[tuple[int, bytes | None]], stats: dict[str, int]
    ) -> int:
        """Apply a run of lines and store the position reached with them, in one transaction."""
        now = utcnow()
        position = pending[-1][0] + 1 if pending else batch["position"]
        with self.db.write() as conn:
            for number, line in pending:
                if line is not None and not line.strip():
                    continue
                code, message, ref, skipped = apply_line(conn, tenant, line, self.limits.line, now)
                stats["totalRecords"] += 1
                if code == "200":
                    stats["successfulRecords"] += 1
                    stats["skippedRecords"] += int(skipped)
                else:
                    stats["failedRecords"] += 1
                    store.add_failure(conn, tenant.id, batch["ref"], number, ref, code, message)
            values: dict[str, Any] = {
                **stats,
                "position": position,
                "claimExpires": self._lease(now),
                "modifiedAt": now,
            }
            store.update_batch(conn, tenant.id, batch["ref"], values)
        batch["position"] = position
        return position

    def _finish(self, tenant: Tenant, batch: Record, status: str, message: str | None) -> None:
        """The final status, the log of failures (gzipped NDJSON) and the uploaded file's removal."""
        now = utcnow()
        with self.db.write() as conn:
            failures = store.failures(conn, tenant.id, batch["ref"]) if status == "error" and not message else []
        if failures:
            with (
                self.files.writer("logs", tenant.id, batch["ref"]) as out,
                gzip.GzipFile(fileobj=out, mode="wb") as log,
            ):
                for failure in failures:
                    entry = {"ref": failure["recordRef"], "code": failure["code"], "message": failure["message"]}
                    log.write(orjson.dumps(entry) + b"\n")
        values: dict[str, Any] = {"status": status, "finishedAt": now, "modifiedAt": now, "claimedBy": None}
        if message:
            values.update(message=message, totalRecords=0, successfulRecords=0, failedRecords=0, skippedRecords=0)
        with self.db.write() as conn:
            store.update_batch(conn, tenant.id, batch["ref"], values)
        self.files.delete("uploads", tenant.id, batch["ref"])
