"""Kill -9 during a Stream load: every event answered 201 is applied after the restart, and none twice.
On SQLite and on PostgreSQL, against a real `opencdp serve`."""

from __future__ import annotations

import os
import signal
import threading
import time

import httpx
from sqlalchemy import func, select

from conftest import SERVER_KEY, SERVER_TOKEN
from opencdp.store.database import Database
from opencdp.store.tables import events, sessions, stream_journal
from opencdp.testing import running_server


def send_until_killed(base: str, browser: str, accepted: list[str], stop: threading.Event) -> None:
    journey = [{"type": "VIEW"}, {"type": "ADD", "product": {"item_id": "S1", "type": "M", "name": "P", "price": 3,
                                                             "quantity": 1}}]  # fmt: skip
    with httpx.Client(base_url=base, timeout=5) as client:
        step = 0
        while not stop.is_set():
            body = {"browser_id": browser, "client_key": SERVER_KEY, "channel": "WEB", **journey[step % 2]}
            try:
                answer = client.post("/v1.2/events", json=body)
            except httpx.HTTPError:
                return
            if answer.status_code == 201:
                accepted.append(answer.json()["ref"])
            step += 1


def test_a_killed_server_loses_no_accepted_event_and_applies_none_twice(environment, tmp_path):
    env = {**environment, "OPENCDP_LOG_LEVEL": "error"}
    accepted: list[str] = []
    stop = threading.Event()
    with running_server(env, tmp_path) as base:
        browsers = [
            httpx.get(f"{base}/v1.2/browser/create.json?client_key={SERVER_KEY}").json()["ref"] for _ in range(4)
        ]
        senders = [threading.Thread(target=send_until_killed, args=(base, b, accepted, stop)) for b in browsers]
        for sender in senders:
            sender.start()
        time.sleep(1.5)
        os.kill(base.pid, signal.SIGKILL)
        stop.set()
        for sender in senders:
            sender.join()
    assert len(accepted) > 50
    with running_server(env, tmp_path) as base:
        assert httpx.get(f"{base}/v2.1/orders?referenceId=x", auth=(SERVER_KEY, SERVER_TOKEN)).status_code == 200
    db = Database(env.get("OPENCDP_DATABASE_URL") or f"sqlite:///{tmp_path / 'opencdp.db'}")
    try:
        with db.read() as conn:
            stored = set(conn.scalars(select(events.c.ref)))
            counted = conn.execute(select(func.sum(sessions.c.event_count))).scalar_one()
            left = conn.execute(select(func.count()).select_from(stream_journal)).scalar_one()
    finally:
        db.dispose()
    assert set(accepted) <= stored  # nothing answered 201 is lost
    assert counted == len(stored)  # no event counted twice in its session
    assert left == 0


def test_a_read_right_after_a_checkout_always_sees_its_order(environment, tmp_path):
    """A hundred journeys, each followed at once by a REST read, on a server whose applier runs beside."""
    env = {**environment, "OPENCDP_LOG_LEVEL": "error"}
    with running_server(env, tmp_path) as base, httpx.Client(base_url=base, timeout=10) as client:
        for journey in range(100):
            browser = client.get(f"/v1.2/browser/create.json?client_key={SERVER_KEY}").json()["ref"]
            common = {"browser_id": browser, "client_key": SERVER_KEY, "channel": "WEB", "currency": "EUR"}
            for event in (
                {"type": "ADD", "product": {"item_id": "S", "type": "M", "name": "P", "price": 2, "quantity": 1}},
                {"type": "ADD_CONTACTS", "contact": {"email": f"j{journey}@example.com"}},
                {"type": "CONFIRM", "product": {"item_id": "S"}},
                {"type": "CHECKOUT", "reference_id": f"J-{journey}", "status": "PURCHASED"},
            ):
                assert client.post("/v1.2/events", json={**common, **event}).status_code == 201
            found = client.get(f"/v2.1/orders?referenceId=J-{journey}", auth=(SERVER_KEY, SERVER_TOKEN)).json()
            assert len(found["items"]) == 1, journey
