"""Guests and their data extensions (rest-api.md §5.6, §5.7, §6.5, §6.6)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import Connection
from starlette.responses import Response

from opencdp.api.deps import CurrentTenant, Db, JsonBody, path_ref
from opencdp.api.rest import openapi, render
from opencdp.api.rest.collections import COMMON_SORT, EMBEDDED_LIMIT, embedded, envelope, item_link, parse_page
from opencdp.api.rest.extensions import extension_routes
from opencdp.api.rest.reply import links, no_content, ok, written
from opencdp.api.rest.updates import put_and_patch
from opencdp.core import extensions, guests, profiles
from opencdp.core.errors import InvalidParameter
from opencdp.core.extensions import Owner
from opencdp.core.fields import Mode
from opencdp.core.models import GUEST
from opencdp.core.tenants import Tenant
from opencdp.core.values import utcnow
from opencdp.store.database import Database

router = APIRouter(prefix="/v2.1", tags=["guests"])

GUEST_SCHEMA = openapi.schema(GUEST)
GUEST_SORT = COMMON_SORT | {"firstSeen", "lastSeen", "firstName", "lastName"}


@router.post(
    "/guests",
    summary="Create a guest (never de-duplicated: search first)",
    openapi_extra=openapi.request_body(GUEST_SCHEMA),
    responses=openapi.responses(GUEST_SCHEMA, 400, 415, created=True),
)
async def create_guest(request: Request, tenant: CurrentTenant, db: Db, body: JsonBody) -> Response:
    record = await db.writing(lambda conn: profiles.create(conn, tenant, body, utcnow()))
    return written(render.guest(links(request), record), True)


@router.get(
    "/guests",
    summary="Search guests by email, identifier, orderReferenceId or orderRef (filters are ANDed)",
    responses=openapi.responses(openapi.collection(GUEST_SCHEMA), 400),
)
async def search_guests(request: Request, tenant: CurrentTenant, db: Db) -> Response:
    filters = {name: request.query_params[name] for name in profiles.SEARCH_PARAMETERS if name in request.query_params}
    page = parse_page(request, GUEST_SORT)
    total, rows = await db.reading(
        lambda conn: profiles.search(conn, tenant, filters, page.sort, page.offset, page.limit)
    )
    urls = links(request)
    return ok(envelope(request, page, total, [item_link(render.guest(urls, row), page.expand) for row in rows]))


def _wants_extensions(request: Request) -> bool:
    wanted = False
    for value in request.query_params.getlist("expand"):
        for part in value.split(","):
            if part not in ("true", "false", "dataExtensions"):
                raise InvalidParameter("expand")
            wanted = wanted or part != "false"
    return wanted


@router.get("/guests/{guest_ref}", summary="One guest", responses=openapi.responses(GUEST_SCHEMA, 400, 404))
async def get_guest(request: Request, tenant: CurrentTenant, db: Db, guest_ref: str) -> Response:
    expand = _wants_extensions(request)
    ref = path_ref(guest_ref, "Guest", tenant)
    urls = links(request)

    def load(conn: Connection) -> dict[str, Any]:
        guest = guests.require(conn, tenant, ref)
        body = render.guest(urls, guest)
        if expand:
            groups = extensions.list_of(conn, tenant, Owner("guest", guest["ref"], "Guest"))
            shown = [render.extension(urls, group) for group in groups[:EMBEDDED_LIMIT]]
            body["dataExtensions"] = embedded(body["dataExtensions"]["href"], len(groups), shown)
        return body

    return ok(await db.reading(load))


async def _update(request: Request, tenant: Tenant, db: Database, body: JsonBody, raw: str, mode: Mode) -> Response:
    ref = path_ref(raw, "Guest", tenant)
    source = f"{request.method} {request.url.path}"
    record = await db.writing(lambda conn: profiles.update(conn, tenant, ref, body, mode, utcnow(), source))
    return ok(render.guest(links(request), record))


@router.delete(
    "/guests/{guest_ref}",
    status_code=204,
    summary="Delete a guest, its extensions, the orders it is the contact of and its consumer records",
    responses=openapi.responses(None, 404),
)
async def delete_guest(tenant: CurrentTenant, db: Db, guest_ref: str) -> Response:
    ref = path_ref(guest_ref, "Guest", tenant)
    await db.writing(lambda conn: profiles.delete(conn, tenant, ref))
    return no_content()


put_and_patch(router, "/guests/{ref}", _update, GUEST_SCHEMA, "a guest")
extension_routes(router, "guests", "guest", "Guest", guests.require)
