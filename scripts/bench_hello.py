"""The ceiling: a minimal raw-ASGI app answering a small JSON body (no signing, no database)."""

BODY = b'{"ResponseMetadata":{"Action":"Hello"},"Result":{"ok":true}}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
