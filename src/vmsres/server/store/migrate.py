"""Bring a database to the newest schema with the Alembic migrations shipped in the package."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from vmsres.server.masterkey import (
    CHECK_CONTEXT,
    CHECK_PLAINTEXT,
    CHECK_SECRET_NAME,
    Keyring,
    MasterKeyError,
    load_keyring,
)
from vmsres.server.settings import MASTER_KEY_ENV

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


class DatabaseUnreachable(Exception):
    """The database did not accept a connection (down, wrong URL, no such database)."""


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def sync_url(url: str) -> str:
    """The URL of a synchronous driver for the same database (Alembic runs synchronously)."""
    if url.startswith("postgresql+asyncpg://"):
        return "postgresql+psycopg://" + url.removeprefix("postgresql+asyncpg://")
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def migration_keyring(revision: str) -> Keyring:
    """The master key, for a migration that seals or unseals secrets (call it from inside one).

    The process that migrates hands it over (``upgrade``). Run any other way, a migration uses
    VMSRES_MASTER_KEY, else the embedded default DATA_DIR/master.key beside a SQLite database
    (creating it). A PostgreSQL database has no default key location, so it is refused.
    """
    from alembic import context, op

    given = context.config.attributes.get("keyring")
    if given is not None:
        return given  # type: ignore[no-any-return]
    bind = op.get_bind()
    if bind.dialect.name == "sqlite" and bind.engine.url.database:
        return load_keyring(Path(bind.engine.url.database).parent, None, create=True)
    if os.environ.get(MASTER_KEY_ENV):
        return load_keyring(".", None, create=False)
    raise MasterKeyError(f"migration {revision} needs the master key: set {MASTER_KEY_ENV}")


# Any constant shared by every vmsres process; it names the lock, nothing else.
MIGRATION_LOCK_ID = 0x766D7372  # "vmsr"
STARTUP_LOCK_ID = MIGRATION_LOCK_ID + 1


def upgrade(url: str, keyring: Keyring | None = None, *, durable: bool = True) -> None:
    """Migrate to head; with ``keyring``, also prove it is the master key this database needs.

    ``durable`` False: SQLite skips its syncs (a throwaway file, e.g. the schema image).
    """
    engine = sa.create_engine(sync_url(url))
    if not durable and engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _without_syncs)
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # Several processes may start at once; the transaction-scoped lock makes the
                # later ones wait and then find the schema already at head. (PostgreSQL DDL is
                # transactional, so the whole upgrade commits or none of it.)
                connection.execute(sa.select(sa.func.pg_advisory_xact_lock(MIGRATION_LOCK_ID)))
            config = alembic_config()
            config.attributes["connection"] = connection
            config.attributes["keyring"] = keyring
            command.upgrade(config, "head")
            if keyring is not None:
                check_master_key(connection, keyring)
    finally:
        engine.dispose()


def _without_syncs(dbapi_connection: sqlite3.Connection, _: object) -> None:
    dbapi_connection.execute("PRAGMA synchronous=OFF")
    dbapi_connection.execute("PRAGMA journal_mode=MEMORY")


_sqlite_head_image: bytes | None = None
# The last keyring's image with its key check row: test tools give their stores one key.
_sqlite_keyed_image: tuple[str, bytearray] | None = None
_sqlite_head_image_lock = threading.Lock()


def create_sqlite_at_head(url: str, keyring: Keyring) -> None:
    """A new SQLite store at head, written from an image of the migrated schema made once per
    process: for test tools that create many stores in one process (running the migrations takes
    tens of milliseconds, writing the image about one). The file is the one ``upgrade`` makes,
    already in WAL mode as every server process puts it.
    """
    from sqlalchemy.pool import StaticPool

    from vmsres.server.store.database import sqlite_path

    global _sqlite_head_image, _sqlite_keyed_image
    keys = ",".join(keyring.key_ids)
    with _sqlite_head_image_lock:
        if _sqlite_head_image is None:
            with tempfile.TemporaryDirectory(prefix="vmsres-schema-") as folder:
                template = Path(folder) / "vmsres.db"
                upgrade(f"sqlite:///{template}", keyring=None, durable=False)
                with contextlib.closing(sqlite3.connect(template)) as conn:
                    _sqlite_head_image = conn.serialize()
        head_image, keyed = _sqlite_head_image, _sqlite_keyed_image
    if keyed is None or keyed[0] != keys:
        # The master-key check row is added in memory, so writing the store costs no fsync.
        with contextlib.closing(sqlite3.connect(":memory:", check_same_thread=False)) as memory:
            memory.deserialize(head_image)
            engine = sa.create_engine("sqlite://", creator=lambda: memory, poolclass=StaticPool)
            try:
                with engine.begin() as connection:
                    check_master_key(connection, keyring)
                image = bytearray(memory.serialize())
            finally:
                engine.dispose()
        # Header bytes 18-19 (file format write/read version) 2: WAL mode, which switching to by
        # PRAGMA on the file would cost a sync.
        image[18:20] = b"\x02\x02"
        keyed = _sqlite_keyed_image = (keys, image)
    with open(sqlite_path(url), "xb") as file:
        file.write(keyed[1])


_server_secrets = sa.table("server_secrets", sa.column("name", sa.String), sa.column("value", sa.String))


def check_master_key(connection: sa.Connection, keyring: Keyring) -> None:
    """Raise MasterKeyError unless ``keyring`` decrypts this database's secrets.

    The first process to open a database records a value encrypted with its key; every later
    one must decrypt it. A server with the wrong key thus refuses to start instead of refusing
    every request.
    """
    stored = connection.execute(
        sa.select(_server_secrets.c.value).where(_server_secrets.c.name == CHECK_SECRET_NAME)
    ).scalar()
    if stored is None:
        connection.execute(
            _server_secrets.insert().values(
                name=CHECK_SECRET_NAME, value=keyring.encrypt(CHECK_PLAINTEXT, CHECK_CONTEXT)
            )
        )
        return
    try:
        ok = keyring.decrypt(stored, CHECK_CONTEXT) == CHECK_PLAINTEXT
    except MasterKeyError as error:
        raise MasterKeyError(f"wrong master key for this database: {error}") from None
    if not ok:
        raise MasterKeyError("wrong master key for this database")


@contextlib.contextmanager
def startup_lock(url: str) -> Iterator[None]:
    """Held by a starting server around migrations and bootstrap, so that processes started
    together do not both find "no bootstrap key yet" and both insert it.

    PostgreSQL: a session advisory lock (another id than the migrations' own lock, which is
    taken inside). SQLite: an flock on a file beside the database.
    """
    if url.startswith("sqlite:///"):
        import fcntl

        from vmsres.server.store.database import sqlite_path

        with open(sqlite_path(url) + ".startup-lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return
    import psycopg

    from vmsres.server.store.database import asyncpg_dsn

    try:
        connection = psycopg.connect(asyncpg_dsn(url), autocommit=True)
    except psycopg.Error as error:
        raise DatabaseUnreachable(str(error).strip()) from None
    with connection as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (STARTUP_LOCK_ID,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (STARTUP_LOCK_ID,))


def maintenance_warnings(url: str) -> list[str]:
    """Settings of the PostgreSQL server under which the store slows down as it is used.

    Every write updates a few rows in place (its account's counts, blocks and generations),
    and every write adds name grams. Without autovacuum the dead versions of those rows and the
    planner's statistics are left as they were, so counts and pages slow down as the tables
    grow. SQLite stores have no such setting.
    """
    if url.startswith("sqlite:///"):
        return []
    import psycopg

    from vmsres.server.store.database import asyncpg_dsn

    try:
        with psycopg.connect(asyncpg_dsn(url), autocommit=True) as conn:
            off = [
                name
                for name in ("autovacuum", "track_counts")
                if (row := conn.execute(f"SHOW {name}").fetchone()) is not None and row[0] != "on"
            ]
    except psycopg.Error:
        return []  # the server answers the same question with /readyz once it runs
    if not off:
        return []
    return [
        f"PostgreSQL runs without autovacuum ({', '.join(f'{name} = off' for name in off)}): the "
        "rows that every write updates and the planner's statistics are never cleaned up, so "
        "pages and counts slow down as the store is written to. Turn autovacuum on, or run "
        "VACUUM ANALYZE on a schedule (docs/deploy.md)."
    ]


def store_revision(url: str) -> str | None:
    """The schema revision of the store at ``url``; None when there is no vmsres store there.

    A missing SQLite file is not created (connecting would create it).
    """
    from vmsres.server.store.database import sqlite_path

    if url.startswith("sqlite:///") and not Path(sqlite_path(url)).is_file():
        return None
    engine = sa.create_engine(sync_url(url))
    try:
        with engine.connect() as connection:
            return current_revision(connection)
    finally:
        engine.dispose()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: sa.Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


# A lightweight handle on Alembic's bookkeeping table, for the readiness check.
alembic_version = sa.table("alembic_version", sa.column("version_num", sa.String))
select_schema_revision = sa.select(alembic_version.c.version_num)
