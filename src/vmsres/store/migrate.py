"""Bring a database to the newest schema with the Alembic migrations shipped in the package."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


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


# Any constant shared by every vmsres process; it names the lock, nothing else.
MIGRATION_LOCK_ID = 0x766D7372  # "vmsr"


def upgrade(url: str) -> None:
    engine = sa.create_engine(sync_url(url))
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # Several processes may start at once; the transaction-scoped lock makes the
                # later ones wait and then find the schema already at head. (PostgreSQL DDL is
                # transactional, so the whole upgrade commits or none of it.)
                connection.execute(sa.select(sa.func.pg_advisory_xact_lock(MIGRATION_LOCK_ID)))
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    finally:
        engine.dispose()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: sa.Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


# A lightweight handle on Alembic's bookkeeping table, for the readiness check.
alembic_version = sa.table("alembic_version", sa.column("version_num", sa.String))
select_schema_revision = sa.select(alembic_version.c.version_num)
