"""The lines of a batch file and the envelope of each record (batch-api.md §4): what needs no database."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import orjson

from opencdp.core import json_input
from opencdp.core.batch.batches import batch_ref
from opencdp.core.errors import ApiError, InvalidField

CHUNK = 64 * 1024
BOM = b"\xef\xbb\xbf"
ENVELOPE = ("ref", "schema", "mode", "value")


@dataclass(frozen=True)
class Outcome:
    """What became of one record: its code and message for the log, the ref the log shows, and whether it
    was skipped as already applied. Only 2xx codes leave effects behind."""

    code: str
    message: str
    shown_ref: str
    skipped: bool = False

    @property
    def ok(self) -> bool:
        return self.code == "200"


@dataclass(frozen=True)
class Envelope:
    """A record whose envelope is sound: its ref (lower case), the line's digest (with the ref, what makes
    a record "already applied"), its schema and mode, and the line itself.

    The value is read from the line each time it is asked for, not kept: envelopes cross from the process
    that checks a chunk to the one that applies it, and most records are applied from their checked values.
    """

    ref: str
    digest: str
    shown_ref: str
    schema: str
    mode: str
    line: bytes

    @property
    def value(self) -> Any:
        return orjson.loads(self.line.removeprefix(BOM)).get("value")

    def outcome(self, code: str = "200", message: str = "", *, skipped: bool = False) -> Outcome:
        return Outcome(code, message, self.shown_ref, skipped)

    def failure(self, error: Exception) -> Outcome:
        """How a record that raised is logged, on every path: a rule it broke with that rule's status and
        words; anything unforeseen as an internal error, so that the file goes on."""
        if isinstance(error, ApiError):
            return self.outcome(str(error.status), error.message)
        return self.outcome("500", "Internal error")


def lines(stream: IO[bytes], limit: int) -> Iterator[bytes | None]:
    """Every line without its terminator; None for a line over the limit, which is skipped unread.

    Each block is split once: a line costs the same whatever its length, so a file of millions of blank
    lines is read at the speed of any other."""
    pending = b""
    oversize = False
    while chunk := stream.read(CHUNK):
        parts = (pending + chunk).split(b"\n")
        pending = parts.pop()
        for line in parts:
            if oversize:
                oversize = False
                yield None
                continue
            line = line.rstrip(b"\r")
            yield None if len(line) > limit else line
        if len(pending) > limit:
            oversize, pending = True, b""
    if pending or oversize:
        yield None if oversize or len(pending.rstrip(b"\r")) > limit else pending.rstrip(b"\r")


def read_line(line: bytes | None, limit: int) -> tuple[Envelope, Any] | Outcome:
    """The envelope of a line's record with its value (read once here, for the checks that follow), or the
    outcome of a line that is no record (§4.1's order of checks)."""
    if line is None:
        return Outcome("400", f"Line exceeds the maximum length of {limit} bytes", "null")
    try:
        record = orjson.loads(line.removeprefix(BOM))
    except orjson.JSONDecodeError:
        return Outcome("400", "Failed to parse import line", "null")
    if not isinstance(record, dict):
        return Outcome("400", "Failed to parse import line", "null")
    try:
        json_input.check(record, line)
    except InvalidField as error:
        return Outcome("400", f"Validation error: Attribute {error.field} is invalid ({error.reason})", "null")
    shown_ref = record["ref"] if isinstance(record.get("ref"), str) else "null"
    for key in record:
        if key not in ENVELOPE:
            return Outcome("400", f"Validation error: Attribute {key} is not supported", shown_ref)
    ref = batch_ref(record.get("ref"))
    if ref is None:
        what = "is required" if record.get("ref") is None else "is invalid (must be a UUID)"
        return Outcome("400", f"Validation error: Attribute ref {what}", shown_ref)
    for key in ("schema", "mode"):
        if not isinstance(record.get(key), str):
            return Outcome("400", f"Validation error: Attribute {key} is invalid (must be a string)", shown_ref)
    envelope = Envelope(ref, hashlib.sha256(line).hexdigest(), shown_ref, record["schema"], record["mode"], line)
    return envelope, record.get("value")
