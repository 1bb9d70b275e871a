"""When to try a request again, and how long to wait first.

Retried: connection failures, 5xx answers and Throttling, after the answer's Retry-After when
it has one (bounded by ``max_delay``), else after an exponential backoff. Never another 4xx: the
same request would fail the same way. A request that may have reached the server (the connection broke or
timed out after it was written) is retried only for actions that change nothing, or for changes
sent with a ClientToken (the server answers a repeat with the first result).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import httpx

from vmsres.client.errors import ProtocolError
from vmsres.protocol.errors import Throttling, VmsError

# The request never left this machine, so sending it again cannot duplicate anything.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# The request may have been processed.
_MAYBE_SENT = (
    httpx.ReadError,
    httpx.ReadTimeout,
    httpx.WriteError,
    httpx.WriteTimeout,
    httpx.RemoteProtocolError,
    httpx.CloseError,
)


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` counts the first try; ``attempts=1`` turns retries off."""

    attempts: int = 4
    base_delay: float = 0.2
    max_delay: float = 5.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed try number ``attempt`` (1-based).

        Exponential with "equal jitter": half the step is fixed so throttled clients really back
        off, the other half random so many clients do not retry in lockstep.
        """
        step = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        return step / 2 + self.rng.uniform(0, step / 2)

    def after_exception(self, error: httpx.HTTPError, attempt: int, mutating: bool) -> float | None:
        """The delay before the next try, or None to give up."""
        if attempt >= self.attempts:
            return None
        if isinstance(error, _NOT_SENT) or (isinstance(error, _MAYBE_SENT) and not mutating):
            return self.backoff(attempt)
        return None

    def after_answer(self, error: VmsError | ProtocolError, attempt: int) -> float | None:
        """The server's Retry-After when it sent one (at most ``max_delay``), else the backoff."""
        if attempt >= self.attempts:
            return None
        if isinstance(error, Throttling) or error.http_status >= 500:
            asked = error.retry_after_seconds if isinstance(error, VmsError) else None
            if asked is not None:
                return float(min(asked, self.max_delay))
            return self.backoff(attempt)
        return None


NO_RETRY = RetryPolicy(attempts=1)
