"""Data extensions of orders and order items (rest-api.md §5.7, §6.7); guests reuse the same routes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import Connection
from starlette.responses import Response

from opencdp.api.deps import CurrentTenant, Db, JsonBody, path_ref
from opencdp.api.rest import openapi, render
from opencdp.api.rest.collections import envelope, item_link, parse_page
from opencdp.api.rest.reply import links, no_content, ok, written
from opencdp.core import extensions, orders
from opencdp.core.extensions import Owner
from opencdp.core.fields import Mode
from opencdp.core.tenants import Tenant
from opencdp.core.values import utcnow

router = APIRouter(prefix="/v2.1", tags=["data extensions"])

RequireOwner = Callable[[Connection, Tenant, str], Mapping[str, Any]]


def extension_routes(target: APIRouter, collection: str, kind: str, label: str, require_owner: RequireOwner) -> None:
    """Register the seven extension routes under `/{collection}/{ref}/extensions` for one owner kind."""
    base = f"/{collection}/{{owner_ref}}/extensions"
    tag = kind

    def owner_of(conn: Connection, tenant: Tenant, owner_ref: str) -> Owner:
        """The owner as stored: a retired guest's ref leads to the guest it was merged into."""
        return Owner(kind, require_owner(conn, tenant, owner_ref)["ref"], label)

    async def list_all(request: Request, tenant: CurrentTenant, db: Db, owner_ref: str) -> Response:
        page = parse_page(request)
        ref = path_ref(owner_ref, label, tenant)
        rows = await db.reading(lambda conn: extensions.list_of(conn, tenant, owner_of(conn, tenant, ref)))
        urls = links(request)
        shown = [item_link(render.extension(urls, row), page.expand) for row in rows]
        return ok(envelope(request, page, len(rows), shown[page.offset : page.offset + page.limit]))

    async def make(
        request: Request, tenant: Tenant, db: Db, body: JsonBody, owner_ref: str, name: str | None
    ) -> Response:
        ref = path_ref(owner_ref, label, tenant)
        record = await db.writing(
            lambda conn: extensions.create(conn, tenant, owner_of(conn, tenant, ref), name, body, utcnow())
        )
        return written(render.extension(links(request), record), True)

    async def create(request: Request, tenant: CurrentTenant, db: Db, body: JsonBody, owner_ref: str) -> Response:
        return await make(request, tenant, db, body, owner_ref, None)

    async def create_named(
        request: Request, tenant: CurrentTenant, db: Db, body: JsonBody, owner_ref: str, name: str
    ) -> Response:
        return await make(request, tenant, db, body, owner_ref, name)

    async def get_one(request: Request, tenant: CurrentTenant, db: Db, owner_ref: str, name: str) -> Response:
        ref = path_ref(owner_ref, label, tenant)
        record = await db.reading(lambda conn: extensions.get(conn, tenant, owner_of(conn, tenant, ref), name))
        return ok(render.extension(links(request), record))

    async def update(
        request: Request, tenant: Tenant, db: Db, body: JsonBody, owner_ref: str, name: str, mode: Mode
    ) -> Response:
        ref = path_ref(owner_ref, label, tenant)
        record = await db.writing(
            lambda conn: extensions.write(conn, tenant, owner_of(conn, tenant, ref), name, body, mode, utcnow())
        )
        return ok(render.extension(links(request), record))

    async def put(
        request: Request, tenant: CurrentTenant, db: Db, body: JsonBody, owner_ref: str, name: str
    ) -> Response:
        return await update(request, tenant, db, body, owner_ref, name, Mode.PUT)

    async def patch(
        request: Request, tenant: CurrentTenant, db: Db, body: JsonBody, owner_ref: str, name: str
    ) -> Response:
        return await update(request, tenant, db, body, owner_ref, name, Mode.PATCH)

    async def delete(tenant: CurrentTenant, db: Db, owner_ref: str, name: str) -> Response:
        ref = path_ref(owner_ref, label, tenant)
        await db.writing(lambda conn: extensions.delete(conn, tenant, owner_of(conn, tenant, ref), name))
        return no_content()

    async def delete_fields(request: Request, tenant: CurrentTenant, db: Db, owner_ref: str, name: str) -> Response:
        keys = [key for value in request.query_params.getlist("name") for key in value.split("|") if key]
        ref = path_ref(owner_ref, label, tenant)
        record = await db.writing(
            lambda conn: extensions.delete_fields(conn, tenant, owner_of(conn, tenant, ref), name, keys, utcnow())
        )
        return ok(render.extension(links(request), record))

    schema = openapi.EXTENSION
    body_doc = openapi.request_body(schema)
    one = f"{base}/{{name}}"
    routes: list[tuple[str, Callable[..., Any], str, str, Any, Any]] = [
        (base, list_all, "GET", "list", None, openapi.responses(openapi.collection(schema), 400, 404)),
        (
            base,
            create,
            "POST",
            "create",
            body_doc,
            openapi.responses(schema, 400, 404, 409, 415, created=True),
        ),
        (
            one,
            create_named,
            "POST",
            "create_named",
            body_doc,
            openapi.responses(schema, 400, 404, 409, 415, created=True),
        ),
        (one, get_one, "GET", "get", None, openapi.responses(schema, 400, 404)),
        (one, put, "PUT", "put", body_doc, openapi.responses(schema, 400, 404, 415)),
        (one, patch, "PATCH", "patch", body_doc, openapi.responses(schema, 400, 404, 415)),
        (one, delete, "DELETE", "delete", None, openapi.responses(None, 400, 404)),
        (
            f"{one}/fields",
            delete_fields,
            "DELETE",
            "delete_fields",
            None,
            openapi.responses(schema, 400, 404),
        ),
    ]
    for path, endpoint, method, action, extra, described in routes:
        target.add_api_route(
            path,
            endpoint,
            methods=[method],
            status_code=204 if action == "delete" else None,
            operation_id=f"{action}_{tag}_extension",
            summary=f"{action.replace('_', ' ').capitalize()}: {label.lower()} data extension",
            openapi_extra=extra,
            responses=described,
            tags=["data extensions"],
        )


extension_routes(router, "orders", "order", "Order", orders.require_order)
extension_routes(router, "orderItems", "orderItem", "Order item", orders.require_item)
