"""The OpenCDP API (`/opencdp/v1`): what the hosted product hides or lacks, for operators and scripts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from opencdp.api.deps import CurrentTenant, Db, JsonBody, path_ref
from opencdp.api.rest import openapi
from opencdp.api.rest.collections import envelope, parse_page
from opencdp.api.rest.render import Links, wire
from opencdp.api.rest.reply import links, ok
from opencdp.core import profiles, tenants
from opencdp.core.batch import batches
from opencdp.core.stream import timeline
from opencdp.core.values import format_timestamp

router = APIRouter(prefix="/opencdp/v1", tags=["opencdp"])

RULES_SCHEMA = {
    "type": "object",
    "required": ["identityRules"],
    "properties": {"identityRules": {"type": "array", "items": {"type": "string"}, "minItems": 1}},
}
PROGRESS_SCHEMA = {
    "type": "object",
    "properties": {
        "ref": {"type": "string"},
        "status": {"type": "string", "enum": list(batches.STATUSES)},
        "lines": {"type": "integer", "description": "lines read and applied so far"},
        "totalLines": {"type": ["integer", "null"], "description": "the file's lines; null until it is verified"},
        "percent": {"type": ["number", "null"]},
    },
}
FAILURE_SCHEMA = {
    "type": "object",
    "properties": {
        "line": {"type": "integer", "description": "the line of the file, the first is 1"},
        "ref": {"type": "string"},
        "code": {"type": "string"},
        "message": {"type": "string"},
    },
}
FAILURES_SCHEMA = {
    **openapi.collection(FAILURE_SCHEMA),
    "properties": {**openapi.collection(FAILURE_SCHEMA)["properties"], "total": {"type": "integer"}},
}
MERGES_SCHEMA = {
    "type": "object",
    "properties": {
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "survivor": {"type": "object"},
                    "retired": {"type": "object"},
                    "identifier": {"type": "object"},
                    "source": {"type": "string"},
                    "mergedAt": {"type": "string", "format": "date-time"},
                },
            },
        }
    },
}


@router.get(
    "/tenant/identity-rules",
    summary="The identifier providers identity resolution tries, in priority order",
    responses=openapi.responses(RULES_SCHEMA),
)
async def get_identity_rules(tenant: CurrentTenant, db: Db) -> Response:
    rules = await db.reading(lambda conn: tenants.identity_rules(conn, tenant))
    return ok({"identityRules": list(rules)})


@router.put(
    "/tenant/identity-rules",
    summary="Replace the identity rules",
    openapi_extra=openapi.request_body(RULES_SCHEMA),
    responses=openapi.responses(RULES_SCHEMA, 400, 415),
)
async def put_identity_rules(tenant: CurrentTenant, db: Db, body: JsonBody) -> Response:
    rules = await db.writing(lambda conn: tenants.set_identity_rules(conn, tenant, body))
    return ok({"identityRules": list(rules)})


@router.get(
    "/guests/{guest_ref}/merges",
    summary="Every identity merge a guest took part in: who, when, on which identifier",
    responses=openapi.responses(MERGES_SCHEMA, 404),
)
async def guest_merges(request: Request, tenant: CurrentTenant, db: Db, guest_ref: str) -> Response:
    ref = path_ref(guest_ref, "Guest", tenant)
    found = await db.reading(lambda conn: profiles.merges(conn, tenant, ref))
    urls = links(request)

    def shown(merge: dict[str, Any]) -> dict[str, Any]:
        return {
            "survivor": {"href": urls.guest(merge["survivorRef"]), "ref": merge["survivorRef"]},
            "retired": {"href": urls.guest(merge["retiredRef"]), "ref": merge["retiredRef"]},
            "identifier": {"provider": merge["provider"], "id": merge["identifier"]},
            "source": merge["source"],
            "mergedAt": format_timestamp(merge["mergedAt"]),
        }

    return ok({"items": [shown(merge) for merge in found]})


@router.get(
    "/guests/{guest_ref}/sessions",
    summary="A guest's sessions, newest first, with their events, cart lines and outcome",
    responses=openapi.responses(openapi.collection({"type": "object"}), 400, 404),
)
async def guest_sessions(request: Request, tenant: CurrentTenant, db: Db, guest_ref: str) -> Response:
    page = parse_page(request, ())
    ref = path_ref(guest_ref, "Guest", tenant)
    total, found = await db.reading(lambda conn: timeline.sessions_of(conn, tenant, ref, page.offset, page.limit))
    urls = links(request)
    return ok(envelope(request, page, total, [_session(urls, session) for session in found]))


def _session(urls: Links, session: dict[str, Any]) -> dict[str, Any]:
    shown = {
        "ref": session["ref"],
        "guest": {"href": urls.guest(session["guestRef"])},
        "browserRef": session["browserRef"],
        "channel": session["channel"],
        "pointOfSale": session["pointOfSale"],
        "status": session["status"],
        "startedAt": session["startedAt"],
        "lastEventAt": session["lastEventAt"],
        "closedAt": session.get("closedAt"),
        "closeReason": session.get("closeReason"),
        "cartType": session.get("cartType"),
        "abandonedRevenue": session.get("abandonedRevenue"),
        "abandonedCurrency": session.get("abandonedCurrency"),
        "eventCount": session["eventCount"],
        "cart": _cart(session["cart"]) if session["status"] == "OPEN" else None,
        "events": [_event(urls, event) for event in session["events"]],
    }
    return {name: wire(value) for name, value in shown.items() if value is not None}


def _cart(cart: dict[str, Any]) -> dict[str, Any]:
    lines = [{**line, "price": float(line["price"])} for line in cart["lines"]]
    return {"lines": lines, "confirmed": cart["confirmed"], "contact": cart["contact"], "consumers": cart["consumers"]}


def _event(urls: Links, event: dict[str, Any]) -> dict[str, Any]:
    shown = {
        "ref": event["ref"],
        "type": event["type"],
        "createdAt": event["createdAt"],
        "channel": event["channel"],
        "pointOfSale": event["pointOfSale"],
        "posUnknown": event["posUnknown"],
        "page": event["page"],
        "ext": event.get("ext"),
        "data": event["data"] or None,
        "result": event.get("result"),
        "order": {"href": urls.order(event["orderRef"])} if event.get("orderRef") else None,
    }
    return {name: wire(value) for name, value in shown.items() if value is not None}


@router.get(
    "/batches/{ref}/progress",
    summary="How far a batch has been read: lines done of the file's lines",
    responses=openapi.responses(PROGRESS_SCHEMA, 404),
)
async def batch_progress(tenant: CurrentTenant, db: Db, ref: str) -> Response:
    return ok(await db.reading(lambda conn: batches.progress(batches.require(conn, tenant, ref))))


@router.get(
    "/batches/{ref}/failures",
    summary="A batch's failed records in file order, each with its line number",
    responses=openapi.responses(FAILURES_SCHEMA, 400, 404),
)
async def batch_failures(request: Request, tenant: CurrentTenant, db: Db, ref: str) -> Response:
    page = parse_page(request, ())

    def load(conn: Any) -> tuple[int, list[dict[str, Any]]]:
        batch = batches.require(conn, tenant, ref)
        return batches.failures(conn, tenant, batch["ref"], page.offset, page.limit)

    total, items = await db.reading(load)
    return ok({**envelope(request, page, total, items), "total": total})
