"""A plain-Python evaluator of segment definitions, and a small generated data set to run it on.

It follows segments-exports.md §1.2-§1.4 literally, row by row, so the SQL compiler can be checked
against it (tests/test_segment_semantics.py).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from opencdp.core.stream.carts import empty_cart
from opencdp.core.values import format_timestamp
from opencdp.store.rows import insert_row
from opencdp.store.segment_sql import years_before
from opencdp.store.segment_tree import NEGATIVE, Attribute, Definition, Entity, Group, Node, Not, Rule, Type, resolve
from opencdp.store.tables import (
    browsers,
    events,
    extension_key_types,
    extensions,
    guests,
    order_items,
    order_people,
    orders,
    sessions,
)

AS_OF = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
# Open sessions of this data set must not be closed by the sweeps other tests run on the shared database.
NEVER_IDLE = datetime(2100, 1, 1, tzinfo=UTC)
WORDS = ("Ann", "ann", "ÄNNE", "Bob", "o'Brien", "50%_off", "Zoë", "")
COUNTRIES = ("IE", "GB", "DE", None)
CURRENCIES = ("EUR", "EUR", "GBP")
STATUSES = ("PURCHASED", "CANCELLED", "CONFIRMED")
TYPES = ("SHOES", "BAG", "FLIGHT")
PRODUCTS = ("M44124", "X1", "y-2")


@dataclass
class Data:
    guests: list[dict[str, Any]] = field(default_factory=list)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    people: list[dict[str, Any]] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)
    sessions: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    ext: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)


def _moment(rng: random.Random) -> datetime:
    return AS_OF - timedelta(days=rng.choice([0, 1, 3, 6, 8, 30, 89, 91, 200, 400]), hours=rng.randint(0, 20))


def generate(rng: random.Random, tenant_id: int, count: int = 14) -> Data:
    """Guests with a spread of values, empties and edge cases; orders, items, sessions, events, extensions."""
    data = Data()
    for n in range(count):
        ref = str(uuid.uuid4())
        guest = {
            "ref": ref,
            "tenantId": tenant_id,
            "guestType": rng.choice(["customer", "visitor", "traveller"]),
            "firstName": rng.choice(WORDS),
            "lastName": rng.choice([None, "Lee", "LEE", "Ó Sé"]),
            "country": rng.choice(COUNTRIES),
            "city": rng.choice([None, "", "Dublin", "dublin"]),
            "gender": rng.choice([None, "male", "female"]),
            "emails": rng.choice([None, [], [f"g{n}@example.com"], [f"G{n}@Example.com", "second@x.org"]]),
            "phoneNumbers": rng.choice([None, ["+353 1"], []]),
            "identifiers": rng.choice(
                [
                    None,
                    [{"provider": "CRM_ID", "id": f"C-{n}"}],
                    [{"provider": "CRM_ID", "id": f"c-{n}", "expiryDate": format_timestamp(AS_OF - timedelta(days=1))}],
                    [{"provider": "email", "id": f"g{n}@example.com"}],
                ]
            ),
            "dateOfBirth": rng.choice([None, AS_OF.replace(year=1990, hour=0), datetime(2000, 6, 2, tzinfo=UTC),
                                       datetime(2000, 6, 1, tzinfo=UTC)]),
            "firstSeen": _moment(rng),
            "lastSeen": _moment(rng),
            "mergedInto": None,
            "createdAt": _moment(rng),
            "modifiedAt": _moment(rng),
        }  # fmt: skip
        data.guests.append(guest)
        if rng.random() < 0.6:
            data.ext[(ref, rng.choice(["ext", "ext1"]))] = {
                "loyaltyTier": rng.choice(["gold", "Gold", "silver", ""]),
                "points": rng.choice([0, 5, 12.5, 100]),
                "vip": rng.choice([True, False]),
            }
    if data.guests:
        data.guests[-1]["mergedInto"] = data.guests[0]["ref"]
    for guest in data.guests:
        for _ in range(rng.choice([0, 1, 1, 2, 3])):
            _order(rng, data, tenant_id, guest["ref"])
        for _ in range(rng.choice([0, 1, 2])):
            _session(rng, data, tenant_id, guest["ref"])
    return data


def _order(rng: random.Random, data: Data, tenant_id: int, guest_ref: str) -> None:
    ref = str(uuid.uuid4())
    at = _moment(rng)
    order = {
        "ref": ref, "tenantId": tenant_id, "referenceId": rng.choice(["A-1", "b-2", f"R-{ref[:4]}"]),
        "orderedAt": at, "currencyCode": rng.choice(CURRENCIES), "price": Decimal(rng.choice(["10", "99.5", "120"])),
        "status": rng.choice(STATUSES), "channel": rng.choice(["WEB", "CALL_CENTER"]),
        "pointOfSale": rng.choice([None, "shop.ie"]), "createdAt": at, "modifiedAt": at,
    }  # fmt: skip
    data.orders[ref] = order
    data.people.append({"orderRef": ref, "role": "contact", "guestRef": guest_ref})
    if rng.random() < 0.3:
        other = rng.choice(data.guests)["ref"]
        data.people.append({"orderRef": ref, "role": "consumer", "guestRef": other})
    if rng.random() < 0.5:
        data.ext[(ref, "ext")] = {
            "giftWrap": rng.choice([True, False]),
            "storeLocation": rng.choice(["London", "Cork"]),
        }
    for _ in range(rng.choice([0, 1, 2, 3])):
        item_ref = str(uuid.uuid4())
        data.items.append({
            "ref": item_ref, "tenantId": tenant_id, "orderRef": ref, "type": rng.choice(TYPES), "name": "Thing",
            "price": Decimal(rng.choice(["5", "100", "150.25"])), "currencyCode": rng.choice(CURRENCIES),
            "productId": rng.choice(PRODUCTS), "quantity": rng.choice([None, 1, 2, 3]),
            "orderedAt": rng.choice([None, _moment(rng)]), "createdAt": at, "modifiedAt": at,
        })  # fmt: skip
        if rng.random() < 0.3:
            data.ext[(item_ref, "ext")] = {"size": rng.choice(["42", "M"])}


def _session(rng: random.Random, data: Data, tenant_id: int, guest_ref: str) -> None:
    ref = str(uuid.uuid4())
    start = _moment(rng)
    cart_type = rng.choice([None, "ABANDONED", "CONVERTED", "BROWSED"])
    session = {
        "ref": ref, "tenantId": tenant_id, "guestRef": guest_ref, "browserRef": None,
        "channel": rng.choice(["WEB", "MOBILE_APP"]), "pointOfSale": "shop.ie",
        "status": "OPEN" if cart_type is None else "CLOSED", "startedAt": start, "lastEventAt": start if cart_type else NEVER_IDLE,
        "closedAt": None if cart_type is None else start, "closeReason": None if cart_type is None else "TIMEOUT",
        "cartType": cart_type, "abandonedRevenue": Decimal("80") if cart_type == "ABANDONED" else None,
        "abandonedCurrency": "EUR" if cart_type == "ABANDONED" else None, "eventCount": 0, "cart": empty_cart(),
    }  # fmt: skip
    data.sessions.append(session)
    for _ in range(rng.choice([0, 1, 3])):
        data.events.append({
            "ref": str(uuid.uuid4()), "tenantId": tenant_id, "guestRef": guest_ref, "sessionRef": ref,
            "type": rng.choice(["VIEW", "ADD", "IDENTITY"]), "channel": session["channel"], "pointOfSale": "shop.ie",
            "posUnknown": False, "page": rng.choice(["home", "/checkout"]), "language": rng.choice([None, "EN"]),
            "currency": None, "createdAt": start + timedelta(minutes=rng.randint(0, 30)), "data": {},
        })  # fmt: skip


def store(conn: Any, data: Data, tenant_id: int) -> None:
    for guest in data.guests:
        insert_row(conn, guests, guest)
    for order in data.orders.values():
        insert_row(conn, orders, order)
    for n, person in enumerate(data.people):
        insert_row(conn, order_people, {**person, "ref": str(uuid.uuid4()), "tenantId": tenant_id,
                                        "createdAt": AS_OF, "modifiedAt": AS_OF, "firstName": f"p{n}"})  # fmt: skip
    for item in data.items:
        insert_row(conn, order_items, item)
    for session in data.sessions:
        browser = str(uuid.uuid4())
        insert_row(conn, browsers, {"ref": browser, "tenantId": tenant_id, "guestRef": session["guestRef"],
                                    "createdAt": AS_OF})  # fmt: skip
        session["browserRef"] = browser
        insert_row(conn, sessions, session)
    by_session = {s["ref"]: s for s in data.sessions}
    for event in data.events:
        insert_row(conn, events, {**event, "browserRef": by_session[event["sessionRef"]]["browserRef"]})
    kinds = {"guest": {}, "order": {}, "orderItem": {}}
    for (owner, name), values in data.ext.items():
        kind = (
            "guest" if any(g["ref"] == owner for g in data.guests) else "order" if owner in data.orders else "orderItem"
        )
        insert_row(conn, extensions, {"ref": str(uuid.uuid4()), "tenantId": tenant_id, "ownerType": kind,
                                      "ownerRef": owner, "name": name, "data": values, "createdAt": AS_OF,
                                      "modifiedAt": AS_OF})  # fmt: skip
        for key, value in values.items():
            kinds[kind][key] = (
                "boolean" if isinstance(value, bool) else "string" if isinstance(value, str) else "number"
            )
    for kind, keys in kinds.items():
        for key, value_type in keys.items():
            insert_row(conn, extension_key_types, {"tenantId": tenant_id, "ownerType": kind, "key": key,
                                                   "valueType": value_type})  # fmt: skip


# --- the evaluator -------------------------------------------------------------------------------------


class Reference:
    def __init__(self, data: Data, currency: str = "EUR", as_of: datetime = AS_OF) -> None:
        self.data = data
        self.currency = currency
        self.as_of = as_of

    def members(self, definition: Definition) -> set[str]:
        return {
            g["ref"]
            for g in self.data.guests
            if g["mergedInto"] is None
            and g["guestType"] in definition.guest_types
            and (definition.match is None or self.node(definition.match, {"guest": g}))
        }

    def node(self, node: Node, scope: dict[str, dict[str, Any]]) -> bool:
        if isinstance(node, Group):
            results = [self.node(child, scope) for child in node.children]
            return all(results) if node.kind == "all" else any(results)
        if isinstance(node, Not):
            return not self.node(node.child, scope)
        if isinstance(node, Rule):
            return self.rule(node, scope)
        return self.entity(node, scope)

    def values(self, attr: Attribute, scope: dict[str, dict[str, Any]]) -> list[Any]:
        row = scope[attr.entity]
        if attr.group is not None:
            found = self.data.ext.get((row["ref"], attr.group), {})
            return [found.get(attr.field)]
        if attr.provider is not None:
            stamp = format_timestamp(self.as_of)
            return [
                i["id"]
                for i in row.get("identifiers") or []
                if i["provider"] == attr.provider and (i.get("expiryDate") is None or i["expiryDate"] > stamp)
            ]
        if attr.entity == "guest" and attr.field == "email":
            return list(row.get("emails") or [])
        if attr.type is Type.STRING_LIST:
            return list(row.get(attr.field) or [])
        if (attr.entity, attr.field) == ("orderItem", "orderedAt"):
            return [row.get("orderedAt") or scope["order"]["orderedAt"]]
        if (attr.entity, attr.field) == ("order", "itemCount"):
            return [sum(1 for i in self.data.items if i["orderRef"] == row["ref"])]
        return [row.get(attr.field)]

    @staticmethod
    def present(value: Any) -> bool:
        return value is not None and value != ""

    def rule(self, rule: Rule, scope: dict[str, dict[str, Any]]) -> bool:
        attr = rule.attr
        if attr.entity == "guest" and attr.field == "age":
            return self.age(rule, scope["guest"].get("dateOfBirth"))
        values = [v for v in self.values(attr, scope) if self.present(v)]
        if rule.op == "isEmpty":
            return not values
        if rule.op == "isNotEmpty":
            return bool(values)
        if rule.op in NEGATIVE:
            positive = {"notEquals": "equals", "notIn": "in", "notContains": "contains"}[rule.op]
            return bool(values) and not any(self.compare(attr, positive, rule.value, v) for v in values)
        return any(self.compare(attr, rule.op, rule.value, v) for v in values)

    def compare(self, attr: Attribute, op: str, wanted: Any, value: Any) -> bool:
        if attr.type in (Type.STRING, Type.STRING_LIST, Type.ENUM):
            text = value if attr.field == "ref" and attr.group is None else value.lower()
            return {
                "equals": lambda: text == wanted,
                "in": lambda: text in wanted,
                "contains": lambda: wanted in text,
                "startsWith": lambda: text.startswith(wanted),
                "endsWith": lambda: text.endswith(wanted),
            }[op]()
        if attr.type is Type.BOOLEAN:
            return value == wanted
        if attr.type is Type.DATETIME:
            if op == "before":
                return value < resolve(wanted, self.as_of)
            if op == "after":
                return value > resolve(wanted, self.as_of)
            if op == "between":
                return resolve(wanted[0], self.as_of) <= value <= resolve(wanted[1], self.as_of)
            since = self.as_of - timedelta(days=wanted)
            return since <= value <= self.as_of if op == "inLastDays" else value < since
        return number_test(op, wanted, Decimal(str(value)))

    def age(self, rule: Rule, born: datetime | None) -> bool:
        if born is None:
            return rule.op == "isEmpty"
        if rule.op in ("isEmpty", "isNotEmpty"):
            return rule.op == "isNotEmpty"
        years = next(n for n in range(-1, 200) if born > years_before(self.as_of, n + 1))
        if rule.op in NEGATIVE:
            return not number_test({"notEquals": "equals", "notIn": "in"}[rule.op], rule.value, Decimal(years))
        return number_test(rule.op, rule.value, Decimal(years))

    def entity(self, node: Entity, scope: dict[str, dict[str, Any]]) -> bool:
        rows = [inner for inner, moment in self.rows(node, scope) if self.in_window(node, moment)]
        rows = [inner for inner in rows if node.where is None or self.node(node.where, inner)]
        measure = node.measure
        if measure.attr is not None and measure.attr.currency_field and measure.fn != "countDistinct":
            wanted = measure.currency or self.currency
            rows = [r for r in rows if r[measure.attr.entity].get(measure.attr.currency_field) == wanted]
        if measure.fn == "count":
            result: Decimal | None = Decimal(len(rows))
        else:
            assert measure.attr is not None
            found = [v for r in rows for v in self.values(measure.attr, r)[:1] if self.present(v)]
            if measure.fn == "countDistinct":
                text = measure.attr.type in (Type.STRING, Type.ENUM) and measure.attr.field != "ref"
                result = Decimal(len({v.lower() if text else v for v in found}))
            else:
                numbers = [Decimal(str(v)) for v in found]
                result = {
                    "sum": lambda: sum(numbers, Decimal(0)),
                    "avg": lambda: sum(numbers, Decimal(0)) / len(numbers) if numbers else None,
                    "min": lambda: min(numbers) if numbers else None,
                    "max": lambda: max(numbers) if numbers else None,
                }[measure.fn]()
        return result is not None and number_test(node.op, node.value, result)

    def in_window(self, node: Entity, moment: datetime) -> bool:
        if node.window is None:
            return True
        start, end = node.window.bounds(self.as_of)
        return (start is None or moment >= start) and (end is None or moment <= end)

    def rows(self, node: Entity, scope: dict[str, dict[str, Any]]) -> list[tuple[dict[str, Any], datetime]]:
        data = self.data
        if node.entity in ("order", "orderItem") and "order" not in scope:
            roles = ("contact", "consumer") if node.role == "any" else (node.role,)
            refs = {p["orderRef"] for p in data.people if p["guestRef"] == scope["guest"]["ref"] and p["role"] in roles}
            held = [data.orders[ref] for ref in refs]
            if node.entity == "order":
                return [({"order": o}, o["orderedAt"]) for o in held]
            return [
                ({"order": o, "orderItem": i}, i.get("orderedAt") or o["orderedAt"])
                for o in held
                for i in data.items
                if i["orderRef"] == o["ref"]
            ]
        if node.entity == "orderItem":
            o = scope["order"]
            return [
                ({"order": o, "orderItem": i}, i.get("orderedAt") or o["orderedAt"])
                for i in data.items
                if i["orderRef"] == o["ref"]
            ]
        if node.entity == "session":
            return [({"session": s}, s["startedAt"]) for s in data.sessions if s["guestRef"] == scope["guest"]["ref"]]
        by_ref = {s["ref"]: s for s in data.sessions}
        if "session" in scope:
            chosen = [e for e in data.events if e["sessionRef"] == scope["session"]["ref"]]
        else:
            chosen = [e for e in data.events if e["guestRef"] == scope["guest"]["ref"]]
        return [({"event": e, "session": by_ref[e["sessionRef"]]}, e["createdAt"]) for e in chosen]


def number_test(op: str, wanted: Any, value: Decimal) -> bool:
    if op == "between":
        return wanted[0] <= value <= wanted[1]
    if op == "in":
        return value in wanted
    return {
        "equals": value == wanted,
        "notEquals": value != wanted,
        "gt": value > wanted,
        "gte": value >= wanted,
        "lt": value < wanted,
        "lte": value <= wanted,
    }[op]
