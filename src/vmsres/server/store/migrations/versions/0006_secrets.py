"""Secrets at rest: every SecretKey encrypted under the master key (see vmsres.server.masterkey).

Revision ID: 0006_secrets
Revises: 0005_hardening
Create Date: 2026-11-26

The master key comes from the process that migrates (vmsres.server.store.migrate.upgrade hands it
over). Run any other way, the migration looks for VMSRES_MASTER_KEY, then for the embedded
default DATA_DIR/master.key beside a SQLite database, creating that file if it is missing.
A PostgreSQL database migrated without a key is refused: no default file location exists.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from vmsres.server.masterkey import Keyring, access_key_context, stored_key_id
from vmsres.server.store.migrate import migration_keyring

revision = "0006_secrets"
down_revision = "0005_hardening"
branch_labels = None
depends_on = None

_access_keys = sa.table("access_keys", sa.column("access_key", sa.String), sa.column("secret_key", sa.String))


def _keyring() -> Keyring:
    return migration_keyring(revision)


def _rewrite(change: object) -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.select(_access_keys.c.access_key, _access_keys.c.secret_key)).all()
    for access_key, stored in rows:
        new = change(access_key, stored)  # type: ignore[operator]
        if new != stored:
            bind.execute(
                _access_keys.update().where(_access_keys.c.access_key == access_key).values(secret_key=new)
            )


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # A sealed secret is longer than its plaintext; SQLite does not enforce lengths.
        op.alter_column("access_keys", "secret_key", type_=sa.String(512), existing_nullable=False)
    keyring = _keyring()

    def seal(access_key: str, stored: str) -> str:
        if stored_key_id(stored) is not None:
            return stored
        return keyring.encrypt(stored, access_key_context(access_key))

    _rewrite(seal)


def downgrade() -> None:
    keyring = _keyring()

    def unseal(access_key: str, stored: str) -> str:
        if stored_key_id(stored) is None:
            return stored
        return keyring.decrypt(stored, access_key_context(access_key))

    _rewrite(unseal)
    op.execute(sa.text("DELETE FROM server_secrets WHERE name = 'master_key_check'"))
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("access_keys", "secret_key", type_=sa.String(256), existing_nullable=False)
