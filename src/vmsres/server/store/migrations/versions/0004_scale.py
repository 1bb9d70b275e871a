"""Search and counts that scale: per-(account, type, state) counts kept by triggers, and
trigram indexes for Keyword substrings (SQLite FTS5 trigram, PostgreSQL pg_trgm GIN).

Revision ID: 0004_scale
Revises: 0003_review
Create Date: 2026-11-25

See docs/search.md for why each index exists and which query uses it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_scale"
down_revision = "0003_review"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_SQLITE_UP = [
    # Counts: one row per (account, type, state); the triggers run inside the writing
    # transaction, so a Total read from here is as exact as count(*) and costs one lookup.
    """CREATE TRIGGER resources_count_ins AFTER INSERT ON resources BEGIN
        INSERT INTO resource_counts (account_id, type, state, n)
        VALUES (new.account_id, new.type, new.state, 1)
        ON CONFLICT (account_id, type, state) DO UPDATE SET n = n + 1;
    END""",
    """CREATE TRIGGER resources_count_del AFTER DELETE ON resources BEGIN
        UPDATE resource_counts SET n = n - 1
        WHERE account_id = old.account_id AND type = old.type AND state = old.state;
    END""",
    """CREATE TRIGGER resources_count_upd AFTER UPDATE OF account_id, type, state ON resources
    WHEN old.account_id IS NOT new.account_id OR old.type IS NOT new.type OR old.state IS NOT new.state
    BEGIN
        UPDATE resource_counts SET n = n - 1
        WHERE account_id = old.account_id AND type = old.type AND state = old.state;
        INSERT INTO resource_counts (account_id, type, state, n)
        VALUES (new.account_id, new.type, new.state, 1)
        ON CONFLICT (account_id, type, state) DO UPDATE SET n = n + 1;
    END""",
    # External-content FTS5 over name_folded: only the trigram index is stored, not the text.
    """CREATE VIRTUAL TABLE resources_fts USING fts5(
        name_folded, content='resources', content_rowid='id', tokenize='trigram')""",
    """CREATE TRIGGER resources_fts_ins AFTER INSERT ON resources BEGIN
        INSERT INTO resources_fts (rowid, name_folded) VALUES (new.id, new.name_folded);
    END""",
    """CREATE TRIGGER resources_fts_del AFTER DELETE ON resources BEGIN
        INSERT INTO resources_fts (resources_fts, rowid, name_folded)
        VALUES ('delete', old.id, old.name_folded);
    END""",
    """CREATE TRIGGER resources_fts_upd AFTER UPDATE OF name_folded ON resources BEGIN
        INSERT INTO resources_fts (resources_fts, rowid, name_folded)
        VALUES ('delete', old.id, old.name_folded);
        INSERT INTO resources_fts (rowid, name_folded) VALUES (new.id, new.name_folded);
    END""",
    "INSERT INTO resources_fts (resources_fts) VALUES ('rebuild')",
]

_POSTGRES_UP = [
    """CREATE FUNCTION vmsres_count_resources() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP IN ('DELETE', 'UPDATE') THEN
            UPDATE resource_counts SET n = n - 1
            WHERE account_id = OLD.account_id AND type = OLD.type AND state = OLD.state;
        END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') THEN
            INSERT INTO resource_counts (account_id, type, state, n)
            VALUES (NEW.account_id, NEW.type, NEW.state, 1)
            ON CONFLICT (account_id, type, state) DO UPDATE SET n = resource_counts.n + 1;
        END IF;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER resources_count AFTER INSERT OR DELETE OR UPDATE OF account_id, type, state
    ON resources FOR EACH ROW EXECUTE FUNCTION vmsres_count_resources()""",
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX ix_resources_name_trgm ON resources USING gin (name_folded gin_trgm_ops)",
]


def upgrade() -> None:
    op.create_table(
        "resource_counts",
        sa.Column("account_id", BigId, nullable=False),
        sa.Column("type", sa.SmallInteger, nullable=False),
        sa.Column("state", sa.SmallInteger, nullable=False),
        sa.Column("n", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("account_id", "type", "state", name="pk_resource_counts"),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name="fk_resource_counts_account_id_accounts",
            ondelete="CASCADE",
        ),
    )
    op.execute(
        "INSERT INTO resource_counts (account_id, type, state, n) "
        "SELECT account_id, type, state, count(*) FROM resources GROUP BY account_id, type, state"
    )
    statements = _SQLITE_UP if op.get_bind().dialect.name == "sqlite" else _POSTGRES_UP
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("count_ins", "count_del", "count_upd", "fts_ins", "fts_del", "fts_upd"):
            op.execute(f"DROP TRIGGER IF EXISTS resources_{name}")
        op.execute("DROP TABLE IF EXISTS resources_fts")
    else:
        op.execute("DROP TRIGGER IF EXISTS resources_count ON resources")
        op.execute("DROP FUNCTION IF EXISTS vmsres_count_resources()")
        op.execute("DROP INDEX IF EXISTS ix_resources_name_trgm")
    op.drop_table("resource_counts")
