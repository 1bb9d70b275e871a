"""Malformed input gets a clear 4xx, never a 500, and changes nothing stored."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.servers import RunningServer
from tests.wire_client import error_code, signed_request


def _total(server: RunningServer) -> int:
    response = signed_request(server, "QueryOpenGetResource", {"Type": 1, "Limit": 1})
    return int(response.json()["Result"]["Total"])


BODIES: list[tuple[bytes, str, str]] = [
    (b"{not json", "application/json", "InvalidParameter"),
    (b'{"Type": 1,', "application/json", "InvalidParameter"),
    (b"\xff\xfe\x00garbage", "application/json", "InvalidParameter"),
    (b'{"Name": "\xff\xfe"}', "application/json", "InvalidParameter"),
    (b"[1, 2]", "application/json", "InvalidParameter"),
    (b'"just a string"', "application/json", "InvalidParameter"),
    (b"[" * 5000 + b"]" * 5000, "application/json", "InvalidParameter"),
    (b"Name=%FF%FE&TtsTemplateContent=x", "application/x-www-form-urlencoded", "InvalidParameter"),
    (b'{"Name": 5, "TtsTemplateContent": "x"}', "application/json", "InvalidParameter"),
    (b'{"Name": ["a"], "TtsTemplateContent": "x"}', "application/json", "InvalidParameter"),
    (b'{"Name": {"a": 1}, "TtsTemplateContent": "x"}', "application/json", "InvalidParameter"),
    (b'{"Name": "a\\u0000b", "TtsTemplateContent": "x"}', "application/json", "InvalidParameter"),
    (b'{"Name": "n", "TtsTemplateContent": true}', "application/json", "InvalidParameter"),
    (b'{"Name": "n", "TtsTemplateContent": "x", "Type": 1.5}', "application/json", "InvalidParameter"),
    (b'{"Name": "n", "TtsTemplateContent": "x", "Type": true}', "application/json", "InvalidParameter"),
    (
        b'{"Name": "n", "TtsTemplateContent": "x", "Type": 99999999999999999999999}',
        "application/json",
        "InvalidParameter",
    ),
]


@pytest.mark.parametrize(("body", "content_type", "code"), BODIES)
def test_bad_bodies(server: RunningServer, body: bytes, content_type: str, code: str) -> None:
    before = _total(server)
    response = signed_request(server, "OpenCreateTts", body, content_type=content_type)
    assert response.status_code == 400, response.text
    assert error_code(response) == code
    assert _total(server) == before


@pytest.mark.parametrize("body", [b"", b"{}", b"[]", b"  \n"])
def test_empty_bodies_are_fine(server: RunningServer, body: bytes) -> None:
    response = signed_request(
        server,
        "QueryUsableResource",
        body,
        query={"Type": "0"},
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    assert isinstance(response.json()["Result"], list)


def test_parameters_merge_query_json_and_form(server: RunningServer) -> None:
    by_query = signed_request(server, "QueryOpenGetResource", b"", query={"Type": "1", "Limit": "2"})
    by_form = signed_request(
        server, "QueryOpenGetResource", b"Type=1&Limit=2", content_type="application/x-www-form-urlencoded"
    )
    by_json = signed_request(server, "QueryOpenGetResource", {"Type": "1", "Limit": 2, "Unknown": [1]})
    by_get = signed_request(
        server, "QueryOpenGetResource", b"", query={"Type": "1", "Limit": "2"}, method="GET"
    )
    for response in (by_query, by_form, by_json, by_get):
        assert response.status_code == 200, response.text
        assert response.json()["Result"]["Limit"] == 2


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": ""},
        {"Authorization": "HMAC-SHA256"},
        {"Authorization": "HMAC-SHA256 Credential=, SignedHeaders=, Signature="},
        {"Authorization": "HMAC-SHA256 Credential=a/b/c/d/request, SignedHeaders=x-date, Signature=zz"},
        {"Authorization": "HMAC-SHA256 " + "x" * 5000},
        {"Authorization": "\u00e9\u00e8".encode()},
    ],
)
def test_garbled_authorization_is_a_4xx(server: RunningServer, headers: dict[str, Any]) -> None:
    response = httpx.post(
        f"{server.url}/?Action=QueryOpenGetResource&Version=2022-01-01",
        content=b"{}",
        headers=headers,
        timeout=30,
    )
    assert 400 <= response.status_code < 500
    assert response.json()["ResponseMetadata"]["Error"]["Code"]


def test_signed_header_missing_from_request(server: RunningServer) -> None:
    response = signed_request(server, "QueryOpenGetResource", {"Type": 0}, headers={"Content-Type": ""})
    assert response.status_code in (400, 401)
