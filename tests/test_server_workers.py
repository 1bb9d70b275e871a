"""``vmsres serve --workers 2`` starts and answers (it crashed with uvicorn's newer Multiprocess)."""

from __future__ import annotations

from pathlib import Path

from tests.servers import start_server
from vmsres.client import Client


def test_two_workers_answer(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", extra_args=["--workers", "2"])
    try:
        with Client(server.access_key, server.secret_key, endpoint=server.url) as client:
            created = client.open_create_tts("workers", "x")
            # Fresh connections, so more than one worker gets a chance to answer.
            for _ in range(4):
                with Client(server.access_key, server.secret_key, endpoint=server.url) as other:
                    assert other.get_resource(created.resource_key).name == "workers"
    finally:
        server.stop()
    assert server.process.returncode == 0
