"""Accounts, access keys and resources.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("review_policy", sa.String(32), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_accounts"),
        sa.UniqueConstraint("name", name="uq_accounts_name"),
    )
    op.create_table(
        "access_keys",
        sa.Column("access_key", sa.String(128), nullable=False),
        sa.Column("account_id", BigId, nullable=False),
        sa.Column("secret_key", sa.String(256), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("access_key", name="pk_access_keys"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_access_keys_account_id_accounts", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_access_keys_account_id", "access_keys", ["account_id"])
    op.create_table(
        "resources",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("resource_key", sa.String(32), nullable=False),
        sa.Column("account_id", BigId, nullable=False),
        sa.Column("type", sa.SmallInteger, nullable=False),
        sa.Column("state", sa.SmallInteger, nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("name_folded", sa.String(512), nullable=False),
        sa.Column("suffix", sa.String(8), nullable=False, server_default=""),
        sa.Column("duration", sa.Integer, nullable=False, server_default="0"),
        sa.Column("remark", sa.String(1024), nullable=False, server_default=""),
        sa.Column("tts_content", sa.Text, nullable=True),
        sa.Column("tts_options", sa.Text, nullable=True),
        sa.Column("reject_reason", sa.Text, nullable=True),
        sa.Column("reviewed_by", sa.String(128), nullable=True),
        sa.Column("reviewed_at", sa.BigInteger, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_resources"),
        sa.UniqueConstraint("resource_key", name="uq_resources_resource_key"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_resources_account_id_accounts", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_resources_listing", "resources", ["account_id", "type", "created_at", "id"])
    op.create_index(
        "ix_resources_listing_state", "resources", ["account_id", "type", "state", "created_at", "id"]
    )


def downgrade() -> None:
    op.drop_table("resources")
    op.drop_table("access_keys")
    op.drop_table("accounts")
