"""Every error code the core can return, with its HTTP status, through a real server."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.servers import RunningServer
from tests.wire_client import error_code, signed_request
from vmsres.protocol.errors import ERRORS


def _unsigned(server: RunningServer, query: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(f"{server.url}/?{query}", content=b"{}", headers=headers or {}, timeout=30)


CASES: list[tuple[str, Callable[[RunningServer], httpx.Response]]] = [
    ("MissingAction", lambda s: signed_request(s, None)),
    ("InvalidAction", lambda s: signed_request(s, "NoSuchAction")),
    ("InvalidAction", lambda s: signed_request(s, "QueryOpenGetResource", version="2020-01-01")),
    ("InvalidAction", lambda s: signed_request(s, "QueryOpenGetResource", version=None)),
    ("MethodNotAllowed", lambda s: httpx.put(f"{s.url}/?Action=QueryOpenGetResource&Version=2022-01-01")),
    ("NotFound", lambda s: httpx.get(f"{s.url}/nowhere")),
    ("MissingAuthenticationToken", lambda s: _unsigned(s, "Action=QueryOpenGetResource&Version=2022-01-01")),
    (
        "InvalidAuthorization",
        lambda s: _unsigned(
            s, "Action=QueryOpenGetResource&Version=2022-01-01", {"Authorization": "Basic dXNlcjpwYXNz"}
        ),
    ),
    (
        "MissingSignature",
        lambda s: _unsigned(
            s,
            "Action=QueryOpenGetResource&Version=2022-01-01",
            {
                "Authorization": "HMAC-SHA256 Credential=AKLTtestak/20250101/cn-north-1/vms/request, "
                "SignedHeaders=x-date"
            },
        ),
    ),
    (
        "MissingRequestInfo",
        lambda s: signed_request(s, "QueryOpenGetResource", {"Type": 0}, headers={"X-Date": "yesterday"}),
    ),
    (
        "InvalidTimestamp",
        lambda s: signed_request(s, "QueryOpenGetResource", {"Type": 0}, now=time.time() - 16 * 60),
    ),
    (
        "SignatureNotMatch",
        lambda s: signed_request(s, "QueryOpenGetResource", {"Type": 0}, secret_key="nope"),
    ),
    ("SignatureNotMatch", lambda s: signed_request(s, "QueryOpenGetResource", {"Type": 0}, service="iam")),
    (
        "InvalidAccessKeyId",
        lambda s: signed_request(s, "QueryOpenGetResource", {"Type": 0}, access_key="AKLTunknown"),
    ),
    (
        "RequestEntityTooLarge",
        lambda s: signed_request(
            s, "QueryOpenGetResource", b'{"Type":0,"Keyword":"' + b"a" * (1 << 20) + b'"}'
        ),
    ),
    ("MissingParameter", lambda s: signed_request(s, "QueryOpenGetResource", {})),
    ("InvalidParameter", lambda s: signed_request(s, "QueryOpenGetResource", {"Type": 0, "Limit": 101})),
    (
        "RESOURCE_KEY_IS_NOT_EXIST",
        lambda s: signed_request(s, "OpenDeleteResource", {"ResourceKey": uuid.uuid4().hex}),
    ),
    ("RESOURCE_KEY_IS_NONE", lambda s: signed_request(s, "OpenDeleteResource", {})),
    (
        "RESOURCE_NAME_IS_NONE",
        lambda s: signed_request(s, "OpenUpdateResource", {"ResourceKey": uuid.uuid4().hex, "Name": ""}),
    ),
]


# The HTTP status each code is answered with, written out here rather than read from
# vmsres.protocol.errors, so a change to that table shows up as a failing wire contract.
STATUS = {
    "MissingAction": 400,
    "InvalidAction": 400,
    "MethodNotAllowed": 405,
    "NotFound": 404,
    "MissingAuthenticationToken": 401,
    "InvalidAuthorization": 400,
    "MissingSignature": 401,
    "MissingRequestInfo": 400,
    "InvalidTimestamp": 400,
    "SignatureNotMatch": 401,
    "InvalidAccessKeyId": 403,
    "RequestEntityTooLarge": 413,
    "MissingParameter": 400,
    "InvalidParameter": 400,
    "RESOURCE_KEY_IS_NOT_EXIST": 404,
    "RESOURCE_KEY_IS_NONE": 400,
    "RESOURCE_NAME_IS_NONE": 400,
}


@pytest.mark.parametrize(("code", "send"), CASES, ids=[f"{c}-{i}" for i, (c, _) in enumerate(CASES)])
def test_error_code_and_status(
    server: RunningServer, code: str, send: Callable[[RunningServer], Any]
) -> None:
    response = send(server)
    assert error_code(response) == code
    assert response.status_code == STATUS[code] == ERRORS[code].http_status
    metadata = response.json()["ResponseMetadata"]
    assert "Result" not in response.json()
    assert len(metadata["RequestId"]) == 32 and metadata["Service"] == "vms"
    assert metadata["Error"]["Message"]


def test_access_denied_for_a_disabled_account(server: RunningServer) -> None:
    import json

    server.cli("accounts", "create", "closed")
    key = json.loads(server.cli("keys", "create", "--account", "closed", "--json").stdout)
    server.sql("UPDATE accounts SET enabled = false WHERE name = 'closed'")
    response = signed_request(
        server, "QueryOpenGetResource", {"Type": 0}, access_key=key["AccessKey"], secret_key=key["SecretKey"]
    )
    assert error_code(response) == "AccessDenied" and response.status_code == 403


def test_region_is_echoed(server: RunningServer) -> None:
    response = signed_request(server, "QueryOpenGetResource", {"Type": 0}, region="cn-beijing")
    assert response.status_code == 200
    assert response.json()["ResponseMetadata"]["Region"] == "cn-beijing"
    error = signed_request(server, "QueryOpenGetResource", {}, region="ap-southeast-1")
    assert error.json()["ResponseMetadata"]["Region"] == "ap-southeast-1"
