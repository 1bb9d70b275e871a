"""Webhook secrets sealed under the master key, like SecretKeys; backup holds.

Revision ID: 0008_secrets_holds
Revises: 0006_secrets
Create Date: 2026-12-03

account_webhooks.secret is bound to its account_id, each webhook_deliveries.secret to its
event_id. The master key comes from where 0006_secrets takes it (vmsres.server.store.migrate's
migration_keyring): handed over by the migrating process, else VMSRES_MASTER_KEY, else the
embedded DATA_DIR/master.key beside a SQLite database.

backup_holds: a running ``vmsres backup`` keeps blobs from being deleted (see vmsres.ops.backup).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from alembic import op

from vmsres.server.masterkey import delivery_context, stored_key_id, webhook_context
from vmsres.server.store.migrate import migration_keyring

revision = "0008_secrets_holds"
down_revision = "0006_secrets"
branch_labels = None
depends_on = None

_webhooks = sa.table(
    "account_webhooks", sa.column("account_id", sa.BigInteger), sa.column("secret", sa.String)
)
_deliveries = sa.table(
    "webhook_deliveries",
    sa.column("id", sa.BigInteger),
    sa.column("event_id", sa.String),
    sa.column("secret", sa.String),
)
_BATCH = 1000


def _rewrite(
    table: Any, key: str, bound_to: str, context_of: Callable[[Any], str], change: Callable[[str, str], str]
) -> None:
    """Apply ``change(stored, context)`` to every secret of ``table``, updating in batches."""
    bind = op.get_bind()
    rows = bind.execute(sa.select(table.c[key], table.c[bound_to], table.c.secret)).all()
    changed = [
        {"k": row_key, "s": new}
        for row_key, bound, stored in rows
        if (new := change(stored, context_of(bound))) != stored
    ]
    update = table.update().where(table.c[key] == sa.bindparam("k")).values(secret=sa.bindparam("s"))
    for start in range(0, len(changed), _BATCH):
        bind.execute(update, changed[start : start + _BATCH])


def _widen(length: int) -> None:
    # A sealed secret is longer than its plaintext; SQLite does not enforce lengths.
    if op.get_bind().dialect.name == "postgresql":
        for table in ("account_webhooks", "webhook_deliveries"):
            op.alter_column(table, "secret", type_=sa.String(length), existing_nullable=False)


BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "backup_holds",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_backup_holds"),
    )
    _widen(2048)
    keyring = migration_keyring(revision)

    def seal(stored: str, context: str) -> str:
        return stored if stored_key_id(stored) is not None else keyring.encrypt(stored, context)

    _rewrite(_webhooks, "account_id", "account_id", webhook_context, seal)
    _rewrite(_deliveries, "id", "event_id", delivery_context, seal)


def downgrade() -> None:
    keyring = migration_keyring(revision)

    def unseal(stored: str, context: str) -> str:
        return stored if stored_key_id(stored) is None else keyring.decrypt(stored, context)

    _rewrite(_webhooks, "account_id", "account_id", webhook_context, unseal)
    _rewrite(_deliveries, "id", "event_id", delivery_context, unseal)
    _widen(256)
    op.drop_table("backup_holds")
