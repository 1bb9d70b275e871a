"""A NUL character anywhere in an admin API or console request is refused with 400.

PostgreSQL cannot store or compare text holding NUL (the driver raises), so an address like
``?account=%00`` would otherwise end in a 500 on one store and not the other. The wire API checks
each parameter itself (protocol/spec.py); these apps take free text in many places, so one check
at their door covers every route, the ones added later included.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import unquote_to_bytes

from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REFUSAL = "NUL characters are not allowed in the address or the body"
# How a NUL looks in a body: raw, escaped in JSON, or percent-encoded in a form.
_JSON_NUL = b"\\u0000"


def json_refusal() -> Response:
    return JSONResponse({"detail": REFUSAL}, status_code=400)


def html_refusal() -> Response:
    return HTMLResponse(f"<!doctype html><title>Bad request</title><p>{REFUSAL}.</p>", status_code=400)


class RefuseNul:
    """ASGI middleware: 400 (from ``refusal``) for a request whose path, query or body holds NUL."""

    def __init__(self, app: ASGIApp, refusal: Callable[[], Response]) -> None:
        self.app = app
        self.refusal = refusal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        address = scope.get("raw_path", b"") + b"?" + scope.get("query_string", b"")
        if b"\x00" in _unform(address):
            await self.refusal()(scope, receive, send)
            return
        if scope.get("method") not in ("POST", "PUT", "PATCH", "DELETE"):
            await self.app(scope, receive, send)
            return
        # The bodies of these apps are small (forms, JSON); read whole, then replay to the app.
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message]), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if b"\x00" in body or _JSON_NUL in body or (_is_form(scope) and b"\x00" in _unform(body)):
            await self.refusal()(scope, receive, send)
            return
        await self.app(scope, _replay([{"type": "http.request", "body": body, "more_body": False}]), send)


def _is_form(scope: Scope) -> bool:
    headers: dict[bytes, bytes] = dict(scope.get("headers", []))
    return headers.get(b"content-type", b"").startswith(b"application/x-www-form-urlencoded")


def _unform(body: bytes) -> bytes:
    return unquote_to_bytes(body.replace(b"+", b" "))


def _replay(messages: list[Message]) -> Receive:
    async def receive() -> Message:
        if messages:
            return messages.pop(0)
        return {"type": "http.disconnect"}

    return receive
