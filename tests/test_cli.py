"""The operator's CLI: schema upgrades and tenant administration, against both databases."""

from __future__ import annotations

import re
import uuid

import pytest
from typer.testing import CliRunner

from opencdp.cli.main import app
from opencdp.core import bootstrap
from opencdp.store import migrate
from opencdp.store.database import Database


@pytest.fixture
def run(database, monkeypatch):
    monkeypatch.setenv("OPENCDP_DATABASE_URL", database.url)
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(app, list(args))

    return invoke


def test_db_upgrade_is_idempotent(run, database):
    result = run("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert migrate.current_revision(database) == migrate.head_revision(database)
    assert run("db", "current").exit_code == 0


def test_tenant_lifecycle(run, anonymous):
    name = f"shop-{uuid.uuid4().hex[:6]}"
    created = run("tenant", "create", name, "--client-key", f"ck_{name}")
    assert created.exit_code == 0, created.output
    token = re.search(r"API token\s+(\S+)", created.output).group(1)
    assert f"ck_{name}" in run("tenant", "list").output
    assert anonymous.get("/v2.1/orders?referenceId=x", auth=(f"ck_{name}", token)).status_code == 200

    issued = run("tenant", "token-create", name, "--label", "rotation")
    assert issued.exit_code == 0
    token_id = re.search(r"token id\s+(\d+)", issued.output).group(1)
    second = re.search(r"API token\s+(\S+)", issued.output).group(1)
    assert anonymous.get("/v2.1/orders?referenceId=x", auth=(f"ck_{name}", second)).status_code == 200
    listing = run("tenant", "token-list", name).output
    assert "rotation" in listing and second not in listing

    assert run("tenant", "token-revoke", name, token_id).exit_code == 0
    assert anonymous.get("/v2.1/orders?referenceId=x", auth=(f"ck_{name}", second)).status_code == 401
    assert anonymous.get("/v2.1/orders?referenceId=x", auth=(f"ck_{name}", token)).status_code == 200


def test_cli_errors_exit_non_zero_with_a_message(run):
    name = f"dup-{uuid.uuid4().hex[:6]}"
    assert run("tenant", "create", name).exit_code == 0
    duplicate = run("tenant", "create", name)
    assert duplicate.exit_code == 1 and "already exists" in duplicate.output
    assert run("tenant", "token-create", "no-such-tenant").exit_code == 1
    assert run("tenant", "token-revoke", name, "999999").exit_code == 1


def test_first_start_creates_a_default_tenant_with_pinned_credentials(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'fresh.db'}")
    migrate.upgrade(db)
    with db.write() as conn:
        tenant, token = bootstrap.ensure_default_tenant(conn, "ck_pinned", "tok_pinned")
    assert (tenant.name, tenant.client_key, token) == ("default", "ck_pinned", "tok_pinned")
    with db.write() as conn:
        again, _ = bootstrap.ensure_default_tenant(conn, None, "tok_rotated")
    assert again.id == tenant.id
    with db.read() as conn:
        from opencdp.core.tenants import authenticate

        assert authenticate(conn, "ck_pinned", "tok_rotated") is not None
        assert authenticate(conn, "ck_pinned", "tok_pinned") is not None


def test_a_database_newer_than_the_code_is_refused(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'newer.db'}")
    migrate.upgrade(db)
    with db.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    with pytest.raises(migrate.DatabaseTooNew):
        migrate.upgrade(db)


def test_a_worker_survives_a_failing_pass_and_once_reports_it(run, monkeypatch, caplog):
    """A pass that fails (the database restarting, a lock table full) is logged and tried again; the
    batch it held is resumed when its claim lapses. `--once` fails instead."""
    import time

    from opencdp.jobs import Jobs

    passes: list[int] = []

    def failing_then_stopping(self):
        passes.append(len(passes))
        if len(passes) == 1:
            raise RuntimeError("out of shared memory")
        raise SystemExit(3)  # ends the worker's loop for the test

    monkeypatch.setattr(Jobs, "run_pass", failing_then_stopping)
    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    result = run("worker", "--every", "0")
    assert result.exit_code == 3 and passes == [0, 1]
    assert "background work failed" in caplog.text and "out of shared memory" in caplog.text
    passes.clear()
    once = run("worker", "--once")
    assert once.exit_code != 0 and isinstance(once.exception, RuntimeError) and passes == [0]
