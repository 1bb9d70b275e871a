"""Executing SQLAlchemy Core statements with as little per-query overhead as the driver allows.

Statements are written once in SQLAlchemy Core with named ``bindparam``s, compiled once per
database dialect and cached, then run straight on the DB-API driver: plain ``sqlite3`` inside the
event loop (a local SQLite query takes microseconds, so a thread hop would cost more than it
saves), or an async driver for servers. Result rows come back as plain dicts.

Rule for callers: inside ``transaction()`` await nothing but the transaction's own calls. On
SQLite those never suspend, which is what keeps a transaction from interleaving with another
request's statements on the shared connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import sqlite3
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.sql.elements import ClauseElement

Row = dict[str, Any]
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


@dataclass(frozen=True, slots=True)
class CompiledStatement:
    sql: str
    names: tuple[str, ...]
    defaults: Mapping[str, Any]

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
        entry = CompiledStatement(str(compiled), names, dict(compiled.params))
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

    def transaction(self) -> contextlib.AbstractAsyncContextManager[Executor]: ...
    async def check(self) -> None: ...
    async def close(self) -> None: ...


_EMPTY: Params = {}


@functools.cache
def _dialect(url: str) -> sa.Dialect:
    """One per process and kind: making an engine for it costs milliseconds, on every store opened."""
    return sa.create_engine(url).dialect


class SqliteDatabase:
    """One ``sqlite3`` connection per process, in WAL mode, driven from the event loop."""

    dialect_name = "sqlite"

    def __init__(self, url: str, *, durable: bool = True) -> None:
        self.url = url
        self.path = sqlite_path(url)
        self._statements = StatementCache(_dialect("sqlite://"))
        # Autocommit at the driver; transactions are explicit BEGIN IMMEDIATE ... COMMIT so a
        # writer takes the lock up front instead of failing to upgrade a read lock later.
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        configure_sqlite(self._conn)
        if not durable:
            # A throwaway store (a test server's): no syncs at all, ~10 ms saved on the first
            # write alone; a crash of the machine may lose or corrupt it, which it may.
            self._conn.execute("PRAGMA synchronous=OFF")
        self._in_transaction = False

    def _run(self, stmt: ClauseElement, params: Params) -> sqlite3.Cursor:
        compiled = self._statements.get(stmt)
        try:
            return self._conn.execute(compiled.sql, compiled.arguments(params))
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" in str(exc) or "PRIMARY KEY" in str(exc):
                raise UniqueViolation(str(exc)) from exc
            raise

    async def fetch_all(self, stmt: ClauseElement, params: Params = _EMPTY) -> list[Row]:
        cursor = self._run(stmt, params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    async def fetch_one(self, stmt: ClauseElement, params: Params = _EMPTY) -> Row | None:
        cursor = self._run(stmt, params)
        row = cursor.fetchone()
        if row is None:
            return None
        names = [d[0] for d in cursor.description]
        cursor.close()
        return dict(zip(names, row, strict=True))

    async def fetch_value(self, stmt: ClauseElement, params: Params = _EMPTY) -> Any:
        row = self._run(stmt, params).fetchone()
        return None if row is None else row[0]

    async def fetch_column(self, stmt: ClauseElement, params: Params = _EMPTY, index: int = 0) -> list[Any]:
        """One column of every row, without building a mapping per row (long id lists)."""
        return [row[index] for row in self._run(stmt, params).fetchall()]

    async def execute(self, stmt: ClauseElement, params: Params = _EMPTY) -> int:
        return self._run(stmt, params).rowcount

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Executor]:
        if self._in_transaction:
            raise RuntimeError("nested transactions are not supported")
        self._conn.execute("BEGIN IMMEDIATE")
        self._in_transaction = True
        try:
            yield self
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        else:
            self._conn.execute("COMMIT")
        finally:
            self._in_transaction = False

    async def check(self) -> None:
        self._conn.execute("SELECT 1").fetchone()

    async def close(self) -> None:
        self._conn.close()


def sqlite_path(url: str) -> str:
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        raise ValueError(f"not a sqlite URL: {url}")
    return url[len(prefix) :]


def configure_sqlite(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode never corrupts and loses nothing when the process dies; only an OS
    # crash can drop the last transactions, which is the usual trade for a 2-5x faster commit.
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=5000")
    conn.execute("PRAGMA foreign_keys=ON")


def _rowcount(status: str) -> int:
    # asyncpg reports a command tag such as "UPDATE 3" or "INSERT 0 1"; the count is last.
    match = _TAG_COUNT.search(status)
    return int(match.group(1)) if match else 0


_TAG_COUNT = re.compile(r"(\d+)\s*$")


class _PgExecutor:
    """Statements on an asyncpg connection or pool (both answer fetch/fetchrow/fetchval/execute)."""

    def __init__(self, conn: Any, statements: StatementCache) -> None:
        self._conn = conn
        self._statements = statements

    async def _call(self, method: str, stmt: ClauseElement, params: Params) -> Any:
        compiled = self._statements.get(stmt)
        try:
            return await getattr(self._conn, method)(compiled.sql, *compiled.arguments(params))
        except Exception as exc:
            # asyncpg's UniqueViolationError, recognised by its SQLSTATE so asyncpg stays optional.
            if getattr(exc, "sqlstate", None) == "23505":
                raise UniqueViolation(str(exc)) from exc
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

    asyncpg prepares each statement once per connection and caches it, so with the SQL text
    compiled once here a hot query costs one round trip of bind + execute.
    """

    dialect_name = "postgresql"

    def __init__(self, url: str, *, min_size: int = 2, max_size: int = 10) -> None:
        self.url = url
        self._dsn = asyncpg_dsn(url)
        self._statements = StatementCache(_dialect("postgresql+asyncpg://"))
        self._min_size = min_size
        self._max_size = max_size
        self._pool: Any = None
        self._pool_lock = asyncio.Lock()

    async def _get_pool(self) -> Any:
        if self._pool is None:
            async with self._pool_lock:
                if self._pool is None:
                    import asyncpg

                    self._pool = await asyncpg.create_pool(
                        self._dsn,
                        min_size=self._min_size,
                        max_size=self._max_size,
                        reset=_keep_session,
                        # JIT compiles a plan on each execution once its estimated cost passes a
                        # threshold: hundreds of ms spent on statements that run in one.
                        server_settings={"jit": "off"},
                    )
        return self._pool

    async def _pooled(self) -> _PgExecutor:
        return _PgExecutor(self._pool or await self._get_pool(), self._statements)

    async def fetch_all(self, stmt: ClauseElement, params: Params = _EMPTY) -> list[Row]:
        return await (await self._pooled()).fetch_all(stmt, params)

    async def fetch_one(self, stmt: ClauseElement, params: Params = _EMPTY) -> Row | None:
        return await (await self._pooled()).fetch_one(stmt, params)

    async def fetch_value(self, stmt: ClauseElement, params: Params = _EMPTY) -> Any:
        return await (await self._pooled()).fetch_value(stmt, params)

    async def fetch_column(self, stmt: ClauseElement, params: Params = _EMPTY, index: int = 0) -> list[Any]:
        return await (await self._pooled()).fetch_column(stmt, params, index)

    async def execute(self, stmt: ClauseElement, params: Params = _EMPTY) -> int:
        return await (await self._pooled()).execute(stmt, params)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Executor]:
        pool = self._pool or await self._get_pool()
        async with pool.acquire() as conn, conn.transaction():
            yield _PgExecutor(conn, self._statements)

    async def check(self) -> None:
        pool = self._pool or await self._get_pool()
        await pool.fetchval("SELECT 1")

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()


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
