"""The Batch API surface (batch-api.md): allocate, the signed upload, status, inspect, the signed log."""

from __future__ import annotations

import base64
import binascii
import hashlib
from datetime import timedelta
from typing import Any, cast

import anyio.to_thread
from fastapi import APIRouter, Request
from sqlalchemy import Connection
from starlette.responses import Response, StreamingResponse

from opencdp.api.deps import CurrentTenant, Db, JsonBody, base_url
from opencdp.api.rest import openapi
from opencdp.api.rest.collections import parse_page
from opencdp.api.rest.reply import ok, written
from opencdp.config import Settings
from opencdp.core import tenants
from opencdp.core.batch import batches, links
from opencdp.core.errors import ApiError, InvalidParameter
from opencdp.core.tenants import Tenant
from opencdp.core.values import format_timestamp, parse_timestamp, utcnow
from opencdp.store.rows import Record

router = APIRouter(prefix="/v2/batches", tags=["batches"])

BATCH_SCHEMA = {"type": "object", "properties": {"checksum": {"type": "string"}, "size": {"type": "integer"}},
                "required": ["checksum", "size"]}  # fmt: skip
BATCH = {"type": "object", "required": ["href", "ref", "status"],
         "properties": {"href": {"type": "string"}, "ref": {"type": "string"}, "checksum": {"type": "string"},
                        "size": {"type": "integer"}, "location": {"type": "object"}, "status": {"type": "object"},
                        "statistics": {"type": "object"}, "createdAt": {"type": "string"},
                        "modifiedAt": {"type": "string"}}}  # fmt: skip
INSPECTED = {"type": "object", "required": ["totalCount", "offset", "limit", "items"],
             "properties": {"totalCount": {"type": "integer"}, "offset": {"type": "integer"},
                            "limit": {"type": "integer"},
                            "items": {"type": "array", "items": {"type": "object"}}}}  # fmt: skip


def _settings(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)


def files(request: Request) -> Any:
    """The file store (a directory or a bucket), which the core's batch functions read and write."""
    return _settings(request).files()


def _path(ref: str, action: str) -> str:
    return f"/v2/batches/{ref}/{action}"


def render(request: Request, conn: Connection, tenant: Tenant, batch: Record, *, inspect: bool) -> dict[str, Any]:
    """The batch resource; fresh log links are signed on every read."""
    settings = _settings(request)
    key = links.secret(conn, settings.secret_key)
    base = base_url(request)
    upload = (
        batches.upload_link(files(request), tenant.id, batch, utcnow()) if settings.direct_uploads else None
    ) or links.sign(key, base, "PUT", _path(batch["ref"], "upload"), tenant.client_key, batch["locationExpires"])
    code = batch["status"]
    status: dict[str, Any] = {"code": "processing" if code == "file_uploaded" and not inspect else code}
    if batch.get("message"):
        status["message"] = batch["message"]
    if code == "error" and batch["failedRecords"] > 0:
        expiry = links.expiry_from(utcnow(), settings.batch_url_ttl)
        status["log"] = links.sign(key, base, "GET", _path(batch["ref"], "log"), tenant.client_key, expiry)
    prefix = "/v2/batches/inspect" if inspect else "/v2/batches"
    return {
        "href": f"{base}{prefix}/{batch['ref']}",
        "ref": batch["ref"],
        "checksum": batch["checksum"],
        "size": batch["size"],
        "location": {"href": upload, "expiry": format_timestamp(batch["locationExpires"])},
        "status": status,
        "statistics": statistics(batch),
        "createdAt": format_timestamp(batch["createdAt"]),
        "modifiedAt": format_timestamp(batch["modifiedAt"]),
    }


def statistics(batch: Record) -> dict[str, Any]:
    started, finished = batch.get("startedAt"), batch.get("finishedAt")
    run = (finished or utcnow()) - started if started else timedelta(0)
    return {
        "totalRecords": batch["totalRecords"],
        "successfulRecords": batch["successfulRecords"],
        "failedRecords": batch["failedRecords"],
        "skippedRecords": batch["skippedRecords"],
        "runTimeMs": int(run.total_seconds() * 1000),
        "startedAt": format_timestamp(started) if started else None,
        "finishedAt": format_timestamp(finished) if finished else None,
    }


@router.get("/inspect", summary="The tenant's recent batches, newest first", responses=openapi.responses(INSPECTED))
async def inspect_list(request: Request, tenant: CurrentTenant, db: Db) -> Response:
    params = request.query_params
    page = parse_page(request, ())
    statuses = [s for s in params.get("status", "").split(",") if s]
    if any(s not in batches.STATUSES for s in statuses):
        raise ApiError("Invalid status filter")
    before = None
    if params.get("createdBefore"):
        before = parse_timestamp(params["createdBefore"], allow_date=True)
        if before is None:
            raise InvalidParameter("createdBefore")
    since = utcnow() - timedelta(days=_settings(request).batch_retention_days)

    def load(conn: Connection) -> dict[str, Any]:
        total, found = batches.inspect_page(conn, tenant, since, statuses, before, page.offset, page.limit)
        items = []
        for batch in found:
            shown = render(request, conn, tenant, batch, inspect=True)
            item = {"href": shown["href"], "ref": batch["ref"], "status": shown["status"]["code"]}
            if "log" in shown["status"]:
                item["log"] = shown["status"]["log"]
            items.append({**item, "createdAt": shown["createdAt"], "modifiedAt": shown["modifiedAt"]})
        return {"totalCount": total, "offset": page.offset, "limit": page.limit, "items": items}

    return ok(await db.reading(load))


@router.get("/inspect/{ref}", summary="A batch, reporting file_uploaded as such", responses=openapi.responses(BATCH))
async def inspect_one(request: Request, tenant: CurrentTenant, db: Db, ref: str) -> Response:
    return ok(
        await db.reading(lambda conn: render(request, conn, tenant, batches.require(conn, tenant, ref), inspect=True))
    )


@router.get("/{ref}", summary="A batch's status and statistics", responses=openapi.responses(BATCH))
async def get_batch(request: Request, tenant: CurrentTenant, db: Db, ref: str) -> Response:
    return ok(
        await db.reading(lambda conn: render(request, conn, tenant, batches.require(conn, tenant, ref), inspect=False))
    )


@router.put(
    "/{ref}",
    summary="Allocate a batch: 201, or 200 for the same checksum and size again",
    openapi_extra=openapi.request_body(BATCH_SCHEMA),
    responses=openapi.responses(BATCH, 409, created=True),
)
async def allocate(request: Request, tenant: CurrentTenant, db: Db, body: JsonBody, ref: str) -> Response:
    batch_ref = batches.batch_ref(ref)
    if batch_ref is None:
        raise ApiError("Invalid batch ref")
    settings = _settings(request)
    checksum, size = batches.parse_allocation(body, settings.batch_max_file_size)

    def work(conn: Connection) -> dict[str, Any]:
        now = utcnow()
        expiry = links.expiry_from(now, settings.batch_url_ttl)
        batch, created = batches.allocate(conn, tenant, batch_ref, checksum, size, now, expiry)
        shown = render(request, conn, tenant, batch, inspect=False)
        del shown["statistics"]
        return {**shown, "created": created}

    shown = await db.writing(work)
    created = shown.pop("created")
    return written(shown, created)


@router.put("/{ref}/upload", include_in_schema=False)
async def upload(request: Request, db: Db, ref: str) -> Response:
    """The signed upload: the raw .gz bytes, checked against the allocation once all have arrived."""
    settings = _settings(request)
    batch_ref = batches.batch_ref(ref) or ref

    def authorise(conn: Connection) -> Tenant:
        tenant = _signed(conn, settings, "PUT", _path(batch_ref, "upload"), request)
        batches.require(conn, tenant, batch_ref)
        return tenant

    tenant = await db.reading(authorise)
    store = files(request)
    digest = hashlib.md5(usedforsecurity=False)
    size = 0
    try:
        with batches.receiving(store, tenant.id, batch_ref) as out:
            async for chunk in request.stream():
                size += len(chunk)
                if size > settings.batch_max_file_size:
                    raise ApiError(f"File exceeds the limit of {settings.batch_max_file_size} bytes")
                digest.update(chunk)
                out.write(chunk)
        sent_md5 = request.headers.get("content-md5")
        if sent_md5 is not None and not _md5_matches(sent_md5, digest.digest()):
            raise ApiError("Content-Md5 does not match the uploaded bytes")
        md5_hex = digest.hexdigest()
        await db.writing(lambda conn: batches.take_upload(conn, store, tenant, batch_ref, size, md5_hex, utcnow()))
    finally:
        batches.drop_received(store, tenant.id, batch_ref)
    return Response(status_code=200, headers={"ETag": f'"{md5_hex}"'})


def _signed(conn: Connection, settings: Settings, method: str, path: str, request: Request) -> Tenant:
    """The tenant a signed link was issued to, once its signature and expiry hold (403 otherwise)."""
    params = request.query_params
    client_key = params.get("clientKey", "")
    key = links.secret(conn, settings.secret_key)
    links.verify(key, method, path, client_key, params.get("expires", ""), params.get("signature", ""), utcnow())
    tenant = tenants.stream_tenant(conn, client_key, None)
    if tenant is None:
        raise ApiError("Signature does not match", status=403)
    return tenant


def _md5_matches(header: str, digest: bytes) -> bool:
    value = header.strip()
    if len(value) == 32:
        return value.lower() == digest.hex()
    try:
        return base64.b64decode(value, validate=True) == digest
    except binascii.Error:
        return False


@router.get("/{ref}/log", include_in_schema=False)
async def log(request: Request, db: Db, ref: str) -> Response:
    """The signed log: gzipped NDJSON of the failed records, served as the bytes they are."""
    settings = _settings(request)
    tenant = await db.reading(lambda conn: _signed(conn, settings, "GET", _path(ref, "log"), request))
    found = await anyio.to_thread.run_sync(batches.log_chunks, files(request), tenant.id, ref)
    if found is None:
        raise ApiError("Batch not found", status=404)
    headers = {"Content-Disposition": f'attachment; filename="{ref}.log.gz"'}
    return StreamingResponse(found, media_type="application/gzip", headers=headers)
