"""The shared counter/cache: the in-process fallback and Redis behave alike."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator

import pytest

from tests.servers import REDIS_URL, require_redis
from vmsres.server.shared_state import LocalState, RedisState, SharedState, open_shared


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["local", "redis"])
def state(request: pytest.FixtureRequest) -> Iterator[SharedState]:
    if request.param == "redis":
        require_redis()
        yield RedisState(REDIS_URL, prefix=f"vmsres-test:{secrets.token_hex(4)}:")
    else:
        yield LocalState()


def test_counter_and_cache(state: SharedState) -> None:
    async def scenario() -> None:
        try:
            assert await state.get_count("hits") == 0
            assert await state.incr("hits") == 1
            assert await state.incr("hits", 4) == 5
            assert await state.get_count("hits") == 5
            assert await state.get("page") is None
            await state.set("page", "缓存".encode())
            assert (await state.get("page") or b"").decode() == "缓存"
            await state.delete("page")
            await state.delete("hits")
            assert await state.get("page") is None and await state.get_count("hits") == 0
        finally:
            await state.close()

    asyncio.run(scenario())


def test_local_window_expires_and_restarts() -> None:
    clock = FakeClock()
    state = LocalState(clock=clock)

    async def scenario() -> None:
        assert await state.incr("w", ttl=10) == 1
        clock.now += 9
        # Later increments keep the window's original expiry.
        assert await state.incr("w", ttl=10) == 2
        clock.now += 1
        assert await state.get_count("w") == 0
        assert await state.incr("w", ttl=10) == 1
        await state.set("c", b"x", ttl=1)
        clock.now += 1
        assert await state.get("c") is None

    asyncio.run(scenario())


def test_redis_window_has_one_expiry_set_by_the_first_increment() -> None:
    require_redis()
    import redis

    prefix = f"vmsres-test:{secrets.token_hex(4)}:"
    state = RedisState(REDIS_URL, prefix=prefix)

    async def scenario() -> None:
        try:
            await state.incr("w", ttl=100)
            first = redis.Redis.from_url(REDIS_URL).pttl(prefix + "w")
            await state.incr("w", ttl=1000)
            second = redis.Redis.from_url(REDIS_URL).pttl(prefix + "w")
            assert 0 < second <= first <= 100_000
            await state.delete("w")
        finally:
            await state.close()

    asyncio.run(scenario())


def test_open_shared_picks_the_backend() -> None:
    assert isinstance(open_shared(None), LocalState)
    assert isinstance(open_shared("redis://127.0.0.1:6379/0"), RedisState)
    with pytest.raises(ValueError):
        open_shared("memcached://x")
