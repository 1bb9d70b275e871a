"""Positions and generations: deep Offsets without a long index walk, and coherent caches.

Revision ID: 0009_positions
Revises: 0008_secrets_holds
Create Date: 2026-11-24

* ``resource_blocks`` counts resources per (account, type, state) in four levels of CreateTime
  blocks (2**25 s, ~1 year; 2**20 s, ~12 days; 2**15 s, ~9 hours; 2**10 s, ~17 minutes), kept
  by triggers in the writing transaction. A page at Offset k finds its year block, then one of
  the 32 smaller blocks inside it, level by level, and walks the listing index only inside one
  17-minute block (docs/search.md).
* ``resource_generations`` (two numbers per account): ``gen`` changes with every insert, update
  or delete of the account's resources, ``lease_gen`` with every change to its leases. The
  per-worker caches of keyword matches and of answers are valid only while they are unchanged,
  so every worker and every server sees a write at once.
* ``credential_generation`` (one row) changes with every write to accounts or access keys; the
  per-worker cache of verified keys is valid only while it has not changed, so disabling,
  deleting or rotating a key, or changing an account's limits, takes effect at once everywhere.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_positions"
down_revision = "0008_secrets_holds"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# Level i holds blocks of created_at >> SHIFTS[i]; each block holds 32 blocks of the next level.
SHIFTS = (25, 20, 15, 10)


# Removing a row only ever UPDATEs (its block rows and generation exist since it was added):
# an INSERT there would break the foreign key while an account's resources are cascaded away.
def _add_to_blocks(row: str, table: str = "resource_blocks") -> str:
    values = ",\n".join(
        f"({row}.account_id, {row}.type, {level}, {row}.created_at >> {shift}, {row}.state, 1)"
        for level, shift in enumerate(SHIFTS)
    )
    return f"""
        INSERT INTO resource_blocks (account_id, type, level, block, state, n) VALUES {values}
        ON CONFLICT (account_id, type, level, block, state) DO UPDATE SET n = {table}.n + 1;"""


def _remove_from_blocks(row: str) -> str:
    blocks = " OR ".join(
        f"(level = {level} AND block = {row}.created_at >> {shift})" for level, shift in enumerate(SHIFTS)
    )
    return f"""
        UPDATE resource_blocks SET n = n - 1
        WHERE account_id = {row}.account_id AND type = {row}.type AND state = {row}.state
          AND ({blocks});"""


def _bump_generation(row: str, column: str = "gen", table: str = "resource_generations") -> str:
    return f"""
        INSERT INTO resource_generations (account_id, gen, lease_gen) VALUES ({row}.account_id, 1, 1)
        ON CONFLICT (account_id) DO UPDATE SET {column} = {table}.{column} + 1;"""


def _bump_existing_generation(row: str, column: str = "gen") -> str:
    return f"UPDATE resource_generations SET {column} = {column} + 1 WHERE account_id = {row}.account_id;"


_BUMP_CREDENTIALS = "UPDATE credential_generation SET gen = gen + 1 WHERE id = 1;"

_SQLITE_UP = [
    f"""CREATE TRIGGER resources_blocks_ins AFTER INSERT ON resources BEGIN
        {_add_to_blocks("new")} {_bump_generation("new")}
    END""",
    f"""CREATE TRIGGER resources_blocks_del AFTER DELETE ON resources BEGIN
        {_remove_from_blocks("old")} {_bump_existing_generation("old")}
    END""",
    f"""CREATE TRIGGER resources_blocks_upd
    AFTER UPDATE OF account_id, type, state, created_at ON resources
    WHEN old.account_id IS NOT new.account_id OR old.type IS NOT new.type
      OR old.state IS NOT new.state OR old.created_at IS NOT new.created_at
    BEGIN {_remove_from_blocks("old")} {_add_to_blocks("new")} END""",
    # Any update: cached answers hold every column a record shows, not only the filtered ones.
    f"""CREATE TRIGGER resources_generation_upd AFTER UPDATE ON resources
    BEGIN {_bump_existing_generation("old")} {_bump_generation("new")} END""",
    *(
        f"""CREATE TRIGGER resource_leases_generation_{op_name} AFTER {op_name.upper()} ON resource_leases
        BEGIN {_bump_existing_generation(row, "lease_gen")} END"""
        for op_name, row in (("insert", "new"), ("update", "new"), ("delete", "old"))
    ),
    *(
        f"CREATE TRIGGER {table}_credentials_{op_name} AFTER {op_name.upper()} ON {table} "
        f"BEGIN {_BUMP_CREDENTIALS} END"
        for table in ("accounts", "access_keys")
        for op_name in ("insert", "update", "delete")
    ),
]

_POSTGRES_UP = [
    f"""CREATE FUNCTION vmsres_resource_positions() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP IN ('DELETE', 'UPDATE') THEN
            {_remove_from_blocks("OLD")}
        END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') THEN
            {_add_to_blocks("NEW")}
        END IF;
        IF TG_OP = 'INSERT' THEN
            {_bump_generation("NEW")}
        ELSE
            {_bump_existing_generation("OLD")}
        END IF;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER resources_positions
    AFTER INSERT OR DELETE OR UPDATE OF account_id, type, state, created_at ON resources
    FOR EACH ROW EXECUTE FUNCTION vmsres_resource_positions()""",
    # Any update: cached answers hold every column a record shows, not only the filtered ones.
    f"""CREATE FUNCTION vmsres_resource_generation() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        {_bump_generation("NEW")}
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER resources_generation AFTER UPDATE ON resources
    FOR EACH ROW EXECUTE FUNCTION vmsres_resource_generation()""",
    f"""CREATE FUNCTION vmsres_lease_generation() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' THEN
            {_bump_existing_generation("OLD", "lease_gen")}
        ELSE
            {_bump_existing_generation("NEW", "lease_gen")}
        END IF;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER resource_leases_generation AFTER INSERT OR UPDATE OR DELETE ON resource_leases
    FOR EACH ROW EXECUTE FUNCTION vmsres_lease_generation()""",
    f"""CREATE FUNCTION vmsres_credentials_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        {_BUMP_CREDENTIALS}
        RETURN NULL;
    END $$""",
    *(
        f"""CREATE TRIGGER {table}_credentials AFTER INSERT OR UPDATE OR DELETE ON {table}
        FOR EACH STATEMENT EXECUTE FUNCTION vmsres_credentials_changed()"""
        for table in ("accounts", "access_keys")
    ),
]


def upgrade() -> None:
    op.create_table(
        "resource_blocks",
        sa.Column("account_id", BigId, nullable=False),
        sa.Column("type", sa.SmallInteger, nullable=False),
        sa.Column("level", sa.SmallInteger, nullable=False),
        sa.Column("block", sa.BigInteger, nullable=False),
        sa.Column("state", sa.SmallInteger, nullable=False),
        sa.Column("n", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("account_id", "type", "level", "block", "state", name="pk_resource_blocks"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_resource_blocks_account_id_accounts", ondelete="CASCADE"
        ),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "resource_generations",
        sa.Column("account_id", BigId, nullable=False),
        sa.Column("gen", sa.BigInteger, nullable=False),
        sa.Column("lease_gen", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("account_id", name="pk_resource_generations"),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name="fk_resource_generations_account_id_accounts",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "credential_generation",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("gen", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_credential_generation"),
    )
    op.execute("INSERT INTO credential_generation (id, gen) VALUES (1, 1)")
    op.execute("INSERT INTO resource_generations (account_id, gen, lease_gen) SELECT id, 1, 1 FROM accounts")
    for level, shift in enumerate(SHIFTS):
        op.execute(
            "INSERT INTO resource_blocks (account_id, type, level, block, state, n) "
            f"SELECT account_id, type, {level}, created_at >> {shift}, state, count(*) FROM resources "
            f"GROUP BY account_id, type, created_at >> {shift}, state"
        )
    statements = _SQLITE_UP if op.get_bind().dialect.name == "sqlite" else _POSTGRES_UP
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("blocks_ins", "blocks_del", "blocks_upd", "generation_upd"):
            op.execute(f"DROP TRIGGER IF EXISTS resources_{name}")
        for op_name in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS resource_leases_generation_{op_name}")
        for table in ("accounts", "access_keys"):
            for op_name in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_credentials_{op_name}")
    else:
        op.execute("DROP TRIGGER IF EXISTS resources_positions ON resources")
        op.execute("DROP TRIGGER IF EXISTS resources_generation ON resources")
        op.execute("DROP TRIGGER IF EXISTS resource_leases_generation ON resource_leases")
        for table in ("accounts", "access_keys"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_credentials ON {table}")
        for function in (
            "resource_positions",
            "resource_generation",
            "lease_generation",
            "credentials_changed",
        ):
            op.execute(f"DROP FUNCTION IF EXISTS vmsres_{function}()")
    op.drop_table("credential_generation")
    op.drop_table("resource_generations")
    op.drop_table("resource_blocks")
