"""Writers racing on the same keys: the matching rule and identity resolution must hold under concurrency."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from threading import Barrier
from typing import Any

import pytest

from conftest import CONTACT, order_body
from opencdp.core import orders, people, profiles
from opencdp.core.fields import Mode
from opencdp.core.values import utcnow

WRITERS = 6


def race(database, work):
    barrier = Barrier(WRITERS)

    def one(index):
        barrier.wait()
        with database.write() as conn:
            return work(conn, index)

    with ThreadPoolExecutor(WRITERS) as pool:
        return list(pool.map(one, range(WRITERS)))


def test_simultaneous_creates_of_one_order_make_one_order(client, database):
    body = order_body(referenceId="RACE-1")
    results = race(database, lambda conn, i: orders.create_order(conn, client.tenant, body, utcnow()))
    assert sum(created for _, created in results) == 1
    assert len({record["ref"] for record, _ in results}) == 1
    assert len(client.get("/v2.1/orders?referenceId=RACE-1").json()["items"]) == 1


def test_simultaneous_contacts_with_one_new_email_make_one_guest(client, database):
    refs = [client.post("/v2.1/orders", json=order_body()).json()["ref"] for _ in range(WRITERS)]
    body = {**CONTACT, "emails": ["race@example.com"]}
    results = race(database, lambda conn, i: people.create_contact(conn, client.tenant, refs[i], body, utcnow()))
    assert len({record["guestRef"] for record, _ in results}) == 1


def test_one_new_identifier_arriving_on_two_guests_at_once_makes_one_holder_and_one_merge(client, database):
    first = client.post("/v2.1/guests", json={"guestType": "visitor"}).json()["ref"]
    second = client.post("/v2.1/guests", json={"guestType": "visitor"}).json()["ref"]
    body = {"emails": ["same@example.com"]}
    targets = [first, second] * (WRITERS // 2)
    race(database, lambda conn, i: profiles.update(conn, client.tenant, targets[i], body, Mode.PATCH, utcnow(), "race"))
    holders = client.get("/v2.1/guests?email=same@example.com").json()["items"]
    assert len(holders) == 1
    merges = client.get(f"/opencdp/v1/guests/{holders[0]['ref']}/merges").json()["items"]
    assert len(merges) == 1
    assert {merges[0]["survivor"]["ref"], merges[0]["retired"]["ref"]} == {first, second}


def test_the_server_answers_reads_while_another_thread_holds_the_writer(app, database, client):
    """A long write elsewhere in the process (a batch chunk) must not freeze the event loop."""
    import threading
    import time

    from fastapi.testclient import TestClient

    order = client.post("/v2.1/orders", json=order_body()).json()
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with database.write():
            holding.set()
            release.wait(10)

    with TestClient(app) as shared:  # one event loop for every request below
        shared.auth = client.auth
        holder = threading.Thread(target=hold)
        holder.start()
        holding.wait(5)
        answers: dict[str, int] = {}
        writer = threading.Thread(
            target=lambda: answers.setdefault(
                "write", shared.patch(order["href"], json={"status": "PENDING"}).status_code
            )
        )
        writer.start()
        time.sleep(0.3)
        started = time.monotonic()
        assert shared.get(order["href"]).status_code == 200
        assert time.monotonic() - started < 2
        if database.is_sqlite:  # SQLite has one writer: the patch waits for the holder; PostgreSQL need not
            assert "write" not in answers
        release.set()
        writer.join(10)
        holder.join(10)
    assert answers["write"] == 200
    assert client.get(order["href"]).json()["status"] == "PENDING"


WAITER = """
import sys
from opencdp.store.database import Database, lock
with Database(sys.argv[1]).write() as conn:
    lock(conn, "waiting-writer")
"""


@pytest.mark.parametrize("kind", ["thread", "process"])
def test_a_long_writer_sees_another_writer_waiting_for_it(database, kind):
    """How a batch import knows to commit early: a writer queued behind its transaction, in this process
    or another (SQLite: any writer; PostgreSQL: one blocked on a lock the transaction holds)."""
    import subprocess
    import sys
    import threading
    import time

    from opencdp.store.database import lock

    def wait_for_writer() -> None:
        with database.write() as other:
            lock(other, "waiting-writer")

    with database.write() as conn:
        lock(conn, "waiting-writer")
        assert not database.others_waiting(conn)
        if kind == "thread":
            waiter: Any = threading.Thread(target=wait_for_writer)
            waiter.start()
        else:
            waiter = subprocess.Popen([sys.executable, "-c", WAITER, database.url])
        deadline = time.monotonic() + 20
        while not database.others_waiting(conn):
            assert time.monotonic() < deadline, "the waiting writer was never seen"
            time.sleep(0.02)
    if kind == "thread":
        waiter.join(10)
    else:
        assert waiter.wait(20) == 0
    with database.write() as conn:
        assert not database.others_waiting(conn)


TURN_TAKER = """
import sys
from pathlib import Path
from opencdp.store.database import Database
with Database(sys.argv[1]).write():
    Path(sys.argv[2]).touch()
"""


@pytest.mark.parametrize("kind", ["thread", "process"])
def test_a_writer_queued_behind_a_long_writer_goes_before_its_next_transaction(tmp_path, kind):
    """SQLite: the import commits for a queued writer, which must then get in; a released lock would
    otherwise go straight back to the thread that released it, before the woken waiter runs."""
    import subprocess
    import sys
    import threading
    import time

    from opencdp.store.database import Database

    db = Database(f"sqlite:///{tmp_path / 'turns.db'}")
    marker = tmp_path / "waiter-wrote"

    def write_marker() -> None:
        with db.write():
            marker.touch()

    with db.write() as conn:
        if kind == "thread":
            waiter: Any = threading.Thread(target=write_marker)
            waiter.start()
        else:
            waiter = subprocess.Popen([sys.executable, "-c", TURN_TAKER, db.url, str(marker)])
        deadline = time.monotonic() + 20
        while not db.others_waiting(conn):
            assert time.monotonic() < deadline, "the waiting writer was never seen"
            time.sleep(0.02)
    with db.write(after_queued=True):
        assert marker.exists(), "the long writer took the writer again before the queued one"
    if kind == "thread":
        waiter.join(10)
    else:
        assert waiter.wait(20) == 0
    db.dispose()
