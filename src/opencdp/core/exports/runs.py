"""Running audience exports (segments-exports.md §4.3): members of a segment build streamed into files.

A run reads its guests in chunks by ref (keyset paging), so memory stays flat for any audience size.
Record failures (a guest deleted since the build) leave the run `success`; any other failure fails it
and deletes its partial files. A successful delta run becomes the baseline the next one compares with.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from opencdp.core.claims import JobRunner
from opencdp.core.exports.records import Shape, fetch, gone
from opencdp.core.exports.writers import FileSeries, Options, WrittenFile
from opencdp.core.values import utcnow
from opencdp.store import exports as export_store
from opencdp.store import extensions as extension_store
from opencdp.store import segments as segment_store
from opencdp.store.database import Database
from opencdp.store.exports import EXPORTS
from opencdp.store.files import FileStore, export_prefix
from opencdp.store.rows import Record

log = logging.getLogger("opencdp.exports")
CHUNK = 5000
GONE = "guest no longer exists"


class RunFailed(Exception):
    """The run as a whole failed (its build failed, its members are gone, a file could not be written)."""


@dataclass
class Counters:
    written: int = 0
    successes: int = 0
    failures: int = 0
    success_add: int = 0
    success_remove: int = 0
    files: list[WrittenFile] = field(default_factory=list)


class Exporter(JobRunner):
    """Works through queued runs; any number of exporters may share one database."""

    kind = "exporter"

    def __init__(self, db: Database, files: FileStore, lease_seconds: int = 600, chunk: int = CHUNK) -> None:
        super().__init__(db, lease_seconds)
        self.files, self.chunk = files, chunk

    def run_next(self) -> bool:
        now = utcnow()
        with self.db.write() as conn:
            execution = export_store.claim_execution(conn, self.worker, now, now + self.lease)
            if execution is None:
                return False
            definition = EXPORTS.get(conn, execution["tenantId"], execution["definitionRef"])
            assert definition is not None, "executions are deleted with their definition"
            build = self._build(conn, execution)
            started = {"startTime": now, "segmentBuildRef": build["ref"] if build else None,
                       "datasetDate": (build["asOf"] or now).date().isoformat() if build else None}  # fmt: skip
            export_store.update_execution(conn, execution["ref"], started)
            execution.update(started)
        target = export_prefix(execution["ref"])
        try:
            if build is None or build["status"] != "success":
                raise RunFailed(f"segment build failed: {build['error'] if build else 'no build'}")
            if not build["membersKept"]:
                raise RunFailed(f"the members of segment build {build['ref']} are no longer kept")
            counters = self._write(execution, definition, build, target)
        except Exception as error:  # any failure of the run as a whole: partial files go, the error stays
            log.warning("export run %s failed: %s", execution["ref"], error)
            self.files.delete_prefix(target)
            self._finish(execution, definition, None, {"status": "failed", "errorLogs": [str(error)[:2000]]})
            return True
        self._finish(execution, definition, build, _success(counters, build["size"]))
        return True

    @staticmethod
    def _build(conn: Connection, execution: Record) -> Record | None:
        if execution.get("segmentBuildRef"):
            return segment_store.get_build(conn, execution["tenantId"], execution["segmentBuildRef"])
        return segment_store.latest_success(conn, execution["segmentRef"])

    def _write(self, execution: Record, definition: Record, build: Record, target: str) -> Counters:
        shape = Shape.of(definition["output"])
        csv = definition["csv"]
        options = Options(definition["format"], csv["delimiter"], csv["header"], csv["quoteAll"])
        with self.db.read() as conn:
            key_types = extension_store.all_key_types(conn, execution["tenantId"]).get("guest", {})

        def series(action: str | None) -> FileSeries:
            stem = f"{definition['friendlyId']}-{execution['ref']}"
            most = definition["maxRecordsPerFile"]
            return FileSeries(self.files, target, stem, shape, options, most, key_types, action)

        members = export_store.build_members(build["id"])
        counters = Counters()
        if definition["type"] == "full":
            with series(None) as everything:
                self._stream(execution, shape, members, build["size"], counters, everything, "all")
                counters.files = everything.close()
            return counters
        baseline = export_store.baseline_members(definition.get("baselineRef"))
        added, removed = export_store.minus(members, baseline), export_store.minus(baseline, members)
        with self.db.read() as conn:
            total = export_store.count(conn, added) + export_store.count(conn, removed)
        with series("add") as add, series("remove") as remove:
            self._stream(execution, shape, added, total, counters, add, "add")
            self._stream(execution, shape, removed, total, counters, remove, "remove")
            counters.files = add.close() + remove.close()
        return counters

    def _stream(
        self, execution: Record, shape: Shape, refs: Any, total: int, counters: Counters, out: FileSeries, part: str
    ) -> None:
        after = ""
        tenant_id = execution["tenantId"]
        while True:
            with self.db.read() as conn:
                chunk = export_store.chunk(conn, refs, after, self.chunk)
                found = fetch(conn, tenant_id, chunk, shape) if chunk else {}
            if not chunk:
                return
            if part == "remove":
                records = [found.get(ref) or gone(ref) for ref in chunk]
            else:
                records = [found[ref] for ref in chunk if ref in found]
                counters.failures += len(chunk) - len(records)
            out.write(records)
            counters.successes += len(records)
            counters.success_add += len(records) if part == "add" else 0
            counters.success_remove += len(records) if part == "remove" else 0
            counters.written += len(chunk)
            after = chunk[-1]
            with self.db.write() as conn:
                lease = utcnow() + self.lease
                export_store.update_execution(conn, execution["ref"], {"written": counters.written, "total": total,
                                                                "claimExpires": lease})  # fmt: skip

    def _finish(self, execution: Record, definition: Record, build: Record | None, values: dict[str, Any]) -> None:
        now = utcnow()
        values = {**values, "endTime": now, "claimedBy": None}
        if definition.get("webhook"):
            values.update(webhook={"status": "pending", "attempts": 0, "responseCode": None}, webhookDue=now)
        with self.db.write() as conn:
            export_store.update_execution(conn, execution["ref"], values)
            if values["status"] == "success" and definition["type"] == "delta" and build is not None:
                export_store.save_baseline(conn, execution["ref"], build["id"])
                export_store.set_baseline(conn, definition["ref"], execution["ref"])
                if definition.get("baselineRef"):
                    export_store.drop_baseline(conn, definition["baselineRef"])


def _success(counters: Counters, size: int) -> dict[str, Any]:
    return {
        "status": "success",
        "total": size,
        "written": counters.written,
        "successes": counters.successes,
        "failures": counters.failures,
        "successAdd": counters.success_add,
        "successRemove": counters.success_remove,
        "errors": [{"description": GONE, "count": counters.failures}] if counters.failures else [],
        "files": [
            {"name": f.name, "size": f.size, "records": f.records, "deltaAction": f.delta_action}
            for f in counters.files
        ],
    }


def purge(conn: Connection, files: FileStore, before: datetime) -> int:
    """Files of runs that ended before `before` go; their listings answer 410 from then on."""
    expired = export_store.expired_executions(conn, before)
    for execution in expired:
        files.delete_prefix(export_prefix(execution["ref"]))
        export_store.update_execution(conn, execution["ref"], {"files": []})
    return len(expired)
