"""Retries, timeouts and odd answers, against a scripted HTTP peer on loopback (tests/stubs.py)."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from tests.stubs import DROP, HANG, Reply, error, ok, scripted_server
from vmsres.client import (
    AsyncClient,
    Client,
    ProtocolError,
    RequestTimeout,
    RetryPolicy,
    TransportError,
    UnknownVmsError,
)
from vmsres.protocol.errors import (
    InternalError,
    InvalidParameter,
    ResourceKeyIsNotExist,
    ServiceUnavailable,
    SignatureNotMatch,
    Throttling,
)
from vmsres.protocol.signing import parse_authorization, parse_query, verify_signature

# Short waits keep the tests fast; the backoff formula itself is tested on its own below.
FAST = RetryPolicy(attempts=4, base_delay=0.001, max_delay=0.004)
RESOURCE = {"ResourceKey": "a" * 32, "Name": "n", "State": 1, "Type": 1}


def _client(url: str, **kwargs: Any) -> Client:
    return Client("AKLTstub", "stub-secret", endpoint=url, retry=kwargs.pop("retry", FAST), **kwargs)


def test_throttling_is_retried_until_success() -> None:
    replies = [error(400, "Throttling"), error(400, "Throttling"), ok([RESOURCE])]
    with scripted_server(replies) as stub, _client(stub.url) as client:
        [resource] = client.query_usable_resource(1)
    assert resource.resource_key == "a" * 32
    assert len(stub.seen) == 3
    # Each attempt is signed afresh and the signature holds for what was actually sent.
    for seen in stub.seen:
        path, _, query = seen.path.partition("?")
        verify_signature(
            parse_authorization(seen.headers["authorization"]),
            "stub-secret",
            method=seen.method,
            path=path,
            query_pairs=parse_query(query),
            headers=seen.headers,
            body=seen.body,
        )


def test_throttling_is_retried_for_actions_that_change_things() -> None:
    replies = [error(400, "Throttling"), ok({"ResourceKey": "b" * 32, "Name": "n"})]
    with scripted_server(replies) as stub, _client(stub.url) as client:
        assert client.open_create_tts("n", "c").resource_key == "b" * 32
    assert len(stub.seen) == 2


def test_throttling_gives_up_after_the_attempts() -> None:
    with (
        scripted_server([error(400, "Throttling", "slow down")]) as stub,
        _client(stub.url) as client,
        pytest.raises(Throttling) as raised,
    ):
        client.query_usable_resource(0)
    assert len(stub.seen) == FAST.attempts
    assert raised.value.message == "slow down"
    assert raised.value.request_id == "20250101000000ABCDEF0123456789ABCD"


def test_invalid_parameter_is_not_retried() -> None:
    reply = error(400, "InvalidParameter", "The specified parameter Limit is invalid.")
    with (
        scripted_server([reply, ok()]) as stub,
        _client(stub.url) as client,
        pytest.raises(InvalidParameter) as raised,
    ):
        client.query_open_get_resource(0, limit=5)
    assert len(stub.seen) == 1
    assert raised.value.parameter == "Limit"
    assert raised.value.http_status == 400


@pytest.mark.parametrize(
    ("reply", "error_type"),
    [
        (error(404, "RESOURCE_KEY_IS_NOT_EXIST"), ResourceKeyIsNotExist),
        (error(401, "SignatureNotMatch"), SignatureNotMatch),
        (error(418, "SomethingNew", "new"), UnknownVmsError),
    ],
)
def test_other_4xx_are_not_retried(reply: Reply, error_type: type[Exception]) -> None:
    with scripted_server([reply, ok()]) as stub, _client(stub.url) as client, pytest.raises(error_type):
        client.open_delete_resource("a" * 32)
    assert len(stub.seen) == 1


def test_unknown_codes_keep_code_and_status() -> None:
    with (
        scripted_server([error(418, "SomethingNew", "new thing")]) as stub,
        _client(stub.url) as client,
        pytest.raises(UnknownVmsError) as raised,
    ):
        client.query_usable_resource(0)
    assert (raised.value.code, raised.value.http_status, raised.value.message) == (
        "SomethingNew",
        418,
        "new thing",
    )
    assert str(raised.value).startswith("SomethingNew: new thing")


@pytest.mark.parametrize(
    ("reply", "error_type", "status"),
    [
        (error(503, "ServiceUnavailable"), ServiceUnavailable, 503),
        (error(500, "InternalError"), InternalError, 500),
        (Reply(502, b"<html>bad gateway</html>", "text/html"), ProtocolError, 502),
    ],
)
def test_5xx_are_retried(reply: Reply, error_type: type[Exception], status: int) -> None:
    with scripted_server([reply]) as stub, _client(stub.url) as client, pytest.raises(error_type) as raised:
        client.open_delete_resource("a" * 32)
    assert len(stub.seen) == FAST.attempts
    assert getattr(raised.value, "http_status", None) == status
    with scripted_server([reply, reply, ok({"ResourceKey": "a" * 32})]) as stub, _client(stub.url) as client:
        assert client.open_delete_resource("a" * 32).resource_key == "a" * 32
    assert len(stub.seen) == 3


def test_a_dropped_connection_is_retried_only_when_nothing_changes() -> None:
    with scripted_server([DROP, ok([])]) as stub, _client(stub.url) as client:
        assert client.query_usable_resource(0) == ()
    assert len(stub.seen) == 2
    # The create may have happened before the connection broke: sending it again could make two.
    with scripted_server([DROP, ok({})]) as stub, _client(stub.url) as client, pytest.raises(TransportError):
        client.open_create_tts("n", "c")
    assert len(stub.seen) == 1


def test_timeouts() -> None:
    with (
        scripted_server([HANG]) as stub,
        _client(stub.url, timeout=0.2) as client,
        pytest.raises(RequestTimeout),
    ):
        client.open_create_tts("n", "c")
        assert len(stub.seen) == 1
    with scripted_server([HANG, ok([])]) as stub, _client(stub.url, timeout=0.2) as client:
        assert client.query_usable_resource(0) == ()
        assert len(stub.seen) == 2


def test_retries_off() -> None:
    with (
        scripted_server([error(503, "ServiceUnavailable"), ok([])]) as stub,
        _client(stub.url, retry=RetryPolicy(attempts=1)) as client,
        pytest.raises(ServiceUnavailable),
    ):
        client.query_usable_resource(0)
    assert len(stub.seen) == 1


def test_a_200_that_is_not_an_envelope_is_a_protocol_error() -> None:
    with (
        scripted_server([Reply(200, b"hello", "text/plain")]) as stub,
        _client(stub.url) as client,
        pytest.raises(ProtocolError) as raised,
    ):
        client.query_usable_resource(0)
    assert raised.value.http_status == 200
    assert len(stub.seen) == 1


def test_async_client_retries_throttling_but_not_invalid_parameter() -> None:
    async def scenario(url: str, create: bool) -> Any:
        async with AsyncClient("AKLTstub", "stub-secret", endpoint=url, retry=FAST) as client:
            if create:
                return await client.open_create_tts("n", "c")
            return await client.query_usable_resource_v2(1)

    replies = [error(400, "Throttling"), error(400, "Throttling"), ok({"Records": [RESOURCE]})]
    with scripted_server(replies) as stub:
        [resource] = asyncio.run(scenario(stub.url, create=False))
    assert resource.name == "n" and len(stub.seen) == 3
    assert {s.method for s in stub.seen} == {"GET"}
    with (
        scripted_server([error(400, "InvalidParameter", "x"), ok({})]) as stub,
        pytest.raises(InvalidParameter),
    ):
        asyncio.run(scenario(stub.url, create=True))
    assert len(stub.seen) == 1


def test_backoff_grows_exponentially_with_bounded_jitter() -> None:
    policy = RetryPolicy(attempts=10, base_delay=0.1, max_delay=1.0, rng=random.Random(7))
    for attempt in range(1, 10):
        step = min(1.0, 0.1 * 2 ** (attempt - 1))
        delays = {policy.backoff(attempt) for _ in range(50)}
        assert all(step / 2 <= d <= step for d in delays)
        assert len(delays) > 1  # jittered, not fixed
