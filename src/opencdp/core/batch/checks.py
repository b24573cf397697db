"""Checking a chunk's lines, which needs no database, a chunk ahead on another core.

Reading a line and checking every field of a new order is about a third of an import's work and depends
on nothing stored. So while the processor applies one chunk, a helper process checks the next; the
applying process then only decides and writes. The rules are the same functions either way
(`lines.read_line`, `new_orders.check`): the helper changes where they run, not what they say.

The helper is a plain child process (`python -m opencdp.core.batch.checks`) reading chunks from its
stdin and writing checked lines to its stdout. It ends when its stdin closes, which is also what happens
when the processor is killed: no helper outlives its processor.
"""

from __future__ import annotations

import gc
import logging
import pickle
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from types import TracebackType
from typing import IO, Any, BinaryIO

from opencdp.core.batch import guest_upserts, new_orders
from opencdp.core.batch.lines import Envelope, Outcome, read_line

log = logging.getLogger("opencdp.batches")

Numbered = tuple[int, bytes | None]
Checked = tuple[int, Outcome | Envelope | new_orders.Entry | guest_upserts.GuestEntry]


def check_lines(numbered: Iterable[Numbered], limit: int) -> list[Checked]:
    """Each line's outcome if it is no record, its checked record if it is an order insert or upsert or a
    guest upsert, else its envelope; blank lines are no records and are left out."""
    checked: list[Checked] = []
    for number, line in numbered:
        if line is not None and not line.strip():
            continue
        read = read_line(line, limit)
        if isinstance(read, Outcome):
            checked.append((number, read))
        else:
            envelope, value = read
            entry = new_orders.check(number, envelope, value) or guest_upserts.check(number, envelope, value)
            checked.append((number, entry or envelope))
    return checked


@contextmanager
def collection_paused() -> Iterator[None]:
    """No cyclic garbage collection while a chunk is checked or applied: its thousand parsed records are
    all alive until it ends, and the collector walked them again and again (about a tenth of the time)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class ChunkChecker:
    """Checks the chunk after the one being applied, in a helper process when `helper` is set.

    The first chunk is checked in place while the helper starts, so a file of one chunk starts none. At
    most one chunk is with the helper at a time: the next is sent only once its result is read, so the
    two processes never wait on each other's full pipe. Should the helper fail, the rest is checked here.
    """

    def __init__(self, helper: bool, limit: int) -> None:
        self.helper = helper
        self.limit = limit
        self.process: subprocess.Popen[bytes] | None = None
        # Sends a chunk without holding up the processor: the first waits for the helper to start (most
        # of a second), during which the processor applies the chunk before.
        self.sending: threading.Thread | None = None

    def __enter__(self) -> ChunkChecker:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._stop()

    def ahead(self, chunks: Iterable[list[Numbered]]) -> Iterator[tuple[list[Numbered], list[Checked]]]:
        """Each chunk with its checked lines, in order, the next chunk being checked meanwhile."""
        previous: tuple[list[Numbered], list[Checked] | None] | None = None  # None: with the helper
        for chunk in chunks:
            if previous is None:
                previous = chunk, self._here(chunk)
                continue
            ready = self._collect(*previous)
            previous = (chunk, None) if self._send(chunk) else (chunk, self._here(chunk))
            yield ready
        if previous is not None:
            yield self._collect(*previous)

    def _collect(self, chunk: list[Numbered], checked: list[Checked] | None) -> tuple[list[Numbered], list[Checked]]:
        return chunk, checked if checked is not None else self._receive(chunk)

    def _here(self, chunk: list[Numbered]) -> list[Checked]:
        with collection_paused():
            return check_lines(chunk, self.limit)

    def _send(self, chunk: list[Numbered]) -> bool:
        if not self.helper:
            return False
        if self.process is None:
            try:
                self.process = subprocess.Popen(
                    [sys.executable, "-m", "opencdp.core.batch.checks"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
                )
            except OSError:
                self._give_up()
                return False
        self.sending = threading.Thread(target=_write, args=(self.process.stdin, (chunk, self.limit)), daemon=True)
        self.sending.start()
        return True

    def _receive(self, chunk: list[Numbered]) -> list[Checked]:
        assert self.process is not None and self.process.stdout is not None and self.sending is not None
        self.sending.join()
        try:
            with collection_paused():
                checked: list[Checked] = _read(self.process.stdout)
        except (OSError, EOFError, pickle.UnpicklingError):
            self._give_up()
            return self._here(chunk)
        return checked

    def _give_up(self) -> None:
        log.warning("the helper checking batch lines failed; the rest of the file is checked in place")
        self.helper = False
        self._stop()

    def _stop(self) -> None:
        if self.process is None:
            return
        process, self.process = self.process, None
        if self.sending is not None and self.sending.is_alive():
            process.kill()  # a send still waiting: the helper is not reading, and never will
            self.sending.join()
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                with suppress(OSError):  # a helper gone: what was still buffered for it is moot
                    pipe.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def serve(source: BinaryIO, sink: BinaryIO) -> None:
    """The helper: chunks in, checked lines out, until the processor closes the pipe (or dies)."""
    while True:
        try:
            chunk, limit = _read(source)
        except EOFError:
            return
        with collection_paused():
            _write(sink, check_lines(chunk, limit))


def _write(pipe: BinaryIO | None, message: object) -> None:
    """A message is its pickle's length, then the pickle: the reader takes it in one read, not in the
    small pieces `pickle.load` asks a pipe for. A helper gone is noticed by the read that follows."""
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    assert pipe is not None
    try:
        pipe.write(len(data).to_bytes(8, "big") + data)
        pipe.flush()
    except OSError:
        pass


def _read(pipe: IO[bytes]) -> Any:
    header = pipe.read(8)
    size = int.from_bytes(header, "big")
    data = pipe.read(size) if len(header) == 8 else b""
    if len(header) < 8 or len(data) < size:
        raise EOFError  # the other side is gone
    return pickle.loads(data)


if __name__ == "__main__":
    # Ctrl-C in a terminal reaches the whole process group; the helper ends with its processor's pipe.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    protocol = sys.stdout.buffer
    sys.stdout = sys.stderr  # anything printed would corrupt the messages
    serve(sys.stdin.buffer, protocol)
