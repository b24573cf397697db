"""Segment definitions compiled to one SQL query (segments-exports.md §1.7), alike on SQLite and PostgreSQL.

Each attribute and comparator maps to a fragment written here; every value of a definition (strings,
numbers, times, lists, extension keys, providers) is a bound parameter. Entity nodes become correlated
EXISTS or aggregate sub-queries. Every node is two-valued: a value that is absent matches only
`isEmpty`, so NOT never meets SQL's unknown.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Float,
    FromClause,
    Numeric,
    Select,
    String,
    and_,
    bindparam,
    case,
    cast,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement

from opencdp.store.rows import to_column
from opencdp.store.segment_tree import NEGATIVE, Attribute, Definition, Entity, Group, Node, Not, Rule, Type, resolve
from opencdp.store.tables import REF, events, extensions, guests, order_items, order_people, orders, sessions
from opencdp.store.types import UTCDateTime

Predicate = Callable[[ColumnElement[Any]], ColumnElement[bool]]
ROLES = {"contact": ("contact",), "consumer": ("consumer",), "any": ("contact", "consumer")}
LIST_COLUMNS = {("guest", "email"): "emails"}  # list attributes named unlike their column


def years_before(moment: datetime, years: int) -> datetime:
    """The same instant `years` calendar years earlier (29 February becomes the 28th); clamped to the calendar."""
    year = moment.year - years
    if year < 1:
        return datetime(1, 1, 1, tzinfo=UTC)
    if year > 9999:
        return datetime(9999, 12, 31, tzinfo=UTC)
    day = 28 if (moment.month, moment.day) == (2, 29) else moment.day
    return moment.replace(year=year, day=day)


@dataclass(frozen=True)
class Values:
    """Where a rule's values come from: one column expression, or rows of a correlated sub-select."""

    value: ColumnElement[Any]
    text: bool
    rows: Select[Any] | None = None  # set when the attribute may hold several values


class Compiler:
    def __init__(self, dialect: str, tenant_id: int, as_of: datetime, currency: str, as_of_text: str) -> None:
        """`as_of_text`: the evaluation time in the form the core stores identifiers' expiry dates in, as
        text inside the guest's JSON, so that the two compare as the core means them to."""
        self.postgres = dialect == "postgresql"
        self.tenant_id = tenant_id
        self.as_of = as_of
        self.currency = currency
        self.as_of_text = as_of_text

    # --- the query -----------------------------------------------------------------------------------

    def members(self, definition: Definition, columns: Sequence[ColumnElement[Any]] = ()) -> Select[Any]:
        """SELECT the ref (and any other columns) of every guest the definition holds."""
        g = guests.alias("g")
        condition = and_(
            g.c.tenant_id == self.tenant_id,
            g.c.merged_into.is_(None),
            g.c.guest_type.in_(list(definition.guest_types)),
        )
        if definition.match is not None:
            condition = and_(condition, self.node(definition.match, {"guest": g}))
        return select(g.c.ref, *columns).where(condition)

    def node(self, node: Node, scope: dict[str, FromClause]) -> ColumnElement[bool]:
        if isinstance(node, Group):
            parts = [self.node(child, scope) for child in node.children]
            return and_(*parts) if node.kind == "all" else or_(*parts)
        if isinstance(node, Not):
            return not_(self.node(node.child, scope))
        if isinstance(node, Rule):
            return self.rule(node, scope)
        return self.entity(node, scope)

    def distribution(self, attr: Attribute, limit: int = 20) -> Select[Any]:
        """The most common values of an attribute, each with the number of guests that have it."""
        g = guests.alias("g")
        if attr.entity == "guest":
            frm: FromClause = g
            scope: dict[str, FromClause] = {"guest": g}
            who: ColumnElement[Any] = g.c.ref
        else:
            frm, scope, who = self._holders(attr.entity, g)
        source = self.values(attr, scope)
        value = source.value
        if source.rows is not None and attr.group is None:
            frm = source.rows.get_final_froms()[0]
            frm = g.join(frm, true()) if attr.entity == "guest" else frm
        elif source.rows is not None:
            value = self.scalar(attr, scope)
        if attr.type in (Type.STRING, Type.STRING_LIST, Type.ENUM) and not (attr.field == "ref" and attr.group is None):
            value = self.lower(value)
        conditions = [g.c.tenant_id == self.tenant_id, g.c.merged_into.is_(None), value.is_not(None)]
        if attr.provider is not None and source.rows is not None:
            conditions.append(source.rows.whereclause)  # type: ignore[arg-type]
        counted = func.count(who.distinct()).label("guests")
        stmt = select(value.label("value"), counted).select_from(frm).where(*conditions)
        return stmt.group_by(value).order_by(counted.desc(), value).limit(limit)

    def _holders(self, entity: str, g: FromClause) -> tuple[FromClause, dict[str, FromClause], ColumnElement[Any]]:
        """Rows of an entity joined to the live guest they belong to (orders: as contact)."""
        if entity in ("order", "orderItem"):
            person, o = order_people.alias(), orders.alias()
            frm = g.join(person, and_(person.c.guest_ref == g.c.ref, person.c.role == "contact"))
            frm = frm.join(o, o.c.ref == person.c.order_ref)
            if entity == "order":
                return frm, {"order": o}, g.c.ref
            i = order_items.alias()
            return frm.join(i, i.c.order_ref == o.c.ref), {"order": o, "orderItem": i}, g.c.ref
        s = sessions.alias()
        frm = g.join(s, s.c.guest_ref == g.c.ref)
        if entity == "session":
            return frm, {"session": s}, g.c.ref
        e = events.alias()
        return frm.join(e, e.c.session_ref == s.c.ref), {"session": s, "event": e}, g.c.ref

    # --- rules ---------------------------------------------------------------------------------------

    def rule(self, rule: Rule, scope: dict[str, FromClause]) -> ColumnElement[bool]:
        attr = rule.attr
        if attr.entity == "guest" and attr.field == "age":
            return self._age(rule, scope["guest"])
        source = self.values(attr, scope)
        if rule.op == "isEmpty":
            return not_(self._some(source, None))
        if rule.op == "isNotEmpty":
            return self._some(source, None)
        if rule.op in NEGATIVE:
            positive = {"notEquals": "equals", "notIn": "in", "notContains": "contains"}[rule.op]
            test = self.comparison(attr, positive, rule.value)
            return and_(self._some(source, None), not_(self._some(source, test)))
        return self._some(source, self.comparison(attr, rule.op, rule.value))

    def _some(self, source: Values, test: Predicate | None) -> ColumnElement[bool]:
        """Some present value passes the test (with no test: some value is present)."""
        value = source.value
        present = and_(value.is_not(None), value != "") if source.text else value.is_not(None)
        condition = present if test is None else and_(present, test(value))
        if source.rows is None:
            return condition
        return exists(source.rows.where(condition))

    def comparison(self, attr: Attribute, op: str, value: Any) -> Predicate:
        kind = attr.type
        if kind is Type.ENUM:
            # stored enum values are canonical, so they compare exactly (and an index can serve them)
            canonical = {choice.lower(): choice for choice in attr.values}
            if op == "equals":
                return lambda v: v == bindparam(None, canonical[value], String())
            return lambda v: v.in_([canonical[one] for one in value])
        if kind in (Type.STRING, Type.STRING_LIST):
            exact = attr.field == "ref" and attr.group is None
            return self._text(op, value, exact)
        if kind is Type.BOOLEAN:
            return lambda v: v == self._boolean(value)
        if kind is Type.DATETIME:
            return self._moment(op, value)
        return self._number(op, value)

    def _text(self, op: str, value: Any, exact: bool) -> Predicate:
        def key(v: ColumnElement[Any]) -> ColumnElement[Any]:
            return v if exact else self.lower(v)

        if op == "equals":
            return lambda v: key(v) == bindparam(None, value, String())
        if op == "in":
            return lambda v: key(v).in_(list(value))
        needle = bindparam(None, value, String())
        if op == "contains":
            position = func.strpos if self.postgres else func.instr
            return lambda v: position(key(v), needle) > 0
        if op == "startsWith":
            return lambda v: func.substr(key(v), 1, func.length(needle)) == needle
        return lambda v: and_(
            func.length(v) >= func.length(needle),
            func.substr(key(v), func.length(key(v)) - func.length(needle) + 1) == needle,
        )

    def _number(self, op: str, value: Any) -> Predicate:
        def number(n: Decimal) -> ColumnElement[Any]:
            return literal(n, Numeric(asdecimal=True))

        if op == "between":
            return lambda v: self.numeric(v).between(number(value[0]), number(value[1]))
        if op == "in":
            return lambda v: or_(*(self.numeric(v) == number(n) for n in value))
        return lambda v: _compare(self.numeric(v), op, number(value))

    def _moment(self, op: str, value: Any) -> Predicate:
        def at(moment: Any) -> ColumnElement[Any]:
            return bindparam(None, resolve(moment, self.as_of), UTCDateTime())

        if op == "before":
            return lambda v: v < at(value)
        if op == "after":
            return lambda v: v > at(value)
        if op == "between":
            return lambda v: v.between(at(value[0]), at(value[1]))
        since = at(self.as_of - timedelta(days=value))
        if op == "inLastDays":
            return lambda v: v.between(since, at(self.as_of))
        return lambda v: v < since

    def _age(self, rule: Rule, g: FromClause) -> ColumnElement[bool]:
        """Whole years at asOf, as bounds on the date of birth: age >= n exactly when born by asOf - n years."""
        born = g.c.date_of_birth

        def born_by(years: Decimal) -> ColumnElement[Any]:
            return bindparam(None, years_before(self.as_of, int(years)), UTCDateTime())

        def aged(low: Decimal, high: Decimal) -> ColumnElement[bool]:
            return and_(born <= born_by(low), born > born_by(high + 1))

        op, value = rule.op, rule.value
        present = born.is_not(None)
        tests: dict[str, Callable[[], ColumnElement[bool]]] = {
            "isEmpty": lambda: born.is_(None),
            "isNotEmpty": lambda: present,
            "equals": lambda: aged(value, value),
            "notEquals": lambda: and_(present, not_(aged(value, value))),
            "in": lambda: or_(*(aged(n, n) for n in value)),
            "notIn": lambda: and_(present, not_(or_(*(aged(n, n) for n in value)))),
            "between": lambda: aged(value[0], value[1]),
            "gte": lambda: born <= born_by(value),
            "gt": lambda: born <= born_by(value + 1),
            "lte": lambda: born > born_by(value + 1),
            "lt": lambda: born > born_by(value),
        }
        return tests[op]() if op == "isEmpty" else and_(present, tests[op]())

    # --- where values live ---------------------------------------------------------------------------

    def values(self, attr: Attribute, scope: dict[str, FromClause]) -> Values:
        owner = scope[attr.entity]
        if attr.group is not None:
            return self._extension(attr, owner)
        if attr.provider is not None:
            return self._identifiers(attr.provider, owner)
        if attr.type is Type.STRING_LIST:
            column = owner.c[LIST_COLUMNS.get((attr.entity, attr.field)) or to_column(attr.field)]
            rows = self._json_rows(column, objects=False)
            return Values(rows.c.value, True, select(1).select_from(rows).correlate_except(rows))
        return Values(self.scalar(attr, scope), attr.type in (Type.STRING, Type.ENUM))

    def scalar(self, attr: Attribute, scope: dict[str, FromClause]) -> ColumnElement[Any]:
        """A single-valued attribute of the row in scope (extension values as a scalar sub-select)."""
        owner = scope[attr.entity]
        if attr.group is not None:
            found = self._extension(attr, owner)
            assert found.rows is not None
            return found.rows.with_only_columns(found.value).limit(1).scalar_subquery()
        if (attr.entity, attr.field) == ("orderItem", "orderedAt"):
            return func.coalesce(owner.c.ordered_at, scope["order"].c.ordered_at)
        if (attr.entity, attr.field) == ("order", "itemCount"):
            item = order_items.alias()
            return select(func.count()).where(item.c.order_ref == owner.c.ref).correlate_except(item).scalar_subquery()
        column = owner.c[to_column(attr.field)]
        # PostgreSQL keeps refs as `uuid`, which neither compares with text nor has text's functions
        return cast(column, String()) if self.postgres and column.type is REF else column

    def _extension(self, attr: Attribute, owner: FromClause) -> Values:
        ext = extensions.alias()
        if self.postgres:
            raw = ext.c.data[bindparam(None, attr.field, String())]
            value: ColumnElement[Any] = {
                Type.STRING: raw.as_string(),
                Type.NUMBER: cast(raw.as_string(), Numeric),
                Type.BOOLEAN: raw.as_string(),
            }[attr.type]
        else:
            value = func.json_extract(ext.c.data, bindparam(None, f'$."{attr.field}"', String()))
            if attr.type is Type.STRING:
                value = cast(value, String)
        rows = (
            select(1)
            .where(
                ext.c.tenant_id == self.tenant_id,
                ext.c.owner_ref == owner.c.ref,
                ext.c.name == bindparam(None, attr.group, String()),
            )
            .correlate_except(ext)
        )
        return Values(value, attr.type is Type.STRING, rows)

    def _identifiers(self, provider: str, g: FromClause) -> Values:
        rows = self._json_rows(g.c.identifiers, objects=True)

        def field(name: str) -> ColumnElement[Any]:
            if self.postgres:
                return rows.c.value.op("->>")(literal(name, String()))
            return cast(func.json_extract(rows.c.value, f"$.{name}"), String)

        expiry = field("expiryDate")
        unexpired = or_(expiry.is_(None), expiry > bindparam(None, self.as_of_text, String()))
        wanted = field("provider") == bindparam(None, provider, String())
        selected = select(1).select_from(rows).where(wanted, unexpired).correlate_except(rows)
        return Values(cast(field("id"), String), True, selected)

    def _json_rows(self, column: ColumnElement[Any], *, objects: bool) -> FromClause:
        """The elements of a JSON array column as rows with one column, `value` (no rows for null)."""
        if not self.postgres:
            return func.json_each(column).table_valued("value").alias()
        array = case((func.jsonb_typeof(column) == "array", column), else_=cast(literal("[]"), JSONB))
        elements = func.jsonb_array_elements if objects else func.jsonb_array_elements_text
        return elements(array).table_valued("value").alias()

    # --- entities ------------------------------------------------------------------------------------

    def entity(self, node: Entity, scope: dict[str, FromClause]) -> ColumnElement[bool]:
        """Top-level entities become one grouped sub-query over all guests (hash-joined by the planner);
        entities nested in another entity's `where` stay correlated to its row."""
        top = "order" not in scope and "session" not in scope
        rows, inner, moment, holder = self._grouped_rows(node) if top else (*self._rows(node, scope), None)
        conditions: list[ColumnElement[bool]] = []
        if node.where is not None:
            conditions.append(self.node(node.where, inner))
        if node.window is not None:
            start, end = node.window.bounds(self.as_of)
            if start is not None:
                conditions.append(moment >= bindparam(None, start, UTCDateTime()))
            if end is not None:
                conditions.append(moment <= bindparam(None, end, UTCDateTime()))
        measure = node.measure
        if measure.attr is not None and measure.attr.currency_field is not None and measure.fn != "countDistinct":
            currency = inner[measure.attr.entity].c[to_column(measure.attr.currency_field)]
            conditions.append(currency == bindparam(None, measure.currency or self.currency, String()))
        rows = rows.where(*conditions)
        if holder is None:
            if node.is_exists:
                return exists(rows)
            return self._measured(node, rows.with_only_columns(self._aggregate(node, inner)).scalar_subquery())
        guest = scope["guest"].c.ref
        if node.is_exists:
            return self._held_by(guest, rows.with_only_columns(holder))
        grouped = rows.with_only_columns(holder).group_by(holder)
        test = self._measured(node, self._aggregate(node, inner))
        if measure.fn in ("count", "countDistinct", "sum") and _holds_at_zero(node):
            # guests without rows match too: keep everyone but the holders whose rows fail the test
            return not_(self._held_by(guest, grouped.having(not_(test))))
        return self._held_by(guest, grouped.having(test))

    def _held_by(self, guest: ColumnElement[Any], holders: Select[Any]) -> ColumnElement[bool]:
        """The guest is among the holders. SQLite evaluates `IN (sub-query)` once into an index; PostgreSQL
        turns `EXISTS` (and `NOT EXISTS`) into a hash semi-join (anti-join), where a `NOT IN` too large to
        hash would be scanned once per guest."""
        if not self.postgres:
            return guest.in_(holders)
        found = holders.subquery()
        return exists(select(1).select_from(found).where(found.c[0] == guest))

    def _aggregate(self, node: Entity, inner: dict[str, FromClause]) -> ColumnElement[Any]:
        measure = node.measure
        if measure.attr is None:
            return func.count()
        value = self.scalar(measure.attr, inner)
        if measure.fn == "countDistinct":
            if measure.attr.type in (Type.STRING, Type.ENUM):
                exact = measure.attr.field == "ref" and measure.attr.group is None
                value = func.nullif(value if exact else self.lower(value), "")
            return func.count(value.distinct())
        aggregate: ColumnElement[Any] = getattr(func, measure.fn)(self.numeric(value))
        return aggregate

    def _measured(self, node: Entity, aggregate: ColumnElement[Any]) -> ColumnElement[bool]:
        """The node's comparison of its aggregate: count, countDistinct and sum are 0 over no rows;
        avg, min and max have no value then, and the node is false."""
        if node.measure.fn in ("count", "countDistinct", "sum"):
            return self._number(node.op, node.value)(func.coalesce(aggregate, 0))
        return func.coalesce(self._number(node.op, node.value)(aggregate), false())

    def _grouped_rows(
        self, node: Entity
    ) -> tuple[Select[Any], dict[str, FromClause], ColumnElement[Any], ColumnElement[Any]]:
        """An entity's rows for every guest at once, with the column naming the guest they belong to.

        Orders are reached through distinct (guest, order) pairs, so an order counts once per guest
        whatever roles the guest plays in it (an order has one contact, so that role needs no DISTINCT).
        """
        tenant = self.tenant_id
        if node.entity in ("order", "orderItem"):
            person = order_people.alias()
            pairs = select(person.c.guest_ref, person.c.order_ref).where(
                person.c.tenant_id == tenant,
                person.c.role.in_(ROLES[node.role]),
                person.c.guest_ref.is_not(None),
            )
            # an order has one contact; consumers may name the same guest twice, and `any` adds the contact
            holders = (pairs if node.role == "contact" else pairs.distinct()).subquery()
            o = orders.alias()
            joined = holders.join(o, o.c.ref == holders.c.order_ref)
            if node.entity == "order":
                return select(1).select_from(joined), {"order": o}, o.c.ordered_at, holders.c.guest_ref
            i = order_items.alias()
            rows = select(1).select_from(joined.join(i, i.c.order_ref == o.c.ref))
            moment = func.coalesce(i.c.ordered_at, o.c.ordered_at)
            return rows, {"orderItem": i, "order": o}, moment, holders.c.guest_ref
        s = sessions.alias()
        if node.entity == "session":
            return select(1).where(s.c.tenant_id == tenant), {"session": s}, s.c.started_at, s.c.guest_ref
        e = events.alias()
        rows = select(1).select_from(e.join(s, s.c.ref == e.c.session_ref)).where(e.c.tenant_id == tenant)
        return rows, {"event": e, "session": s}, e.c.created_at, e.c.guest_ref

    def _rows(
        self, node: Entity, scope: dict[str, FromClause]
    ) -> tuple[Select[Any], dict[str, FromClause], ColumnElement[Any]]:
        """The rows a nested entity ranges over (an order's items, a session's events), correlated to the
        row of the entity around it; the aliases its `where` sees; the column of its window."""
        if node.entity == "orderItem":
            o = scope["order"]
            i = order_items.alias()
            rows = select(1).where(i.c.order_ref == o.c.ref).correlate_except(i)
            return rows, {"orderItem": i, "order": o}, func.coalesce(i.c.ordered_at, o.c.ordered_at)
        e = events.alias()
        rows = select(1).where(e.c.session_ref == scope["session"].c.ref).correlate_except(e)
        return rows, {**scope, "event": e}, e.c.created_at

    # --- dialect differences -------------------------------------------------------------------------

    def lower(self, value: ColumnElement[Any]) -> ColumnElement[Any]:
        """Unicode lower case: PostgreSQL's lower() under a UTF-8 locale; SQLite's is ASCII-only, so ours."""
        if self.postgres:
            return func.lower(value)
        # SQLite's C lower() is exact for ASCII text; only other text pays for the Python function
        ascii_only = not_(value.op("GLOB", is_comparison=True)(literal("*[^ -~]*")))
        return case((ascii_only, func.lower(value)), else_=func.opencdp_lower(value, type_=String()))

    def numeric(self, value: ColumnElement[Any]) -> ColumnElement[Any]:
        """Money is decimal text on SQLite; compare it as a number there."""
        return value if self.postgres else cast(value, Float)

    def _boolean(self, value: bool) -> ColumnElement[Any]:
        if self.postgres:
            return literal("true" if value else "false", String())
        return literal(1 if value else 0)


_OPERATORS = {"equals": operator.eq, "notEquals": operator.ne, "gt": operator.gt, "gte": operator.ge,
              "lt": operator.lt, "lte": operator.le}  # fmt: skip


def _holds_at_zero(node: Entity) -> bool:
    """Whether the node's comparison holds for an aggregate of 0 (a guest with no rows)."""
    value = node.value
    if node.op == "between":
        return bool(value[0] <= 0 <= value[1])
    return bool(_OPERATORS[node.op](Decimal(0), value))


def _compare(left: ColumnElement[Any], op: str, right: ColumnElement[Any]) -> ColumnElement[bool]:
    compared: ColumnElement[bool] = _OPERATORS[op](left, right)
    return compared
