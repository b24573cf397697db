"""Background work, one pass at a time: scheduled builds and runs, batch imports, segment builds,
audience exports, webhooks and retention. The embedded server runs passes itself; `opencdp worker`
runs them on other machines, any number of them against one PostgreSQL database.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from datetime import timedelta

from opencdp.config import Settings
from opencdp.core import console
from opencdp.core.batch.batches import discover_uploads
from opencdp.core.batch.processor import Limits, Processor
from opencdp.core.exports import definitions as export_definitions
from opencdp.core.exports.runs import Exporter, purge
from opencdp.core.exports.webhooks import Webhooks
from opencdp.core.segments.builds import Builder, queue_scheduled
from opencdp.core.stream import journal
from opencdp.core.values import utcnow
from opencdp.store.database import Database

log = logging.getLogger("opencdp.stream")
JOURNAL_IDLE_SECONDS = 0.02  # how often an idle applier looks for Stream events to apply


def processor_for(settings: Settings, db: Database) -> Processor:
    """A processor with the configured limits. Lines per transaction default by database: on SQLite
    10,000, as each commit rewrites pages all over the indexes; on PostgreSQL a chunk, as its commits
    cost little and a transaction holds an advisory lock per identifier, which its lock table bounds."""
    per_commit = settings.batch_lines_per_commit or (10_000 if db.is_sqlite else settings.batch_lines_per_chunk)
    limits = Limits(
        uncompressed=settings.batch_max_uncompressed_size,
        line=settings.batch_max_line_size,
        lease_seconds=settings.batch_lease_seconds,
        retention_days=settings.batch_retention_days,
        lines_per_commit=per_commit,
        lines_per_chunk=settings.batch_lines_per_chunk,
        check_ahead=settings.batch_check_ahead,
        slice_seconds=settings.batch_slice_seconds,
    )
    return Processor(db, settings.files(), limits)


def apply_stream_journal(db: Database) -> int:
    """Apply every tenant's pending Stream events, a batch per transaction; how many entries were taken."""
    with db.read() as conn:
        tenant_ids = journal.tenants_pending(conn)
    taken = 0
    for tenant_id in tenant_ids:
        # after the writers queued meanwhile (the server's appends): an applier that took the lock back
        # at once, batch after batch, would keep them waiting for several batches
        with db.write(after_queued=True) as conn:
            taken += journal.apply_tenant(conn, tenant_id, seconds=journal.BATCH_SECONDS if db.is_sqlite else math.inf)
    return taken


class StreamApplier:
    """Applies the Stream journal on a thread of its own, looking every 20 ms while there is nothing to
    apply, so events are applied moments after their 201 and reads seldom find anything left to apply
    (api/deps.settle). `opencdp serve` runs one in a child process of its own (`OPENCDP_STREAM_APPLIER`:
    or on a thread of each server process, or none), and so does every `opencdp worker`: appliers take
    turns per tenant."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stream-applier", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def __enter__(self) -> StreamApplier:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop after the batch being applied, if any."""
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                taken = apply_stream_journal(self.db)
            except Exception:  # the store may be down; the entries wait in the journal
                log.exception("applying the stream journal failed")
                taken = 0
            if not taken:
                self._stop.wait(JOURNAL_IDLE_SECONDS)


def sweep_sessions(db: Database) -> int:
    """Close the sessions idle past their tenant's timeout, once the events accepted so far are applied:
    first a batch per transaction, as the applier does, so that a long journal never becomes one long
    transaction holding the writer (SQLite) or the tenants' journal locks (PostgreSQL)."""
    while apply_stream_journal(db):
        pass
    with db.write() as conn:
        return journal.sweep(conn, utcnow())


@dataclass
class Done:
    scheduled: int = 0
    events: int = 0
    batches: int = 0
    builds: int = 0
    exports: int = 0
    webhooks: int = 0

    @property
    def anything(self) -> bool:
        return any((self.events, self.batches, self.builds, self.exports, self.webhooks))


class Jobs:
    def __init__(self, settings: Settings, db: Database, *, apply_stream: bool = True) -> None:
        """`apply_stream`: whether each pass applies the Stream journal too (an API process told not to
        apply Stream events leaves them to the workers)."""
        self.settings, self.db, self.apply_stream = settings, db, apply_stream
        self.files = settings.files()
        self.processor = processor_for(settings, db)
        self.builder = Builder(db)
        self.exporter = Exporter(db, self.files)
        base = settings.public_url or f"http://{settings.host}:{settings.port}"
        self.webhooks = Webhooks(db, base)

    def run_pass(self) -> Done:
        now = utcnow()
        done = Done()
        with self.db.write() as conn:
            done.scheduled = queue_scheduled(conn, now) + export_definitions.queue_scheduled(conn, now)
            purge(conn, self.files, now - timedelta(days=self.settings.export_retention_days))
            console.forget_expired(conn, now)
        done.events = apply_stream_journal(self.db) if self.apply_stream else 0
        if self.settings.direct_uploads:
            discover_uploads(self.db, self.files, now)
        done.batches = self.processor.run_available()
        done.builds = self.builder.run_available()
        done.exports = self.exporter.run_available()
        done.webhooks = self.webhooks.deliver_due()
        return done

    def sweep_sessions(self) -> int:
        return sweep_sessions(self.db)
