"""Operating the Stream API: tenant stream settings, the worker's sweep and the embedded server's."""

from __future__ import annotations

import time
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update
from typer.testing import CliRunner

from opencdp.api.app import create_app
from opencdp.cli.main import app as cli
from opencdp.core.values import utcnow
from opencdp.store.tables import sessions


def start_session(client) -> str:
    key = client.tenant.client_key
    browser = client.get("/v1.2/browser/create.json", params={"client_key": key}).json()
    client.post("/v1.2/events", json={"type": "VIEW", "browser_id": browser["ref"], "client_key": key})
    assert timeline(client, browser["customer_ref"])  # a read after the 201 sees the session the event made
    return browser["customer_ref"]


def age_sessions(database, tenant_id, minutes):
    with database.write() as conn:
        conn.execute(
            update(sessions)
            .where(sessions.c.tenant_id == tenant_id)
            .values(
                last_event_at=utcnow() - timedelta(minutes=minutes), started_at=utcnow() - timedelta(minutes=minutes)
            )
        )


def timeline(client, guest):
    return client.get(f"/opencdp/v1/guests/{guest}/sessions").json()["items"]


def test_tenant_stream_settings_from_the_cli(client, database, monkeypatch):
    monkeypatch.setenv("OPENCDP_DATABASE_URL", database.url)
    runner = CliRunner()
    args = ["tenant", "set", client.tenant.name, "--session-timeout", "5", "--currency", "gbp", "--pos", "a.example",
            "--context-id", "ctx-x", "--site", "s1=a.example"]  # fmt: skip
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "5 min, currency GBP" in result.output and "s1=a.example" in result.output
    assert runner.invoke(cli, ["tenant", "set", client.tenant.name, "--site", "broken"]).exit_code == 1
    assert runner.invoke(cli, ["tenant", "set", client.tenant.name, "--session-timeout", "0"]).exit_code == 1
    created = client.get("/v1.2/browser/create.json", params={"sitecoreContextId": "ctx-x"})
    assert created.status_code == 200


def test_the_worker_sweeps_idle_sessions(client, database, monkeypatch):
    monkeypatch.setenv("OPENCDP_DATABASE_URL", database.url)
    guest = start_session(client)
    age_sessions(database, client.tenant.id, 30)
    result = CliRunner().invoke(cli, ["worker", "--once"])
    assert result.exit_code == 0, result.output
    [session] = timeline(client, guest)
    assert session["status"] == "CLOSED" and session["closeReason"] == "TIMEOUT" and session["cartType"] == "BROWSED"


def test_the_embedded_server_sweeps_by_itself(client, database, settings):
    embedded_settings = settings.model_copy(update={"sweep_seconds": 0.05})
    with TestClient(create_app(embedded_settings, database)) as embedded:
        embedded.auth = client.auth
        embedded.tenant = client.tenant
        guest = start_session(embedded)
        age_sessions(database, client.tenant.id, 30)
        deadline = time.monotonic() + 10
        while timeline(embedded, guest)[0]["status"] == "OPEN" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert timeline(embedded, guest)[0]["status"] == "CLOSED"


def test_a_late_event_closes_the_timed_out_session_and_opens_another(client, database):
    key = client.tenant.client_key
    browser = client.get("/v1.2/browser/create.json", params={"client_key": key}).json()
    client.post("/v1.2/events", json={"type": "VIEW", "browser_id": browser["ref"], "client_key": key})
    assert timeline(client, browser["customer_ref"])  # applied: there is a session to age
    age_sessions(database, client.tenant.id, 21)
    client.post("/v1.2/events", json={"type": "VIEW", "browser_id": browser["ref"], "client_key": key})
    newest, oldest = timeline(client, browser["customer_ref"])
    assert newest["status"] == "OPEN" and oldest["status"] == "CLOSED" and oldest["closeReason"] == "TIMEOUT"
