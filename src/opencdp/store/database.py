"""Engines and transactions for SQLite (WAL, embedded) and PostgreSQL (psycopg 3).

Handlers hand the store a unit of work (a function of a connection) rather than holding a connection
themselves, so the store decides how to run it:

- PostgreSQL: each unit in its own transaction on a worker thread; the server runs them in parallel.
- SQLite: the units queued on an event loop are applied in **group commits** on that loop's thread: each
  unit inside its own SAVEPOINT (a failing unit rolls back alone), one COMMIT for the group, and no caller
  is answered before that COMMIT is durable. Writers of several processes take turns through a file lock,
  which wakes the next one at once instead of SQLite's sleep-and-retry busy handler. Reads run beside
  them under WAL.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread
import orjson
import psycopg
from psycopg.types.string import TextLoader
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError, OperationalError

T = TypeVar("T")
R = TypeVar("R")
Work = Callable[[Connection], T]


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _unicode_lower(value: Any) -> Any:
    """SQLite's own lower() only folds ASCII; segments compare strings in Unicode lower case."""
    return value.lower() if isinstance(value, str) else value


def normalize_url(url: str) -> str:
    """Accept the plain `postgresql://` form operators write and pick the psycopg 3 driver for it."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


class _WriterLock:
    """One writer at a time: a thread lock inside the process, a file lock across processes.

    Writers that find the lock taken say so, so that a long writer (a batch import) can commit and let
    them in: threads of this process by a count, other processes by holding a second file's lock shared
    while they wait.
    """

    def __init__(self, path: Path | None) -> None:
        self._thread_lock = threading.Lock()
        self._queued = 0
        self._queued_changed = threading.Condition()
        self._path = path
        self._fd: int | None = None
        self._queue_fd: int | None = None

    def others_waiting(self) -> bool:
        """Whether another thread or process is queued for the lock this thread holds."""
        if self._queued:
            return True
        if self._queue_fd is None:
            return False
        try:
            fcntl.flock(self._queue_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(self._queue_fd, fcntl.LOCK_UN)
        return False

    def let_queued_in(self) -> None:
        """Wait until the writers queued now have taken the lock. A long writer that committed to let them
        in calls this before taking the lock again: released locks wake their waiters, but the thread
        that released one would otherwise take it back before they run."""
        with self._queued_changed:
            self._queued_changed.wait_for(lambda: self._queued == 0)
        if self._queue_fd is not None:
            fcntl.flock(self._queue_fd, fcntl.LOCK_EX)
            fcntl.flock(self._queue_fd, fcntl.LOCK_UN)

    def try_enter(self) -> bool:
        """Take the lock only if no thread of this process and no other process holds it (the caller then
        leaves it with `__exit__`): an event loop must never wait for it."""
        if not self._thread_lock.acquire(blocking=False):
            return False
        if self._path is None:
            return True
        fd, _queue_fd = self._files(self._path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._thread_lock.release()
            return False
        return True

    def _files(self, path: Path) -> tuple[int, int]:
        if self._fd is None or self._queue_fd is None:
            self._fd = _open_lock_file(path)
            self._queue_fd = _open_lock_file(path.with_name(f"{path.name}-queue"))
        return self._fd, self._queue_fd

    def __enter__(self) -> None:
        if not self._thread_lock.acquire(blocking=False):
            with self._queued_changed:
                self._queued += 1
            try:
                self._thread_lock.acquire()
            finally:
                with self._queued_changed:
                    self._queued -= 1
                    self._queued_changed.notify_all()
        if self._path is None:
            return
        fd, queue_fd = self._files(self._path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fcntl.flock(queue_fd, fcntl.LOCK_SH)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            finally:
                fcntl.flock(queue_fd, fcntl.LOCK_UN)

    def __exit__(self, *_exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._thread_lock.release()


@contextmanager
def _released_at_end(lock: _WriterLock) -> Iterator[None]:
    """A writer lock this thread took already, released when the block ends, however it ends."""
    try:
        yield
    finally:
        lock.__exit__()


IDLE_PING_SECONDS = 5.0
_CHECKED_IN = "opencdp_checked_in"


def _refs_as_text(engine: Engine) -> None:
    """PostgreSQL keeps refs as `uuid`; every reader, SQLAlchemy's or a raw cursor's, gets them back as the
    text the rest of the code and the wire use, without building a `UUID` object per value first."""

    @event.listens_for(engine, "connect")
    def load_text(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.adapters.register_loader("uuid", TextLoader)


def _ping_when_idle(engine: Engine) -> None:
    """Ask a pooled PostgreSQL connection whether it still works only when it has lain idle a while, not
    at every checkout as `pool_pre_ping` does: under load that ping was a round trip (and a share of both
    processes' CPU) per request. A connection that breaks while in use fails its one unit; SQLAlchemy then
    drops every connection of the pool opened before the failure, so the next units connect afresh."""

    @event.listens_for(engine, "checkin")
    def checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info[_CHECKED_IN] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info.get(_CHECKED_IN, 0.0) < IDLE_PING_SECONDS:
            return
        try:
            dbapi_connection.execute("SELECT 1")
            dbapi_connection.rollback()  # the ping's implicit transaction, so that the unit begins its own
        except psycopg.Error:
            raise DisconnectionError from None  # the pool replaces the connection and checks out again


def _open_lock_file(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)


_BLOCKING_US = text(
    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE NOT granted AND pg_backend_pid() = ANY (pg_blocking_pids(pid)))"
)


class Database:
    """One engine, and the ways the core's units of work are run on it."""

    def __init__(
        self, url: str, *, sqlite_synchronous: str = "FULL", pool_size: int = 10, pool_timeout: float = 10.0
    ) -> None:
        self.url = normalize_url(url)
        parsed = make_url(self.url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        options: dict[str, Any] = {
            "json_serializer": _json_dumps,
            "json_deserializer": orjson.loads,
            "pool_size": pool_size,
            "max_overflow": pool_size,
            "pool_timeout": pool_timeout,  # then the request is refused (503, Retry-After), not kept waiting
        }
        lock_path = None
        if self.is_sqlite:
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
                lock_path = Path(f"{parsed.database}.writer")
            options["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            # PostgreSQL's JIT compiles a segment or export query for longer than the query then runs
            options["connect_args"] = {"options": "-c jit=off"}
        self.engine: Engine = create_engine(self.url, **options)
        self.memory = Memory()

        @event.listens_for(self.engine, "connect")
        def remember(_dbapi_connection: Any, record: Any) -> None:
            record.info[_MEMORY] = self.memory

        if not self.is_sqlite:
            _ping_when_idle(self.engine)
            _refs_as_text(self.engine)
        self._writer_lock = _WriterLock(lock_path)
        self._pending: dict[asyncio.AbstractEventLoop, list[tuple[Work[Any], asyncio.Future[Any]]]] = {}
        self._waiting_for_writer: set[asyncio.AbstractEventLoop] = set()
        self._appends: dict[tuple[asyncio.AbstractEventLoop, Any], list[tuple[Any, asyncio.Future[None]]]] = {}
        self._appending: set[tuple[asyncio.AbstractEventLoop, Any]] = set()
        if self.is_sqlite:
            self._configure_sqlite(sqlite_synchronous)

    def _configure_sqlite(self, synchronous: str) -> None:
        @event.listens_for(self.engine, "connect")
        def on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={synchronous}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            # a batch import's transaction may grow the log to hundreds of MB; give the disk back after it
            cursor.execute("PRAGMA journal_size_limit=67108864")
            cursor.close()
            dbapi_connection.create_function("opencdp_lower", 1, _unicode_lower, deterministic=True)

        @event.listens_for(self.engine, "begin")
        def on_begin(conn: Connection) -> None:
            immediate = conn.get_execution_options().get("opencdp_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    # --- synchronous use: the CLI, workers, tests ---------------------------------------------------

    @contextmanager
    def write(self, *, after_queued: bool = False, lock_taken: bool = False) -> Iterator[Connection]:
        """A write transaction that commits on success and leaves nothing behind on any failure.

        `after_queued`: on SQLite, the writers already queued for the writer go first (a long writer
        taking turns with them; see `others_waiting`). `lock_taken`: on SQLite, this thread took the writer
        lock already (`_WriterLock.try_enter`); it is released at the end.
        """
        if not self.is_sqlite:
            with self.engine.begin() as conn:
                yield conn
                learned = _lasting_of(conn)
            self._learn(learned)
            return
        if after_queued:
            self._writer_lock.let_queued_in()
        with _released_at_end(self._writer_lock) if lock_taken else self._writer_lock, self.engine.connect() as conn:
            conn.execution_options(opencdp_write=True)
            with conn.begin():
                yield conn
                learned = _lasting_of(conn)
            self._learn(learned)

    def _learn(self, memos: list[tuple[str, dict[Any, Any]]]) -> None:
        for name, memo in memos:
            self.memory.facts(name).update(memo)

    def others_waiting(self, conn: Connection) -> bool:
        """Whether another writer waits for the transaction `conn` holds, so that a long writer (a batch
        import) can commit early and let it in. SQLite: a writer queued for the one writer lock.
        PostgreSQL: a session blocked on a lock this transaction holds (a row, an advisory lock).
        """
        if self.is_sqlite:
            return self._writer_lock.others_waiting()
        return bool(conn.execute(_BLOCKING_US).scalar())

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    # --- asynchronous use: request handlers ---------------------------------------------------------

    async def writing(self, work: Work[T]) -> T:
        """Run a unit of work in a write transaction; return once its effects are committed."""
        if not self.is_sqlite:
            return await anyio.to_thread.run_sync(self._write_now, work)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        pending = self._pending.setdefault(loop, [])
        pending.append((work, future))
        if len(pending) == 1 and loop not in self._waiting_for_writer:
            loop.call_soon(self._commit_pending, loop)
        return await future

    async def appending(self, write_many: Callable[[Connection, list[R]], None], row: R) -> None:
        """Write a row together with the rows other requests of this process hand to the same `write_many`
        meanwhile; return once it is committed.

        PostgreSQL: a group is one transaction and one `write_many` call (one executemany or COPY) on a
        worker thread, so concurrent requests share its round trips and its COMMIT; the rows that come
        while a group is written form the next one. A failure fails the whole group. SQLite: one unit of
        the group commit (`writing`), which already shares a COMMIT between concurrent requests.
        """
        if self.is_sqlite:
            await self.writing(lambda conn: write_many(conn, [row]))
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        key = (loop, write_many)
        queued = self._appends.setdefault(key, [])
        queued.append((row, future))
        if len(queued) == 1 and key not in self._appending:
            loop.call_soon(self._append_group, key)
        await future

    def _append_group(self, key: tuple[asyncio.AbstractEventLoop, Callable[[Connection, list[Any]], None]]) -> None:
        """Write the rows queued for one `write_many` on a worker thread, then answer their callers."""
        loop, write_many = key
        group = self._appends.pop(key, [])
        if not group:
            return
        self._appending.add(key)

        def write() -> None:
            with self.write() as conn:
                write_many(conn, [row for row, _future in group])

        def written(done: asyncio.Future[None]) -> None:
            self._appending.discard(key)
            error = done.exception()
            for _row, future in group:
                if not future.cancelled():
                    if error is None:
                        future.set_result(None)
                    else:
                        future.set_exception(error)
            if self._appends.get(key):
                self._append_group(key)

        loop.run_in_executor(None, write).add_done_callback(written)

    async def reading(self, work: Work[T]) -> T:
        """Run a read-only unit of work. On SQLite it runs in place: WAL reads take microseconds."""
        if self.is_sqlite:
            return self._read_now(work)
        return await anyio.to_thread.run_sync(self._read_now, work)

    async def peeking(self, work: Work[T]) -> T:
        """A read of one statement that needs no transaction around it: on PostgreSQL it runs on an
        autocommit connection, so it costs its own round trip and no BEGIN or COMMIT."""
        if self.is_sqlite:
            return self._read_now(work)
        return await anyio.to_thread.run_sync(self._peek_now, work)

    async def reading_long(self, work: Work[T]) -> T:
        """A read that may take seconds (a segment preview): on a worker thread even on SQLite."""
        return await anyio.to_thread.run_sync(self._read_now, work)

    def _write_now(self, work: Work[T]) -> T:
        with self.write() as conn:
            return work(conn)

    def _peek_now(self, work: Work[T]) -> T:
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            return work(conn)

    def _read_now(self, work: Work[T]) -> T:
        with self.read() as conn:
            return work(conn)

    def _commit_pending(self, loop: asyncio.AbstractEventLoop) -> None:
        """Apply every unit queued on this event loop since the last group: one SAVEPOINT each, one COMMIT.

        It runs on the loop's own thread, so no second thread competes for the GIL; the requests that
        arrive while a group commits form the next group. When the writer lock is taken, by another
        thread of this process (a batch import, a CLI command) or by another process (the Stream applier,
        another server process), a worker thread waits for it instead, so the loop goes on answering
        requests meanwhile (waiting on the loop itself stopped every request of the process); once the
        thread has it, the loop applies the group, with the units queued meanwhile.
        """
        group = self._pending.pop(loop, [])
        if not group:
            return
        if self._writer_lock.try_enter():
            self._settle(group, self._apply(group, lock_taken=True))
            return
        self._waiting_for_writer.add(loop)

        def taken(done: asyncio.Future[None]) -> None:
            self._waiting_for_writer.discard(loop)
            everything = group + self._pending.pop(loop, [])  # with the units queued meanwhile
            if (error := done.exception()) is not None:
                self._settle(everything, [(False, error)] * len(everything))
                return
            self._settle(everything, self._apply(everything, lock_taken=True))

        loop.run_in_executor(None, self._writer_lock.__enter__).add_done_callback(taken)

    def _apply(
        self, group: list[tuple[Work[Any], asyncio.Future[Any]]], lock_taken: bool = False
    ) -> list[tuple[bool, Any]]:
        outcomes: list[tuple[bool, Any]] = []
        try:
            with self.write(lock_taken=lock_taken) as conn:
                for work, _future in group:
                    # Plain SQL savepoints: SQLAlchemy's nested-transaction objects cost more than the work.
                    conn.exec_driver_sql("SAVEPOINT unit")
                    try:
                        outcomes.append((True, work(conn)))
                        conn.exec_driver_sql("RELEASE SAVEPOINT unit")
                    except Exception as error:
                        conn.exec_driver_sql("ROLLBACK TO SAVEPOINT unit")
                        forget(conn)
                        conn.exec_driver_sql("RELEASE SAVEPOINT unit")
                        outcomes.append((False, error))
        except Exception as error:
            outcomes = [(False, error)] * len(group)
        return outcomes

    @staticmethod
    def _settle(group: list[tuple[Work[Any], asyncio.Future[Any]]], outcomes: list[tuple[bool, Any]]) -> None:
        for (_work, future), (ok, value) in zip(group, outcomes, strict=True):
            if future.cancelled():
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    def dispose(self) -> None:
        self.engine.dispose()


def lock(conn: Connection, name: str) -> None:
    """Serialise writers that touch the same logical key until the transaction ends.

    PostgreSQL takes a transaction-scoped advisory lock; SQLite already holds its one writer lock.
    """
    lock_all(conn, (name,))


_LOCK = text("SELECT pg_advisory_xact_lock(:k)")
_LOCKS = text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[])) AS k")


def lock_all(conn: Connection, names: Iterable[str]) -> None:
    """`lock` for many keys in one statement, in a fixed order so that two such writers cannot deadlock.
    A lock this transaction already holds is not asked for again: it is held until the transaction ends
    (or the savepoint it was taken in rolls back, which `forget`s what was held)."""
    if conn.dialect.name != "postgresql":
        return
    held = remembered(conn, "advisory_locks")
    keys = sorted({zlib.crc32(name.encode()) - 2**31 for name in names} - held.keys())
    if len(keys) == 1:
        conn.execute(_LOCK, {"k": keys[0]})
    elif keys:
        conn.execute(_LOCKS, {"keys": keys})
    held.update(dict.fromkeys(keys))


@contextmanager
def planned_each_time(conn: Connection) -> Iterator[None]:
    """PostgreSQL: the statements of this block are not prepared, so each is planned for its parameters.

    psycopg prepares a statement run five times, and PostgreSQL may then keep one generic plan for it. A
    batch import's bulk lookup (the same statement for every chunk) planned while its table was small
    kept scanning the table as it grew: seconds per chunk at 100,000 orders instead of milliseconds.
    """
    if conn.dialect.name != "postgresql":
        yield
        return
    raw = conn.connection.driver_connection
    threshold = raw.prepare_threshold  # type: ignore[union-attr]
    raw.prepare_threshold = None  # type: ignore[union-attr]
    try:
        yield
    finally:
        raw.prepare_threshold = threshold  # type: ignore[union-attr]


@contextmanager
def page_cache(conn: Connection, megabytes: int) -> Iterator[None]:
    """SQLite: a page cache of this size for the block (a bulk import's indexes stay in memory between its
    statements), given back afterwards. PostgreSQL's shared buffers are the server's own: nothing to do."""
    if conn.dialect.name != "sqlite":
        yield
        return
    default = conn.exec_driver_sql("PRAGMA cache_size").scalar_one()
    conn.exec_driver_sql(f"PRAGMA cache_size = -{megabytes * 1024}")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size = {int(default)}")


class DeadlineExceeded(Exception):
    """A statement ran past the time its caller allowed."""


@contextmanager
def deadline(conn: Connection, seconds: float) -> Iterator[None]:
    """Cancel the statements of this block that are still running after `seconds`.

    PostgreSQL enforces a transaction-local statement timeout; SQLite is interrupted by a progress handler.
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SET LOCAL statement_timeout = {max(1, int(seconds * 1000))}")
        try:
            yield
        except OperationalError as error:
            if isinstance(error.orig, psycopg.errors.QueryCanceled):
                raise DeadlineExceeded from None
            raise
        return
    raw: Any = conn.connection.driver_connection
    ends = time.monotonic() + seconds
    raw.set_progress_handler(lambda: int(time.monotonic() > ends), 10_000)
    try:
        yield
    except OperationalError:
        if time.monotonic() > ends:
            raise DeadlineExceeded from None
        raise
    finally:
        raw.set_progress_handler(None, 0)


_MEMO = "opencdp_memo"
_MEMORY = "opencdp_memory"
_LASTING_NAMES = "opencdp_lasting"


class Memory:
    """What this process has learned of one database that stays true for good: facts that committed write
    transactions read and that never change once stored (an extension key's first type). A check can be
    decided from it with no connection at all."""

    def __init__(self) -> None:
        self._facts: dict[str, dict[Any, Any]] = {}

    def facts(self, name: str) -> dict[Any, Any]:
        return self._facts.setdefault(name, {})


def memory_of(source: Connection | Memory) -> Memory:
    """The memory of the database a connection belongs to (each engine's connections carry it)."""
    if isinstance(source, Memory):
        return source
    memory: Memory = source.info[_MEMORY]
    return memory


def remembered(conn: Connection, name: str, *, lasting: bool = False) -> dict[Any, Any]:
    """A memo of values this transaction read that cannot change under it (an extension key's first type;
    the identity rules, which only `forget` after a write may change). It lives as long as the transaction.

    `lasting`: the values never change once committed, so when a write transaction commits, what it
    remembered joins the database's `Memory`. Only then: a value read inside a transaction may be its own,
    and gone again if it rolls back.
    """
    transaction = conn.get_transaction()
    if transaction is None:  # outside a transaction nothing stays true for long: remember nothing
        return {}
    held: tuple[Any, dict[str, Any]] | None = conn.info.get(_MEMO)
    if held is None or held[0] is not transaction:
        held = (transaction, {})
        conn.info[_MEMO] = held
    memo: dict[Any, Any] = held[1].setdefault(name, {})
    if lasting:
        held[1].setdefault(_LASTING_NAMES, set()).add(name)
    return memo


def _lasting_of(conn: Connection) -> list[tuple[str, dict[Any, Any]]]:
    """The lasting memos of the transaction about to commit on `conn`."""
    held = conn.info.get(_MEMO)
    if held is None or held[0] is not conn.get_transaction():
        return []
    memos = held[1]
    return [(name, memos[name]) for name in memos.get(_LASTING_NAMES, ())]


def forget(conn: Connection) -> None:
    """Drop the memo: after a rollback to a savepoint, what was read inside it may be gone."""
    conn.info.pop(_MEMO, None)
