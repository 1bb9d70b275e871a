"""Statements for per-account limits, quota usage, idempotency tokens and resource leases."""

from __future__ import annotations

from functools import cache
from typing import Any

import sqlalchemy as sa

from vmsres.server.store.database import Database, Executor, Row, insert_or_update, insert_unless_present
from vmsres.server.store.schema import (
    accounts,
    idempotency_tokens,
    resource_counts,
    resource_leases,
    resources,
)

# --- limits and usage ----------------------------------------------------------------------------

_LIMIT_COLUMNS = ("rate_per_key", "rate_per_account", "max_resources", "max_storage_bytes")


@cache
def _set_limits(columns: tuple[str, ...]) -> sa.Update:
    """Only the columns a request changes, so concurrent changes of different limits both stand."""
    return (
        accounts.update()
        .where(accounts.c.id == sa.bindparam("id"))
        .values({column: sa.bindparam(column) for column in columns})
    )


# Taken inside the inserting transaction: on PostgreSQL it serializes an account's creations so
# two concurrent inserts cannot both pass a quota check (SQLite's BEGIN IMMEDIATE already does).
_lock_account = sa.select(accounts.c.id).where(accounts.c.id == sa.bindparam("id")).with_for_update()
_resource_count = sa.select(sa.func.coalesce(sa.func.sum(resource_counts.c.n), 0)).where(
    resource_counts.c.account_id == sa.bindparam("account_id")
)
# A resource's stored bytes: its original, plus its telephony rendition, whose size the caller's
# rendition_header + rendition_per_ms * duration_ms gives (it is not stored).
_rendition_bytes = sa.case(
    (
        resources.c.rendition_key.is_not(None),
        sa.bindparam("rendition_header")
        + sa.bindparam("rendition_per_ms") * sa.func.coalesce(resources.c.duration_ms, 0),
    ),
    else_=0,
)
_storage_bytes = sa.select(
    sa.func.coalesce(sa.func.sum(sa.func.coalesce(resources.c.size_bytes, 0) + _rendition_bytes), 0)
).where(resources.c.account_id == sa.bindparam("account_id"))
# Both in one statement: one round trip on every quota-checked creation.
_usage = sa.select(
    _resource_count.scalar_subquery().label("count"), _storage_bytes.scalar_subquery().label("size")
)

# --- idempotency tokens --------------------------------------------------------------------------

_token_get = sa.select(idempotency_tokens).where(
    idempotency_tokens.c.account_id == sa.bindparam("account_id"),
    idempotency_tokens.c.token == sa.bindparam("token"),
)
# The claim: of concurrent first requests with one token exactly one inserts (row count 1).
_token_claim = insert_unless_present(
    idempotency_tokens,
    {
        "account_id": sa.bindparam("account_id"),
        "token": sa.bindparam("token"),
        "action": sa.bindparam("action"),
        "params_sha256": sa.bindparam("params_sha256"),
        "result": None,
        "created_at": sa.bindparam("now"),
        "expires_at": sa.bindparam("expires_at"),
    },
)
# Only the claim's own pending row takes the answer, or is released.
_token_finish = (
    idempotency_tokens.update()
    .where(
        idempotency_tokens.c.account_id == sa.bindparam("account_id"),
        idempotency_tokens.c.token == sa.bindparam("token"),
        idempotency_tokens.c.result.is_(None),
    )
    .values(result=sa.bindparam("result"), expires_at=sa.bindparam("expires_at"))
)
_token_delete = idempotency_tokens.delete().where(
    idempotency_tokens.c.account_id == sa.bindparam("account_id"),
    idempotency_tokens.c.token == sa.bindparam("token"),
)
_token_delete_expired_one = _token_delete.where(idempotency_tokens.c.expires_at <= sa.bindparam("now"))
_token_release = _token_delete.where(idempotency_tokens.c.result.is_(None))
_tokens_delete_expired = idempotency_tokens.delete().where(
    idempotency_tokens.c.expires_at <= sa.bindparam("now")
)
_tokens_delete_of_account = idempotency_tokens.delete().where(
    idempotency_tokens.c.account_id == sa.bindparam("account_id")
)

# --- leases --------------------------------------------------------------------------------------

_lease_delete = resource_leases.delete().where(resource_leases.c.resource_key == sa.bindparam("resource_key"))
_leases_delete_of_account = resource_leases.delete().where(
    resource_leases.c.account_id == sa.bindparam("account_id")
)
# One statement, so two concurrent leases of one resource never both insert (the last one stands).
_lease_upsert = insert_or_update(
    resource_leases,
    {
        "resource_key": sa.bindparam("resource_key"),
        "account_id": sa.bindparam("account_id"),
        "holder": sa.bindparam("holder"),
        "created_at": sa.bindparam("now"),
        "expires_at": sa.bindparam("expires_at"),
    },
    key=("resource_key",),
    update=("account_id", "holder", "created_at", "expires_at"),
)
_lease_active = sa.select(resource_leases).where(
    resource_leases.c.resource_key == sa.bindparam("resource_key"),
    resource_leases.c.expires_at > sa.bindparam("now"),
)
_lease_columns = (
    resource_leases.c.resource_key,
    resource_leases.c.holder,
    resource_leases.c.created_at,
    resource_leases.c.expires_at,
    accounts.c.name.label("account_name"),
)
_leases_joined = resource_leases.join(accounts, accounts.c.id == resource_leases.c.account_id)
_active_leases = (
    sa.select(*_lease_columns)
    .select_from(_leases_joined)
    .where(resource_leases.c.expires_at > sa.bindparam("now"))
    .order_by(resource_leases.c.expires_at)
    .limit(sa.bindparam("limit"))
)
_active_leases_of_account = _active_leases.where(accounts.c.name == sa.bindparam("account_name"))


class HardeningStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def set_limits(
        self, account_id: int, limits: dict[str, Any], executor: Executor | None = None
    ) -> bool:
        """Set the given limit columns (the others stay); False when there is no such account."""
        columns = tuple(c for c in _LIMIT_COLUMNS if c in limits)
        if not columns:
            return True
        return await (executor or self.db).execute(_set_limits(columns), {"id": account_id, **limits}) > 0

    async def forget_account_library(self, account_id: int, executor: Executor | None = None) -> None:
        """Drop the account's leases and ClientToken answers (a reset's share of this store)."""
        ex = executor or self.db
        await ex.execute(_leases_delete_of_account, {"account_id": account_id})
        await ex.execute(_tokens_delete_of_account, {"account_id": account_id})

    async def usage(
        self,
        account_id: int,
        executor: Executor | None = None,
        lock: bool = False,
        rendition_size: tuple[int, int] = (0, 0),
    ) -> tuple[int, int]:
        """(resources, stored bytes) of the account; ``lock`` holds the account row until commit.

        ``rendition_size`` is (header bytes, bytes per millisecond) of a telephony rendition.
        """
        ex = executor or self.db
        if lock:
            await ex.fetch_value(_lock_account, {"id": account_id})
        header, per_ms = rendition_size
        params = {"account_id": account_id, "rendition_header": header, "rendition_per_ms": per_ms}
        row = await ex.fetch_one(_usage, params)
        assert row is not None
        return int(row["count"] or 0), int(row["size"] or 0)

    # tokens

    async def token(self, account_id: int, token: str) -> Row | None:
        return await self.db.fetch_one(_token_get, {"account_id": account_id, "token": token})

    async def reserve_token(
        self, account_id: int, token: str, action: str, digest: str, now: int, expires_at: int
    ) -> bool:
        """Claim the token for a first request; False when a live claim or answer holds it."""
        async with self.db.transaction() as tx:
            await tx.execute(
                _token_delete_expired_one, {"account_id": account_id, "token": token, "now": now}
            )
            claimed = await tx.execute(
                _token_claim[self.db.dialect_name],
                {
                    "account_id": account_id,
                    "token": token,
                    "action": action,
                    "params_sha256": digest,
                    "now": now,
                    "expires_at": expires_at,
                },
            )
        return claimed == 1

    async def finish_token(
        self, account_id: int, token: str, result: str, expires_at: int, executor: Executor | None = None
    ) -> bool:
        params = {"account_id": account_id, "token": token, "result": result, "expires_at": expires_at}
        return await (executor or self.db).execute(_token_finish, params) > 0

    async def drop_token(self, account_id: int, token: str) -> None:
        """Release a pending claim (a stored answer is never dropped)."""
        await self.db.execute(_token_release, {"account_id": account_id, "token": token})

    async def delete_expired_tokens(self, now: int) -> int:
        return await self.db.execute(_tokens_delete_expired, {"now": now})

    # leases

    async def lease(
        self,
        resource_key: str,
        account_id: int,
        holder: str,
        now: int,
        expires_at: int,
        executor: Executor | None = None,
    ) -> None:
        await (executor or self.db).execute(
            _lease_upsert[self.db.dialect_name],
            {
                "resource_key": resource_key,
                "account_id": account_id,
                "holder": holder,
                "now": now,
                "expires_at": expires_at,
            },
        )

    async def release(self, resource_key: str, executor: Executor | None = None) -> bool:
        return await (executor or self.db).execute(_lease_delete, {"resource_key": resource_key}) > 0

    async def active_lease(self, resource_key: str, now: int, executor: Executor | None = None) -> Row | None:
        return await (executor or self.db).fetch_one(
            _lease_active, {"resource_key": resource_key, "now": now}
        )

    async def active_leases(self, account_name: str | None, now: int, limit: int) -> list[Row]:
        if account_name is None:
            return await self.db.fetch_all(_active_leases, {"now": now, "limit": limit})
        return await self.db.fetch_all(
            _active_leases_of_account, {"now": now, "limit": limit, "account_name": account_name}
        )
