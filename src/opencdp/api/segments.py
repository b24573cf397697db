"""Segments under `/opencdp/v1` (segments-exports.md §3): CRUD, lifecycle, builds, members, preview."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from opencdp.api.definition_schemas import DEFINITION
from opencdp.api.deps import CurrentTenant, Db, JsonBody, base_url, path_ref
from opencdp.api.responses import JsonResponse
from opencdp.api.rest import openapi
from opencdp.api.rest.collections import build as collection
from opencdp.api.rest.collections import parse_page
from opencdp.api.rest.render import wire
from opencdp.api.rest.reply import links, no_content, ok
from opencdp.core.errors import ApiError, InvalidParameter
from opencdp.core.segments import builds, reads, segments
from opencdp.core.segments.catalogue import Attribute
from opencdp.core.values import format_timestamp, utcnow
from opencdp.store.database import DeadlineExceeded, deadline
from opencdp.store.rows import Record

router = APIRouter(prefix="/opencdp/v1", tags=["segments"])
PREVIEW_SECONDS = 60.0
STATUSES = ("draft", "live", "paused")
OBJECT = openapi.OBJECT
SEGMENT_BODY = {"type": "object", "required": ["name", "definition"],
                "properties": {"name": {"type": "string"}, "description": {"type": ["string", "null"]},
                               "definition": DEFINITION}, "additionalProperties": False}  # fmt: skip
DEFINITION_BODY = {"type": "object", "required": ["definition"], "properties": {"definition": DEFINITION}}
SETTINGS_BODY = {"type": "object", "properties": {"segmentBuildSchedule": {"type": "string", "example": "0 2 * * *"}}}


def _href(request: Request, *parts: str) -> str:
    return "/".join((base_url(request), "opencdp/v1/segments", *parts))


def _envelope(request: Request, offset: int, limit: int, total: int, items: list[Any]) -> dict[str, Any]:
    path = base_url(request) + request.url.path
    kept = [(k, v) for k, v in request.query_params.multi_items() if k not in ("offset", "limit")]
    return {**collection(path, kept, offset, limit, total, items), "total": total}


def guest_summary(request: Request, guest: Record) -> dict[str, Any]:
    """Samples and expanded members: a few fields to recognise a guest by."""
    shown = {
        "ref": guest["ref"],
        "href": links(request).guest(guest["ref"]),
        "guestType": guest.get("guestType"),
        "firstName": guest.get("firstName"),
        "lastName": guest.get("lastName"),
        "email": (guest.get("emails") or [None])[0],
        "country": guest.get("country"),
        "firstSeen": guest.get("firstSeen"),
        "lastSeen": guest.get("lastSeen"),
    }
    return {name: wire(value) for name, value in shown.items()}


def render_build(request: Request, build: Record, samples: dict[str, Record]) -> dict[str, Any]:
    shown = {
        name: build.get(name)
        for name in (
            "ref", "segmentRef", "status", "trigger", "definitionVersion", "asOf", "startedAt", "finishedAt",
            "durationMs", "size", "totalGuests", "percentOfGuests", "added", "removed", "changePercent",
            "previousBuildRef", "error",
        )
    }  # fmt: skip
    shown["href"] = _href(request, build["segmentRef"], "builds", build["ref"])
    shown["sample"] = [guest_summary(request, samples.get(ref, {"ref": ref})) for ref in build.get("sample") or []]
    return {name: wire(value) for name, value in shown.items()}


def render_segment(request: Request, segment: Record, last: Record | None, users: list[Record]) -> dict[str, Any]:
    base = base_url(request)
    shown = {
        "ref": segment["ref"],
        "href": _href(request, segment["ref"]),
        "name": segment["name"],
        "description": segment.get("description"),
        "status": segment["status"],
        "version": segment["version"],
        "definition": segment["definition"],
        "createdAt": format_timestamp(segment["createdAt"]),
        "modifiedAt": format_timestamp(segment["modifiedAt"]),
        "lastBuild": render_build(request, last, {}) if last else None,
        "nextBuildAt": wire(segment.get("nextBuildAt")),
        "usedBy": [{"href": f"{base}/opencdp/v1/exports/{u['ref']}", "friendlyId": u["friendlyId"]} for u in users],
    }
    return shown


async def _segment_reply(request: Request, db: Any, tenant: Any, segment: Record, status: int = 200) -> Response:
    def extras(conn: Any) -> tuple[Record | None, list[Record]]:
        last = reads.latest_builds(conn, [segment["ref"]]).get(segment["ref"])
        return last, reads.used_by(conn, tenant.id, segment["ref"])

    last, users = await db.reading(extras)
    return JsonResponse(render_segment(request, segment, last, users), status_code=status)


async def _build_reply(request: Request, db: Any, tenant: Any, build: Record, status: int = 200) -> Response:
    samples = await db.reading(lambda conn: _samples(conn, tenant.id, [build]))
    return JsonResponse(render_build(request, build, samples), status_code=status)


def _samples(conn: Any, tenant_id: int, found: list[Record]) -> dict[str, Record]:
    refs = [ref for build in found for ref in build.get("sample") or []]
    return {guest["ref"]: guest for guest in reads.guest_summaries(conn, tenant_id, refs)}


@router.get("/segments", summary="Segments, newest first", responses=openapi.responses(openapi.collection(OBJECT), 400))
async def list_segments(request: Request, tenant: CurrentTenant, db: Db) -> Response:
    page = parse_page(request, ())
    status = request.query_params.get("status")
    if status is not None and status not in STATUSES:
        raise InvalidParameter("status", f"must be one of {', '.join(STATUSES)}")
    query = request.query_params.get("q")

    def work(conn: Any) -> tuple[int, list[Record], dict[str, Record], dict[str, list[Record]]]:
        total, found = reads.page_segments(conn, tenant.id, status, query, page.offset, page.limit)
        refs = [segment["ref"] for segment in found]
        users = {ref: reads.used_by(conn, tenant.id, ref) for ref in refs}
        return total, found, reads.latest_builds(conn, refs), users

    total, found, last, users = await db.reading(work)
    items = [render_segment(request, s, last.get(s["ref"]), users[s["ref"]]) for s in found]
    return ok(_envelope(request, page.offset, page.limit, total, items))


@router.post(
    "/segments",
    summary="Create a segment (as draft)",
    responses=openapi.responses(OBJECT, 400, created=True),
    openapi_extra=openapi.request_body(SEGMENT_BODY),
)
async def create_segment(request: Request, tenant: CurrentTenant, db: Db, body: JsonBody) -> Response:
    segment = await db.writing(lambda conn: segments.create(conn, tenant, body, utcnow()))
    return await _segment_reply(request, db, tenant, segment, 201)


@router.post(
    "/segments/validate",
    summary="Check a definition",
    responses=openapi.responses(OBJECT, 400),
    openapi_extra=openapi.request_body(DEFINITION_BODY),
)
async def validate(tenant: CurrentTenant, db: Db, body: JsonBody) -> Response:
    await db.reading(lambda conn: segments.check_definition(conn, tenant, _definition_of(body)))
    return ok({"valid": True})


@router.post(
    "/segments/preview",
    summary="Size of an unsaved definition",
    responses=openapi.responses(OBJECT, 400, 503),
    openapi_extra=openapi.request_body(DEFINITION_BODY),
)
async def preview(request: Request, tenant: CurrentTenant, db: Db, body: JsonBody) -> Response:
    raw = _definition_of(body)

    def work(conn: Any) -> dict[str, Any]:
        definition = segments.check_definition(conn, tenant, raw)
        with deadline(conn, PREVIEW_SECONDS):
            return builds.preview(conn, tenant, definition, utcnow())

    try:
        found = await db.reading_long(work)
    except DeadlineExceeded:
        raise ApiError("The preview took too long", f"Stopped after {PREVIEW_SECONDS:.0f} s.", status=503) from None
    found["sample"] = [guest_summary(request, guest) for guest in found["sample"]]
    found["asOf"] = format_timestamp(found["asOf"])
    return ok(found)


def _definition_of(body: dict[str, Any]) -> Any:
    for key in body:
        if key != "definition":
            raise ApiError(f"unknown key '{key}'", f"Attribute {key} is not supported.")
    if "definition" not in body:
        raise ApiError("definition: value is required", "Attribute definition is required.")
    return body["definition"]


@router.get("/segments/attributes", summary="The attribute catalogue", responses=openapi.responses(OBJECT))
async def attributes(tenant: CurrentTenant, db: Db) -> Response:
    catalogue = await db.reading(lambda conn: segments.catalogue(conn, tenant))
    return ok({"items": [attribute_json(attr) for attr in catalogue.listing()]})


def attribute_json(attr: Attribute) -> dict[str, Any]:
    """An attribute as the catalogue lists it, to API clients and to the console's segment builder."""
    shown: dict[str, Any] = {
        "attr": attr.name,
        "entity": attr.entity,
        "type": str(attr.type),
        "comparators": list(attr.comparators),
    }
    if attr.values:
        shown["values"] = list(attr.values)
    return shown


@router.get(
    "/segments/attributes/{attr}/distribution",
    summary="The 20 most common values of an attribute, with guest counts",
    responses=openapi.responses(OBJECT, 400, 404),
)
async def distribution(tenant: CurrentTenant, db: Db, attr: str) -> Response:
    found = await db.reading_long(lambda conn: segments.distribution(conn, tenant, attr))
    return ok({"attr": attr, "items": [{"value": value, "guests": count} for value, count in found]})


@router.get("/segments/{segment_ref}", summary="A segment", responses=openapi.responses(OBJECT, 404))
async def get_segment(request: Request, tenant: CurrentTenant, db: Db, segment_ref: str) -> Response:
    ref = path_ref(segment_ref, "Segment", tenant)
    segment = await db.reading(lambda conn: segments.require(conn, tenant, ref))
    return await _segment_reply(request, db, tenant, segment)


@router.put(
    "/segments/{segment_ref}",
    summary="Replace a segment",
    responses=openapi.responses(OBJECT, 400, 404, 409),
    openapi_extra=openapi.request_body(SEGMENT_BODY),
)
async def put_segment(request: Request, tenant: CurrentTenant, db: Db, segment_ref: str, body: JsonBody) -> Response:
    ref = path_ref(segment_ref, "Segment", tenant)
    segment = await db.writing(lambda conn: segments.replace(conn, tenant, ref, body, utcnow()))
    return await _segment_reply(request, db, tenant, segment)


@router.delete(
    "/segments/{segment_ref}",
    summary="Delete a segment and its builds (409 while an export uses it)",
    status_code=204,
    responses=openapi.responses(None, 409),
)
async def delete_segment(tenant: CurrentTenant, db: Db, segment_ref: str) -> Response:
    ref = path_ref(segment_ref, "Segment", tenant)
    await db.writing(lambda conn: segments.delete(conn, tenant, ref))
    return no_content()


@router.post("/segments/{segment_ref}/start", summary="Make a segment live", responses=openapi.responses(OBJECT, 409))
async def start(request: Request, tenant: CurrentTenant, db: Db, segment_ref: str) -> Response:
    ref = path_ref(segment_ref, "Segment", tenant)
    segment = await db.writing(lambda conn: segments.start(conn, tenant, ref, utcnow()))
    return await _segment_reply(request, db, tenant, segment)


@router.post("/segments/{segment_ref}/pause", summary="Pause a live segment", responses=openapi.responses(OBJECT, 409))
async def pause(request: Request, tenant: CurrentTenant, db: Db, segment_ref: str) -> Response:
    ref = path_ref(segment_ref, "Segment", tenant)
    segment = await db.writing(lambda conn: segments.pause(conn, tenant, ref, utcnow()))
    return await _segment_reply(request, db, tenant, segment)


@router.post(
    "/segments/{segment_ref}/build",
    summary="Queue a build",
    status_code=202,
    responses=openapi.responses(OBJECT, 409, status=202),
)
async def request_build(request: Request, tenant: CurrentTenant, db: Db, segment_ref: str) -> Response:
    ref = path_ref(segment_ref, "Segment", tenant)
    build = await db.writing(lambda conn: segments.request_build(conn, tenant, ref, "manual", utcnow()))
    return await _build_reply(request, db, tenant, build, 202)


@router.get("/segments/{segment_ref}/builds", summary="Builds, newest first", responses=openapi.responses(OBJECT))
async def list_builds(request: Request, tenant: CurrentTenant, db: Db, segment_ref: str) -> Response:
    page = parse_page(request, ())
    ref = path_ref(segment_ref, "Segment", tenant)

    def work(conn: Any) -> tuple[int, list[Record], dict[str, Record]]:
        segments.require(conn, tenant, ref)
        total, found = reads.page_builds(conn, tenant.id, ref, page.offset, page.limit)
        return total, found, _samples(conn, tenant.id, found)

    total, found, samples = await db.reading(work)
    items = [render_build(request, build, samples) for build in found]
    return ok(_envelope(request, page.offset, page.limit, total, items))


@router.get("/segments/{segment_ref}/builds/{build_ref}", summary="A build", responses=openapi.responses(OBJECT, 404))
async def get_build(request: Request, tenant: CurrentTenant, db: Db, segment_ref: str, build_ref: str) -> Response:
    ref = path_ref(segment_ref, "Segment", tenant)
    wanted = path_ref(build_ref, "Build", tenant)
    build = await db.reading(lambda conn: segments.build_of(conn, tenant, ref, wanted))
    return await _build_reply(request, db, tenant, build)


@router.get(
    "/segments/{segment_ref}/members",
    summary="Members of the latest (or a named) successful build",
    responses=openapi.responses(OBJECT, 400, 404, 409, 410),
)
async def members(request: Request, tenant: CurrentTenant, db: Db, segment_ref: str) -> Response:
    ref = path_ref(segment_ref, "Segment", tenant)
    params = request.query_params
    offset, limit = _member_page(params.get("offset"), params.get("limit"))
    change = params.get("change")
    if change not in (None, "added", "removed"):
        raise InvalidParameter("change", "must be added or removed")
    expand = params.get("expand") == "true"
    build_ref = params.get("build")
    wanted = path_ref(build_ref, "Build", tenant) if build_ref else None

    def work(conn: Any) -> tuple[Record, int, list[Any]]:
        build, total, refs = segments.members(conn, tenant, ref, wanted, change, (offset, limit))
        return build, total, reads.guest_summaries(conn, tenant.id, refs) if expand else refs

    _build, total, found = await db.reading(work)
    urls = links(request)
    items = [guest_summary(request, g) if expand else {"ref": g, "href": urls.guest(g)} for g in found]
    return ok(_envelope(request, offset, limit, total, items))


def _member_page(offset: str | None, limit: str | None) -> tuple[int, int]:
    def number(raw: str | None, name: str, default: int) -> int:
        if raw is None:
            return default
        if not raw.isdigit() or len(raw) > 9:
            raise InvalidParameter(name, "must be a non-negative integer")
        return int(raw)

    size = number(limit, "limit", 100)
    if not 10 <= size <= 1000:
        raise InvalidParameter("limit", "must be between 10 and 1000")
    return number(offset, "offset", 0), size


@router.get("/settings", summary="Tenant settings of the OpenCDP API", responses=openapi.responses(OBJECT))
async def get_settings(tenant: CurrentTenant, db: Db) -> Response:
    return ok(await db.reading(lambda conn: segments.settings(conn, tenant)))


@router.patch(
    "/settings",
    summary="Change tenant settings",
    responses=openapi.responses(OBJECT, 400),
    openapi_extra=openapi.request_body(SETTINGS_BODY),
)
async def patch_settings(tenant: CurrentTenant, db: Db, body: JsonBody) -> Response:
    return ok(await db.writing(lambda conn: segments.change_settings(conn, tenant, body, utcnow())))
