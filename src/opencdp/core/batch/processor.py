"""Processing uploaded batches: claim, check the file, apply its lines exactly once, finish with a log.

Progress is checkpointed in the same transaction as the records it covers (position, statistics,
failures, registrations), so a worker killed at any moment resumes where the last commit left off and
nothing is applied twice. The file is streamed: memory stays flat whatever its size.
"""

from __future__ import annotations

import gzip
import logging
import time
import uuid
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import IO, Any, BinaryIO, cast

import orjson
from sqlalchemy import Connection

from opencdp.core.batch import guest_upserts, new_orders
from opencdp.core.batch.checks import Checked, ChunkChecker, Numbered, collection_paused
from opencdp.core.batch.lines import CHUNK, Envelope, Outcome, lines
from opencdp.core.batch.records import HANDLERS
from opencdp.core.batch.retention import purge
from opencdp.core.errors import ApiError
from opencdp.core.tenants import Tenant
from opencdp.core.values import utcnow
from opencdp.store import batches as batch_store
from opencdp.store import tenants as tenant_store
from opencdp.store.database import Database, forget, page_cache
from opencdp.store.files import FileStore, batch_key
from opencdp.store.rows import Record

log = logging.getLogger("opencdp.batches")
ANALYZE_AFTER = 10_000  # records applied by one batch: enough to change how its tables are best read
BLANK_SPAN = 100  # a chunk spans at most this many chunks' worth of lines, blank ones included
CANDIDATES = 50  # claimable batches a worker chooses among, in upload order
PAGE_CACHE_MB = 32  # SQLite: an import's transaction keeps this much of the indexes it writes in memory


@dataclass(frozen=True)
class Limits:
    uncompressed: int
    line: int
    lease_seconds: int
    retention_days: int = 30
    lines_per_commit: int = 1000  # most lines in one transaction; it commits early when a writer waits
    lines_per_chunk: int = 1000  # lines checked and applied together: memory against per-chunk overhead
    check_ahead: bool = True  # the next chunk's lines checked by a helper process while one is applied
    slice_seconds: float = 5.0  # how long a batch runs before it gives its turn to another tenant's batch


class FileRejected(Exception):
    """The whole file is refused (§5.1): nothing is applied and the batch ends as `error`."""


def check_file(raw: BinaryIO, limit: int) -> int:
    """Stream the file once through the decompressor: valid gzip, one member, not a bomb. Returns its
    number of lines as `lines` will read them, the total a client's progress is measured against."""
    inflater = zlib.decompressobj(wbits=31)
    total = newlines = 0
    last = b"\n"
    while chunk := raw.read(CHUNK):
        if inflater.eof:
            raise FileRejected("File must contain exactly one gzip member")
        pending = chunk
        while pending:  # at most 16 chunks inflated at a time: a bomb's chunk never sits in memory whole
            try:
                data = inflater.decompress(pending, 16 * CHUNK)
            except zlib.error:
                raise FileRejected("File is not a valid gzip file") from None
            pending = inflater.unconsumed_tail
            total += len(data)
            if total > limit:
                raise FileRejected(f"Uncompressed size exceeds the limit of {limit} bytes")
            newlines += data.count(b"\n")
            last = data[-1:] or last
        if inflater.eof and inflater.unused_data:
            raise FileRejected("File must contain exactly one gzip member")
    if not inflater.eof:
        raise FileRejected("File is not a valid gzip file")
    return newlines + (last != b"\n")


def apply_record(conn: Connection, tenant: Tenant, envelope: Envelope, now: datetime) -> Outcome:
    """One record by itself, through the handler of its schema and mode, inside a savepoint."""
    if batch_store.registered(conn, tenant.id, envelope.ref, envelope.digest):
        return envelope.outcome(skipped=True)
    handler = HANDLERS.get((envelope.schema, envelope.mode))
    if handler is None:
        return envelope.outcome("402", "Unsupported mode")
    value = envelope.value
    if not isinstance(value, dict):
        what = "is required" if value is None else "is invalid (must be an object)"
        return envelope.outcome("400", f"Validation error: Attribute value {what}")
    conn.exec_driver_sql("SAVEPOINT record")
    try:
        handler(conn, tenant, value, now)
    except Exception as error:  # one record's failure, foreseen or not: rolled back, the file goes on
        conn.exec_driver_sql("ROLLBACK TO SAVEPOINT record")
        forget(conn)
        if not isinstance(error, ApiError):
            log.exception("batch record %s failed unexpectedly", envelope.shown_ref)
        return envelope.failure(error)
    finally:
        conn.exec_driver_sql("RELEASE SAVEPOINT record")
    batch_store.register(conn, tenant.id, envelope.ref, envelope.digest, now)
    return envelope.outcome()


Run = list[new_orders.Entry | guest_upserts.GuestEntry]  # of one kind: `apply_lines` never mixes them


def apply_lines(
    conn: Connection, tenant: Tenant, checked: Iterable[Checked], now: datetime
) -> list[tuple[int, Outcome]]:
    """The records of a chunk of checked lines, in file order: runs of order records (new orders together)
    and runs of guest upserts each by their set-based path, any other record alone."""
    results: list[tuple[int, Outcome]] = []
    run: Run = []
    for number, read in checked:
        if isinstance(read, Outcome):
            results.append((number, read))
        elif isinstance(read, Envelope):
            results += _apply_run(conn, tenant, run, now)
            run = []
            results.append((number, apply_record(conn, tenant, read, now)))
        else:
            if run and type(run[0]) is not type(read):
                results += _apply_run(conn, tenant, run, now)
                run = []
            run.append(read)
    return results + _apply_run(conn, tenant, run, now)


def _apply_run(conn: Connection, tenant: Tenant, run: Run, now: datetime) -> list[tuple[int, Outcome]]:
    """A run of records of one kind by its set-based path. Should that fail as a whole (another writer
    changed what it read), the savepoint undoes the run and it is applied record by record."""
    if not run:
        return []
    conn.exec_driver_sql("SAVEPOINT run")
    try:
        if isinstance(run[0], guest_upserts.GuestEntry):
            results = guest_upserts.apply(conn, tenant, run, now)  # type: ignore[arg-type]
        else:
            alone = partial(apply_record, conn, tenant, now=now)
            results = new_orders.apply(conn, tenant, run, now, alone)  # type: ignore[arg-type]
    except Exception:
        log.warning("records of a chunk applied one by one after the set-based path failed", exc_info=True)
        conn.exec_driver_sql("ROLLBACK TO SAVEPOINT run")
        forget(conn)
        conn.exec_driver_sql("RELEASE SAVEPOINT run")
        return [(entry.number, apply_record(conn, tenant, entry.envelope, now)) for entry in run]
    conn.exec_driver_sql("RELEASE SAVEPOINT run")
    return results


class Processor:
    """Works through uploaded batches; several processors (in one or many processes) may run at once."""

    def __init__(self, db: Database, files: FileStore, limits: Limits) -> None:
        self.db = db
        self.files = files
        self.limits = limits
        self.worker = f"worker-{uuid.uuid4().hex[:12]}"
        self.turns = 0
        self.last_turn: dict[int, int] = {}  # tenant id -> the turn this worker last gave it

    def run_available(self) -> int:
        """Purge what is past retention, then process batches until none is waiting; how many turns ran."""
        with self.db.write() as conn:
            purge(conn, self.files, utcnow() - timedelta(days=self.limits.retention_days))
        done = 0
        while self.process_next():
            done += 1
        return done

    def choose(self, candidates: list[Record]) -> Record:
        """Tenants take turns: the batch of the tenant this worker served longest ago (never, first), and
        among one tenant's batches the earliest uploaded."""
        return min(candidates, key=lambda batch: self.last_turn.get(batch["tenantId"], -1))

    def process_next(self) -> bool:
        """One turn: claim a batch and work on it until it ends or gives way to another tenant's."""
        now = utcnow()
        with self.db.write() as conn:
            candidates = batch_store.claimable(conn, now, CANDIDATES)
            if not candidates:
                return False
            batch = batch_store.take(conn, self.choose(candidates), self.worker, self._lease(now))
            if batch.get("startedAt") is None:
                batch_store.update_batch(conn, batch["tenantId"], batch["ref"], {"startedAt": now, "modifiedAt": now})
                batch["startedAt"] = now
            tenant = Tenant.from_record(tenant_store.find_by_id(conn, batch["tenantId"]))
        self.turns += 1
        self.last_turn[tenant.id] = self.turns
        upload = batch_key("uploads", tenant.id, batch["ref"])
        if not batch["verified"]:
            try:
                with self.files.reader(upload) as raw:
                    total_lines = check_file(raw, self.limits.uncompressed)
            except FileRejected as rejected:
                self._finish(tenant, batch, "error", str(rejected))
                return True
            with self.db.write() as conn:
                batch_store.update_batch(conn, tenant.id, batch["ref"], {"verified": True, "totalLines": total_lines})
        self._apply(tenant, batch, upload)
        return True

    def _lease(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.limits.lease_seconds)

    def _apply(self, tenant: Tenant, batch: Record, upload: str) -> None:
        """Apply the file from where the last commit left off, until it ends (the batch is finished) or its
        turn is up while another tenant's batch waits (it is released, and resumed at a later turn).

        A turn is measured in time, not records, so lines that yield no record (a file of blank lines)
        cost the batch its turn as records do."""
        position = batch["position"]
        stats = {k: batch[k] for k in ("totalRecords", "successfulRecords", "failedRecords", "skippedRecords")}
        turn_ends = time.monotonic() + self.limits.slice_seconds
        with (
            self.files.reader(upload) as raw,
            cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="rb")) as stream,
            ChunkChecker(self.limits.check_ahead, self.limits.line) as checker,
        ):
            chunks = iter(checker.ahead(self._chunks(stream, position)))
            while first := next(chunks, None):
                position = self._commit(tenant, batch, first, chunks, stats)
                if time.monotonic() >= turn_ends and self._give_way(tenant, batch):
                    return
        if stats["successfulRecords"] - stats["skippedRecords"] >= ANALYZE_AFTER:
            with self.db.write() as conn:
                batch_store.refresh_statistics(conn)
        status = "error" if stats["failedRecords"] else "success"
        self._finish(tenant, {**batch, **stats, "position": position}, status, None)

    def _give_way(self, tenant: Tenant, batch: Record) -> bool:
        """Release the batch if another tenant's batch is waiting; whether it was released."""
        with self.db.write() as conn:
            now = utcnow()
            if not batch_store.others_waiting(conn, now, tenant.id):
                return False
            batch_store.release(conn, tenant.id, batch["ref"], now)
        log.info("batch %s gave its turn to another tenant's at line %s", batch["ref"], batch["position"])
        return True

    def _chunks(self, stream: IO[bytes], position: int) -> Iterator[list[Numbered]]:
        """The lines not applied yet, numbered, a chunk at a time. Blank lines are no records: they are
        counted, not carried, except the one that closes a span of `BLANK_SPAN` chunks' worth of lines,
        which carries the position a file of nothing but blank lines has reached."""
        size = min(self.limits.lines_per_chunk, self.limits.lines_per_commit)
        chunk: list[Numbered] = []
        span = 0
        for number, line in enumerate(lines(stream, self.limits.line)):
            if number < position:
                continue
            span += 1
            if line is not None and not line.strip() and span < size * BLANK_SPAN:
                continue
            chunk.append((number, line))
            if len(chunk) == size or span >= size * BLANK_SPAN:
                yield chunk
                chunk, span = [], 0
        if chunk:
            yield chunk

    def _commit(
        self,
        tenant: Tenant,
        batch: Record,
        first: tuple[list[Numbered], list[Checked]],
        rest: Iterator[tuple[list[Numbered], list[Checked]]],
        stats: dict[str, int],
    ) -> int:
        """Apply chunks in one transaction, each with the position it reaches, and commit; return the position.

        Fewer, larger transactions are what make an import fast on SQLite: a commit writes every page the
        transaction dirtied, and records keyed by random refs dirty pages all over each index, so most of
        them are written again by each commit. The transaction ends early, at a chunk's end, when another
        writer waits for it (on SQLite every writer does), which then goes before the next transaction, or
        when it has run for a quarter of the lease, which it renews only once committed.
        """
        started = time.monotonic()
        applied = 0
        chunk: tuple[list[Numbered], list[Checked]] | None = first
        with self.db.write(after_queued=True) as conn, page_cache(conn, PAGE_CACHE_MB):
            while chunk is not None:
                numbered, checked = chunk
                position = numbered[-1][0] + 1
                self._apply_chunk(conn, tenant, batch, position, checked, stats)
                applied += len(numbered)
                if (
                    applied >= self.limits.lines_per_commit
                    or time.monotonic() - started > self.limits.lease_seconds / 4
                    or self.db.others_waiting(conn)
                ):
                    break
                chunk = next(rest, None)
        batch["position"] = position
        return position

    def _apply_chunk(
        self,
        conn: Connection,
        tenant: Tenant,
        batch: Record,
        position: int,
        checked: list[Checked],
        stats: dict[str, int],
    ) -> None:
        """A chunk's checked lines applied, with the position reached and the statistics stored beside them."""
        now = utcnow()
        with collection_paused():
            failures = []
            for number, outcome in apply_lines(conn, tenant, checked, now):
                stats["totalRecords"] += 1
                if outcome.ok:
                    stats["successfulRecords"] += 1
                    stats["skippedRecords"] += int(outcome.skipped)
                else:
                    stats["failedRecords"] += 1
                    failures.append((number, outcome.shown_ref, outcome.code, outcome.message))
        batch_store.add_failures(conn, tenant.id, batch["ref"], failures)
        values: dict[str, Any] = {**stats, "position": position, "claimExpires": self._lease(now), "modifiedAt": now}
        batch_store.update_batch(conn, tenant.id, batch["ref"], values)

    def _finish(self, tenant: Tenant, batch: Record, status: str, message: str | None) -> None:
        """The final status, the log of failures (gzipped NDJSON) and the uploaded file's removal."""
        now = utcnow()
        with self.db.write() as conn:
            failures = batch_store.failures(conn, tenant.id, batch["ref"]) if status == "error" and not message else []
        if failures:
            with (
                self.files.writer(batch_key("logs", tenant.id, batch["ref"])) as out,
                gzip.GzipFile(fileobj=out, mode="wb") as log,
            ):
                for failure in failures:
                    entry = {"ref": failure["recordRef"], "code": failure["code"], "message": failure["message"]}
                    log.write(orjson.dumps(entry) + b"\n")
        values: dict[str, Any] = {"status": status, "finishedAt": now, "modifiedAt": now, "claimedBy": None}
        if message:
            values.update(message=message, totalRecords=0, successfulRecords=0, failedRecords=0, skippedRecords=0)
        with self.db.write() as conn:
            batch_store.update_batch(conn, tenant.id, batch["ref"], values)
        self.files.delete(batch_key("uploads", tenant.id, batch["ref"]))
