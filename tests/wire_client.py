"""Raw signed requests, for tests that need to send what no SDK would."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import httpx

from tests.servers import RunningServer
from vmsres.protocol import API_VERSION
from vmsres.protocol.signing import parse_query, sign_request


def signed_request(
    server: RunningServer,
    action: str | None,
    body: bytes | dict[str, Any] = b"",
    *,
    query: dict[str, str] | None = None,
    method: str = "POST",
    content_type: str = "application/json",
    access_key: str | None = None,
    secret_key: str | None = None,
    region: str = "cn-north-1",
    service: str = "vms",
    version: str | None = API_VERSION,
    now: float | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """Sign and send one request; ``headers`` are applied after signing (to tamper with them)."""
    import orjson

    raw_body = orjson.dumps(body) if isinstance(body, dict) else body
    params: dict[str, str] = {}
    if action is not None:
        params["Action"] = action
    if version is not None:
        params["Version"] = version
    params.update(query or {})
    query_string = urlencode(params)
    signed = sign_request(
        method=method,
        host=server.host_port,
        path="/",
        query_pairs=parse_query(query_string),
        body=raw_body,
        content_type=content_type,
        access_key=access_key or server.access_key,
        secret_key=secret_key or server.secret_key,
        region=region,
        service=service,
        now=now,
    )
    signed.update(headers or {})
    return httpx.request(
        method, f"{server.url}/?{query_string}", content=raw_body, headers=signed, timeout=30
    )


def error_code(response: httpx.Response) -> str:
    return str(response.json()["ResponseMetadata"]["Error"]["Code"])
