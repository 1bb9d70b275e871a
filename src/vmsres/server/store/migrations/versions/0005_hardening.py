"""Hardening: per-account limits and quotas, idempotency tokens, resource leases.

Revision ID: 0005_hardening
Revises: 0007_ngrams
Create Date: 2026-12-01

See docs/security.md ("Limits, quotas, idempotency, dry runs, leases").
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_hardening"
down_revision = "0007_ngrams"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_ACCOUNT_COLUMNS = ("rate_per_key", "rate_per_account", "max_resources", "max_storage_bytes")


def upgrade() -> None:
    # batch mode: SQLite cannot ALTER most things in place; adding nullable columns it can, and
    # batch keeps one code path for both databases.
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("rate_per_key", sa.String(32), nullable=True))
        batch.add_column(sa.Column("rate_per_account", sa.String(32), nullable=True))
        batch.add_column(sa.Column("max_resources", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("max_storage_bytes", sa.BigInteger, nullable=True))
    op.create_table(
        "idempotency_tokens",
        sa.Column("account_id", BigId, nullable=False),
        sa.Column("token", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("params_sha256", sa.String(64), nullable=False),
        sa.Column("result", sa.Text, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("account_id", "token", name="pk_idempotency_tokens"),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name="fk_idempotency_tokens_account_id_accounts",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_idempotency_tokens_expires_at", "idempotency_tokens", ["expires_at"])
    op.create_table(
        "resource_leases",
        sa.Column("resource_key", sa.String(32), nullable=False),
        sa.Column("account_id", BigId, nullable=False),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("resource_key", name="pk_resource_leases"),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name="fk_resource_leases_account_id_accounts",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_resource_leases_account_id_expires_at", "resource_leases", ["account_id", "expires_at"]
    )


def downgrade() -> None:
    op.drop_table("resource_leases")
    op.drop_table("idempotency_tokens")
    with op.batch_alter_table("accounts") as batch:
        for name in _ACCOUNT_COLUMNS:
            batch.drop_column(name)
