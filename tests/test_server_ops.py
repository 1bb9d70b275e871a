"""Running the server: review policies, the CLI on a live store, bootstrap, restarts, health, logs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import official_vms_service
from tests.servers import run_cli, start_server
from tests.wire_client import signed_request


def _record(vms: Any, type_: int, key: str) -> dict[str, Any]:
    return dict(vms.query_open_get_resource({"Type": type_, "Keyword": key})["Result"]["Records"][0])


def test_manual_review_with_the_cli(tmp_path: Path, database_url: str | None) -> None:
    server = start_server(tmp_path / "data", ["--review", "manual"], database_url=database_url)
    try:
        vms = official_vms_service(server)
        first = vms.create_tts({"Name": "waits", "TtsTemplateContent": "hello #who#"})["Result"][
            "ResourceKey"
        ]
        second = vms.create_tts({"Name": "bad", "TtsTemplateContent": "hello"})["Result"]["ResourceKey"]
        assert _record(vms, 1, first)["State"] == 0
        assert vms.query_usable_resource({"Type": 1})["Result"] == []

        approved = server.cli("review", "approve", first, "--json")
        assert json.loads(approved.stdout) == {"ResourceKey": first, "State": 1}
        rejected = server.cli("review", "reject", second, "--reason", "含有违禁词")
        assert "State 2" in rejected.stdout

        vms = official_vms_service(server)
        assert _record(vms, 1, first)["State"] == 1
        rejected_record = _record(vms, 1, second)
        assert rejected_record["State"] == 2 and rejected_record["RejectReason"] == "含有违禁词"
        assert [r["ResourceKey"] for r in vms.query_usable_resource({"Type": 1})["Result"]] == [first]
        v2 = signed_request(server, "QueryUsableResourceV2", b"", query={"Type": "1"}, method="GET")
        assert [r["ResourceKey"] for r in v2.json()["Result"]["Records"]] == [first]

        unknown = server.cli("review", "approve", "0" * 32, check=False)
        assert unknown.returncode == 1 and "no resource" in unknown.stderr
        no_reason = server.cli("review", "reject", first, "--reason", " ", check=False)
        assert no_reason.returncode == 1
    finally:
        server.stop()


def test_first_start_prints_a_working_key_and_restart_keeps_everything(
    tmp_path: Path, database_url: str | None
) -> None:
    data = tmp_path / "data"
    server = start_server(data, bootstrap=False, database_url=database_url)
    try:
        output = "".join(server.stdout_lines)
        access_key = output.split("AccessKey: ")[1].split()[0]
        secret_key = output.split("SecretKey: ")[1].split()[0]
        vms = official_vms_service(server, ak=access_key, sk=secret_key)
        key = vms.create_tts({"Name": "persisted", "TtsTemplateContent": "x"})["Result"]["ResourceKey"]
    finally:
        server.stop()

    restarted = start_server(data, bootstrap=False, database_url=database_url)
    try:
        assert "AccessKey: " not in "".join(restarted.stdout_lines)
        vms = official_vms_service(restarted, ak=access_key, sk=secret_key)
        assert _record(vms, 1, key)["Name"] == "persisted"
    finally:
        restarted.stop()


def test_bootstrap_key_from_environment_is_created_once(tmp_path: Path, database_url: str | None) -> None:
    data = tmp_path / "data"
    for _ in range(2):
        server = start_server(data, database_url=database_url)
        try:
            listed = json.loads(server.cli("keys", "list", "--json").stdout)
            assert [k["AccessKey"] for k in listed] == [server.access_key]
            assert listed[0]["Account"] == "default"
            assert "AccessKey: " not in "".join(server.stdout_lines)
        finally:
            server.stop()


def test_accounts_and_keys_cli(tmp_path: Path, database_url: str | None) -> None:
    data = ["--data-dir", str(tmp_path / "data")]
    if database_url:
        data += ["--database-url", database_url]
    # A mistyped --data-dir or URL must not quietly become a new, empty store with a new master key.
    refused = run_cli("accounts", "create", "acme", *data, check=False)
    assert refused.returncode == 1 and refused.stderr.startswith("vmsres: no vmsres store at ")
    assert "--create" in refused.stderr and len(refused.stderr.splitlines()) == 1
    assert not (tmp_path / "data").exists()
    assert run_cli("accounts", "create", "acme", "--create", *data).returncode == 0
    duplicate = run_cli("accounts", "create", "acme", *data, check=False)
    assert duplicate.returncode == 1 and "already exists" in duplicate.stderr
    assert run_cli("accounts", "create", "bad name!", *data, check=False).returncode == 1
    accounts = json.loads(run_cli("accounts", "list", "--json", *data).stdout)
    assert [a["Name"] for a in accounts] == ["acme"]

    created = json.loads(run_cli("keys", "create", "--account", "acme", "--json", *data).stdout)
    assert set(created) == {"AccessKey", "SecretKey"} and created["AccessKey"].startswith("AKLT")
    human = run_cli("keys", "list", *data).stdout
    assert created["AccessKey"] in human and created["SecretKey"] not in human
    assert run_cli("keys", "create", "--account", "ghost", *data, check=False).returncode == 1

    server = start_server(tmp_path / "data", database_url=database_url)
    try:

        def query_with_the_new_key() -> httpx.Response:
            return signed_request(
                server,
                "QueryOpenGetResource",
                {"Type": 0},
                access_key=created["AccessKey"],
                secret_key=created["SecretKey"],
            )

        assert query_with_the_new_key().status_code == 200
        server.cli("keys", "disable", created["AccessKey"])
        assert query_with_the_new_key().status_code == 403
        server.cli("keys", "enable", created["AccessKey"])
        assert query_with_the_new_key().status_code == 200
        server.cli("keys", "delete", created["AccessKey"])
        deleted = query_with_the_new_key()
        assert deleted.json()["ResponseMetadata"]["Error"]["Code"] == "InvalidAccessKeyId"
    finally:
        server.stop()


def test_health_and_readiness(fresh_server: Any) -> None:
    assert httpx.get(f"{fresh_server.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{fresh_server.url}/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


def test_readiness_fails_when_schema_is_behind(tmp_path: Path, database_url: str | None) -> None:
    server = start_server(tmp_path / "data", database_url=database_url)
    try:
        server.sql("UPDATE alembic_version SET version_num = 'old'")
        ready = httpx.get(f"{server.url}/readyz")
        assert ready.status_code == 503 and "schema" in ready.json()["reason"]
    finally:
        server.stop()


def test_one_json_log_line_per_request_without_secrets(fresh_process_server: Any) -> None:
    fresh_server = fresh_process_server
    ok = signed_request(fresh_server, "QueryOpenGetResource", {"Type": 0})
    bad = signed_request(fresh_server, "QueryOpenGetResource", {"Type": 0}, secret_key="wrong")
    fresh_server.stop()
    lines = [json.loads(line) for line in fresh_server.log_lines() if line.startswith('{"RequestId"')]
    by_id = {line["RequestId"]: line for line in lines}
    ok_line = by_id[ok.json()["ResponseMetadata"]["RequestId"]]
    bad_line = by_id[bad.json()["ResponseMetadata"]["RequestId"]]
    assert ok_line["Action"] == "QueryOpenGetResource" and ok_line["account"] == "default"
    assert ok_line["status"] == 200 and ok_line["duration_ms"] >= 0
    assert bad_line["status"] == 401 and bad_line["code"] == "SignatureNotMatch"
    log_text = "\n".join(fresh_server.log_lines())
    assert fresh_server.secret_key not in log_text
    signature = ok.request.headers["Authorization"].split("Signature=")[1]
    assert signature not in log_text


def test_a_postgresql_server_without_autovacuum_is_named_once_at_start(
    tmp_path: Path, database_url: str | None
) -> None:
    """docs/deploy.md: the counters every write updates need vacuum. One warning at start when
    the PostgreSQL server runs without autovacuum, none when it runs with it, none on SQLite."""
    off = False
    if database_url is not None:
        import psycopg

        with psycopg.connect(database_url, autocommit=True) as conn:
            off = any(
                conn.execute(f"SHOW {name}").fetchone() != ("on",) for name in ("autovacuum", "track_counts")
            )
    server = start_server(tmp_path / "data", database_url=database_url)
    try:
        warned = [line for line in server.log_lines() if "without autovacuum" in line]
        assert len(warned) == (1 if off else 0), warned
        assert httpx.get(f"{server.url}/readyz").status_code == 200
    finally:
        server.stop()
