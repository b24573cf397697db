"""The Stream journal's brake (api/stream_brake.py): while a tenant's applier lags too far behind, its new
events wait, and past the wait they are refused with 503 and Retry-After, writing nothing. On SQLite and
PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from opencdp.api.stream_brake import StreamBrake
from opencdp.core.stream import journal
from opencdp.core.values import utcnow
from opencdp.store.tables import stream_journal
from test_stream import Browser


def entries(database, tenant_id: int) -> int:
    with database.read() as conn:
        return conn.scalar(select(func.count()).where(stream_journal.c.tenant_id == tenant_id))


def test_events_wait_while_the_applier_lags_and_are_refused_past_the_wait(app, client, database):
    browser = Browser(client)
    browser.send("VIEW")  # waits in the journal: nothing applies it in this test until asked
    with database.write() as conn:  # as if it had waited 5 s
        conn.execute(update(stream_journal).where(stream_journal.c.tenant_id == client.tenant.id)
                     .values(received_at=utcnow() - timedelta(seconds=5)))  # fmt: skip
    relaxed = app.state.stream_brake
    app.state.stream_brake = StreamBrake(database, max_lag=1.0, max_wait=0.2)
    try:
        refused = client.post("/v1.2/events", json={"type": "VIEW", "browser_id": browser.ref,
                                                    "client_key": client.tenant.client_key})  # fmt: skip
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        assert refused.json()["status"] == 503 and "applied more than 1 s behind" in refused.json()["error_msg"]
        assert entries(database, client.tenant.id) == 1  # the refused event left nothing behind
        other = Browser(client)  # another browser of the same tenant: held back too
        assert other.send("VIEW", expect=503)["status"] == 503
        with database.write() as conn:
            journal.apply_tenant(conn, client.tenant.id)
        app.state.stream_brake = StreamBrake(database, max_lag=1.0, max_wait=0.2)  # forgets the lag it read
        assert browser.send("VIEW")["status"] == "OK"
    finally:
        app.state.stream_brake = relaxed


def test_another_tenants_lag_does_not_hold_a_tenant_back(app, client, other, database):
    lagging = Browser(other)
    lagging.send("VIEW")
    with database.write() as conn:
        conn.execute(update(stream_journal).where(stream_journal.c.tenant_id == other.tenant.id)
                     .values(received_at=utcnow() - timedelta(seconds=5)))  # fmt: skip
    relaxed = app.state.stream_brake
    app.state.stream_brake = StreamBrake(database, max_lag=1.0, max_wait=0.2)
    try:
        assert Browser(client).send("VIEW")["status"] == "OK"
        assert lagging.send("VIEW", expect=503)["status"] == 503
    finally:
        app.state.stream_brake = relaxed
