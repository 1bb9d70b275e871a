"""What happens to resources, told outward: webhook targets and deliveries, the audit trail."""

from __future__ import annotations

from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql import Select

from vmsres.server.store.database import Database, Executor, Row, insert_or_update
from vmsres.server.store.schema import account_webhooks, audit_log, webhook_deliveries

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"

_webhook_of = sa.select(
    account_webhooks.c.url, account_webhooks.c.secret, account_webhooks.c.updated_at
).where(account_webhooks.c.account_id == sa.bindparam("account_id"))
_delete_webhook = account_webhooks.delete().where(account_webhooks.c.account_id == sa.bindparam("account_id"))
# One statement, so two concurrent settings of one account's webhook never both insert.
_upsert_webhook = insert_or_update(
    account_webhooks,
    {
        "account_id": sa.bindparam("account_id"),
        "url": sa.bindparam("url"),
        "secret": sa.bindparam("secret"),
        "updated_at": sa.bindparam("now"),
    },
    key=("account_id",),
    update=("url", "secret", "updated_at"),
)

_insert_delivery = webhook_deliveries.insert().values(
    {
        c: sa.bindparam(c)
        for c in (
            "event_id",
            "event_type",
            "account_name",
            "resource_key",
            "url",
            "secret",
            "payload",
            "state",
            "next_attempt_ms",
            "give_up_ms",
            "created_at",
        )
    }
)
_due = (
    sa.select(webhook_deliveries.c.id)
    .where(
        webhook_deliveries.c.state == PENDING,
        webhook_deliveries.c.next_attempt_ms <= sa.bindparam("now_ms"),
    )
    .order_by(webhook_deliveries.c.next_attempt_ms, webhook_deliveries.c.id)
    .limit(sa.bindparam("limit"))
)
# Moving next_attempt_ms forward is the claim: only one process sees rowcount 1, and if it dies
# before reporting, the row is due again once the lease passes.
_claim = (
    webhook_deliveries.update()
    .where(
        webhook_deliveries.c.id == sa.bindparam("id"),
        webhook_deliveries.c.state == PENDING,
        webhook_deliveries.c.next_attempt_ms <= sa.bindparam("now_ms"),
    )
    .values(
        next_attempt_ms=sa.bindparam("lease_ms"),
        attempts=webhook_deliveries.c.attempts + 1,
    )
    .returning(*webhook_deliveries.c)
)
# Only the sender holding the claim reports: a sender whose claim lapsed and was taken over
# (attempts moved on) changes nothing.
_finish = (
    webhook_deliveries.update()
    .where(
        webhook_deliveries.c.id == sa.bindparam("id"),
        webhook_deliveries.c.state == PENDING,
        webhook_deliveries.c.attempts == sa.bindparam("attempts"),
    )
    .values(
        state=sa.bindparam("state"),
        next_attempt_ms=sa.bindparam("next_attempt_ms"),
        last_status=sa.bindparam("last_status"),
        last_error=sa.bindparam("last_error"),
        delivered_at=sa.bindparam("delivered_at"),
    )
)

DELIVERY_COLUMNS = tuple(c for c in webhook_deliveries.c if c.name != "secret")


@cache
def _delivery_listing(by_account: bool, by_state: bool) -> Select[Any]:
    stmt = sa.select(*DELIVERY_COLUMNS)
    if by_account:
        stmt = stmt.where(webhook_deliveries.c.account_name == sa.bindparam("account_name"))
    if by_state:
        stmt = stmt.where(webhook_deliveries.c.state == sa.bindparam("state"))
    return stmt.order_by(webhook_deliveries.c.id.desc()).limit(sa.bindparam("limit"))


_insert_audit = audit_log.insert().values(
    {
        c: sa.bindparam(c)
        for c in (
            "at",
            "actor",
            "account_name",
            "access_key",
            "action",
            "resource_key",
            "request_id",
            "outcome",
            "detail",
        )
    }
)


@cache
def _audit_listing(by_account: bool, by_resource: bool, by_action: bool) -> Select[Any]:
    stmt = sa.select(audit_log)
    if by_account:
        stmt = stmt.where(audit_log.c.account_name == sa.bindparam("account_name"))
    if by_resource:
        stmt = stmt.where(audit_log.c.resource_key == sa.bindparam("resource_key"))
    if by_action:
        stmt = stmt.where(audit_log.c.action == sa.bindparam("action"))
    return stmt.order_by(audit_log.c.id.desc()).limit(sa.bindparam("limit"))


class EventStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def webhook(self, account_id: int, executor: Executor | None = None) -> Row | None:
        return await (executor or self.db).fetch_one(_webhook_of, {"account_id": account_id})

    async def set_webhook(
        self, account_id: int, url: str | None, secret: str | None, now: int, executor: Executor | None = None
    ) -> None:
        if url is None:
            await (executor or self.db).execute(_delete_webhook, {"account_id": account_id})
            return
        await (executor or self.db).execute(
            _upsert_webhook[self.db.dialect_name],
            {"account_id": account_id, "url": url, "secret": secret, "now": now},
        )

    async def enqueue(self, values: dict[str, Any], executor: Executor | None = None) -> None:
        await (executor or self.db).execute(_insert_delivery, {"state": PENDING, **values})

    async def due(self, now_ms: int, limit: int) -> list[int]:
        return [r["id"] for r in await self.db.fetch_all(_due, {"now_ms": now_ms, "limit": limit})]

    async def claim(self, delivery_id: int, now_ms: int, lease_ms: int) -> Row | None:
        """The row as claimed (attempts counting this one), or None when another process has it."""
        params = {"id": delivery_id, "now_ms": now_ms, "lease_ms": lease_ms}
        return await self.db.fetch_one(_claim, params)

    async def finish(
        self,
        delivery_id: int,
        attempts: int,
        state: str,
        next_attempt_ms: int,
        last_status: int | None,
        last_error: str | None,
        delivered_at: int | None,
    ) -> bool:
        """Record the outcome of the claimed attempt number ``attempts``; False when the claim
        was lost meanwhile (the row is left to its new holder)."""
        changed = await self.db.execute(
            _finish,
            {
                "id": delivery_id,
                "attempts": attempts,
                "state": state,
                "next_attempt_ms": next_attempt_ms,
                "last_status": last_status,
                "last_error": last_error,
                "delivered_at": delivered_at,
            },
        )
        return changed > 0

    async def deliveries(self, account_name: str | None, state: str | None, limit: int) -> list[Row]:
        params: dict[str, Any] = {"limit": limit}
        if account_name is not None:
            params["account_name"] = account_name
        if state is not None:
            params["state"] = state
        return await self.db.fetch_all(_delivery_listing(account_name is not None, state is not None), params)

    async def append_audit(self, values: dict[str, Any], executor: Executor | None = None) -> None:
        await (executor or self.db).execute(_insert_audit, values)

    async def audit(
        self, account_name: str | None, resource_key: str | None, action: str | None, limit: int
    ) -> list[Row]:
        params: dict[str, Any] = {"limit": limit}
        for name, value in (
            ("account_name", account_name),
            ("resource_key", resource_key),
            ("action", action),
        ):
            if value is not None:
                params[name] = value
        stmt = _audit_listing(account_name is not None, resource_key is not None, action is not None)
        return await self.db.fetch_all(stmt, params)
