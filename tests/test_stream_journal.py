"""The Stream journal (spec README §4): an event is accepted by its checks and one append, applied later
in order, exactly once; a read that begins after a 201 sees its effects. On SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import func, select

from opencdp.core.stream import journal
from opencdp.store.tables import events, stream_journal
from test_stream import Browser, orders_of


def waiting(database, tenant_id: int) -> int:
    with database.read() as conn:
        stmt = select(func.count()).where(stream_journal.c.tenant_id == tenant_id, stream_journal.c.failure.is_(None))
        return conn.execute(stmt).scalar_one()


def stored_events(database, tenant_id: int) -> list[str]:
    """The tenant's stored events by ref: refs minted by one process sort in the order they were minted."""
    with database.read() as conn:
        stmt = select(events.c.type).where(events.c.tenant_id == tenant_id).order_by(events.c.ref)
        return list(conn.scalars(stmt))


def test_an_event_is_answered_once_appended_and_applied_before_the_next_read(client, database):
    browser = Browser(client)
    answer = browser.send("VIEW")
    assert answer["status"] == "OK" and answer["ref"]
    assert waiting(database, client.tenant.id) == 1 and stored_events(database, client.tenant.id) == []
    assert client.get(f"/v2.1/guests/{browser.guest}").json()["firstSeen"]  # the read applied it first
    assert waiting(database, client.tenant.id) == 0
    with database.read() as conn:
        [ref] = conn.scalars(select(events.c.ref).where(events.c.tenant_id == client.tenant.id))
    assert ref == answer["ref"]


def test_entries_apply_in_order_exactly_once_and_a_failing_one_is_kept_with_its_reason(client, database):
    browser = Browser(client)
    big = {"item_id": "S", "type": "MOBILE", "name": "P", "price": 999_999_999_999_999, "quantity": 5}
    browser.send("ADD", product=big)
    browser.send("ADD_CONTACTS", contact={"email": "order@example.com"})
    browser.send("CONFIRM", product={"item_id": "S"})
    browser.send("CHECKOUT", reference_id="TOO-BIG", status="PURCHASED")  # its total is out of range
    browser.send("CLEAR_CART")
    browser.send("ADD", product={**big, "price": 10, "quantity": 1})
    browser.send("ADD_CONTACTS", contact={"email": "order@example.com"})
    browser.send("CONFIRM", product={"item_id": "S"})
    browser.send("CHECKOUT", reference_id="FINE", status="PURCHASED")
    with database.write() as conn:
        assert journal.apply_tenant(conn, client.tenant.id) == 9
    with database.write() as conn:
        assert journal.apply_tenant(conn, client.tenant.id) == 0  # nothing is applied twice
    assert stored_events(database, client.tenant.id) == ["ADD", "ADD_CONTACTS", "CONFIRM", "CLEAR_CART", "ADD",
                                                         "ADD_CONTACTS", "CONFIRM", "CHECKOUT"]  # fmt: skip
    [order] = orders_of(client, browser.owner()["ref"])
    assert order["referenceId"] == "FINE" and order["price"] == 10
    with database.read() as conn:
        kept = conn.execute(select(stream_journal.c.body, stream_journal.c.failure)).all()
    [(body, failure)] = [row for row in kept if row.body.get("browser_id") == browser.ref]
    assert body["reference_id"] == "TOO-BIG" and failure.startswith("Attribute price is invalid")


def test_the_sweep_applies_what_is_pending_before_it_closes_sessions(client, database):
    from datetime import timedelta

    from opencdp.core.values import utcnow

    browser = Browser(client)
    browser.send("VIEW")
    with database.write() as conn:
        journal.sweep(conn, utcnow() + timedelta(minutes=5))
    assert waiting(database, client.tenant.id) == 0 and stored_events(database, client.tenant.id) == ["VIEW"]


def test_the_journal_reports_its_depth_and_failed_events_can_be_replayed_or_discarded(client):
    browser = Browser(client)
    for _ in range(3):
        browser.send("VIEW")
    shown = client.get("/opencdp/v1/stream/journal").json()
    assert shown["waiting"] == 3 and shown["failed"] == 0 and shown["lagSeconds"] >= 0 and shown["oldestWaitingAt"]
    big = {"item_id": "S", "type": "MOBILE", "name": "P", "price": 999_999_999_999_999, "quantity": 5}
    browser.send("ADD", product=big)
    browser.send("ADD_CONTACTS", contact={"email": "fail@example.com"})
    browser.send("CONFIRM", product={"item_id": "S"})
    checkout = browser.send("CHECKOUT", reference_id="TOO-BIG", status="PURCHASED")
    assert client.get(f"/v2.1/guests/{browser.guest}").status_code == 200  # applies all, the CHECKOUT fails
    assert client.get("/opencdp/v1/stream/journal").json() == {"waiting": 0, "failed": 1, "oldestWaitingAt": None,
                                                               "lagSeconds": 0}  # fmt: skip
    [failed] = client.get("/opencdp/v1/stream/failed").json()["items"]
    assert failed["ref"] == checkout["ref"] and failed["browserRef"] == browser.ref
    assert failed["reason"].startswith("Attribute price is invalid") and failed["event"]["reference_id"] == "TOO-BIG"
    replayed = client.post(f"/opencdp/v1/stream/failed/{checkout['ref']}/replay")
    assert replayed.status_code == 202 and replayed.json()["waiting"] == 1
    client.get(f"/v2.1/guests/{browser.guest}")  # applied again, and it fails again: the cart has not changed
    assert client.get("/opencdp/v1/stream/journal").json()["failed"] == 1
    assert client.delete(f"/opencdp/v1/stream/failed/{checkout['ref']}").status_code == 204
    assert client.get("/opencdp/v1/stream/failed").json()["items"] == []
    assert client.delete(f"/opencdp/v1/stream/failed/{checkout['ref']}").status_code == 404
    assert client.post(f"/opencdp/v1/stream/failed/{checkout['ref']}/replay").status_code == 404


def test_the_journal_routes_are_the_tenants_own(client, other):
    browser = Browser(client)
    browser.send("VIEW")
    assert other.get("/opencdp/v1/stream/journal").json()["waiting"] == 0
    assert client.get("/opencdp/v1/stream/journal").json()["waiting"] == 1


def test_an_event_for_a_browser_deleted_since_it_was_seen_is_kept_as_failed(client):
    browser = Browser(client)
    browser.send("VIEW")
    assert client.delete(f"/v2.1/guests/{browser.guest}").status_code == 204  # its browsers go with it
    browser.send("VIEW")  # this process still knows the browser: accepted, and cannot be applied
    client.get("/v2.1/orders?referenceId=x")
    [failed] = client.get("/opencdp/v1/stream/failed").json()["items"]
    assert failed["browserRef"] == browser.ref and failed["reason"] == f"Browser {browser.ref} was not found"
    unknown = client.post("/v1.2/events", json={"type": "VIEW", "browser_id": "00000000-0000-7000-8000-000000000000",
                                                "client_key": client.tenant.client_key})  # fmt: skip
    assert unknown.status_code == 404


def test_a_read_that_cannot_wait_for_the_journal_is_refused_not_stale(client, database, settings):
    from fastapi.testclient import TestClient

    from opencdp.api.app import create_app

    browser = Browser(client)
    browser.send("VIEW")
    impatient = TestClient(create_app(settings.model_copy(update={"stream_read_wait_seconds": 0}), database),
                           raise_server_exceptions=False)  # fmt: skip
    refused = impatient.get(f"/v2.1/guests/{browser.guest}", auth=client.credentials)
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    assert refused.json()["message"] == "Service Unavailable"
    assert waiting(database, client.tenant.id) == 1
    assert client.get(f"/v2.1/guests/{browser.guest}").status_code == 200
    assert waiting(database, client.tenant.id) == 0


def test_the_console_shows_the_journal_and_its_failed_events(console, client):
    browser = Browser(client)
    browser.send("ADD", product={"item_id": "S", "type": "MOBILE", "name": "P", "price": 999_999_999_999_999,
                                 "quantity": 5})  # fmt: skip
    browser.send("ADD_CONTACTS", contact={"email": "c@example.com"})
    browser.send("CONFIRM", product={"item_id": "S"})
    checkout = browser.send("CHECKOUT", reference_id="TOO-BIG", status="PURCHASED")
    page = console.get("/ui/batches").text
    assert "0 waiting to be applied" in page and "1 failed." in page
    assert checkout["ref"] in page and "Attribute price is invalid" in page and "CHECKOUT" in page


def test_a_batch_stops_once_its_time_is_up_and_the_rest_wait_in_order(client, database):
    """The writer is held for a batch's time at most (`BATCH_SECONDS`): with no time at all, each call
    applies the first entry waiting and no other, in the order they were accepted, each once."""
    browser = Browser(client)
    pages = [f"/{number}" for number in range(6)]
    for page in pages:
        browser.send("VIEW", page=page)
    taken = []
    while True:
        with database.write() as conn:
            if not (count := journal.apply_tenant(conn, client.tenant.id, seconds=0)):
                break
        taken.append(count)
    assert taken == [1] * 6
    [session] = client.get(f"/opencdp/v1/guests/{browser.owner()['ref']}/sessions").json()["items"]
    assert [event["page"] for event in session["events"]] == pages


def test_the_sweep_applies_a_long_journal_a_batch_per_transaction_first(app, client, database, monkeypatch):
    from opencdp import jobs
    from opencdp.api.stream_brake import StreamBrake

    braking = app.state.stream_brake
    app.state.stream_brake = StreamBrake(database, max_lag=0, max_wait=0)  # no applier runs here
    try:
        browser = Browser(client)
        for _ in range(journal.BATCH + 50):
            browser.send("VIEW")
    finally:
        app.state.stream_brake = braking
    transactions = []
    write = database.write

    def counted(*args, **kwargs):
        transactions.append(1)
        return write(*args, **kwargs)

    monkeypatch.setattr(database, "write", counted)
    jobs.sweep_sessions(database)
    assert waiting(database, client.tenant.id) == 0 and len(stored_events(database, client.tenant.id)) == 250
    assert len(transactions) >= 3  # two batches, then the sweep itself
