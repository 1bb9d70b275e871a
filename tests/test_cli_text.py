"""What the ``vmsres`` commands print for people: aligned tables, names, labels, times, the actor."""

from __future__ import annotations

import calendar
import json
import math
import os
import pwd
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.audio_factory import make_wav
from tests.conftest import official_vms_service
from tests.servers import RunningServer, run_cli, start_server
from vmsres.client.output import display_width

ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


@pytest.fixture(scope="module")
def manual_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("cli-text")
    running = start_server(data, ["--review", "manual", "--fetch-allow-host", "127.0.0.1"])
    yield running
    running.stop()


def _env(server: RunningServer, api: bool, **changes: str | None) -> dict[str, str]:
    env = dict(os.environ)
    if api:  # `vmsres res`: the API with a key; the store commands use --data-dir instead
        env.update(
            VMSRES_ENDPOINT=server.url, VOLC_ACCESSKEY=server.access_key, VOLC_SECRETKEY=server.secret_key
        )
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def _run(server: RunningServer, *args: str, **env: str | None) -> str:
    done = run_cli(*args, check=False, env=_env(server, args[0] == "res", **env))
    assert done.returncode == 0, done.stderr
    return done.stdout


def _column_starts(header: str, headings: list[str]) -> list[int]:
    """The display column at which each heading begins (where every row's cell must begin too)."""
    starts = [header.index(h) for h in headings]
    assert all(display_width(header[:s]) == s for s in starts)  # the header is ASCII
    return starts


def _cell_starts(line: str, cells: list[str]) -> list[int]:
    found, position = [], 0
    for cell in cells:
        position = line.index(cell, position)
        found.append(display_width(line[:position]))
        position += len(cell)
    return found


def test_tables_align_chinese_names_and_the_review_queue_names_types(manual_server: RunningServer) -> None:
    vms = official_vms_service(manual_server)
    names = ["问候语", "ab", "结束语音提示"]
    keys = [
        vms.create_tts({"Name": name, "TtsTemplateContent": "您好"})["Result"]["ResourceKey"]
        for name in names
    ]

    queue = _run(manual_server, "review", "queue", *manual_server.store_args()).splitlines()
    header = queue[0]
    headings = ["RESOURCE KEY", "ACCOUNT", "TYPE", "NAME"]
    expected = _column_starts(header, headings)
    rows = {line.split()[0]: line for line in queue[1:]}
    for key, name in zip(keys, names, strict=True):
        assert _cell_starts(rows[key], [key, "default", "tts", name]) == expected

    listing = _run(manual_server, "res", "list", "--type", "1").splitlines()
    header = listing[0]
    expected = _column_starts(header, ["RESOURCE KEY", "NAME", "TYPE", "STATE"])
    rows = {line.split()[0]: line for line in listing[1:-1]}
    for key, name in zip(keys, names, strict=True):
        assert _cell_starts(rows[key], [key, name, "tts", "reviewing"]) == expected


def test_local_changes_are_audited_as_cli_and_the_os_user(manual_server: RunningServer) -> None:
    store = manual_server.store_args()
    _run(manual_server, "accounts", "create", "by-alice", *store, USER="alice", LOGNAME=None)
    # No user in the environment (as in many containers): the password database names the uid.
    _run(manual_server, "accounts", "create", "by-nobody", *store, USER=None, LOGNAME=None, USERNAME=None)
    trail = json.loads(_run(manual_server, "audit", "--action", "CreateAccount", "--json", *store))
    actors = {entry["Account"]: entry["Actor"] for entry in trail}
    assert actors["by-alice"] == "cli:alice"
    assert actors["by-nobody"] == f"cli:{pwd.getpwuid(os.getuid()).pw_name}"


def test_lease_expiry_is_printed_as_iso_time(manual_server: RunningServer) -> None:
    vms = official_vms_service(manual_server)
    key = vms.create_tts({"Name": "leased", "TtsTemplateContent": "x"})["Result"]["ResourceKey"]
    store = manual_server.store_args()
    before = time.time()
    leased = _run(manual_server, "leases", "lease", key, "--seconds", "600", *store).strip()
    after = math.ceil(time.time())  # a lease lasts at least its seconds: its expiry is rounded up
    assert leased.startswith(f"{key}: in use until ")
    until = leased.rsplit(" ", 1)[1]
    assert ISO_UTC.fullmatch(until)
    assert before + 600 <= calendar.timegm(time.strptime(until, "%Y-%m-%dT%H:%M:%SZ")) <= after + 600
    listed = [line for line in _run(manual_server, "leases", "list", *store).splitlines() if key in line]
    assert len(listed) == 1 and listed[0].split()[-1] == until


class _Origin(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = make_wav(1.0)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_res_fetch_prints_the_name_it_stored(manual_server: RunningServer, tmp_path: Path) -> None:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Origin)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/prompt.wav"
        printed = _run(manual_server, "res", "fetch", url, "--name", "welcome").strip()
    finally:
        httpd.shutdown()
        httpd.server_close()
    key = printed.split()[1]
    stored = json.loads(_run(manual_server, "res", "get", key, "--type", "0", "--json"))
    assert stored["Name"] == "welcome" and stored["Suffix"] == ".wav"
    assert printed == f"fetched {key}  welcome  (wav)"
