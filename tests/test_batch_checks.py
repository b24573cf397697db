"""Lines checked a chunk ahead by a helper process: the same results as checked in place, a helper that
dies is replaced by checking in place, no helper outlives its processor, and a batch of many chunks
ends the same with the helper as without it."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
import uuid
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select

from batch_helpers import run_batch
from opencdp.core.batch import checks
from opencdp.core.batch.checks import ChunkChecker, check_lines
from opencdp.demo import order_records
from opencdp.store.tables import orders

LIMIT = 1_048_576


def numbered_lines(count: int, seed: int) -> list[tuple[int, bytes | None]]:
    lines = [r if isinstance(r, bytes) else orjson.dumps(r) for r in order_records(count, bad_share=0.2, seed=seed)]
    guest = {"ref": str(uuid.UUID(int=seed)), "schema": "guest", "mode": "upsert", "value": {"guestType": "visitor"}}
    delete = {"ref": str(uuid.UUID(int=seed + 1)), "schema": "guest", "mode": "delete", "value": {"email": "d@x.io"}}
    # blank lines, a guest upsert, a record applied alone, a line over the limit
    lines[3:3] = [b"", b"   ", orjson.dumps(guest), orjson.dumps(delete), None]
    return list(enumerate(lines))


def chunks_of(numbered: list[Any], size: int) -> list[list[Any]]:
    return [numbered[start : start + size] for start in range(0, len(numbered), size)]


def comparable(checked: list[checks.Checked]) -> list[Any]:
    """Checked lines as plain data: envelopes, outcomes and parsed values compared field by field."""
    return [(number, type(item).__name__, dataclasses.asdict(item)) for number, item in checked]


def test_the_helper_checks_as_the_processor_would_in_place(monkeypatch):
    numbered = numbered_lines(120, seed=3)
    chunks = chunks_of(numbered, 25)
    sent: list[int] = []
    original = ChunkChecker._send
    monkeypatch.setattr(ChunkChecker, "_send", lambda self, chunk: sent.append(chunk[0][0]) or original(self, chunk))
    with ChunkChecker(True, LIMIT) as checker:
        ahead = list(checker.ahead(chunks))
        assert checker.process is not None, "a file of several chunks started a helper"
    assert sent == [chunk[0][0] for chunk in chunks[1:]], "every chunk but the first went to the helper"
    assert [chunk for chunk, _ in ahead] == chunks, "chunks come back in file order"
    assert [comparable(checked) for _, checked in ahead] == [comparable(check_lines(c, LIMIT)) for c in chunks]
    kinds = {kind for _, checked in ahead for _, kind, _ in comparable(checked)}
    assert kinds == {"Entry", "GuestEntry", "Envelope", "Outcome"}


def test_one_chunk_starts_no_helper():
    numbered = numbered_lines(10, seed=4)
    with ChunkChecker(True, LIMIT) as checker:
        [(_chunk, checked)] = list(checker.ahead([numbered]))
        assert checker.process is None
    assert comparable(checked) == comparable(check_lines(numbered, LIMIT))


def test_a_helper_that_dies_is_replaced_by_checking_in_place(caplog):
    numbered = numbered_lines(90, seed=5)
    chunks = chunks_of(numbered, 20)
    results = []
    with ChunkChecker(True, LIMIT) as checker:
        for index, (_chunk, checked) in enumerate(checker.ahead(chunks)):
            results.append(comparable(checked))
            if index == 1:
                assert checker.process is not None
                checker.process.kill()
    assert results == [comparable(check_lines(c, LIMIT)) for c in chunks]
    assert "checked in place" in caplog.text


HOLDER = """
import sys, orjson
from opencdp.core.batch.checks import ChunkChecker
line = orjson.dumps({"ref": "6f0c2d1e-0000-4000-8000-000000000001", "schema": "guest", "mode": "upsert", "value": {}})
checker = ChunkChecker(True, 1000)
chunks = checker.ahead([[(0, line)], [(1, line)], [(2, line)]])
next(chunks)
print(checker.process.pid, flush=True)
sys.stdin.read()
"""


def test_no_helper_outlives_a_killed_processor():
    holder = subprocess.Popen([sys.executable, "-c", HOLDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert holder.stdout is not None
    helper = int(holder.stdout.readline())
    os.kill(helper, 0)  # alive while its processor is
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    deadline = time.monotonic() + 10
    while _alive(helper):
        assert time.monotonic() < deadline, "the helper outlived its processor"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        finished, _ = os.waitpid(pid, os.WNOHANG)  # our grandchild is reaped by init, not us: ECHILD
    except ChildProcessError:
        finished = 0
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z" and not finished
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("ahead", [True, False], ids=["helper", "in-place"])
def test_a_batch_of_many_chunks_ends_the_same_with_or_without_the_helper(client, database, settings, ahead):
    settings = settings.model_copy(update={"batch_lines_per_commit": 7, "batch_check_ahead": ahead})
    prefix = f"CHK{uuid.uuid4().hex[:6]}"
    lines = list(order_records(60, bad_share=0.1, seed=9, prefix=prefix))
    status = run_batch(client, database, settings, lines)
    good = sum(isinstance(line, dict) for line in lines)
    assert status["statistics"]["totalRecords"] == len(lines)
    assert (status["statistics"]["successfulRecords"], status["statistics"]["failedRecords"]) == (
        good,
        len(lines) - good,
    )
    with database.read() as conn:
        stored = conn.execute(
            select(func.count()).where(orders.c.tenant_id == client.tenant.id, orders.c.reference_id.like(f"{prefix}%"))
        ).scalar_one()
    assert stored == good


def test_a_helper_that_died_is_stopped_without_an_error():
    """A chunk sent to a helper that has died stays in the pipe's buffer; closing the pipe must not raise
    (a processor killed mid-file would otherwise report a broken pipe instead of what stopped it)."""
    checker = ChunkChecker(helper=True, limit=1_048_576)
    assert checker._send([(0, b"{}")])
    assert checker.sending is not None and checker.process is not None
    checker.sending.join()
    checker.process.kill()
    checker.process.wait()
    checker._send([(1, b"{}")])
    checker.sending.join()
    checker._stop()
    assert checker.process is None
