"""Request rates, resource quotas and leases: the rules, apart from where their state lives.

Rates are token buckets: a bucket holds up to ``burst`` tokens, refills at ``per_second`` and each
request takes one. A bucket lets a client send a short burst after a quiet spell and then holds it
to the average rate, with no window edge where twice the rate gets through (the weakness of fixed
windows). The bucket state is in SharedState: in process by default, in Redis with --redis-url,
where one Lua script reads, refills and takes atomically with Redis's own clock.
"""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from vmsres.protocol.errors import Throttling
from vmsres.server.service.accounts import Principal
from vmsres.server.shared_state import SharedState

_RATE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*/\s*(s|m|h)\s*(?::\s*(\d+))?\s*")
_UNIT_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0}
OFF = "off"
# A stored quota of -1 means "no limit for this account", whatever the server default says.
UNLIMITED = -1


class LimitError(ValueError):
    """A rate or quota that cannot be parsed."""


@dataclass(frozen=True, slots=True)
class Rate:
    per_second: float
    burst: int

    def __str__(self) -> str:
        return f"{self.per_second:g}/s:{self.burst}"

    def refill_seconds(self) -> int:
        """Whole seconds until an empty bucket holds a token again: the Retry-After of a refusal."""
        return max(1, math.ceil(1 / self.per_second))


def parse_rate(text: str | None) -> Rate | None:
    """``N/s``, ``N/m`` or ``N/h``, optionally ``:BURST``; ``off`` (or None) means no limit.

    The burst defaults to one second's worth of requests, at least 1.
    """
    if text is None or text.strip().lower() == OFF:
        return None
    match = _RATE.fullmatch(text)
    if match is None:
        raise LimitError(f"a rate is N/s, N/m or N/h, optionally :BURST, or 'off'; got {text!r}")
    count, unit, burst = float(match.group(1)), match.group(2), match.group(3)
    if count <= 0:
        raise LimitError("a rate must be above 0 (use 'off' for no limit)")
    per_second = count / _UNIT_SECONDS[unit]
    size = int(burst) if burst is not None else max(1, math.ceil(per_second))
    if size < 1:
        raise LimitError("a burst must be at least 1")
    return Rate(per_second, size)


def check_rate_text(text: str | None) -> str | None:
    """Validate a rate for storing; returns it normalized (None stays None)."""
    if text is None:
        return None
    if text.strip().lower() == OFF:
        return OFF
    parse_rate(text)
    return text.strip()


_parsed: dict[str, Rate | None] = {}


def _cached_rate(text: str) -> Rate | None:
    # Stored overrides are parsed on the hot path; there are few distinct ones.
    if text not in _parsed:
        try:
            _parsed[text] = parse_rate(text)
        except LimitError:
            _parsed[text] = None
    return _parsed[text]


class RateLimiter:
    def __init__(
        self,
        shared: SharedState,
        per_key: Rate | None,
        per_account: Rate | None,
        namespace: Callable[[], Awaitable[str]] | None = None,
    ) -> None:
        self.shared = shared
        self.per_key = per_key
        self.per_account = per_account
        self._namespace_source = namespace
        self._namespace: str | None = None

    def rates(self, principal: Principal) -> tuple[Rate | None, Rate | None] | None:
        """The key's and the account's rate, or None when neither is limited (no I/O)."""
        key = self.per_key if principal.rate_per_key is None else _cached_rate(principal.rate_per_key)
        account = (
            self.per_account
            if principal.rate_per_account is None
            else _cached_rate(principal.rate_per_account)
        )
        if key is None and account is None:
            return None
        return key, account

    async def _prefix(self) -> str:
        # Buckets are named per deployment, so deployments (or test databases) sharing one Redis
        # never drain each other's buckets.
        if self._namespace is None:
            self._namespace = await self._namespace_source() if self._namespace_source else "local"
        return self._namespace

    async def take(self, principal: Principal, rates: tuple[Rate | None, Rate | None]) -> None:
        key_rate, account_rate = rates
        prefix = await self._prefix()
        # The account bucket first: a request it refuses never touches the key's bucket.
        if account_rate is not None and not await self.shared.take_token(
            f"rate:{prefix}:a:{principal.account_id}", account_rate.per_second, account_rate.burst
        ):
            raise Throttling(
                "The request is denied due to request throttling (account rate).",
                retry_after_seconds=account_rate.refill_seconds(),
            )
        if key_rate is not None and not await self.shared.take_token(
            f"rate:{prefix}:k:{principal.access_key}", key_rate.per_second, key_rate.burst
        ):
            raise Throttling(
                "The request is denied due to request throttling (key rate).",
                retry_after_seconds=key_rate.refill_seconds(),
            )


@dataclass(frozen=True, slots=True)
class Quota:
    max_resources: int | None
    max_storage_bytes: int | None


def effective(override: int | None, default: int | None) -> int | None:
    if override is None:
        return default
    return None if override == UNLIMITED else override
