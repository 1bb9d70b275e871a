"""The HTTP/1.1 connection handling of a production server: bounded headers, time and draining.

uvicorn's httptools (llhttp) protocol with four additions (docs/security.md, "Transport limits").
It replaced uvicorn's h11 protocol, which is pure Python and cost ~140 us of CPU per request on
this project's benchmark machine against ~50 us for the whole of a hello request here
(docs/benchmarks.md, "Where a request's time goes").

- Header bytes are capped here (llhttp has no bound of its own); past the cap the client gets a
  431 written at once and nothing more of the head is kept in memory.
- The header count and the request target's length are checked before the application runs
  (431 and 414).
- A request head must arrive within ``header_timeout_seconds`` of its first byte (or of the
  connection opening), else 408 and the connection is closed: a slow client cannot hold it open.
- Closing a connection whose request body is still arriving (a 413, a refused upload) is a
  lingering close: the answer is written, the sending half shut, and what the client still sends
  is read and discarded, up to ``drain_bytes`` or ``drain_seconds``. Closing straight away with
  unread bytes would make the kernel reset the connection, and a client that sends its whole
  body before reading (urllib, requests) would see the reset instead of the answer.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from typing import Any

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from vmsres.protocol.errors import (
    InvalidParameter,
    RequestHeaderFieldsTooLarge,
    RequestTimeout,
    RequestUriTooLong,
    VmsError,
)
from vmsres.protocol.request_ids import new_request_id
from vmsres.server.settings import Settings
from vmsres.server.wire.asgi import ASGIApp, Receive, Scope, Send, send_response
from vmsres.server.wire.envelope import DEFAULT_REGION, error_body

PROTOCOL_IMPORT_PATH = "vmsres.server.transport:GuardedHttpToolsProtocol"


@dataclass(frozen=True)
class TransportLimits:
    max_header_bytes: int = Settings.max_header_bytes
    max_header_count: int = Settings.max_header_count
    header_timeout_seconds: float = Settings.header_timeout_seconds
    max_target_bytes: int = 8 * 1024
    # A lingering close reads and drops at most this much, for at most this long.
    drain_bytes: int = 16 * 1024 * 1024
    drain_seconds: float = 5.0

    @classmethod
    def of(cls, settings: Settings) -> TransportLimits:
        return cls(
            max_header_bytes=settings.max_header_bytes,
            max_header_count=settings.max_header_count,
            header_timeout_seconds=settings.header_timeout_seconds,
        )


@functools.cache
def _limits_from_env() -> TransportLimits:
    # Each worker process builds its protocols from the settings the parent put in the environment.
    return TransportLimits.of(Settings.from_env())


def _error_response(status: int, error: VmsError) -> bytes:
    """A complete HTTP/1.1 answer with the Volcengine error envelope, for use before a request has a cycle."""
    body = error_body(new_request_id(), "", DEFAULT_REGION, error)
    reason = {400: b"Bad Request", 408: b"Request Timeout", 431: b"Request Header Fields Too Large"}[status]
    head = (
        b"HTTP/1.1 %d %s\r\ncontent-type: application/json; charset=utf-8\r\n"
        b"content-length: %d\r\nconnection: close\r\n\r\n" % (status, reason, len(body))
    )
    return head + body


# Writes of one event-loop turn are sent together up to this size; a larger one goes at once.
CORK_BYTES = 64 * 1024


class _LingeringTransport(asyncio.Transport):
    """The socket transport as uvicorn sees it: close() becomes a lingering close when needed, and
    the writes of one event-loop turn leave in one send.

    uvicorn writes an answer's head and body separately; on loopback each send costs a system
    call and a wake-up of the reader, about as much as the rest of a cached answer, so the head
    waits for the body until the end of the turn (docs/benchmarks.md, "Where a request's time
    goes")."""

    def __init__(self, transport: asyncio.Transport, protocol: GuardedHttpToolsProtocol) -> None:
        super().__init__()
        self._transport = transport
        self._protocol = protocol
        self._pending: list[bytes] = []
        self._pending_bytes = 0

    def flush(self) -> None:
        if self._pending:
            data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
            self._pending = []
            self._pending_bytes = 0
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self._protocol.close_connection()

    def is_closing(self) -> bool:
        return self._protocol.draining or self._transport.is_closing()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._protocol.draining or not data:
            return
        if not self._pending:
            self._protocol.loop.call_soon(self.flush)
        self._pending.append(bytes(data))
        self._pending_bytes += len(data)
        if self._pending_bytes >= CORK_BYTES:
            self.flush()

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def pause_reading(self) -> None:
        if not self._protocol.draining:
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + self._pending_bytes

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._pending = []
        self._pending_bytes = 0
        self._transport.abort()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        limits: TransportLimits | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits or _limits_from_env()
        # The chunks frame a body that also has a Content-Length (RFC 9112), as h11 did: llhttp
        # refuses such a request unless told otherwise.
        self.parser.set_dangerous_leniencies(lenient_data_after_close=True, lenient_chunked_length=True)
        self.app = _HeadChecks(self.app, self.limits)
        self.draining = False
        self._drained = 0
        self._raw: asyncio.Transport | None = None
        self._corked: _LingeringTransport | None = None
        self._head_timer: asyncio.TimerHandle | None = None
        self._drain_timer: asyncio.TimerHandle | None = None
        # Where the parser stands: waiting for (the rest of) a head, or reading a body. The bytes
        # of a head are counted here because llhttp itself puts no bound on them.
        self._want_head = True
        self._head_bytes = 0
        self._in_body = False
        self._failed = False
        self._refusal: tuple[int, VmsError] | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._raw = transport
        self._corked = _LingeringTransport(transport, self)
        super().connection_made(self._corked)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in (self._head_timer, self._drain_timer):
            if timer is not None:
                timer.cancel()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.draining or self._failed:
            self._discard(len(data))
            return
        self._unset_keepalive_if_required()
        if self._idle():
            self._arm_head_timer()
        if self._want_head:
            self._head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # No upgrade is served; the request it came with has been answered or is running.
            pass
        except httptools.HttpParserError as error:
            self._failed = True
            if self._refusal is not None:
                self._answer_and_close(*self._refusal)
            else:
                # A head the parser refuses (NUL or CR in a field, a bad or doubled
                # Content-Length, raw non-ASCII in the target) gets the same envelope as every
                # other bad input.
                self._answer_and_close(
                    400, InvalidParameter("Request", f"It is not a well-formed HTTP/1.1 request ({error}).")
                )
            return
        if self._want_head and self._head_bytes > self.limits.max_header_bytes:
            # Past the cap nothing more of the head is kept: the answer goes at once.
            self._failed = True
            self._answer_and_close(431, RequestHeaderFieldsTooLarge())
            return
        if self._in_body and self.cycle is not None and self.cycle.response_complete:
            # Answered already (a 413 on a keep-alive connection): uvicorn drops the rest of the
            # body, but without a bound it would do so for as long as the client keeps sending.
            self._discard(len(data))
        elif self._drain_timer is not None and not self.draining:
            # The refused body ended within the bounds: the connection serves the next request.
            self._drain_timer.cancel()
            self._drain_timer = None
            self._drained = 0

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._want_head = True

    def on_headers_complete(self) -> None:
        self._cancel_head_timer()
        # The head's size as sent, give or take the spaces around each colon: a head that came
        # in one piece with its body is not counted by data_received.
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self.limits.max_header_bytes:
            self._refusal = (431, RequestHeaderFieldsTooLarge())
            raise _Refused
        self._want_head = False
        self._head_bytes = 0
        self._in_body = True
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_body = False
        self._want_head = True
        self._head_bytes = 0
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._in_body and self._drain_timer is None and self._raw is not None:
            self._drain_timer = self.loop.call_later(self.limits.drain_seconds, self._raw.close)

    def close_connection(self) -> None:
        """uvicorn's close(): a lingering close while the client may still be sending."""
        self._flush()
        raw = self._raw
        if raw is None or raw.is_closing() or self.draining:
            if raw is not None:
                raw.close()
            return
        if not (self._in_body or self._failed):
            raw.close()
            return
        self.draining = True
        self._cancel_head_timer()
        raw.resume_reading()
        if raw.can_write_eof():
            raw.write_eof()
        self._drain_timer = self.loop.call_later(self.limits.drain_seconds, raw.close)

    def _flush(self) -> None:
        # What uvicorn wrote goes out before the protocol writes or closes on its own.
        if self._corked is not None:
            self._corked.flush()

    def _idle(self) -> bool:
        """Between requests: the last answer is out and no body is arriving."""
        return not self._in_body and (self.cycle is None or self.cycle.response_complete)

    def _discard(self, size: int) -> None:
        self._drained += size
        if self._drained > self.limits.drain_bytes and self._raw is not None:
            self._raw.close()

    def _answer_and_close(self, status: int, error: VmsError) -> None:
        if self._raw is None or self._raw.is_closing():
            return
        self._flush()
        self._raw.write(_error_response(status, error))
        self.close_connection()

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.limits.header_timeout_seconds, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self._idle() or self._raw is None or self._raw.is_closing():
            return
        self._flush()
        if self._head_bytes:
            self._raw.write(_error_response(408, RequestTimeout()))
        # Nothing of a request arrived (an idle connection): just close it.
        self._raw.close()


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a head that is refused (the parser reports it)."""


class _HeadChecks:
    """Header count and request target length, checked before the application sees the request."""

    def __init__(self, app: ASGIApp, limits: TransportLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            error: VmsError | None = None
            if len(scope["headers"]) > self.limits.max_header_count:
                error = RequestHeaderFieldsTooLarge(
                    f"The request has more than {self.limits.max_header_count} header fields."
                )
            elif len(scope.get("raw_path", b"")) + len(scope["query_string"]) > self.limits.max_target_bytes:
                error = RequestUriTooLong()
            if error is not None:
                body = error_body(new_request_id(), "", DEFAULT_REGION, error)
                await send_response(send, error.http_status, body, headers=[(b"connection", b"close")])
                return
        await self.app(scope, receive, send)
