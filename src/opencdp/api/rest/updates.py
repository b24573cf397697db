"""PUT and PATCH of one resource: the same handler, told apart only by the mode."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from opencdp.api.deps import CurrentTenant, Db, JsonBody
from opencdp.api.rest import openapi
from opencdp.core.fields import Mode
from opencdp.core.tenants import Tenant
from opencdp.store.database import Database

Update = Callable[[Request, Tenant, Database, dict[str, Any], str, Mode], Awaitable[Response]]


def put_and_patch(router: APIRouter, path: str, update: Update, schema: dict[str, Any], noun: str) -> None:
    """Register PUT (replace) and PATCH (change some fields) on `path`, whose last parameter is `{ref}`."""

    async def put(request: Request, tenant: CurrentTenant, db: Db, body: JsonBody, ref: str) -> Response:
        return await update(request, tenant, db, body, ref, Mode.PUT)

    async def patch(request: Request, tenant: CurrentTenant, db: Db, body: JsonBody, ref: str) -> Response:
        return await update(request, tenant, db, body, ref, Mode.PATCH)

    slug = noun.replace(" ", "_")
    for method, endpoint, summary in (
        ("PUT", put, f"Replace {noun}"),
        ("PATCH", patch, f"Change some fields of {noun}"),
    ):
        router.add_api_route(
            path,
            endpoint,
            methods=[method],
            summary=summary,
            operation_id=f"{method.lower()}_{slug}",
            openapi_extra=openapi.request_body(schema, partial=method == "PATCH"),
            responses=openapi.responses(schema, 400, 404, 415),
        )
