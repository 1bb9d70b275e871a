"""Signature verification against the official SDK's own signed requests."""

from __future__ import annotations

import calendar
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vmsres.protocol import signing
from vmsres.protocol.errors import (
    InvalidAuthorization,
    InvalidTimestamp,
    MissingAuthenticationToken,
    MissingRequestInfo,
    MissingSignature,
    SignatureNotMatch,
)

VECTORS = json.loads((Path(__file__).parent / "data" / "signing-vectors.json").read_text())
FROZEN_NOW = calendar.timegm(time.strptime("20250101T000000Z", "%Y%m%dT%H%M%SZ"))
SECRET = VECTORS["credentials"]["SecretKey"]


def _parts(request: dict[str, Any]) -> dict[str, Any]:
    url = urlsplit(request["url"])
    return {
        "method": request["method"],
        "path": url.path,
        "query_pairs": signing.parse_query(url.query),
        "headers": {k.lower(): v for k, v in request["headers"].items()},
        "body": request["body"].encode(),
    }


def _verify(request: dict[str, Any], secret: str = SECRET, now: float = FROZEN_NOW, **changes: Any) -> None:
    parts = {**_parts(request), **changes}
    auth = signing.parse_authorization(parts["headers"].get("authorization"))
    signing.verify_signature(auth, secret, now=now, service="vms", **parts)


@pytest.mark.parametrize("request_", VECTORS["requests"], ids=lambda r: r["url"].split("Action=")[1][:30])
def test_official_vectors_verify(request_: dict[str, Any]) -> None:
    _verify(request_)


@pytest.mark.parametrize("request_", VECTORS["requests"], ids=lambda r: r["url"].split("Action=")[1][:30])
def test_our_signer_reproduces_official_signature(request_: dict[str, Any]) -> None:
    parts = _parts(request_)
    headers = signing.sign_request(
        method=parts["method"],
        host=parts["headers"]["host"],
        path=parts["path"],
        query_pairs=parts["query_pairs"],
        body=parts["body"],
        content_type=parts["headers"]["content-type"],
        access_key=VECTORS["credentials"]["AccessKey"],
        secret_key=SECRET,
        region=VECTORS["credentials"]["Region"],
        service="vms",
        now=FROZEN_NOW,
    )
    assert headers["Authorization"] == request_["headers"]["Authorization"]
    assert headers["X-Content-Sha256"] == request_["headers"]["X-Content-Sha256"]


def test_wrong_secret_fails() -> None:
    with pytest.raises(SignatureNotMatch):
        _verify(VECTORS["requests"][0], secret="not-the-secret")


def test_changed_body_fails() -> None:
    with pytest.raises(SignatureNotMatch):
        _verify(VECTORS["requests"][0], body=b'{"Type": 1, "Limit": 10, "Offset": 0}')


def test_changed_query_fails() -> None:
    request = VECTORS["requests"][2]
    pairs = [(k, v + "x" if k == "Name" else v) for k, v in _parts(request)["query_pairs"]]
    with pytest.raises(SignatureNotMatch):
        _verify(request, query_pairs=pairs)


@pytest.mark.parametrize("skew", [-15 * 60 - 1, 15 * 60 + 1])
def test_stale_or_future_x_date_is_refused(skew: int) -> None:
    with pytest.raises(InvalidTimestamp):
        _verify(VECTORS["requests"][0], now=FROZEN_NOW - skew)


@pytest.mark.parametrize("skew", [-15 * 60, 15 * 60])
def test_x_date_within_fifteen_minutes_is_accepted(skew: int) -> None:
    _verify(VECTORS["requests"][0], now=FROZEN_NOW - skew)


def test_missing_x_date_is_reported() -> None:
    request = VECTORS["requests"][0]
    headers = {k: v for k, v in _parts(request)["headers"].items() if k != "x-date"}
    with pytest.raises(MissingRequestInfo):
        _verify(request, headers=headers)


@pytest.mark.parametrize(
    ("header", "error"),
    [
        (None, MissingAuthenticationToken),
        ("", MissingAuthenticationToken),
        ("Bearer abc", InvalidAuthorization),
        ("HMAC-SHA256 Credential=AK/20250101/cn-north-1/vms/request, SignedHeaders=x-date", MissingSignature),
        (
            "HMAC-SHA256 Credential=AK/20250101/vms/request, SignedHeaders=x-date, Signature=ab",
            InvalidAuthorization,
        ),
        (
            "HMAC-SHA256 Credential=AK/20250101/r/vms/request, SignedHeaders=host, Signature=ab",
            InvalidAuthorization,
        ),
        ("HMAC-SHA256 garbage", MissingSignature),
    ],
)
def test_malformed_authorization(header: str | None, error: type[Exception]) -> None:
    with pytest.raises(error):
        signing.parse_authorization(header)


def _outcome(read: Any, header: str | None) -> object:
    try:
        return read(header)
    except Exception as error:  # the error type and message are the outcome to compare
        return (type(error), str(error))


# Headers in the SDK's form, with each field drawn from characters that break the form (a
# space, '/', '=', ',', a tab, a no-break space): the quick reading of that form must agree
# with the general one on every header, the ones it takes and the ones it hands over.
_field = st.text(alphabet="Ax0-/=, \t\u00a0;", max_size=5)
_signed = st.one_of(
    _field,
    st.lists(st.sampled_from(["x-date", "X-Date", "host", "content-type", "", " x-date"]), max_size=4).map(
        ";".join
    ),
)


@settings(max_examples=1000, deadline=None)
@given(
    algorithm=st.sampled_from(["HMAC-SHA256", "hmac-sha256", " HMAC-SHA256"]),
    credential=st.lists(st.one_of(st.just("AKLTx"), _field), min_size=3, max_size=5),
    terminator=st.sampled_from(["request", "Request", "", "request "]),
    signed=_signed,
    signature=st.one_of(st.sampled_from(["ABCdef01", "ab"]), _field),
    tail=st.sampled_from(["", " ", ", X=1", "\n"]),
)
def test_the_sdk_form_reads_as_the_general_reading_does(
    algorithm: str, credential: list[str], terminator: str, signed: str, signature: str, tail: str
) -> None:
    scope = "/".join([*credential, terminator])
    header = f"{algorithm} Credential={scope}, SignedHeaders={signed}, Signature={signature}{tail}"
    assert _outcome(signing.parse_authorization, header) == _outcome(signing.read_authorization, header)


def test_the_sdk_form_is_read_quickly_and_exactly() -> None:
    header = (
        "HMAC-SHA256 Credential=AKLTabc/20250101/cn-north-1/vms/request, "
        "SignedHeaders=Content-Type;host;X-Content-Sha256;x-date, Signature=ABCDEF0123"
    )
    auth = signing.parse_authorization(header)
    assert auth == signing.read_authorization(header)
    assert auth == signing.Authorization(
        "AKLTabc",
        "20250101",
        "cn-north-1",
        "vms",
        ("content-type", "host", "x-content-sha256", "x-date"),
        "abcdef0123",
    )


def test_host_default_ports_are_dropped() -> None:
    canonical = signing.canonical_request("POST", "/", [], {"host": "example.com:443"}, ["host"], "x")
    assert "host:example.com\n" in canonical


def test_canonical_query_sorts_and_encodes() -> None:
    pairs = signing.parse_query("b=2&a=x+y&a=%E4%B8%AD&c=~._-*")
    assert signing.canonical_query(pairs) == "a=x%20y&a=%E4%B8%AD&b=2&c=~._-%2A"


@settings(max_examples=200, deadline=None)
@given(
    field=st.sampled_from(["method", "path", "query", "body", "content-type", "host", "x-date-signature"]),
    noise=st.text(min_size=1, max_size=8),
)
def test_any_change_to_a_signed_request_fails(field: str, noise: str) -> None:
    request = VECTORS["requests"][2]
    parts = _parts(request)
    headers = dict(parts["headers"])
    changes: dict[str, Any] = {}
    if field == "method":
        changes["method"] = "GET"
    elif field == "path":
        changes["path"] = "/" + noise
    elif field == "query":
        changes["query_pairs"] = [*parts["query_pairs"], ("Extra", noise)]
    elif field == "body":
        changes["body"] = parts["body"] + noise.encode()
    elif field in ("content-type", "host"):
        headers[field] = headers[field] + noise.strip() + "x"
        changes["headers"] = headers
    else:
        auth = headers["authorization"]
        headers["authorization"] = auth[:-1] + ("0" if auth[-1] != "0" else "1")
        changes["headers"] = headers
    with pytest.raises(SignatureNotMatch):
        _verify(request, **changes)


_UNRESERVED = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~"
_SIGNED_HEADERS = ("content-type", "host", "x-content-sha256", "x-date")


def _replace_one(text: str, position: int, digit: str) -> str:
    """``text`` with one character replaced by a digit it did not have there (or one appended)."""
    if not text:
        return digit
    position %= len(text)
    if text[position] == digit:
        digit = "1" if digit == "0" else "0"
    return text[:position] + digit + text[position + 1 :]


@settings(max_examples=500, deadline=None)
@given(
    method=st.sampled_from(["GET", "POST"]),
    path=st.text(alphabet=_UNRESERVED + "/", max_size=20).map(lambda p: "/" + p),
    query=st.lists(st.tuples(st.text(max_size=8), st.text(max_size=8)), max_size=4),
    body=st.binary(max_size=64),
    host=st.text(alphabet="abcdefghijklmnopqrstuvwxyz.", min_size=1, max_size=20),
    content_type=st.sampled_from(["application/json", "application/x-www-form-urlencoded; charset=utf-8"]),
    part=st.sampled_from(["method", "path", "query", "body", *_SIGNED_HEADERS]),
    position=st.integers(min_value=0, max_value=10_000),
    digit=st.sampled_from("0123456789"),
)
def test_any_changed_byte_of_a_signed_request_fails(
    method: str,
    path: str,
    query: list[tuple[str, str]],
    body: bytes,
    host: str,
    content_type: str,
    part: str,
    position: int,
    digit: str,
) -> None:
    signed = signing.sign_request(
        method=method,
        host=host,
        path=path,
        query_pairs=query,
        body=body,
        content_type=content_type,
        access_key="AKLTfuzz",
        secret_key=SECRET,
        region="cn-north-1",
        service="vms",
        now=FROZEN_NOW,
    )
    parts: dict[str, Any] = {
        "method": method,
        "path": path,
        "query_pairs": list(query),
        "headers": {k.lower(): v for k, v in signed.items()},
        "body": body,
    }
    auth = signing.parse_authorization(parts["headers"]["authorization"])
    signing.verify_signature(auth, SECRET, now=FROZEN_NOW, service="vms", **parts)  # as sent: fine

    if part == "method":
        parts["method"] = _replace_one(method, position, digit)
    elif part == "path":
        parts["path"] = _replace_one(path, position, digit)
    elif part == "query":
        if not query:
            parts["query_pairs"] = [(digit, "")]
        else:
            index = position % len(query)
            key, value = query[index]
            if position % 2:
                value = _replace_one(value, position // 2, digit)
            else:
                key = _replace_one(key, position // 2, digit)
            parts["query_pairs"] = [*query[:index], (key, value), *query[index + 1 :]]
    elif part == "body":
        if not body:
            parts["body"] = digit.encode()
        else:
            flipped = bytearray(body)
            flipped[position % len(body)] ^= 1 + position % 255
            parts["body"] = bytes(flipped)
    else:
        parts["headers"] = {**parts["headers"], part: _replace_one(parts["headers"][part], position, digit)}
    expected: tuple[type[Exception], ...] = (SignatureNotMatch,)
    if part == "x-date":
        # A changed date may also fall outside the allowed skew or stop being a date at all.
        expected = (SignatureNotMatch, InvalidTimestamp, MissingRequestInfo)
    with pytest.raises(expected):
        signing.verify_signature(auth, SECRET, now=FROZEN_NOW, service="vms", **parts)
