"""Audio ingestion: audio columns on resources, upload rows, shared server secrets.

Revision ID: 0002_ingest
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_ingest"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("resources") as batch:
        batch.add_column(sa.Column("file_name", sa.String(256), nullable=True))
        batch.add_column(sa.Column("source_url", sa.Text, nullable=True))
        batch.add_column(sa.Column("audio_format", sa.String(8), nullable=True))
        batch.add_column(sa.Column("codec", sa.String(32), nullable=True))
        batch.add_column(sa.Column("sample_rate", sa.Integer, nullable=True))
        batch.add_column(sa.Column("channels", sa.Integer, nullable=True))
        batch.add_column(sa.Column("duration_ms", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("size_bytes", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("sha256", sa.String(64), nullable=True))
        batch.add_column(sa.Column("blob_key", sa.String(512), nullable=True))
        batch.add_column(sa.Column("rendition_key", sa.String(512), nullable=True))
    op.create_index(
        "uq_resources_account_id_file_name", "resources", ["account_id", "file_name"], unique=True
    )
    op.create_table(
        "uploads",
        sa.Column("nonce", sa.String(64), nullable=False),
        sa.Column("account_id", BigId, nullable=False),
        sa.Column("file_name", sa.String(256), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("staging_key", sa.String(512), nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("nonce", name="pk_uploads"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_uploads_account_id_accounts", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_uploads_account_id_file_name", "uploads", ["account_id", "file_name"])
    op.create_index("ix_uploads_expires_at", "uploads", ["expires_at"])
    op.create_table(
        "server_secrets",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.String(256), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_server_secrets"),
    )


def downgrade() -> None:
    op.drop_table("server_secrets")
    op.drop_table("uploads")
    op.drop_index("uq_resources_account_id_file_name", "resources")
    with op.batch_alter_table("resources") as batch:
        for column in (
            "rendition_key",
            "blob_key",
            "sha256",
            "size_bytes",
            "duration_ms",
            "channels",
            "sample_rate",
            "codec",
            "audio_format",
            "source_url",
            "file_name",
        ):
            batch.drop_column(column)
