"""Failed logins: one count for every door that takes a token (the console's login form and the
admin API's Bearer tokens), per client address and per presented token.

After FAILURES_PER_ADDRESS wrong tokens from one address, or FAILURES_PER_TOKEN tries of one wrong
token, within WINDOW_SECONDS (a fixed window started by the first failure), every attempt from
that address or with that token is refused until the window ends, a right token included (so a
guess made while locked out cannot tell whether it was right). The counts live in the shared
state, so every worker (and, with Redis, every process) counts alike; they are keyed by the
deployment's namespace, so deployments sharing one Redis count apart.

Each failure is one JSON log line (never the token) and one audit row; a refused attempt is one
log line and no count, so hammering a locked door does not extend the lock-out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum

import orjson

from vmsres.protocol.request_ids import new_request_id
from vmsres.server.service.events import Actor
from vmsres.server.service.operators import token_digest
from vmsres.server.service.services import Services

WINDOW_SECONDS = 300
FAILURES_PER_ADDRESS = 20
FAILURES_PER_TOKEN = 5
_KEY = "login-failed:"


class Verdict(Enum):
    ALLOWED = "ok"
    FAILED = "failed"  # a wrong token, counted
    THROTTLED = "throttled"  # refused before anything was checked: answer 429


@dataclass(frozen=True, slots=True)
class Door:
    """Where a token is presented: how its log lines and audit rows are named."""

    event: str  # the log line's "event"
    actor: Actor  # the audit row's actor for a failure (nobody is known yet)
    action: str  # the audit row's action


CONSOLE_DOOR = Door("console_login", Actor("console"), "ConsoleLogin")
ADMIN_API_DOOR = Door("admin_api_auth", Actor("admin-api"), "AdminApiLogin")


class LoginGuard:
    def __init__(self, services: Services, door: Door) -> None:
        self.services = services
        self.door = door
        self._prefix: str | None = None

    async def _keys(self, address: str, token: str) -> tuple[str, str]:
        if self._prefix is None:
            namespace = await self.services.shared_secrets.get("rate_namespace", 8)
            self._prefix = f"{_KEY}{namespace}:"
        return f"{self._prefix}addr:{address}", f"{self._prefix}token:{token_digest(token)[:32]}"

    async def judge(self, address: str, token: str, right: bool) -> Verdict:
        """The verdict on one attempt whose token was checked already (``right``).

        A wrong token is counted first and judged by its own count, so concurrent wrong tokens
        cannot slip past the limit (each gets its own number); one over the limit is taken back
        out. A right token is only read against the counts: a correct call costs no write."""
        shared = self.services.shared
        address_key, token_key = await self._keys(address, token)
        if right:
            locked = (
                await shared.get_count(address_key) >= FAILURES_PER_ADDRESS
                or await shared.get_count(token_key) >= FAILURES_PER_TOKEN
            )
            return Verdict.THROTTLED if locked else Verdict.ALLOWED
        by_address = await shared.incr(address_key, ttl=WINDOW_SECONDS)
        by_token = await shared.incr(token_key, ttl=WINDOW_SECONDS)
        if by_address <= FAILURES_PER_ADDRESS and by_token <= FAILURES_PER_TOKEN:
            return Verdict.FAILED
        for key in (address_key, token_key):
            await shared.incr(key, -1, ttl=WINDOW_SECONDS)
        return Verdict.THROTTLED

    async def record(self, verdict: Verdict, address: str, detail: str = "", name: str | None = None) -> None:
        """The verdict's log line (never the token) and, for a failure, its audit row; ``name``
        is who logged in, ``detail`` adds to a failure's audit row (what was asked for)."""
        line = {"event": self.door.event, "outcome": verdict.value, "client": address}
        if name is not None:
            line["operator"] = name
        level = logging.INFO if verdict is Verdict.ALLOWED else logging.WARNING
        logging.getLogger("vmsres").log(level, orjson.dumps(line).decode())
        if verdict is Verdict.FAILED:
            await self.services.events.audit(
                self.door.actor,
                self.door.action,
                None,
                new_request_id(),
                "failed",
                f"wrong token from {address}{detail}"[:500],
            )
