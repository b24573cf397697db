"""Applying one batch record (batch-api.md §4, §6, §7) through the same core as REST and events.

Every failure is an ApiError whose status becomes the record's code and whose message is the log's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar, cast

from sqlalchemy import Connection

from opencdp.core import extensions, guests, holders, identity, orders, people, profiles
from opencdp.core.errors import ApiError, ExtensionRuleError, InvalidField, MissingField, UnsupportedField
from opencdp.core.fields import TIMESTAMP_FORMAT, Mode, Model, validate
from opencdp.core.models import BATCH_ITEM, BATCH_ORDER, CONSUMER, GUEST, PERSON_FIELDS
from opencdp.core.tenants import Tenant, identity_rules
from opencdp.core.values import nth_instant, parse_timestamp
from opencdp.store import extensions as extension_store
from opencdp.store import guests as guest_store
from opencdp.store import orders as order_store
from opencdp.store import people as people_store
from opencdp.store import stream as stream_store
from opencdp.store.guests import GUESTS, Holding
from opencdp.store.orders import ITEMS, ORDERS
from opencdp.store.people import PEOPLE
from opencdp.store.records import Order, OrderItem, Person
from opencdp.store.rows import Record

T = TypeVar("T")
ParsedItem = tuple[dict[str, Any], dict[str, Any] | None]  # an item's values (with its flight segments), its `ext`
DELETE_WINDOW = timedelta(hours=24)


def validation(path: str, check: Callable[[], T]) -> T:
    """Run a REST-style rule and report it in the batch log's words, with the path from the record root."""
    try:
        return check()
    except MissingField as error:
        raise attribute_error(f"{path}.{error.field}", "is required") from None
    except UnsupportedField as error:
        raise attribute_error(f"{path}.{error.field}", "is not supported") from None
    except InvalidField as error:
        raise attribute_error(f"{path}.{error.field}", f"is invalid ({error.reason})") from None
    except ExtensionRuleError as error:
        where = path if error.attribute is None else f"{path}.{error.attribute}"
        raise attribute_error(where, f"is invalid ({error.reason})") from None


def attribute_error(path: str, what: str) -> ApiError:
    return ApiError(f"Validation error: Attribute {path} {what}")


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise attribute_error(path, "is invalid (must be an object)")
    return {k: v for k, v in value.items() if v is not None}


def _list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise attribute_error(path, "is invalid (must be an array)")
    return value


PERSON_MODEL = Model("batchPerson", PERSON_FIELDS)


def person(value: Any, path: str, *, consumer: bool = False) -> dict[str, Any]:
    """A contact or consumer: REST person fields, with the address as `email` (or `emails`)."""
    data = _object(value, path)
    email = data.pop("email", None)
    items = data.pop("orderItems", None) if consumer else None
    if email is not None:
        if not isinstance(email, str):
            raise attribute_error(f"{path}.email", "is invalid (must be a string)")
        data.setdefault("emails", [email])
    model = CONSUMER if consumer else PERSON_MODEL
    parsed = validation(path, lambda: validate(model, data, Mode.CREATE))
    parsed.pop("orderItems", None)
    parsed = {k: v for k, v in parsed.items() if v is not None}
    if consumer and items is not None:
        parsed["itemReferences"] = [
            _object(item, f"{path}.orderItems[{i}]").get("referenceId")
            for i, item in enumerate(_list(items, f"{path}.orderItems"))
        ]
    return parsed


def _extension(value: Any, path: str, limit: int = 50) -> dict[str, Any] | None:
    if value is None:
        return None
    groups = _list(value, path)
    if len(groups) != 1:
        raise attribute_error(path, "is invalid (must hold exactly one element)")
    group = dict(_object(groups[0], f"{path}[0]"))
    if group.get("name", "ext") != "ext":
        raise attribute_error(f"{path}[0].name", "is invalid (value must be one of ext)")
    pairs = {k: v for k, v in group.items() if k not in ("name", "key")}
    if len(pairs) > limit:
        raise attribute_error(path, f"is invalid (at most {limit} attributes)")
    validation(f"{path}[0]", lambda: extensions.parse_pairs(group, Mode.CREATE))
    return pairs


# --- orders -----------------------------------------------------------------------------------------


def _header(value: Mapping[str, Any], mode: Mode) -> dict[str, Any]:
    header = validation("value", lambda: validate(BATCH_ORDER, value, mode))
    if mode is Mode.PATCH:
        for name in ("referenceId", "orderedAt"):
            if header.get(name) is None:
                raise attribute_error(f"value.{name}", "is required")
    payment = header.get("paymentType")
    if isinstance(payment, str) and payment.lower() == "card" and not header.get("cardType"):
        raise attribute_error("value.cardType", "is required")
    return header


def _items(value: Mapping[str, Any], mode: Mode) -> list[ParsedItem]:
    raw = value.get("orderItems")
    if raw is None:
        if mode is Mode.CREATE:
            raise attribute_error("value.orderItems", "is required")
        return []
    items = _list(raw, "value.orderItems")
    if mode is Mode.CREATE and not items:
        raise attribute_error("value.orderItems", "is invalid (at least one item is required)")
    parsed, seen = [], set()
    for index, item in enumerate(items):
        path = f"value.orderItems[{index}]"
        data = _object(item, path)
        values = validation(path, partial(validate, BATCH_ITEM, data, mode))
        if values.get("referenceId") is None:
            raise attribute_error(f"{path}.referenceId", "is required")
        if values["referenceId"] in seen:
            raise attribute_error(f"{path}.referenceId", "is invalid (must be unique within the order)")
        seen.add(values["referenceId"])
        values.pop("consumerTypeCode", None)
        values.pop("tripType", None)
        segments = data.get("flightSegments")
        if segments is not None:
            values["flightSegments"] = _list(segments, f"{path}.flightSegments")
        parsed.append((values, _extension(data.get("extensions"), f"{path}.extensions")))
    return parsed


@dataclass
class OrderValues:
    """An order record's checked values: what the record writes once its match (if any) is known."""

    header: dict[str, Any]
    items: list[ParsedItem]
    contact: dict[str, Any] | None
    consumers: list[dict[str, Any]] | None
    extension: dict[str, Any] | None


def order_key(value: Mapping[str, Any], mode: str) -> dict[str, Any]:
    """The first check of an order record: its header as the mode reads it, for referenceId and orderedAt."""
    return _header(value, Mode.PATCH if mode == "upsert" else Mode.CREATE)


def parse_order(
    value: Mapping[str, Any], mode: str, *, matched: bool, key: dict[str, Any] | None = None
) -> OrderValues:
    """Every check of an order record that needs no database, in the order the log reports them; `key` is
    the record's `order_key` when the caller has it already.

    insert checks as a create; upsert as a patch when the order exists and as a create when it does not.
    """
    patch = mode == "upsert"
    header = key if key is not None else order_key(value, mode)
    if patch and not matched:
        header = _header(value, Mode.CREATE)
    items = _items(value, Mode.PATCH if patch and matched else Mode.CREATE)
    contact = person(value["contact"], "value.contact") if value.get("contact") is not None else None
    if contact is None and not matched:
        raise attribute_error("value.contact", "is required")
    if contact is not None and not (contact.get("identifiers") or contact.get("emails")):
        raise ApiError("Identity information missing")
    consumers = None
    if value.get("consumers") is not None:
        consumers = [
            person(c, f"value.consumers[{i}]", consumer=True)
            for i, c in enumerate(_list(value["consumers"], "value.consumers"))
        ]
    extension = _extension(value.get("extensions"), "value.extensions")
    return OrderValues(header, items, contact, consumers, extension)


def order_record(conn: Connection, tenant: Tenant, value: Mapping[str, Any], mode: str, now: datetime) -> str:
    """insert (create or replace whole) and upsert (change the fields sent) of one order."""
    patch = mode == "upsert"
    key = order_key(value, mode)
    match = orders.find_match(conn, tenant, key["referenceId"], key["orderedAt"])
    parsed = parse_order(value, mode, matched=match is not None, key=key)
    previous_contact: Person | None = None
    previous_consumers: list[Person] = []
    if match is None:
        order = orders.insert_order(conn, tenant, parsed.header, now)
    else:
        order = ORDERS.modify(conn, match, orders.header_changes(parsed.header, value if patch else None), now)
        if parsed.contact is not None:  # what is not sent is kept, and need not be read
            previous_contact = people_store.first_of_role(conn, tenant.id, order["ref"], identity.CONTACT)
        if parsed.consumers is not None:
            previous_consumers = _consumers_of(conn, tenant, order["ref"])
    fresh = match is None
    item_refs = _write_items(conn, tenant, order, parsed.items, replace=not patch, fresh=fresh, now=now)
    if parsed.contact is not None:
        _replace_contact(conn, tenant, order, parsed.contact, previous_contact, now)
    if parsed.consumers is not None:
        _replace_consumers(conn, tenant, order, parsed.consumers, previous_consumers, item_refs, now)
    if parsed.extension is not None:
        owner = extensions.Owner("order", order["ref"], "Order")
        _replace_extension(conn, tenant, owner, parsed.extension, now, fresh=fresh)
    ref: str = order["ref"]
    return ref


def _consumers_of(conn: Connection, tenant: Tenant, order_ref: str) -> list[Person]:
    return people_store.of_role(conn, tenant.id, order_ref, identity.CONSUMER)


def _write_items(
    conn: Connection, tenant: Tenant, order: Order, items: list[Any], *, replace: bool, fresh: bool, now: datetime
) -> dict[str, str]:
    """Items match within the order by referenceId and keep their ref; insert drops the ones not sent.

    A `fresh` order (just created) has no items or extensions yet, so nothing is looked up for it.
    """
    if fresh:
        return _insert_items(conn, tenant, order, items, now)
    if not items and not replace:  # an upsert that sends no items changes none
        return {}
    stored = _items_of(conn, tenant, order["ref"])
    existing = {row["referenceId"]: row for row in stored}
    refs: dict[str, str] = {}
    for position, (values, extension) in enumerate(items):
        kept = existing.get(values["referenceId"])
        item, changes = placed_item(tenant, order, position, values, kept, replace=replace, now=now)
        if changes is None:
            ITEMS.insert(conn, item)
        else:
            item = ITEMS.modify(conn, item, changes, now)
        refs[values["referenceId"]] = item["ref"]
        if extension is not None:
            owner = extensions.Owner("orderItem", item["ref"], "Order item")
            _replace_extension(conn, tenant, owner, extension, now, fresh=kept is None)
    if replace:
        dropped = dropped_items(stored, refs.values())
        extension_store.delete_of_owners(conn, tenant.id, dropped)
        ITEMS.delete_many(conn, tenant.id, dropped)
    return refs


def _insert_items(conn: Connection, tenant: Tenant, order: Order, items: list[Any], now: datetime) -> dict[str, str]:
    """The items of an order the record just created, and their extensions: one statement each."""
    created = orders.insert_items(conn, tenant, order, [values for values, _extension in items], now)
    owned = [
        (extensions.Owner("orderItem", record["ref"], "Order item"), extension)
        for record, (_values, extension) in zip(created, items, strict=True)
        if extension is not None
    ]
    try:
        extensions.create_for_new_owners(conn, tenant, owned, now)
    except extensions.IncorrectType as error:
        raise type_error("orderItem", error.key) from None
    return {cast(str, record["referenceId"]): record["ref"] for record in created}  # a batch item has one


def type_error(owner_kind: str, key: str) -> ApiError:
    """An extension value of another type than its key holds, in the log's words."""
    path = "value.extensions[0]" if owner_kind == "order" else "value.orderItems[].extensions[0]"
    return attribute_error(f"{path}.{key}", "is invalid (Incorrect data type)")


_ITEM_FIELDS = ({f.name for f in BATCH_ITEM.fields} - {"consumerTypeCode", "tripType"}) | {"flightSegments"}


def _items_of(conn: Connection, tenant: Tenant, order_ref: str) -> list[OrderItem]:
    return order_store.items_of_order(conn, tenant.id, order_ref)


def _replace_contact(
    conn: Connection, tenant: Tenant, order: Order, contact: dict[str, Any], previous: Person | None, now: datetime
) -> None:
    guest_ref = contact_guest(identity.StoredGuests(conn, tenant, now), contact, previous)
    if previous is not None:
        PEOPLE.delete(conn, tenant.id, previous["ref"])
    people.insert_person(conn, tenant, order["ref"], identity.CONTACT, contact, guest_ref, now)


def contact_guest(book: identity.Guests, contact: Mapping[str, Any], previous: Person | None) -> str:
    """The guest the contact that replaces `previous` links to. A contact no rule places keeps the guest its
    predecessor had, so re-applying a file makes no new guests."""
    hit = identity.holder(book, contact)
    if hit is None and previous is not None and previous["guestRef"]:
        return previous["guestRef"]
    return identity.link(book, contact, identity.CONTACT, hit)


def consumer_guest(
    book: identity.Guests, consumer: Mapping[str, Any], previous: Sequence[Person], contact: Person | None
) -> str:
    """The guest a consumer that replaces the order's `previous` ones links to: one no rule places keeps the
    guest of the previous consumer of the same name."""
    hit = identity.holder(book, consumer)
    same = next((p for p in previous if identity.same_name(p, consumer)), None)
    if hit is None and same is not None and same["guestRef"]:
        return same["guestRef"]
    return identity.link(book, consumer, identity.CONSUMER, hit, contact)


def placed_item(
    tenant: Tenant,
    order: Order,
    position: int,
    values: Mapping[str, Any],
    stored: OrderItem | None,
    *,
    replace: bool,
    now: datetime,
) -> tuple[OrderItem, dict[str, Any] | None]:
    """An item a record names by referenceId on a stored order: the stored item with what the record
    changes on it, or, when none is stored, a new item (which must be complete) and no changes."""
    if stored is None:
        complete_item(position, values)
        return orders.item_records(tenant, order, [values], nth_instant(now, position))[0], None
    return stored, item_changes(order, values, replace=replace)


def dropped_items(stored: Iterable[OrderItem], placed: Iterable[str]) -> list[str]:
    """An insert replaces its order whole: every stored item the record does not name goes (with its
    extension), including items REST made without a referenceId."""
    named = set(placed)
    return [item["ref"] for item in stored if item["ref"] not in named]


def consumable_items(item_refs: Mapping[str, str], held: Iterable[OrderItem]) -> dict[str, str]:
    """What a record's consumers may name: the items it sends, by referenceId; when it sends none, every
    item the order holds after it (`held`; an item REST made has no referenceId and goes by its ref)."""
    return dict(item_refs) or {item["referenceId"] or item["ref"]: item["ref"] for item in held}


def complete_item(position: int, values: Mapping[str, Any]) -> None:
    """An upsert may add an item to a stored order, but only a complete one."""
    missing = next((f.name for f in BATCH_ITEM.fields if f.required and values.get(f.name) is None), None)
    if missing is not None:
        raise attribute_error(f"value.orderItems[{position}].{missing}", "is required")


def item_changes(order: Order, values: Mapping[str, Any], *, replace: bool) -> dict[str, Any]:
    """What a record sets on a stored item of its order that it names by referenceId: the fields sent, and
    with `replace` (an insert) every other field cleared; an item without orderedAt takes the order's."""
    cleared = {name: None for name in _ITEM_FIELDS} if replace else {}
    changes = {k: v for k, v in {**cleared, **values}.items() if k in _ITEM_FIELDS}
    changes["orderedAt"] = changes.get("orderedAt") or order["orderedAt"]
    return changes


def consumed_items(index: int, references: list[str] | None, item_refs: Mapping[str, str]) -> list[str]:
    """The refs of the items the `index`th consumer consumes, from the item referenceIds it names
    (`item_refs` maps the order's): all of them when it names none; one the order lacks is refused."""
    if references is None:
        return list(item_refs.values())
    if any(reference not in item_refs for reference in references):
        raise attribute_error(f"value.consumers[{index}].orderItems", "is invalid (unknown order item)")
    return [item_refs[reference] for reference in references]


def _replace_consumers(
    conn: Connection,
    tenant: Tenant,
    order: Order,
    consumers: list[dict[str, Any]],
    previous: list[Person],
    item_refs: dict[str, str],
    now: datetime,
) -> None:
    contact = people_store.first_of_role(conn, tenant.id, order["ref"], identity.CONTACT)
    all_items = consumable_items(item_refs, _items_of(conn, tenant, order["ref"]))
    for old in previous:
        PEOPLE.delete(conn, tenant.id, old["ref"])
    for index, consumer in enumerate(consumers):
        chosen = consumed_items(index, consumer.pop("itemReferences", None), all_items)
        guest_ref = consumer_guest(identity.StoredGuests(conn, tenant, now), consumer, previous, contact)
        record = people.insert_person(
            conn, tenant, order["ref"], identity.CONSUMER, consumer, guest_ref, nth_instant(now, index)
        )
        people_store.set_consumer_items(conn, record["ref"], chosen)


def _replace_extension(
    conn: Connection, tenant: Tenant, owner: extensions.Owner, pairs: dict[str, Any], now: datetime, *, fresh: bool
) -> None:
    try:
        current = None if fresh else extension_store.get(conn, tenant.id, owner.ref, "ext")
        if current is None:
            extensions.create(conn, tenant, owner, "ext", pairs, now, new_owner=True)
        else:
            extensions.write(conn, tenant, owner, "ext", pairs, Mode.PUT, now, current=current)
    except extensions.IncorrectType as error:
        raise type_error(owner.kind, error.key) from None


def order_delete(conn: Connection, tenant: Tenant, value: Mapping[str, Any], now: datetime) -> str:
    key = delete_key(value)
    reference = key["referenceId"]
    target = delete_target(order_store.of_references(conn, tenant.id, [reference]).get(reference, []), key)
    orders.delete_order(conn, tenant, target, found=True)
    return "Order and associated entities deleted"


def delete_key(value: Mapping[str, Any]) -> dict[str, Any]:
    """What names the order a delete record removes, checked without the database."""
    reference = value.get("referenceId")
    if not isinstance(reference, str) or not reference:
        raise attribute_error("value.referenceId", "is required")
    ordered_at = None
    if value.get("orderedAt") is not None:
        ordered_at = validation("value", lambda: validate(BATCH_ORDER, {"orderedAt": value["orderedAt"]}, Mode.PATCH))[
            "orderedAt"
        ]
    order_ref = str(value["orderRef"]).lower() if value.get("orderRef") is not None else None
    return {"referenceId": reference, "orderedAt": ordered_at, "orderRef": order_ref}


def delete_target(stored: Sequence[Record], key: Mapping[str, Any]) -> str:
    """The one order among those of the referenceId that a delete names, or why there is none."""
    candidates = list(stored)
    if key["orderedAt"] is not None:
        candidates = [o for o in candidates if abs(o["orderedAt"] - key["orderedAt"]) <= DELETE_WINDOW]
    if key["orderRef"] is not None:
        candidates = [o for o in candidates if o["ref"] == key["orderRef"]]
    if not candidates:
        raise ApiError("No order found for the provided referenceId and orderedAt attributes.", status=404)
    if len(candidates) > 1:
        if key["orderedAt"] is None:
            raise ApiError("More than one order exists with that referenceId, please supply the orderedAt date for "
                           "the order you wish to delete.")  # fmt: skip
        raise ApiError("More than one order exists with that referenceId and orderedAt, please supply the orderRef "
                       "of the order you wish to delete.")  # fmt: skip
    return str(candidates[0]["ref"])


# --- guests -----------------------------------------------------------------------------------------


def guest_fields(value: Mapping[str, Any]) -> tuple[dict[str, Any], Any]:
    """A guest upsert's person fields, checked without the database, and its `extensions` as sent (they
    are checked in order as they are applied, as each group's rules depend on the guest's other groups)."""
    data = dict(_object(value, "value"))
    groups = data.pop("extensions", None)
    guest_type = data.pop("guestType", "customer")
    if guest_type != "customer":
        raise attribute_error("value.guestType", "is invalid (value must be one of customer)")
    seen = {name: _seen(data.pop(name, None), f"value.{name}") for name in guests.SEEN_NAMES}
    fields = person({k: v for k, v in data.items() if k != "language"}, "value")
    if data.get("language") is not None:
        fields["language"] = validation(
            "value", lambda: validate(GUEST, {"guestType": "customer", "language": data["language"]}, Mode.CREATE)
        )["language"]
    fields.update({name: moment for name, moment in seen.items() if moment is not None})
    if not (fields.get("identifiers") or fields.get("emails")):
        raise ApiError("Identity information missing")
    return fields, groups


def _seen(raw: Any, path: str) -> datetime | None:
    """When a channel first or last saw the guest, as the sender's system recorded it."""
    if raw is None:
        return None
    moment = parse_timestamp(raw)
    if moment is None:
        raise attribute_error(path, f"is invalid ({TIMESTAMP_FORMAT})")
    return moment


def identifying(rules: Sequence[str], fields: Mapping[str, Any], now: datetime) -> None:
    """A guest upsert must carry a key some identity rule looks at."""
    if not any(p in rules for p, _ in identity.candidates(fields, now)):
        raise ApiError("Not enough identifying information")


def guest_groups(groups: Any) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Each extension group of a guest upsert: its path in the record, its name and its pairs, the name and
    pairs checked as the Guest API checks them (the rules that depend on what is stored are not)."""
    for index, group in enumerate(_list(groups, "value.extensions")):
        path = f"value.extensions[{index}]"
        group = _object(group, path)
        pairs = {k: v for k, v in group.items() if k not in ("name", "key")}
        name = validation(path, partial(extensions.pick_name, "guest", group.get("name", "ext"), pairs))
        validation(path, partial(extensions.parse_pairs, pairs, Mode.PUT))
        yield path, name, pairs


def guest_upsert(conn: Connection, tenant: Tenant, value: Mapping[str, Any], now: datetime) -> str:
    fields, groups = guest_fields(value)
    identifying(identity_rules(conn, tenant), fields, now)
    hit = identity.resolve(conn, tenant, fields, now)
    guest_ref = identity.upsert(identity.StoredGuests(conn, tenant, now), hit, fields)
    if groups is not None:
        owner = extensions.Owner("guest", guest_ref, "Guest")
        for path, name, pairs in guest_groups(groups):
            validation(path, partial(_put_group, conn, tenant, owner, name, pairs, now))
    return guest_ref


def _put_group(
    conn: Connection, tenant: Tenant, owner: extensions.Owner, name: str, pairs: dict[str, Any], now: datetime
) -> None:
    """A group sent replaces that group whole."""
    current = extension_store.get(conn, tenant.id, owner.ref, name)
    if current is None:
        extensions.create(conn, tenant, owner, name, pairs, now, new_owner=True)
    else:
        extensions.write(conn, tenant, owner, name, pairs, Mode.PUT, now, current=current)


def _holders(conn: Connection, tenant: Tenant, value: Mapping[str, Any], missing: str) -> list[str]:
    data = _object(value, "value")
    keys = [(i.get("provider"), i.get("id")) for i in data.get("identifiers") or [] if isinstance(i, dict)]
    if not keys and isinstance(data.get("email"), str):
        keys = [(guests.EMAIL, data["email"])]
    texts = [(p, k) for p, k in keys if isinstance(p, str) and isinstance(k, str)]
    if not texts:
        raise ApiError(missing)
    found: dict[str, Holding] = {}
    for provider, key in texts:
        for holding in guest_store.holdings(conn, tenant.id, provider, guests.normalize_id(provider, key)):
            found.setdefault(holding[0], holding)
    return holders.by_age(found.values())


def _has_open_session(conn: Connection, tenant: Tenant, guest_ref: str) -> bool:
    return any(
        s["status"] == stream_store.OPEN
        for s in stream_store.page_sessions(conn, tenant.id, guest_ref, (("startedAt", True),), 0, 100)[1]
    )


def guest_delete(conn: Connection, tenant: Tenant, value: Mapping[str, Any], mode: str, now: datetime) -> str:
    found = _holders(conn, tenant, value, "Not Enough Identifying Info")
    if not found:
        raise ApiError("Guest not found", status=404)
    target = found[0]
    if _has_open_session(conn, tenant, target):
        raise ApiError("Action not allowed", status=403)
    if mode == "delete":
        guest_store.unlink_roles(conn, tenant.id, [target, *guest_store.retired_into(conn, tenant.id, target)])
    profiles.delete(conn, tenant, target)
    if len(found) > 1:
        return f"{len(found)} matches found for this guest, 1st match deleted"
    return "Guest and associated entities deleted"


def migration(conn: Connection, tenant: Tenant, value: Mapping[str, Any], now: datetime) -> str:
    data = _object(value, "value")
    sides = []
    for name in ("migrateFrom", "migrateTo"):
        side = data.get(name)
        if not isinstance(side, dict):
            raise ApiError("Identity information missing")
        holders = _holders(conn, tenant, side, "Identity information missing")
        live = {guests.require(conn, tenant, h)["ref"] for h in holders}
        if len(live) > 1:
            raise ApiError("Identifiers belong to different guests", status=409)
        if not live:
            raise ApiError("Guest not found", status=404)
        sides.append(live.pop())
    source, target = sides
    if source == target:
        return "Guest migrated"
    if _has_open_session(conn, tenant, source):
        raise ApiError("Unable to migrate Guest with open session", status=403)
    identifier = next(iter(guests.keys_of(GUESTS.get(conn, tenant.id, source) or {})), ("migration", ""))
    identity.merge(conn, tenant, target, source, identifier[:2], "batch migration", now, copy_profile=False)
    return "Guest migrated"


HANDLERS: dict[tuple[str, str], Callable[[Connection, Tenant, Mapping[str, Any], datetime], str]] = {
    ("order", "insert"): lambda conn, tenant, value, now: order_record(conn, tenant, value, "insert", now),
    ("order", "upsert"): lambda conn, tenant, value, now: order_record(conn, tenant, value, "upsert", now),
    ("order", "delete"): order_delete,
    ("guest", "upsert"): guest_upsert,
    ("guest", "delete"): lambda conn, tenant, value, now: guest_delete(conn, tenant, value, "delete", now),
    ("guest", "gdpr_delete"): lambda conn, tenant, value, now: guest_delete(conn, tenant, value, "gdpr_delete", now),
    ("migration", "guest"): migration,
}
