"""Executing SQLAlchemy Core statements with as little per-query overhead as the driver allows.

Statements are written once in SQLAlchemy Core with named ``bindparam``s, compiled once per
database dialect and cached, then run straight on the DB-API driver: plain ``sqlite3`` inside the
event loop (a local SQLite query takes microseconds, so a thread hop would cost more than it
saves), or an async driver for servers. Result rows come back as plain dicts.

Rule for callers: inside ``transaction()`` await nothing but the transaction's own calls. On
SQLite those never suspend, which is what keeps a transaction from interleaving with another
request's statements on the shared connection.

Driver failures that say the database is out of reach or out of space become DatabaseUnavailable
and DatabaseFull, the same for every driver. Whether a lost PostgreSQL connection may have
committed anything is tracked per request (``track_commits``), so the caller can tell a failure
that is safe to run again from one whose outcome is unknown.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import re
import sqlite3
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.sql.elements import ClauseElement

Row = dict[str, Any]
_T = TypeVar("_T")
Params = Mapping[str, Any]


class UniqueViolation(Exception):
    """An insert or update hit a unique constraint (the same for every driver)."""


# A statement whose SQL differs by database: one variant per dialect name, picked with
# ``db.dialect_name`` (both are built once, at import).
PerDialect = Mapping[str, ClauseElement]


def insert_unless_present(table: sa.Table, values: Mapping[str, Any]) -> PerDialect:
    """INSERT ... ON CONFLICT DO NOTHING: the row count (1 or 0) says whether this insert won.

    On PostgreSQL a conflicting insert waits for the transaction holding the key to end, so the
    loser never sees a key that is about to be rolled back as taken.
    """
    return {
        "sqlite": sqlite_dialect.insert(table).values(values).on_conflict_do_nothing(),
        "postgresql": pg_dialect.insert(table).values(values).on_conflict_do_nothing(),
    }


def insert_or_update(
    table: sa.Table, values: Mapping[str, Any], key: Sequence[str], update: Sequence[str]
) -> PerDialect:
    """INSERT ... ON CONFLICT (key) DO UPDATE: one statement whatever the row's existence, so two
    concurrent writers of one key never both insert."""
    variants: dict[str, ClauseElement] = {}
    for name, module in (("sqlite", sqlite_dialect), ("postgresql", pg_dialect)):
        stmt = module.insert(table).values(values)
        variants[name] = stmt.on_conflict_do_update(
            index_elements=list(key), set_={column: stmt.excluded[column] for column in update}
        )
    return variants


class DatabaseUnavailable(Exception):
    """The database could not be reached, or the connection was lost during a statement.

    ``changes_unknown`` is True when the loss came after a COMMIT (or a write outside a
    transaction) was sent: the change may or may not have been made.
    """

    def __init__(self, message: str, *, changes_unknown: bool = False) -> None:
        super().__init__(message)
        self.changes_unknown = changes_unknown


class DatabaseFull(Exception):
    """The database could not write because its disk is full; the statement changed nothing."""


@dataclass(slots=True)
class CommitTracker:
    """Whether anything may have been committed since tracking began (one request's work)."""

    may_have_committed: bool = False
    # Writes inside compensated_writes() are undone by the caller on failure and do not count.
    compensating: bool = False


_tracker: ContextVar[CommitTracker | None] = ContextVar("vmsres_commit_tracker", default=None)


@contextlib.contextmanager
def track_commits() -> Iterator[CommitTracker]:
    """Track, for the code inside, whether a COMMIT or a write outside a transaction was sent."""
    tracker = CommitTracker()
    token = _tracker.set(tracker)
    try:
        yield tracker
    finally:
        _tracker.reset(token)


@contextlib.contextmanager
def compensated_writes() -> Iterator[None]:
    """Writes inside that the caller undoes when the tracked work fails, so they do not count."""
    tracker = _tracker.get()
    if tracker is None:
        yield
        return
    tracker.compensating = True
    try:
        yield
    finally:
        tracker.compensating = False


def _note_possible_commit() -> None:
    tracker = _tracker.get()
    if tracker is not None and not tracker.compensating:
        tracker.may_have_committed = True


@dataclass(frozen=True, slots=True)
class CompiledStatement:
    sql: str
    names: tuple[str, ...]
    defaults: Mapping[str, Any]
    # A plain SELECT (or a UNION of them): losing the connection while it runs can have changed
    # nothing, and on SQLite it runs on the reading connection, outside any batch.
    reads_only: bool

    def arguments(self, params: Params) -> list[Any]:
        return [params[n] if n in params else self.defaults[n] for n in self.names]


class StatementCache:
    """Compiled SQL per statement object; statements are module-level or memoized per shape."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._cache: dict[int, tuple[ClauseElement, CompiledStatement]] = {}

    def get(self, stmt: ClauseElement) -> CompiledStatement:
        hit = self._cache.get(id(stmt))
        if hit is not None and hit[0] is stmt:
            return hit[1]
        compiled = stmt.compile(dialect=self.dialect)
        names = tuple(getattr(compiled, "positiontup", None) or ())
        reads_only = isinstance(stmt, sa.Select | sa.CompoundSelect)
        entry = CompiledStatement(str(compiled), names, dict(compiled.params), reads_only)
        # Keeping the statement alive pins its id, so a recycled id can never alias another.
        self._cache[id(stmt)] = (stmt, entry)
        return entry


class Executor(Protocol):
    async def fetch_all(self, stmt: ClauseElement, params: Params = ...) -> list[Row]: ...
    async def fetch_one(self, stmt: ClauseElement, params: Params = ...) -> Row | None: ...
    async def fetch_value(self, stmt: ClauseElement, params: Params = ...) -> Any: ...
    async def fetch_column(
        self, stmt: ClauseElement, params: Params = ..., index: int = ...
    ) -> list[Any]: ...
    async def execute(self, stmt: ClauseElement, params: Params = ...) -> int: ...


class Database(Executor, Protocol):
    url: str
    dialect_name: str
    # Where SELECTs run whose cost grows with the data (keyword counts and match lists): on
    # SQLite a reader thread with its own connection, so the event loop keeps serving meanwhile;
    # elsewhere the database itself (its statements never hold the loop). Never inside a
    # transaction, and never for a statement whose answer must come from a transaction's view.
    long_reads: Executor

    def transaction(self) -> contextlib.AbstractAsyncContextManager[Executor]: ...
    async def check(self) -> None: ...
    async def close(self) -> None: ...


_EMPTY: Params = {}


@functools.cache
def _dialect(url: str) -> sa.Dialect:
    """One per process and kind: making an engine for it costs milliseconds, on every store opened."""
    return sa.create_engine(url).dialect


class SqliteDatabase:
    """Two ``sqlite3`` connections per process, in WAL mode, driven from the event loop.

    Writes are group-committed: the transactions that the worker's requests open while a batch
    is open all run inside that batch's one ``BEGIN IMMEDIATE ... COMMIT``, each in a SAVEPOINT
    of its own, so a unit that fails rolls back only itself. A unit's ``transaction()`` returns
    only once the batch's COMMIT has returned, and a failed COMMIT fails every unit of the batch
    with the COMMIT's error: an answer is never sent for a change that is not committed. The
    batch commits at the end of the loop turn that opened it, so it holds whatever requests were
    ready in that turn; under load more are ready each turn and one commit (one lock hand-over
    between worker processes, one WAL append, one sync when ``synchronous`` asks for one)
    serves them all.

    Reads outside a transaction use a second connection: in WAL mode it sees only committed
    transactions, never a batch that is still open (and might yet fail) on the writer. Reads
    whose cost grows with the data go to a third, on a thread (``long_reads``, _SqliteReader).
    """

    dialect_name = "sqlite"

    def __init__(self, url: str, *, durable: bool = True) -> None:
        self.url = url
        self.path = sqlite_path(url)
        self._statements = StatementCache(_dialect("sqlite://"))
        # Autocommit at the driver; transactions are explicit BEGIN IMMEDIATE ... COMMIT so a
        # writer takes the lock up front instead of failing to upgrade a read lock later.
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        configure_sqlite(self._conn)
        self._writer = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        configure_sqlite(self._writer)
        # The writer waits for another process's lock by polling from the event loop (below),
        # never inside SQLite's busy handler, which would sleep with the whole worker stopped.
        self._writer.execute("PRAGMA busy_timeout=0")
        if not durable:
            # A throwaway store (a test server's): no syncs at all, ~10 ms saved on the first
            # write alone; a crash of the machine may lose or corrupt it, which it may.
            self._conn.execute("PRAGMA synchronous=OFF")
            self._writer.execute("PRAGMA synchronous=OFF")
        self._durable = durable
        # The WAL file, synced after each COMMIT (below); opened at the first one.
        self._wal_fd: int | None = None
        self._syncs: set[asyncio.Task[None]] = set()
        # The unit whose body is running now (bodies never suspend, so at most one).
        self._in_unit = False
        self._batch: _Batch | None = None
        self._opening: asyncio.Future[_Batch] | None = None
        # Batches ended (committed or failed) and the units they held: their ratio is the
        # group commit's size.
        self.batches = 0
        self.batched_units = 0
        self.long_reads: Executor = _SqliteReader(self.path) if _is_file(self.path) else self

    def _run(self, stmt: ClauseElement, params: Params) -> sqlite3.Cursor:
        compiled = self._statements.get(stmt)
        conn = self._writer if self._in_unit else self._conn
        try:
            return _sqlite_call(conn, compiled, params)
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" in str(exc) or "PRIMARY KEY" in str(exc):
                raise UniqueViolation(str(exc)) from exc
            raise

    def _writes_alone(self, stmt: ClauseElement) -> bool:
        """A write outside any transaction: it becomes a unit of its own (committed before the
        call returns), since the reading connection must never write."""
        return not self._in_unit and not self._statements.get(stmt).reads_only

    async def fetch_all(self, stmt: ClauseElement, params: Params = _EMPTY) -> list[Row]:
        if self._writes_alone(stmt):
            async with self.transaction():
                return await self.fetch_all(stmt, params)
        cursor = self._run(stmt, params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    async def fetch_one(self, stmt: ClauseElement, params: Params = _EMPTY) -> Row | None:
        if self._writes_alone(stmt):
            async with self.transaction():
                return await self.fetch_one(stmt, params)
        cursor = self._run(stmt, params)
        row = cursor.fetchone()
        if row is None:
            return None
        names = [d[0] for d in cursor.description]
        cursor.close()
        return dict(zip(names, row, strict=True))

    async def fetch_value(self, stmt: ClauseElement, params: Params = _EMPTY) -> Any:
        if self._writes_alone(stmt):
            async with self.transaction():
                return await self.fetch_value(stmt, params)
        row = self._run(stmt, params).fetchone()
        return None if row is None else row[0]

    async def fetch_column(self, stmt: ClauseElement, params: Params = _EMPTY, index: int = 0) -> list[Any]:
        """One column of every row, without building a mapping per row (long id lists)."""
        if self._writes_alone(stmt):
            async with self.transaction():
                return await self.fetch_column(stmt, params, index)
        return [row[index] for row in self._run(stmt, params).fetchall()]

    async def execute(self, stmt: ClauseElement, params: Params = _EMPTY) -> int:
        if self._writes_alone(stmt):
            async with self.transaction():
                return self._run(stmt, params).rowcount
        return self._run(stmt, params).rowcount

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Executor]:
        if self._in_unit:
            raise RuntimeError("nested transactions are not supported")
        batch = await self._joined_batch()
        self._savepoint("SAVEPOINT unit", batch)
        self._in_unit = True
        batch.units += 1
        try:
            yield self
        except BaseException as exc:
            self._in_unit = False
            self._savepoint("ROLLBACK TO unit", batch)
            self._savepoint("RELEASE unit", batch)
            if isinstance(exc, Exception):
                # A unit may fail on what an earlier unit of the batch wrote (a UNIQUE conflict
                # with a row not yet committed). Its caller may read that row next, on the
                # reading connection, which sees committed data only: so a failure, too, is
                # answered only once the batch has ended.
                with contextlib.suppress(BaseException):
                    await asyncio.shield(batch.committed)
            raise
        self._in_unit = False
        self._savepoint("RELEASE unit", batch)
        await _outcome(batch.committed)

    async def _joined_batch(self) -> _Batch:
        """The open batch, opening one (taking the write lock) when there is none."""
        while True:
            batch = self._batch
            if batch is not None and batch.open:
                return batch
            opening = self._opening
            if opening is not None:
                try:
                    batch = await asyncio.shield(opening)
                except asyncio.CancelledError:
                    if opening.cancelled():
                        continue  # its opener was cancelled: open it here
                    raise
                if batch.open:
                    return batch
                continue
            loop = asyncio.get_running_loop()
            self._opening = opening = loop.create_future()
            try:
                await self._begin()
            except Exception as exc:
                self._opening = None
                # The requests waiting for this batch fail as this one does (the lock stayed
                # taken); marked retrieved, since no one may be waiting.
                opening.set_exception(exc)
                opening.exception()
                raise
            except BaseException:
                self._opening = None
                opening.cancel()
                raise
            batch = self._batch = _Batch(loop.create_future())
            self._opening = None
            opening.set_result(batch)
            # After every unit that is ready in this loop turn (the ones woken by ``opening``
            # included, which were scheduled first).
            loop.call_soon(self._commit, batch)
            return batch

    async def _begin(self) -> None:
        """BEGIN IMMEDIATE, waiting without blocking the loop while another process writes."""
        deadline = time.monotonic() + _SQLITE_BUSY_SECONDS
        pause = _LOCK_POLL_FIRST
        while True:
            try:
                self._writer.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.DatabaseError as exc:
                code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
                if code != _SQLITE_BUSY or time.monotonic() + pause > deadline:
                    failure = _sqlite_failure(exc, changes_unknown=False)
                    if failure is not None:
                        raise failure from exc
                    raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, _LOCK_POLL_MAX)

    def _savepoint(self, sql: str, batch: _Batch) -> None:
        try:
            self._writer.execute(sql)
        except sqlite3.DatabaseError as exc:
            # The batch can no longer be trusted to hold exactly its units' changes: it is
            # rolled back whole, and every unit in it fails.
            batch.failure = _sqlite_failure(exc, changes_unknown=False) or exc
            raise batch.failure from exc

    def _commit(self, batch: _Batch) -> None:
        batch.open = False
        self._batch = None
        self.batches += 1
        self.batched_units += batch.units
        failure = batch.failure or self._commit_now()
        if failure is not None and self._writer.in_transaction:
            # Also after a failed COMMIT (a full disk): SQLite keeps that transaction open, and
            # the next BEGIN on this connection would fail until it is rolled back. Only here:
            # once the WAL sync below runs, the next batch may already be open on this connection.
            with contextlib.suppress(sqlite3.DatabaseError):
                self._writer.execute("ROLLBACK")
        if failure is None and self._durable:
            # The COMMIT appended the batch to the WAL and released the write lock; the sync that
            # puts it on the disk runs on a thread, outside the lock, so the other worker writes
            # meanwhile and this one keeps serving. The batch is answered once the WAL is synced.
            task = asyncio.get_running_loop().create_task(self._sync_then_settle(batch))
            self._syncs.add(task)
            task.add_done_callback(self._syncs.discard)
        else:
            self._settle(batch, failure)

    async def _sync_then_settle(self, batch: _Batch) -> None:
        failure: BaseException | None = DatabaseUnavailable(
            "SQLite: the server stopped while the WAL was being synced", changes_unknown=True
        )
        try:
            failure = await asyncio.to_thread(self._sync_wal)
        finally:
            self._settle(batch, failure)

    def _sync_wal(self) -> BaseException | None:
        """fsync of the WAL file: every frame appended so far, this batch's included, is on the disk.

        Frames a checkpoint has already copied into the database file were synced there by that
        checkpoint (synchronous=NORMAL syncs the database after a checkpoint and before the WAL
        is reused), so either way a returned sync means the batch survives a power loss.
        """
        try:
            if self._wal_fd is None:
                self._wal_fd = os.open(self.path + "-wal", os.O_RDONLY)
            os.fsync(self._wal_fd)
        except OSError as exc:
            return DatabaseUnavailable(f"SQLite: syncing the WAL failed: {exc}", changes_unknown=True)
        return None

    def _commit_now(self) -> BaseException | None:
        try:
            self._writer.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            # An I/O error during COMMIT leaves it to recovery whether the transaction stands.
            return _sqlite_failure(exc, changes_unknown=True) or exc
        return None

    def _settle(self, batch: _Batch, failure: BaseException | None) -> None:
        if failure is not None:
            batch.committed.set_exception(failure)
            batch.committed.exception()  # every unit raises it; none may go unretrieved
        else:
            batch.committed.set_result(None)

    async def check(self) -> None:
        self._conn.execute("SELECT 1").fetchone()

    async def close(self) -> None:
        if isinstance(self.long_reads, _SqliteReader):
            self.long_reads.close()
        if self._syncs:
            await asyncio.gather(*self._syncs, return_exceptions=True)
        if self._wal_fd is not None:
            os.close(self._wal_fd)
        self._conn.close()
        self._writer.close()


@dataclass(slots=True)
class _Batch:
    """One group commit: the units (request transactions) sharing one SQLite transaction."""

    committed: asyncio.Future[None]
    open: bool = True
    units: int = 0
    # Set when the batch must be rolled back whole (a savepoint could not be released).
    failure: BaseException | None = None


async def _outcome(committed: asyncio.Future[None]) -> None:
    """Wait for the batch's COMMIT. A cancelled request still waits for it: its change is in the
    batch and may commit, and what follows the transaction must know whether it did."""
    try:
        await asyncio.shield(committed)
    except asyncio.CancelledError:
        if not committed.done():
            with contextlib.suppress(BaseException):
                await committed
        raise


# How long a write waits for another process's lock (SQLite's busy_timeout of old), and how
# often it looks: the first look soon (a batch of the other worker takes about a millisecond).
_SQLITE_BUSY_SECONDS = 5.0
_LOCK_POLL_FIRST = 0.0005
_LOCK_POLL_MAX = 0.004
_SQLITE_BUSY = 5


def _is_file(path: str) -> bool:
    # An in-memory database is private to its connection: a second connection would see another.
    return path not in ("", ":memory:") and not path.startswith("file::memory:")


def _sqlite_call(conn: sqlite3.Connection, compiled: CompiledStatement, params: Params) -> sqlite3.Cursor:
    arguments = compiled.arguments(params)
    try:
        try:
            return conn.execute(compiled.sql, arguments)
        except sqlite3.OperationalError as exc:
            if not _schema_missing(exc):
                raise
            # Seen (rarely, under load) on a statement re-prepared just after another connection
            # changed the schema: the table was there before and after. The statement did
            # nothing, so it is prepared and run once more; a table that is really missing fails
            # again and is an outage of the store (503), not a bug of the request.
            logging.getLogger("vmsres").warning(
                orjson.dumps({"event": "sqlite_schema_miss", "error": str(exc)}).decode()
            )
            return conn.execute(compiled.sql, arguments)
    except sqlite3.DatabaseError as exc:
        failure = _sqlite_failure(exc, changes_unknown=False)
        if failure is not None:
            raise failure from exc
        raise


class _SqliteReader:
    """SELECTs on a thread of their own, over a read-only connection of their own.

    In WAL mode readers never wait for the writer, and each statement here begins its own read
    transaction when it starts and ends it when it has been read to the end, so it sees every
    transaction committed before it began, from any connection or process (docs/search.md,
    "Reader thread"). One thread: the slow statements of a worker queue behind each other, not
    in front of the cheap ones, and the two cores are not oversubscribed further. The GIL is
    released while SQLite steps, so the event loop runs Python meanwhile.
    """

    def __init__(self, path: str) -> None:
        self._uri = "file:" + urllib.parse.quote(path) + "?mode=ro"
        self._statements = StatementCache(_dialect("sqlite://"))
        # Made on first use, in the thread: a worker that never searches opens nothing.
        self._threads: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            try:
                conn = sqlite3.connect(self._uri, uri=True, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA busy_timeout=5000")
            except sqlite3.DatabaseError as exc:
                failure = _sqlite_failure(exc, changes_unknown=False)
                if failure is not None:
                    raise failure from exc
                raise
            self._conn = conn
        return self._conn

    async def _in_thread(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        if self._threads is None:
            self._threads = ThreadPoolExecutor(1, thread_name_prefix="vmsres-sqlite-reader")
        return await asyncio.get_running_loop().run_in_executor(
            self._threads, lambda: work(self._connection())
        )

    async def fetch_all(self, stmt: ClauseElement, params: Params = _EMPTY) -> list[Row]:
        compiled = self._statements.get(stmt)

        def work(conn: sqlite3.Connection) -> list[Row]:
            cursor = _sqlite_call(conn, compiled, params)
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

        return await self._in_thread(work)

    async def fetch_one(self, stmt: ClauseElement, params: Params = _EMPTY) -> Row | None:
        rows = await self.fetch_all(stmt, params)
        return rows[0] if rows else None

    async def fetch_value(self, stmt: ClauseElement, params: Params = _EMPTY) -> Any:
        compiled = self._statements.get(stmt)

        def work(conn: sqlite3.Connection) -> Any:
            # Read to the end, so the statement is reset and its read transaction ends.
            rows = _sqlite_call(conn, compiled, params).fetchall()
            return rows[0][0] if rows else None

        return await self._in_thread(work)

    async def fetch_column(self, stmt: ClauseElement, params: Params = _EMPTY, index: int = 0) -> list[Any]:
        compiled = self._statements.get(stmt)

        def work(conn: sqlite3.Connection) -> list[Any]:
            return [row[index] for row in _sqlite_call(conn, compiled, params).fetchall()]

        return await self._in_thread(work)

    async def execute(self, stmt: ClauseElement, params: Params = _EMPTY) -> int:
        raise TypeError("the reader connection is read-only")

    def close(self) -> None:
        if self._threads is not None:
            self._threads.shutdown(wait=True)
            self._threads = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None


_SQLITE_FULL = 13
# BUSY and LOCKED (another process held the lock past busy_timeout), IOERR, CANTOPEN: the file
# cannot be worked on right now, which is an outage (503), not a bug of the request (500).
_SQLITE_UNAVAILABLE = frozenset({5, 6, 10, 14})


def _sqlite_failure(exc: sqlite3.DatabaseError, *, changes_unknown: bool) -> Exception | None:
    """DatabaseFull or DatabaseUnavailable for an SQLite error that means one, else None."""
    # The primary result code is the low byte of the extended one.
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    if code == _SQLITE_FULL:
        return DatabaseFull(str(exc))
    if code in _SQLITE_UNAVAILABLE or _schema_missing(exc):
        return DatabaseUnavailable(f"SQLite: {exc}", changes_unknown=changes_unknown)
    return None


def _schema_missing(exc: sqlite3.DatabaseError) -> bool:
    """A statement that could not be prepared because a table or column of the schema is not
    there: the store is not what this version of vmsres migrated it to."""
    return isinstance(exc, sqlite3.OperationalError) and str(exc).startswith(
        ("no such table", "no such column")
    )


def sqlite_path(url: str) -> str:
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        raise ValueError(f"not a sqlite URL: {url}")
    return url[len(prefix) :]


def configure_sqlite(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA journal_mode=WAL")
    # NORMAL: a COMMIT appends to the WAL without waiting for the disk, so the write lock is
    # held only for the append. A durable store's worker then syncs the WAL itself, outside the
    # lock, before it answers (SqliteDatabase._sync_wal): an answer survives a power loss.
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=5000")
    conn.execute("PRAGMA foreign_keys=ON")


def _rowcount(status: str) -> int:
    # asyncpg reports a command tag such as "UPDATE 3" or "INSERT 0 1"; the count is last.
    match = _TAG_COUNT.search(status)
    return int(match.group(1)) if match else 0


_TAG_COUNT = re.compile(r"(\d+)\s*$")


# SQLSTATEs that mean the server is gone or refuses work for now: connection exceptions (class
# 08), administrator or crash shutdown, "starting up", idle-session timeout, too many connections.
_UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "57P05", "53300"})
_DISK_FULL_SQLSTATE = "53100"


def _pg_failure(exc: BaseException, *, changes_unknown: bool) -> Exception | None:
    """DatabaseUnavailable or DatabaseFull for a driver error that means one, else None."""
    sqlstate = getattr(exc, "sqlstate", None)
    if sqlstate == _DISK_FULL_SQLSTATE:
        return DatabaseFull(str(exc))
    if isinstance(sqlstate, str) and (sqlstate.startswith("08") or sqlstate in _UNAVAILABLE_SQLSTATES):
        return DatabaseUnavailable(f"{type(exc).__name__}: {exc}", changes_unknown=changes_unknown)
    if isinstance(exc, OSError | TimeoutError):  # refused, reset, unreachable, connect timeout
        return DatabaseUnavailable(f"{type(exc).__name__}: {exc}", changes_unknown=changes_unknown)
    from asyncpg.exceptions import InterfaceError, InternalClientError

    # "connection is closed"; and a connection left in a broken protocol state by a FATAL that
    # arrived while it was idle ("cannot switch to state ...; another operation is in progress").
    if (isinstance(exc, InterfaceError) and "closed" in str(exc)) or isinstance(exc, InternalClientError):
        return DatabaseUnavailable(f"{type(exc).__name__}: {exc}", changes_unknown=changes_unknown)
    return None


class _PgExecutor:
    """Statements on one asyncpg connection."""

    def __init__(self, conn: Any, statements: StatementCache, *, autocommit: bool) -> None:
        self._conn = conn
        self._statements = statements
        # Outside a transaction every write commits by itself.
        self._autocommit = autocommit

    async def _call(self, method: str, stmt: ClauseElement, params: Params) -> Any:
        compiled = self._statements.get(stmt)
        commits = self._autocommit and not compiled.reads_only
        if commits:
            _note_possible_commit()
        try:
            return await getattr(self._conn, method)(compiled.sql, *compiled.arguments(params))
        except Exception as exc:
            # asyncpg's UniqueViolationError, recognised by its SQLSTATE so asyncpg stays optional.
            if getattr(exc, "sqlstate", None) == "23505":
                raise UniqueViolation(str(exc)) from exc
            failure = _pg_failure(exc, changes_unknown=commits)
            if failure is not None:
                raise failure from exc
            raise

    async def fetch_all(self, stmt: ClauseElement, params: Params = _EMPTY) -> list[Row]:
        return [dict(r) for r in await self._call("fetch", stmt, params)]

    async def fetch_one(self, stmt: ClauseElement, params: Params = _EMPTY) -> Row | None:
        row = await self._call("fetchrow", stmt, params)
        return None if row is None else dict(row)

    async def fetch_value(self, stmt: ClauseElement, params: Params = _EMPTY) -> Any:
        return await self._call("fetchval", stmt, params)

    async def fetch_column(self, stmt: ClauseElement, params: Params = _EMPTY, index: int = 0) -> list[Any]:
        return [row[index] for row in await self._call("fetch", stmt, params)]

    async def execute(self, stmt: ClauseElement, params: Params = _EMPTY) -> int:
        return _rowcount(await self._call("execute", stmt, params))


class PostgresDatabase:
    """An asyncpg pool, created on first use inside the running event loop.

    Up to ``max_size`` connections, opened as requests need them: as many as the requests one
    worker serves at once under load (a load generator's 32 connections over two workers), so a
    request does not queue for a connection while the backend is idle; a quiet worker keeps
    ``min_size``.

    asyncpg prepares each statement once per connection and caches it, so with the SQL text
    compiled once here a hot query costs one round trip of bind + execute. Keyword statements
    (``long_reads``) use a second, smaller pool whose connections plan each execution anew.
    """

    dialect_name = "postgresql"

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 2,
        max_size: int = 24,
        long_read_size: int = 8,
        custom_plans: bool = False,
    ) -> None:
        self.url = url
        self._dsn = asyncpg_dsn(url)
        self._statements = StatementCache(_dialect("postgresql+asyncpg://"))
        self._min_size = min_size
        self._max_size = max_size
        self._pool: Any = None
        self._pool_lock = asyncio.Lock()
        # JIT compiles a plan on each execution once its estimated cost passes a threshold:
        # hundreds of ms spent on statements that run in one.
        self._server_settings = {"jit": "off"}
        self.long_reads: Executor = self
        self._long_reads: PostgresDatabase | None = None
        if custom_plans:
            # A prepared statement is planned for its own values for its first five runs, then
            # PostgreSQL may switch to one generic plan for all values. For a keyword that plan
            # cannot know how rare the pattern is: it walked every row of the account's Type
            # (ResourceKey keywords: ~1 ms with their own plan, 10-200 ms with the generic one).
            self._server_settings["plan_cache_mode"] = "force_custom_plan"
        else:
            # Keyword statements (whose cost depends on the pattern) on connections of their
            # own that plan every execution for its values; the cheap statements keep their
            # cached plans on the main pool.
            self._long_reads = PostgresDatabase(url, min_size=0, max_size=long_read_size, custom_plans=True)
            self.long_reads = self._long_reads

    async def _get_pool(self) -> Any:
        if self._pool is None:
            async with self._pool_lock:
                if self._pool is None:
                    import asyncpg

                    try:
                        self._pool = await asyncpg.create_pool(
                            self._dsn,
                            min_size=self._min_size,
                            max_size=self._max_size,
                            reset=_keep_session,
                            # Every statement we run, prepared once per connection: the shapes
                            # of each query plus one rows-by-id statement per page size (up to
                            # 100) exceed asyncpg's default of 100, and a statement pushed out
                            # costs a prepare round trip the next time.
                            statement_cache_size=_STATEMENT_CACHE_SIZE,
                            # A database that does not answer fails a request in seconds, not
                            # the driver's default minute.
                            timeout=_CONNECT_TIMEOUT_SECONDS,
                            server_settings=self._server_settings,
                        )
                    except Exception as exc:
                        failure = _pg_failure(exc, changes_unknown=False)
                        if failure is not None:
                            raise failure from exc
                        raise
        return self._pool

    async def _acquire(self) -> tuple[Any, Any]:
        # The pool replaces a connection the server has closed when it is acquired; one that
        # failed while in use is terminated by _release, so no pre-ping is needed.
        pool = self._pool or await self._get_pool()
        try:
            return pool, await pool.acquire()
        except Exception as exc:
            failure = _pg_failure(exc, changes_unknown=False)
            if failure is not None:
                raise failure from exc
            raise

    @staticmethod
    async def _release(pool: Any, conn: Any, failed: BaseException | None) -> None:
        if isinstance(failed, DatabaseUnavailable):
            from asyncpg.exceptions import InterfaceError

            # It may still look open yet be unusable (asyncpg can be left mid-protocol by a
            # FATAL the server sent while it was idle): it must never be handed out again. One
            # already closed has been taken back by the pool, which says so with InterfaceError.
            with contextlib.suppress(InterfaceError):
                conn.terminate()
        await pool.release(conn)

    async def _pooled(self, run: Callable[[_PgExecutor], Awaitable[_T]]) -> _T:
        pool, conn = await self._acquire()
        failed: BaseException | None = None
        try:
            return await run(_PgExecutor(conn, self._statements, autocommit=True))
        except BaseException as exc:
            failed = exc
            raise
        finally:
            await self._release(pool, conn, failed)

    async def fetch_all(self, stmt: ClauseElement, params: Params = _EMPTY) -> list[Row]:
        return await self._pooled(lambda executor: executor.fetch_all(stmt, params))

    async def fetch_one(self, stmt: ClauseElement, params: Params = _EMPTY) -> Row | None:
        return await self._pooled(lambda executor: executor.fetch_one(stmt, params))

    async def fetch_value(self, stmt: ClauseElement, params: Params = _EMPTY) -> Any:
        return await self._pooled(lambda executor: executor.fetch_value(stmt, params))

    async def fetch_column(self, stmt: ClauseElement, params: Params = _EMPTY, index: int = 0) -> list[Any]:
        return await self._pooled(lambda executor: executor.fetch_column(stmt, params, index))

    async def execute(self, stmt: ClauseElement, params: Params = _EMPTY) -> int:
        return await self._pooled(lambda executor: executor.execute(stmt, params))

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Executor]:
        pool, conn = await self._acquire()
        failed: BaseException | None = None
        try:
            transaction = conn.transaction()
            await _pg_control(transaction.start, changes_unknown=False)
            try:
                yield _PgExecutor(conn, self._statements, autocommit=False)
            except BaseException:
                try:
                    await transaction.rollback()
                except Exception as exc:
                    # The server rolls back by itself what a lost connection left open.
                    if _pg_failure(exc, changes_unknown=False) is None:
                        raise
                raise
            # From here until the server answers, the outcome of a lost connection is unknown.
            _note_possible_commit()
            await _pg_control(transaction.commit, changes_unknown=True)
        except BaseException as exc:
            failed = exc
            raise
        finally:
            await self._release(pool, conn, failed)

    async def check(self) -> None:
        pool = self._pool or await self._get_pool()
        await pool.fetchval("SELECT 1")

    async def close(self) -> None:
        if self._long_reads is not None:
            await self._long_reads.close()
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()


_CONNECT_TIMEOUT_SECONDS = 5
_STATEMENT_CACHE_SIZE = 1024


async def _pg_control(step: Callable[[], Awaitable[Any]], *, changes_unknown: bool) -> None:
    # A call, not an awaitable: asyncpg checks that the connection is open before the coroutine.
    try:
        await step()
    except Exception as exc:
        failure = _pg_failure(exc, changes_unknown=changes_unknown)
        if failure is not None:
            raise failure from exc
        raise


async def _keep_session(connection: Any) -> None:
    """asyncpg's default reset on every release (RESET ALL, UNLISTEN *, CLOSE ALL, unlock all)
    is a round trip per statement; our pooled connections never SET, LISTEN, keep cursors or
    take session locks, so there is nothing to reset (an open transaction is still rolled back
    by asyncpg itself before this runs)."""


def asyncpg_dsn(url: str) -> str:
    """asyncpg takes plain ``postgresql://`` DSNs; drop any SQLAlchemy driver suffix."""
    scheme, rest = url.split("://", 1)
    if scheme.split("+", 1)[0] not in ("postgresql", "postgres"):
        raise ValueError(f"not a PostgreSQL URL: {scheme}:...")
    return "postgresql://" + rest


def open_database(url: str, *, durable: bool = True) -> Database:
    """``durable`` False lets SQLite skip syncs (a throwaway store); PostgreSQL ignores it."""
    if url.startswith("sqlite:///"):
        return SqliteDatabase(url, durable=durable)
    if url.startswith(("postgresql://", "postgres://", "postgresql+")):
        return PostgresDatabase(url)
    raise ValueError(f"unsupported database URL: {url.split(':', 1)[0]}:...")
