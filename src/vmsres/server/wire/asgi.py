"""Minimal ASGI types and response helpers (the wire endpoint runs on plain ASGI for speed)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from vmsres.protocol.errors import RequestTimeout
from vmsres.server.settings import BODY_IDLE_SECONDS, BODY_TOTAL_PAUSES

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

JSON_CONTENT_TYPE = b"application/json; charset=utf-8"


class BodyTooLarge(Exception):
    pass


class ClientDisconnected(Exception):
    """The client went away before its whole body arrived: there is no request to answer."""


def declared_length(scope: Scope) -> int | None:
    """The Content-Length the client announced, or None (chunked, absent or unreadable).

    With Transfer-Encoding as well, the HTTP parser frames the body by the chunks and ignores
    Content-Length (RFC 9112, 6.3), so the length is None here too: compared with the chunks, a
    stale Content-Length would make a whole body look cut short.
    """
    length: int | None = None
    for name, value in scope["headers"]:
        if name == b"transfer-encoding":
            return None
        if name == b"content-length" and length is None:
            length = int(value) if value.isdigit() else -1
    return None if length is None or length < 0 else length


def _arrived(receive: Receive) -> bool:
    """Whether ``receive()`` will answer without waiting: uvicorn's request cycle sets its
    ``message_event`` once the body (or its next piece, or the disconnect) is there. A receive
    of any other server is always read under the body's deadline."""
    event = getattr(getattr(receive, "__self__", None), "message_event", None)
    return isinstance(event, asyncio.Event) and event.is_set()


async def read_body(
    scope: Scope, receive: Receive, limit: int, idle_seconds: float = BODY_IDLE_SECONDS
) -> bytes:
    """The whole request body, exactly as announced.

    BodyTooLarge at once when the announced Content-Length is over ``limit`` (nothing is read:
    the transport drains what the client still sends), or as soon as a chunked body passes it;
    ClientDisconnected when the connection ends first; RequestTimeout when no piece of the body
    arrives for ``idle_seconds``, or the whole body takes longer than BODY_TOTAL_PAUSES of them.
    """
    declared = declared_length(scope)
    if declared is not None and declared > limit:
        raise BodyTooLarge()
    chunks: list[bytes] = []
    size = 0
    loop = asyncio.get_running_loop()
    # A client trickling a byte just inside every pause would otherwise hold the connection for
    # as long as it likes; the whole body gets BODY_TOTAL_PAUSES pauses' worth of time.
    deadline = loop.time() + idle_seconds * BODY_TOTAL_PAUSES
    while True:
        left = deadline - loop.time()
        if _arrived(receive):
            # Almost every body came with its head: no timer to schedule and cancel.
            message = await receive()
        else:
            try:
                async with asyncio.timeout(min(idle_seconds, max(left, 0.0))):
                    message = await receive()
            except TimeoutError:
                if left <= idle_seconds:
                    raise RequestTimeout("The request body took too long to arrive.") from None
                raise RequestTimeout("The request body stalled.") from None
        if message["type"] == "http.disconnect":
            raise ClientDisconnected()
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge()
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    if declared is not None and size != declared:
        raise ClientDisconnected()
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def send_response(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes = JSON_CONTENT_TYPE,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    raw_headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    if headers:
        raw_headers.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


def header_map(scope: Scope) -> dict[str, str]:
    """Lowercase names to values; latin-1 keeps every byte as it came, which signing needs."""
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
