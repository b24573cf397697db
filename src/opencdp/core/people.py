"""Order contacts and consumers, and how each links to a guest (rest-api.md §5.4, §5.5, §6.4)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection

from opencdp.core.errors import InvalidField, NotFound
from opencdp.core.fields import Mode, Model, validate
from opencdp.core.identity import CONSUMER, CONTACT, link_person
from opencdp.core.models import CONSUMER as CONSUMER_MODEL
from opencdp.core.models import CONTACT as CONTACT_MODEL
from opencdp.core.orders import require_order, sent
from opencdp.core.tenants import Tenant
from opencdp.core.values import new_ref
from opencdp.store import orders as order_store
from opencdp.store import people as people_store
from opencdp.store.database import lock
from opencdp.store.people import PEOPLE
from opencdp.store.records import Person
from opencdp.store.rows import Record, SortTerm

MODELS: dict[str, Model] = {CONTACT: CONTACT_MODEL, CONSUMER: CONSUMER_MODEL}
LABELS = {CONTACT: "Order contact", CONSUMER: "Order consumer"}


def require_person(conn: Connection, tenant: Tenant, role: str, ref: str) -> Person:
    person = PEOPLE.get(conn, tenant.id, ref)
    if person is None or person["role"] != role:
        raise NotFound(f"{LABELS[role]} with ref {ref} for client key {tenant.client_key} was not found")
    return person


def create_contact(
    conn: Connection, tenant: Tenant, order_ref: str, body: Mapping[str, Any], now: datetime
) -> tuple[Person, bool]:
    """An order has one contact: a second POST updates it as a PATCH would and resolves its guest again."""
    require_order(conn, tenant, order_ref)
    values = validate(CONTACT_MODEL, body, Mode.CREATE)
    lock(conn, f"contact:{order_ref}")
    existing = people_store.first_of_role(conn, tenant.id, order_ref, CONTACT)
    if existing is not None:
        return _write(conn, tenant, existing, sent(values, body), now, resolve=True), False
    guest_ref = link_person(conn, tenant, values, CONTACT, now)
    return insert_person(conn, tenant, order_ref, CONTACT, values, guest_ref, now), True


def create_consumer(
    conn: Connection, tenant: Tenant, order_ref: str, body: Mapping[str, Any], now: datetime
) -> tuple[Person, bool]:
    """A consumer resolving to a guest already consuming this order updates that consumer instead."""
    require_order(conn, tenant, order_ref)
    values = validate(CONSUMER_MODEL, body, Mode.CREATE)
    item_refs = values.pop("orderItems")
    _check_items(conn, tenant, order_ref, item_refs)
    lock(conn, f"consumers:{order_ref}")
    contact = people_store.first_of_role(conn, tenant.id, order_ref, CONTACT)
    guest_ref = link_person(conn, tenant, values, CONSUMER, now, contact=contact)
    existing = people_store.first_of_role(conn, tenant.id, order_ref, CONSUMER, guest_ref)
    if existing is not None:
        changes = sent(values, body)
        if item_refs is not None:
            people_store.set_consumer_items(conn, existing["ref"], item_refs)
        return _write(conn, tenant, existing, changes, now, resolve=False), False
    record = insert_person(conn, tenant, order_ref, CONSUMER, values, guest_ref, now)
    people_store.set_consumer_items(conn, record["ref"], item_refs or [])
    return record, True


def update_person(
    conn: Connection, tenant: Tenant, role: str, ref: str, body: Mapping[str, Any], mode: Mode, now: datetime
) -> Person:
    """PUT or PATCH; a change of identifiers or emails re-runs resolution, so the guest link may move."""
    person = require_person(conn, tenant, role, ref)
    values = validate(MODELS[role], body, mode)
    if role == CONSUMER:
        item_refs = values.pop("orderItems", None)
        if item_refs is None and mode is Mode.PUT and not _is_bare_link(body.get("orderItems")):
            item_refs = []
        if item_refs is not None:
            _check_items(conn, tenant, person["orderRef"], item_refs)
            people_store.set_consumer_items(conn, ref, item_refs)
    resolve = any(name in values and values[name] != person.get(name) for name in ("identifiers", "emails"))
    return _write(conn, tenant, person, values, now, resolve=resolve)


def delete_person(conn: Connection, tenant: Tenant, role: str, ref: str) -> None:
    require_person(conn, tenant, role, ref)
    PEOPLE.delete(conn, tenant.id, ref)


def list_people(
    conn: Connection,
    tenant: Tenant,
    order_ref: str,
    role: str,
    sort: Sequence[SortTerm],
    offset: int,
    limit: int,
    *,
    found: bool = False,
) -> tuple[int, list[Person]]:
    """A page of an order's contacts or consumers (404 for an unknown order); `found`: as `list_items`."""
    if not found:
        require_order(conn, tenant, order_ref)
    return people_store.page_people(conn, tenant.id, order_ref, role, sort, offset, limit)


def list_consumer_items(
    conn: Connection, tenant: Tenant, consumer_ref: str, sort: Sequence[SortTerm], offset: int, limit: int
) -> tuple[int, list[Record]]:
    require_person(conn, tenant, CONSUMER, consumer_ref)
    return people_store.page_consumer_items(conn, tenant.id, consumer_ref, sort, offset, limit)


def _is_bare_link(value: Any) -> bool:
    return isinstance(value, dict) and "items" not in value


def insert_person(
    conn: Connection,
    tenant: Tenant,
    order_ref: str,
    role: str,
    values: Mapping[str, Any],
    guest_ref: str,
    now: datetime,
) -> Person:
    record = person_record(tenant, order_ref, role, values, guest_ref, now)
    PEOPLE.insert(conn, record)
    return record


def person_record(
    tenant: Tenant, order_ref: str, role: str, values: Mapping[str, Any], guest_ref: str, now: datetime
) -> Person:
    """A new contact or consumer of an order from its checked values (those not sent as None)."""
    return cast(
        Person,
        {
            **values,
            "ref": new_ref(),
            "tenantId": tenant.id,
            "orderRef": order_ref,
            "role": role,
            "guestRef": guest_ref,
            "createdAt": now,
            "modifiedAt": now,
        },
    )


def _write(
    conn: Connection,
    tenant: Tenant,
    person: Person,
    changes: Mapping[str, Any],
    now: datetime,
    *,
    resolve: bool,
) -> Person:
    updated = cast(Person, {**person, **changes, "modifiedAt": now})
    if resolve:
        contact = None
        if person["role"] == CONSUMER:
            contact = people_store.first_of_role(conn, tenant.id, person["orderRef"], CONTACT)
        updated["guestRef"] = link_person(conn, tenant, updated, person["role"], now, contact=contact)
    columns = {**changes, "modifiedAt": now, "guestRef": updated["guestRef"]}
    PEOPLE.update(conn, tenant.id, person["ref"], columns)
    return updated


def _check_items(conn: Connection, tenant: Tenant, order_ref: str, item_refs: list[str] | None) -> None:
    if not item_refs:
        return
    own = set(order_store.item_refs(conn, tenant.id, [order_ref]))
    for index, ref in enumerate(item_refs):
        if ref not in own:
            raise InvalidField(f"orderItems.items[{index}]")
