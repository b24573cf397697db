"""Segments, their builds and member sets: every statement the segment core needs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, delete, exists, func, insert, literal, or_, select, update

from opencdp.store.rows import Record, Rows, page, records, to_columns, to_record
from opencdp.store.segment_sql import Compiler
from opencdp.store.segment_tree import Attribute
from opencdp.store.tables import audience_exports, guests, segment_builds, segment_members, segments

SEGMENTS: Rows[Record] = Rows(segments)  # Segment definitions.

ACTIVE = ("pending", "running")
GUEST_SUMMARY = ("ref", "guest_type", "first_name", "last_name", "emails", "country", "first_seen", "last_seen")


def page_segments(
    conn: Connection, tenant_id: int, status: str | None, name_part: str | None, offset: int, limit: int
) -> tuple[int, list[Record]]:
    stmt = select(segments).where(segments.c.tenant_id == tenant_id)
    if status:
        stmt = stmt.where(segments.c.status == status)
    if name_part:
        stmt = stmt.where(func.lower(segments.c.name).contains(name_part.lower(), autoescape=True))
    return page(conn, segments, stmt, (("createdAt", True),), offset, limit)


def used_by(conn: Connection, tenant_id: int, segment_ref: str) -> list[Record]:
    stmt = select(audience_exports.c.ref, audience_exports.c.friendly_id).where(
        audience_exports.c.tenant_id == tenant_id, audience_exports.c.segment_ref == segment_ref
    )
    return records(conn, stmt.order_by(audience_exports.c.friendly_id))


def insert_build(conn: Connection, values: dict[str, Any]) -> Record:
    conn.execute(insert(segment_builds), to_columns(values))
    found = get_build(conn, values["tenantId"], values["ref"])
    assert found is not None
    return found


def get_build(conn: Connection, tenant_id: int, ref: str) -> Record | None:
    stmt = select(segment_builds).where(segment_builds.c.tenant_id == tenant_id, segment_builds.c.ref == ref)
    row = conn.execute(stmt).mappings().first()
    return to_record(row) if row else None


def update_build(conn: Connection, build_id: int, values: dict[str, Any]) -> None:
    conn.execute(update(segment_builds).where(segment_builds.c.id == build_id).values(to_columns(values)))


def active_build(conn: Connection, segment_ref: str) -> Record | None:
    stmt = select(segment_builds).where(
        segment_builds.c.segment_ref == segment_ref, segment_builds.c.status.in_(ACTIVE)
    )
    found = records(conn, stmt.order_by(segment_builds.c.id).limit(1))
    return found[0] if found else None


def latest_success(conn: Connection, segment_ref: str, before_id: int | None = None) -> Record | None:
    stmt = select(segment_builds).where(
        segment_builds.c.segment_ref == segment_ref, segment_builds.c.status == "success"
    )
    if before_id is not None:
        stmt = stmt.where(segment_builds.c.id < before_id)
    found = records(conn, stmt.order_by(segment_builds.c.id.desc()).limit(1))
    return found[0] if found else None


def latest_builds(conn: Connection, segment_refs: Sequence[str]) -> dict[str, Record]:
    """The newest build of each segment, for listings."""
    if not segment_refs:
        return {}
    newest = (
        select(func.max(segment_builds.c.id))
        .where(segment_builds.c.segment_ref.in_(list(segment_refs)))
        .group_by(segment_builds.c.segment_ref)
    )
    return {
        build["segmentRef"]: build
        for build in records(conn, select(segment_builds).where(segment_builds.c.id.in_(newest)))
    }


def page_builds(
    conn: Connection, tenant_id: int, segment_ref: str, offset: int, limit: int
) -> tuple[int, list[Record]]:
    stmt = select(segment_builds).where(
        segment_builds.c.tenant_id == tenant_id, segment_builds.c.segment_ref == segment_ref
    )
    total = conn.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    return total, records(conn, stmt.order_by(segment_builds.c.id.desc()).offset(offset).limit(limit))


def claim_build(conn: Connection, worker: str, now: datetime, lease_until: datetime) -> Record | None:
    """The oldest pending build, or a running one whose worker's lease lapsed; locked past other workers."""
    stmt = select(segment_builds).where(
        or_(
            segment_builds.c.status == "pending",
            (segment_builds.c.status == "running") & (segment_builds.c.claim_expires < now),
        )
    )
    stmt = stmt.order_by(segment_builds.c.id).limit(1)
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    found = records(conn, stmt)
    if not found:
        return None
    changes = {"status": "running", "claimedBy": worker, "claimExpires": lease_until}
    update_build(conn, found[0]["id"], changes)
    return {**found[0], **changes}


def fill_members(conn: Connection, build_id: int, members: Select[Any]) -> int:
    """Store a definition's members for a build, inside the database: INSERT ... SELECT."""
    rows = members.with_only_columns(literal(build_id), *members.selected_columns[:1])
    if conn.dialect.name == "postgresql":  # in key order the index grows at its end (SQLite would sort on disk)
        rows = rows.order_by(members.selected_columns[0])
    inserted = conn.execute(insert(segment_members).from_select(["build_id", "guest_ref"], rows)).rowcount
    return inserted if inserted >= 0 else count_members(conn, build_id)


def count_members(conn: Connection, build_id: int) -> int:
    stmt = select(func.count()).select_from(segment_members).where(segment_members.c.build_id == build_id)
    return conn.execute(stmt).scalar_one()


def _changed(build_id: int, other_id: int) -> Select[Any]:
    """Members of one build that the other lacks."""
    other = segment_members.alias()
    return select(segment_members.c.guest_ref).where(
        segment_members.c.build_id == build_id,
        ~exists().where(other.c.build_id == other_id, other.c.guest_ref == segment_members.c.guest_ref),
    )


def count_changed(conn: Connection, build_id: int, other_id: int) -> int:
    return conn.execute(select(func.count()).select_from(_changed(build_id, other_id).subquery())).scalar_one()


def sample(conn: Connection, build_id: int, size: int) -> list[str]:
    picked = (
        select(segment_members.c.guest_ref)
        .where(segment_members.c.build_id == build_id)
        .order_by(func.random())
        .limit(size)
    )
    return list(conn.execute(picked).scalars().all())


def guest_summaries(conn: Connection, tenant_id: int, refs: Sequence[str]) -> list[Record]:
    """What samples and expanded members show of a guest, in the order of `refs`."""
    if not refs:
        return []
    stmt = select(*(guests.c[name] for name in GUEST_SUMMARY)).where(
        guests.c.tenant_id == tenant_id, guests.c.ref.in_(list(refs))
    )
    found = {row["ref"]: row for row in records(conn, stmt)}
    return [found.get(ref, {"ref": ref}) for ref in refs]


def member_page(
    conn: Connection, build_id: int, other_id: int | None, offset: int, limit: int
) -> tuple[int, list[str]]:
    """Members of a build by guest ref; with `other_id`, only those the other build lacks."""
    stmt = (
        _changed(build_id, other_id)
        if other_id is not None
        else select(segment_members.c.guest_ref).where(segment_members.c.build_id == build_id)
    )
    total = conn.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    refs = conn.execute(stmt.order_by(segment_members.c.guest_ref).offset(offset).limit(limit)).scalars().all()
    return total, list(refs)


def total_guests(conn: Connection, tenant_id: int) -> int:
    stmt = (
        select(func.count()).select_from(guests).where(guests.c.tenant_id == tenant_id, guests.c.merged_into.is_(None))
    )
    return conn.execute(stmt).scalar_one()


def drop_old_members(conn: Connection, segment_ref: str, keep: int) -> None:
    """Member sets of all but the `keep` latest successful builds go; their statistics stay."""
    kept = (
        select(segment_builds.c.id)
        .where(segment_builds.c.segment_ref == segment_ref, segment_builds.c.status == "success")
        .order_by(segment_builds.c.id.desc())
        .limit(keep)
    )
    old = select(segment_builds.c.id).where(
        segment_builds.c.segment_ref == segment_ref,
        segment_builds.c.members_kept.is_(True),
        segment_builds.c.id.not_in(select(kept.subquery().c.id)),
    )
    old_ids = conn.execute(old).scalars().all()
    if old_ids:
        conn.execute(delete(segment_members).where(segment_members.c.build_id.in_(old_ids)))
        conn.execute(update(segment_builds).where(segment_builds.c.id.in_(old_ids)).values(members_kept=False))


def drop_old_builds(conn: Connection, before: datetime) -> None:
    old = select(segment_builds.c.id).where(segment_builds.c.created_at < before)
    conn.execute(delete(segment_members).where(segment_members.c.build_id.in_(old)))
    conn.execute(delete(segment_builds).where(segment_builds.c.created_at < before))


def delete_members_of(conn: Connection, tenant_id: int, segment_ref: str) -> None:
    """Every member set of a segment's builds, before the segment (and with it its builds) goes."""
    builds = select(segment_builds.c.id).where(
        segment_builds.c.tenant_id == tenant_id, segment_builds.c.segment_ref == segment_ref
    )
    conn.execute(delete(segment_members).where(segment_members.c.build_id.in_(builds)))


def due_segments(conn: Connection, now: datetime) -> list[Record]:
    """Live segments whose scheduled build time has come; on PostgreSQL locked past other workers."""
    stmt = select(segments).where(segments.c.status == "live", segments.c.next_build_at <= now)
    stmt = stmt.order_by(segments.c.next_build_at).limit(100)
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return records(conn, stmt)


def live_segments(conn: Connection, tenant_id: int) -> list[Record]:
    return records(conn, select(segments).where(segments.c.tenant_id == tenant_id, segments.c.status == "live"))


def segments_holding(conn: Connection, tenant_id: int, guest_ref: str) -> list[Record]:
    """Segments whose latest successful build holds the guest."""
    latest = (
        select(func.max(segment_builds.c.id))
        .where(segment_builds.c.tenant_id == tenant_id, segment_builds.c.status == "success")
        .group_by(segment_builds.c.segment_ref)
    )
    stmt = (
        select(segments.c.ref, segments.c.name)
        .join(segment_builds, segment_builds.c.segment_ref == segments.c.ref)
        .join(segment_members, segment_members.c.build_id == segment_builds.c.id)
        .where(segment_builds.c.id.in_(latest), segment_members.c.guest_ref == guest_ref)
    )
    return records(conn, stmt.order_by(segments.c.name))


def set_next_build(conn: Connection, segment_ref: str, at: datetime | None) -> None:
    conn.execute(update(segments).where(segments.c.ref == segment_ref).values(next_build_at=at))


def preview(conn: Connection, tenant_id: int, members: Select[Any], size: int) -> tuple[int, list[Record]]:
    """The size of a member query and a random sample of it, without storing anything."""
    found = members.subquery()
    total = conn.execute(select(func.count()).select_from(found)).scalar_one()
    picked = conn.execute(select(found.c.ref).order_by(func.random()).limit(size)).scalars().all()
    return total, guest_summaries(conn, tenant_id, picked)


def distribution(conn: Connection, compiler: Compiler, attr: Attribute) -> list[tuple[Any, int]]:
    return [(row.value, row.guests) for row in conn.execute(compiler.distribution(attr))]
