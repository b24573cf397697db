"""The segments API (segments-exports.md §2, §3) over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from conftest import assert_error
from opencdp.core.segments.builds import Builder, queue_scheduled
from opencdp.store.database import Database
from opencdp.store.tables import segment_builds, segment_members

IE = {"match": {"attr": "guest.country", "op": "equals", "value": "IE"}}


def guest(client: Any, **fields: Any) -> str:
    response = client.post("/v2.1/guests", json={"guestType": "customer", **fields})
    assert response.status_code == 201, response.text
    return response.json()["ref"]


def segment(client: Any, definition: dict[str, Any] = IE, name: str = "Irish") -> dict[str, Any]:
    response = client.post("/opencdp/v1/segments", json={"name": name, "definition": definition})
    assert response.status_code == 201, response.text
    return response.json()


def build(client: Any, database: Database, ref: str) -> dict[str, Any]:
    queued = client.post(f"/opencdp/v1/segments/{ref}/build")
    assert queued.status_code == 202, queued.text
    assert queued.json()["status"] == "pending"
    Builder(database).run_available()
    return client.get(queued.json()["href"].replace("http://testserver", "")).json()


def test_create_read_list_and_replace(client):
    created = segment(client)
    assert created["status"] == "draft" and created["version"] == 1 and created["lastBuild"] is None
    assert client.get(f"/opencdp/v1/segments/{created['ref']}").json()["name"] == "Irish"
    listed = client.get("/opencdp/v1/segments", params={"q": "iri"}).json()
    assert listed["total"] == 1 and listed["items"][0]["ref"] == created["ref"]
    assert client.get("/opencdp/v1/segments", params={"status": "live"}).json()["total"] == 0
    same = client.put(f"/opencdp/v1/segments/{created['ref']}", json={"name": "Irish!", "definition": IE}).json()
    assert same["version"] == 1 and same["name"] == "Irish!"
    other = {"match": {"attr": "guest.country", "op": "equals", "value": "GB"}}
    changed = client.put(f"/opencdp/v1/segments/{created['ref']}", json={"name": "GB", "definition": other}).json()
    assert changed["version"] == 2


def test_validation_errors_point_at_the_path(client):
    bad = {"match": {"all": [{"attr": "guest.country", "op": "equals", "value": "IE"},
                             {"entity": "order", "where": {"all": [{"attr": "order.status", "op": "gt", "value": 1}]}}]}}  # fmt: skip
    response = client.post("/opencdp/v1/segments", json={"name": "x", "definition": bad})
    assert_error(response, 400, "definition.match.all[1].where.all[0].op: comparator 'gt' is not valid for type enum")
    response = client.post(
        "/opencdp/v1/segments/validate", json={"definition": {"match": {"attr": "order.ext.giftwrap", "op": "isEmpty"}}}
    )
    assert_error(response, 400, "definition.match.attr: unknown attribute 'order.ext.giftwrap'")
    two = {"match": {"attr": "guest.country", "entity": "order"}}
    assert_error(client.post("/opencdp/v1/segments/validate", json={"definition": two}), 400,
                 "definition.match: expected exactly one of all, any, not, attr, entity")  # fmt: skip
    nested = {"match": {"entity": "order", "where": {"entity": "event"}}}
    assert_error(client.post("/opencdp/v1/segments/validate", json={"definition": nested}), 400,
                 "definition.match.where.entity: 'event' cannot be nested here")  # fmt: skip
    missing = {"match": {"attr": "guest.country", "op": "equals"}}
    assert_error(client.post("/opencdp/v1/segments/validate", json={"definition": missing}), 400,
                 "definition.match.value: value is required")  # fmt: skip
    money = {"match": {"entity": "order", "measure": {"fn": "sum", "attr": "order.referenceId"}}}
    assert_error(client.post("/opencdp/v1/segments/validate", json={"definition": money}), 400,
                 "definition.match.measure.attr: measure 'sum' needs a numeric attribute")  # fmt: skip
    retired = {"guestTypes": ["retired"]}
    response = client.post("/opencdp/v1/segments/validate", json={"definition": retired})
    assert response.status_code == 400 and "guestTypes[0]" in response.json()["message"]
    deep: dict[str, Any] = {"attr": "guest.country", "op": "isEmpty"}
    for _ in range(9):
        deep = {"not": deep}
    assert client.post("/opencdp/v1/segments/validate", json={"definition": {"match": deep}}).status_code == 400
    many = {"match": {"any": [{"attr": "guest.country", "op": "isEmpty"}] * 100 + []}}
    assert client.post("/opencdp/v1/segments/validate", json={"definition": many}).status_code == 200
    wide = {"match": {"all": [{"any": [{"attr": "guest.country", "op": "isEmpty"}] * 100}] * 3}}
    assert client.post("/opencdp/v1/segments/validate", json={"definition": wide}).status_code == 400
    listed = [{"attr": f"guest.ext.k{n}", "op": "isEmpty"} for n in range(30)]
    response = client.post("/opencdp/v1/segments/validate", json={"definition": {"match": {"all": listed}}})
    assert len(response.json()["developerMessage"].split("; ")) == 20
    assert client.post("/opencdp/v1/segments", json={"name": "x"}).status_code == 400
    assert client.post("/opencdp/v1/segments", json={"name": "x", "definition": IE, "color": 1}).status_code == 400
    assert client.get("/opencdp/v1/segments").json()["total"] == 0


def test_builds_members_delta_and_statistics(client, database):
    ann = guest(client, firstName="Ann", country="IE", emails=["ann@example.com"])
    guest(client, firstName="Bob", country="DE")
    created = segment(client)
    ref = created["ref"]
    assert_error(client.get(f"/opencdp/v1/segments/{ref}/members"), 409, "The segment has not been built yet.")
    first = build(client, database, ref)
    assert first["status"] == "success" and first["trigger"] == "manual"
    assert (first["size"], first["totalGuests"], first["percentOfGuests"]) == (1, 2, 50.0)
    assert (first["added"], first["removed"], first["changePercent"]) == (1, 0, None)
    assert first["sample"][0]["ref"] == ann and first["sample"][0]["email"] == "ann@example.com"
    members = client.get(f"/opencdp/v1/segments/{ref}/members").json()
    assert members["total"] == 1 and members["items"][0]["ref"] == ann and members["limit"] == 100

    cy = guest(client, firstName="Cy", country="IE")
    client.put(f"/v2.1/guests/{ann}", json={"guestType": "customer", "firstName": "Ann", "country": "GB"})
    dee = guest(client, firstName="Dee", country="IE")
    second = build(client, database, ref)
    assert (second["size"], second["added"], second["removed"], second["changePercent"]) == (2, 2, 1, 100.0)
    assert second["previousBuildRef"] == first["ref"]
    added = client.get(f"/opencdp/v1/segments/{ref}/members", params={"change": "added", "expand": "true"}).json()
    assert {m["ref"] for m in added["items"]} == {cy, dee} and added["items"][0]["firstName"] in ("Cy", "Dee")
    removed = client.get(f"/opencdp/v1/segments/{ref}/members", params={"change": "removed"}).json()
    assert [m["ref"] for m in removed["items"]] == [ann]
    old = client.get(f"/opencdp/v1/segments/{ref}/members", params={"build": first["ref"]}).json()
    assert [m["ref"] for m in old["items"]] == [ann]

    client.delete(f"/v2.1/guests/{dee}")
    third = build(client, database, ref)
    assert (third["size"], third["removed"]) == (1, 1)
    listed = client.get(f"/opencdp/v1/segments/{ref}/builds").json()
    assert [b["ref"] for b in listed["items"]] == [third["ref"], second["ref"], first["ref"]]
    assert client.get(f"/opencdp/v1/segments/{ref}").json()["lastBuild"]["ref"] == third["ref"]
    assert client.get(f"/opencdp/v1/segments/{ref}/members", params={"limit": 5}).status_code == 400


def test_member_sets_beyond_seven_builds_are_gone(client, database):
    guest(client, country="IE")
    ref = segment(client)["ref"]
    built = [build(client, database, ref) for _ in range(8)]
    response = client.get(f"/opencdp/v1/segments/{ref}/members", params={"build": built[0]["ref"]})
    assert response.status_code == 410
    assert client.get(f"/opencdp/v1/segments/{ref}/builds/{built[0]['ref']}").json()["size"] == 1


def test_a_build_requested_twice_is_one_build(client):
    ref = segment(client)["ref"]
    first = client.post(f"/opencdp/v1/segments/{ref}/build").json()
    assert client.post(f"/opencdp/v1/segments/{ref}/build").json()["ref"] == first["ref"]


def test_lifecycle_and_nightly_builds(client, database):
    ref = segment(client)["ref"]
    live = client.post(f"/opencdp/v1/segments/{ref}/start").json()
    assert live["status"] == "live" and live["nextBuildAt"].endswith("T00:00:00.000Z")
    assert client.get(f"/opencdp/v1/segments/{ref}/builds").json()["items"][0]["trigger"] == "start"
    assert client.post(f"/opencdp/v1/segments/{ref}/start").status_code == 409
    other = {"name": "x", "definition": {"match": {"attr": "guest.country", "op": "isEmpty"}}}
    assert client.put(f"/opencdp/v1/segments/{ref}", json=other).status_code == 409
    assert client.put(f"/opencdp/v1/segments/{ref}", json={"name": "renamed", "definition": IE}).status_code == 200
    assert client.delete(f"/opencdp/v1/segments/{ref}").status_code == 409
    Builder(database).run_available()

    # the slot passes (twice over, while nobody ran): one catch-up build, then the next slot
    later = datetime.now(UTC) + timedelta(days=3)
    with database.write() as conn:
        assert queue_scheduled(conn, later) >= 1
    with database.write() as conn:
        queue_scheduled(conn, later)
    builds = client.get(f"/opencdp/v1/segments/{ref}/builds").json()["items"]
    assert [b["trigger"] for b in builds] == ["schedule", "start"]

    assert client.patch("/opencdp/v1/settings", json={"segmentBuildSchedule": "bad"}).status_code == 400
    assert client.patch("/opencdp/v1/settings", json={"segmentBuildSchedule": "30 2 * * 1"}).json() == {
        "segmentBuildSchedule": "30 2 * * 1"
    }
    assert client.get(f"/opencdp/v1/segments/{ref}").json()["nextBuildAt"].endswith("T02:30:00.000Z")
    paused = client.post(f"/opencdp/v1/segments/{ref}/pause").json()
    assert paused["status"] == "paused" and paused["nextBuildAt"] is None
    assert client.post(f"/opencdp/v1/segments/{ref}/pause").status_code == 409
    with database.read() as conn:
        build_ids = [
            row.id for row in conn.execute(select(segment_builds.c.id).where(segment_builds.c.segment_ref == ref))
        ]
    assert client.delete(f"/opencdp/v1/segments/{ref}").status_code == 204
    assert client.get(f"/opencdp/v1/segments/{ref}").status_code == 404
    with database.read() as conn:  # its member sets went with it
        left = select(func.count()).select_from(segment_members).where(segment_members.c.build_id.in_(build_ids))
        assert build_ids and conn.execute(left).scalar_one() == 0


def test_preview_catalogue_and_distribution(client):
    guest(client, country="IE", firstName="Ann")
    guest(client, country="ie")
    guest(client, country="DE")
    client.post("/v2.1/guests", json={"guestType": "visitor"})
    preview = client.post("/opencdp/v1/segments/preview", json={"definition": IE}).json()
    assert (preview["size"], preview["totalGuests"], preview["percentOfGuests"]) == (2, 4, 50.0)
    assert len(preview["sample"]) == 2 and "durationMs" in preview and preview["asOf"].endswith("Z")
    catalogue = client.get("/opencdp/v1/segments/attributes").json()["items"]
    status = next(a for a in catalogue if a["attr"] == "order.status")
    assert status["type"] == "enum" and "PURCHASED" in status["values"] and "in" in status["comparators"]
    shown = client.get("/opencdp/v1/segments/attributes/guest.country/distribution").json()
    assert shown["items"][0] == {"value": "ie", "guests": 2}
    assert client.get("/opencdp/v1/segments/attributes/guest.age/distribution").status_code == 400


def test_tenants_and_credentials(client, other, anonymous):
    ref = segment(client)["ref"]
    for method, path in (("get", ""), ("put", ""), ("delete", ""), ("post", "/start"), ("post", "/build"),
                         ("get", "/builds"), ("get", "/members")):  # fmt: skip
        kwargs = {"json": {"name": "x", "definition": IE}} if method == "put" else {}
        assert getattr(other, method)(f"/opencdp/v1/segments/{ref}{path}", **kwargs).status_code == 404
        assert getattr(anonymous, method)(f"/opencdp/v1/segments/{ref}{path}", **kwargs).status_code == 401
    assert other.get("/opencdp/v1/segments").json()["total"] == 0
    assert anonymous.post("/opencdp/v1/segments/preview", json={"definition": IE}).status_code == 401


def test_a_statement_past_its_deadline_is_cancelled(database):
    from sqlalchemy import text

    from opencdp.store.database import DeadlineExceeded, deadline

    slow = (
        "SELECT pg_sleep(2)"
        if not database.is_sqlite
        else (
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50000000) SELECT count(*) FROM n"
        )
    )
    with pytest.raises(DeadlineExceeded), database.read() as conn, deadline(conn, 0.05):
        conn.execute(text(slow))
    with database.read() as conn, deadline(conn, 5):  # a quick statement is left alone
        assert conn.execute(text("SELECT 1")).scalar() == 1


def test_a_preview_past_a_minute_is_a_503(client, monkeypatch):
    from opencdp.api import segments as segment_api
    from opencdp.store.database import DeadlineExceeded

    def too_slow(*_args: Any) -> Any:
        raise DeadlineExceeded

    monkeypatch.setattr(segment_api.builds, "preview", too_slow)
    assert_error(client.post("/opencdp/v1/segments/preview", json={"definition": IE}), 503, "The preview took too long")
