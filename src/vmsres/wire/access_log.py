"""One structured JSON line per request. Never a secret, a signature or a body."""

from __future__ import annotations

import logging

import orjson

access_log = logging.getLogger("vmsres.access")


def log_request(request_id: str, action: str, account: str, status: int, code: str, seconds: float) -> None:
    if access_log.isEnabledFor(logging.INFO):
        line = {
            "RequestId": request_id,
            "Action": action[:64],
            "account": account,
            "status": status,
            "code": code,
            "duration_ms": round(seconds * 1000, 3),
        }
        access_log.info(orjson.dumps(line).decode())
