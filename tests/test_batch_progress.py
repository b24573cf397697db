"""A batch's progress as lines read of the file's lines, and its failures with their line numbers, through
the OpenCDP API (the Batch API's own wire, and its log of `{ref, code, message}`, stay as the contract
says). On SQLite and PostgreSQL.
"""

from __future__ import annotations

import gzip
import uuid

from hypothesis import given
from hypothesis import strategies as st

from batch_helpers import allocate, gz, killed_at_third_commit, order, upload
from opencdp.core.batch import processor as processing
from opencdp.core.batch.lines import lines
from opencdp.jobs import processor_for


def record(schema: str, mode: str, value: object) -> dict[str, object]:
    return {"ref": str(uuid.uuid4()), "schema": schema, "mode": mode, "value": value}


@given(st.lists(st.sampled_from([b"a", b"{}", b"\n", b"\r\n", b"\r", b"  "]), max_size=40))
def test_the_line_count_is_what_the_reader_reads(tmp_path_factory, parts):
    body = b"".join(parts)
    path = tmp_path_factory.mktemp("count") / "f.gz"
    path.write_bytes(gzip.compress(body))
    with gzip.open(path, "rb") as stream, path.open("rb") as raw:
        assert processing.check_file(raw, 1 << 20) == sum(1 for _ in lines(stream, 1000))


def test_a_file_of_many_blocks_is_counted_whole(tmp_path):
    body = b"".join(b'{"n": %d, "pad": "%s"}\n' % (i, b"x" * (i % 300)) for i in range(50_000))
    path = tmp_path / "big.gz"
    path.write_bytes(gzip.compress(body))
    with path.open("rb") as raw:
        assert processing.check_file(raw, 1 << 30) == 50_000


def test_progress_and_numbered_failures(client, other, anonymous, database, settings, monkeypatch):
    monkeypatch.setattr(settings, "batch_lines_per_commit", 10)
    good = [record("order", "insert", order(f"PROG-{uuid.uuid4().hex[:6]}-{i}")) for i in range(30)]
    bad_price = record("order", "upsert", {**order("PROG-BAD"), "price": "12,50"})
    lines_ = [*good[:2], bad_price, "", *good[2:], "{broken"]  # lines 3 and 33 fail; line 4 is blank
    data = gz(lines_)
    batch = allocate(client, data)
    ref = batch["ref"]
    progress = client.get(f"/opencdp/v1/batches/{ref}/progress").json()
    assert progress == {"ref": ref, "status": "uploading", "lines": 0, "totalLines": None, "percent": None}
    upload(client, batch, data)

    killed_at_third_commit(monkeypatch, settings, database, ref)
    midway = client.get(f"/opencdp/v1/batches/{ref}/progress").json()
    assert midway["status"] == "processing" and midway["totalLines"] == 33
    assert 0 < midway["lines"] < 33 and midway["percent"] == round(midway["lines"] / 33 * 100, 1)

    monkeypatch.setattr(settings, "batch_lines_per_commit", 1000)
    processor_for(settings, database).run_available()
    done = client.get(f"/opencdp/v1/batches/{ref}/progress").json()
    assert done == {"ref": ref, "status": "error", "lines": 33, "totalLines": 33, "percent": 100.0}

    failures = client.get(f"/opencdp/v1/batches/{ref}/failures").json()
    assert failures["total"] == 2
    assert [(f["line"], f["ref"], f["code"]) for f in failures["items"]] == [
        (3, bad_price["ref"], "400"),
        (33, "null", "400"),
    ]
    assert failures["items"][0]["message"].startswith("Validation error: Attribute value.price is invalid")
    paged = client.get(f"/opencdp/v1/batches/{ref}/failures", params={"offset": 1, "limit": 10}).json()
    assert [f["line"] for f in paged["items"]] == [33]

    for path in (f"/opencdp/v1/batches/{ref}/progress", f"/opencdp/v1/batches/{ref}/failures"):
        assert other.get(path).status_code == 404
        assert anonymous.get(path).status_code == 401
    unknown = client.get(f"/opencdp/v1/batches/{uuid.uuid4()}/progress")
    assert unknown.status_code == 404 and unknown.json()["message"] == "Batch not found"
    assert client.get(f"/opencdp/v1/batches/{ref}/failures", params={"limit": 5}).status_code == 400
