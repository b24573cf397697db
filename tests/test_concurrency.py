"""Writers racing on the same keys: the matching rule and identity resolution must hold under concurrency."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

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
