"""Console pages about background work a marketer follows: batches and the Stream journal, segments and
their builds, exports."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import orjson
from fastapi import APIRouter, Request
from markupsafe import Markup
from sqlalchemy import Connection
from starlette.responses import JSONResponse, RedirectResponse, Response

from opencdp.api.deps import base_url, path_ref
from opencdp.api.exports import policy_of
from opencdp.api.responses import error_body
from opencdp.api.segments import attribute_json
from opencdp.api.ui.guests import PAGE, offset_of
from opencdp.api.ui.security import Form, Session
from opencdp.api.ui.templates import count, page, time_chart
from opencdp.core import json_input
from opencdp.core.batch import batches, links
from opencdp.core.console import Session as ConsoleSession
from opencdp.core.errors import ApiError
from opencdp.core.exports import definitions, listing
from opencdp.core.exports import reads as export_reads
from opencdp.core.segments import builds, segments
from opencdp.core.segments import reads as segment_reads
from opencdp.core.segments.definition import InvalidDefinition
from opencdp.core.stream import journal
from opencdp.core.values import utcnow
from opencdp.store.rows import Record

router = APIRouter(include_in_schema=False)
RECENT_BATCHES = timedelta(days=30)
NEW_DEFINITION = "{}"  # every guest: the builder starts from nothing, and so does the JSON


def _reasons(error: ApiError) -> list[str]:
    if isinstance(error, InvalidDefinition):
        return [f"{path}: {reason}" for path, reason in error.errors[:20]]
    return [error.message]


def _refusal(error: ApiError) -> int:
    """The status of a page shown again with a refused change's errors; a missing record stays a 404 page."""
    if error.status == 404:
        raise error
    return 409 if error.status == 409 else 400


# --- batches ------------------------------------------------------------------------------------------


@router.get("/ui/batches")
async def batch_list(request: Request, session: Session) -> Response:
    offset = offset_of(request)
    since = utcnow() - RECENT_BATCHES

    def work(conn: Connection) -> tuple[int, list[Record], dict[str, Any], list[Record]]:
        total, found = batches.inspect_page(conn, session.tenant, since, [], None, offset, PAGE)
        _failed_total, failed = journal.failed(conn, session.tenant, 0, PAGE)
        return total, found, journal.status(conn, session.tenant, utcnow()), failed

    total, found, stream, failed = await request.app.state.db.reading(work)
    return page(request, "batches.html", batches=found, total=total, offset=offset, limit=PAGE, stream=stream,
                failed=failed)  # fmt: skip


@router.get("/ui/batches/{batch_ref}")
async def batch_detail(request: Request, session: Session, batch_ref: str) -> Response:
    settings = request.app.state.settings
    tenant = session.tenant

    def work(conn: Connection) -> tuple[Record, str | None]:
        batch = batches.require(conn, tenant, batch_ref)
        if batch["status"] != "error" or not batch["failedRecords"]:
            return batch, None
        key = links.secret(conn, settings.secret_key)
        expiry = links.expiry_from(utcnow(), settings.batch_url_ttl)
        path = f"/v2/batches/{batch['ref']}/log"
        return batch, links.sign(key, base_url(request), "GET", path, tenant.client_key, expiry)

    batch, log_url = await request.app.state.db.reading(work)
    return page(request, "batch.html", batch=batch, log_url=log_url)


# --- segments -----------------------------------------------------------------------------------------


@router.get("/ui/segments")
async def segment_list(request: Request, session: Session) -> Response:
    offset = offset_of(request)

    def work(conn: Connection) -> tuple[int, list[Record], dict[str, Record]]:
        total, found = segment_reads.page_segments(conn, session.tenant.id, None, None, offset, PAGE)
        return total, found, segment_reads.latest_builds(conn, [s["ref"] for s in found])

    total, found, last = await request.app.state.db.reading(work)
    return page(request, "segments.html", segments=found, last=last, total=total, offset=offset, limit=PAGE)


async def _segment_page(
    request: Request, session: ConsoleSession, ref: str | None, form: dict[str, Any] | None = None, status: int = 200,
    errors: list[str] | None = None, notice: str | None = None,
) -> Response:  # fmt: skip
    tenant = session.tenant

    def work(conn: Connection) -> dict[str, Any]:
        found: dict[str, Any] = {"catalogue": segments.catalogue(conn, tenant).listing(), "segment": None}
        if ref is None:
            return found
        segment = segments.require(conn, tenant, ref)
        _total, listed = segment_reads.page_builds(conn, tenant.id, ref, 0, 50)
        last = next((b for b in listed if b["status"] == "success"), None)
        sample = segment_reads.guest_summaries(conn, tenant.id, last["sample"] or []) if last else []
        return {**found, "segment": segment, "builds": listed, "sample": sample}

    found = await request.app.state.db.reading(work)
    segment = found["segment"]
    if form is None:
        form = {"name": "", "description": "", "definition": NEW_DEFINITION}
        if segment:
            form = {"name": segment["name"], "description": segment.get("description") or "",
                    "definition": orjson.dumps(segment["definition"], option=orjson.OPT_INDENT_2).decode()}  # fmt: skip
    done = [b for b in reversed(found.get("builds", [])) if b["status"] == "success"]
    size_chart = time_chart([(b["asOf"], Decimal(b["size"])) for b in done], "guests", count)
    steps = segments.actions(segment) if segment else ()
    locked = bool(segment) and not segments.definition_may_change(segment)
    listed = orjson.dumps([attribute_json(attr) for attr in found["catalogue"]]).decode()
    catalogue_json = Markup(listed.replace("<", "\\u003c"))  # safe inside <script>: no "</script>" can close it
    return page(request, "segment.html", status, form=form, errors=errors, notice=notice, size_chart=size_chart,
                steps=steps, locked=locked, catalogue_json=catalogue_json, **found)  # fmt: skip


def _json_refusal(request: Request, error: ApiError) -> Response:
    """The builder's calls are refused in the API's error shape, with each reason listed for its display."""
    more_info = request.app.state.settings.more_info_url
    body = error_body(error.status, error.status, error.message, error.developer_message, more_info)
    return JSONResponse({**body, "errors": _reasons(error)}, status_code=error.status)


@router.post("/ui/segments/estimate")
async def segment_estimate(request: Request, session: Session, form: Form) -> Response:
    """The builder's estimate as it edits: the size of a definition not saved, or why it is not valid yet."""
    tenant = session.tenant
    try:
        definition = _json_field("definition", form.get("definition", ""))

        def measure(conn: Connection) -> dict[str, Any]:
            return builds.preview(conn, tenant, segments.check_definition(conn, tenant, definition), utcnow())

        found = await request.app.state.db.reading_long(measure)
    except ApiError as error:
        return _json_refusal(request, error)
    return JSONResponse({name: found[name] for name in ("size", "totalGuests", "percentOfGuests")})


@router.get("/ui/segments/values")
async def segment_values(request: Request, session: Session, attr: str = "") -> Response:
    """The builder's value picker: the attribute's most common values in the tenant's data."""
    try:
        found = await request.app.state.db.reading_long(lambda conn: segments.distribution(conn, session.tenant, attr))
    except ApiError as error:
        return _json_refusal(request, error)
    return JSONResponse({"attr": attr, "values": [value for value, _guests in found if isinstance(value, str)]})


@router.get("/ui/segments/new")
async def segment_new(request: Request, session: Session) -> Response:
    return await _segment_page(request, session, None)


@router.get("/ui/segments/{segment_ref}")
async def segment_detail(request: Request, session: Session, segment_ref: str) -> Response:
    saved = request.query_params.get("saved")
    notice = f"Saved: version {saved}." if saved and saved.isdigit() else None
    return await _segment_page(request, session, path_ref(segment_ref, "Segment", session.tenant), notice=notice)


@router.post("/ui/segments/new")
async def segment_create(request: Request, session: Session, form: Form) -> Response:
    return await _segment_form(request, session, None, form)


@router.post("/ui/segments/{segment_ref}")
async def segment_save(request: Request, session: Session, form: Form, segment_ref: str) -> Response:
    return await _segment_form(request, session, path_ref(segment_ref, "Segment", session.tenant), form)


async def _segment_form(request: Request, session: ConsoleSession, ref: str | None, form: dict[str, str]) -> Response:
    """Validate, Calculate size or Save: errors by path with the input kept, or the outcome."""
    kept = {name: form.get(name, "") for name in ("name", "description", "definition")}
    action = form.get("action", "save")
    tenant, db = session.tenant, request.app.state.db
    try:
        definition = _json_field("definition", kept["definition"])
        if action == "validate":
            await db.reading(lambda conn: segments.check_definition(conn, tenant, definition))
            return await _segment_page(request, session, ref, kept, notice="The definition is valid.")
        if action == "size":

            def measure(conn: Connection) -> dict[str, Any]:
                return builds.preview(conn, tenant, segments.check_definition(conn, tenant, definition), utcnow())

            found = await db.reading_long(measure)
            notice = f"{found['size']:,} of {found['totalGuests']:,} guests ({found['percentOfGuests']} %)"
            return await _segment_page(request, session, ref, kept, notice=notice)
        body = {"name": kept["name"], "description": kept["description"] or None, "definition": definition}
        if ref is None:
            saved = await db.writing(lambda conn: segments.create(conn, tenant, body, utcnow()))
        else:
            saved = await db.writing(lambda conn: segments.replace(conn, tenant, ref, body, utcnow()))
    except ApiError as error:
        return await _segment_page(request, session, ref, kept, _refusal(error), _reasons(error))
    return RedirectResponse(f"/ui/segments/{saved['ref']}?saved={saved['version']}", status_code=303)


@router.post("/ui/segments/{segment_ref}/{action}")
async def segment_action(request: Request, session: Session, _form: Form, segment_ref: str, action: str) -> Response:
    ref = path_ref(segment_ref, "Segment", session.tenant)
    tenant, now = session.tenant, utcnow()
    steps = {
        "start": lambda conn: segments.start(conn, tenant, ref, now),
        "pause": lambda conn: segments.pause(conn, tenant, ref, now),
        "build": lambda conn: segments.request_build(conn, tenant, ref, "manual", now),
        "delete": lambda conn: segments.delete(conn, tenant, ref),
    }
    if action not in steps:
        raise ApiError("Unknown action", status=404)
    try:
        await request.app.state.db.writing(steps[action])
    except ApiError as error:
        return await _segment_page(request, session, ref, status=_refusal(error), errors=[error.message])
    return RedirectResponse("/ui/segments" if action == "delete" else f"/ui/segments/{ref}", status_code=303)


# --- exports ------------------------------------------------------------------------------------------


@router.get("/ui/exports")
async def export_list(request: Request, session: Session) -> Response:
    offset = offset_of(request)
    tenant = session.tenant

    def work(conn: Connection) -> dict[str, Any]:
        total, found = export_reads.page_definitions(conn, tenant.id, offset, PAGE)
        _n, all_segments = segment_reads.page_segments(conn, tenant.id, None, None, 0, 1000)
        last = export_reads.latest_executions(conn, [e["ref"] for e in found])
        names = {s["ref"]: s["name"] for s in all_segments}
        return {"exports": found, "total": total, "last": last, "names": names}

    found = await request.app.state.db.reading(work)
    return page(request, "exports.html", offset=offset, limit=PAGE, **found)


FIELD_CHOICES = {"guest": definitions.GUEST_FIELDS, "order": definitions.ORDER_FIELDS, "item": definitions.ITEM_FIELDS}
NEW_EXPORT: dict[str, Any] = {
    "name": "", "friendlyId": "", "segmentRef": "", "type": "full", "format": "csv", "delimiter": ",",
    "header": True, "quoteAll": False, "scheduleType": "instant", "scheduleDay": "monday", "scheduleTime": "06:00",
    "scheduleExpression": "0 6 * * 1-5",
    "maxRecordsPerFile": "500000", "webhookUrl": "", "guest": ["email", "firstName", "lastName"], "identifiers": "",
    "extensions": "", "orderLimit": "3", "orderFields": ["referenceId", "orderedAt", "price", "currencyCode"],
    "itemFields": [], "orderExtensions": False,
}  # fmt: skip


def _export_form(found: Record | None) -> dict[str, Any]:
    """The form's fields for a stored export (or a new one): every part of its definition a control."""
    if found is None:
        return dict(NEW_EXPORT)
    output, schedule = found["output"], found["schedule"]
    orders = output.get("orders") or {}
    return {
        "name": found["name"], "friendlyId": found["friendlyId"], "segmentRef": found["segmentRef"],
        "type": found["type"], "format": found["format"], "delimiter": found["csv"]["delimiter"],
        "header": found["csv"]["header"], "quoteAll": found["csv"]["quoteAll"], "scheduleType": schedule["type"],
        "scheduleDay": schedule.get("day", "monday"), "scheduleTime": schedule.get("time", "06:00"),
        "scheduleExpression": schedule.get("expression", "0 6 * * 1-5"),
        "maxRecordsPerFile": str(found["maxRecordsPerFile"]), "webhookUrl": (found.get("webhook") or {}).get("url", ""),
        "guest": list(output.get("guest") or ()), "identifiers": ", ".join(output.get("identifiers") or ()),
        "extensions": ", ".join(output.get("extensions") or ()), "orderLimit": str(orders.get("limit", 0)),
        "orderFields": list(orders.get("fields") or ()), "itemFields": list(orders.get("itemFields") or ()),
        "orderExtensions": bool(orders.get("extensions")),
    }  # fmt: skip


def _posted_export(form: dict[str, str]) -> dict[str, Any]:
    """The posted form in the shape `_export_form` gives: what the page shows again when it is refused."""
    ticked = {name for name, value in form.items() if value == "on"}
    return {
        **{name: form.get(name, NEW_EXPORT[name]) for name in NEW_EXPORT if isinstance(NEW_EXPORT[name], str)},
        "header": "header" in ticked, "quoteAll": "quoteAll" in ticked, "orderExtensions": "orderExtensions" in ticked,
        "guest": [f for f in definitions.GUEST_FIELDS if f"guest.{f}" in ticked],
        "orderFields": [f for f in definitions.ORDER_FIELDS if f"order.{f}" in ticked],
        "itemFields": [f for f in definitions.ITEM_FIELDS if f"item.{f}" in ticked],
    }  # fmt: skip


def _listed(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _export_body(shown: dict[str, Any]) -> dict[str, Any]:
    """The form as an API body: the definition's checks (`definitions.create`) then speak for each field."""
    output: dict[str, Any] = {"guest": shown["guest"]}
    if _listed(shown["identifiers"]):
        output["identifiers"] = _listed(shown["identifiers"])
    if _listed(shown["extensions"]):
        output["extensions"] = _listed(shown["extensions"])
    limit = shown["orderLimit"].strip()
    if limit not in ("", "0"):
        output["orders"] = {"limit": int(limit) if limit.isdigit() else limit, "fields": shown["orderFields"],
                            "itemFields": shown["itemFields"], "extensions": shown["orderExtensions"]}  # fmt: skip
    schedule: dict[str, Any] = {"type": shown["scheduleType"]}
    if schedule["type"] == "cron":
        schedule["expression"] = shown["scheduleExpression"]
    elif schedule["type"] != "instant":
        schedule["time"] = shown["scheduleTime"]
    if schedule["type"] == "weekly":
        schedule["day"] = shown["scheduleDay"]
    size = shown["maxRecordsPerFile"].strip()
    body: dict[str, Any] = {
        "name": shown["name"], "segmentRef": shown["segmentRef"], "type": shown["type"], "format": shown["format"],
        "output": output, "schedule": schedule,
        "csv": {"delimiter": shown["delimiter"], "header": shown["header"], "quoteAll": shown["quoteAll"]},
        "maxRecordsPerFile": int(size) if size.isdigit() else size or None,
    }  # fmt: skip
    if shown["friendlyId"].strip():
        body["friendlyId"] = shown["friendlyId"].strip()
    return body


async def _export_page(
    request: Request, session: ConsoleSession, ident: str | None, form: dict[str, Any] | None = None,
    status: int = 200, errors: list[str] | None = None, notice: str | None = None,
) -> Response:  # fmt: skip
    tenant, settings = session.tenant, request.app.state.settings
    wants_preview = request.method == "GET" and request.query_params.get("preview") == "1"

    def work(conn: Connection) -> dict[str, Any]:
        _n, all_segments = segment_reads.page_segments(conn, tenant.id, None, None, 0, 1000)
        found: dict[str, Any] = {"segments": all_segments, "export": None, "executions": [], "preview": None}
        if ident is None:
            return found
        export = definitions.require(conn, tenant, ident)
        _n, runs = export_reads.page_executions(conn, tenant.id, export["ref"], 0, 25)
        key = links.secret(conn, settings.secret_key)
        for run in runs:
            run["links"] = _links(request, key, run, export, tenant, settings.export_url_ttl)
        preview = definitions.preview(conn, tenant, export["ref"], 5, utcnow()) if wants_preview else None
        return {**found, "export": export, "executions": runs, "preview": preview}

    found = await request.app.state.db.reading_long(work)
    shown = form or _export_form(found["export"])
    schedule = definitions.describe_schedule(_export_body(shown)["schedule"], utcnow())
    steps = definitions.actions(found["export"]) if found["export"] else ()
    return page(request, "export.html", status, form=shown, errors=errors, notice=notice, schedule_words=schedule,
                fields=FIELD_CHOICES, days=definitions.DAYS, steps=steps, **found)  # fmt: skip


def _links(request: Request, key: bytes, run: Record, export: Record, tenant: Any, ttl: int) -> list[dict[str, Any]]:
    if run["status"] != "success" or not run["files"]:
        return []
    files = request.app.state.settings.files()
    shown = listing.listing(key, base_url(request), run, export, tenant, ttl, utcnow(), files)
    names = [f["name"] for f in listing.files_of(run)]
    return [{**entry, "name": name} for entry, name in zip(shown["exports"], names, strict=True)]


@router.get("/ui/exports/new")
async def export_new(request: Request, session: Session) -> Response:
    return await _export_page(request, session, None)


@router.get("/ui/exports/{ident}")
async def export_detail(request: Request, session: Session, ident: str) -> Response:
    notice = "Saved." if request.query_params.get("saved") == "1" else None
    return await _export_page(request, session, ident, notice=notice)


def _json_field(name: str, text: str) -> Any:
    """A form field holding JSON, parsed and checked as an API body would be; errors name the field."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise ApiError(f"{name}: not valid JSON ({error})") from None
    json_input.check(value, text, name)
    return value


@router.post("/ui/exports/new")
async def export_create(request: Request, session: Session, form: Form) -> Response:
    return await _export_save(request, session, None, form)


@router.post("/ui/exports/{ident}")
async def export_save(request: Request, session: Session, form: Form, ident: str) -> Response:
    return await _export_save(request, session, ident, form)


async def _export_save(request: Request, session: ConsoleSession, ident: str | None, form: dict[str, str]) -> Response:
    tenant, now = session.tenant, utcnow()
    kept = _posted_export(form)
    try:
        body = _export_body(kept)
        if form.get("webhookUrl", "").strip():
            body["webhook"] = {"url": form["webhookUrl"].strip(), "secret": form.get("webhookSecret") or None}
        policy = await policy_of(request, body)
        if ident is None:
            saved = await request.app.state.db.writing(lambda conn: definitions.create(conn, tenant, body, policy, now))
        else:
            saved = await request.app.state.db.writing(
                lambda conn: definitions.replace(conn, tenant, ident, body, policy, now)
            )
    except ApiError as error:
        return await _export_page(request, session, ident, kept, _refusal(error), _reasons(error))
    return RedirectResponse(f"/ui/exports/{saved['friendlyId']}?saved=1", status_code=303)


@router.post("/ui/exports/{ident}/{action}")
async def export_action(request: Request, session: Session, _form: Form, ident: str, action: str) -> Response:
    tenant, now = session.tenant, utcnow()
    steps = {
        "run": lambda conn: definitions.run(conn, tenant, ident, False, False, now),
        "start": lambda conn: definitions.start(conn, tenant, ident, now),
        "pause": lambda conn: definitions.pause(conn, tenant, ident, now),
        "delete": lambda conn: definitions.delete(conn, tenant, ident),
    }
    if action not in steps:
        raise ApiError("Unknown action", status=404)
    try:
        found = await request.app.state.db.writing(steps[action])
    except ApiError as error:
        return await _export_page(request, session, ident, status=_refusal(error), errors=[error.message])
    if action == "delete":
        return RedirectResponse("/ui/exports", status_code=303)
    target = found.get("friendlyId") or ident
    return RedirectResponse(f"/ui/exports/{target}", status_code=303)
