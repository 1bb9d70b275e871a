"""A tiny scripted HTTP peer on loopback, for answers the real server cannot give yet (Throttling,
5xx, dropped connections, silence). It is a real socket server; nothing of ours is replaced."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    # "drop": close the connection without answering; "hang": answer nothing until the stub stops.
    misbehave: str | None = None


DROP = Reply(misbehave="drop")
HANG = Reply(misbehave="hang")


def envelope(result: Any = None, *, code: str | None = None, message: str = "", action: str = "") -> bytes:
    metadata: dict[str, Any] = {
        "RequestId": "20250101000000ABCDEF0123456789ABCD",
        "Action": action,
        "Version": "2022-01-01",
        "Service": "vms",
        "Region": "cn-north-1",
    }
    if code is not None:
        metadata["Error"] = {"Code": code, "Message": message}
        return json.dumps({"ResponseMetadata": metadata}).encode()
    return json.dumps({"ResponseMetadata": metadata, "Result": result}).encode()


def ok(result: Any = None) -> Reply:
    return Reply(200, envelope(result if result is not None else {}))


def error(status: int, code: str, message: str = "") -> Reply:
    return Reply(status, envelope(code=code, message=message or code))


@dataclass
class Stub:
    url: str
    seen: list[Seen] = field(default_factory=list)


Script = Callable[[int, Seen], Reply]


@contextmanager
def scripted_server(script: Script | list[Reply]) -> Iterator[Stub]:
    """``script(n, request)`` answers the n-th request (0-based); a list answers in order, then
    repeats its last reply."""
    if isinstance(script, list):
        replies = script

        def script(n: int, _: Seen) -> Reply:
            return replies[min(n, len(replies) - 1)]

    release = threading.Event()
    lock = threading.Lock()
    stub = Stub(url="")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            seen = Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            with lock:
                number = len(stub.seen)
                stub.seen.append(seen)
            reply = script(number, seen)
            if reply.misbehave == "hang":
                release.wait()
            if reply.misbehave is not None:
                self.close_connection = True
                return
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

        do_GET = do_POST = do_PUT = _handle

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.block_on_close = False
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        release.set()
        server.shutdown()
        server.server_close()
        thread.join()
