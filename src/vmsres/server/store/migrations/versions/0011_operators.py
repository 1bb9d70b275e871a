"""Operators: named people with a role and a personal token.

Revision ID: 0011_operators
Revises: 0010_rendition_pending
Create Date: 2026-11-30

One row per operator of the console and the admin API; the token is kept as its sha256 only
(unique, so a presented token finds its operator by one index lookup). ``generation`` grows when
the operator is disabled or given a new token, which ends the console sessions opened before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_operators"
down_revision = "0010_rendition_pending"
branch_labels = None
depends_on = None

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "operators",
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("token_sha256", sa.String(64), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("generation", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_operators"),
        sa.UniqueConstraint("name", name="uq_operators_name"),
        sa.UniqueConstraint("token_sha256", name="uq_operators_token_sha256"),
    )


def downgrade() -> None:
    op.drop_table("operators")
