"""The typed records (`store/records.py`) say what their tables hold: a column added without its key, or a
key without its column, fails here before mypy could be misled by it."""

from __future__ import annotations

from typing import get_type_hints

import pytest

from opencdp.core.stream.carts import Cart, empty_cart
from opencdp.store import records, tables
from opencdp.store.rows import to_field


@pytest.mark.parametrize(
    ("record", "table"),
    [
        (records.Order, tables.orders),
        (records.OrderItem, tables.order_items),
        (records.Person, tables.order_people),
        (records.Guest, tables.guests),
    ],
)
def test_each_record_names_every_column_of_its_table(record, table):
    assert set(get_type_hints(record)) == {to_field(column.name) for column in table.columns}
    nullable = {to_field(column.name) for column in table.columns if column.nullable}
    optional = {name for name, hint in get_type_hints(record).items() if type(None) in getattr(hint, "__args__", ())}
    assert optional == nullable


def test_a_new_cart_has_every_key_of_a_cart():
    assert set(empty_cart()) == set(get_type_hints(Cart))
