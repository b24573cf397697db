"""New orders of a chunk applied together: the set-based path of order insert, upsert and delete records.

Most records of an import create orders that do not exist yet. For a run of such records the chunk asks
each question once for all of them (applied before? an order to match? who holds these identifiers? what
type does each extension key hold?), decides every record in file order by the same rules as the
record-by-record path (`core.batch.records`, `core.identity`, `core.guests`, `core.extensions`), and
writes each table in one statement. Records that change the stored order they match (an upsert of its
status, an insert that replaces it whole when a file is sent again, an upsert that adds items or people)
and deletes are decided there too. A record that repeats a referenceId of the run is applied alone, by the
record-by-record path, once the records before it are written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection

from opencdp.core import extensions, identity, orders, people
from opencdp.core.batch import records
from opencdp.core.batch.identities import IdentityBook
from opencdp.core.batch.key_types import KeyTypes
from opencdp.core.batch.lines import Envelope, Outcome
from opencdp.core.errors import ApiError
from opencdp.core.tenants import Tenant
from opencdp.core.values import nth_instant
from opencdp.store import batches as batch_store
from opencdp.store import extensions as extension_store
from opencdp.store import orders as order_store
from opencdp.store import people as people_store
from opencdp.store.database import lock_all, planned_each_time
from opencdp.store.extensions import EXTENSIONS
from opencdp.store.orders import ITEMS, ORDERS
from opencdp.store.people import PEOPLE
from opencdp.store.records import Order, OrderItem, Person
from opencdp.store.rows import Record


@dataclass
class Entry:
    """An order record as checked without the database (on whichever process checked its chunk)."""

    number: int
    envelope: Envelope
    key: dict[str, Any] | None = None  # referenceId and orderedAt (and a delete's orderRef), once first checked
    outcome: Outcome | None = None  # settled without the database: refused, or applied before
    parsed: records.OrderValues | None = None
    changes: dict[str, Any] | None = None  # an upsert that sends header fields only: what it sets on its match


def check(number: int, envelope: Envelope, value: Any) -> Entry | None:
    """Everything about an order insert, upsert or delete that needs no database, as `records.order_record`
    and `records.order_delete` check it; None for any other record, which the record-by-record path applies."""
    if envelope.schema != "order" or envelope.mode not in ("insert", "upsert", DELETE) or not isinstance(value, dict):
        return None
    entry = Entry(number, envelope)
    try:
        if envelope.mode == DELETE:
            entry.key = records.delete_key(value)
            return entry
        entry.key = records.order_key(value, envelope.mode)
        entry.changes = _header_changes(value, envelope.mode, entry.key)
        entry.parsed = records.parse_order(value, envelope.mode, matched=False, key=entry.key)
    except Exception as error:  # reported as the record-by-record path reports it
        entry.outcome = envelope.failure(error)
    return entry


def _header_changes(value: Mapping[str, Any], mode: str, key: dict[str, Any]) -> dict[str, Any] | None:
    """What an upsert that sends no items, people or extensions sets on the stored order it matches, as
    `records.order_record` changes it; None for any other record, or one that such a match would refuse."""
    if mode != "upsert" or any(value.get(name) is not None for name in NOT_HEADER):
        return None
    try:
        parsed = records.parse_order(value, mode, matched=True, key=key)
    except ApiError:
        return None  # refused as a change too: the record-by-record path says why
    return orders.header_changes(parsed.header, value)


NOT_HEADER = ("orderItems", "contact", "consumers", "extensions")
DELETE = "delete"


def apply(
    conn: Connection, tenant: Tenant, run: list[Entry], now: datetime, alone: Callable[[Envelope], Outcome]
) -> list[tuple[int, Outcome]]:
    """Apply a run of checked order records in file order: new orders together, each other record by
    `alone` (the record-by-record path) in its place, the new orders before it written first."""
    with planned_each_time(conn):
        return _apply(conn, tenant, run, now, alone)


def _apply(
    conn: Connection, tenant: Tenant, run: list[Entry], now: datetime, alone: Callable[[Envelope], Outcome]
) -> list[tuple[int, Outcome]]:
    registered = batch_store.registered_among(conn, tenant.id, [entry.envelope.ref for entry in run])
    entries = [_settle_applied(entry, registered) for entry in run]
    references = {entry.key["referenceId"] for entry in entries if entry.key is not None}
    lock_all(conn, (f"order:{tenant.id}:{reference}" for reference in references))
    stored = order_store.of_references(conn, tenant.id, references)
    outcomes: list[tuple[int, Outcome]] = []
    together: list[tuple[Entry, str | None]] = []
    for entry, (by_itself, match) in zip(entries, _routes(entries, stored), strict=True):
        if by_itself:
            outcomes += _together(conn, tenant, now, together, stored)
            together = []
            outcomes.append((entry.number, alone(entry.envelope)))
        else:
            together.append((entry, match))
    return outcomes + _together(conn, tenant, now, together, stored)


def _settle_applied(entry: Entry, registered: set[tuple[str, str]]) -> Entry:
    """A record applied before is skipped, whatever its checks found."""
    envelope = entry.envelope
    if (envelope.ref, envelope.digest) not in registered:
        return entry
    return Entry(entry.number, envelope, outcome=envelope.outcome(skipped=True))


def _routes(entries: list[Entry], stored: Mapping[str, list[Record]]) -> Iterator[tuple[bool, str | None]]:
    """Which records the record-by-record path applies, and the stored order each other one changes.

    Alone: a record whose referenceId an earlier record of the run may have used (the orders of the run
    are not looked up). A record applied before, or refused on its first check, changes nothing.
    """
    used: set[str] = set()
    for entry in entries:
        if entry.key is None:
            yield False, None
            continue
        reference = entry.key["referenceId"]
        if entry.envelope.mode == DELETE:  # decided against the stored orders, unless the run touched them
            yield reference in used, None
            used.add(reference)
            continue
        match = orders.closest(stored.get(reference, ()), entry.key["orderedAt"])
        by_itself = reference in used
        if by_itself or match is not None or entry.outcome is None:
            used.add(reference)
        yield by_itself, None if by_itself or match is None else str(match["ref"])


@dataclass
class _Update:
    """An insert or upsert that changes the stored order it matches, checked as a match is checked."""

    order: Order
    values: records.OrderValues
    sent: Mapping[str, Any] | None  # an upsert's value as sent: it changes only what it sends; an insert: None


def _update_of(entry: Entry, order: Order) -> _Update | ApiError:
    """What a record that matches `order` writes on it, or why it is refused. Matching changes what a record
    is checked against (an upsert's fields and items as a patch; a contact no longer required), so it is
    checked again, unless it is an insert that passed as a new order: then nothing differs."""
    patch = entry.envelope.mode == "upsert"
    if entry.parsed is not None and not patch:
        return _Update(order, entry.parsed, None)
    value = entry.envelope.value  # the line, read again
    try:
        values = records.parse_order(value, entry.envelope.mode, matched=True, key=entry.key)
    except ApiError as error:
        return error
    return _Update(order, values, value if patch else None)


def _together(
    conn: Connection,
    tenant: Tenant,
    now: datetime,
    entries: list[tuple[Entry, str | None]],
    stored: Mapping[str, list[Record]],
) -> list[tuple[int, Outcome]]:
    """New orders, changes to stored orders and deletes of them, decided in memory in file order, then
    written a table at a time."""
    if not entries:
        return []
    new = [entry.parsed for entry, match in entries if match is None and entry.outcome is None and entry.parsed]
    by_ref = {order["ref"]: cast(Order, order) for candidates in stored.values() for order in candidates}
    updates = {
        entry.number: _update_of(entry, by_ref[match])
        for entry, match in entries
        if match is not None and entry.changes is None
    }
    changing = [update for update in updates.values() if isinstance(update, _Update)]
    chunk = _Chunk(conn, tenant, now, new + [u.values for u in changing], [u.order for u in changing])
    outcomes = []
    for entry, match in entries:
        if entry.envelope.mode == DELETE and entry.outcome is None:
            assert entry.key is not None
            try:
                chunk.delete(records.delete_target(stored.get(entry.key["referenceId"], ()), entry.key))
            except ApiError as error:
                outcomes.append((entry.number, entry.envelope.failure(error)))
                continue
            chunk.register(entry.envelope)
            outcomes.append((entry.number, entry.envelope.outcome()))
            continue
        if match is not None:
            update = updates.get(entry.number)
            try:
                if isinstance(update, ApiError):
                    raise update
                if update is None:
                    assert entry.changes is not None
                    chunk.change(match, entry.changes)
                else:
                    chunk.update(update)
            except ApiError as error:
                outcomes.append((entry.number, entry.envelope.failure(error)))
                continue
            chunk.register(entry.envelope)
            outcomes.append((entry.number, entry.envelope.outcome()))
            continue
        if entry.outcome is not None:
            outcomes.append((entry.number, entry.outcome))
            continue
        assert entry.parsed is not None
        try:
            chunk.add(entry.parsed)
        except ApiError as error:
            outcomes.append((entry.number, entry.envelope.failure(error)))
            continue
        chunk.register(entry.envelope)
        outcomes.append((entry.number, entry.envelope.outcome()))
    chunk.write()
    return outcomes


@dataclass
class _Rows:
    orders: list[Order] = field(default_factory=list)
    items: list[OrderItem] = field(default_factory=list)
    extensions: list[Record] = field(default_factory=list)
    people: list[Person] = field(default_factory=list)
    consumer_items: list[tuple[str, list[str]]] = field(default_factory=list)
    registry: list[tuple[str, str]] = field(default_factory=list)
    changed_orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    deleted_orders: list[str] = field(default_factory=list)
    changed_items: dict[str, dict[str, Any]] = field(default_factory=dict)
    deleted_items: list[str] = field(default_factory=list)
    changed_extensions: dict[str, dict[str, Any]] = field(default_factory=dict)
    deleted_people: list[str] = field(default_factory=list)


class _Chunk:
    """The records of a run decided in memory, and their rows, written at the end."""

    def __init__(
        self, conn: Connection, tenant: Tenant, now: datetime, parsed: list[records.OrderValues], replaced: list[Order]
    ) -> None:
        """`parsed`: the run's new orders and replacements; `replaced`: the stored orders those replace, whose
        items, people and extensions are read here, once."""
        self.conn, self.tenant, self.now = conn, tenant, now
        refs = [order["ref"] for order in replaced]
        self.stored_items = order_store.items_of_orders(conn, tenant.id, refs)
        self.stored_people = people_store.of_orders(conn, tenant.id, refs)
        owners = refs + [item["ref"] for items in self.stored_items.values() for item in items]
        self.stored_extensions = {
            (group["ownerRef"], group["name"]): group for group in extension_store.of_owners(conn, tenant.id, owners)
        }
        persons = [p.contact for p in parsed if p.contact] + [c for p in parsed for c in p.consumers or ()]
        self.book = IdentityBook(conn, tenant, persons, now)
        wanted: dict[str, set[str]] = {"order": set(), "orderItem": set()}
        for values in parsed:
            wanted["order"].update(values.extension or ())
            wanted["orderItem"].update(key for _item, extension in values.items for key in extension or ())
        self.types = KeyTypes(conn, tenant, wanted)
        self.rows = _Rows()

    def add(self, values: records.OrderValues) -> None:
        """One record, decided as `records.order_record` decides a new order; nothing is kept if it fails."""
        order = orders.order_record(self.tenant, values.header, self.now)
        items = orders.item_records(self.tenant, order, [item for item, _extension in values.items], self.now)
        fresh: dict[str, dict[str, str]] = {}
        for _item, extension in values.items:
            if extension is not None and (clash := self.types.clash("orderItem", extension, fresh)):
                raise records.type_error("orderItem", clash)
        item_refs = {cast(str, item["referenceId"]): item["ref"] for item in items}  # a batch item has one
        chosen = self._consumed_and_typed(values, item_refs, fresh)
        self.rows.orders.append(order)
        self.rows.items += items
        for item, (_item, extension) in zip(items, values.items, strict=True):
            if extension is not None:
                self._extension(extensions.Owner("orderItem", item["ref"], "Order item"), extension)
        self._people(order, values, chosen)
        if values.extension is not None:
            self._extension(extensions.Owner("order", order["ref"], "Order"), values.extension)

    def update(self, update: _Update) -> None:
        """One record that changes the stored order it matches, decided as `records.order_record` decides
        it: the header set (an upsert: the fields it sends); items named by referenceId kept and rewritten
        (an insert: every field; an upsert: those sent), others added if complete, and an insert's unnamed
        ones dropped; the contact, consumers and extensions sent replacing the stored ones.
        Nothing is kept if it fails."""
        values, patch = update.values, update.sent is not None
        header = orders.header_changes(values.header, update.sent)
        order = cast(Order, {**update.order, **header})
        stored_items = self.stored_items[order["ref"]]
        stored = {item["referenceId"]: item for item in stored_items}
        fresh: dict[str, dict[str, str]] = {}
        kept: dict[str, dict[str, Any]] = {}
        added: list[OrderItem] = []
        item_refs: dict[str, str] = {}
        placed: list[str] = []  # the ref each item sent ends up with, in the order sent
        for position, (item_values, extension) in enumerate(values.items):
            previous = stored.get(item_values["referenceId"])
            item, changes = records.placed_item(
                self.tenant, order, position, item_values, previous, replace=not patch, now=self.now
            )
            if changes is None:
                added.append(item)
            else:
                kept[item["ref"]] = changes
            item_refs[item_values["referenceId"]] = item["ref"]
            placed.append(item["ref"])
            if extension is not None and (clash := self.types.clash("orderItem", extension, fresh)):
                raise records.type_error("orderItem", clash)
        # sending no items, an upsert leaves the order its stored ones; an insert leaves it none
        consumable = records.consumable_items(item_refs, stored_items if patch else [])
        chosen = self._consumed_and_typed(values, consumable, fresh)
        self.change(order["ref"], header)
        self.rows.items += added
        for ref, changes in kept.items():
            self.rows.changed_items[ref] = {**changes, "modifiedAt": self.now}
        if not patch:
            self.rows.deleted_items += records.dropped_items(stored_items, placed)
        for (_values, extension), ref in zip(values.items, placed, strict=True):
            if extension is not None:
                self._put_extension(extensions.Owner("orderItem", ref, "Order item"), extension)
        self._people(order, values, chosen)
        if values.extension is not None:
            self._put_extension(extensions.Owner("order", order["ref"], "Order"), values.extension)

    def _consumed_and_typed(
        self, values: records.OrderValues, item_refs: Mapping[str, str], fresh: dict[str, dict[str, str]]
    ) -> list[list[str]]:
        """The checks that follow a record's items: the items each consumer consumes, and the order
        extension's types. Passed, the types the record gives new keys are kept."""
        chosen = [
            records.consumed_items(index, consumer.get("itemReferences"), item_refs)
            for index, consumer in enumerate(values.consumers or ())
        ]
        if values.extension is not None and (clash := self.types.clash("order", values.extension, fresh)):
            raise records.type_error("order", clash)
        self.types.keep(fresh)
        return chosen

    def _put_extension(self, owner: extensions.Owner, pairs: Mapping[str, Any]) -> None:
        """The owner's `ext` group replaced by the pairs sent, or created."""
        current = self.stored_extensions.get((owner.ref, "ext"))
        if current is None:
            self.stored_extensions[(owner.ref, "ext")] = self._extension(owner, pairs)
        else:
            self.rows.changed_extensions[current["ref"]] = {"data": pairs, "modifiedAt": self.now}

    def _people(self, order: Order, values: records.OrderValues, chosen: list[list[str]]) -> None:
        """The contact and consumers a record sends, linked to their guests, taking the place of the ones
        stored for its order (a new order has none); what it does not send is kept."""
        people_of = self.stored_people.get(order["ref"], [])
        contact = next((p for p in people_of if p["role"] == identity.CONTACT), None)
        if values.contact is not None:
            guest_ref = records.contact_guest(self.book, values.contact, contact)
            if contact is not None:
                self.rows.deleted_people.append(contact["ref"])
            contact = people.person_record(
                self.tenant, order["ref"], identity.CONTACT, values.contact, guest_ref, self.now
            )
            self.rows.people.append(contact)
        if values.consumers is None:
            return
        previous = [p for p in people_of if p["role"] == identity.CONSUMER]
        self.rows.deleted_people += [p["ref"] for p in previous]
        for index, consumer in enumerate(values.consumers):
            fields = {name: value for name, value in consumer.items() if name != "itemReferences"}
            guest_ref = records.consumer_guest(self.book, fields, previous, contact)
            at = nth_instant(self.now, index)
            record = people.person_record(self.tenant, order["ref"], identity.CONSUMER, fields, guest_ref, at)
            self.rows.people.append(record)
            self.rows.consumer_items.append((record["ref"], chosen[index]))

    def _extension(self, owner: extensions.Owner, pairs: Mapping[str, Any]) -> Record:
        record = extensions.extension_record(self.tenant, owner, "ext", pairs, self.now)
        self.rows.extensions.append(record)
        return record

    def register(self, envelope: Envelope) -> None:
        self.rows.registry.append((envelope.ref, envelope.digest))

    def delete(self, order_ref: str) -> None:
        self.rows.deleted_orders.append(order_ref)

    def change(self, order_ref: str, changes: Mapping[str, Any]) -> None:
        """A stored order's header fields set, as `modify` sets them."""
        self.rows.changed_orders[order_ref] = {**changes, "modifiedAt": self.now}

    def write(self) -> None:
        conn, rows = self.conn, self.rows
        orders.delete_orders(conn, self.tenant, rows.deleted_orders)
        extension_store.delete_of_owners(conn, self.tenant.id, rows.deleted_items)
        ITEMS.delete_many(conn, self.tenant.id, rows.deleted_items)
        PEOPLE.delete_many(conn, self.tenant.id, rows.deleted_people)
        self.book.write(conn)
        self.types.write(conn)
        ORDERS.insert_many(conn, rows.orders)
        ORDERS.update_many(conn, self.tenant.id, rows.changed_orders)
        ITEMS.insert_many(conn, rows.items)
        ITEMS.update_many(conn, self.tenant.id, rows.changed_items)
        EXTENSIONS.insert_many(conn, rows.extensions)
        EXTENSIONS.update_many(conn, self.tenant.id, rows.changed_extensions)
        PEOPLE.insert_many(conn, rows.people)
        people_store.insert_consumer_items(conn, rows.consumer_items)
        batch_store.register_all(conn, self.tenant.id, rows.registry, self.now)
