"""Several machines: two API processes and two `opencdp worker` appliers on one PostgreSQL database (the
API processes apply nothing themselves: OPENCDP_STREAM_APPLIER=none). A browser's numbered events, sent alternately to the two processes, each after the previous one's 201,
are applied in the order they were sent."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from conftest import SERVER_KEY, SERVER_TOKEN
from opencdp.testing import running_server

OPENCDP = str(Path(sys.executable).with_name("opencdp"))


@pytest.mark.parametrize("environment", ["postgresql"], indirect=True)
def test_events_sent_alternately_to_two_processes_apply_in_order(environment, tmp_path):
    env = {**environment, "OPENCDP_LOG_LEVEL": "error"}
    api_env = {**env, "OPENCDP_STREAM_APPLIER": "none"}  # the workers alone apply
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    workers = [subprocess.Popen([OPENCDP, "worker", "--every", "0.02"], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL) for _ in range(2)]  # fmt: skip
    try:
        with running_server(api_env, tmp_path / "a") as first, running_server(api_env, tmp_path / "b") as second:
            created = httpx.get(f"{first}/v1.2/browser/create.json?client_key={SERVER_KEY}").json()
            browser, guest = created["ref"], created["customer_ref"]
            for number in range(1, 41):
                base = (first, second)[number % 2]
                body = {"type": "ADD", "browser_id": browser, "client_key": SERVER_KEY, "page": f"/{number}",
                        "product": {"item_id": "S", "type": "M", "name": "P", "price": 1, "quantity": number}}  # fmt: skip
                assert httpx.post(f"{base}/v1.2/events", json=body).status_code == 201
            deadline = time.monotonic() + 30
            while httpx.get(f"{first}/opencdp/v1/stream/journal", auth=(SERVER_KEY, SERVER_TOKEN)).json()["waiting"]:
                assert time.monotonic() < deadline, "the workers did not apply the journal"
                time.sleep(0.05)
            [session] = httpx.get(f"{second}/opencdp/v1/guests/{guest}/sessions",
                                  auth=(SERVER_KEY, SERVER_TOKEN)).json()["items"]  # fmt: skip
    finally:
        for worker in workers:
            worker.terminate()
            worker.wait(timeout=15)
    assert [event["page"] for event in session["events"]] == [f"/{number}" for number in range(1, 41)]
    assert session["cart"]["lines"][0]["quantity"] == 40  # the last ADD of the item is the one that holds
