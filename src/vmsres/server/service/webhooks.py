"""Sending queued webhook deliveries: at least once, signed, with exponential backoff.

Every server process runs one dispatcher. Deliveries are rows, so they survive restarts, and a
row is claimed by a conditional UPDATE (see store.events) so several workers never send the same
attempt twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from vmsres.server.masterkey import Keyring, MasterKeyError, delivery_context, unseal
from vmsres.server.store.database import Row
from vmsres.server.store.events import DELIVERED, FAILED, PENDING, EventStore

log = logging.getLogger("vmsres.webhooks")

SIGNATURE_HEADER = "X-Vmsres-Signature"
TIMESTAMP_HEADER = "X-Vmsres-Timestamp"
EVENT_HEADER = "X-Vmsres-Event"
DELIVERY_HEADER = "X-Vmsres-Delivery"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=`` + hex HMAC-SHA256 over ``<timestamp>.<body>``; the timestamp lets a receiver
    refuse replays of an old, validly signed body."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


@dataclass(frozen=True)
class DispatchConfig:
    poll_seconds: float = 1.0
    retry_base_seconds: float = 2.0
    retry_max_seconds: float = 600.0
    timeout_seconds: float = 10.0
    batch: int = 20

    def backoff_ms(self, attempts: int) -> int:
        delay = min(self.retry_max_seconds, self.retry_base_seconds * 2 ** max(0, attempts - 1))
        return int(delay * 1000)

    @property
    def lease_ms(self) -> int:
        # Longer than one send can take, so a live sender never loses its claim.
        return int((self.timeout_seconds * 2 + 5) * 1000)


class Dispatcher:
    def __init__(
        self,
        store: EventStore,
        keyring: Keyring,
        config: DispatchConfig | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.keyring = keyring
        self.config = config or DispatchConfig()
        self.clock = clock
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="vmsres-webhooks")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._client is not None:
            await self._client.aclose()

    async def _run(self) -> None:
        while True:
            try:
                while await self.run_once():
                    pass
            except Exception:
                log.exception("webhook dispatch failed; retrying at the next poll")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.config.poll_seconds)
            self._wake.clear()

    async def run_once(self) -> int:
        """Send what is due now; how many deliveries this process claimed."""
        now_ms = int(self.clock() * 1000)
        claimed = 0
        for delivery_id in await self.store.due(now_ms, self.config.batch):
            row = await self.store.claim(delivery_id, now_ms, now_ms + self.config.lease_ms)
            if row is not None:
                claimed += 1
                await self._send(row)
        return claimed

    def _http(self) -> httpx.AsyncClient:
        # Made at the first delivery: its TLS context takes ~50 ms to load the CA store, which a
        # server without webhooks (every test server) should not pay at each start.
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.config.timeout_seconds, follow_redirects=False)
        return self._client

    async def _send(self, row: Row) -> None:
        status: int | None = None
        error: str | None = None
        try:
            secret = unseal(self.keyring, row["secret"], delivery_context(row["event_id"]))
        except MasterKeyError as exc:
            # A tampered row or a key missing from this process's keyring: nothing can be signed,
            # but the row is kept and retried like any failure (a restart with the key fixes it).
            error = f"cannot unseal the webhook secret: {exc}"[:500]
        else:
            body = row["payload"].encode()
            timestamp = str(int(self.clock()))
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "vmsres-webhooks",
                SIGNATURE_HEADER: sign(secret, timestamp, body),
                TIMESTAMP_HEADER: timestamp,
                EVENT_HEADER: row["event_type"],
                DELIVERY_HEADER: row["event_id"],
            }
            try:
                response = await self._http().post(row["url"], content=body, headers=headers)
                status = response.status_code
                if not 200 <= status < 300:
                    error = f"HTTP {status}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"[:500]
        now = self.clock()
        if error is None:
            await self.store.finish(
                row["id"], row["attempts"], DELIVERED, int(now * 1000), status, None, int(now)
            )
            return
        next_ms = int(now * 1000) + self.config.backoff_ms(row["attempts"])
        state = FAILED if next_ms > row["give_up_ms"] else PENDING
        await self.store.finish(row["id"], row["attempts"], state, next_ms, status, error, None)
        log.info("webhook %s to %s failed (%s); %s", row["event_id"], row["url"], error, state)
