"""ClientToken: a mutating request repeated with the same token gets the first answer again.

A token is claimed before the action runs, by one INSERT ... ON CONFLICT DO NOTHING whose row
count says who won, so copies of one request racing each other (on any worker, any database)
run the action once. A loser waits a bounded time (``wait_seconds``) for the first request's
answer and returns it; while the first is still running after that it is told to retry
(ServiceUnavailable with Retry-After, which every client retries) and then finds the stored
answer. A failed action releases its claim, so errors are not remembered and a retry with the
same token runs again. Answers are kept ``ttl_seconds`` (24 h by default); expired rows count as
absent and garbage collection deletes them.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from vmsres.protocol.errors import IdempotentParameterMismatch, ServiceUnavailable
from vmsres.server.service.accounts import Principal
from vmsres.server.store.database import DatabaseUnavailable, Executor
from vmsres.server.store.hardening import HardeningStore

TOKEN_PARAM = "ClientToken"
DRY_RUN_PARAM = "DryRun"
DEFAULT_TTL_SECONDS = 24 * 3600
# A claim whose process died is free again after this long.
PENDING_SECONDS = 300
# How long a repeat waits for the first request's answer before it is told to retry, and the
# Retry-After it is then given. Most first requests end well within the wait.
DEFAULT_WAIT_SECONDS = 5.0
RETRY_AFTER_SECONDS = 1
_POLL_SECONDS = (0.01, 0.02, 0.05, 0.1, 0.2)


def request_digest(action: str, params: Mapping[str, Any]) -> str:
    """What "the same parameters" means: the validated values (so `"5"` equals 5), not raw bytes."""
    significant = {k: v for k, v in params.items() if k not in (TOKEN_PARAM, DRY_RUN_PARAM)}
    blob = orjson.dumps([action, significant], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(blob).hexdigest()


class IdempotencyService:
    def __init__(
        self,
        store: HardeningStore,
        clock: Callable[[], float] = time.time,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        wait_seconds: float = DEFAULT_WAIT_SECONDS,
    ) -> None:
        self.store = store
        self.clock = clock
        self.ttl_seconds = int(ttl_seconds)
        self.wait_seconds = wait_seconds

    def _now(self) -> int:
        return int(self.clock())

    async def begin(
        self, principal: Principal, token: str, action: str, params: Mapping[str, Any]
    ) -> tuple[bool, Any]:
        """(True, result) to answer a repeat with; (False, None) when this request must run."""
        digest = request_digest(action, params)
        deadline = time.monotonic() + self.wait_seconds
        polls = 0
        while True:
            now = self._now()
            if await self.store.reserve_token(
                principal.account_id, token, action, digest, now, now + PENDING_SECONDS
            ):
                return False, None
            row = await self.store.token(principal.account_id, token)
            if row is not None and row["expires_at"] > now:
                if row["action"] != action or row["params_sha256"] != digest:
                    raise IdempotentParameterMismatch()
                if row["result"] is not None:
                    return True, orjson.loads(row["result"])
            # Still running (or released or expired in between: claim it on the next round).
            if time.monotonic() >= deadline:
                raise ServiceUnavailable(
                    "A request with this ClientToken is still in progress; retry it.",
                    retry_after_seconds=RETRY_AFTER_SECONDS,
                )
            await asyncio.sleep(_POLL_SECONDS[min(polls, len(_POLL_SECONDS) - 1)])
            polls += 1

    async def check(self, principal: Principal, token: str, action: str, params: Mapping[str, Any]) -> None:
        """For dry runs: refuse a token already used with other parameters, claim nothing."""
        row = await self.store.token(principal.account_id, token)
        if (
            row is not None
            and row["expires_at"] > self._now()
            and (row["action"] != action or row["params_sha256"] != request_digest(action, params))
        ):
            raise IdempotentParameterMismatch()

    async def finish(self, principal: Principal, token: str, result: Any, tx: Executor | None = None) -> None:
        """Store the answer under the claim; with ``tx``, in the transaction that made the change."""
        expires_at = self._now() + self.ttl_seconds
        answer = orjson.dumps(result).decode()
        if tx is not None:
            # Part of the change's transaction: it commits with the change or not at all.
            await self.store.finish_token(principal.account_id, token, answer, expires_at, tx)
            return
        try:
            await self.store.finish_token(principal.account_id, token, answer, expires_at)
        except DatabaseUnavailable:
            # The action is done: a claim left unfinished would answer "still running" to every
            # retry and then let the action run twice once it lapses. Storing the answer is
            # idempotent, so it is tried once more on a fresh connection.
            await self.store.finish_token(principal.account_id, token, answer, expires_at)

    async def abandon(self, principal: Principal, token: str) -> None:
        await self.store.drop_token(principal.account_id, token)

    async def collect(self) -> int:
        return await self.store.delete_expired_tokens(self._now())
