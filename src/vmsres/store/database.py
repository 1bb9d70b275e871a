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

import contextlib
import os
import sqlite3
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.sql.elements import ClauseElement

Row = dict[str, Any]
Params = Mapping[str, Any]


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
        # Only SQL compilers have positiontup (the typed Compiled base does not declare it).
        names = tuple(getattr(compiled, "positiontup", None) or ())
        entry = CompiledStatement(str(compiled), names, dict(compiled.params))
        # Keeping the statement alive pins its id, so a recycled id can never alias another.
        self._cache[id(stmt)] = (stmt, entry)
        return entry


class Executor(Protocol):
    async def fetch_all(self, stmt: ClauseElement, params: Params = ...) -> list[Row]: ...
    async def fetch_one(self, stmt: ClauseElement, params: Params = ...) -> Row | None: ...
    async def fetch_value(self, stmt: ClauseElement, params: Params = ...) -> Any: ...
    async def execute(self, stmt: ClauseElement, params: Params = ...) -> int: ...


class Database(Executor, Protocol):
    url: str
    dialect_name: str

    def transaction(self) -> contextlib.AbstractAsyncContextManager[Executor]: ...
    async def check(self) -> None: ...
    async def close(self) -> None: ...


_EMPTY: Params = {}


class SqliteDatabase:
    """One ``sqlite3`` connection per process, in WAL mode, driven from the event loop."""

    dialect_name = "sqlite"

    def __init__(self, url: str) -> None:
        self.url = url
        self.path = sqlite_path(url)
        self._statements = StatementCache(sa.create_engine("sqlite://").dialect)
        # Autocommit at the driver; transactions are explicit BEGIN IMMEDIATE ... COMMIT so a
        # writer takes the lock up front instead of failing to upgrade a read lock later.
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        configure_sqlite(self._conn)
        self._in_transaction = False

    def _run(self, stmt: ClauseElement, params: Params) -> sqlite3.Cursor:
        compiled = self._statements.get(stmt)
        return self._conn.execute(compiled.sql, compiled.arguments(params))

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


def database_url_for_dir(data_dir: str | os.PathLike[str]) -> str:
    return f"sqlite:///{Path(data_dir).resolve() / 'vmsres.db'}"


def open_database(url: str) -> Database:
    if url.startswith("sqlite:///"):
        return SqliteDatabase(url)
    raise ValueError(f"unsupported database URL: {url.split(':', 1)[0]}:...")
