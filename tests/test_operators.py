"""Operators (named people with a role and a personal token) and the console's login hardening.

Real servers on loopback: the `vmsres operators` CLI on the store and through --endpoint, the
admin API with operator tokens, console logins by operator, throttled and audited failed logins,
wrong Bearer tokens on the admin API throttled with the same counts, the admin token's minimum
strength, and forwarded headers from trusted and untrusted proxies.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.console_support import TOKEN, console_server, csrf_of, login
from tests.servers import (
    REDIS_URL,
    RunningServer,
    keyed_store,
    migrate_to,
    require_redis,
    run_cli,
    run_sql,
)
from tests.wire_client import signed_request
from vmsres.server.service.logins import FAILURES_PER_ADDRESS as LOGIN_FAILURES_PER_ADDRESS
from vmsres.server.service.logins import FAILURES_PER_TOKEN as LOGIN_FAILURES_PER_TOKEN
from vmsres.server.service.logins import WINDOW_SECONDS as LOGIN_WINDOW_SECONDS


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, module_database_url: str | None
) -> Iterator[RunningServer]:
    """A console server on SQLite and on PostgreSQL (module_database_url is parametrized)."""
    running = console_server(tmp_path_factory.mktemp("operators"), database_url=module_database_url)
    yield running
    running.stop()


def remote(server: RunningServer, *args: str, token: str = TOKEN, check: bool = True) -> Any:
    return run_cli(*args, "--endpoint", server.url, "--admin-token", token, check=check)


def token_of(output: str) -> str:
    (line,) = [line for line in output.splitlines() if line.startswith("Token: ")]
    return line.removeprefix("Token: ")


def create_operator(server: RunningServer, name: str, role: str) -> str:
    return token_of(remote(server, "operators", "create", name, "--role", role).stdout)


def admin_api(
    server: RunningServer, method: str, path: str, token: str = TOKEN, json_body: Any = None
) -> httpx.Response:
    return httpx.request(
        method,
        f"{server.url}/admin/v1{path}",
        headers={"Authorization": f"Bearer {token}"},
        json=json_body,
        timeout=30,
    )


def waiting_tts(server: RunningServer, name: str) -> str:
    created = signed_request(server, "OpenCreateTts", {"Name": name, "TtsTemplateContent": "您好"})
    return str(created.json()["Result"]["ResourceKey"])


def audit_rows(server: RunningServer, **query: str) -> list[dict[str, Any]]:
    # From an address of its own: the tests lock 127.0.0.1 out, the admin API included.
    with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.3"), timeout=30) as client:
        response = client.get(
            f"{server.url}/admin/v1/audit",
            params={**query, "limit": "1000"},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()
    return rows


def test_migration_0011_adds_and_removes_the_operators_table(
    tmp_path: Path, database_url: str | None
) -> None:
    ring, url = keyed_store(tmp_path / "data", database_url)
    migrate_to(url, "head", ring)
    run_sql(
        url,
        "INSERT INTO operators (name, role, token_sha256, created_at, updated_at) "
        "VALUES ('m', 'reviewer', :d, 1, 1)",
        {"d": "0" * 64},
    )
    assert run_sql(url, "SELECT enabled, generation FROM operators") == [(True, 0)]
    migrate_to(url, "0010_rendition_pending", ring, downgrade=True)
    migrate_to(url, "head", ring)
    assert run_sql(url, "SELECT count(*) FROM operators") == [(0,)]


# --- the CLI and the admin API ------------------------------------------------------------


def test_operators_cli_on_the_store_and_through_the_endpoint(server: RunningServer) -> None:
    local = server.cli("operators", "create", "cli-local", "--role", "reviewer")
    local_token = token_of(local.stdout)
    assert local.stdout.startswith("Operator: cli-local (reviewer)")
    assert local_token.startswith("vmsop_") and len(local_token) >= 40
    remote_token = create_operator(server, "cli-remote", "admin")
    assert remote_token != local_token

    listed = json.loads(remote(server, "operators", "list", "--json").stdout)
    mine = {o["Name"]: o for o in listed if o["Name"].startswith("cli-")}
    assert {n: (o["Role"], o["Enabled"]) for n, o in mine.items()} == {
        "cli-local": ("reviewer", True),
        "cli-remote": ("admin", True),
    }
    assert "Token" not in json.dumps(listed) and local_token not in json.dumps(listed)
    # The server keeps only the sha256 of a token.
    stored = server.sql("SELECT token_sha256 FROM operators WHERE name = 'cli-local'")
    assert stored[0][0] != local_token and len(stored[0][0]) == 64

    assert remote(server, "operators", "disable", "cli-local").stdout.strip() == "disabled operator cli-local"
    assert server.cli("operators", "enable", "cli-local").stdout.strip() == "enabled operator cli-local"
    rotated = token_of(remote(server, "operators", "rotate", "cli-local").stdout)
    assert rotated != local_token
    assert remote(server, "operators", "delete", "cli-local").stdout.strip() == "deleted operator cli-local"

    taken = remote(server, "operators", "create", "cli-remote", "--role", "reviewer", check=False)
    assert (
        taken.returncode == 1
        and taken.stderr.strip() == "vmsres: HTTP 409: operator cli-remote exists already"
    )
    missing = server.cli("operators", "delete", "cli-nobody", check=False)
    assert missing.returncode == 1 and missing.stderr.strip() == "vmsres: no operator cli-nobody"
    bad_role = server.cli("operators", "create", "x", "--role", "owner", check=False)
    assert bad_role.returncode == 2 and "invalid choice" in bad_role.stderr
    bad_name = remote(server, "operators", "create", "a b", "--role", "admin", check=False)
    assert bad_name.returncode == 1 and "operator name" in bad_name.stderr

    actions = {
        (r["Actor"], r["Action"], r["Outcome"])
        for r in audit_rows(server)
        if r["Action"].endswith("Operator")
    }
    assert ("admin", "CreateOperator", "ok") in actions and ("admin", "RotateOperator", "ok") in actions
    assert any(actor.startswith("cli:") and action == "CreateOperator" for actor, action, _ in actions)


def test_admin_api_checks_the_role_of_an_operator_token(server: RunningServer) -> None:
    reviewer = create_operator(server, "api-reviewer", "reviewer")
    admin = create_operator(server, "api-admin", "admin")
    key = waiting_tts(server, "api-decided")

    assert admin_api(server, "GET", "/review/queue", reviewer).status_code == 200
    assert admin_api(server, "GET", f"/resources/{key}", reviewer).status_code == 200
    assert admin_api(server, "GET", "/audit", reviewer).status_code == 200
    refused = admin_api(server, "POST", f"/keys/{server.access_key}/rotate", reviewer)
    assert refused.status_code == 403
    assert refused.json()["detail"] == "operator api-reviewer is a reviewer: only admins may do this"
    for method, path in (("GET", "/accounts"), ("GET", "/keys"), ("POST", "/operators")):
        assert admin_api(server, method, path, reviewer, {"Name": "x", "Role": "admin"}).status_code == 403
    assert admin_api(server, "GET", "/keys", admin).status_code == 200
    assert admin_api(server, "GET", "/review/queue", "vmsop_" + "x" * 43).status_code == 401

    # A client-sent Reviewer does not name the decider: the token does.
    approved = admin_api(
        server, "POST", "/review/approve", reviewer, {"ResourceKeys": [key], "Reviewer": "mallory"}
    )
    assert approved.status_code == 200 and approved.json()[0]["Ok"] is True
    record = admin_api(server, "GET", f"/resources/{key}").json()
    assert record["ReviewedBy"] == "api-reviewer"
    rows = audit_rows(server, resource_key=key, action="Approve")
    assert [(r["Actor"], r["Outcome"]) for r in rows] == [("operator:api-reviewer", "ok")]

    # The CLI through --endpoint takes an operator's token the same way.
    queue = remote(server, "review", "queue", "--json", token=reviewer)
    assert queue.returncode == 0
    rotate = remote(server, "keys", "rotate", server.access_key, token=reviewer, check=False)
    assert rotate.returncode == 1 and rotate.stderr.startswith("vmsres: HTTP 403: operator api-reviewer")

    # Disabled: the token stops at once; a new token replaces the old one at once.
    remote(server, "operators", "disable", "api-reviewer")
    assert admin_api(server, "GET", "/review/queue", reviewer).status_code == 401
    remote(server, "operators", "enable", "api-reviewer")
    assert admin_api(server, "GET", "/review/queue", reviewer).status_code == 200
    new_token = token_of(remote(server, "operators", "rotate", "api-reviewer").stdout)
    assert admin_api(server, "GET", "/review/queue", reviewer).status_code == 401
    assert admin_api(server, "GET", "/review/queue", new_token).status_code == 200


# --- the console ----------------------------------------------------------------------------


def test_a_reviewer_in_the_console_decides_under_their_name_and_is_refused_keys(
    server: RunningServer,
) -> None:
    token = create_operator(server, "console-rev", "reviewer")
    key = waiting_tts(server, "console-decided")
    client, response = login(server, token)
    assert response.status_code == 303
    page = client.get("/console/review")
    assert page.status_code == 200 and "console-rev (reviewer)" in page.text
    assert "/console/accounts" not in page.text
    refused = client.get("/console/accounts")
    assert refused.status_code == 403 and "accounts and keys are for admins" in refused.text
    csrf = csrf_of(page.text)
    post = client.post("/console/accounts", data={"csrf": csrf, "action": "create-key", "account": "default"})
    assert post.status_code == 403
    assert client.get("/console/resources").status_code == 200

    decided = client.post("/console/review", data={"csrf": csrf, "decision": "approve", "keys": key})
    assert decided.status_code == 303 and f"decided={key}" in decided.headers["location"]
    assert admin_api(server, "GET", f"/resources/{key}").json()["ReviewedBy"] == "console-rev"
    assert [r["Actor"] for r in audit_rows(server, resource_key=key, action="Approve")] == [
        "operator:console-rev"
    ]
    logins = [r for r in audit_rows(server, action="ConsoleLogin") if r["Actor"] == "operator:console-rev"]
    assert [r["Outcome"] for r in logins] == ["ok"]

    # A second decision from the stale page shows who decided and when.
    stale = client.post(
        "/console/review", data={"csrf": csrf, "decision": "reject", "keys": key, "reason": "late"}
    )
    shown = client.get(stale.headers["location"])
    assert "already decided</strong> by console-rev at " in shown.text


def test_an_admin_operator_manages_keys_with_post_redirect_get(server: RunningServer) -> None:
    token = create_operator(server, "console-adm", "admin")
    client, _ = login(server, token)
    csrf = csrf_of(client.get("/console/accounts").text)
    created = client.post(
        "/console/accounts", data={"csrf": csrf, "action": "create-key", "account": "default"}
    )
    assert created.status_code == 303 and created.headers["location"] == "/console/accounts"
    sealed = created.cookies["vmsres_console_flash"]
    shown = client.get("/console/accounts")
    secret_key = shown.text.split('id="secret-sk">', 1)[1].split("<", 1)[0]
    assert len(secret_key) > 20 and secret_key not in sealed
    # A reload shows the page without the secret: it was shown once.
    again = client.get("/console/accounts")
    assert again.status_code == 200 and secret_key not in again.text and 'id="secret"' not in again.text
    # The flash is sealed for this session: copied into another session, it opens nothing.
    other, _ = login(server, token)
    other.cookies.set("vmsres_console_flash", sealed, path="/console")
    foreign = other.get("/console/accounts")
    assert foreign.status_code == 200 and secret_key not in foreign.text
    failed = client.post(
        "/console/accounts", data={"csrf": csrf, "action": "create-key", "account": "nobody"}
    )
    assert failed.status_code == 303
    refusal = client.get(failed.headers["location"])
    assert refusal.status_code == 400 and "nobody" in refusal.text
    rows = [r for r in audit_rows(server, action="CreateKey") if r["Actor"] == "operator:console-adm"]
    assert sorted(r["Outcome"] for r in rows) == ["NotFoundError", "ok"]
    # The review form's own refusals redirect too.
    empty = client.post("/console/review", data={"csrf": csrf, "decision": "approve"})
    assert empty.status_code == 303
    assert "Select at least one resource." in client.get(empty.headers["location"]).text


def test_disabling_rotating_or_deleting_an_operator_ends_their_sessions_at_once(
    server: RunningServer,
) -> None:
    token = create_operator(server, "console-ends", "reviewer")
    client, _ = login(server, token)
    assert client.get("/console/review").status_code == 200
    remote(server, "operators", "disable", "console-ends")
    assert client.get("/console/review").status_code == 303
    remote(server, "operators", "enable", "console-ends")
    # Enabling again lets the token log in again, but revives no old session.
    assert client.get("/console/review").status_code == 303
    client, _ = login(server, token)
    assert client.get("/console/review").status_code == 200
    new_token = token_of(remote(server, "operators", "rotate", "console-ends").stdout)
    assert client.get("/console/review").status_code == 303
    assert login(server, token)[1].status_code == 401
    client, _ = login(server, new_token)
    assert client.get("/console/review").status_code == 200
    remote(server, "operators", "delete", "console-ends")
    assert client.get("/console/review").status_code == 303


def test_the_console_operators_page_goes_through_the_service_with_post_redirect_get(
    server: RunningServer,
) -> None:
    admin_token = create_operator(server, "page-adm", "admin")
    client, _ = login(server, admin_token)
    page = client.get("/console/operators")
    assert page.status_code == 200 and 'href="/console/operators"' in page.text
    csrf = csrf_of(page.text)
    created = client.post(
        "/console/operators", data={"csrf": csrf, "action": "create", "name": "page-rev", "role": "reviewer"}
    )
    assert created.status_code == 303 and created.headers["location"] == "/console/operators"
    shown = client.get("/console/operators")
    token = shown.text.split('id="issued-token">', 1)[1].split("<", 1)[0]
    assert token.startswith("vmsop_") and token not in created.cookies["vmsres_console_flash"]
    assert token not in client.get("/console/operators").text, "the token was shown twice"
    # The token works, and the operator is what the admin API lists.
    listed = {o["Name"]: o for o in admin_api(server, "GET", "/operators").json()}
    assert listed["page-rev"]["Role"] == "reviewer" and listed["page-rev"]["Enabled"] is True
    reviewer, answer = login(server, token)
    assert answer.status_code == 303
    # A reviewer is refused the page, its link and its POSTs.
    review = reviewer.get("/console/review")
    assert 'href="/console/operators"' not in review.text
    refused = reviewer.get("/console/operators")
    assert refused.status_code == 403 and "page-rev is a reviewer: operators are for admins" in refused.text
    post = reviewer.post(
        "/console/operators",
        data={"csrf": csrf_of(review.text), "action": "create", "name": "sneaky", "role": "admin"},
    )
    assert post.status_code == 403 and "sneaky" not in {
        o["Name"] for o in admin_api(server, "GET", "/operators").json()
    }
    # Refusals come back in the form with its input.
    for name, role, why in (
        ("page-rev", "admin", "operator page-rev exists already"),
        ("bad name", "reviewer", "an operator name is 1-64 letters"),
        ("page-x", "boss", "a role is one of reviewer, admin"),
    ):
        sent = client.post(
            "/console/operators", data={"csrf": csrf, "action": "create", "name": name, "role": role}
        )
        again = client.get(sent.headers["location"])
        assert again.status_code == 400 and why in again.text
        assert f'value="{name}"' in again.text
    # Disabling ends the reviewer's session at once; the audit names the admin who did it.
    client.post("/console/operators", data={"csrf": csrf, "action": "disable", "name": "page-rev"})
    assert reviewer.get("/console/review").status_code == 303
    rotated = client.post("/console/operators", data={"csrf": csrf, "action": "rotate", "name": "page-rev"})
    new_token = (
        client.get(rotated.headers["location"]).text.split('id="issued-token">', 1)[1].split("<", 1)[0]
    )
    assert new_token != token
    deleted = client.post("/console/operators", data={"csrf": csrf, "action": "delete", "name": "page-rev"})
    assert "Operator page-rev deleted" in client.get(deleted.headers["location"]).text
    for action, outcomes in (
        ("CreateOperator", ["ConflictError", "OperatorError", "OperatorError", "ok"]),
        ("DisableOperator", ["ok"]),
        ("RotateOperator", ["ok"]),
        ("DeleteOperator", ["ok"]),
    ):
        rows = [r for r in audit_rows(server, action=action) if r["Actor"] == "operator:page-adm"]
        assert sorted(r["Outcome"] for r in rows) == outcomes, action
    assert client.post("/console/operators", data={"action": "delete", "name": "page-adm"}).status_code == 403


# --- login hardening ------------------------------------------------------------------------


def test_failed_logins_are_logged_audited_and_throttled(tmp_path: Path) -> None:
    running = console_server(tmp_path / "throttle")
    try:
        wrong = "vmsop_" + "w" * 43
        for _ in range(LOGIN_FAILURES_PER_TOKEN):
            assert login(running, wrong)[1].status_code == 401
        # This token is locked out; another one from this address is not yet.
        locked = login(running, wrong)[1]
        assert locked.status_code == 429 and locked.headers["retry-after"] == str(LOGIN_WINDOW_SECONDS)
        assert "vmsres_console=" not in locked.headers.get("set-cookie", "")
        others = LOGIN_FAILURES_PER_ADDRESS - LOGIN_FAILURES_PER_TOKEN
        for n in range(others):
            assert login(running, f"guess-{n}")[1].status_code == 401
        # The address is locked out now: even the right token waits.
        throttled = login(running, TOKEN)[1]
        assert throttled.status_code == 429 and throttled.headers["retry-after"] == str(LOGIN_WINDOW_SECONDS)

        failed = [r for r in audit_rows(running, action="ConsoleLogin") if r["Outcome"] == "failed"]
        assert len(failed) == LOGIN_FAILURES_PER_ADDRESS
        assert {r["Actor"] for r in failed} == {"console"}
        assert {r["Detail"] for r in failed} == {"wrong token from 127.0.0.1"}
        lines = [json.loads(line) for line in running.log_lines() if '"console_login"' in line]
        outcomes = [line["outcome"] for line in lines]
        assert outcomes.count("failed") == LOGIN_FAILURES_PER_ADDRESS and outcomes.count("throttled") == 2
        assert all(line["client"] == "127.0.0.1" for line in lines)
        log = "\n".join(running.log_lines())
        assert wrong not in log and "guess-0" not in log and TOKEN not in log
    finally:
        running.stop()


def test_concurrent_wrong_logins_get_exactly_the_allowed_tries(tmp_path: Path) -> None:
    running = console_server(tmp_path / "race")
    try:
        wrong, attempts = "vmsop_" + "c" * 43, 3 * LOGIN_FAILURES_PER_TOKEN
        # Each attempt has its own browser (client and login form), sent at the same time.
        forms = []
        for _ in range(attempts):
            client = httpx.Client(base_url=running.url, timeout=30)
            forms.append((client, csrf_of(client.get("/console/login").text)))
        barrier = threading.Barrier(attempts)

        def attempt(form: tuple[httpx.Client, str]) -> int:
            client, csrf = form
            barrier.wait(timeout=30)
            return client.post("/console/login", data={"token": wrong, "csrf": csrf}).status_code

        with ThreadPoolExecutor(attempts) as pool:
            answers = sorted(pool.map(attempt, forms))
        assert answers == [401] * LOGIN_FAILURES_PER_TOKEN + [429] * (attempts - LOGIN_FAILURES_PER_TOKEN)
        failed = [r for r in audit_rows(running, action="ConsoleLogin") if r["Outcome"] == "failed"]
        assert len(failed) == LOGIN_FAILURES_PER_TOKEN
        # Refused attempts are no failures: the address still has room for the right token.
        assert login(running, TOKEN)[1].status_code == 303
        for client, _ in forms:
            client.close()
    finally:
        running.stop()


def test_login_throttling_counts_across_workers_with_redis(tmp_path: Path) -> None:
    require_redis()
    running = console_server(tmp_path / "workers", "--workers", "2", "--redis-url", REDIS_URL)
    try:
        wrong = "vmsop_" + "r" * 43
        # A new connection for each login: the kernel spreads them over both workers.
        answers = [login(running, wrong)[1].status_code for _ in range(LOGIN_FAILURES_PER_TOKEN + 2)]
        assert answers == [401] * LOGIN_FAILURES_PER_TOKEN + [429, 429]
        # Another token from this address is still let in (the address has 5 of its 20).
        assert login(running, TOKEN)[1].status_code == 303
    finally:
        running.stop()


@pytest.mark.parametrize(
    ("token", "why"),
    [
        ("short-token-1", "a token needs at least 24 characters (this one has 13)"),
        ("ab" * 20, "a token needs at least 8 different characters"),
    ],
)
def test_a_weak_admin_token_is_refused(tmp_path: Path, token: str, why: str) -> None:
    result = run_cli(
        "serve", "--port", "0", "--data-dir", str(tmp_path / "data"), "--admin-token", token, check=False
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"vmsres: --admin-token: {why}"
    assert not (tmp_path / "data").exists()


def _forwarded_login(running: RunningServer, source: str, forwarded_for: str) -> httpx.Response:
    """A login through a TLS-terminating proxy at ``source`` that says the browser used https."""
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-For": forwarded_for}
    with httpx.Client(
        base_url=running.url, transport=httpx.HTTPTransport(local_address=source), timeout=30
    ) as client:
        page = client.get("/console/login", headers=headers)
        # The login form's cookie is Secure behind https; a proxy would pass it back as is.
        cookie = page.headers["set-cookie"].split(";", 1)[0]
        return client.post(
            "/console/login",
            data={"token": TOKEN, "csrf": csrf_of(page.text)},
            headers={**headers, "Origin": f"https://{running.host_port}", "Cookie": cookie},
        )


def test_forwarded_headers_are_believed_only_from_the_trusted_proxy(tmp_path: Path) -> None:
    running = console_server(tmp_path / "proxy", "--forwarded-allow-ips", "127.0.0.2")
    try:
        accepted = _forwarded_login(running, "127.0.0.2", "203.0.113.7")
        assert accepted.status_code == 303
        session_cookie = next(
            c for c in accepted.headers.get_list("set-cookie") if c.startswith("vmsres_console=")
        )
        assert "secure" in {part.strip().lower() for part in session_cookie.split(";")}
        # The same request from a host not named: its X-Forwarded-Proto is not believed, so the
        # https Origin is another origin.
        refused = _forwarded_login(running, "127.0.0.1", "203.0.113.7")
        assert refused.status_code == 403 and "cross-origin form refused" in refused.text
        # The trusted proxy's X-Forwarded-For names the client that throttling and audit see.
        with httpx.Client(
            base_url=running.url, transport=httpx.HTTPTransport(local_address="127.0.0.2"), timeout=30
        ) as client:
            page = client.get("/console/login", headers={"X-Forwarded-For": "198.51.100.9"})
            client.post(
                "/console/login",
                data={"token": "wrong", "csrf": csrf_of(page.text)},
                headers={"X-Forwarded-For": "198.51.100.9"},
            )
        details = [
            r["Detail"] for r in audit_rows(running, action="ConsoleLogin") if r["Outcome"] == "failed"
        ]
        assert details == ["wrong token from 198.51.100.9"]
    finally:
        running.stop()


# --- wrong Bearer tokens on the admin API ---------------------------------------------------


def _bearer_calls(
    running: RunningServer,
    tokens: list[str],
    source: str = "127.0.0.1",
    forwarded_for: str | None = None,
    path: str = "/admin/v1/accounts",
) -> list[httpx.Response]:
    """One GET of ``path`` per token, all sent at once, each on its own connection."""
    barrier = threading.Barrier(len(tokens))
    headers = {} if forwarded_for is None else {"X-Forwarded-For": forwarded_for}

    def call(token: str) -> httpx.Response:
        with httpx.Client(
            base_url=running.url, transport=httpx.HTTPTransport(local_address=source), timeout=30
        ) as client:
            barrier.wait(timeout=30)
            return client.get(path, headers={**headers, "Authorization": f"Bearer {token}"})

    with ThreadPoolExecutor(len(tokens)) as pool:
        return list(pool.map(call, tokens))


def _statuses(answers: list[httpx.Response]) -> list[int]:
    return sorted(a.status_code for a in answers)


def test_concurrent_wrong_bearer_tokens_get_exactly_the_allowed_tries(tmp_path: Path) -> None:
    running = console_server(tmp_path / "bearer")
    try:
        wrong, attempts = "vmsop_" + "b" * 43, 3 * LOGIN_FAILURES_PER_TOKEN
        answers = _bearer_calls(running, [wrong] * attempts)
        allowed = LOGIN_FAILURES_PER_TOKEN
        assert _statuses(answers) == [401] * allowed + [429] * (attempts - allowed)
        for answer in answers:
            if answer.status_code == 429:
                assert answer.headers["retry-after"] == str(LOGIN_WINDOW_SECONDS)
                assert answer.json() == {
                    "detail": "too many wrong tokens from this address or with this token; "
                    "try again after Retry-After seconds"
                }
            else:
                assert answer.json() == {"detail": "a valid admin or operator token is needed"}
                assert answer.headers["www-authenticate"] == "Bearer"
        failed = [r for r in audit_rows(running, action="AdminApiLogin") if r["Outcome"] == "failed"]
        assert len(failed) == allowed
        assert {r["Actor"] for r in failed} == {"admin-api"}
        assert {r["Detail"] for r in failed} == {"wrong token from 127.0.0.1 (GET /admin/v1/accounts)"}
        lines = [json.loads(line) for line in running.log_lines() if '"admin_api_auth"' in line]
        outcomes = sorted(line["outcome"] for line in lines)
        assert outcomes == ["failed"] * allowed + ["throttled"] * (attempts - allowed)
        assert all(line["client"] == "127.0.0.1" for line in lines)
        assert wrong not in "\n".join(running.log_lines())
        # Refused tries are no failures: this address has 5 of its 20, so the right token works.
        assert admin_api(running, "GET", "/accounts").status_code == 200
        # No token at all is not a guess: 401, not counted, not audited.
        for _ in range(LOGIN_FAILURES_PER_ADDRESS):
            assert httpx.get(f"{running.url}/admin/v1/accounts", timeout=30).status_code == 401
        assert admin_api(running, "GET", "/accounts").status_code == 200
    finally:
        running.stop()


def test_an_address_locked_out_by_bearer_tokens_is_locked_out_of_the_console_too(tmp_path: Path) -> None:
    running = console_server(tmp_path / "bearer-address")
    try:
        reviewer = create_operator(running, "rita", "reviewer")
        attempts = LOGIN_FAILURES_PER_ADDRESS + 6
        answers = _bearer_calls(running, [f"vmsop_guess{n:02d}" + "x" * 32 for n in range(attempts)])
        assert _statuses(answers) == [401] * LOGIN_FAILURES_PER_ADDRESS + [429] * 6
        # The address is locked out, even for right tokens, on both doors.
        queue = "/admin/v1/review/queue"
        assert _statuses(_bearer_calls(running, [TOKEN, reviewer], path=queue)) == [429, 429]
        assert login(running, TOKEN)[1].status_code == 429
        # Another address is not: the admin token and an operator's token work from there.
        from_elsewhere = _bearer_calls(running, [TOKEN, reviewer], source="127.0.0.2", path=queue)
        assert _statuses(from_elsewhere) == [200, 200]
        failed = [r for r in audit_rows(running, action="AdminApiLogin") if r["Outcome"] == "failed"]
        assert len(failed) == LOGIN_FAILURES_PER_ADDRESS
    finally:
        running.stop()


def test_bearer_throttling_sees_the_client_a_trusted_proxy_names(tmp_path: Path) -> None:
    running = console_server(tmp_path / "bearer-proxy", "--forwarded-allow-ips", "127.0.0.2")
    try:
        attempts = LOGIN_FAILURES_PER_ADDRESS + 2
        guesses = [f"guess-{n:02d}-" + "y" * 24 for n in range(attempts)]
        answers = _bearer_calls(running, guesses, source="127.0.0.2", forwarded_for="203.0.113.7")
        assert _statuses(answers) == [401] * LOGIN_FAILURES_PER_ADDRESS + [429] * 2
        # Through the proxy, another client is another address.
        assert _statuses(_bearer_calls(running, [TOKEN], "127.0.0.2", "203.0.113.7")) == [429]
        assert _statuses(_bearer_calls(running, [TOKEN], "127.0.0.2", "198.51.100.9")) == [200]
        # A host not trusted cannot name a client: it is counted as itself (nothing counted yet).
        assert _statuses(_bearer_calls(running, [TOKEN], "127.0.0.1", "203.0.113.7")) == [200]
        details = {r["Detail"] for r in audit_rows(running, action="AdminApiLogin")}
        assert details == {"wrong token from 203.0.113.7 (GET /admin/v1/accounts)"}
    finally:
        running.stop()


def test_bearer_throttling_counts_across_workers_with_redis(tmp_path: Path) -> None:
    require_redis()
    running = console_server(tmp_path / "bearer-workers", "--workers", "2", "--redis-url", REDIS_URL)
    try:
        wrong, attempts = "vmsop_" + "q" * 43, 4 * LOGIN_FAILURES_PER_TOKEN
        # Separate connections sent at once: the kernel spreads them over both workers.
        answers = _bearer_calls(running, [wrong] * attempts)
        allowed = LOGIN_FAILURES_PER_TOKEN
        assert _statuses(answers) == [401] * allowed + [429] * (attempts - allowed)
        assert admin_api(running, "GET", "/accounts").status_code == 200
    finally:
        running.stop()


def test_the_break_glass_admin_s_name_is_not_an_operator_s(server: RunningServer) -> None:
    # The admin token's decisions read ReviewedBy reviewer:admin; an operator named so would be
    # indistinguishable from it in every record.
    for name in ("admin", "Admin", "ADMIN"):
        answer = httpx.post(
            server.url + "/admin/v1/operators",
            headers={"Authorization": f"Bearer {TOKEN}"},
            json={"Name": name, "Role": "reviewer"},
        )
        assert answer.status_code == 400 and "admin token" in answer.json()["detail"], name
    refused = server.cli("operators", "create", "admin", "--role", "admin", check=False)
    assert refused.returncode == 1 and "admin token" in refused.stderr


def test_reviewed_by_is_the_operator_s_own_name_and_fixture_is_not_one(server: RunningServer) -> None:
    # ReviewedBy of an operator's decision is the bare name; "fixture" is what fixtures' decisions
    # say, so no operator may take it.
    for name in ("fixture", "Fixture"):
        answer = httpx.post(
            server.url + "/admin/v1/operators",
            headers={"Authorization": f"Bearer {TOKEN}"},
            json={"Name": name, "Role": "reviewer"},
        )
        assert answer.status_code == 400 and "fixture" in answer.json()["detail"], name
