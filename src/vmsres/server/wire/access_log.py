"""One structured JSON line per request. Never a secret, a signature or a body."""

from __future__ import annotations

import asyncio
import logging

import orjson

access_log = logging.getLogger("vmsres.access")
# A request whose client went away before its body was complete: nothing was answered or stored.
# 499 is the status proxies (nginx) log for "client closed request"; it is never sent.
CLIENT_ABORT_STATUS = 499
CLIENT_ABORT_CODE = "ClientAbort"


class _Batch:
    """Lines of the requests that finished in one turn of the event loop, handed to the logging
    handlers as one record at the start of the next turn.

    A logging call (record, formatter, handler lock, write, flush) costs about as much as the
    rest of a small request; under load many requests finish per turn, so batching makes the log
    nearly free there, while a lone request's line is still written within microseconds.
    """

    def __init__(self) -> None:
        self._lines: list[str] = []

    def add(self, line: str) -> None:
        self._lines.append(line)
        if len(self._lines) == 1:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no loop (a direct call outside the server): write at once
                self.flush()

    def flush(self) -> None:
        lines, self._lines = self._lines, []
        if lines:
            access_log.info("\n".join(lines))


_batch = _Batch()


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
        _batch.add(orjson.dumps(line).decode())
