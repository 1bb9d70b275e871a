"""The review queue across accounts.

Revision ID: 0013_review_queue
Revises: 0012_audio_levels
Create Date: 2026-11-30

The console's and the admin API's review queue reads the resources under review (State 0) of
every account, oldest first, a page at a time, with their exact count and counts per account and
Type. The listing indexes all start with account_id, so without this index each of those reads
walks the whole table; with it they read only the rows under review, already in queue order.
account_id and type ride along at the end, so the total and the counts are read from the index
alone.
"""

from __future__ import annotations

from alembic import op

revision = "0013_review_queue"
down_revision = "0012_audio_levels"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_resources_review_queue", "resources", ["state", "created_at", "id", "account_id", "type"]
    )


def downgrade() -> None:
    op.drop_index("ix_resources_review_queue", table_name="resources")
