"""An event is accepted from what the process remembers when it can (browsers and key types are only ever
added), and its journal entry joins the rows other requests append meanwhile (store/database.py). On
SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from sqlalchemy import func, select

from opencdp.core import extensions
from opencdp.core.errors import NeedsDatabase
from opencdp.core.stream import events
from opencdp.core.values import new_ref, utcnow
from opencdp.store.tables import stream_journal
from test_stream import Browser


class Undone(Exception):
    pass


def test_a_key_type_is_remembered_once_its_claim_commits(client, database):
    tenant = client.tenant
    with pytest.raises(Undone), database.write() as conn:
        extensions.check_types(conn, tenant, "event:VIEW", {"colour": "red"})
        raise Undone  # the claim rolls back with the transaction: nothing is remembered
    with pytest.raises(NeedsDatabase):
        extensions.check_types(database.memory, tenant, "event:VIEW", {"colour": 3})
    with database.write() as conn:
        extensions.check_types(conn, tenant, "event:VIEW", {"colour": 3})  # now the first type is a number
    extensions.check_types(database.memory, tenant, "event:VIEW", {"colour": 4})
    with pytest.raises(extensions.IncorrectType):
        extensions.check_types(database.memory, tenant, "event:VIEW", {"colour": "red"})
    with pytest.raises(NeedsDatabase):  # another tenant's keys are its own
        extensions.check_types(database.memory, replace(tenant, id=-1), "event:VIEW", {"colour": 3})


def test_an_event_of_a_browser_this_process_has_seen_is_accepted_without_the_database(client, database):
    browser = Browser(client)
    body = {"type": "VIEW", "browser_id": browser.ref, "channel": "WEB", "ext": {"variant": "a"}}
    with pytest.raises(NeedsDatabase):  # the key's type is not known yet
        events.accept(database.memory, client.tenant, body, None, utcnow())
    browser.send("VIEW", ext={"variant": "b"})  # accepted through the database: the key is claimed
    entry = events.accept(database.memory, client.tenant, body, None, utcnow())
    assert entry["browserRef"] == browser.ref and entry["eventRef"]
    with pytest.raises(NeedsDatabase):
        events.accept(database.memory, client.tenant, {**body, "browser_id": "0" * 32}, None, utcnow())


def test_concurrent_appends_share_transactions_and_all_commit(client, database):
    groups: list[int] = []
    now, marker = utcnow(), f"written by a test {new_ref()}"

    def write_many(conn, rows):
        groups.append(len(rows))
        conn.execute(stream_journal.insert(), rows)

    def row(number: int) -> dict:
        return {"tenant_id": client.tenant.id, "event_ref": new_ref(), "browser_ref": new_ref(),
                "received_at": now, "body": {"n": number}, "failure": marker}  # fmt: skip

    async def append_all() -> None:
        await asyncio.gather(*(database.appending(write_many, row(number)) for number in range(50)))

    asyncio.run(append_all())
    with database.read() as conn:
        stored = conn.scalar(select(func.count()).where(stream_journal.c.failure == marker))
    assert stored == 50 and sum(groups) == 50
    if not database.is_sqlite:  # SQLite's group commit shares one COMMIT among units instead
        assert len(groups) < 50

    def failing(conn, rows):
        raise Undone

    async def fail_all() -> list:
        return await asyncio.gather(*(database.appending(failing, row(n)) for n in range(5)), return_exceptions=True)

    assert all(isinstance(outcome, Undone) for outcome in asyncio.run(fail_all()))
