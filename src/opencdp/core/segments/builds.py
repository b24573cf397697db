"""Running segment builds (segments-exports.md §2): members by INSERT ... SELECT, statistics, delta.

A build runs in one transaction, so it reads one consistent snapshot and either stores everything
(members, statistics, the older member sets it retires) or nothing but its failure.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from opencdp.core.claims import JobRunner
from opencdp.core.schedule import next_slot
from opencdp.core.segments.definition import parse
from opencdp.core.segments.segments import catalogue, compiler, request_build
from opencdp.core.tenants import Tenant
from opencdp.core.values import utcnow
from opencdp.store import segments as segment_store
from opencdp.store import tenants as tenant_store
from opencdp.store.rows import Record
from opencdp.store.segment_tree import Definition

log = logging.getLogger("opencdp.segments")
KEEP_MEMBER_SETS = 7
KEEP_STATISTICS_DAYS = 400
SAMPLE_SIZE = 20


def tenant_of(conn: Connection, tenant_id: int) -> Tenant:
    return Tenant.from_record(tenant_store.find_by_id(conn, tenant_id))


def percent(part: int, whole: int) -> float | None:
    return round(part / whole * 100, 2) if whole else None


def preview(conn: Connection, tenant: Tenant, definition: Definition, as_of: datetime) -> dict[str, Any]:
    """Size, share and a sample of an unsaved definition, read in the caller's (read) transaction."""
    started = time.perf_counter()
    query = compiler(conn, tenant, as_of).members(definition)
    size, sample = segment_store.preview(conn, tenant.id, query, SAMPLE_SIZE)
    total = segment_store.total_guests(conn, tenant.id)
    return {
        "size": size,
        "totalGuests": total,
        "percentOfGuests": percent(size, total) or 0.0,
        "sample": sample,
        "asOf": as_of,
        "durationMs": int((time.perf_counter() - started) * 1000),
    }


def run(conn: Connection, build: Record, as_of: datetime) -> dict[str, Any]:
    """Build the members and statistics of a claimed build; the caller commits."""
    tenant = tenant_of(conn, build["tenantId"])
    definition = parse(build["definition"], catalogue(conn, tenant))
    started = time.perf_counter()
    size = segment_store.fill_members(conn, build["id"], compiler(conn, tenant, as_of).members(definition))
    total = segment_store.total_guests(conn, tenant.id)
    previous = segment_store.latest_success(conn, build["segmentRef"], before_id=build["id"])
    if previous is not None and previous["membersKept"]:
        added = segment_store.count_changed(conn, build["id"], previous["id"])
        removed = segment_store.count_changed(conn, previous["id"], build["id"])
    else:
        added, removed = size, 0
    changes = {
        "status": "success",
        "asOf": as_of,
        "size": size,
        "totalGuests": total,
        "percentOfGuests": percent(size, total) or 0.0,
        "added": added,
        "removed": removed,
        "changePercent": percent(size - previous["size"], previous["size"]) if previous else None,
        "previousBuildRef": previous["ref"] if previous else None,
        "sample": segment_store.sample(conn, build["id"], SAMPLE_SIZE),
        "membersKept": True,
        "claimedBy": None,
        "finishedAt": utcnow(),
        "durationMs": int((time.perf_counter() - started) * 1000),
    }
    segment_store.update_build(conn, build["id"], changes)
    segment_store.drop_old_members(conn, build["segmentRef"], KEEP_MEMBER_SETS)
    return {**build, **changes}


class Builder(JobRunner):
    """Works through queued builds; any number of builders (threads, processes, machines) may run."""

    kind = "builder"

    def run_next(self) -> bool:
        now = utcnow()
        with self.db.write() as conn:
            build = segment_store.claim_build(conn, self.worker, now, now + self.lease)
            if build is None:
                return False
            segment_store.update_build(conn, build["id"], {"startedAt": now})
        try:
            with self.db.write() as conn:
                run(conn, build, utcnow())
        except Exception as error:  # a failed build keeps its error and changes nothing else
            log.exception("segment build %s failed", build["ref"])
            with self.db.write() as conn:
                failed = {"status": "failed", "error": str(error)[:2000], "finishedAt": utcnow(), "claimedBy": None}
                segment_store.update_build(conn, build["id"], failed)
        return True


def queue_scheduled(conn: Connection, now: datetime) -> int:
    """Queue one build of every live segment whose slot has come, and move it to its next slot."""
    queued = 0
    for segment in segment_store.due_segments(conn, now):
        tenant = tenant_of(conn, segment["tenantId"])
        request_build(conn, tenant, segment["ref"], "schedule", now)
        schedule = tenant_store.find_by_id(conn, tenant.id)["segmentBuildSchedule"]
        segment_store.set_next_build(conn, segment["ref"], next_slot(schedule, now))
        queued += 1
    segment_store.drop_old_builds(conn, now - timedelta(days=KEEP_STATISTICS_DAYS))
    return queued
