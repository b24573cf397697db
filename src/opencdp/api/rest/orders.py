"""Orders and order items (rest-api.md §4, §5.1, §5.2, §6.1–§6.3)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import Connection
from starlette.responses import Response

from opencdp.api.deps import CurrentTenant, Db, JsonBody, path_ref
from opencdp.api.rest import openapi, render
from opencdp.api.rest.collections import COMMON_SORT, EMBEDDED_LIMIT, embedded, envelope, item_link, parse_page
from opencdp.api.rest.reply import links, no_content, ok, written
from opencdp.api.rest.updates import put_and_patch
from opencdp.core import orders, people
from opencdp.core.errors import InvalidParameter
from opencdp.core.fields import Mode, parse_ref
from opencdp.core.identity import CONSUMER, CONTACT
from opencdp.core.models import ORDER, ORDER_ITEM
from opencdp.core.tenants import Tenant
from opencdp.core.values import utcnow
from opencdp.store.database import Database
from opencdp.store.records import Order

router = APIRouter(prefix="/v2.1", tags=["orders"])

ORDER_SCHEMA = openapi.schema(ORDER)
ITEM_SCHEMA = openapi.schema(ORDER_ITEM)
ORDER_EXPANSIONS = ("orderItems", "contacts", "consumers")


@router.post(
    "/orders",
    summary="Create an order, or update the one it matches",
    description="Same referenceId and orderedAt within 48 hours: the existing order is updated (200).",
    openapi_extra=openapi.request_body(ORDER_SCHEMA),
    responses=openapi.responses(ORDER_SCHEMA, 400, 415, created=True),
)
async def create_order(request: Request, tenant: CurrentTenant, db: Db, body: JsonBody) -> Response:
    record, created = await db.writing(lambda conn: orders.create_order(conn, tenant, body, utcnow()))
    return written(render.order(links(request), record), created)


@router.get(
    "/orders",
    summary="Orders by referenceId or by guestRef",
    responses=openapi.responses(openapi.collection(ORDER_SCHEMA), 400),
)
async def list_orders(request: Request, tenant: CurrentTenant, db: Db) -> Response:
    params = request.query_params
    reference_id, guest_ref = params.get("referenceId"), params.get("guestRef")
    if (reference_id is None) == (guest_ref is None):
        raise InvalidParameter("referenceId", "exactly one of referenceId and guestRef is required")
    page = parse_page(request, COMMON_SORT | {"orderedAt"} if guest_ref is not None else COMMON_SORT)

    def load(conn: Connection) -> tuple[int, list[Order]]:
        if reference_id is not None:
            return orders.list_by_reference(conn, tenant, reference_id, page.sort, page.offset, page.limit)
        ref = parse_ref(guest_ref)
        return (0, []) if ref is None else orders.list_by_guest(conn, tenant, ref, page.sort, page.offset, page.limit)

    total, rows = await db.reading(load)
    urls = links(request)
    return ok(envelope(request, page, total, [item_link(render.order(urls, row), page.expand) for row in rows]))


def _order_expansions(request: Request) -> set[str]:
    wanted: set[str] = set()
    for value in request.query_params.getlist("expand"):
        for part in value.split(","):
            if part == "true":
                wanted.update(ORDER_EXPANSIONS)
            elif part in ORDER_EXPANSIONS:
                wanted.add(part)
            elif part != "false":
                raise InvalidParameter("expand")
    return wanted


@router.get("/orders/{order_ref}", summary="One order", responses=openapi.responses(ORDER_SCHEMA, 400, 404))
async def get_order(request: Request, tenant: CurrentTenant, db: Db, order_ref: str) -> Response:
    expand = _order_expansions(request)
    ref = path_ref(order_ref, "Order", tenant)
    urls = links(request)

    def load(conn: Connection) -> dict[str, Any]:
        body = render.order(urls, orders.require_order(conn, tenant, ref))
        first_page = (("createdAt", False),), 0, EMBEDDED_LIMIT
        if "orderItems" in expand:
            total, rows = orders.list_items(conn, tenant, ref, *first_page, found=True)
            body["orderItems"] = embedded(body["orderItems"]["href"], total, [render.item(urls, r) for r in rows])
        for name, role, draw in (("contacts", CONTACT, render.contact), ("consumers", CONSUMER, render.consumer)):
            if name in expand:
                total, found = people.list_people(conn, tenant, ref, role, *first_page, found=True)
                body[name] = embedded(body[name]["href"], total, [draw(urls, person) for person in found])
        return body

    return ok(await db.reading(load))


async def _update_order(
    request: Request, tenant: Tenant, db: Database, body: JsonBody, raw: str, mode: Mode
) -> Response:
    ref = path_ref(raw, "Order", tenant)
    record = await db.writing(lambda conn: orders.update_order(conn, tenant, ref, body, mode, utcnow()))
    return ok(render.order(links(request), record))


@router.delete(
    "/orders/{order_ref}",
    status_code=204,
    summary="Delete an order with its items, contact, consumers and extensions",
    responses=openapi.responses(None, 404),
)
async def delete_order(tenant: CurrentTenant, db: Db, order_ref: str) -> Response:
    ref = path_ref(order_ref, "Order", tenant)
    await db.writing(lambda conn: orders.delete_order(conn, tenant, ref))
    return no_content()


@router.post(
    "/orders/{order_ref}/orderItems",
    summary="Add an item, or update the order's item with the same referenceId",
    openapi_extra=openapi.request_body(ITEM_SCHEMA),
    responses=openapi.responses(ITEM_SCHEMA, 400, 404, 415, created=True),
)
async def create_item(request: Request, tenant: CurrentTenant, db: Db, body: JsonBody, order_ref: str) -> Response:
    ref = path_ref(order_ref, "Order", tenant)
    record, created = await db.writing(lambda conn: orders.create_item(conn, tenant, ref, body, utcnow()))
    return written(render.item(links(request), record), created)


@router.get(
    "/orders/{order_ref}/orderItems",
    summary="An order's items",
    responses=openapi.responses(openapi.collection(ITEM_SCHEMA), 400, 404),
)
async def list_items(request: Request, tenant: CurrentTenant, db: Db, order_ref: str) -> Response:
    page = parse_page(request)
    ref = path_ref(order_ref, "Order", tenant)
    total, rows = await db.reading(
        lambda conn: orders.list_items(conn, tenant, ref, page.sort, page.offset, page.limit)
    )
    urls = links(request)
    return ok(envelope(request, page, total, [item_link(render.item(urls, row), page.expand) for row in rows]))


@router.get("/orderItems/{item_ref}", summary="One order item", responses=openapi.responses(ITEM_SCHEMA, 404))
async def get_item(request: Request, tenant: CurrentTenant, db: Db, item_ref: str) -> Response:
    ref = path_ref(item_ref, "Order item", tenant)
    record = await db.reading(lambda conn: orders.require_item(conn, tenant, ref))
    return ok(render.item(links(request), record))


async def _update_item(
    request: Request, tenant: Tenant, db: Database, body: JsonBody, raw: str, mode: Mode
) -> Response:
    ref = path_ref(raw, "Order item", tenant)
    record = await db.writing(lambda conn: orders.update_item(conn, tenant, ref, body, mode, utcnow()))
    return ok(render.item(links(request), record))


@router.delete(
    "/orderItems/{item_ref}",
    status_code=204,
    summary="Delete an order item",
    responses=openapi.responses(None, 404),
)
async def delete_item(tenant: CurrentTenant, db: Db, item_ref: str) -> Response:
    ref = path_ref(item_ref, "Order item", tenant)
    await db.writing(lambda conn: orders.delete_item(conn, tenant, ref))
    return no_content()


put_and_patch(router, "/orders/{ref}", _update_order, ORDER_SCHEMA, "an order")
put_and_patch(router, "/orderItems/{ref}", _update_item, ITEM_SCHEMA, "an order item")
