"""Audience exports: `/opencdp/v1/exports` (§4.4), Sitecore's `/v2/audienceExports` listings (§4.5), the
OAuth token endpoint, and the signed file downloads.
"""

from __future__ import annotations

from typing import Any, cast

import anyio.to_thread
import orjson
from fastapi import APIRouter, Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse

from opencdp.api.definition_schemas import EXPORT_BODY
from opencdp.api.deps import CurrentTenant, Db, JsonBody, base_url, form_of
from opencdp.api.responses import JsonResponse
from opencdp.api.rest import openapi
from opencdp.api.rest.collections import build as collection
from opencdp.api.rest.collections import parse_page
from opencdp.api.rest.reply import no_content, ok
from opencdp.config import Settings
from opencdp.core import oauth
from opencdp.core.batch import links
from opencdp.core.errors import ApiError, InvalidParameter, NotFound
from opencdp.core.exports import definitions, listing, reads
from opencdp.core.exports.writers import parquet_available
from opencdp.core.segments import segments
from opencdp.core.tenants import Tenant
from opencdp.core.values import format_timestamp, utcnow
from opencdp.store.rows import Record

router = APIRouter(tags=["exports"])
OBJECT = openapi.OBJECT
PREFIX = "/opencdp/v1/exports"
RUN_BODY = {"type": "object", "properties": {"buildSegment": {"type": "boolean"}}, "additionalProperties": False}


def _settings(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)


async def policy_of(request: Request, body: dict[str, Any]) -> definitions.Policy:
    """The server's rules for this body; the webhook host is resolved here, on a thread, before any write."""
    allowed = _settings(request).webhook_allow_private
    private = False if allowed else await anyio.to_thread.run_sync(definitions.private_webhook_host, body)
    return definitions.Policy(parquet_available(), allowed, private)


def render(request: Request, found: Record, last: Record | None) -> dict[str, Any]:
    webhook = found.get("webhook")
    return {
        "ref": found["ref"],
        "href": f"{base_url(request)}{PREFIX}/{found['ref']}",
        "friendlyId": found["friendlyId"],
        "name": found["name"],
        "segmentRef": found["segmentRef"],
        "type": found["type"],
        "format": found["format"],
        "csv": found["csv"],
        "output": found["output"],
        "schedule": found["schedule"],
        "maxRecordsPerFile": found["maxRecordsPerFile"],
        "webhook": {"url": webhook["url"]} if webhook else None,  # the secret is write-only
        "status": found["status"],
        "nextRunAt": format_timestamp(found["nextRunAt"]) if found.get("nextRunAt") else None,
        "lastExecution": {"executionRef": last["ref"], "status": last["status"]} if last else None,
        "createdAt": format_timestamp(found["createdAt"]),
        "modifiedAt": format_timestamp(found["modifiedAt"]),
    }


async def _reply(request: Request, db: Any, found: Record, status: int = 200) -> Response:
    last = await db.reading(lambda conn: reads.latest_executions(conn, [found["ref"]]).get(found["ref"]))
    return JsonResponse(render(request, found, last), status_code=status)


def _envelope(request: Request, offset: int, limit: int, total: int, items: list[Any]) -> dict[str, Any]:
    path = base_url(request) + request.url.path
    kept = [(k, v) for k, v in request.query_params.multi_items() if k not in ("offset", "limit")]
    return {**collection(path, kept, offset, limit, total, items), "total": total}


@router.get(PREFIX, summary="Audience export definitions", responses=openapi.responses(openapi.collection(OBJECT)))
async def list_exports(request: Request, tenant: CurrentTenant, db: Db) -> Response:
    page = parse_page(request, ())

    def work(conn: Any) -> tuple[int, list[Record], dict[str, Record]]:
        total, found = reads.page_definitions(conn, tenant.id, page.offset, page.limit)
        return total, found, reads.latest_executions(conn, [f["ref"] for f in found])

    total, found, last = await db.reading(work)
    items = [render(request, f, last.get(f["ref"])) for f in found]
    return ok(_envelope(request, page.offset, page.limit, total, items))


@router.post(
    PREFIX,
    summary="Create an audience export",
    responses=openapi.responses(OBJECT, 400, 409, created=True),
    openapi_extra=openapi.request_body(EXPORT_BODY),
)
async def create_export(request: Request, tenant: CurrentTenant, db: Db, body: JsonBody) -> Response:
    policy = await policy_of(request, body)
    found = await db.writing(lambda conn: definitions.create(conn, tenant, body, policy, utcnow()))
    return await _reply(request, db, found, 201)


@router.get(PREFIX + "/{ident}", summary="An audience export", responses=openapi.responses(OBJECT, 404))
async def get_export(request: Request, tenant: CurrentTenant, db: Db, ident: str) -> Response:
    found = await db.reading(lambda conn: definitions.require(conn, tenant, ident))
    return await _reply(request, db, found)


@router.put(
    PREFIX + "/{ident}",
    summary="Replace an audience export",
    responses=openapi.responses(OBJECT, 400, 409),
    openapi_extra=openapi.request_body(EXPORT_BODY),
)
async def put_export(request: Request, tenant: CurrentTenant, db: Db, ident: str, body: JsonBody) -> Response:
    policy = await policy_of(request, body)
    found = await db.writing(lambda conn: definitions.replace(conn, tenant, ident, body, policy, utcnow()))
    return await _reply(request, db, found)


@router.delete(PREFIX + "/{ident}", summary="Delete an audience export with its runs and files", status_code=204)
async def delete_export(request: Request, tenant: CurrentTenant, db: Db, ident: str) -> Response:
    def work(conn: Any) -> list[Record]:
        definition = definitions.require(conn, tenant, ident)
        _total, runs = reads.page_executions(conn, tenant.id, definition["ref"], 0, 1_000_000)
        definitions.delete(conn, tenant, ident)
        return runs

    runs = await db.writing(work)
    files = _settings(request).files()
    for run in runs:
        await anyio.to_thread.run_sync(listing.delete_files, files, run["ref"])
    return no_content()


@router.post(PREFIX + "/{ident}/start", summary="Turn the schedule on", responses=openapi.responses(OBJECT, 409))
async def start_export(request: Request, tenant: CurrentTenant, db: Db, ident: str) -> Response:
    found = await db.writing(lambda conn: definitions.start(conn, tenant, ident, utcnow()))
    return await _reply(request, db, found)


@router.post(PREFIX + "/{ident}/pause", summary="Turn the schedule off", responses=openapi.responses(OBJECT, 409))
async def pause_export(request: Request, tenant: CurrentTenant, db: Db, ident: str) -> Response:
    found = await db.writing(lambda conn: definitions.pause(conn, tenant, ident, utcnow()))
    return await _reply(request, db, found)


@router.post(
    PREFIX + "/{ident}/run",
    summary="Run now",
    status_code=202,
    responses=openapi.responses(OBJECT, 400, status=202),
    openapi_extra=openapi.request_body(RUN_BODY, optional=True),
)
async def run_export(request: Request, tenant: CurrentTenant, db: Db, ident: str) -> Response:
    raw = await request.body()
    options: Any = {}
    if raw.strip():
        try:
            options = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ApiError("Unable to parse JSON string") from None
    if not isinstance(options, dict) or set(options) - {"buildSegment"}:
        raise ApiError("buildSegment: the body may only hold buildSegment")
    build_segment = options.get("buildSegment", False)
    if not isinstance(build_segment, bool):
        raise ApiError("buildSegment: value must be a boolean")

    def work(conn: Any) -> tuple[Record, Record]:
        definition = definitions.require(conn, tenant, ident)
        return definitions.run(conn, tenant, ident, build_segment, False, utcnow()), definition

    execution, definition = await db.writing(work)
    return JsonResponse(listing.execution(base_url(request), execution, definition, tenant), status_code=202)


@router.get(PREFIX + "/{ident}/preview", summary="The first records as they would be written",
            response_class=PlainTextResponse)  # fmt: skip
async def preview_export(tenant: CurrentTenant, db: Db, ident: str, limit: str = "5") -> Response:
    if not limit.isdigit() or not 1 <= int(limit) <= 20:
        raise InvalidParameter("limit", "must be between 1 and 20")

    found = await db.reading_long(lambda conn: definitions.preview(conn, tenant, ident, int(limit), utcnow()))
    text = found.text
    return PlainTextResponse(text)


@router.get(PREFIX + "/{ident}/executions", summary="Runs, newest first", responses=openapi.responses(OBJECT))
async def list_executions(request: Request, tenant: CurrentTenant, db: Db, ident: str) -> Response:
    page = parse_page(request, ())

    def work(conn: Any) -> tuple[Record, int, list[Record]]:
        definition = definitions.require(conn, tenant, ident)
        return definition, *reads.page_executions(conn, tenant.id, definition["ref"], page.offset, page.limit)

    definition, total, found = await db.reading(work)
    items = [listing.execution(base_url(request), f, definition, tenant) for f in found]
    return ok(_envelope(request, page.offset, page.limit, total, items))


def _execution(conn: Any, tenant: Tenant, ref: str, ident: str | None = None) -> tuple[Record, Record]:
    found = reads.get_execution(conn, tenant.id, ref.lower())
    definition = definitions.require(conn, tenant, found["definitionRef"]) if found else None
    if (
        found is None
        or definition is None
        or (ident is not None and ident not in (definition["ref"], definition["friendlyId"]))
    ):
        raise NotFound(f"Execution {ref} for client key {tenant.client_key} was not found")
    return found, definition


@router.get(PREFIX + "/{ident}/executions/{execution_ref}", summary="A run", responses=openapi.responses(OBJECT, 404))
async def get_execution(request: Request, tenant: CurrentTenant, db: Db, ident: str, execution_ref: str) -> Response:
    found, definition = await db.reading(lambda conn: _execution(conn, tenant, execution_ref, ident))
    return ok(listing.execution(base_url(request), found, definition, tenant))


async def _listing(request: Request, db: Any, tenant: Tenant, found: Record, definition: Record) -> Response:
    settings = _settings(request)
    key = await db.reading(lambda conn: links.secret(conn, settings.secret_key))
    now = utcnow()
    files = settings.files()
    return ok(listing.listing(key, base_url(request), found, definition, tenant, settings.export_url_ttl, now, files))


@router.get(PREFIX + "/{ident}/executions/{execution_ref}/files", summary="A run's files (signed links)",
            responses=openapi.responses(OBJECT, 404, 410))  # fmt: skip
async def execution_files(request: Request, tenant: CurrentTenant, db: Db, ident: str, execution_ref: str) -> Response:
    found, definition = await db.reading(lambda conn: _execution(conn, tenant, execution_ref, ident))
    return await _listing(request, db, tenant, found, definition)


# --- Sitecore's read API --------------------------------------------------------------------------------


@router.get("/v2/audienceExports/definitions/{ident}/latestExport", summary="Files of the newest successful run",
            responses=openapi.responses(OBJECT, 404, 410))  # fmt: skip
async def latest_export(request: Request, tenant: CurrentTenant, db: Db, ident: str) -> Response:
    def work(conn: Any) -> tuple[Record, Record]:
        definition = definitions.require(conn, tenant, ident)
        found = reads.latest_success(conn, definition["ref"])
        if found is None:
            raise NotFound(f"Audience export {ident} has no successful run")
        return found, definition

    found, definition = await db.reading(work)
    return await _listing(request, db, tenant, found, definition)


@router.get("/v2/audienceExports/definitions/{ident}/reports", summary="Reports of finished runs",
            responses=openapi.responses(OBJECT, 404))  # fmt: skip
async def reports(tenant: CurrentTenant, db: Db, ident: str) -> Response:
    def work(conn: Any) -> list[dict[str, Any]]:
        definition = definitions.require(conn, tenant, ident)
        live = segments.require(conn, tenant, definition["segmentRef"])["status"] == "live"
        _total, found = reads.page_executions(conn, tenant.id, definition["ref"], 0, 100, finished=True)
        return [listing.report(f, definition, tenant, live) for f in found]

    return JsonResponse(await db.reading(work))


@router.get("/v2/audienceExports/executions/{execution_ref}/export", summary="Files of a run",
            responses=openapi.responses(OBJECT, 404, 410))  # fmt: skip
async def execution_export(request: Request, tenant: CurrentTenant, db: Db, execution_ref: str) -> Response:
    found, definition = await db.reading(lambda conn: _execution(conn, tenant, execution_ref))
    return await _listing(request, db, tenant, found, definition)


OAUTH_ERROR = {"type": "object", "required": ["error"],
               "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}}}  # fmt: skip
TOKEN_FORM = {"type": "object", "required": ["grant_type"],
              "properties": {"grant_type": {"type": "string", "enum": ["client_credentials"]},
                             "client_id": {"type": "string"}, "client_secret": {"type": "string"}}}  # fmt: skip
ISSUED = {"type": "object", "required": ["access_token", "token_type", "expires_in"],
          "properties": {"access_token": {"type": "string"}, "token_type": {"type": "string"},
                         "expires_in": {"type": "integer"}}}  # fmt: skip


@router.post(
    "/oauth/token",
    summary="A bearer token for the audience export read API",
    openapi_extra={"requestBody": {"required": True,
                                   "content": {"application/x-www-form-urlencoded": {"schema": TOKEN_FORM}}}},
    responses={200: {"description": "OK", "content": {"application/json": {"schema": ISSUED}}},
               **{code: {"description": "Error", "content": {"application/json": {"schema": OAUTH_ERROR}}}
                  for code in (400, 401, 413)}},
)  # fmt: skip
async def token(request: Request, db: Db) -> Response:
    # RFC 6749 sends a urlencoded form; the standard library parses it without python-multipart
    try:
        form = await form_of(request)
    except ApiError as error:
        return JsonResponse({"error": "invalid_request", "error_description": error.developer_message}, error.status)
    if form.get("grant_type") != "client_credentials":
        return JsonResponse({"error": "unsupported_grant_type"}, status_code=400)
    client_id, secret = form.get("client_id"), form.get("client_secret")
    if not isinstance(client_id, str) or not isinstance(secret, str):
        return JsonResponse({"error": "invalid_client"}, status_code=401)
    settings = _settings(request)

    def work(conn: Any) -> dict[str, Any] | None:
        return oauth.issue(conn, links.secret(conn, settings.secret_key), client_id, secret, utcnow())

    issued = await db.reading(work)
    if issued is None:
        return JsonResponse({"error": "invalid_client"}, status_code=401)
    return JsonResponse(issued, headers={"Cache-Control": "no-store"})


@router.get("/files/exports/{execution_ref}/{name}", include_in_schema=False)
async def download(
    request: Request, db: Db, execution_ref: str, name: str, expires: str = "", sig: str = ""
) -> Response:
    settings = _settings(request)
    key = await db.reading(lambda conn: links.secret(conn, settings.secret_key))
    listing.check_file_link(key, execution_ref, name, expires, sig, utcnow())
    found = await anyio.to_thread.run_sync(listing.file_chunks, settings.files(), execution_ref, name)
    if found is None:
        raise ApiError("The file has expired.", status=410)
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    return StreamingResponse(found, media_type="application/octet-stream", headers=headers)
