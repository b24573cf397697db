"""Segment definitions (segments-exports.md §1): JSON in, a checked tree out, every error with its path.

The tree holds values already in the form they are compared in (strings lower-cased except `ref`,
numbers as Decimal, enum values in lower case), so the SQL compiler and the reference evaluator of the
tests agree on one meaning without repeating the rules.
"""

from __future__ import annotations

import contextlib
from decimal import Decimal
from typing import Any

import orjson

from opencdp.core.errors import ApiError
from opencdp.core.models import GUEST_TYPES
from opencdp.core.segments.catalogue import Catalogue
from opencdp.core.values import parse_timestamp
from opencdp.store.segment_tree import (
    EMPTINESS,
    NUMERIC,
    Attribute,
    DaysAgo,
    Definition,
    Entity,
    Group,
    Measure,
    Node,
    Not,
    Rule,
    Time,
    Type,
    Window,
)

MAX_BYTES = 64 * 1024
MAX_NODES = 200
MAX_DEPTH = 8
MAX_ERRORS = 20
MAX_IN = 1000
MAX_DAYS = 36500
KINDS = ("all", "any", "not", "attr", "entity")
ROLES = ("contact", "consumer", "any")
MEASURES = ("count", "countDistinct", "sum", "avg", "min", "max")
AGGREGATE_OPS = ("equals", "notEquals", "gt", "gte", "lt", "lte", "between")
ENTITY_KEYS = frozenset({"entity", "role", "where", "window", "measure", "op", "value"})

# What a `where` may hold, per entity: its attributes' entities and the entities nested inside it.
SCOPES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "guest": (("guest",), ("order", "orderItem", "session", "event")),
    "order": (("order",), ("orderItem",)),
    "orderItem": (("orderItem", "order"), ()),
    "session": (("session",), ("event",)),
    "event": (("event", "session"), ()),
}


class InvalidDefinition(ApiError):
    def __init__(self, errors: list[tuple[str, str]]) -> None:
        shown = [f"{path}: {reason}" for path, reason in errors[:MAX_ERRORS]]
        super().__init__(shown[0], "; ".join(shown))
        self.errors = errors


class _Stop(Exception):
    """Too many errors to go on: the first twenty are enough to fix."""


class _Parser:
    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self.errors: list[tuple[str, str]] = []
        self.nodes = 0

    def fail(self, path: str, reason: str) -> None:
        self.errors.append((path, reason))
        if len(self.errors) >= MAX_ERRORS:
            raise _Stop

    def definition(self, raw: Any, path: str) -> Definition | None:
        if not isinstance(raw, dict):
            self.fail(path, "must be an object")
            return None
        for key in raw:
            if key not in ("guestTypes", "match"):
                self.fail(path, f"unknown key '{key}'")
        guest_types = self.guest_types(raw.get("guestTypes", list(GUEST_TYPES)), f"{path}.guestTypes")
        match = self.node(raw["match"], f"{path}.match", "guest", 1) if "match" in raw else None
        return Definition(guest_types, match, raw)

    def guest_types(self, raw: Any, path: str) -> tuple[str, ...]:
        if not isinstance(raw, list) or not raw or not all(isinstance(v, str) for v in raw):
            self.fail(path, "must be a non-empty array of guest types")
            return GUEST_TYPES
        found = []
        for index, value in enumerate(raw):
            if value.lower() not in GUEST_TYPES:
                self.fail(f"{path}[{index}]", f"value must be one of {', '.join(GUEST_TYPES)}")
            elif value.lower() not in found:
                found.append(value.lower())
        return tuple(found)

    def node(self, raw: Any, path: str, scope: str, depth: int) -> Node | None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            self.fail(path, f"a definition may hold at most {MAX_NODES} nodes")
            raise _Stop
        if depth > MAX_DEPTH:
            self.fail(path, f"a definition may nest at most {MAX_DEPTH} levels")
            return None
        if not isinstance(raw, dict):
            self.fail(path, "must be an object")
            return None
        kinds = [kind for kind in KINDS if kind in raw]
        if len(kinds) != 1:
            self.fail(path, "expected exactly one of all, any, not, attr, entity")
            return None
        kind = kinds[0]
        allowed = {"attr": {"attr", "op", "value"}, "entity": ENTITY_KEYS}.get(kind, {kind})
        for key in raw:
            if key not in allowed:
                self.fail(path, f"unknown key '{key}'")
        if kind in ("all", "any"):
            return self.group(kind, raw[kind], f"{path}.{kind}", scope, depth)
        if kind == "not":
            child = self.node(raw["not"], f"{path}.not", scope, depth + 1)
            return Not(child) if child is not None else None
        if kind == "attr":
            return self.rule(raw, path, scope)
        return self.entity(raw, path, scope, depth)

    def group(self, kind: str, raw: Any, path: str, scope: str, depth: int) -> Node | None:
        if not isinstance(raw, list) or not 1 <= len(raw) <= 100:
            self.fail(path, "must be an array of 1..100 nodes")
            return None
        children = [self.node(child, f"{path}[{index}]", scope, depth + 1) for index, child in enumerate(raw)]
        kept = tuple(child for child in children if child is not None)
        return Group(kind, kept) if len(kept) == len(children) else None

    def attribute(self, raw: Any, path: str, scope: str) -> Attribute | None:
        if not isinstance(raw, str):
            self.fail(path, "must be a string")
            return None
        attr = self.catalogue.find(raw)
        if attr is None:
            self.fail(path, f"unknown attribute '{raw}'")
            return None
        if attr.entity not in SCOPES[scope][0]:
            self.fail(path, f"attribute '{raw}' is not available here")
            return None
        return attr

    def rule(self, raw: dict[str, Any], path: str, scope: str) -> Rule | None:
        attr = self.attribute(raw["attr"], f"{path}.attr", scope)
        op = raw.get("op")
        if attr is None:
            return None
        if not isinstance(op, str) or op not in attr.comparators:
            self.fail(f"{path}.op", f"comparator '{op}' is not valid for type {attr.type}")
            return None
        if op in EMPTINESS:
            if "value" in raw:
                self.fail(f"{path}.value", "value is not allowed")
                return None
            return Rule(attr, op)
        if "value" not in raw:
            self.fail(f"{path}.value", "value is required")
            return None
        value = self.rule_value(attr, op, raw["value"], f"{path}.value")
        return None if value is None else Rule(attr, op, value)

    def rule_value(self, attr: Attribute, op: str, raw: Any, path: str) -> Any:
        kind = attr.type
        if kind in (Type.STRING, Type.STRING_LIST, Type.ENUM):
            text = self.text_value(attr, op, raw, path)
            if text is None or kind is not Type.ENUM:
                return text
            choices = {choice.lower() for choice in attr.values}
            if any(value not in choices for value in (text if isinstance(text, tuple) else (text,))):
                self.fail(path, f"value must be one of {', '.join(attr.values)}")
                return None
            return text
        if kind in NUMERIC:
            return self.numbers(raw, path, op, whole=kind is Type.INTEGER)
        if kind is Type.BOOLEAN:
            if not isinstance(raw, bool):
                self.fail(path, "value must be a boolean")
                return None
            return raw
        return self.datetime_value(op, raw, path)

    def text_value(self, attr: Attribute, op: str, raw: Any, path: str) -> str | tuple[str, ...] | None:
        exact = attr.field == "ref" and attr.group is None

        def key(value: str) -> str:
            return value if exact else value.lower()

        if op in ("in", "notIn"):
            if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_IN or not all(isinstance(v, str) for v in raw):
                self.fail(path, f"value must be an array of 1..{MAX_IN} strings")
                return None
            return tuple(dict.fromkeys(key(value) for value in raw))
        if not isinstance(raw, str):
            self.fail(path, "value must be a string")
            return None
        return key(raw)

    def numbers(self, raw: Any, path: str, op: str, *, whole: bool) -> Any:
        def number(value: Any) -> Decimal | None:
            if isinstance(value, bool) or not isinstance(value, int | float):
                return None
            if whole and not float(value).is_integer():
                return None
            return Decimal(str(value))

        what = "a whole number" if whole else "a number"
        if op == "between":
            pair = [number(v) for v in raw] if isinstance(raw, list) and len(raw) == 2 else []
            if len(pair) != 2 or None in pair or pair[0] > pair[1]:  # type: ignore[operator]
                self.fail(path, "value must be [min, max] with min <= max")
                return None
            return (pair[0], pair[1])
        if op in ("in", "notIn"):
            found = [number(v) for v in raw] if isinstance(raw, list) and 1 <= len(raw) <= MAX_IN else [None]
            if None in found:
                self.fail(path, f"value must be an array of 1..{MAX_IN} numbers")
                return None
            return tuple(dict.fromkeys(found))
        parsed = number(raw)
        if parsed is None:
            self.fail(path, f"value must be {what}")
        return parsed

    def datetime_value(self, op: str, raw: Any, path: str) -> Any:
        if op in ("inLastDays", "notInLastDays"):
            return self.days(raw, path)
        if op == "between":
            pair = [self.time(v) for v in raw] if isinstance(raw, list) and len(raw) == 2 else []
            if len(pair) != 2 or None in pair:
                self.fail(path, "value must be [min, max] with min <= max")
                return None
            return (pair[0], pair[1])
        moment = self.time(raw)
        if moment is None:
            self.fail(path, "value must be a timestamp")
        return moment

    def days(self, raw: Any, path: str) -> int | None:
        if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= MAX_DAYS:
            self.fail(path, f"value must be a whole number of days, 1..{MAX_DAYS}")
            return None
        return raw

    @staticmethod
    def time(raw: Any) -> Time | None:
        if isinstance(raw, dict) and set(raw) == {"daysAgo"}:
            days = raw["daysAgo"]
            ok = isinstance(days, int) and not isinstance(days, bool) and 0 <= days <= MAX_DAYS
            return DaysAgo(days) if ok else None
        return parse_timestamp(raw, allow_date=True)

    def entity(self, raw: dict[str, Any], path: str, scope: str, depth: int) -> Entity | None:
        name = raw["entity"]
        if name not in ("order", "orderItem", "session", "event"):
            self.fail(f"{path}.entity", "value must be one of order, orderItem, session, event")
            return None
        if name not in SCOPES[scope][1]:
            self.fail(f"{path}.entity", f"'{name}' cannot be nested here")
            return None
        role = raw.get("role", "contact")
        if "role" in raw and name not in ("order", "orderItem"):
            self.fail(f"{path}.role", "role is only valid for order and orderItem")
        elif role not in ROLES:
            self.fail(f"{path}.role", "value must be one of contact, consumer, any")
        where = self.node(raw["where"], f"{path}.where", name, depth + 1) if "where" in raw else None
        window = self.window(raw["window"], f"{path}.window") if "window" in raw else None
        measure = self.measure(raw.get("measure", {"fn": "count"}), f"{path}.measure", name)
        op = raw.get("op", "gte")
        if op not in AGGREGATE_OPS:
            self.fail(f"{path}.op", f"value must be one of {', '.join(AGGREGATE_OPS)}")
            return None
        whole = measure is not None and measure.fn in ("count", "countDistinct")
        value = self.numbers(raw.get("value", 1), f"{path}.value", op, whole=whole)
        if None in (measure, value) or ("where" in raw and where is None) or ("window" in raw and window is None):
            return None
        return Entity(name, role, where, window, measure, op, value)  # type: ignore[arg-type]

    def window(self, raw: Any, path: str) -> Window | None:
        if isinstance(raw, dict) and set(raw) == {"lastDays"}:
            days = self.days(raw["lastDays"], f"{path}.lastDays")
            return None if days is None else Window(DaysAgo(days), None)
        if not isinstance(raw, dict) or not raw or not set(raw) <= {"from", "to"}:
            self.fail(path, "must be {lastDays} or {from, to}")
            return None
        bounds = {key: self.time(raw[key]) for key in raw}
        for key, moment in bounds.items():
            if moment is None:
                self.fail(f"{path}.{key}", "value must be a timestamp")
        if None in bounds.values():
            return None
        return Window(bounds.get("from"), bounds.get("to"))

    def measure(self, raw: Any, path: str, entity: str) -> Measure | None:
        if not isinstance(raw, dict) or raw.get("fn") not in MEASURES:
            self.fail(f"{path}.fn", f"value must be one of {', '.join(MEASURES)}")
            return None
        fn = raw["fn"]
        for key in raw:
            if key not in ("fn", "attr", "currency") or (fn == "count" and key != "fn"):
                self.fail(path, f"unknown key '{key}'")
                return None
        if fn == "count":
            return Measure()
        if "attr" not in raw:
            self.fail(f"{path}.attr", "value is required")
            return None
        attr = self.attribute(raw["attr"], f"{path}.attr", entity)
        if attr is None:
            return None
        if fn != "countDistinct" and attr.type not in NUMERIC:
            self.fail(f"{path}.attr", f"measure '{fn}' needs a numeric attribute")
            return None
        currency = raw.get("currency")
        if "currency" in raw and (attr.type is not Type.MONEY or fn == "countDistinct"):
            self.fail(f"{path}.currency", "currency is only valid for a money attribute")
            return None
        if currency is not None and (not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha()):
            self.fail(f"{path}.currency", "value must be a 3-letter currency code")
            return None
        return Measure(fn, attr, currency.upper() if currency else None)


def parse(raw: Any, catalogue: Catalogue, path: str = "definition") -> Definition:
    """The checked definition, or InvalidDefinition naming up to twenty errors by path."""
    if len(orjson.dumps(raw)) > MAX_BYTES:
        raise InvalidDefinition([(path, f"a definition may be at most {MAX_BYTES // 1024} KB")])
    parser = _Parser(catalogue)
    definition = None
    with contextlib.suppress(_Stop):
        definition = parser.definition(raw, path)
    if parser.errors or definition is None:
        raise InvalidDefinition(parser.errors or [(path, "must be an object")])
    return definition
