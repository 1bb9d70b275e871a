"""Alembic environment: runs on the connection handed over by vmsres.server.store.migrate."""

from __future__ import annotations

from alembic import context

from vmsres.server.store.schema import metadata

config = context.config
connection = config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite alters tables by copying them; batch mode lets one migration serve both databases.
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
