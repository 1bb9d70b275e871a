"""``vmsres keys rotate-master-key``: every sealed secret re-encrypted in one transaction."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from vmsres.server.masterkey import (
    CHECK_CONTEXT,
    CHECK_PLAINTEXT,
    CHECK_SECRET_NAME,
    Keyring,
    access_key_context,
    default_key_file,
    delivery_context,
    generate_key_text,
    load_keyring,
    parse_keys,
    stored_key_id,
    unseal,
    webhook_context,
    write_key_file,
)
from vmsres.server.service.shared_secrets import secret_context
from vmsres.server.settings import MASTER_KEY_ENV, Settings
from vmsres.server.store import migrate
from vmsres.server.store.schema import access_keys, account_webhooks, server_secrets, webhook_deliveries

_BATCH = 1000


def _reseal_webhooks(conn: sa.Connection, current: Keyring, new: Keyring) -> int:
    """Every webhook secret and every queued delivery's copy, under ``new``; how many."""
    count = 0
    for table, key, bound_to, context_of in (
        (account_webhooks, account_webhooks.c.account_id, account_webhooks.c.account_id, webhook_context),
        (webhook_deliveries, webhook_deliveries.c.id, webhook_deliveries.c.event_id, delivery_context),
    ):
        update = table.update().where(key == sa.bindparam("k")).values(secret=sa.bindparam("s"))
        # A value an older process wrote in plaintext gets sealed here too.
        rows = conn.execute(sa.select(key, bound_to, table.c.secret)).all()
        for start in range(0, len(rows), _BATCH):
            batch = [
                {
                    "k": row_key,
                    "s": new.encrypt(unseal(current, stored, context_of(bound)), context_of(bound)),
                }
                for row_key, bound, stored in rows[start : start + _BATCH]
            ]
            conn.execute(update, batch)
            count += len(batch)
    return count


def rotate_master_key(settings: Settings, new_key_file: Path) -> dict[str, Any]:
    """Re-encrypt under the first key of ``new_key_file`` (made if missing); all or nothing.

    When the current key is the embedded default file, the new key replaces it afterwards, so
    the next start finds it. A crash between the commit and that swap leaves the database under
    the new key and the old default file: the server then refuses to start, naming the key id
    it needs, and ``new_key_file`` still holds it.
    """
    url = settings.resolved_database_url()
    current = load_keyring(settings.data_dir, settings.master_key_file, create=False)
    if not new_key_file.exists():
        write_key_file(new_key_file, generate_key_text())
    new_text = new_key_file.read_text()
    new = Keyring(parse_keys(new_text, str(new_key_file)), str(new_key_file))
    # At head, and the current key proven to fit, before anything is rewritten.
    migrate.upgrade(url, current)
    engine = sa.create_engine(migrate.sync_url(url))
    count = 0
    server_count = 0
    webhook_count = 0
    try:
        with engine.begin() as conn:
            # A write first: SQLite takes its write lock here, so no writer can slip in between
            # reading the rows and rewriting them.
            conn.execute(
                server_secrets.update()
                .where(server_secrets.c.name == CHECK_SECRET_NAME)
                .values(value=new.encrypt(CHECK_PLAINTEXT, CHECK_CONTEXT))
            )
            if conn.dialect.name == "postgresql":
                # No new key, webhook or delivery may be sealed under the old key meanwhile.
                conn.execute(
                    sa.text(
                        "LOCK TABLE access_keys, account_webhooks, webhook_deliveries "
                        "IN SHARE ROW EXCLUSIVE MODE"
                    )
                )
            named = conn.execute(
                sa.select(server_secrets.c.name, server_secrets.c.value).where(
                    server_secrets.c.name != CHECK_SECRET_NAME
                )
            ).all()
            for name, stored in named:
                if stored_key_id(stored) is None:
                    continue  # written before server secrets were sealed; SharedSecrets reads it as is
                context = secret_context(name)
                conn.execute(
                    server_secrets.update()
                    .where(server_secrets.c.name == name)
                    .values(value=new.encrypt(current.decrypt(stored, context), context))
                )
                server_count += 1
            rows = conn.execute(sa.select(access_keys.c.access_key, access_keys.c.secret_key)).all()
            for access_key, stored in rows:
                context = access_key_context(access_key)
                conn.execute(
                    access_keys.update()
                    .where(access_keys.c.access_key == access_key)
                    .values(secret_key=new.encrypt(current.decrypt(stored, context), context))
                )
                count += 1
            webhook_count = _reseal_webhooks(conn, current, new)
    finally:
        engine.dispose()
    installed: str | None = None
    if not os.environ.get(MASTER_KEY_ENV) and settings.master_key_file is None:
        default = default_key_file(settings.data_dir)
        if default.resolve() != new_key_file.resolve():
            write_key_file(default, new_text, replace=True)
            installed = str(default)
    return {
        "Secrets": count,
        "ServerSecrets": server_count,
        "WebhookSecrets": webhook_count,
        "KeyId": new.primary_id,
        "PreviousKeyId": current.primary_id,
        "InstalledAs": installed,
    }
