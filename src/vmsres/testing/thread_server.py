"""uvicorn in a thread that is not the main one (imported only when a VmsServer starts)."""

from __future__ import annotations

import socket
import threading

import uvicorn


class ThreadServer(uvicorn.Server):
    """uvicorn that leaves signals to the test runner and says when it listens."""

    def __init__(self, config: uvicorn.Config, ready: threading.Event) -> None:
        super().__init__(config)
        self.ready = ready

    def install_signal_handlers(self) -> None:
        """Where uvicorn before 0.29 installed them (later ones skip it outside the main thread)."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.ready.set()
