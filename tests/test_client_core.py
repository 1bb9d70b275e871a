"""The clients' shared core decides without I/O: its flows are driven here by hand, effect by effect.

Client and AsyncClient only carry these effects out (test_client.py, test_client_retry.py run
them against real servers); this shows the decisions are the core's alone.
"""

from __future__ import annotations

import random
from typing import Any

import httpx
import orjson
import pytest

from vmsres.client.core import ClientCore, Emit, Flow, Send, Sleep
from vmsres.client.errors import RequestTimeout
from vmsres.client.retry import RetryPolicy
from vmsres.protocol.errors import ResourceKeyIsNotExist, Throttling


def _core(attempts: int = 3) -> ClientCore:
    return ClientCore(
        "AKLTcore",
        "core-secret",
        endpoint="http://127.0.0.1:9",
        region="cn-north-1",
        session_token=None,
        retry=RetryPolicy(attempts=attempts, base_delay=0.1, max_delay=1.0, rng=random.Random(7)),
        validate=True,
        clock=lambda: 1_700_000_000.0,
    )


def _answer(result: Any, status: int = 200, error: str | None = None) -> httpx.Response:
    metadata: dict[str, Any] = {"RequestId": "r" * 32}
    if error is not None:
        metadata["Error"] = {"Code": error, "Message": error}
    body: dict[str, Any] = {"ResponseMetadata": metadata}
    if error is None:
        body["Result"] = result
    return httpx.Response(status, content=orjson.dumps(body))


def _drive(flow: Flow[Any], outcomes: list[Any]) -> tuple[list[Any], Any]:
    """Feed ``outcomes`` to the flow's Send effects in turn; the effects seen and the flow's value."""
    effects: list[Any] = []
    outcome: Any = None
    while True:
        try:
            effect = flow.send(outcome)
        except StopIteration as done:
            return effects, done.value
        effects.append(effect)
        outcome = outcomes.pop(0) if isinstance(effect, Send) else None


def test_a_failed_connection_is_slept_on_and_sent_again_signed_afresh() -> None:
    refused = httpx.ConnectError("refused")
    effects, result = _drive(
        _core().call("QueryUsableResource", {"Type": 0}), [refused, _answer([{"ResourceKey": "k"}])]
    )
    assert [type(e) for e in effects] == [Send, Sleep, Send]
    assert 0.05 <= effects[1].seconds <= 0.1
    first, again = effects[0], effects[2]
    assert (first.method, first.content) == ("POST", b"")
    assert first.url == again.url and "Authorization" in again.headers
    assert result == [{"ResourceKey": "k"}]


def test_a_change_that_may_have_happened_is_not_sent_again() -> None:
    flow = _core().call("OpenDeleteResource", {"ResourceKey": "k"})
    with pytest.raises(RequestTimeout):
        _drive(flow, [httpx.ReadTimeout("slow")])


def test_throttling_stops_after_the_attempts() -> None:
    throttled = [_answer(None, 429, "Throttling") for _ in range(3)]
    with pytest.raises(Throttling):
        _drive(_core(attempts=3).call("QueryUsableResource", {"Type": 0}), throttled)
    assert throttled == []  # all three attempts were used


def test_paging_emits_every_record_and_stops_at_total() -> None:
    pages = [
        _answer(
            {"Records": [{"ResourceKey": "a"}, {"ResourceKey": "b"}], "Total": 3, "Limit": 2, "Offset": 0}
        ),
        _answer({"Records": [{"ResourceKey": "c"}], "Total": 3, "Limit": 2, "Offset": 2}),
    ]
    effects, _ = _drive(_core().iter_resources(1, None, None, 2), pages)
    assert [e.item.resource_key for e in effects if isinstance(e, Emit)] == ["a", "b", "c"]
    sends = [orjson.loads(e.content) for e in effects if isinstance(e, Send)]
    assert sends == [{"Type": 1, "Limit": 2, "Offset": 0}, {"Type": 1, "Limit": 2, "Offset": 2}]


def test_get_resource_searches_every_type_in_order() -> None:
    empty = {"Records": [], "Total": 0, "Limit": 10, "Offset": 0}
    with pytest.raises(ResourceKeyIsNotExist):
        _drive(_core().get_resource("k", None), [_answer(empty) for _ in range(3)])
    found = {"Records": [{"ResourceKey": "k", "Type": 2}], "Total": 1, "Limit": 10, "Offset": 0}
    effects, resource = _drive(
        _core().get_resource("k", None), [_answer(empty), _answer(empty), _answer(found)]
    )
    assert [orjson.loads(e.content)["Type"] for e in effects] == [0, 1, 2]
    assert resource.type == 2


def test_retry_after_is_waited_bounded_by_the_max_delay() -> None:
    def answer(error: str, status: int, retry_after: str | None) -> httpx.Response:
        response = _answer(None, status, error)
        if retry_after is not None:
            response.headers["Retry-After"] = retry_after
        return response

    outcomes = [
        answer("ServiceUnavailable", 503, "1"),
        answer("Throttling", 429, "60"),
        answer("Throttling", 429, "Wed, 21 Oct 2015 07:28:00 GMT"),
        _answer(["k"]),
    ]
    effects, result = _drive(_core(attempts=4).call("QueryUsableResource", {"Type": 0}), outcomes)
    sleeps = [e.seconds for e in effects if isinstance(e, Sleep)]
    # Its own 1 s; 60 s capped at the policy's max_delay (1.0); a date form falls back to the
    # backoff of attempt 3 (0.2 to 0.4 s).
    assert sleeps[:2] == [1.0, 1.0]
    assert 0.2 <= sleeps[2] <= 0.4
    assert result == ["k"]


def test_the_last_error_keeps_its_retry_after() -> None:
    throttled = _answer(None, 429, "Throttling")
    throttled.headers["Retry-After"] = "3"
    with pytest.raises(Throttling) as raised:
        _drive(_core(attempts=1).call("QueryUsableResource", {"Type": 0}), [throttled])
    assert raised.value.retry_after_seconds == 3
