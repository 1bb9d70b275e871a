"""Events about resources: webhook targets, the outbox of deliveries, and the audit trail."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

from vmsres.server.masterkey import Keyring, delivery_context, unseal, webhook_context
from vmsres.server.store.database import Executor, Row
from vmsres.server.store.events import EventStore

DEFAULT_MAX_AGE_SECONDS = 24 * 3600


class WebhookError(Exception):
    """A webhook setting that cannot be stored (bad URL, empty secret)."""


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made a change, as the audit trail records it."""

    kind: str  # "key", "admin", "operator", "cli", "system", "console"
    account_name: str | None = None
    access_key: str | None = None
    name: str | None = None


@dataclass(slots=True)
class AuditContext:
    """Who asks for a change, under which request id and action name. A service that makes the
    change writes the "ok" audit row in the changing transaction (so it exists exactly when the
    change does) and sets ``written`` once that transaction committed; the caller records
    anything else (a refusal, a failure) itself.

    With a ClientToken the caller also gives ``answer`` (the action's Result, built from the
    changed row) and ``keep_answer`` (stores it under the token); the service calls them in the
    changing transaction too, so a token's answer is stored exactly when its change is made and
    a crash in between cannot leave a change whose token would run it again."""

    actor: Actor
    request_id: str
    action: str
    written: bool = False
    answer: Callable[[Row], Any] | None = None
    keep_answer: Callable[[Any, Executor], Awaitable[None]] | None = None
    answered: bool = False

    async def changed(self, tx: Executor, row: Row) -> None:
        """In the changing transaction, after the change: keep the token's answer, if any."""
        if self.answer is not None and self.keep_answer is not None:
            await self.keep_answer(self.answer(row), tx)
            self.answered = True


def resource_payload(row: Row) -> dict[str, Any]:
    return {
        "ResourceKey": row["resource_key"],
        "Name": row["name"],
        "Type": row["type"],
        "State": row["state"],
        "RejectReason": row.get("reject_reason") or "",
        "ReviewedBy": row.get("reviewed_by") or "",
    }


def check_webhook_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookError("a webhook URL must be an absolute http:// or https:// URL")
    if len(url) > 2048:
        raise WebhookError("a webhook URL is at most 2048 characters")
    return url


def check_webhook_secret(secret: str) -> str:
    if len(secret) > 256:
        raise WebhookError("a webhook secret is at most 256 characters")
    return secret


class EventService:
    def __init__(
        self,
        store: EventStore,
        keyring: Keyring,
        clock: Callable[[], float] = time.time,
        max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS,
    ) -> None:
        self.store = store
        self.keyring = keyring
        self.clock = clock
        self.max_age_seconds = max_age_seconds
        # Set by a dispatcher in this process so a new delivery goes out without waiting a poll.
        self.wakeup: Callable[[], None] | None = None

    async def set_webhook(
        self, account_id: int, url: str | None, secret: str | None, now: int, tx: Executor | None = None
    ) -> None:
        """Store (url None: remove) the account's webhook; the secret is sealed under the master key."""
        sealed = None if secret is None else self.keyring.encrypt(secret, webhook_context(account_id))
        await self.store.set_webhook(account_id, url, sealed, now, tx)

    async def webhook_url(self, account_id: int) -> str | None:
        hook = await self.store.webhook(account_id)
        return None if hook is None else str(hook["url"])

    async def audit_trail(
        self, account_name: str | None, resource_key: str | None, action: str | None, limit: int
    ) -> list[Row]:
        """Newest first."""
        return await self.store.audit(account_name, resource_key, action, limit)

    async def deliveries(self, account_name: str | None, state: str | None, limit: int) -> list[Row]:
        """Newest first."""
        return await self.store.deliveries(account_name, state, limit)

    async def emit(
        self,
        tx: Executor,
        account_id: int,
        account_name: str,
        event_type: str,
        data: dict[str, Any],
        resource_key: str | None = None,
    ) -> bool:
        """Queue an event in the caller's transaction; True when the account has a webhook."""
        hook = await self.store.webhook(account_id, tx)
        if hook is None:
            return False
        now = self.clock()
        event_id = uuid.uuid4().hex
        # The delivery outlives any later change of the webhook, so it keeps its own copy of the
        # secret, sealed to this event (a copy moved onto another delivery does not decrypt).
        secret = unseal(self.keyring, hook["secret"], webhook_context(account_id))
        payload = {
            "EventId": event_id,
            "Type": event_type,
            "Account": account_name,
            "Time": int(now),
            "Data": data,
        }
        await self.store.enqueue(
            {
                "event_id": event_id,
                "event_type": event_type,
                "account_name": account_name,
                "resource_key": resource_key,
                "url": hook["url"],
                "secret": self.keyring.encrypt(secret, delivery_context(event_id)),
                "payload": orjson.dumps(payload).decode(),
                "next_attempt_ms": int(now * 1000),
                "give_up_ms": int((now + self.max_age_seconds) * 1000),
                "created_at": int(now),
            },
            tx,
        )
        return True

    def notify(self) -> None:
        if self.wakeup is not None:
            self.wakeup()

    async def audit(
        self,
        actor: Actor,
        action: str,
        resource_key: str | None,
        request_id: str,
        outcome: str,
        detail: str | None = None,
        executor: Executor | None = None,
    ) -> None:
        await self.store.append_audit(
            {
                "at": int(self.clock()),
                "actor": actor.kind if actor.name is None else f"{actor.kind}:{actor.name}"[:64],
                "account_name": actor.account_name,
                "access_key": actor.access_key,
                "action": action[:64],
                "resource_key": None if resource_key is None else resource_key[:64],
                "request_id": request_id,
                "outcome": outcome[:64],
                "detail": detail,
            },
            executor,
        )
