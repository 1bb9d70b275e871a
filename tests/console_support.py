"""Helpers for the console's tests: servers with an admin token and logging in over plain HTTP."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.servers import RunningServer, start_server

TOKEN = "console-test-token-4f9c2a7e1b"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def console_server(
    data_dir: Path, *extra: str, env: dict[str, str] | None = None, database_url: str | None = None
) -> RunningServer:
    return start_server(
        data_dir, ["--admin-token", TOKEN, "--review", "manual", *extra], env=env, database_url=database_url
    )


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def login(server: RunningServer, token: str = TOKEN) -> tuple[httpx.Client, httpx.Response]:
    """A client that went through the login form; the response is the login POST's."""
    client = httpx.Client(base_url=server.url, timeout=30)
    page = client.get("/console/login")
    assert page.status_code == 200
    response = client.post("/console/login", data={"token": token, "csrf": csrf_of(page.text)})
    return client, response
