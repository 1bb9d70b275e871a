"""PostgreSQL: the trigram index of names takes each write at once (no GIN pending list).

Revision ID: 0014_trigram_fastupdate
Revises: 0013_review_queue
Create Date: 2026-11-30

A GIN index (ix_resources_name_trgm, migration 0004) normally keeps new entries in a pending list
and merges them later (on VACUUM, or when the list reaches gin_pending_list_limit, 4 MB). Every
search reads the whole pending list too. After 20,000 creates in a store of 5,000,000 resources a
ResourceKey keyword page took 10 ms instead of 0.9 ms (docs/benchmarks.md); a service written to
all day never gets to the fast case. With fastupdate off each insert updates the index itself.
SQLite has no such index: nothing changes there.
"""

from __future__ import annotations

from alembic import op

revision = "0014_trigram_fastupdate"
down_revision = "0013_review_queue"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER INDEX ix_resources_name_trgm SET (fastupdate = off)")
    # What is pending already would stay until the next VACUUM: merged now.
    op.execute("SELECT gin_clean_pending_list('ix_resources_name_trgm'::regclass)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER INDEX ix_resources_name_trgm RESET (fastupdate)")
