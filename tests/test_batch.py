"""The Batch API: allocate, signed upload, status, inspect, log, and the records it applies (batch-api.md)."""

from __future__ import annotations

import gzip
import hashlib
import uuid

import orjson
import pytest

from batch_helpers import allocate, gz, killed_at_third_commit, order, read_log, record, run_batch, upload
from conftest import assert_error
from opencdp.jobs import processor_for


def test_the_whole_flow(client, database, settings):
    data = gz([record("order", "insert", order("ORD-1001")),
               record("order", "upsert", {"referenceId": "ORD-0999", "orderedAt": "2025-03-06T09:00:00Z", "price": "12,50"}),
               record("order", "delete", {"referenceId": "NOPE", "orderedAt": "2025-02-01T10:00:00.000Z"}),
               "{not json"])  # fmt: skip
    ref = str(uuid.uuid4()).upper()
    created = client.put(
        f"/v2/batches/{ref}", json={"checksum": hashlib.md5(data).hexdigest().upper(), "size": str(len(data))}
    )
    assert created.status_code == 201
    batch = created.json()
    assert batch["ref"] == ref.lower() and batch["size"] == len(data) and batch["status"] == {"code": "uploading"}
    assert "statistics" not in batch and created.headers["location"] == batch["href"]
    assert batch["location"]["href"].startswith(f"http://testserver/v2/batches/{ref.lower()}/upload?clientKey=")
    again = client.put(f"/v2/batches/{ref}", json={"checksum": hashlib.md5(data).hexdigest(), "size": len(data)})
    assert again.status_code == 200 and again.json()["ref"] == ref.lower()
    other = client.put(f"/v2/batches/{ref}", json={"checksum": "0" * 32, "size": len(data)})
    assert_error(other, 409, "Batch already exists with a different checksum or size")

    uploaded = upload(client, batch, data)
    assert uploaded.status_code == 200 and uploaded.content == b""
    assert uploaded.headers["etag"] == f'"{hashlib.md5(data).hexdigest()}"'
    assert client.get(f"/v2/batches/inspect/{ref}").json()["status"]["code"] == "file_uploaded"
    assert client.get(f"/v2/batches/{ref}").json()["status"]["code"] == "processing"
    assert upload(client, batch, data).status_code == 200  # a retry after a lost answer

    processor_for(settings, database).run_available()
    status = client.get(f"/v2/batches/{ref}").json()
    assert status["status"]["code"] == "error"
    stats = status["statistics"]
    assert (stats["totalRecords"], stats["successfulRecords"], stats["failedRecords"], stats["skippedRecords"]) == (
        4,
        1,
        3,
        0,
    )
    assert stats["finishedAt"] >= stats["startedAt"]
    log = read_log(client, status)
    assert [entry["code"] for entry in log] == ["400", "404", "400"]
    assert log[0]["message"] == "Validation error: Attribute value.price is invalid (must be a number)"
    assert log[1]["message"] == "No order found for the provided referenceId and orderedAt attributes."
    assert log[2] == {"ref": "null", "code": "400", "message": "Failed to parse import line"}
    [created_order] = client.get("/v2.1/orders?referenceId=ORD-1001&expand=true").json()["items"]
    assert created_order["price"] == 59.9 and created_order["cardType"] == "Visa"
    assert client.get(f"{created_order['href']}/extensions/ext").json()["giftWrap"] is False
    contact = client.get(f"{created_order['href']}/contacts?expand=true").json()["items"][0]
    assert contact["emails"] == ["ord-1001@example.com"]
    listed = client.get("/v2/batches/inspect?status=error").json()
    assert listed["totalCount"] >= 1 and listed["items"][0]["ref"] == ref.lower() and "log" in listed["items"][0]


@pytest.mark.parametrize(
    ("ref", "body", "status", "message"),
    [
        ("not-a-uuid", {"checksum": "a" * 32, "size": 1}, 400, "Invalid batch ref"),
        (None, {"size": 1}, 400, "Attribute checksum is required"),
        (
            None,
            {"checksum": "xyz", "size": 1},
            400,
            "Attribute checksum is invalid (must be 32 hexadecimal characters)",
        ),
        (None, {"checksum": "a" * 32, "size": 0}, 400, "Attribute size is invalid (must be a positive integer)"),
        (None, {"checksum": "a" * 32, "size": 52428801}, 400, "Batch file size exceeds the limit of 52428800 bytes"),
        (None, {"checksum": "a" * 32, "size": 1, "name": "x"}, 400, "Attribute name is not supported"),
    ],
)
def test_allocation_errors(client, ref, body, status, message):
    assert_error(client.put(f"/v2/batches/{ref or uuid.uuid4()}", json=body), status, message)


def test_upload_errors(client, database, settings):
    data = gz([record("order", "insert", order("UP-1"))])
    batch = allocate(client, data)
    href = batch["location"]["href"]
    assert_error(
        client.put(href.replace("signature=", "signature=0"), content=data, auth=None), 403, "Signature does not match"
    )
    assert_error(client.put(href, content=data, auth=None, headers={"Content-Md5": "AAAAAAAAAAAAAAAAAAAAAA=="}), 400,
                 "Content-Md5 does not match the uploaded bytes")  # fmt: skip
    assert client.get(f"/v2/batches/{batch['ref']}").json()["status"]["code"] == "uploading"
    wrong_size = allocate(client, data + b"x")
    assert upload(client, wrong_size, data, md5=False).status_code == 200
    corrupted = client.get(f"/v2/batches/{wrong_size['ref']}").json()["status"]
    assert corrupted == {"code": "corrupted", "message": "Size does not match"}
    assert_error(upload(client, wrong_size, data), 409, "Batch file already uploaded")
    tampered = allocate(client, data)
    same_size = bytes(len(data))
    assert upload(client, tampered, same_size, md5=False).status_code == 200
    assert client.get(f"/v2/batches/{tampered['ref']}").json()["status"]["message"] == "Checksum does not match"
    assert upload(client, batch, data).status_code == 200
    assert_error(upload(client, batch, gz([])), 409, "Batch file already uploaded")
    assert client.get(f"/v2/batches/{uuid.uuid4()}").status_code == 404


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"plain text, not gzip", "File is not a valid gzip file"),
        (gzip.compress(b"{}\n") + gzip.compress(b"{}\n"), "File must contain exactly one gzip member"),
        (gzip.compress(b"{}\n")[:-6], "File is not a valid gzip file"),
    ],
)
def test_files_rejected_whole(client, database, settings, data, message):
    batch = allocate(client, data)
    assert upload(client, batch, data).status_code == 200
    processor_for(settings, database).run_available()
    status = client.get(f"/v2/batches/{batch['ref']}").json()
    assert status["status"] == {"code": "error", "message": message}
    assert status["statistics"]["totalRecords"] == 0


def test_a_gzip_bomb_is_refused(client, database, settings):
    data = gzip.compress(b"\n" * 200_000)
    batch = allocate(client, data)
    upload(client, batch, data)
    processor_for(settings.model_copy(update={"batch_max_uncompressed_size": 100_000}), database).run_available()
    assert client.get(f"/v2/batches/{batch['ref']}").json()["status"]["message"] == (
        "Uncompressed size exceeds the limit of 100000 bytes"
    )


def test_records_apply_exactly_once_across_batches(client, database, settings):
    lines = [record("order", "insert", order(f"ONCE-{i}")) for i in range(3)]
    first = run_batch(client, database, settings, lines)
    assert first["status"]["code"] == "success" and first["statistics"]["successfulRecords"] == 3
    second = run_batch(client, database, settings, lines)
    assert second["statistics"]["skippedRecords"] == 3 and second["status"]["code"] == "success"
    changed = dict(lines[0])
    changed["value"] = order("ONCE-0", price=10, orderItems=[{**order("ONCE-0")["orderItems"][0], "price": 10}])
    third = run_batch(client, database, settings, [changed])
    assert third["statistics"]["skippedRecords"] == 0
    [stored] = client.get("/v2.1/orders?referenceId=ONCE-0").json()["items"]
    assert client.get(stored["href"]).json()["price"] == 10


def test_order_upsert_changes_only_what_is_sent(client, database, settings):
    run_batch(client, database, settings, [record("order", "insert", order("UPS-1"))])
    patch = {"referenceId": "UPS-1", "orderedAt": "2025-03-08T09:00:00Z", "status": "refunded",
             "orderItems": [{"referenceId": "UPS-1-2", "type": "PEN", "productId": "P", "name": "Pen",
                             "description": "Blue", "vendor": "V", "price": 1, "currencyCode": "EUR", "status": "OK"}]}  # fmt: skip
    status = run_batch(client, database, settings, [record("order", "upsert", patch)])
    assert status["status"]["code"] == "success", status
    [stored] = client.get("/v2.1/orders?referenceId=UPS-1&expand=true").json()["items"]
    assert (
        stored["status"] == "REFUNDED" and stored["price"] == 59.9 and stored["orderedAt"] == "2025-03-07T16:15:11.000Z"
    )
    items = client.get(f"{stored['href']}/orderItems?expand=true").json()["items"]
    assert sorted(i["referenceId"] for i in items) == ["UPS-1-1", "UPS-1-2"]


def test_order_delete_rules(client, database, settings):
    run_batch(client, database, settings, [record("order", "insert", order("DEL-1")),
                                           record("order", "insert", order("DEL-1", orderedAt="2025-06-01T00:00:00Z"))])  # fmt: skip
    status = run_batch(client, database, settings, [record("order", "delete", {"referenceId": "DEL-1"})])
    assert read_log(client, status)[0]["message"].startswith("More than one order exists with that referenceId, please")
    status = run_batch(
        client,
        database,
        settings,
        [record("order", "delete", {"referenceId": "DEL-1", "orderedAt": "2025-06-01T10:00:00Z"})],
    )
    assert status["status"]["code"] == "success"
    assert len(client.get("/v2.1/orders?referenceId=DEL-1").json()["items"]) == 1


def test_guest_records(client, database, settings):
    upsert = {"identifiers": [{"provider": "email", "id": "jane@example.com"}], "firstName": "Jane",
              "extensions": [{"name": "ext", "key": "default", "loyaltyTier": "gold"}]}  # fmt: skip
    lines = [record("guest", "upsert", upsert),
             record("guest", "upsert", {"identifiers": [{"provider": "email", "id": "JANE@example.com"}], "lastName": "Doe"}),
             record("guest", "upsert", {"firstName": "Nobody"}),
             record("guest", "insert", upsert),
             record("order", "insert", order("GST-1", contact={"email": "jane@example.com"}))]  # fmt: skip
    status = run_batch(client, database, settings, lines)
    log = read_log(client, status)
    assert [(e["code"], e["message"]) for e in log] == [
        ("400", "Identity information missing"),
        ("402", "Unsupported mode"),
    ]
    [guest] = client.get("/v2.1/guests?email=jane@example.com").json()["items"]
    shown = client.get(f"{guest['href']}?expand=true").json()
    assert (shown["firstName"], shown["lastName"], shown["guestType"]) == ("Jane", "Doe", "customer")
    assert shown["dataExtensions"]["items"][0]["loyaltyTier"] == "gold"
    assert len(client.get(f"/v2.1/orders?guestRef={guest['ref']}").json()["items"]) == 1
    deleted = run_batch(client, database, settings, [record("guest", "delete", {"email": "jane@example.com"})])
    assert deleted["status"]["code"] == "success"
    assert client.get("/v2.1/guests?email=jane@example.com").json()["items"] == []
    assert len(client.get("/v2.1/orders?referenceId=GST-1").json()["items"]) == 1
    missing = run_batch(client, database, settings, [record("guest", "gdpr_delete", {"email": "jane@example.com"})])
    assert read_log(client, missing)[0] == {
        "ref": missing_ref(missing, client),
        "code": "404",
        "message": "Guest not found",
    }


def test_a_guest_upsert_keeps_its_language_and_seen_times(client, database, settings):
    """A new guest keeps the language and the first and last seen times the record carries, and a later
    record replaces them, as it replaces any field it sends; a time in another format fails the record."""
    email = f"seen-{uuid.uuid4().hex[:8]}@example.com"
    new = {
        "email": email,
        "language": "de",
        "firstSeen": "2025-01-02T10:00:00Z",
        "lastSeen": "2025-06-01T08:30:00+02:00",
    }
    lines = [record("guest", "upsert", new),
             record("guest", "upsert", {"email": email, "lastSeen": "2025-07-01T00:00:00Z"}),
             record("guest", "upsert", {"email": email, "firstSeen": "last tuesday"})]  # fmt: skip
    status = run_batch(client, database, settings, lines)
    assert [(e["code"], e["message"]) for e in read_log(client, status)] == [
        ("400", "Validation error: Attribute value.firstSeen is invalid (not a valid value: expected an ISO 8601 "
                "date and time such as 2025-03-07T16:15:11Z)"),
    ]  # fmt: skip
    [guest] = client.get(f"/v2.1/guests?email={email}").json()["items"]
    shown = client.get(guest["href"]).json()
    assert (shown["language"], shown["firstSeen"], shown["lastSeen"]) == (
        "DE", "2025-01-02T10:00:00.000Z", "2025-07-01T00:00:00.000Z",
    )  # fmt: skip


def missing_ref(status, client):
    return read_log(client, status)[0]["ref"]


def test_guest_migration(client, database, settings):
    crm = {"identifiers": [{"provider": "CRM", "id": "A-17"}], "email": "old@example.com"}
    run_batch(client, database, settings, [record("guest", "upsert", crm),
                                           record("guest", "upsert", {"email": "jane2@example.com"})])  # fmt: skip
    move = {"migrateFrom": {"identifiers": [{"provider": "CRM", "id": "A-17"}]},
            "migrateTo": {"identifiers": [{"provider": "email", "id": "jane2@example.com"}]}}  # fmt: skip
    status = run_batch(client, database, settings, [record("migration", "guest", move)])
    assert status["status"]["code"] == "success", read_log(client, status) if "log" in status["status"] else status
    [target] = client.get("/v2.1/guests?email=jane2@example.com").json()["items"]
    source = client.get("/v2.1/guests?identifiers.provider=CRM&identifiers.id=A-17").json()["items"]
    assert [g["ref"] for g in source] == [target["ref"]]


@pytest.mark.parametrize(
    ("per_commit", "lease", "waiting", "commits"),
    [
        (1000, 60, False, [40]),  # nobody waits: the whole file in one transaction
        (15, 60, False, [15, 30, 40]),  # at most lines_per_commit, in whole chunks
        (1000, 60, True, list(range(5, 41, 5))),  # a writer waits: a commit after each chunk
        (1000, 0, False, list(range(5, 41, 5))),  # past a quarter of the lease: a commit after each chunk
    ],
    ids=["whole", "per-commit", "writer-waits", "lease"],
)
def test_a_transaction_spans_chunks_until_enough_lines_or_a_writer_waits(
    client, database, settings, monkeypatch, per_commit, lease, waiting, commits
):
    from opencdp.core.batch import processor as processing

    settings = settings.model_copy(
        update={"batch_lines_per_chunk": 5, "batch_lines_per_commit": per_commit, "batch_lease_seconds": lease}
    )
    committed: list[int] = []
    original = processing.Processor._commit

    def counted(self, *args, **kwargs):
        committed.append(original(self, *args, **kwargs))
        return committed[-1]

    monkeypatch.setattr(processing.Processor, "_commit", counted)
    monkeypatch.setattr(type(database), "others_waiting", lambda self, conn: waiting)
    prefix = f"SPAN-{uuid.uuid4().hex[:6]}"
    status = run_batch(
        client, database, settings, [record("order", "insert", order(f"{prefix}-{i}")) for i in range(40)]
    )
    assert status["status"]["code"] == "success" and status["statistics"]["successfulRecords"] == 40
    assert committed == commits
    found = client.get("/v2.1/orders", params={"referenceId": f"{prefix}-39"}).json()["items"]
    assert len(found) == 1


def test_a_killed_worker_resumes_and_applies_every_record_once(client, database, settings, monkeypatch):
    monkeypatch.setattr(settings, "batch_lines_per_commit", 10)
    lines = [record("order", "insert", order(f"CRASH-{i}")) for i in range(35)] + ["broken"]
    data = gz(lines)
    batch = allocate(client, data)
    upload(client, batch, data)
    killed_at_third_commit(monkeypatch, settings, database, batch["ref"])
    processor_for(settings, database).run_available()
    status = client.get(f"/v2/batches/{batch['ref']}").json()
    stats = status["statistics"]
    assert (stats["totalRecords"], stats["successfulRecords"], stats["failedRecords"]) == (36, 35, 1)
    assert len(read_log(client, status)) == 1
    found = [client.get(f"/v2.1/orders?referenceId=CRASH-{i}").json()["items"] for i in range(35)]
    assert all(len(items) == 1 for items in found)


def test_batches_are_invisible_to_other_tenants(client, other):
    batch = allocate(client, gz([]))
    assert other.get(f"/v2/batches/{batch['ref']}").status_code == 404
    assert other.get(f"/v2/batches/inspect/{batch['ref']}").status_code == 404
    assert other.get("/v2/batches/inspect").json()["items"] == []
    taken = other.put(f"/v2/batches/{batch['ref']}", json={"checksum": "a" * 32, "size": 5})
    assert taken.status_code == 201


def test_an_expired_upload_link_is_refused(client, database, settings):
    from datetime import timedelta

    from opencdp.core.batch import links
    from opencdp.core.values import utcnow

    data = gz([])
    batch = allocate(client, data)
    with database.write() as conn:
        key = links.secret(conn, None)
    past = utcnow().replace(microsecond=0) - timedelta(seconds=5)
    href = links.sign(
        key, "http://testserver", "PUT", f"/v2/batches/{batch['ref']}/upload", client.tenant.client_key, past
    )
    assert_error(client.put(href, content=data, auth=None), 403, "Request has expired")
    assert client.get(f"/v2/batches/{batch['ref']}").json()["status"]["code"] == "uploading"


def test_batches_past_retention_are_purged(client, database, settings):
    from datetime import timedelta

    from sqlalchemy import update

    from opencdp.core.values import utcnow
    from opencdp.store.tables import batches

    status = run_batch(client, database, settings, [record("order", "insert", order("OLD-1")), "junk"])
    assert status["status"]["code"] == "error"
    with database.write() as conn:
        conn.execute(
            update(batches).where(batches.c.ref == status["ref"]).values(created_at=utcnow() - timedelta(days=31))
        )
    processor_for(settings, database).run_available()
    assert client.get(f"/v2/batches/{status['ref']}").status_code == 404
    assert client.get(status["status"]["log"], auth=None).status_code == 404


def test_guest_delete_with_an_open_session_is_refused(client, database, settings):
    key = client.tenant.client_key
    browser = client.get("/v1.2/browser/create.json", params={"client_key": key}).json()
    identity = {"type": "IDENTITY", "browser_id": browser["ref"], "client_key": key,
                "identifiers": [{"provider": "email", "id": "open@example.com"}]}  # fmt: skip
    assert client.post("/v1.2/events", json=identity).status_code == 201
    status = run_batch(client, database, settings, [record("guest", "delete", {"email": "open@example.com"})])
    [entry] = read_log(client, status)
    assert (entry["code"], entry["message"]) == ("403", "Action not allowed")


def test_no_record_value_ever_causes_an_internal_error(client, database):
    """Whatever a record's value holds, it is applied or refused with a 4xx, never a 500."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from opencdp.core.batch.checks import check_lines
    from opencdp.core.batch.processor import apply_lines
    from opencdp.core.values import utcnow

    scalars = (
        st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False) | st.text(max_size=12)
    )
    values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                          max_leaves=6)  # fmt: skip
    base = order("FUZZ-1")
    keys = st.sampled_from([*base, "consumers", "bogus"])

    @settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.dictionaries(keys, values, max_size=5), st.sampled_from(["insert", "upsert", "delete"]),
           st.sampled_from(["order", "guest", "migration"]))  # fmt: skip
    def check(changes, mode, schema):
        value = {**base, **changes} if schema == "order" else changes
        line = orjson.dumps(record(schema, mode if schema != "migration" else "guest", value))
        try:
            with database.write() as conn:
                [(_, outcome)] = apply_lines(conn, client.tenant, check_lines([(0, line)], 1_048_576), utcnow())
                raise Rollback(outcome.code, outcome.message)
        except Rollback as outcome:
            assert outcome.code != "500", outcome.message

    check()


class Rollback(Exception):
    """Ends the fuzz transaction without keeping its effects."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def test_an_upsert_adds_only_complete_items(client, database, settings):
    run_batch(client, database, settings, [record("order", "insert", order("ADD-1"))])
    item = {"referenceId": "ADD-1-2", "type": "PEN", "productId": "P", "name": "Pen", "description": "Blue",
            "vendor": "V", "price": 2, "currencyCode": "EUR", "status": "OK", "orderedAt": "2025-03-07T17:00:00Z"}  # fmt: skip
    head = {"referenceId": "ADD-1", "orderedAt": "2025-03-07T16:15:11Z"}
    added = run_batch(client, database, settings, [record("order", "upsert", {**head, "orderItems": [item]})])
    assert added["status"]["code"] == "success"
    partial = {k: v for k, v in item.items() if k != "vendor"} | {"referenceId": "ADD-1-3"}
    refused = run_batch(client, database, settings, [record("order", "upsert", {**head, "orderItems": [partial]})])
    assert (
        read_log(client, refused)[0]["message"] == "Validation error: Attribute value.orderItems[0].vendor is required"
    )
    [stored] = client.get("/v2.1/orders?referenceId=ADD-1").json()["items"]
    items = client.get(f"{stored['href']}/orderItems?expand=true").json()["items"]
    assert sorted(i["referenceId"] for i in items) == ["ADD-1-1", "ADD-1-2"]
    assert next(i for i in items if i["referenceId"] == "ADD-1-2")["orderedAt"] == "2025-03-07T17:00:00.000Z"


def test_a_large_import_leaves_fresh_planner_statistics_on_postgresql(client, database, settings, monkeypatch):
    """Segments and exports after a large import are planned for the tables as they now are."""
    from opencdp.core.batch import processor as processing

    if database.is_sqlite:
        pytest.skip("SQLite keeps no statistics unless asked; nothing to refresh")
    monkeypatch.setattr(processing, "ANALYZE_AFTER", 3)
    with database.write() as conn:
        conn.exec_driver_sql("SELECT pg_stat_reset()")
    status = run_batch(client, database, settings, [record("order", "insert", order(f"AN-{n}")) for n in range(3)])
    assert status["status"]["code"] == "success"
    with database.read() as conn:
        analysed = conn.exec_driver_sql(
            "SELECT count(*) FROM pg_stat_user_tables WHERE relname IN ('orders', 'guest_keys', 'batch_registry') "
            "AND last_analyze IS NOT NULL"
        ).scalar()
    assert analysed == 3


def test_an_import_page_cache_is_given_back(database):
    from opencdp.store.database import page_cache

    with database.write() as conn:
        before = conn.exec_driver_sql("PRAGMA cache_size").scalar() if database.is_sqlite else None
        with page_cache(conn, 32):
            if database.is_sqlite:
                assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -32 * 1024
        if database.is_sqlite:
            assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == before


def test_a_consumer_that_names_no_items_consumes_every_item_of_a_stored_order(client, database, settings):
    """Items a REST client stored without a referenceId are all consumed by a batch consumer that names
    none (they once collapsed into one)."""
    head = {k: v for k, v in order("EVERY-1").items() if k not in ("orderItems", "contact", "extensions")}
    stored = client.post("/v2.1/orders", json={k: head[k] for k in ("referenceId", "orderedAt", "currencyCode", "price")})
    assert stored.status_code == 201, stored.text
    for name in ("Tent", "Stove"):
        item = {"type": "GEAR", "name": name, "price": 10, "currencyCode": "EUR"}
        assert client.post(f"/v2.1/orders/{stored.json()['ref']}/orderItems", json=item).status_code == 201
    consumer = {"firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.com"}
    status = run_batch(client, database, settings, [record("order", "upsert", {**head, "consumers": [consumer]})])
    assert status["status"]["code"] == "success", read_log(client, status)
    [person] = client.get(f"/v2.1/orders/{stored.json()['ref']}/consumers").json()["items"]
    used = client.get(f"/v2.1/orderConsumers/{person['ref']}/orderItems").json()
    assert len(used["items"]) == 2
    assert sorted(item["ref"] for item in used["items"]) == sorted(
        item["ref"] for item in client.get(f"/v2.1/orders/{stored.json()['ref']}/orderItems").json()["items"]
    )
