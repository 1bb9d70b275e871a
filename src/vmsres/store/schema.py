"""The one schema, in SQLAlchemy Core. Alembic migrations under store/migrations create it.

Times are integer epoch seconds (UTC): portable between SQLite and PostgreSQL, cheap to index,
and formatted for the wire (China time) at the edge.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    # None: the server's --review policy applies.
    sa.Column("review_policy", sa.String(32), nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

access_keys = sa.Table(
    "access_keys",
    metadata,
    sa.Column("access_key", sa.String(128), primary_key=True),
    sa.Column(
        "account_id", BigId, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    sa.Column("secret_key", sa.String(256), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

resources = sa.Table(
    "resources",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("resource_key", sa.String(32), nullable=False, unique=True),
    sa.Column("account_id", BigId, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("type", sa.SmallInteger, nullable=False),
    sa.Column("state", sa.SmallInteger, nullable=False),
    sa.Column("name", sa.String(256), nullable=False),
    # casefold()ed name: the Keyword filter matches on it, the same on every database.
    sa.Column("name_folded", sa.String(512), nullable=False),
    sa.Column("suffix", sa.String(8), nullable=False, server_default=""),
    sa.Column("duration", sa.Integer, nullable=False, server_default="0"),
    sa.Column("remark", sa.String(1024), nullable=False, server_default=""),
    sa.Column("tts_content", sa.Text, nullable=True),
    sa.Column("tts_options", sa.Text, nullable=True),
    sa.Column("reject_reason", sa.Text, nullable=True),
    # Who decided the State: "auto:<rule>" or "reviewer:<name>".
    sa.Column("reviewed_by", sa.String(128), nullable=True),
    sa.Column("reviewed_at", sa.BigInteger, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.Index("ix_resources_listing", "account_id", "type", "created_at", "id"),
    sa.Index("ix_resources_listing_state", "account_id", "type", "state", "created_at", "id"),
)
