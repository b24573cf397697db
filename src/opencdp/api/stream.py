"""The Stream API surface (stream-api.md §1): public routes for browsers and events, CORS, its error shape.

The client key is the only credential, so these routes sit outside Basic auth; the tenant is resolved
from `client_key` or `sitecoreContextId`. The same handlers answer under the Cloud SDK's edge prefix.

Each handler takes the request and makes its own response, so it is served by a plain Starlette route
(`SERVED`, matched before every other route): FastAPI's per-route machinery (dependency solving, the
included router's matching, its response handling) cost about a seventh of an event's CPU and gave these
routes nothing. The same handlers are registered on `router` too, which is what documents them in the
OpenAPI schema.
"""

from __future__ import annotations

import re
import time
from typing import Any

import orjson
from fastapi import APIRouter, Request
from sqlalchemy import Connection
from starlette.responses import Response
from starlette.routing import Route

from opencdp.api.deps import base_url, settle
from opencdp.api.responses import JsonResponse
from opencdp.api.rest import openapi
from opencdp.core import json_input
from opencdp.core.errors import ApiError, MissingField, NeedsDatabase, Unavailable, Unparseable
from opencdp.core.stream import browsers, events, journal
from opencdp.core.tenants import Tenant, stream_tenant
from opencdp.core.values import utcnow
from opencdp.store.database import Memory

router = APIRouter(tags=["stream"])

PREFIXES = ("", "/v1/events")
MAX_BODY = 256 * 1024  # enforced by api/guard.py while the body streams in
BODY_TYPES = ("application/json", "text/plain")
ALLOW_HEADERS = "Content-Type, X-Library-Version, X-Client-Software-ID"


class StreamError(Exception):
    """A Stream failure before the core was reached (method, media type, size, parsing)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _cors(request: Request) -> dict[str, str]:
    return {"Access-Control-Allow-Origin": request.headers.get("origin") or "*", "Vary": "Origin"}


def _reply(request: Request, body: dict[str, Any], status: int) -> Response:
    headers = {**_cors(request), "Cache-Control": "no-store"}
    return JsonResponse(body, status, headers=headers)


def _error(request: Request, status: int, message: str, client_key: str) -> Response:
    body = {
        "status": status,
        "version": "1.2",
        "client_key": client_key,
        "error_msg": message,
        "moreInfo": request.app.state.settings.more_info_url,
    }
    return _reply(request, body, status)


def is_stream_path(path: str) -> bool:
    return path.startswith(tuple(f"{prefix}/v1.2/" for prefix in PREFIXES))


def error_reply(request: Request, status: int, message: str) -> Response:
    """A refusal in the Stream API's shape, for a request refused before it reached a route."""
    return _error(request, status, message, _sent_key(request))


def _sent_key(request: Request, body: dict[str, Any] | None = None) -> str:
    key = request.query_params.get("client_key") or (body or {}).get("client_key")
    return key if isinstance(key, str) else ""


_TENANTS: dict[tuple[str | None, str | None], tuple[Tenant, float]] = {}


def _resolve(conn: Connection | Memory, request: Request, body: dict[str, Any] | None = None) -> Tenant:
    """The tenant an event names, remembered for `auth_cache_seconds` as verified credentials are
    (given the database's `Memory` instead of a connection, one not remembered raises `NeedsDatabase`)."""
    body_key = (body or {}).get("client_key")
    client_key = request.query_params.get("client_key") or (body_key if isinstance(body_key, str) else None)
    lookup = (client_key, None if client_key else request.query_params.get("sitecoreContextId"))
    cached = _TENANTS.get(lookup)
    if cached is not None and cached[1] > time.monotonic():
        return cached[0]
    if isinstance(conn, Memory):
        raise NeedsDatabase
    tenant = stream_tenant(conn, *lookup)
    if tenant is None:
        raise ApiError("Invalid client key", status=401)
    ttl = request.app.state.settings.auth_cache_seconds
    if ttl > 0:
        _TENANTS[lookup] = (tenant, time.monotonic() + ttl)
    return tenant


def _parse(raw: str | bytes) -> dict[str, Any]:
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise Unparseable("JSON parse error") from None
    if not isinstance(parsed, dict):
        raise Unparseable("JSON parse error: not an object")
    json_input.check(parsed, raw)
    return parsed


async def _event_body(request: Request) -> dict[str, Any]:
    if request.method == "GET":
        message = request.query_params.get("message")
        if not message:
            raise MissingField("message")
        return _parse(message)
    content_type = request.headers.get("content-type")
    if content_type is not None and content_type.split(";", 1)[0].strip().lower() not in BODY_TYPES:
        raise StreamError(415, "Unsupported media type")
    raw = await request.body()  # at most MAX_BODY: the request guard cuts a longer body off with a 413
    if not raw.strip() and request.query_params.get("message"):
        return _parse(request.query_params["message"])
    return _parse(raw)


async def create_browser(request: Request) -> Response:
    db = request.app.state.db
    try:

        def work(conn: Connection) -> dict[str, Any]:
            tenant = _resolve(conn, request)
            browser = browsers.create(conn, tenant, utcnow())
            return {"status": "OK", "version": "1.2", "client_key": tenant.client_key, "ref": browser["ref"],
                    "customer_ref": browser["guestRef"]}  # fmt: skip

        return _reply(request, await db.writing(work), 200)
    except ApiError as error:
        return _error(request, error.status, error.message, _sent_key(request))


async def show_browser(request: Request) -> Response:
    db = request.app.state.db
    browser_id = request.path_params["browser_id"]
    try:
        tenant_id = (await db.reading(lambda conn: _resolve(conn, request))).id
        await settle(db, tenant_id, request.app.state.settings.stream_read_wait_seconds)

        def work(conn: Connection) -> dict[str, Any]:
            tenant = _resolve(conn, request)
            browser, guest = browsers.owner(conn, tenant, browser_id)
            customer = {"ref": guest["ref"], "href": f"{base_url(request)}/v2.1/guests/{guest['ref']}",
                        "guestType": guest["guestType"]}  # fmt: skip
            return {"status": "OK", "version": "1.2", "client_key": tenant.client_key, "clientKey": tenant.client_key,
                    "ref": browser["ref"], "customer": customer}  # fmt: skip

        return _reply(request, await db.reading(work), 200)
    except ApiError as error:
        return _error(request, error.status, error.message, _sent_key(request))


async def create_event(request: Request) -> Response:
    db = request.app.state.db
    body: dict[str, Any] | None = None
    try:
        body = await _event_body(request)
        site_id = request.query_params.get("siteId")

        def accept(conn: Connection | Memory) -> tuple[Tenant, dict[str, Any]]:
            tenant = _resolve(conn, request, body)
            return tenant, events.accept(conn, tenant, body, site_id, utcnow())

        def accept_and_append(conn: Connection) -> tuple[Tenant, dict[str, Any]]:
            tenant, entry = accept(conn)
            journal.append(conn, [entry])
            return tenant, entry

        brake = request.app.state.stream_brake
        try:  # decided from memory, the event is one row of this process's next journal append
            tenant, entry = accept(db.memory)
            await brake.wait(tenant.id)
            await db.appending(journal.append, entry)
        except NeedsDatabase:  # a browser or key type this process has not seen: checked in the database
            tenant = await db.reading(lambda conn: _resolve(conn, request, body))
            await brake.wait(tenant.id)
            tenant, entry = await db.writing(accept_and_append)
        answer = {"status": "OK", "version": "1.2", "client_key": tenant.client_key, "ref": entry["eventRef"]}
        return _reply(request, answer, 201)
    except StreamError as error:
        return _error(request, error.status, error.message, _sent_key(request, body))
    except ApiError as error:
        refused = _error(request, error.status, error.message, _sent_key(request, body))
        if isinstance(error, Unavailable):
            refused.headers["Retry-After"] = str(error.retry_after)
        return refused


async def preflight(request: Request) -> Response:
    headers = {
        **_cors(request),
        "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
        "Access-Control-Allow-Headers": ALLOW_HEADERS,
        "Access-Control-Max-Age": "86400",
    }
    return Response(status_code=204, headers=headers)


async def not_allowed(request: Request) -> Response:
    return _error(request, 405, "Method not allowed", _sent_key(request))


_ANSWER = {"type": "object", "required": ["status", "version", "client_key"],
           "properties": {"status": {"type": "string"}, "version": {"type": "string"},
                          "client_key": {"type": "string"}, "ref": {"type": "string"}}}  # fmt: skip
_KEY = {"name": "client_key", "in": "query", "schema": {"type": "string"}}
_BROWSER = {"name": "browser_id", "in": "path", "required": True, "schema": {"type": "string"}}
_MESSAGE = {"name": "message", "in": "query", "schema": {"type": "string"}, "description": "the event, as JSON"}
_EVENT = {"type": "object", "properties": {"type": {"type": "string"}, "browser_id": {"type": "string"},
                                           "client_key": {"type": "string"}}}  # fmt: skip
_EVENT_BODY = {"requestBody": {"content": {media: {"schema": _EVENT} for media in BODY_TYPES}}}


def _documented(status: int, extra: dict[str, Any]) -> dict[str, Any]:
    """A route's answer; an event (201) may also name a browser this tenant does not know (404)."""
    responses: dict[int | str, Any] = {status: {"description": "OK", **openapi.json_content(_ANSWER)}}
    if status == 201:
        responses[404] = {"description": "Unknown browser", **openapi.json_content(openapi.STREAM_ERROR)}
    return {"responses": responses, "openapi_extra": extra}


def _served(path: str, endpoint: Any, methods: list[str]) -> Route:
    """A plain route for exactly these methods (Starlette adds HEAD to a GET route; a HEAD must not make a
    browser)."""
    route = Route(path, endpoint, methods=methods, include_in_schema=False)
    if "HEAD" not in methods and route.methods is not None:
        route.methods.discard("HEAD")
    return route


_SHOW = _documented(200, {"parameters": [_BROWSER, _KEY]})
OTHER_METHODS = ["PUT", "PATCH", "DELETE"]
SERVED: list[Route] = []  # what answers the Stream API's requests; app.py puts them before every other route
for prefix in PREFIXES:
    routes: list[tuple[str, Any, list[str], dict[str, Any]]] = [
        ("/v1.2/browser/create.json", create_browser, ["GET"], _documented(200, {"parameters": [_KEY]})),
        ("/v1.2/browser/{browser_id}/show.json", show_browser, ["GET"], _SHOW),
        ("/v1.2/event/create.json", create_event, ["GET"], _documented(201, {"parameters": [_KEY, _MESSAGE]})),
        ("/v1.2/event/create.json", create_event, ["POST"], _documented(201, {"parameters": [_KEY], **_EVENT_BODY})),
        ("/v1.2/events", create_event, ["POST"], _documented(201, {"parameters": [_KEY], **_EVENT_BODY})),
    ]
    for path, endpoint, methods, documented in routes:
        full = prefix + path
        for method in methods:
            slug = re.sub(r"\W+", "_", full).strip("_")
            router.add_api_route(
                full,
                endpoint,
                methods=[method],
                include_in_schema=not prefix,
                operation_id=f"{method.lower()}_{slug}",
                status_code=next(iter(documented["responses"])),
                **documented,
            )
            SERVED.append(_served(full, endpoint, [method]))
    for full in dict.fromkeys(prefix + path for path, *_ in routes):
        served = {method for path, _, methods, _ in routes if prefix + path == full for method in methods}
        others = [m for m in ["GET", "POST", *OTHER_METHODS] if m not in served]
        SERVED += [_served(full, preflight, ["OPTIONS"]), _served(full, not_allowed, others)]
