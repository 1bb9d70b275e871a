"""Rate limits, quotas, ClientToken idempotency, DryRun and leases, through real servers."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers import RunningServer, start_embedded_server, start_server
from tests.wire_client import error_code, signed_request
from vmsres.client import NO_RETRY, Client, RetryPolicy
from vmsres.protocol.errors import Throttling

TOKEN = "hardening-admin-token-4f9c2a7e1b"
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def make_server(tmp_path: Path, database_url: str | None) -> Iterator[Any]:
    started: list[RunningServer] = []

    def make(*extra: str, data: str = "data", process: bool = False) -> RunningServer:
        """In this process, unless the test reads what only a process has (its log)."""
        args = ["--admin-token", TOKEN, *extra]
        if process:
            server = start_server(tmp_path / data, args, database_url=database_url)
        else:
            server = start_embedded_server(tmp_path / data, database_url, serve_args=args)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


def admin(server: RunningServer, method: str, path: str, body: Any = None) -> Any:
    response = httpx.request(
        method,
        f"{server.url}/admin/v1{path}",
        json=body,
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=30,
    )
    assert response.status_code < 300, response.text
    return response.json()


def create_tts(server: RunningServer, name: str, **extra: Any) -> httpx.Response:
    return signed_request(server, "OpenCreateTts", {"Name": name, "TtsTemplateContent": "hi #a#", **extra})


def total(server: RunningServer) -> int:
    response = signed_request(server, "QueryOpenGetResource", {"Type": 1, "Limit": 100})
    assert response.status_code == 200, response.text
    return int(response.json()["Result"]["Total"])


def records(server: RunningServer) -> dict[str, dict[str, Any]]:
    response = signed_request(server, "QueryOpenGetResource", {"Type": 1, "Limit": 100})
    return {r["ResourceKey"]: r for r in response.json()["Result"]["Records"]}


def outcomes(server: RunningServer, burst: int) -> list[str]:
    codes = []
    for _ in range(burst):
        response = signed_request(server, "QueryUsableResource", query={"Type": "1"})
        codes.append("ok" if response.status_code == 200 else error_code(response))
        if response.status_code != 200:
            assert response.status_code == 400
    return codes


# --- 1. Throttling ---------------------------------------------------------------------------------


def test_account_rate_throttles_beyond_the_burst(make_server: Any) -> None:
    # 1 per hour with a burst of 3: nothing refills during the test, so exactly 3 pass.
    server = make_server("--rate-per-account", "1/h:3")
    assert outcomes(server, 5) == ["ok", "ok", "ok", "Throttling", "Throttling"]
    # An empty bucket of 1 per hour holds a token again in at most an hour: the answer says so.
    refused = signed_request(server, "QueryUsableResource", query={"Type": "1"})
    assert error_code(refused) == "Throttling" and refused.headers["Retry-After"] == "3600"


def test_a_key_rate_refusal_carries_retry_after(make_server: Any) -> None:
    server = make_server("--rate-per-key", "1/m:1")
    refused = [signed_request(server, "QueryUsableResource", query={"Type": "1"}) for _ in range(2)]
    assert refused[0].status_code == 200 and "Retry-After" not in refused[0].headers
    assert error_code(refused[1]) == "Throttling" and refused[1].headers["Retry-After"] == "60"


def test_no_rate_configured_means_no_throttling(make_server: Any) -> None:
    server = make_server()
    assert set(outcomes(server, 8)) == {"ok"}


def test_admin_adjusts_an_accounts_rate(make_server: Any) -> None:
    server = make_server("--rate-per-key", "1/h:2")
    assert outcomes(server, 3) == ["ok", "ok", "Throttling"]
    admin(server, "PUT", "/accounts/default/limits", {"RatePerKey": "off"})
    assert set(outcomes(server, 4)) == {"ok"}
    shown = admin(server, "GET", "/accounts/default/limits")
    assert shown["RatePerKey"] == "off" and shown["MaxResources"] is None


def test_two_processes_share_one_bucket_through_redis(make_server: Any) -> None:
    args = ("--rate-per-account", "1/h:4", "--redis-url", REDIS_URL)
    first = make_server(*args)
    second = make_server(*args)  # same data dir and database: one deployment, two processes
    seen = outcomes(first, 2) + outcomes(second, 2) + outcomes(second, 1) + outcomes(first, 1)
    assert seen == ["ok", "ok", "ok", "ok", "Throttling", "Throttling"]


def test_without_redis_each_process_counts_alone(make_server: Any) -> None:
    first = make_server("--rate-per-account", "1/h:2")
    second = make_server("--rate-per-account", "1/h:2")
    assert outcomes(first, 2) + outcomes(second, 2) == ["ok"] * 4


def test_the_client_retries_after_throttling(make_server: Any) -> None:
    # A burst of 1 refilled once a second: the second call comes well inside that second, is
    # throttled, and must wait and retry.
    server = make_server("--rate-per-key", "1/s:1", process=True)
    patient = RetryPolicy(attempts=12, base_delay=0.1, max_delay=0.5)
    with Client(server.access_key, server.secret_key, endpoint=server.url, retry=patient) as client:
        client.open_create_tts("first", "x")
        client.open_create_tts("second", "y")
    # Throttled calls are not audited (a flood must not fill the audit table): the access log
    # shows them, the audit trail only the two that went through.
    trail = admin(server, "GET", "/audit?action=OpenCreateTts&limit=50")
    assert [entry["Outcome"] for entry in trail] == ["ok", "ok"]
    logged = [json.loads(line) for line in server.log_lines() if line.startswith('{"RequestId"')]
    assert [line["code"] for line in logged if line["Action"] == "OpenCreateTts"][:2] == ["", "Throttling"]
    with (
        Client(server.access_key, server.secret_key, endpoint=server.url, retry=NO_RETRY) as client,
        pytest.raises(Throttling),
    ):
        client.open_create_tts("third", "z")
        client.open_create_tts("fourth", "z")


# --- 2. Quotas -----------------------------------------------------------------------------------


def test_resource_count_quota(make_server: Any) -> None:
    server = make_server("--max-resources", "2")
    assert create_tts(server, "a").status_code == 200
    assert create_tts(server, "b").status_code == 200
    refused = create_tts(server, "c")
    assert refused.status_code == 400 and error_code(refused) == "QuotaExceeded"
    assert refused.json()["ResponseMetadata"]["Error"]["Message"].startswith(
        "ResourceCount has exceeded the quota."
    )
    assert total(server) == 2
    admin(server, "PUT", "/accounts/default/limits", {"MaxResources": 3})
    assert create_tts(server, "c").status_code == 200
    assert error_code(create_tts(server, "d")) == "QuotaExceeded"
    admin(server, "PUT", "/accounts/default/limits", {"MaxResources": -1})
    assert create_tts(server, "d").status_code == 200


def test_storage_quota_on_commit(make_server: Any, tmp_path: Path) -> None:
    from tests.audio_factory import make_wav

    server = make_server("--max-storage-bytes", "1000")
    audio = tmp_path / "tone.wav"
    audio.write_bytes(make_wav(2.0))
    with Client(server.access_key, server.secret_key, endpoint=server.url, retry=NO_RETRY) as client:
        ticket = client.get_resource_upload_url("tone.wav")
        assert httpx.put(ticket.upload_url, content=audio.read_bytes(), timeout=30).status_code < 300
        dry = signed_request(server, "CommitResourceUpload", {"FileName": "tone.wav", "DryRun": True})
        assert error_code(dry) == "QuotaExceeded"
        refused = signed_request(server, "CommitResourceUpload", {"FileName": "tone.wav"})
        assert error_code(refused) == "QuotaExceeded"
        assert "StorageBytes has exceeded the quota." in refused.text
        admin(server, "PUT", "/accounts/default/limits", {"MaxStorageBytes": -1})
        assert client.commit_resource_upload("tone.wav").resource_key


# --- 3. Idempotency ------------------------------------------------------------------------------


def test_client_token_answers_a_repeat_with_the_first_result(make_server: Any) -> None:
    server = make_server()
    token = secrets.token_hex(8)
    first = create_tts(server, "once", ClientToken=token)
    again = create_tts(server, "once", ClientToken=token)
    assert first.status_code == again.status_code == 200
    assert first.json()["Result"] == again.json()["Result"]
    assert first.json()["ResponseMetadata"]["RequestId"] != again.json()["ResponseMetadata"]["RequestId"]
    assert total(server) == 1
    mismatch = create_tts(server, "other", ClientToken=token)
    assert mismatch.status_code == 400 and error_code(mismatch) == "IdempotentParameterMismatch"
    # Another action under the same token is a mismatch too.
    key = first.json()["Result"]["ResourceKey"]
    renamed = signed_request(
        server,
        "OpenUpdateResource",
        query={"ResourceKey": key, "Name": "x", "ClientToken": token},
        content_type="application/x-www-form-urlencoded",
    )
    assert error_code(renamed) == "IdempotentParameterMismatch"
    # Without a token, the same request creates again.
    assert create_tts(server, "once").status_code == 200
    assert total(server) == 2


def test_client_tokens_are_shared_between_processes(make_server: Any) -> None:
    first = make_server()
    second = make_server()
    token = secrets.token_hex(8)
    a = create_tts(first, "shared", ClientToken=token).json()["Result"]
    b = create_tts(second, "shared", ClientToken=token).json()["Result"]
    assert a == b and total(first) == 1


def test_a_failed_request_does_not_use_up_its_token(make_server: Any) -> None:
    server = make_server("--max-resources", "0")
    token = secrets.token_hex(8)
    assert error_code(create_tts(server, "n", ClientToken=token)) == "QuotaExceeded"
    admin(server, "PUT", "/accounts/default/limits", {"MaxResources": 5})
    assert create_tts(server, "n", ClientToken=token).status_code == 200


# --- 4. DryRun -----------------------------------------------------------------------------------


def test_dry_run_checks_and_changes_nothing(make_server: Any) -> None:
    server = make_server("--max-resources", "1")
    for flag in (True, "true", "True", 1):
        dry = create_tts(server, "dry", DryRun=flag)
        assert dry.status_code == 400 and error_code(dry) == "DryRunOperation", flag
    assert total(server) == 0
    bad = create_tts(server, "dry", DryRun=True, TtsTemplateContent="${x}")
    assert error_code(bad) == "InvalidParameter"
    kept = create_tts(server, "kept").json()["Result"]["ResourceKey"]
    assert error_code(create_tts(server, "more", DryRun=True)) == "QuotaExceeded"
    delete = signed_request(
        server, "OpenDeleteResource", b"{}", query={"ResourceKey": kept, "DryRun": "true"}
    )
    assert error_code(delete) == "DryRunOperation"
    missing = signed_request(
        server, "OpenDeleteResource", b"{}", query={"ResourceKey": "f" * 32, "DryRun": "true"}
    )
    assert error_code(missing) == "RESOURCE_KEY_IS_NOT_EXIST"
    listing = signed_request(server, "QueryOpenGetResource", {"Type": 1, "DryRun": True})
    assert error_code(listing) == "DryRunOperation"
    commit = signed_request(server, "CommitResourceUpload", {"FileName": "never.wav", "DryRun": True})
    assert error_code(commit) == "RESOURCE_IS_NONE"
    assert list(records(server)) == [kept]
    assert error_code(create_tts(server, "x", DryRun="maybe")) == "InvalidParameter"


# --- 5. Leases -----------------------------------------------------------------------------------


def test_a_leased_resource_cannot_be_renamed_or_deleted(make_server: Any) -> None:
    server = make_server()
    key = create_tts(server, "busy").json()["Result"]["ResourceKey"]
    assert records(server)[key]["InUse"] is False
    lease = admin(server, "POST", f"/resources/{key}/lease", {"Seconds": 3600, "Holder": "dialer-1"})
    assert lease["Holder"] == "dialer-1"
    assert records(server)[key]["InUse"] is True
    usable = signed_request(server, "QueryUsableResource", query={"Type": "1"}).json()["Result"]
    assert [r["InUse"] for r in usable if r["ResourceKey"] == key] == [True]
    assert [x["ResourceKey"] for x in admin(server, "GET", "/leases")] == [key]
    # Another account's key learns nothing from the lease: the resource is simply not theirs.
    server.cli("accounts", "create", "outsider")
    outsider = json.loads(server.cli("keys", "create", "--account", "outsider", "--json").stdout)
    as_outsider = {"access_key": outsider["AccessKey"], "secret_key": outsider["SecretKey"]}
    foreign_rename = signed_request(
        server,
        "OpenUpdateResource",
        query={"ResourceKey": key, "Name": "stolen"},
        content_type="application/x-www-form-urlencoded",
        **as_outsider,
    )
    foreign_delete = signed_request(
        server, "OpenDeleteResource", b"{}", query={"ResourceKey": key}, **as_outsider
    )
    assert error_code(foreign_rename) == error_code(foreign_delete) == "RESOURCE_KEY_IS_NOT_EXIST"
    delete = signed_request(server, "OpenDeleteResource", b"{}", query={"ResourceKey": key})
    assert delete.status_code == 400 and error_code(delete) == "OperationDenied"
    rename = signed_request(
        server,
        "OpenUpdateResource",
        query={"ResourceKey": key, "Name": "new"},
        content_type="application/x-www-form-urlencoded",
    )
    assert error_code(rename) == "OperationDenied"
    admin(server, "DELETE", f"/resources/{key}/lease")
    assert records(server)[key]["InUse"] is False
    assert signed_request(server, "OpenDeleteResource", b"{}", query={"ResourceKey": key}).status_code == 200


def test_a_lease_lasts_at_least_its_seconds(make_server: Any) -> None:
    """Expiries are whole seconds: rounded down, a one-second lease taken late in a second
    would end within a few milliseconds."""
    server = make_server()
    keys = [create_tts(server, f"short lease {i}").json()["Result"]["ResourceKey"] for i in range(5)]
    for key in keys:
        asked = time.time()
        lease = admin(server, "POST", f"/resources/{key}/lease", {"Seconds": 1})
        assert lease["ExpiresAt"] >= asked + 1, (lease["ExpiresAt"], asked)
        assert lease["ExpiresAt"] <= time.time() + 2


def test_an_expired_lease_stops_counting_without_cleanup(make_server: Any) -> None:
    server = make_server()
    key = create_tts(server, "briefly").json()["Result"]["ResourceKey"]
    admin(server, "POST", f"/resources/{key}/lease", {"Seconds": 3600})
    assert records(server)[key]["InUse"] is True
    # Move the expiry into the past, as time would; the row itself stays.
    server.sql("UPDATE resource_leases SET expires_at = 1 WHERE resource_key = :k", {"k": key})
    assert records(server)[key]["InUse"] is False
    assert admin(server, "GET", "/leases") == []
    assert signed_request(server, "OpenDeleteResource", b"{}", query={"ResourceKey": key}).status_code == 200


def test_an_account_limit_beyond_what_the_store_holds_is_refused_not_a_500(
    tmp_path: Path, database_url: str | None
) -> None:
    from tests.console_support import TOKEN, console_server

    running = console_server(tmp_path, database_url=database_url)
    try:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        for field in ("MaxResources", "MaxStorageBytes"):
            answer = httpx.put(
                running.url + "/admin/v1/accounts/default/limits", headers=headers, json={field: 2**63}
            )
            assert answer.status_code == 422, (field, answer.status_code, answer.text)
            kept = httpx.put(
                running.url + "/admin/v1/accounts/default/limits", headers=headers, json={field: 2**63 - 1}
            )
            assert kept.status_code == 200 and kept.json()[field] == 2**63 - 1
    finally:
        running.stop()
