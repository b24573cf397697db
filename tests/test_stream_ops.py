"""Operating the Stream API: tenant stream settings, the worker's sweep and the embedded server's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from conftest import SERVER_KEY
from opencdp.api.app import create_app
from opencdp.cli.main import app as cli
from opencdp.core.values import utcnow
from opencdp.store.database import Database
from opencdp.store.tables import sessions, stream_journal
from opencdp.testing import running_server


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


def journal_size(db: Database) -> int:
    with db.read() as conn:
        return conn.execute(select(func.count()).select_from(stream_journal)).scalar_one()


def send_views(base: str, count: int) -> None:
    browser = httpx.get(f"{base}/v1.2/browser/create.json?client_key={SERVER_KEY}").json()["ref"]
    for number in range(count):
        body = {"type": "VIEW", "browser_id": browser, "client_key": SERVER_KEY, "page": f"/{number}"}
        assert httpx.post(f"{base}/v1.2/events", json=body).status_code == 201


def drained(db: Database, seconds: float) -> bool:
    """Whether the journal empties within `seconds`, watched without a request (a read would apply it)."""
    deadline = time.monotonic() + seconds
    while journal_size(db) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not journal_size(db)


def database_of(env: dict[str, str], tmp_path: Path) -> Database:
    return Database(env.get("OPENCDP_DATABASE_URL") or f"sqlite:///{tmp_path / 'opencdp.db'}")


def test_a_server_that_applies_nothing_leaves_the_journal_to_a_worker_that_applies_as_events_come(
    environment, tmp_path
):
    """OPENCDP_STREAM_APPLIER=none: the server only accepts; `opencdp worker` applies events as they come,
    not once per pass: its passes here are a minute apart."""
    env = {**environment, "OPENCDP_LOG_LEVEL": "error", "OPENCDP_STREAM_APPLIER": "none"}
    db = database_of(env, tmp_path)
    try:
        with running_server(env, tmp_path) as base:
            send_views(base, 5)
            time.sleep(1)
            assert journal_size(db) == 5  # nobody applied them
            worker = subprocess.Popen([str(Path(sys.executable).with_name("opencdp")), "worker", "--every", "60"],
                                      env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
            try:
                assert drained(db, 30)
                time.sleep(0.5)  # the worker's first pass is over: it sleeps for a minute now
                send_views(base, 5)
                assert drained(db, 30), "the worker applied nothing between its passes"
            finally:
                worker.terminate()
                worker.wait(timeout=15)
    finally:
        db.dispose()


def children(pid: int) -> list[int]:
    """The live child processes of `pid` (a zombie has ended)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text() if entry.name.isdigit() else ""
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split() if stat else []
        if fields and int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def test_serve_applies_in_a_process_of_its_own_that_ends_with_the_server(environment, tmp_path):
    """By default `opencdp serve` starts one applier process beside its server; it applies events without
    any read asking for them, and it ends when the server is killed with kill -9."""
    env = {**environment, "OPENCDP_LOG_LEVEL": "error"}
    db = database_of(env, tmp_path)
    try:
        with running_server(env, tmp_path) as base:
            [applier] = children(base.pid)
            assert b"stream-applier" in Path(f"/proc/{applier}/cmdline").read_bytes()
            send_views(base, 5)
            assert drained(db, 30)
            os.kill(base.pid, signal.SIGKILL)
            deadline = time.monotonic() + 15
            while alive(applier) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not alive(applier)
    finally:
        db.dispose()
