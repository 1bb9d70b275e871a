"""Audio levels: peak, loudness, true peak, silence share and a waveform, measured at commit.

Revision ID: 0012_audio_levels
Revises: 0011_operators
Create Date: 2026-11-30

The levels are measured from the audio by ffmpeg (docs/audio.md), which a migration cannot run:
audio resources stored before this revision are marked ``levels_pending`` and measured by the
server's pass for pending work (at start and every --gc-interval, once ffmpeg is found), by
``vmsres renditions rebuild``, or by the console when it first shows the resource. The waveform is
kept as the hex of its bucket levels: text goes through a backup's JSON lines as it is.

Plain ``ADD COLUMN`` (no batch rebuild of the table on SQLite, which would drop the triggers of
0009_positions); a partial index for the few rows that wait, as in 0010_rendition_pending.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_audio_levels"
down_revision = "0011_operators"
branch_labels = None
depends_on = None

_LEVELS = ("peak_dbfs", "loudness_lufs", "true_peak_dbtp", "silence_share")


def upgrade() -> None:
    for name in _LEVELS:
        op.add_column("resources", sa.Column(name, sa.Float, nullable=True))
    op.add_column("resources", sa.Column("waveform", sa.Text, nullable=True))
    op.add_column(
        "resources", sa.Column("levels_pending", sa.Boolean, nullable=False, server_default=sa.false())
    )
    op.execute("UPDATE resources SET levels_pending = true WHERE blob_key IS NOT NULL")
    op.create_index(
        "ix_resources_levels_pending",
        "resources",
        ["id"],
        sqlite_where=sa.text("levels_pending = 1"),
        postgresql_where=sa.text("levels_pending"),
    )


def downgrade() -> None:
    op.drop_index("ix_resources_levels_pending", table_name="resources")
    for name in ("levels_pending", "waveform", *reversed(_LEVELS)):
        op.drop_column("resources", name)
