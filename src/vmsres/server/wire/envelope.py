"""The Volcengine response envelope and request ids. Only this layer turns errors into responses."""

from __future__ import annotations

import os
import time
from functools import lru_cache
from typing import Any

import orjson

from vmsres.protocol import API_VERSION, SERVICE
from vmsres.protocol.errors import VmsError

DEFAULT_REGION = "cn-north-1"
_CHINA_OFFSET = 8 * 3600


def new_request_id(now: float | None = None) -> str:
    """32 characters like the docs' ids: the China-time second, then 18 uppercase hex digits."""
    return _china_stamp(int(time.time() if now is None else now)) + os.urandom(9).hex().upper()


@lru_cache(maxsize=4)
def _china_stamp(second: int) -> str:
    # Every request of one second shares the stamp; strftime is most of an id's cost.
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(second + _CHINA_OFFSET))


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
