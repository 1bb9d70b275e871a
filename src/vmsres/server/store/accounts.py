"""Accounts and their access keys."""

from __future__ import annotations

import sqlalchemy as sa

from vmsres.server.store.database import Database, Executor, Row, insert_unless_present
from vmsres.server.store.schema import access_keys, accounts, credential_generation, resource_generations

# Of concurrent creations of one name exactly one inserts (row count 1); no unique-violation
# error, so a transaction creating several things goes on after finding one taken.
_insert_account = insert_unless_present(
    accounts, {"name": sa.bindparam("name"), "created_at": sa.bindparam("created_at"), "enabled": sa.true()}
)
_account_by_name = sa.select(accounts).where(accounts.c.name == sa.bindparam("name"))
_all_accounts = sa.select(accounts).order_by(accounts.c.id)
_set_account_policy = (
    accounts.update()
    .where(accounts.c.name == sa.bindparam("name"))
    .values(review_policy=sa.bindparam("policy"))
)

_insert_key = insert_unless_present(
    access_keys,
    {
        "access_key": sa.bindparam("access_key"),
        "account_id": sa.bindparam("account_id"),
        "secret_key": sa.bindparam("secret_key"),
        "enabled": sa.true(),
        "created_at": sa.bindparam("created_at"),
    },
)
_key_columns = (
    access_keys.c.access_key,
    access_keys.c.enabled,
    access_keys.c.created_at,
    accounts.c.name.label("account_name"),
)
_keys_joined = access_keys.join(accounts, accounts.c.id == access_keys.c.account_id)
_all_keys = sa.select(*_key_columns).select_from(_keys_joined).order_by(access_keys.c.created_at)
_keys_of_account = _all_keys.where(accounts.c.name == sa.bindparam("account_name"))
# The one query on every signed request: the key, its secret and its account in one row.
_lookup_key = (
    sa.select(
        access_keys.c.access_key,
        access_keys.c.secret_key,
        access_keys.c.enabled,
        access_keys.c.account_id,
        accounts.c.name.label("account_name"),
        accounts.c.enabled.label("account_enabled"),
        accounts.c.review_policy,
        accounts.c.rate_per_key,
        accounts.c.rate_per_account,
        accounts.c.max_resources,
        accounts.c.max_storage_bytes,
    )
    .select_from(_keys_joined)
    .where(access_keys.c.access_key == sa.bindparam("access_key"))
)
_set_key_enabled = (
    access_keys.update()
    .where(access_keys.c.access_key == sa.bindparam("access_key"))
    .values(enabled=sa.bindparam("enabled"))
)
_set_secret = (
    access_keys.update()
    .where(access_keys.c.access_key == sa.bindparam("access_key"))
    .values(secret_key=sa.bindparam("secret_key"))
)
_credential_generation = sa.select(credential_generation.c.gen).where(credential_generation.c.id == 1)
# With a key already verified, its account is known: one statement reads whether the key may
# still be trusted and the account's listing version (service/answers.py), one round trip.
_generations_of_account = (
    sa.select(
        credential_generation.c.gen.label("credentials"),
        resource_generations.c.gen.label("resources"),
        resource_generations.c.lease_gen.label("leases"),
    )
    .select_from(
        credential_generation.outerjoin(
            resource_generations, resource_generations.c.account_id == sa.bindparam("account_id")
        )
    )
    .where(credential_generation.c.id == 1)
)
_delete_key = access_keys.delete().where(access_keys.c.access_key == sa.bindparam("access_key"))


class AccountStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create_account(self, name: str, now: int, executor: Executor | None = None) -> bool:
        """False when the name is taken."""
        params = {"name": name, "created_at": now}
        return await (executor or self.db).execute(_insert_account[self.db.dialect_name], params) > 0

    async def account_by_name(self, name: str, executor: Executor | None = None) -> Row | None:
        return await (executor or self.db).fetch_one(_account_by_name, {"name": name})

    async def list_accounts(self) -> list[Row]:
        return await self.db.fetch_all(_all_accounts)

    async def set_review_policy(
        self, name: str, policy: str | None, executor: Executor | None = None
    ) -> bool:
        """False when there is no such account (the row count decides)."""
        return await (executor or self.db).execute(_set_account_policy, {"name": name, "policy": policy}) > 0

    async def create_key(
        self, account_id: int, access_key: str, secret_key: str, now: int, executor: Executor | None = None
    ) -> bool:
        """False when the access key exists already."""
        params = {
            "access_key": access_key,
            "account_id": account_id,
            "secret_key": secret_key,
            "created_at": now,
        }
        return await (executor or self.db).execute(_insert_key[self.db.dialect_name], params) > 0

    async def list_keys(self, account_name: str | None = None) -> list[Row]:
        if account_name is None:
            return await self.db.fetch_all(_all_keys)
        return await self.db.fetch_all(_keys_of_account, {"account_name": account_name})

    async def credential_generation(self) -> int:
        """Changes with every write to accounts or access keys (triggers, migration 0009)."""
        return int(await self.db.fetch_value(_credential_generation) or 0)

    async def generations(self, account_id: int) -> tuple[int, tuple[int, int]]:
        """(credential generation, (resources, leases) generations of the account)."""
        row = await self.db.fetch_one(_generations_of_account, {"account_id": account_id})
        if row is None:
            return 0, (0, 0)
        return int(row["credentials"]), (int(row["resources"] or 0), int(row["leases"] or 0))

    async def lookup_key(self, access_key: str, executor: Executor | None = None) -> Row | None:
        return await (executor or self.db).fetch_one(_lookup_key, {"access_key": access_key})

    async def set_key_enabled(self, access_key: str, enabled: bool, executor: Executor | None = None) -> bool:
        params = {"access_key": access_key, "enabled": enabled}
        return await (executor or self.db).execute(_set_key_enabled, params) > 0

    async def set_secret(self, access_key: str, secret_key: str, executor: Executor | None = None) -> bool:
        params = {"access_key": access_key, "secret_key": secret_key}
        return await (executor or self.db).execute(_set_secret, params) > 0

    async def delete_key(self, access_key: str, executor: Executor | None = None) -> bool:
        return await (executor or self.db).execute(_delete_key, {"access_key": access_key}) > 0
