"""A real webhook receiver on loopback that verifies signatures the way docs/review.md shows."""

from __future__ import annotations

import hashlib
import hmac
import json
import queue
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# Server flags that retry and poll webhook deliveries quickly, so tests wait seconds, not minutes.
FAST_WEBHOOKS = ["--webhook-retry-base", "0.2", "--webhook-retry-max", "1", "--webhook-poll", "0.2"]


@dataclass
class Received:
    event: dict[str, Any]
    headers: dict[str, str]
    signature_ok: bool


class Receiver:
    """``down`` drops each connection without an answer (as a crashed receiver would) and puts
    "dropped" on the queue, so a test can wait for a failed attempt instead of sleeping."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.down = False
        self.events: queue.Queue[Received | str] = queue.Queue()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if receiver.down:
                    self.close_connection = True
                    receiver.events.put("dropped")
                    return
                timestamp = self.headers.get("X-Vmsres-Timestamp", "")
                expected = hmac.new(
                    receiver.secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256
                ).hexdigest()
                given = self.headers.get("X-Vmsres-Signature", "")
                ok = hmac.compare_digest("sha256=" + expected, given)
                self.send_response(204 if ok else 401)
                self.end_headers()
                receiver.events.put(Received(json.loads(body), dict(self.headers), ok))

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def next(self, timeout: float = 30) -> Received | str:
        return self.events.get(timeout=timeout)

    def next_event(self, timeout: float = 30) -> Received:
        item = self.next(timeout)
        assert isinstance(item, Received), item
        return item

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
