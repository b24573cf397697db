"""Every per-record result of batch-api.md §7, word for word: one file whose lines meet each of them.

Successes are not logged (§7), so only their code is compared; every failure's message is compared whole.
"""

from __future__ import annotations

import orjson

from batch_helpers import apply, order, read_log, record, run_batch
from opencdp.core.batch import records

AT = "2025-03-07T16:15:11.000Z"


def _open_session(client, email: str) -> None:
    """A guest holding `email` whose Stream session is still open."""
    key = client.tenant.client_key
    browser = client.get("/v1.2/browser/create.json", params={"client_key": key}).json()
    identity = {"type": "IDENTITY", "browser_id": browser["ref"], "client_key": key,
                "identifiers": [{"provider": "email", "id": email}]}  # fmt: skip
    assert client.post("/v1.2/events", json=identity).status_code == 201


def _guests_sharing(client, email: str) -> None:
    """Two guests holding one address (`POST /v2.1/guests` never de-duplicates)."""
    for _ in range(2):
        assert client.post("/v2.1/guests", json={"guestType": "customer", "emails": [email]}).status_code == 201


def _line(schema: str, mode: str, value: object) -> bytes:
    return orjson.dumps(record(schema, mode, value))  # type: ignore[arg-type]


def test_each_per_record_result_in_the_spec_s_words(client, database, monkeypatch):
    _open_session(client, "open@example.com")
    _guests_sharing(client, "twice@example.com")
    _guests_sharing(client, "both@example.com")
    ext51 = {"name": "ext", **{f"k{n}": n for n in range(51)}}
    no_currency = {k: v for k, v in order("M-5").items() if k != "currencyCode"}
    expected: list[tuple[bytes, str, str]] = [
        (b"{not json", "400", "Failed to parse import line"),
        (_line("order", "insert", order("M-1")), "200", ""),
        (_line("order", "insert", order("M-2", foo=1)), "400", "Validation error: Attribute value.foo is not supported"),
        (_line("order", "upsert", {"referenceId": "M-3", "orderedAt": AT, "status": "REFUNDED", "price": "12,50"}),
         "400", "Validation error: Attribute value.price is invalid (must be a number)"),
        (_line("order", "insert", no_currency), "400", "Validation error: Attribute value.currencyCode is required"),
        (_line("order", "insert", order("M-6", extensions=[ext51])),
         "400", "Validation error: Attribute value.extensions is invalid (at most 50 attributes)"),
        (_line("order", "insert", order("M-7", extensions=[{"name": "ext", "giftWrap": "yes"}])),
         "400", "Validation error: Attribute value.extensions[0].giftWrap is invalid (Incorrect data type)"),
        (_line("order", "insert", order("M-8", contact={"firstName": "Ann"})), "400", "Identity information missing"),
        (_line("guest", "upsert", {"identifiers": [{"provider": "LOYALTY", "id": "L-1"}]}),
         "400", "Not enough identifying information"),
        (_line("guest", "upsert", {"email": "g1@example.com", "extensions": [{"name": "ext", "tier": "gold"},
                                                                            {"name": "ext1", "tier": "x"}]}),
         "400", "Validation error: Attribute value.extensions[1].tier is invalid (already exists in data extension ext)"),
        (_line("guest", "upsert", {"email": "g1@example.com"}), "200", ""),
        (_line("order", "insert", order("D-1", orderedAt="2025-03-01T00:00:00.000Z")), "200", ""),
        (_line("order", "insert", order("D-1", orderedAt="2025-03-05T00:00:00.000Z")), "200", ""),
        (_line("order", "delete", {"referenceId": "D-1"}), "400",
         "More than one order exists with that referenceId, please supply the orderedAt date for the order you wish to delete."),
        (_line("order", "delete", {"referenceId": "NOPE"}),
         "404", "No order found for the provided referenceId and orderedAt attributes."),
        (_line("order", "delete", {"referenceId": "M-1"}), "200", ""),
        (_line("guest", "delete", {}), "400", "Not Enough Identifying Info"),
        (_line("guest", "delete", {"email": "nobody@example.com"}), "404", "Guest not found"),
        (_line("guest", "delete", {"email": "open@example.com"}), "403", "Action not allowed"),
        (_line("guest", "delete", {"email": "twice@example.com"}), "200", ""),
        (_line("guest", "delete", {"email": "g1@example.com"}), "200", ""),
        (_line("migration", "guest", {"migrateFrom": {}, "migrateTo": {"email": "open@example.com"}}),
         "400", "Identity information missing"),
        (_line("migration", "guest", {"migrateFrom": {"email": "both@example.com"}, "migrateTo": {"email": "open@example.com"}}),
         "409", "Identifiers belong to different guests"),
        (_line("migration", "guest", {"migrateFrom": {"email": "nobody@example.com"}, "migrateTo": {"email": "open@example.com"}}),
         "404", "Guest not found"),
        (_line("migration", "guest", {"migrateFrom": {"email": "open@example.com"}, "migrateTo": {"email": "twice@example.com"}}),
         "403", "Unable to migrate Guest with open session"),
        (_line("tracking", "insert", {}), "402", "Unsupported mode"),
    ]  # fmt: skip
    outcomes = apply(database, client.tenant, [line for line, _, _ in expected], per_commit=1000)
    got = [(outcome.code, outcome.message) for _, outcome in outcomes]
    for (line, code, message), found in zip(expected, got, strict=True):
        assert found[0] == code and (code == "200" or found[1] == message), line[:120]

    def broken(*_args: object) -> str:
        raise RuntimeError("a fault of the server's own")

    monkeypatch.setitem(records.HANDLERS, ("migration", "guest"), broken)
    [(_, outcome)] = apply(database, client.tenant, [_line("migration", "guest", {"migrateFrom": {}})], 1000)
    assert (outcome.code, outcome.message) == ("500", "Internal error")


def test_a_line_over_the_limit_is_refused_in_the_spec_s_words(client, database, settings):
    """The length is checked as the file is read, before a line is held whole (§5.2)."""
    status = run_batch(client, database, settings, ['{"ref":"' + "x" * 1_048_600 + '"}'])
    assert [(e["ref"], e["code"], e["message"]) for e in read_log(client, status)] == [
        ("null", "400", "Line exceeds the maximum length of 1048576 bytes")
    ]
