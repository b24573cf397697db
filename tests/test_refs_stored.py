"""Refs as each database keeps them: PostgreSQL's `uuid`, SQLite's text; the same lowercase string on the
wire and in the code either way, and a string that is not a stored ref's exact form matches nothing."""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import text

from conftest import create_order, fresh_postgres_database
from opencdp.store import migrate
from opencdp.store.database import Database
from opencdp.store.rows import get_row
from opencdp.store.tables import REF, metadata, orders


def test_every_ref_column_is_a_uuid_on_postgresql_and_text_on_sqlite(database):
    declared = {(table.name, column.name) for table in metadata.tables.values() for column in table.columns
                if column.type is REF}  # fmt: skip
    with database.read() as conn:
        if database.is_sqlite:
            stored = {(table, row[1]): row[2] for table, _ in declared
                      for row in conn.exec_driver_sql(f"PRAGMA table_info({table})")}  # fmt: skip
        else:
            stored = {(row[0], row[1]): row[2] for row in conn.exec_driver_sql(
                "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = 'public'")}  # fmt: skip
    expected = "VARCHAR(36)" if database.is_sqlite else "uuid"
    assert len(declared) > 40
    assert {column: stored[column] for column in declared} == {column: expected for column in declared}


def test_a_ref_reads_back_as_the_string_it_was(client, database):
    order = create_order(client)
    with database.read() as conn:
        through_sqlalchemy = conn.execute(text("SELECT ref, tenant_id FROM orders WHERE reference_id = :r"),
                                          {"r": order["referenceId"]}).one()  # fmt: skip
        cursor = conn.connection.driver_connection.cursor()  # a raw cursor, as the hot paths read
        cursor.execute("SELECT ref FROM orders WHERE ref = " + ("?" if database.is_sqlite else "%s"), (order["ref"],))
        raw = cursor.fetchone()[0]
        row = get_row(conn, orders, through_sqlalchemy.tenant_id, order["ref"])
    assert through_sqlalchemy.ref == raw == order["ref"] == row["ref"]
    assert type(raw) is str and type(row["ref"]) is str and order["ref"] == order["ref"].lower()


@pytest.mark.parametrize("asked", ["upper", "garbage", "braces", "empty", "long"])
def test_a_string_that_is_not_a_stored_ref_matches_nothing_and_fails_nothing(client, database, asked):
    order = create_order(client)
    wrong = {"upper": order["ref"].upper(), "garbage": "not-a-ref'; --", "braces": "{" + order["ref"] + "}",
             "empty": "", "long": order["ref"] * 3}[asked]  # fmt: skip
    with database.read() as conn:
        tenant_id = conn.execute(text("SELECT tenant_id FROM orders WHERE reference_id = :r"),
                                 {"r": order["referenceId"]}).scalar_one()  # fmt: skip
        assert get_row(conn, orders, tenant_id, wrong) is None
        assert conn.execute(orders.select().where(orders.c.ref.in_([wrong, str(uuid.uuid4())]))).all() == []
    if asked in ("garbage", "long"):
        assert client.get(f"/v2.1/orders/{wrong}").status_code == 404
    if asked == "upper":  # the REST API matches a path's ref case-insensitively (rest-api.md), before the store
        assert client.get(f"/v2.1/orders/{wrong}").json()["ref"] == order["ref"]


@contextmanager
def _empty(kind: str, folder: Path) -> Any:
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'refs.db'}"
    else:
        with fresh_postgres_database("opencdp_refs") as url:
            yield url


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_the_migration_keeps_every_stored_ref_and_its_foreign_keys(kind, tmp_path):
    """Refs stored as text before revision 0011 read back unchanged after it, and after going back down;
    the foreign keys between them still cascade."""
    order, item, tenant = str(uuid.uuid4()), str(uuid.uuid4()), 1
    with _empty(kind, tmp_path) as url:
        db = Database(url)
        config = migrate._config(db)
        with db.engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "0010")
            conn.execute(text("INSERT INTO tenants (id, name, client_key, identity_rules, points_of_sale, "
                              "session_timeout_minutes, default_currency, created_at) "
                              "VALUES (1, 't', 'k', '[]', '[]', 30, 'EUR', CURRENT_TIMESTAMP)"))  # fmt: skip
            now = {"t": tenant, "o": order, "i": item}
            conn.execute(text("INSERT INTO orders (ref, tenant_id, reference_id, currency_code, price, ordered_at, "
                              "created_at, modified_at) VALUES (:o, :t, 'R-1', 'EUR', 1, "
                              "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"), now)  # fmt: skip
            conn.execute(text("INSERT INTO order_items (ref, tenant_id, order_ref, type, name, price, "
                              "currency_code, created_at, modified_at) VALUES (:i, :t, :o, 'X', 'x', 1, 'EUR', "
                              "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"), now)  # fmt: skip
        migrate.upgrade(db)
        with db.read() as conn:
            assert conn.execute(text("SELECT ref, order_ref FROM order_items")).one() == (item, order)
        with db.engine.begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "0010")
            assert conn.execute(text("SELECT ref, order_ref FROM order_items")).one() == (item, order)
        migrate.upgrade(db)
        with db.write() as conn:
            conn.execute(text("DELETE FROM orders WHERE ref = :o"), {"o": order})
            assert conn.execute(text("SELECT count(*) FROM order_items")).scalar_one() == 0
        db.dispose()
