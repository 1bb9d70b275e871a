"""Short keywords (1-2 characters) without a scan: a table of every distinct 1- and 2-character
gram of each resource's name_folded, in listing order, kept by triggers.

Revision ID: 0007_ngrams
Revises: 0004_scale
Create Date: 2026-11-26

See docs/search.md ("Short keywords") for the query that walks it.
"""

from __future__ import annotations

from alembic import op

revision = "0007_ngrams"
down_revision = "0004_scale"
branch_labels = None
depends_on = None

# Names are at most 128 characters and casefold() at most triples a character, so 1024
# positions cover every name_folded the API can write, with room to spare.
_MAX_POSITIONS = 1024

# SQLite forbids common table expressions inside triggers, so the character positions of a
# name come from a small table of integers instead of a recursive query.
_SQLITE_GRAMS_OF = """
    SELECT substr({row}.name_folded, p.n, 1) AS gram FROM resource_gram_positions p
    WHERE p.n <= length({row}.name_folded)
    UNION
    SELECT substr({row}.name_folded, p.n, 2) FROM resource_gram_positions p
    WHERE p.n < length({row}.name_folded)"""

_SQLITE_INSERT = """
    INSERT OR IGNORE INTO resource_grams (account_id, type, gram, created_at, id, state)
    SELECT new.account_id, new.type, g.gram, new.created_at, new.id, new.state
    FROM ({grams}) AS g;""".format(grams=_SQLITE_GRAMS_OF.format(row="new"))

_SQLITE_DELETE = """
    DELETE FROM resource_grams
    WHERE account_id = old.account_id AND type = old.type
      AND gram IN ({grams}) AND created_at = old.created_at AND id = old.id;""".format(
    grams=_SQLITE_GRAMS_OF.format(row="old")
)

_SQLITE_UP = [
    """CREATE TABLE resource_gram_positions (n INTEGER PRIMARY KEY)""",
    f"""INSERT INTO resource_gram_positions (n)
    WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {_MAX_POSITIONS})
    SELECT n FROM s""",
    # WITHOUT ROWID: the primary key is the table, so a gram's rows are one contiguous range
    # in listing order and a Total is a count over that range, never a lookup per row.
    """CREATE TABLE resource_grams (
        account_id INTEGER NOT NULL,
        type INTEGER NOT NULL,
        gram TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        id INTEGER NOT NULL,
        state INTEGER NOT NULL,
        PRIMARY KEY (account_id, type, gram, created_at, id)
    ) WITHOUT ROWID""",
    f"CREATE TRIGGER resources_grams_ins AFTER INSERT ON resources BEGIN {_SQLITE_INSERT} END",
    f"CREATE TRIGGER resources_grams_del AFTER DELETE ON resources BEGIN {_SQLITE_DELETE} END",
    f"""CREATE TRIGGER resources_grams_upd
    AFTER UPDATE OF account_id, type, state, name_folded, created_at ON resources
    WHEN old.account_id IS NOT new.account_id OR old.type IS NOT new.type
      OR old.state IS NOT new.state OR old.name_folded IS NOT new.name_folded
      OR old.created_at IS NOT new.created_at
    BEGIN {_SQLITE_DELETE} {_SQLITE_INSERT} END""",
    """INSERT OR IGNORE INTO resource_grams (account_id, type, gram, created_at, id, state)
    SELECT r.account_id, r.type, substr(r.name_folded, p.n, k.k), r.created_at, r.id, r.state
    FROM resources r
    JOIN resource_gram_positions p ON p.n <= length(r.name_folded)
    JOIN (SELECT 1 AS k UNION ALL SELECT 2) k ON p.n + k.k - 1 <= length(r.name_folded)""",
]

_POSTGRES_UP = [
    # COLLATE "C": grams are only ever compared for equality, so byte order is enough and
    # cheaper than the locale's.
    """CREATE TABLE resource_grams (
        account_id bigint NOT NULL,
        type smallint NOT NULL,
        gram text COLLATE "C" NOT NULL,
        created_at bigint NOT NULL,
        id bigint NOT NULL,
        state smallint NOT NULL,
        CONSTRAINT pk_resource_grams PRIMARY KEY (account_id, type, gram, created_at, id)
    )""",
    """CREATE FUNCTION vmsres_grams(name text) RETURNS text[] LANGUAGE sql IMMUTABLE STRICT AS $$
        SELECT coalesce(array_agg(DISTINCT substr(name, i, k)), '{}')
        FROM generate_series(1, length(name)) AS i, (VALUES (1), (2)) AS v(k)
        WHERE i + k - 1 <= length(name)
    $$""",
    """CREATE FUNCTION vmsres_gram_resources() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP IN ('DELETE', 'UPDATE') THEN
            DELETE FROM resource_grams
            WHERE account_id = OLD.account_id AND type = OLD.type
              AND gram = ANY (vmsres_grams(OLD.name_folded))
              AND created_at = OLD.created_at AND id = OLD.id;
        END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') THEN
            INSERT INTO resource_grams (account_id, type, gram, created_at, id, state)
            SELECT NEW.account_id, NEW.type, g, NEW.created_at, NEW.id, NEW.state
            FROM unnest(vmsres_grams(NEW.name_folded)) AS g;
        END IF;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER resources_grams AFTER INSERT OR DELETE ON resources
    FOR EACH ROW EXECUTE FUNCTION vmsres_gram_resources()""",
    """CREATE TRIGGER resources_grams_upd
    AFTER UPDATE OF account_id, type, state, name_folded, created_at ON resources
    FOR EACH ROW WHEN (
        (OLD.account_id, OLD.type, OLD.state, OLD.name_folded, OLD.created_at)
        IS DISTINCT FROM (NEW.account_id, NEW.type, NEW.state, NEW.name_folded, NEW.created_at)
    ) EXECUTE FUNCTION vmsres_gram_resources()""",
    """INSERT INTO resource_grams (account_id, type, gram, created_at, id, state)
    SELECT r.account_id, r.type, g, r.created_at, r.id, r.state
    FROM resources r, unnest(vmsres_grams(r.name_folded)) AS g""",
]


def upgrade() -> None:
    statements = _SQLITE_UP if op.get_bind().dialect.name == "sqlite" else _POSTGRES_UP
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("ins", "del", "upd"):
            op.execute(f"DROP TRIGGER IF EXISTS resources_grams_{name}")
        op.execute("DROP TABLE IF EXISTS resource_gram_positions")
    else:
        op.execute("DROP TRIGGER IF EXISTS resources_grams ON resources")
        op.execute("DROP TRIGGER IF EXISTS resources_grams_upd ON resources")
        op.execute("DROP FUNCTION IF EXISTS vmsres_gram_resources()")
        op.execute("DROP FUNCTION IF EXISTS vmsres_grams(text)")
    op.execute("DROP TABLE IF EXISTS resource_grams")
