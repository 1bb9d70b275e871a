"""Concurrent changes of one thing, on real two-worker servers over SQLite and PostgreSQL.

Every race fires its requests together from threads released by one barrier, repeats for a few
rounds, and asserts the exact outcome: how many calls were acknowledged, what the others were
told, and how many events and audit rows the store holds. A check-then-act write shows up here
as a second acknowledgement, a second event or a 500 (PostgreSQL runs the two workers' writes
truly in parallel; SQLite serializes writers, which hides most such bugs).
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import httpx
import orjson
import pytest

from tests.audio_factory import make_wav
from tests.servers import RunningServer, provision_database, start_server, wait_for
from tests.webhook_receiver import FAST_WEBHOOKS, Receiver
from tests.wire_client import signed_request
from vmsres.server.store.database import asyncpg_dsn

TOKEN = "races-admin-token-4f9c2a7e1b"
ROUNDS = 4
T = TypeVar("T")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    with provision_database(request.param) as database_url:
        running = start_server(
            tmp_path_factory.mktemp("races"),
            ["--workers", "2", "--admin-token", TOKEN, "--fetch-allow-host", "127.0.0.1", *FAST_WEBHOOKS],
            database_url=database_url,
        )
        try:
            yield running
        finally:
            running.stop()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    hook = Receiver("races-secret")
    yield hook
    hook.close()


class Account:
    """A fresh account with its own key and a webhook, so events are counted per account."""

    def __init__(self, server: RunningServer, receiver: Receiver, policy: str | None = None) -> None:
        self.server = server
        self.name = f"races-{uuid.uuid4().hex[:8]}"
        admin("POST", server, "/accounts", 201, json={"Name": self.name, "ReviewPolicy": policy})
        key = admin("POST", server, "/keys", 201, json={"Account": self.name})
        self.access_key, self.secret_key = key["AccessKey"], key["SecretKey"]
        admin(
            "PUT",
            server,
            f"/accounts/{self.name}/webhook",
            json={"Url": receiver.url, "Secret": receiver.secret},
        )

    def call(self, action: str, body: dict[str, Any]) -> httpx.Response:
        return signed_request(
            self.server, action, body, access_key=self.access_key, secret_key=self.secret_key
        )

    def create_tts(self, name: str | None = None) -> str:
        response = self.call(
            "OpenCreateTts", {"Name": name or uuid.uuid4().hex[:12], "TtsTemplateContent": "hi"}
        )
        assert response.status_code == 200, response.text
        return str(response.json()["Result"]["ResourceKey"])

    def events(self, event_type: str, resource_key: str) -> list[dict[str, Any]]:
        rows = self.server.sql(
            "SELECT payload FROM webhook_deliveries WHERE account_name = :a AND event_type = :t"
            " AND resource_key = :k",
            {"a": self.name, "t": event_type, "k": resource_key},
        )
        return [orjson.loads(payload) for (payload,) in rows]

    def audit_outcomes(self, action: str, resource_key: str) -> Counter[str]:
        rows = self.server.sql(
            "SELECT outcome FROM audit_log WHERE action = :action AND resource_key = :k",
            {"action": action, "k": resource_key},
        )
        return Counter(outcome for (outcome,) in rows)


def admin(method: str, server: RunningServer, path: str, expect: int = 200, **kwargs: Any) -> Any:
    response = httpx.request(
        method,
        f"{server.url}/admin/v1{path}",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=60,
        **kwargs,
    )
    assert response.status_code == expect, response.text
    return response.json()


def race(calls: Sequence[Callable[[], T]]) -> list[T]:
    """Run the calls at once, one thread each, released together by a barrier; their results."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = calls[index]()
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert not any(thread.is_alive() for thread in threads)
    return results


def code_of(response: httpx.Response) -> str:
    if response.status_code == 200:
        return "ok"
    return str(response.json()["ResponseMetadata"]["Error"]["Code"])


def test_concurrent_deletes_acknowledge_exactly_one(server: RunningServer, receiver: Receiver) -> None:
    account = Account(server, receiver)
    for _ in range(ROUNDS):
        key = account.create_tts()
        answers = race([partial(account.call, "OpenDeleteResource", {"ResourceKey": key})] * 8)
        assert Counter(code_of(r) for r in answers) == {"ok": 1, "RESOURCE_KEY_IS_NOT_EXIST": 7}
        assert len(account.events("resource.deleted", key)) == 1
        assert account.audit_outcomes("OpenDeleteResource", key) == {"ok": 1, "RESOURCE_KEY_IS_NOT_EXIST": 7}


def test_rename_racing_delete_is_acknowledged_only_when_it_came_first(
    server: RunningServer, receiver: Receiver
) -> None:
    account = Account(server, receiver)
    seen = Counter[str]()
    for _ in range(ROUNDS * 2):
        key = account.create_tts("before")
        renamed, deleted = race(
            [
                partial(account.call, "OpenUpdateResource", {"ResourceKey": key, "Name": "after"}),
                partial(account.call, "OpenDeleteResource", {"ResourceKey": key}),
            ]
        )
        assert code_of(deleted) == "ok"
        assert code_of(renamed) in ("ok", "RESOURCE_KEY_IS_NOT_EXIST")
        [event] = account.events("resource.deleted", key)
        # An acknowledged rename happened before the delete, so the deleted resource bore its
        # name; a refused one did not happen at all.
        assert event["Data"]["Name"] == ("after" if code_of(renamed) == "ok" else "before")
        seen[code_of(renamed)] += 1
    assert sum(seen.values()) == ROUNDS * 2


def test_parallel_renames_each_apply_and_one_name_stands(server: RunningServer, receiver: Receiver) -> None:
    account = Account(server, receiver)
    for _ in range(ROUNDS):
        key = account.create_tts("start")
        names = [f"name-{i}" for i in range(6)]
        answers = race(
            [partial(account.call, "OpenUpdateResource", {"ResourceKey": key, "Name": n}) for n in names]
        )
        assert [code_of(r) for r in answers] == ["ok"] * 6
        [(final,)] = server.sql("SELECT name FROM resources WHERE resource_key = :k", {"k": key})
        assert final in names
        assert account.audit_outcomes("OpenUpdateResource", key) == {"ok": 6}


def test_concurrent_decisions_compare_and_set(server: RunningServer, receiver: Receiver) -> None:
    account = Account(server, receiver, policy="manual")
    for _ in range(ROUNDS):
        key = account.create_tts()
        approve = {"ResourceKeys": [key], "Reviewer": "alice"}
        reject = {"ResourceKeys": [key], "Reviewer": "bob", "Reason": "no"}
        approved, rejected = race(
            [
                partial(admin, "POST", server, "/review/approve", json=approve),
                partial(admin, "POST", server, "/review/reject", json=reject),
            ]
        )
        [a], [r] = approved, rejected
        assert [a["Ok"], r["Ok"]].count(True) == 1
        winner, loser = (a, r) if a["Ok"] else (r, a)
        stands = admin("GET", server, f"/resources/{key}")
        assert stands["State"] == winner["State"] == loser["State"]
        assert (
            loser["ReviewedBy"] == stands["ReviewedBy"] == ("reviewer:alice" if a["Ok"] else "reviewer:bob")
        )
        assert loser["ReviewedAt"] == stands["ReviewedAt"]
        assert len(account.events("resource.reviewed", key)) == 1
        assert Counter(account.audit_outcomes("Approve", key) + account.audit_outcomes("Reject", key)) == {
            "ok": 1,
            "AlreadyDecided": 1,
        }


def test_a_stale_decision_is_refused_and_force_redecides(server: RunningServer, receiver: Receiver) -> None:
    account = Account(server, receiver, policy="manual")
    key = account.create_tts()
    assert admin("POST", server, "/review/approve", json={"ResourceKeys": [key], "Reviewer": "alice"}) == [
        {"ResourceKey": key, "Ok": True, "State": 1}
    ]
    [stale] = admin(
        "POST", server, "/review/reject", json={"ResourceKeys": [key], "Reviewer": "bob", "Reason": "late"}
    )
    decided_at = admin("GET", server, f"/resources/{key}")["ReviewedAt"]
    assert stale["Ok"] is False and stale["State"] == 1
    assert stale["ReviewedBy"] == "reviewer:alice" and stale["ReviewedAt"] == decided_at
    assert admin("GET", server, f"/resources/{key}")["State"] == 1
    forced = admin(
        "POST",
        server,
        "/review/reject",
        json={"ResourceKeys": [key], "Reviewer": "bob", "Reason": "on second thought", "Force": True},
    )
    assert forced == [{"ResourceKey": key, "Ok": True, "State": 2, "Forced": True}]
    after = admin("GET", server, f"/resources/{key}")
    assert after["State"] == 2 and after["ReviewedBy"] == "reviewer:bob"
    [entry] = admin("GET", server, "/audit", params={"resource_key": key, "action": "Reject"})[:1]
    assert entry["Outcome"] == "ok" and "forced over State 1" in entry["Detail"]
    assert "reviewer:alice" in entry["Detail"]
    assert len(account.events("resource.reviewed", key)) == 2
    # The CLI's --force, on the store directly.
    cli = server.cli("review", "approve", key, "--force", "--reviewer", "carol", "--json")
    assert orjson.loads(cli.stdout)["State"] == 1
    refused = server.cli("review", "reject", key, "--reason", "x", check=False)
    assert refused.returncode != 0 and "already decided" in refused.stderr


def test_a_forced_decision_on_a_resource_under_review_says_so(
    server: RunningServer, receiver: Receiver
) -> None:
    account = Account(server, receiver, policy="manual")
    key = account.create_tts()
    forced = admin(
        "POST", server, "/review/approve", json={"ResourceKeys": [key], "Reviewer": "ann", "Force": True}
    )
    assert forced == [{"ResourceKey": key, "Ok": True, "State": 1, "Forced": True}]
    [entry] = admin("GET", server, "/audit", params={"resource_key": key, "action": "Approve"})
    assert (entry["Outcome"], entry["Detail"]) == ("ok", "forced; it was under review")


def test_client_token_race_runs_once_and_never_answers_500(server: RunningServer, receiver: Receiver) -> None:
    account = Account(server, receiver)
    for _ in range(3):
        token = uuid.uuid4().hex
        name = f"once-{token[:8]}"
        body = {"Name": name, "TtsTemplateContent": "hello #who#", "ClientToken": token}
        answers = race([partial(account.call, "OpenCreateTts", body)] * 50)
        assert {r.status_code for r in answers} <= {200, 503}, [
            r.text for r in answers if r.status_code >= 500
        ]
        keys = {r.json()["Result"]["ResourceKey"] for r in answers if r.status_code == 200}
        assert len(keys) == 1
        for busy in (r for r in answers if r.status_code == 503):
            assert code_of(busy) == "ServiceUnavailable" and int(busy.headers["Retry-After"]) >= 1
        rows = server.sql("SELECT resource_key FROM resources WHERE name = :n", {"n": name})
        assert [k for (k,) in rows] == list(keys)
        assert len(account.events("resource.created", keys.pop())) == 1


def test_parallel_commits_of_one_upload_make_one_resource(
    server: RunningServer, receiver: Receiver, tmp_path: Path
) -> None:
    account = Account(server, receiver)
    for round_ in range(2):
        file_name = f"race-{round_}-{uuid.uuid4().hex[:6]}.wav"
        url = account.call("GetResourceUploadUrl", {"FileName": file_name}).json()["Result"]["UploadUrl"]
        assert httpx.put(url, content=make_wav(0.5), timeout=30).status_code == 200
        answers = race(
            [partial(account.call, "CommitResourceUpload", {"FileName": file_name, "Type": 0})] * 6
        )
        assert [r.status_code for r in answers] == [200] * 6, [r.text for r in answers]
        keys = {r.json()["Result"]["ResourceKey"] for r in answers}
        assert len(keys) == 1
        rows = server.sql("SELECT resource_key FROM resources WHERE file_name = :f", {"f": file_name})
        assert [k for (k,) in rows] == list(keys)
        assert len(account.events("resource.created", keys.pop())) == 1


@pytest.fixture(scope="module")
def audio_origin() -> Iterator[str]:
    """A loopback HTTP server answering every path with the same short WAV."""
    body = make_wav(0.5)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "audio/wav")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_parallel_fetches_of_one_name_make_one_resource(
    server: RunningServer, receiver: Receiver, audio_origin: str
) -> None:
    account = Account(server, receiver)
    for _ in range(2):
        name = f"fetched-{uuid.uuid4().hex[:8]}"
        urls = [f"{audio_origin}/a.wav", f"{audio_origin}/b.wav"]
        calls = [
            partial(account.call, "FetchResource", {"Url": urls[i % 2], "Name": name, "Type": 0})
            for i in range(6)
        ]
        answers = race(calls)
        ok = [i for i, r in enumerate(answers) if r.status_code == 200]
        # Every call with the winning URL answers the one resource; every other call is refused.
        winning = {urls[i % 2] for i in ok}
        assert len(winning) == 1
        assert ok == [i for i in range(6) if urls[i % 2] in winning]
        assert {code_of(answers[i]) for i in range(6) if i not in ok} == {"NOT_REPET_INVOCK"}
        keys = {answers[i].json()["Result"]["ResourceKey"] for i in ok}
        rows = server.sql("SELECT resource_key, source_url FROM resources WHERE file_name = :f", {"f": name})
        assert [(k, u) for (k, u) in rows] == [(keys.pop(), winning.pop())]
        assert len(account.events("resource.created", rows[0][0])) == 1


def test_concurrent_account_key_lease_and_webhook_writes(server: RunningServer, receiver: Receiver) -> None:
    name = f"races-{uuid.uuid4().hex[:8]}"

    def create_account() -> int:
        return httpx.post(
            f"{server.url}/admin/v1/accounts",
            json={"Name": name},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=60,
        ).status_code

    assert Counter(race([create_account] * 6)) == {201: 1, 409: 5}

    account = Account(server, receiver)
    key = account.create_tts()

    def lease(holder: str) -> Callable[[], int]:
        return lambda: (
            httpx.post(
                f"{server.url}/admin/v1/resources/{key}/lease",
                json={"Seconds": 60, "Holder": holder},
                headers={"Authorization": f"Bearer {TOKEN}"},
                timeout=60,
            ).status_code
        )

    for _ in range(ROUNDS):
        assert race([lease(f"dialer-{i}") for i in range(6)]) == [200] * 6
        assert len(server.sql("SELECT holder FROM resource_leases WHERE resource_key = :k", {"k": key})) == 1

    def set_webhook(i: int) -> Callable[[], int]:
        return lambda: (
            httpx.put(
                f"{server.url}/admin/v1/accounts/{account.name}/webhook",
                json={"Url": f"{receiver.url}?n={i}", "Secret": receiver.secret},
                headers={"Authorization": f"Bearer {TOKEN}"},
                timeout=60,
            ).status_code
        )

    for _ in range(ROUNDS):
        assert race([set_webhook(i) for i in range(6)]) == [200] * 6

    # A leased resource is not deleted by any of the racing deletes, and none is acknowledged.
    answers = race([lambda: account.call("OpenDeleteResource", {"ResourceKey": key})] * 4)
    assert Counter(code_of(r) for r in answers) == {"OperationDenied": 4}
    assert account.events("resource.deleted", key) == []


def test_concurrent_key_disable_and_delete_acknowledge_what_happened(
    server: RunningServer, receiver: Receiver
) -> None:
    account = Account(server, receiver)
    seen = Counter[tuple[int, int]]()
    for _ in range(ROUNDS * 2):
        access_key = admin("POST", server, "/keys", 201, json={"Account": account.name})["AccessKey"]

        def call(method: str, path: str) -> Callable[[], int]:
            return lambda: (
                httpx.request(
                    method,
                    f"{server.url}/admin/v1{path}",
                    headers={"Authorization": f"Bearer {TOKEN}"},
                    timeout=60,
                ).status_code
            )

        disabled, deleted = race(
            [call("POST", f"/keys/{access_key}/disable"), call("DELETE", f"/keys/{access_key}")]
        )
        # A disable after the delete found no row: refused, not acknowledged.
        assert deleted == 200 and disabled in (200, 404)
        seen[(disabled, deleted)] += 1
        assert server.sql("SELECT 1 FROM access_keys WHERE access_key = :k", {"k": access_key}) == []
        trail = Counter(
            (action, outcome)
            for action, outcome in server.sql(
                "SELECT action, outcome FROM audit_log WHERE resource_key = :k", {"k": access_key}
            )
        )
        expected = {("DeleteKey", "ok"): 1}
        expected[("DisableKey", "ok" if disabled == 200 else "NotFoundError")] = 1
        assert trail == expected
    assert sum(seen.values()) == ROUNDS * 2


def test_concurrent_creations_of_one_account_audit_one_success(server: RunningServer) -> None:
    name = f"races-{uuid.uuid4().hex[:8]}"

    def create(policy: str) -> Callable[[], int]:
        return lambda: (
            httpx.post(
                f"{server.url}/admin/v1/accounts",
                json={"Name": name, "ReviewPolicy": policy},
                headers={"Authorization": f"Bearer {TOKEN}"},
                timeout=60,
            ).status_code
        )

    policies = ["manual", "auto", "manual", "auto-then-manual"]
    answers = race([create(p) for p in policies])
    assert Counter(answers) == {201: 1, 409: 3}
    # The creation and its policy are one change: the account has the winner's policy.
    [(policy,)] = server.sql("SELECT review_policy FROM accounts WHERE name = :n", {"n": name})
    assert policy == policies[answers.index(201)]
    rows = server.sql(
        "SELECT outcome FROM audit_log WHERE action = 'CreateAccount' AND account_name = :n", {"n": name}
    )
    assert Counter(outcome for (outcome,) in rows) == {"ok": 1, "ConflictError": 3}


def test_webhook_removal_racing_a_reset_is_one_order_or_the_other(
    server: RunningServer, receiver: Receiver
) -> None:
    for _ in range(ROUNDS):
        account = Account(server, receiver)
        key = account.create_tts()
        removed, reset = race(
            [
                partial(admin, "DELETE", server, f"/accounts/{account.name}/webhook"),
                partial(admin, "POST", server, f"/accounts/{account.name}/reset"),
            ]
        )
        assert reset["DeletedResourceKeys"] == [key] and removed["Url"] is None
        assert (
            server.sql(
                "SELECT 1 FROM account_webhooks aw JOIN accounts a ON a.id = aw.account_id WHERE a.name = :n",
                {"n": account.name},
            )
            == []
        )
        # The reset's event exists exactly when the reset went first (the webhook still there).
        resets = server.sql(
            "SELECT count(*) FROM webhook_deliveries WHERE account_name = :n AND event_type = 'account.reset'",
            {"n": account.name},
        )
        assert resets[0][0] in (0, 1)
        rows = server.sql(
            "SELECT action, outcome FROM audit_log WHERE account_name = :n AND action IN ('SetWebhook', 'ResetAccount')",
            {"n": account.name},
        )
        # One for the set-up webhook, one for the removal, one for the reset.
        assert Counter(rows) == {("SetWebhook", "ok"): 2, ("ResetAccount", "ok"): 1}


def _backend(server: RunningServer) -> str:
    return "postgresql" if server.store_url.startswith("postgres") else "sqlite"


@contextlib.contextmanager
def injected_failure(server: RunningServer, event: str, table: str, when: str) -> Iterator[None]:
    """A trigger failing every ``event`` ("INSERT", "UPDATE") on ``table`` whose new row matches
    ``when``: a fault between a change and what must go with it, if they were apart."""
    if _backend(server) == "sqlite":
        server.sql(
            f"CREATE TRIGGER injected_failure BEFORE {event} ON {table} WHEN {when}"
            " BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
        )
        drop = "DROP TRIGGER injected_failure"
    else:
        server.sql(
            "CREATE OR REPLACE FUNCTION injected_failure() RETURNS trigger LANGUAGE plpgsql"
            " AS $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$"
        )
        server.sql(
            f"CREATE TRIGGER injected_failure BEFORE {event} ON {table} FOR EACH ROW"
            f" WHEN ({when}) EXECUTE FUNCTION injected_failure()"
        )
        drop = f"DROP TRIGGER injected_failure ON {table}"
    try:
        yield
    finally:
        server.sql(drop)


@contextlib.contextmanager
def failing_audit(server: RunningServer, action: str) -> Iterator[None]:
    with injected_failure(server, "INSERT", "audit_log", f"NEW.action = '{action}' AND NEW.outcome = 'ok'"):
        yield


def test_an_admin_change_whose_audit_row_fails_does_not_happen(
    server: RunningServer, receiver: Receiver
) -> None:
    account = Account(server, receiver)
    access_key = account.access_key
    key = account.create_tts()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    [(last_audit,)] = server.sql("SELECT max(id) FROM audit_log")
    attempted: list[str] = []

    def attempt(action: str, method: str, path: str, **kwargs: Any) -> None:
        attempted.append(action)
        with failing_audit(server, action):
            response = httpx.request(
                method, f"{server.url}/admin/v1{path}", headers=headers, timeout=60, **kwargs
            )
        assert response.status_code == 500, response.text

    new_name = f"races-{uuid.uuid4().hex[:8]}"
    attempt("CreateAccount", "POST", "/accounts", json={"Name": new_name})
    assert server.sql("SELECT 1 FROM accounts WHERE name = :n", {"n": new_name}) == []
    attempt(
        "SetReviewPolicy", "PUT", f"/accounts/{account.name}/review-policy", json={"ReviewPolicy": "manual"}
    )
    attempt("SetLimits", "PUT", f"/accounts/{account.name}/limits", json={"MaxResources": 1})
    assert server.sql(
        "SELECT review_policy, max_resources FROM accounts WHERE name = :n", {"n": account.name}
    ) == [(None, None)]
    attempt("SetWebhook", "DELETE", f"/accounts/{account.name}/webhook")
    assert admin("GET", server, f"/accounts/{account.name}/webhook")["Url"] == receiver.url
    attempt("ResetAccount", "POST", f"/accounts/{account.name}/reset")
    assert admin("GET", server, f"/resources/{key}")["ResourceKey"] == key
    assert account.events("account.reset", key) == []
    keys_before = server.sql("SELECT count(*) FROM access_keys")
    attempt("CreateKey", "POST", "/keys", json={"Account": account.name})
    assert server.sql("SELECT count(*) FROM access_keys") == keys_before
    attempt("DisableKey", "POST", f"/keys/{access_key}/disable")
    attempt("RotateKey", "POST", f"/keys/{access_key}/rotate")
    attempt("DeleteKey", "DELETE", f"/keys/{access_key}")
    # The key still exists, enabled, with its old secret: it still signs requests.
    assert account.call("QueryUsableResource", {"Type": 1}).status_code == 200
    attempt("Lease", "POST", f"/resources/{key}/lease", json={"Seconds": 60, "Holder": "x"})
    assert server.sql("SELECT 1 FROM resource_leases WHERE resource_key = :k", {"k": key}) == []
    attempt("ForceState", "POST", f"/resources/{key}/force-state", json={"State": 2, "Reason": "x"})
    assert admin("GET", server, f"/resources/{key}")["State"] == 1
    operator = f"op-{uuid.uuid4().hex[:8]}"
    attempt("CreateOperator", "POST", "/operators", json={"Name": operator, "Role": "reviewer"})
    assert server.sql("SELECT 1 FROM operators WHERE name = :n", {"n": operator}) == []
    created = admin("POST", server, "/operators", expect=201, json={"Name": operator, "Role": "reviewer"})
    attempted.append("CreateOperator")  # the real creation's "ok" row, skipped by the check below
    attempt("DisableOperator", "POST", f"/operators/{operator}/disable")
    attempt("RotateOperator", "POST", f"/operators/{operator}/rotate")
    attempt("DeleteOperator", "DELETE", f"/operators/{operator}")
    # Still there, enabled, with the token it was given.
    listed = {o["Name"]: o for o in admin("GET", server, "/operators")}
    assert listed[operator]["Enabled"] is True
    assert (
        httpx.get(
            f"{server.url}/admin/v1/review/queue",
            headers={"Authorization": f"Bearer {created['Token']}"},
            timeout=60,
        ).status_code
        == 200
    )
    # Each failure is on the trail, written after its rollback; none of them says "ok".
    rows = server.sql("SELECT action, outcome FROM audit_log WHERE id > :id ORDER BY id", {"id": last_audit})
    assert [action for action, _ in rows] == attempted
    oks = [action for action, outcome in rows if outcome == "ok"]
    assert oks == ["CreateOperator"]


def test_a_client_token_answer_is_kept_with_its_change_or_neither(
    server: RunningServer, receiver: Receiver, audio_origin: str
) -> None:
    account = Account(server, receiver)
    key = account.create_tts("to-delete")
    renamed_key = account.create_tts("to-rename")
    file_name = f"kept-{uuid.uuid4().hex[:6]}.wav"
    url = account.call("GetResourceUploadUrl", {"FileName": file_name}).json()["Result"]["UploadUrl"]
    assert httpx.put(url, content=make_wav(0.5), timeout=30).status_code == 200
    fetched = f"fetched-{uuid.uuid4().hex[:6]}"
    created = f"created-{uuid.uuid4().hex[:6]}"
    changes = [
        ("OpenCreateTts", {"Name": created, "TtsTemplateContent": "hi"}),
        ("OpenUpdateResource", {"ResourceKey": renamed_key, "Name": "renamed"}),
        ("OpenDeleteResource", {"ResourceKey": key}),
        ("CommitResourceUpload", {"FileName": file_name, "Type": 0}),
        ("FetchResource", {"Url": f"{audio_origin}/x.wav", "Name": fetched, "Type": 0}),
    ]

    def names() -> list[str]:
        rows = server.sql(
            "SELECT r.name FROM resources r JOIN accounts a ON a.id = r.account_id WHERE a.name = :n"
            " ORDER BY r.name",
            {"n": account.name},
        )
        return [name for (name,) in rows]

    before = names()
    tokens = {action: uuid.uuid4().hex for action, _ in changes}
    # Storing the answer fails: the change, made in the same transaction, is undone with it.
    with injected_failure(server, "UPDATE", "idempotency_tokens", "NEW.result IS NOT NULL"):
        for action, body in changes:
            failed = account.call(action, {**body, "ClientToken": tokens[action]})
            assert (failed.status_code, code_of(failed)) == (500, "InternalError"), (action, failed.text)
    assert names() == before
    # The claims were released: the same tokens now run once, and a repeat gets the same answer.
    for action, body in changes:
        first = account.call(action, {**body, "ClientToken": tokens[action]})
        again = account.call(action, {**body, "ClientToken": tokens[action]})
        assert first.status_code == 200, (action, first.text)
        assert again.json()["Result"] == first.json()["Result"]
    assert names() == sorted([created, file_name, fetched, "renamed"])


def test_upload_urls_racing_a_commit_of_their_file_name_are_consumed_or_refused(
    server: RunningServer, receiver: Receiver
) -> None:
    account = Account(server, receiver)
    seen = Counter[str]()
    for round_ in range(ROUNDS * 2):
        file_name = f"late-{round_}-{uuid.uuid4().hex[:6]}.wav"
        url = account.call("GetResourceUploadUrl", {"FileName": file_name}).json()["Result"]["UploadUrl"]
        assert httpx.put(url, content=make_wav(0.5), timeout=30).status_code == 200
        issue = partial(account.call, "GetResourceUploadUrl", {"FileName": file_name})
        committed, *issued = race(
            [partial(account.call, "CommitResourceUpload", {"FileName": file_name, "Type": 0})] + [issue] * 4
        )
        assert committed.status_code == 200, committed.text
        for answer in issued:
            seen[code_of(answer)] += 1
            assert code_of(answer) in ("ok", "NOT_REPET_INVOCK"), answer.text
        # A URL issued before the commit was consumed by it, one issued after was refused: no
        # URL of a committed FileName is left to upload to.
        left = server.sql("SELECT nonce FROM uploads WHERE file_name = :f", {"f": file_name})
        assert left == []
        for answer in issued:
            if answer.status_code == 200:
                late = httpx.put(answer.json()["Result"]["UploadUrl"], content=b"x", timeout=30)
                assert late.status_code != 200
        assert len(account.events("resource.created", committed.json()["Result"]["ResourceKey"])) == 1
    assert sum(seen.values()) == ROUNDS * 2 * 4


# A trigger that waits on a lock the test holds needs PostgreSQL (SQLite has one writer anyway).
@pytest.mark.parametrize("server", ["postgresql"], indirect=True)
def test_an_upload_url_caught_between_its_check_and_its_insert_is_consumed_by_the_commit(
    server: RunningServer, receiver: Receiver
) -> None:
    """The race above, made certain on PostgreSQL: the URL's insert is held (by a trigger waiting
    on a lock this test holds) after its check found no resource, while the commit runs."""
    import psycopg

    account = Account(server, receiver)
    file_name = f"held-{uuid.uuid4().hex[:6]}.wav"
    url = account.call("GetResourceUploadUrl", {"FileName": file_name}).json()["Result"]["UploadUrl"]
    assert httpx.put(url, content=make_wav(0.5), timeout=30).status_code == 200
    lock_id = 4242
    server.sql(
        "CREATE OR REPLACE FUNCTION held_upload_insert() RETURNS trigger LANGUAGE plpgsql"
        f" AS $$ BEGIN PERFORM pg_advisory_xact_lock_shared({lock_id}); RETURN NEW; END $$"
    )
    server.sql(
        "CREATE TRIGGER held_upload_insert BEFORE INSERT ON uploads FOR EACH ROW"
        " EXECUTE FUNCTION held_upload_insert()"
    )

    def waiting() -> int:
        rows = server.sql(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND state = 'active'"
        )
        return int(rows[0][0])

    answers: dict[str, httpx.Response] = {}

    def run(name: str, action: str, body: dict[str, Any]) -> threading.Thread:
        thread = threading.Thread(target=lambda: answers.__setitem__(name, account.call(action, body)))
        thread.start()
        return thread

    holder = psycopg.connect(asyncpg_dsn(server.store_url), autocommit=True)
    try:
        holder.execute(f"SELECT pg_advisory_lock({lock_id})")
        issuing = run("issue", "GetResourceUploadUrl", {"FileName": file_name})
        wait_for(waiting, what="the URL's insert waiting on the test's lock")
        committing = run("commit", "CommitResourceUpload", {"FileName": file_name, "Type": 0})
        # Without serialization the commit ends now; with it, it waits for the URL's transaction.
        wait_for(lambda: "commit" in answers or waiting() == 2, what="the commit to end or wait")
        holder.execute(f"SELECT pg_advisory_unlock({lock_id})")
        for thread in (issuing, committing):
            thread.join(timeout=60)
    finally:
        holder.close()
        server.sql("DROP TRIGGER held_upload_insert ON uploads")
    assert answers["commit"].status_code == 200, answers["commit"].text
    assert answers["issue"].status_code == 200, answers["issue"].text
    # Issued before the commit, so the commit consumed it: no upload is left for the FileName.
    assert server.sql("SELECT nonce FROM uploads WHERE file_name = :f", {"f": file_name}) == []
