"""A checked segment definition, as the core hands it to the store to compile (store/segment_sql.py):
the tree of rules, groups and entity nodes, and the attributes it names with their types.

Only shapes live here, below the core and the store alike; what a definition may say, and every check of
it, is the core's (core/segments/definition.py, core/segments/catalogue.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Union


class Type(StrEnum):
    STRING = "string"
    STRING_LIST = "string list"
    ENUM = "enum"
    INTEGER = "integer"
    NUMBER = "number"
    MONEY = "money"
    BOOLEAN = "boolean"
    DATETIME = "datetime"


# The comparators each type takes; a negative one holds only for a value that is there and differs.
NUMERIC = (Type.INTEGER, Type.NUMBER, Type.MONEY)
NEGATIVE = ("notEquals", "notIn", "notContains")
EMPTINESS = ("isEmpty", "isNotEmpty")
_STRING_OPS = ("equals", "notEquals", "in", "notIn", "contains", "notContains", "startsWith", "endsWith")
COMPARATORS: dict[Type, tuple[str, ...]] = {
    Type.STRING: _STRING_OPS,
    Type.STRING_LIST: _STRING_OPS,
    Type.ENUM: ("equals", "notEquals", "in", "notIn"),
    **{
        kind: ("equals", "notEquals", "in", "notIn", "gt", "gte", "lt", "lte", "between")
        for kind in (Type.INTEGER, Type.NUMBER, Type.MONEY)
    },
    Type.BOOLEAN: ("equals",),
    Type.DATETIME: ("before", "after", "between", "inLastDays", "notInLastDays"),
}


@dataclass(frozen=True)
class Attribute:
    """One segmentable attribute: `entity.field`, an extension key (`group`) or an identifier provider."""

    name: str
    entity: str
    field: str
    type: Type
    values: tuple[str, ...] = ()
    group: str | None = None
    provider: str | None = None
    currency_field: str | None = None

    @property
    def comparators(self) -> tuple[str, ...]:
        return (*COMPARATORS[self.type], *EMPTINESS)


@dataclass(frozen=True)
class DaysAgo:
    days: int


Time = Union[datetime, DaysAgo]  # noqa: UP007 - a runtime alias, used in isinstance checks below


def resolve(moment: Time, as_of: datetime) -> datetime:
    return as_of - timedelta(days=moment.days) if isinstance(moment, DaysAgo) else moment


@dataclass(frozen=True)
class Rule:
    attr: Attribute
    op: str
    value: Any = None


@dataclass(frozen=True)
class Group:
    kind: str  # "all" or "any"
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    child: Node


@dataclass(frozen=True)
class Window:
    start: Time | None
    end: Time | None

    def bounds(self, as_of: datetime) -> tuple[datetime | None, datetime | None]:
        return (
            None if self.start is None else resolve(self.start, as_of),
            None if self.end is None else resolve(self.end, as_of),
        )


@dataclass(frozen=True)
class Measure:
    fn: str = "count"
    attr: Attribute | None = None
    currency: str | None = None


@dataclass(frozen=True)
class Entity:
    entity: str
    role: str
    where: Node | None
    window: Window | None
    measure: Measure
    op: str
    value: Any  # Decimal, or (Decimal, Decimal) for between

    @property
    def is_exists(self) -> bool:
        """The default form: at least one row. It compiles to EXISTS instead of a counting sub-query."""
        return self.measure.fn == "count" and self.op == "gte" and self.value == 1


Node = Union[Rule, Group, Not, Entity]  # noqa: UP007


@dataclass(frozen=True)
class Definition:
    guest_types: tuple[str, ...]
    match: Node | None
    source: dict[str, Any]
