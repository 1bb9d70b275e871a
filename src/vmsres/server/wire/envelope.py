"""The Volcengine response envelope. Only this layer turns errors into responses."""

from __future__ import annotations

from typing import Any

import orjson

from vmsres.protocol import API_VERSION, SERVICE
from vmsres.protocol.errors import VmsError

DEFAULT_REGION = "cn-north-1"


def _metadata(request_id: str, action: str, region: str) -> dict[str, Any]:
    return {
        "RequestId": request_id,
        "Action": action,
        "Version": API_VERSION,
        "Service": SERVICE,
        "Region": region,
    }


def success_body(request_id: str, action: str, region: str, result: Any) -> bytes:
    return orjson.dumps({"ResponseMetadata": _metadata(request_id, action, region), "Result": result})


def error_body(request_id: str, action: str, region: str, error: VmsError) -> bytes:
    metadata = _metadata(request_id, action, region)
    metadata["Error"] = {"Code": error.code, "Message": error.message}
    return orjson.dumps({"ResponseMetadata": metadata})


def error_headers(request_id: str, error: VmsError) -> list[tuple[bytes, bytes]]:
    """The headers of an error answer: the request id, and Retry-After where the error sets one."""
    headers = [(b"x-tt-logid", request_id.encode())]
    if error.retry_after_seconds is not None:
        headers.append((b"retry-after", str(error.retry_after_seconds).encode()))
    return headers
