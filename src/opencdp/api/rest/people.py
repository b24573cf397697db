"""Order contacts and consumers (rest-api.md §5.4, §5.5, §6.4)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import Connection
from starlette.responses import Response

from opencdp.api.deps import CurrentTenant, Db, JsonBody, path_ref
from opencdp.api.rest import openapi, render
from opencdp.api.rest.collections import embedded, envelope, item_link, parse_page
from opencdp.api.rest.reply import links, no_content, ok, written
from opencdp.api.rest.updates import put_and_patch
from opencdp.core import people
from opencdp.core.errors import InvalidParameter
from opencdp.core.fields import Mode
from opencdp.core.identity import CONSUMER, CONTACT
from opencdp.core.models import CONSUMER as CONSUMER_MODEL
from opencdp.core.models import CONTACT as CONTACT_MODEL
from opencdp.core.models import ORDER_ITEM
from opencdp.core.tenants import Tenant
from opencdp.core.values import utcnow
from opencdp.store.database import Database

router = APIRouter(prefix="/v2.1", tags=["contacts and consumers"])

Renderer = Callable[[render.Links, Mapping[str, Any]], dict[str, Any]]
ITEM_SCHEMA = openapi.schema(ORDER_ITEM)


def _routes(role: str, collection: str, resource: str, model_schema: dict[str, Any], draw: Renderer) -> None:
    """The six routes contacts and consumers share; only their words and renderers differ."""
    label = people.LABELS[role]
    creator = people.create_contact if role == CONTACT else people.create_consumer

    async def create(request: Request, tenant: CurrentTenant, db: Db, body: JsonBody, order_ref: str) -> Response:
        ref = path_ref(order_ref, "Order", tenant)
        record, created = await db.writing(lambda conn: creator(conn, tenant, ref, body, utcnow()))
        return written(draw(links(request), record), created)

    async def list_all(request: Request, tenant: CurrentTenant, db: Db, order_ref: str) -> Response:
        page = parse_page(request)
        ref = path_ref(order_ref, "Order", tenant)
        total, rows = await db.reading(
            lambda conn: people.list_people(conn, tenant, ref, role, page.sort, page.offset, page.limit)
        )
        urls = links(request)
        return ok(envelope(request, page, total, [item_link(draw(urls, row), page.expand) for row in rows]))

    async def get_one(request: Request, tenant: CurrentTenant, db: Db, person_ref: str) -> Response:
        expand = _person_expansion(request, role)
        ref = path_ref(person_ref, label, tenant)
        urls = links(request)

        def load(conn: Connection) -> dict[str, Any]:
            body = draw(urls, people.require_person(conn, tenant, role, ref))
            if expand:
                total, rows = people.list_consumer_items(conn, tenant, ref, (("createdAt", False),), 0, 100)
                body["orderItems"] = embedded(body["orderItems"]["href"], total, [render.item(urls, r) for r in rows])
            return body

        return ok(await db.reading(load))

    async def update(request: Request, tenant: Tenant, db: Database, body: JsonBody, raw: str, mode: Mode) -> Response:
        ref = path_ref(raw, label, tenant)
        record = await db.writing(lambda conn: people.update_person(conn, tenant, role, ref, body, mode, utcnow()))
        return ok(draw(links(request), record))

    async def delete(tenant: CurrentTenant, db: Db, person_ref: str) -> Response:
        ref = path_ref(person_ref, label, tenant)
        await db.writing(lambda conn: people.delete_person(conn, tenant, role, ref))
        return no_content()

    one = f"/{resource}/{{person_ref}}"
    many = f"/orders/{{order_ref}}/{collection}"
    body_doc = openapi.request_body(model_schema)
    noun = label.lower()
    routes: list[tuple[str, Callable[..., Any], str, str, Any, Any]] = [
        (
            many,
            create,
            "POST",
            f"Add an {noun}",
            body_doc,
            openapi.responses(model_schema, 400, 404, 415, created=True),
        ),
        (
            many,
            list_all,
            "GET",
            f"An order's {collection}",
            None,
            openapi.responses(openapi.collection(model_schema), 400, 404),
        ),
        (one, get_one, "GET", f"One {noun}", None, openapi.responses(model_schema, 400, 404)),
        (one, delete, "DELETE", f"Delete an {noun}", None, openapi.responses(None, 404)),
    ]
    put_and_patch(router, f"/{resource}/{{ref}}", update, model_schema, f"an {noun}")
    for path, endpoint, method, summary, extra, described in routes:
        router.add_api_route(
            path,
            endpoint,
            methods=[method],
            status_code=204 if method == "DELETE" else None,
            summary=summary,
            openapi_extra=extra,
            responses=described,
            operation_id=f"{endpoint.__name__}_{role}",
        )


def _person_expansion(request: Request, role: str) -> bool:
    """Only a consumer expands (its items); on a contact `expand` has no effect."""
    wanted = False
    for value in request.query_params.getlist("expand"):
        for part in value.split(","):
            if part not in ("true", "false", "orderItems"):
                raise InvalidParameter("expand")
            wanted = wanted or part != "false"
    return wanted and role == CONSUMER


_routes(CONTACT, "contacts", "orderContacts", openapi.schema(CONTACT_MODEL), render.contact)
_routes(CONSUMER, "consumers", "orderConsumers", openapi.schema(CONSUMER_MODEL), render.consumer)


@router.get(
    "/orderConsumers/{person_ref}/orderItems",
    summary="The items a consumer uses",
    responses=openapi.responses(openapi.collection(ITEM_SCHEMA), 400, 404),
)
async def consumer_items(request: Request, tenant: CurrentTenant, db: Db, person_ref: str) -> Response:
    page = parse_page(request)
    ref = path_ref(person_ref, people.LABELS[CONSUMER], tenant)
    total, rows = await db.reading(
        lambda conn: people.list_consumer_items(conn, tenant, ref, page.sort, page.offset, page.limit)
    )
    urls = links(request)
    return ok(envelope(request, page, total, [item_link(render.item(urls, row), page.expand) for row in rows]))
