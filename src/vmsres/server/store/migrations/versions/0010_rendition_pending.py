"""Telephony renditions that wait for ffmpeg.

Revision ID: 0010_rendition_pending
Revises: 0009_positions
Create Date: 2026-11-30

``resources.rendition_pending`` is true for an audio resource whose telephony rendition was not
made because ffmpeg was missing; the server makes it once ffmpeg is found (and
``vmsres renditions rebuild`` does on demand). Audio resources stored before this revision without
a rendition are marked pending too: most were stored on a server without ffmpeg, and one that
ffmpeg cannot convert is simply tried once more, then left without one.

Plain ``ADD COLUMN`` (no batch rebuild of the table on SQLite, which would drop the triggers of
0009_positions). The partial index keeps the server's periodic look for pending rows to an index
of the few rows that wait.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_rendition_pending"
down_revision = "0009_positions"
branch_labels = None
depends_on = None

_PENDING = sa.text("rendition_pending")
# SQLAlchemy writes the test as "= 1" on SQLite, whose planner uses a partial index only for a
# query term of the same form.
_PENDING_SQLITE = sa.text("rendition_pending = 1")


def upgrade() -> None:
    op.add_column(
        "resources",
        sa.Column("rendition_pending", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.execute(
        "UPDATE resources SET rendition_pending = true WHERE blob_key IS NOT NULL AND rendition_key IS NULL"
    )
    op.create_index(
        "ix_resources_rendition_pending",
        "resources",
        ["id"],
        sqlite_where=_PENDING_SQLITE,
        postgresql_where=_PENDING,
    )


def downgrade() -> None:
    op.drop_index("ix_resources_rendition_pending", table_name="resources")
    op.drop_column("resources", "rendition_pending")
