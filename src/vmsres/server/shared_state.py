"""State shared by every process of one deployment: counters and a small cache.

With ``--redis-url`` it lives in Redis, so N processes behind a load balancer see one count
(what throttling needs); without it, an in-process fallback serves a single process.
Counters are fixed-window: the first increment starts the window, which expires ``ttl`` seconds
later. Rate limits use ``take_token`` instead: a token bucket (see vmsres.server.service.limits).
When Redis cannot be reached every call raises SharedStateUnavailable within about a second; the
next call after Redis is back reconnects by itself.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar

if TYPE_CHECKING:
    from redis.asyncio import Redis


class SharedStateUnavailable(Exception):
    """The shared state (Redis) could not be reached or did not answer in time."""


class SharedState(Protocol):
    async def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int: ...
    async def get_count(self, key: str) -> int: ...
    async def get(self, key: str) -> bytes | None: ...
    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None: ...
    async def delete(self, key: str) -> None: ...
    async def take_token(self, key: str, per_second: float, burst: int) -> bool: ...
    async def check(self) -> None:
        """Raise SharedStateUnavailable when the state cannot be used right now."""
        ...

    async def close(self) -> None: ...


class LocalState:
    """One process's fallback; expired entries are dropped when touched (and swept on growth)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, sweep_every: int = 10_000) -> None:
        self._clock = clock
        self._data: dict[str, tuple[int | bytes, float | None]] = {}
        self._sweep_every = sweep_every
        self._writes = 0
        # key -> (tokens, when counted, when full again)
        self._buckets: dict[str, tuple[float, float, float]] = {}

    def _live(self, key: str) -> int | bytes | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        value, expires = entry
        if expires is not None and expires <= self._clock():
            del self._data[key]
            return None
        return value

    def _wrote(self) -> None:
        self._writes += 1
        if self._writes % self._sweep_every == 0:
            now = self._clock()
            for key in [k for k, (_, e) in self._data.items() if e is not None and e <= now]:
                del self._data[key]

    async def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        current = self._live(key)
        if isinstance(current, int):
            value = current + amount
            self._data[key] = (value, self._data[key][1])
        else:
            value = amount
            self._data[key] = (value, None if ttl is None else self._clock() + ttl)
        self._wrote()
        return value

    async def get_count(self, key: str) -> int:
        value = self._live(key)
        return value if isinstance(value, int) else 0

    async def get(self, key: str) -> bytes | None:
        value = self._live(key)
        return value if isinstance(value, bytes) else None

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        self._data[key] = (value, None if ttl is None else self._clock() + ttl)
        self._wrote()

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)

    async def take_token(self, key: str, per_second: float, burst: int) -> bool:
        now = self._clock()
        tokens, stamp, _ = self._buckets.get(key, (float(burst), now, now))
        tokens = min(float(burst), tokens + max(0.0, now - stamp) * per_second)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        self._buckets[key] = (tokens, now, now + (burst - tokens) / per_second)
        if len(self._buckets) > self._sweep_every:
            # A bucket that has refilled to full says nothing a fresh one would not.
            self._buckets = {k: b for k, b in self._buckets.items() if b[2] > now}
        return allowed

    async def check(self) -> None:
        return None

    async def close(self) -> None:
        self._data.clear()
        self._buckets.clear()


# Refill, take and store in one atomic step. Redis's own TIME is the clock, so processes on hosts
# whose clocks disagree still share one bucket correctly (Redis 5+ replicates script effects).
_TAKE_TOKEN = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
    tokens = burst
    ts = now
end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local allowed = 0
if tokens >= 1 then
    tokens = tokens - 1
    allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return allowed
"""


_P = ParamSpec("_P")
_T = TypeVar("_T")
# Bounds every connect and every answer, so a Redis that is gone or hangs fails a request in about
# a second instead of holding it.
REDIS_TIMEOUT_SECONDS = 1.0


def _reachable(method: Callable[_P, Awaitable[_T]]) -> Callable[_P, Coroutine[Any, Any, _T]]:
    """Redis's connection and timeout errors as SharedStateUnavailable."""

    @functools.wraps(method)
    async def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        from redis.exceptions import ConnectionError, TimeoutError

        try:
            return await method(*args, **kwargs)
        except (ConnectionError, TimeoutError, OSError) as exc:
            raise SharedStateUnavailable(f"Redis unreachable: {type(exc).__name__}: {exc}") from exc

    return wrapper


class RedisState:
    """Redis-backed; the connection pool is created lazily, inside the running event loop."""

    def __init__(self, url: str, prefix: str = "vmsres:") -> None:
        self.url = url
        self._prefix = prefix
        self._client: Redis | None = None
        self._take: Any = None

    def _redis(self) -> Redis:
        if self._client is None:
            from redis.asyncio import Redis
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff

            self._client = Redis.from_url(
                self.url,
                socket_timeout=REDIS_TIMEOUT_SECONDS,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
                # One immediate retry on a fresh connection covers a pooled connection that died
                # with a restarted Redis; backing off further would only hold the request.
                retry=Retry(NoBackoff(), 1),
            )
        return self._client

    @_reachable
    async def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        name = self._prefix + key
        client = self._redis()
        if ttl is None:
            return int(await client.incrby(name, amount))
        # INCRBY and "set the expiry only if none is set" in one round trip (NX needs Redis 7).
        async with client.pipeline(transaction=True) as pipe:
            pipe.incrby(name, amount)
            pipe.pexpire(name, max(1, int(ttl * 1000)), nx=True)
            value, _ = await pipe.execute()
        return int(value)

    @_reachable
    async def get_count(self, key: str) -> int:
        value = await self._redis().get(self._prefix + key)
        return int(value) if value is not None else 0

    @_reachable
    async def get(self, key: str) -> bytes | None:
        value = await self._redis().get(self._prefix + key)
        return value if value is None or isinstance(value, bytes) else value.encode()

    @_reachable
    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        px = None if ttl is None else max(1, int(ttl * 1000))
        await self._redis().set(self._prefix + key, value, px=px)

    @_reachable
    async def delete(self, key: str) -> None:
        await self._redis().delete(self._prefix + key)

    @_reachable
    async def take_token(self, key: str, per_second: float, burst: int) -> bool:
        if self._take is None:
            self._take = self._redis().register_script(_TAKE_TOKEN)
        allowed = await self._take(keys=[self._prefix + key], args=[repr(per_second), burst])
        return int(allowed) == 1

    @_reachable
    async def check(self) -> None:
        await self._redis().ping()

    async def close(self) -> None:
        if self._client is not None:
            self._take = None
            client, self._client = self._client, None
            await client.aclose()


def open_shared(redis_url: str | None) -> SharedState:
    if redis_url:
        if not redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"unsupported Redis URL: {redis_url.split(':', 1)[0]}:...")
        return RedisState(redis_url)
    return LocalState()
