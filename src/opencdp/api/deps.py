"""What every handler needs from a request: the tenant, the parsed body, the database, absolute URLs."""

from __future__ import annotations

import time
from typing import Annotated, Any, cast
from urllib.parse import parse_qs

import orjson
from fastapi import Depends, Request
from starlette.requests import HTTPConnection

from opencdp.api.auth import Unauthenticated
from opencdp.core import json_input
from opencdp.core.errors import ApiError, NotFound, Unavailable, Unparseable
from opencdp.core.fields import parse_ref
from opencdp.core.stream import journal
from opencdp.core.tenants import Tenant
from opencdp.store.database import Database

JSON_TYPES = ("application/json", "application/merge-patch+json")


# Dependencies are coroutines on purpose: FastAPI runs a plain `def` dependency on a worker thread.
async def authenticated(request: HTTPConnection) -> Tenant:
    """The tenant the request's credentials name: what makes a route protected (401 without it)."""
    tenant = request.scope.get("state", {}).get("tenant")
    if tenant is None:
        raise Unauthenticated
    return cast(Tenant, tenant)


async def current_tenant(request: HTTPConnection) -> Tenant:
    """The authenticated tenant, once what its Stream events accepted so far did is applied, so that the
    request sees it. Only a route that reports on the journal itself takes `authenticated` alone."""
    tenant = await authenticated(request)
    await settle(request.app.state.db, tenant.id, request.app.state.settings.stream_read_wait_seconds)
    return tenant


async def settle(db: Database, tenant_id: int, wait: float) -> None:
    """Wait until the tenant's Stream events accepted before now are applied, applying them here if no
    applier has yet (spec README §4: every read that begins after a 201 sees that event's effects).
    Past `wait` seconds the request is refused with 503 and Retry-After, never answered with stale data."""
    last_id = await db.peeking(lambda conn: journal.newest_pending(conn, tenant_id))
    if last_id is None:
        return
    ends = time.monotonic() + wait
    while await db.reading(lambda conn: journal.pending_through(conn, tenant_id, last_id)):
        if time.monotonic() >= ends:
            raise Unavailable(
                "Service Unavailable",
                f"Stream events accepted before this request are still being applied (more than {wait:g} s).",
            )
        await db.writing(lambda conn: journal.apply_tenant(conn, tenant_id))


async def database(request: HTTPConnection) -> Database:
    return cast(Database, request.app.state.db)


async def json_body(request: Request, _tenant: Annotated[Tenant, Depends(current_tenant)]) -> dict[str, Any]:
    """The body as a JSON object: 415 for another media type, 400 for anything that is not an object.
    Only an authenticated caller's body is read: credentials are checked first."""
    content_type = request.headers.get("content-type")
    if content_type is not None and content_type.split(";", 1)[0].strip().lower() not in JSON_TYPES:
        raise ApiError(
            "Unsupported Media Type",
            f"Content type '{content_type}' is not supported. Use application/json.",
            status=415,
        )
    raw = await request.body()
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise Unparseable(f"JSON parse error [line: {error.lineno}, column: {error.colno}].") from None
    if not isinstance(parsed, dict):
        raise Unparseable("JSON parse error [line: 1, column: 1]. The body must be a JSON object.")
    json_input.check(parsed, raw)
    return parsed


async def form_of(request: Request) -> dict[str, str]:
    """An urlencoded form, the last value of each name (the standard library parses it; no route takes
    multipart). A NUL in a name or value is refused here, as in a query string."""
    body = (await request.body()).decode("utf-8", errors="replace")
    form = {key: values[-1] for key, values in parse_qs(body, keep_blank_values=True).items()}
    for name, value in form.items():
        json_input.parameter(value, name)
    return form


def path_ref(raw: str, label: str, tenant: Tenant) -> str:
    """A ref from the path, lower-cased; anything that is not a UUID is simply not found."""
    ref = parse_ref(raw)
    if ref is None:
        raise NotFound(f"{label} with ref {raw} for client key {tenant.client_key} was not found")
    return ref


def base_url(request: HTTPConnection) -> str:
    public = request.app.state.settings.public_url
    return (public or str(request.base_url)).rstrip("/")


CurrentTenant = Annotated[Tenant, Depends(current_tenant)]
Authenticated = Annotated[Tenant, Depends(authenticated)]
Db = Annotated[Database, Depends(database)]
JsonBody = Annotated[dict[str, Any], Depends(json_body)]
