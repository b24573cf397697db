"""Declarative field tables for every REST model and the one validator that reads them.

The spec fixes the order of checks (unknown attributes, then each field in table order) and the exact
words of each failure; a table per model keeps that order visible and lets the OpenAPI schema be
generated from the same source.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from functools import cached_property
from typing import Any
from uuid import UUID

from opencdp.core import values
from opencdp.core.errors import InvalidField, MissingField, UnsupportedField

IDENTITY_FIELDS = frozenset({"ref", "href", "createdAt", "modifiedAt"})

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
MAX_INTEGER = 2**31 - 1


class Mode(Enum):
    CREATE = "create"
    PUT = "put"
    PATCH = "patch"


class Kind(Enum):
    STRING = "string"
    NAME = "name"  # 1..128 characters
    TIMESTAMP = "timestamp"
    DATE = "date"  # timestamp or YYYY-MM-DD
    PAST_DATE = "past_date"
    MONEY = "money"
    QUANTITY = "quantity"
    ENUM = "enum"
    CURRENCY = "currency"
    COUNTRY = "country"
    LANGUAGE = "language"
    EMAILS = "emails"
    STRINGS = "strings"
    IDENTIFIERS = "identifiers"
    ITEM_TYPE = "item_type"
    ITEM_LINKS = "item_links"
    EMPTY_LIST = "empty_list"


@dataclass(frozen=True)
class Field:
    name: str
    kind: Kind
    required: bool = False
    choices: tuple[str, ...] = ()
    aliases: Mapping[str, str] = field(default_factory=dict)
    max_length: int | None = None

    @property
    def column(self) -> str:
        return re.sub(r"(?<!^)(?=[A-Z])", "_", self.name).lower()


@dataclass(frozen=True)
class Model:
    name: str
    fields: tuple[Field, ...]
    links: frozenset[str] = frozenset()

    def field(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)

    @property
    def ignored(self) -> frozenset[str]:
        """Read-only attributes a client may send back unchanged, so a GET body works as a PUT body."""
        return IDENTITY_FIELDS | self.links

    @cached_property
    def accepted(self) -> frozenset[str]:
        return frozenset(f.name for f in self.fields) | self.ignored

    @cached_property
    def checks(self) -> tuple[tuple[Field, Callable[[Field, Any, str], Any]], ...]:
        """Each field with its parser, looked up once: validation runs per record of a batch."""
        return tuple((f, _PARSERS[f.kind]) for f in self.fields)


def validate(model: Model, body: Mapping[str, Any], mode: Mode) -> dict[str, Any]:
    """Check a request body against a model and return its parsed values by field name.

    CREATE and PUT return every field (None for absent optional ones, so PUT clears them); PATCH returns
    only the fields sent, None meaning "clear".
    """
    accepted = model.accepted
    for key in body:
        if key not in accepted:
            raise UnsupportedField(key)
    parsed: dict[str, Any] = {}
    patch = mode is Mode.PATCH
    for spec, parse in model.checks:
        name = spec.name
        if patch and name not in body:
            continue
        value = body.get(name)
        if value is None or (spec.required and value == ""):
            if spec.required:
                raise MissingField(name)
            parsed[name] = None
            continue
        parsed[name] = parse(spec, value, name)
    return parsed


def parse_value(spec: Field, value: Any, path: str) -> Any:
    return _PARSERS[spec.kind](spec, value, path)


def _string(spec: Field, value: Any, path: str) -> str:
    if not isinstance(value, str) or "\x00" in value:
        raise InvalidField(path)
    if spec.max_length is not None and len(value) > spec.max_length:
        raise InvalidField(path, f"length must be at most {spec.max_length}")
    return value


def _name(spec: Field, value: Any, path: str) -> str:
    text = _string(spec, value, path)
    if not 1 <= len(text) <= 128:
        raise InvalidField(path, "length must be between 1 and 128")
    return text


TIMESTAMP_FORMAT = "not a valid value: expected an ISO 8601 date and time such as 2025-03-07T16:15:11Z"


def _timestamp(spec: Field, value: Any, path: str) -> datetime:
    dates = spec.kind in (Kind.DATE, Kind.PAST_DATE)
    parsed = values.parse_timestamp(value, allow_date=dates)
    if parsed is None:
        raise InvalidField(path, TIMESTAMP_FORMAT + (" or a date such as 2025-03-07" if dates else ""))
    if spec.kind is Kind.PAST_DATE and parsed >= datetime.now(UTC):
        raise InvalidField(path, "must be in the past")
    return parsed


def _money(spec: Field, value: Any, path: str) -> Decimal:
    return money(value, path)


def money(value: Any, path: str) -> Decimal:
    """A price: a JSON number, exact, and in the range every surface can store and render."""
    number = values.parse_money(value)
    if number is None:
        raise InvalidField(path, "must be a number")
    if not values.money_in_range(number):
        raise InvalidField(path, values.MONEY_RANGE)
    return number


def _quantity(spec: Field, value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise InvalidField(path)
    if value < 0:
        raise InvalidField(path, "must be greater than or equal to 0")
    if value > MAX_INTEGER:
        raise InvalidField(path, f"must be at most {MAX_INTEGER}")
    return int(value)


def _enum(spec: Field, value: Any, path: str) -> str:
    if isinstance(value, str):
        wanted = value.strip().upper()
        wanted = spec.aliases.get(wanted, wanted)
        for choice in spec.choices:
            if choice.upper() == wanted:
                return choice
    raise InvalidField(path)


def _code(length: int) -> Callable[[Field, Any, str], str]:
    def parse(spec: Field, value: Any, path: str) -> str:
        parsed = values.code(value, length)
        if parsed is None:
            raise InvalidField(path)
        return parsed

    return parse


def _emails(spec: Field, value: Any, path: str) -> list[str]:
    addresses = _strings(spec, value, path)
    for index, address in enumerate(addresses):
        if not _EMAIL.match(address):
            raise InvalidField(f"{path}[{index}]")
    return addresses


def _strings(spec: Field, value: Any, path: str) -> list[str]:
    if not isinstance(value, list):
        raise InvalidField(path)
    for index, item in enumerate(value):
        if not isinstance(item, str) or "\x00" in item:
            raise InvalidField(f"{path}[{index}]")
    return list(value)


_IDENTIFIER_KEYS = ("provider", "id", "expiryDate")


def _identifiers(spec: Field, value: Any, path: str) -> list[dict[str, str]]:
    """Identifiers keep their expiry as an ISO string: they are stored and shown as JSON."""
    if not isinstance(value, list):
        raise InvalidField(path)
    result: list[dict[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for index, item in enumerate(value):
        where = f"{path}[{index}]"
        if not isinstance(item, dict):
            raise InvalidField(where)
        for key in item:
            if key not in _IDENTIFIER_KEYS:
                raise UnsupportedField(f"{where}.{key}")
        identifier: dict[str, str] = {}
        for key in ("provider", "id"):
            part = item.get(key)
            if part is None or part == "":
                raise MissingField(f"{where}.{key}")
            if not isinstance(part, str) or "\x00" in part:
                raise InvalidField(f"{where}.{key}")
            identifier[key] = part
        if item.get("expiryDate") is not None:
            expiry = values.parse_timestamp(item["expiryDate"], allow_date=True)
            if expiry is None:
                raise InvalidField(f"{where}.expiryDate")
            identifier["expiryDate"] = values.format_timestamp(expiry)
        pair = (identifier["provider"], identifier["id"])
        if pair not in seen:
            seen.add(pair)
            result.append(identifier)
    return result


RESERVED_ITEM_TYPES = frozenset(
    {"FLIGHT", "HOTEL", "MORTGAGE", "MORTGAGE_APPLICATION", "LOAN_APPLICATION", "PERSONAL_LOAN", "RAIL"}
)


def _item_type(spec: Field, value: Any, path: str) -> str:
    text = _string(spec, value, path)
    if text.strip().upper() in RESERVED_ITEM_TYPES:
        raise InvalidField(path, "reserved value")
    return text


def _item_links(spec: Field, value: Any, path: str) -> list[str] | None:
    """A consumer's writable item list; a bare link without `items` means "leave as is" (None)."""
    if not isinstance(value, dict):
        raise InvalidField(path)
    if "items" not in value:
        return None
    if not isinstance(value["items"], list):
        raise InvalidField(f"{path}.items")
    refs: list[str] = []
    for index, item in enumerate(value["items"]):
        ref = _ref_of_link(item)
        if ref is None:
            raise InvalidField(f"{path}.items[{index}]")
        if ref not in refs:
            refs.append(ref)
    return refs


def _ref_of_link(item: Any) -> str | None:
    if not isinstance(item, dict):
        return None
    raw = item.get("ref")
    if raw is None and isinstance(item.get("href"), str):
        raw = item["href"].rstrip("/").rsplit("/", 1)[-1]
    return parse_ref(raw)


def parse_ref(raw: Any) -> str | None:
    """A ref as the lowercase UUID it names, or None: path refs match case-insensitively."""
    if not isinstance(raw, str) or len(raw) != 36:
        return None
    try:
        return str(UUID(raw))
    except ValueError:
        return None


def _empty_list(spec: Field, value: Any, path: str) -> list[Any]:
    if value != []:
        raise InvalidField(path, "only an empty list is accepted")
    return []


_PARSERS: dict[Kind, Callable[[Field, Any, str], Any]] = {
    Kind.STRING: _string,
    Kind.NAME: _name,
    Kind.TIMESTAMP: _timestamp,
    Kind.DATE: _timestamp,
    Kind.PAST_DATE: _timestamp,
    Kind.MONEY: _money,
    Kind.QUANTITY: _quantity,
    Kind.ENUM: _enum,
    Kind.CURRENCY: _code(3),
    Kind.COUNTRY: _code(2),
    Kind.LANGUAGE: _code(2),
    Kind.EMAILS: _emails,
    Kind.STRINGS: _strings,
    Kind.IDENTIFIERS: _identifiers,
    Kind.ITEM_TYPE: _item_type,
    Kind.ITEM_LINKS: _item_links,
    Kind.EMPTY_LIST: _empty_list,
}
