"""The journal's applier decides a batch of entries against rows it read once (core/stream/working.py).
Whatever the batch size, the effects are those of applying the entries one at a time: merges, switches,
closes and checkouts in the middle of a batch change what its later entries see. On SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from opencdp.core.stream import journal
from opencdp.store.tables import browsers, events, guests, orders, sessions
from test_stream import Browser

PHONE = {"item_id": "SKU_1", "type": "MOBILE", "name": "Phone", "price": 30.6, "quantity": 1}


def identify(email: str) -> dict[str, Any]:
    return {"identifiers": [{"provider": "email", "id": email}]}


def journeys(client) -> list[Browser]:
    """Six browsers whose events interleave, so that each kind of change lands between others' events."""
    team = [Browser(client) for _ in range(6)]
    alice, merged, bought, switched, closed, paid = team
    steps: list[tuple[Browser, str, dict[str, Any]]] = [
        (alice, "IDENTITY", identify("alice@example.com")),  # a customer
        (merged, "VIEW", {}),
        (merged, "IDENTITY", identify("ALICE@example.com")),  # a visitor merged into alice
        (bought, "ADD", {"product": PHONE}),
        (merged, "VIEW", {}),  # now alice's
        (bought, "ADD_CONTACTS", {"contact": {"email": "alice@example.com", "firstname": "A"}}),
        (switched, "IDENTITY", identify("bob@example.com")),  # a second customer
        (bought, "CONFIRM", {"product": [{"item_id": "SKU_1"}]}),
        (switched, "VIEW", {}),
        (bought, "CHECKOUT", {"reference_id": "B-1", "status": "PURCHASED"}),  # merges the visitor into alice
        (switched, "IDENTITY", identify("alice@example.com")),  # a switch: bob's session closes
        (bought, "VIEW", {}),
        (switched, "VIEW", {}),
        (closed, "VIEW", {}),
        (closed, "FORCE_CLOSE", {}),
        (closed, "VIEW", {}),  # a new session
        (paid, "ADD", {"product": PHONE}),
        (paid, "ADD_CONTACTS", {"contact": {"email": "pat@example.com"}}),
        (paid, "CONFIRM", {"product": [{"item_id": "SKU_1"}]}),
        (paid, "CHECKOUT", {"reference_id": "P-1", "status": "PENDING"}),
        (paid, "PAYMENT", {"pay_type": "Card"}),
        (alice, "VIEW", {}),
        (merged, "ADD", {"product": PHONE}),
        (merged, "CLEAR_CART", {}),
    ]
    for browser, kind, fields in steps:
        browser.send(kind, **fields)
    return team


def outcome(database, tenant_id: int, team: list[Browser]) -> dict[str, Any]:
    """What the events did, with refs replaced by names that mean the same in every tenant: a browser by
    its place in the team, a guest by its emails (or the browser whose visitor it is), a session by its
    place in its browser's sessions."""
    with database.read() as conn:
        guest_rows = conn.execute(select(guests).where(guests.c.tenant_id == tenant_id)).mappings().all()
        browser_rows = conn.execute(select(browsers).where(browsers.c.tenant_id == tenant_id)).mappings().all()
        session_rows = conn.execute(
            select(sessions).where(sessions.c.tenant_id == tenant_id).order_by(sessions.c.started_at, sessions.c.ref)
        ).mappings().all()  # fmt: skip
        event_rows = conn.execute(
            select(events).where(events.c.tenant_id == tenant_id).order_by(events.c.created_at)
        ).mappings().all()  # fmt: skip
        order_rows = conn.execute(select(orders).where(orders.c.tenant_id == tenant_id)).mappings().all()
    place = {browser.ref: index for index, browser in enumerate(team)}
    first_browser = {browser.guest: index for index, browser in enumerate(team)}

    def guest(ref: str | None) -> str:
        row = next(row for row in guest_rows if row["ref"] == ref)
        if row["merged_into"]:
            return "retired into " + guest(row["merged_into"])
        emails = ",".join(sorted(e.lower() for e in row["emails"] or []))
        return emails or f"visitor of {first_browser.get(ref)}"

    session_names = {}
    for row in session_rows:
        mine = [name for name in session_names.values() if name[0] == place[row["browser_ref"]]]
        session_names[row["ref"]] = (place[row["browser_ref"]], len(mine))
    session_facts = [
        (session_names[row["ref"]], guest(row["guest_ref"]), row["status"], row["close_reason"], row["cart_type"],
         row["event_count"], len(row["cart"]["lines"]) if row["cart"] else 0)
        for row in session_rows
    ]  # fmt: skip
    event_facts = [
        (place[row["browser_ref"]], row["type"], guest(row["guest_ref"]), session_names[row["session_ref"]],
         row["result"])
        for row in event_rows
    ]  # fmt: skip
    return {
        "browsers": sorted((place[row["ref"]], guest(row["guest_ref"]), row["channel"]) for row in browser_rows),
        "guests": sorted((guest(row["ref"]), row["guest_type"]) for row in guest_rows),
        "sessions": sorted(session_facts),
        "events": event_facts,
        "orders": sorted(
            (row["reference_id"], str(row["price"]), row["status"], row["payment_type"]) for row in order_rows
        ),
    }


def test_a_batch_has_the_effects_of_its_entries_applied_one_at_a_time(client, other, database):
    together, one_by_one = journeys(client), journeys(other)
    with database.write() as conn:
        assert journal.apply_tenant(conn, client.tenant.id, limit=1000) == 24
    while True:
        with database.write() as conn:
            if not journal.apply_tenant(conn, other.tenant.id, limit=1):
                break
    applied = outcome(database, client.tenant.id, together)
    assert applied == outcome(database, other.tenant.id, one_by_one)
    assert ("retired into alice@example.com", "visitor") in applied["guests"]  # the merges happened
    assert any(session[3] == "SWITCH" for session in applied["sessions"])
    assert any(session[3] == "FORCE_CLOSE" for session in applied["sessions"])
    assert [order[0] for order in applied["orders"]] == ["B-1", "P-1"]
