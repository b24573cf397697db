"""`/opencdp/v1/stream`: the tenant's Stream journal, its lag, and the events whose applying failed.

These routes report on the journal as it stands, so they do not apply what is pending first, as every
other authenticated route does.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from opencdp.api.deps import Authenticated, Db
from opencdp.api.responses import JsonResponse
from opencdp.api.rest import openapi
from opencdp.api.rest.collections import envelope, parse_page
from opencdp.api.rest.reply import no_content, ok
from opencdp.core.stream import journal
from opencdp.core.tenants import Tenant
from opencdp.core.values import format_timestamp, utcnow
from opencdp.store.database import Database

router = APIRouter(prefix="/opencdp/v1/stream", tags=["stream journal"])

STATUS = {"type": "object", "required": ["waiting", "failed", "lagSeconds"],
          "properties": {"waiting": {"type": "integer"}, "failed": {"type": "integer"},
                         "oldestWaitingAt": {"type": ["string", "null"], "format": "date-time"},
                         "lagSeconds": {"type": "number"}}}  # fmt: skip
FAILED = {"type": "object", "required": ["ref", "browserRef", "receivedAt", "reason", "event"],
          "properties": {"ref": {"type": "string"}, "browserRef": {"type": "string"},
                         "receivedAt": {"type": "string", "format": "date-time"}, "reason": {"type": "string"},
                         "event": openapi.OBJECT}}  # fmt: skip


@router.get("/journal", summary="Events accepted and not applied yet, failed ones, and the lag",
            responses=openapi.responses(STATUS))  # fmt: skip
async def status(tenant: Authenticated, db: Db) -> Response:
    return ok(await _status(db, tenant))


@router.get("/failed", summary="Events whose applying failed, with the reason, oldest first",
            responses=openapi.responses(openapi.collection(FAILED), 400))  # fmt: skip
async def list_failed(request: Request, tenant: Authenticated, db: Db) -> Response:
    page = parse_page(request, ())
    total, entries = await db.reading(lambda conn: journal.failed(conn, tenant, page.offset, page.limit))
    return ok(envelope(request, page, total, [_shown(entry) for entry in entries]))


@router.post("/failed/{event_ref}/replay", summary="Apply a failed event again", status_code=202,
             responses=openapi.responses(STATUS, 404, status=202))  # fmt: skip
async def replay(tenant: Authenticated, db: Db, event_ref: str) -> Response:
    await db.writing(lambda conn: journal.replay(conn, tenant, event_ref.lower()))
    return JsonResponse(await _status(db, tenant), 202)


@router.delete("/failed/{event_ref}", summary="Give up on a failed event", status_code=204,
               responses=openapi.responses(None, 404))  # fmt: skip
async def discard(tenant: Authenticated, db: Db, event_ref: str) -> Response:
    await db.writing(lambda conn: journal.discard(conn, tenant, event_ref.lower()))
    return no_content()


async def _status(db: Database, tenant: Tenant) -> dict[str, Any]:
    found = await db.reading(lambda conn: journal.status(conn, tenant, utcnow()))
    oldest = found["oldestWaitingAt"]
    return {**found, "oldestWaitingAt": format_timestamp(oldest) if oldest else None}


def _shown(entry: dict[str, Any]) -> dict[str, Any]:
    return {"ref": entry["eventRef"], "browserRef": entry["browserRef"], "reason": entry["failure"],
            "receivedAt": format_timestamp(entry["receivedAt"]), "event": entry["body"]}  # fmt: skip
