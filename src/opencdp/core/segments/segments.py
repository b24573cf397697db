"""Segments as a resource (segments-exports.md §2, §3): create, replace, lifecycle, builds on request."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from opencdp.core.errors import ApiError, Conflict, InvalidField, MissingField, NotFound, UnsupportedField
from opencdp.core.schedule import check_cron, next_slot
from opencdp.core.segments.catalogue import Catalogue, Type
from opencdp.core.segments.definition import parse
from opencdp.core.tenants import Tenant
from opencdp.core.values import format_timestamp, new_ref, utcnow
from opencdp.store import extensions as extension_store
from opencdp.store import segments as segment_store
from opencdp.store import tenants as tenant_store
from opencdp.store.rows import Record
from opencdp.store.segment_sql import Compiler
from opencdp.store.segment_tree import Definition
from opencdp.store.segments import SEGMENTS

BODY = ("name", "description", "definition")
READ_ONLY = ("ref", "href", "status", "version", "createdAt", "modifiedAt", "lastBuild", "nextBuildAt", "usedBy")
MAX_NAME = 200
TRIGGERS = ("manual", "schedule", "start", "export")


def catalogue(conn: Connection, tenant: Tenant) -> Catalogue:
    return Catalogue(extension_store.all_key_types(conn, tenant.id))


def check_definition(conn: Connection, tenant: Tenant, raw: Any) -> Definition:
    return parse(raw, catalogue(conn, tenant))


def _body(conn: Connection, tenant: Tenant, body: Mapping[str, Any]) -> dict[str, Any]:
    for key in body:
        if key not in BODY and key not in READ_ONLY:
            raise UnsupportedField(key)
    name = body.get("name")
    if name is None or name == "":
        raise MissingField("name")
    if not isinstance(name, str) or len(name) > MAX_NAME or "\x00" in name:
        raise InvalidField("name", f"a string of at most {MAX_NAME} characters")
    description = body.get("description")
    if description is not None and (not isinstance(description, str) or "\x00" in description):
        raise InvalidField("description")
    if "definition" not in body:
        raise MissingField("definition")
    check_definition(conn, tenant, body["definition"])
    return {"name": name, "description": description or None, "definition": body["definition"]}


def require(conn: Connection, tenant: Tenant, ref: str) -> Record:
    found = SEGMENTS.get(conn, tenant.id, ref)
    if found is None:
        raise NotFound(f"Segment with ref {ref} for client key {tenant.client_key} was not found")
    return found


def create(conn: Connection, tenant: Tenant, body: Mapping[str, Any], now: datetime) -> Record:
    values = _body(conn, tenant, body)
    record = {
        **values,
        "ref": new_ref(),
        "tenantId": tenant.id,
        "status": "draft",
        "version": 1,
        "nextBuildAt": None,
        "createdAt": now,
        "modifiedAt": now,
    }
    SEGMENTS.insert(conn, record)
    return record


def replace(conn: Connection, tenant: Tenant, ref: str, body: Mapping[str, Any], now: datetime) -> Record:
    """PUT: a live segment keeps its definition (409 on a change); a changed definition is a new version."""
    segment = require(conn, tenant, ref)
    values = _body(conn, tenant, body)
    changed = values["definition"] != segment["definition"]
    if changed and not definition_may_change(segment):
        raise Conflict("A live segment's definition cannot change; pause it first.")
    if changed:
        values["version"] = segment["version"] + 1
    return SEGMENTS.modify(conn, segment, values, now)


def actions(segment: Mapping[str, Any]) -> tuple[str, ...]:
    """The lifecycle steps a segment takes as it stands: a draft or paused one starts, a live one pauses,
    any one builds, and one that is not live may be deleted (unless an export uses it: `delete` says so).
    The console shows only these."""
    live = segment["status"] == "live"
    startable = segment["status"] in ("draft", "paused")
    return tuple(
        step for step, ok in (("start", startable), ("pause", live), ("build", True), ("delete", not live)) if ok
    )


def definition_may_change(segment: Mapping[str, Any]) -> bool:
    """A live segment keeps its definition: its builds must all answer the same question."""
    return bool(segment["status"] != "live")


def delete(conn: Connection, tenant: Tenant, ref: str) -> None:
    segment = require(conn, tenant, ref)
    if "delete" not in actions(segment):
        raise Conflict("A live segment cannot be deleted; pause it first.")
    users = segment_store.used_by(conn, tenant.id, ref)
    if users:
        raise Conflict(f"The segment is used by audience export {users[0]['friendlyId']}.")
    segment_store.delete_members_of(conn, tenant.id, ref)
    SEGMENTS.delete(conn, tenant.id, ref)


def start(conn: Connection, tenant: Tenant, ref: str, now: datetime) -> Record:
    segment = require(conn, tenant, ref)
    if "start" not in actions(segment):
        raise Conflict(f"A {segment['status']} segment cannot be started.")
    segment = SEGMENTS.modify(conn, segment, {"status": "live", "nextBuildAt": next_build(conn, tenant, now)}, now)
    request_build(conn, tenant, ref, "start", now)
    return segment


def pause(conn: Connection, tenant: Tenant, ref: str, now: datetime) -> Record:
    segment = require(conn, tenant, ref)
    if "pause" not in actions(segment):
        raise Conflict(f"A {segment['status']} segment cannot be paused.")
    return SEGMENTS.modify(conn, segment, {"status": "paused", "nextBuildAt": None}, now)


def next_build(conn: Connection, tenant: Tenant, now: datetime) -> datetime:
    return next_slot(tenant_store.find_by_id(conn, tenant.id)["segmentBuildSchedule"], now)


def request_build(conn: Connection, tenant: Tenant, ref: str, trigger: str, now: datetime) -> Record:
    """Queue a build of the segment as it is now, or answer the one already pending or running."""
    segment = require(conn, tenant, ref)
    active = segment_store.active_build(conn, ref)
    if active is not None:
        return active
    return segment_store.insert_build(
        conn,
        {
            "ref": new_ref(),
            "tenantId": tenant.id,
            "segmentRef": ref,
            "status": "pending",
            "trigger": trigger,
            "definitionVersion": segment["version"],
            "definition": segment["definition"],
            "createdAt": now,
        },
    )


def build_of(conn: Connection, tenant: Tenant, segment_ref: str, build_ref: str) -> Record:
    build = segment_store.get_build(conn, tenant.id, build_ref)
    if build is None or build["segmentRef"] != segment_ref:
        raise NotFound(f"Build with ref {build_ref} for client key {tenant.client_key} was not found")
    return build


def members(
    conn: Connection, tenant: Tenant, segment_ref: str, build_ref: str | None, change: str | None, page: tuple[int, int]
) -> tuple[Record, int, list[str]]:
    """Members of the latest (or named) successful build: 409 if never built, 410 if its set is gone."""
    require(conn, tenant, segment_ref)
    latest = segment_store.latest_success
    build = build_of(conn, tenant, segment_ref, build_ref) if build_ref else latest(conn, segment_ref)
    if build is None:
        raise ApiError("The segment has not been built yet.", status=409)
    if build["status"] != "success":
        raise ApiError(f"Build {build['ref']} did not succeed.", status=409)
    if not build["membersKept"]:
        raise ApiError(f"The members of build {build['ref']} are no longer kept.", status=410)
    other: int | None = None
    previous = segment_store.latest_success(conn, segment_ref, before_id=build["id"]) if change else None
    if change and previous is not None:
        if not previous["membersKept"]:
            raise ApiError(f"The members of build {previous['ref']} are no longer kept.", status=410)
        other = previous["id"]
    offset, limit = page
    if change == "removed":
        if previous is None:
            return build, 0, []
        total, refs = segment_store.member_page(conn, previous["id"], build["id"], offset, limit)
    else:
        total, refs = segment_store.member_page(conn, build["id"], other, offset, limit)
    return build, total, refs


def settings(conn: Connection, tenant: Tenant) -> dict[str, Any]:
    return {"segmentBuildSchedule": tenant_store.find_by_id(conn, tenant.id)["segmentBuildSchedule"]}


def change_settings(conn: Connection, tenant: Tenant, body: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """PATCH /settings: a new schedule moves every live segment's next build to its next slot."""
    for key in body:
        if key != "segmentBuildSchedule":
            raise UnsupportedField(key)
    if "segmentBuildSchedule" in body:
        schedule = check_cron(body["segmentBuildSchedule"], "segmentBuildSchedule")
        tenant_store.update_tenant(conn, tenant.id, {"segmentBuildSchedule": schedule})
        for segment in segment_store.live_segments(conn, tenant.id):
            SEGMENTS.modify(conn, segment, {"nextBuildAt": next_slot(schedule, now)}, segment["modifiedAt"])
    return settings(conn, tenant)


def distribution(conn: Connection, tenant: Tenant, name: str) -> list[tuple[Any, int]]:
    """Top values of a string, enum or boolean attribute, with how many guests hold each."""
    attr = catalogue(conn, tenant).find(name)
    if attr is None:
        raise NotFound(f"Attribute {name} for client key {tenant.client_key} was not found")
    if attr.type not in (Type.STRING, Type.STRING_LIST, Type.ENUM, Type.BOOLEAN):
        raise ApiError(f"attr: a distribution needs a string, enum or boolean attribute, not {attr.type}")
    return segment_store.distribution(conn, compiler(conn, tenant, utcnow()), attr)


def compiler(conn: Connection, tenant: Tenant, as_of: datetime) -> Compiler:
    """The store's compiler of definitions into SQL, for this tenant at this moment."""
    return Compiler(conn.dialect.name, tenant.id, as_of, tenant.default_currency, format_timestamp(as_of))
