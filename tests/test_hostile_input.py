"""A catalogue of hostile values against a real server: refused cleanly or stored exactly, never a 500."""

from __future__ import annotations

import socket
from typing import Any

import httpx
import pytest

from tests.audio_factory import make_wav
from tests.servers import RunningServer
from tests.wire_client import signed_request


def _snapshot(server: RunningServer) -> list[Any]:
    pages = []
    for type_ in (0, 1, 2):
        response = signed_request(server, "QueryOpenGetResource", {"Type": type_, "Limit": 100})
        assert response.status_code == 200, response.text
        pages.append(sorted(response.json()["Result"]["Records"], key=lambda r: r["ResourceKey"]))
    return pages


def _nested(depth: int) -> bytes:
    return b'{"Name": ' + b'{"a": ' * depth + b"1" + b"}" * depth + b', "TtsTemplateContent": "x"}'


REFUSED: list[tuple[str, str, bytes, dict[str, str]]] = [
    ("ten-megabytes", "OpenCreateTts", b'{"Name": "' + b"a" * (10 * 1024 * 1024) + b'"}', {}),
    ("deep-json", "OpenCreateTts", _nested(100_000), {}),
    ("invalid-utf8", "OpenCreateTts", b'{"Name": "\xc3\x28", "TtsTemplateContent": "x"}', {}),
    ("nul", "OpenCreateTts", b'{"Name": "a\\u0000b", "TtsTemplateContent": "x"}', {}),
    ("raw-nul-byte", "OpenCreateTts", b'{"Name": "a\x00b", "TtsTemplateContent": "x"}', {}),
    ("long-name", "OpenCreateTts", b'{"Name": "' + b"n" * 100_000 + b'", "TtsTemplateContent": "x"}', {}),
    ("traversal-key", "OpenDeleteResource", b"", {"ResourceKey": "../../etc/passwd"}),
]


# What docs/api.md and docs/errors.md say each is refused with: the 1 MiB body cap, bodies that
# are not valid UTF-8 JSON or whose Name is not a string of at most 128 characters, and a
# ResourceKey (at most 64 characters, no format) that names nothing.
REFUSED_WITH = {
    "ten-megabytes": (413, "RequestEntityTooLarge"),
    "deep-json": (400, "InvalidParameter"),
    "invalid-utf8": (400, "InvalidParameter"),
    "nul": (400, "InvalidParameter"),
    "raw-nul-byte": (400, "InvalidParameter"),
    "long-name": (400, "InvalidParameter"),
    "traversal-key": (404, "RESOURCE_KEY_IS_NOT_EXIST"),
}


@pytest.mark.parametrize(("case", "action", "body", "query"), REFUSED, ids=[r[0] for r in REFUSED])
def test_hostile_requests_are_refused_and_change_nothing(
    server: RunningServer, case: str, action: str, body: bytes, query: dict[str, str]
) -> None:
    before = _snapshot(server)
    response = signed_request(server, action, body, query=query)
    status, code = REFUSED_WITH[case]
    assert response.status_code == status, response.text[:300]
    assert response.json()["ResponseMetadata"]["Error"]["Code"] == code
    assert _snapshot(server) == before


def test_a_hundred_thousand_character_keyword(server: RunningServer) -> None:
    response = signed_request(server, "QueryOpenGetResource", {"Type": 1, "Keyword": "k" * 100_000})
    # docs/api.md: Keyword is at most 256 characters.
    assert response.status_code == 400, response.text[:300]
    error = response.json()["ResponseMetadata"]["Error"]
    assert error["Code"] == "InvalidParameter" and "Keyword" in error["Message"], error


@pytest.mark.parametrize(
    "name",
    [
        "🎵🔔 rappel 提醒",
        "מוזיקה לשיחה",
        "تذكير بالموعد",
        "\u202eevil\u202c.wav",
        "a\u0301\u0302 combining",
        "tab\there",
        "line\r\nInjected-Header: yes",
    ],
)
def test_unusual_names_round_trip_exactly(server: RunningServer, name: str) -> None:
    response = signed_request(server, "OpenCreateTts", {"Name": name, "TtsTemplateContent": "hello"})
    assert response.status_code == 200, response.text
    key = response.json()["Result"]["ResourceKey"]
    assert "Injected-Header" not in response.headers
    records = [r for r in _snapshot(server)[1] if r["ResourceKey"] == key]
    assert [r["Name"] for r in records] == [name]
    renamed = signed_request(server, "OpenUpdateResource", query={"ResourceKey": key, "Name": name + "✓"})
    assert renamed.status_code == 200, renamed.text
    assert [r["Name"] for r in _snapshot(server)[1] if r["ResourceKey"] == key] == [name + "✓"]


def test_path_traversal_in_file_name_is_only_a_name(server: RunningServer) -> None:
    name = "../../etc/passwd"
    response = signed_request(server, "GetResourceUploadUrl", {"FileName": name})
    assert response.status_code == 200, response.text
    assert (
        httpx.put(response.json()["Result"]["UploadUrl"], content=make_wav(1.0), timeout=30).status_code
        == 200
    )
    committed = signed_request(server, "CommitResourceUpload", {"FileName": name})
    assert committed.status_code == 200, committed.text
    key = committed.json()["Result"]["ResourceKey"]
    assert committed.json()["Result"]["Name"] == name
    [(blob_key, file_name)] = server.sql(
        "SELECT blob_key, file_name FROM resources WHERE resource_key = :k", {"k": key}
    )
    assert file_name == name
    # The blob key is made of the account, a time and the resource key: never of the name.
    assert ".." not in blob_key and "etc" not in blob_key and "passwd" not in blob_key
    for staging in server.sql("SELECT staging_key FROM uploads"):
        assert "passwd" not in staging[0]
    assert not (server.data_dir / "etc").exists() and not (server.data_dir.parent / "etc").exists()


@pytest.mark.parametrize(
    "header",
    [
        b"X-Evil: a\rInjected: b",
        b"X-Evil: a\nInjected: b\r\n\r\nGET / HTTP/1.1",
        b"X-Evil: a\x00b",
        b"X\x7f: v",
    ],
)
def test_raw_header_injection_gets_a_4xx_or_a_closed_connection(server: RunningServer, header: bytes) -> None:
    host, port = server.host_port.rsplit(":", 1)
    request = b"POST /?Action=QueryOpenGetResource&Version=2022-01-01 HTTP/1.1\r\nHost: x\r\n" + header
    request += b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    if received:
        status = int(received.split(b" ", 2)[1])
        assert 400 <= status < 500, received[:300]
    assert signed_request(server, "QueryOpenGetResource", {"Type": 1}).status_code == 200
