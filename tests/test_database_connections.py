"""Pooled PostgreSQL connections: checked only when they have lain idle (no ping per request), and one
the server dropped meanwhile is replaced before a unit of work runs on it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from starlette.testclient import TestClient

from conftest import fresh_postgres_database
from opencdp.api.app import create_app
from opencdp.core.tenants import create_tenant
from opencdp.store import database as database_module
from opencdp.store import migrate
from opencdp.store.database import Database


def _backend_pid(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


@contextmanager
def _pooled_connection_dropped(name: str) -> Iterator[tuple[Database, int]]:
    """A database whose pool holds one connection, which the server has just terminated, and its backend."""
    with fresh_postgres_database(name) as url:
        db = Database(url, pool_size=1)
        try:
            first = _backend_pid(db)
            with psycopg.connect(url, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (first,))
            yield db, first
        finally:
            db.dispose()


def test_a_connection_dropped_while_idle_is_replaced_before_the_next_unit(monkeypatch):
    with _pooled_connection_dropped("opencdp_idle") as (db, first):
        monkeypatch.setattr(database_module, "IDLE_PING_SECONDS", 0.0)
        assert _backend_pid(db) != first  # no error: the ping found it dead and the pool reconnected


def test_a_connection_dropped_while_busy_fails_one_unit_and_the_next_connects_afresh():
    """Within the idle time nothing is asked before a unit (that ping cost a round trip per request), so a
    connection the server dropped just now fails the unit on it; the pool then drops every connection
    older than that failure, and the next unit runs on a new one."""
    with _pooled_connection_dropped("opencdp_busy") as (db, first):
        with pytest.raises(OperationalError):
            _backend_pid(db)
        assert _backend_pid(db) != first


def test_a_request_that_finds_every_connection_busy_gets_503_with_retry_after(settings):
    with fresh_postgres_database("opencdp_full") as url:
        db = Database(url, pool_size=1, pool_timeout=0.2)
        migrate.upgrade(db)
        with db.write() as conn:
            credentials = create_tenant(conn, "full")
        client = TestClient(create_app(settings, db), raise_server_exceptions=False)
        client.auth = (credentials.tenant.client_key, credentials.api_token)
        try:
            with db.engine.connect(), db.engine.connect():  # the pool's one connection and its one overflow
                response = client.get("/v2.1/orders?referenceId=R")
            assert response.status_code == 503 and response.headers["retry-after"] == "1"
            assert "Every database connection is busy" in response.json()["developerMessage"]
            assert client.get("/v2.1/orders?referenceId=R").status_code == 200
        finally:
            db.dispose()
