"""vmsres.testing: VmsServer in-process, the pytest plugin's fixtures, and docs/testing.md run as an
integrator's project would run it."""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from vmsres.client import Client, ResourceState, ResourceType
from vmsres.protocol.errors import QuotaExceeded, ResourceKeyIsNotExist
from vmsres.server.masterkey import load_keyring
from vmsres.server.settings import database_url_for_dir
from vmsres.server.store import migrate
from vmsres.testing import Account, VmsServer, VmsServerError

DOC = Path(__file__).parent.parent / "docs" / "testing.md"
_FILE_BLOCK = re.compile(r"^```(\w+) file=(\S+)\n(.*?)^```", re.M | re.S)
SUBPROCESS_TIMEOUT_SECONDS = 300
pytest_plugins = ("pytester",)


def client_for(server: VmsServer, account: Account) -> Client:
    return Client(account.access_key, account.secret_key, endpoint=server.endpoint)


def server_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("vmsres-")]


def test_start_answer_stop_leaves_nothing() -> None:
    threads_before = server_threads()
    with VmsServer() as server:
        assert (
            server.endpoint == f"http://127.0.0.1:{server.port}" and server.host == f"127.0.0.1:{server.port}"
        )
        assert httpx.get(f"{server.endpoint}/readyz").json()["status"] == "ready"
        with Client(server.access_key, server.secret_key, endpoint=server.endpoint) as client:
            assert client.query_open_get_resource(ResourceType.TTS).total == 0
        data_dir = server.data_dir
        assert data_dir is not None and (data_dir / "vmsres.db").exists()
        port = server.port
    assert server_threads() == threads_before
    assert not data_dir.exists()
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=5):
        pass
    server.stop()  # a second stop does nothing


def test_accounts_are_isolated(vms_server: VmsServer) -> None:
    first, second = vms_server.new_account(), vms_server.new_account("named-account")
    assert second.name == "named-account" and first.access_key != second.access_key
    with client_for(vms_server, first) as one, client_for(vms_server, second) as two:
        created = one.open_create_tts("only mine", "hello")
        assert [r.resource_key for r in one.query_open_get_resource(ResourceType.TTS).records] == [
            created.resource_key
        ]
        assert two.query_open_get_resource(ResourceType.TTS).total == 0
        with pytest.raises(ResourceKeyIsNotExist):
            two.open_delete_resource(created.resource_key)


def test_vms_account_is_new_for_each_test(vms_account: Account, vms_client: Client, vms_sdk: Any) -> None:
    assert vms_client.query_open_get_resource(ResourceType.TTS).total == 0
    created = vms_client.open_create_tts("from the client", "hello")
    page = vms_sdk.query_open_get_resource({"Type": 1, "Limit": 10})["Result"]
    assert [r["ResourceKey"] for r in page["Records"]] == [created.resource_key]


def test_manual_review_approve_and_reject() -> None:
    with VmsServer(review="manual") as server:
        account = server.new_account()
        with client_for(server, account) as client:
            kept = client.open_create_tts("kept", "hello")
            refused = client.open_create_tts("refused", "hello")
            assert {r.state for r in client.query_open_get_resource(ResourceType.TTS).records} == {
                ResourceState.REVIEWING
            }
            server.approve(kept.resource_key)
            server.reject(refused.resource_key, "not today")
            assert client.get_resource(kept.resource_key).state == ResourceState.APPROVED
            rejected = client.get_resource(refused.resource_key)
            assert (rejected.state, rejected.reject_reason) == (ResourceState.REJECTED, "not today")
            with pytest.raises(VmsServerError):
                server.approve("0" * 32)
            # Any other operator action, in-process:
            server.call(lambda ops: ops.force_state(kept.resource_key, 0, None))
            assert client.get_resource(kept.resource_key).state == ResourceState.REVIEWING
        # The server's mode is the default; an account can have the other one.
        auto = server.new_account(review="auto")
        with client_for(server, auto) as client:
            assert client.open_create_tts("at once", "hello").resource_key
            assert client.query_open_get_resource(ResourceType.TTS).records[0].state == ResourceState.APPROVED


def test_deciding_again_says_who_and_when_in_iso_time() -> None:
    with VmsServer(review="manual") as server:
        account = server.new_account()
        with client_for(server, account) as client:
            key = client.open_create_tts("twice", "hello").resource_key
        server.approve(key)
        with pytest.raises(VmsServerError) as again:
            server.reject(key, "too late")
        assert re.fullmatch(
            r"already decided: State 1 by reviewer:vmsres\.testing at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ",
            str(again.value),
        ), str(again.value)
        with pytest.raises(VmsServerError, match=f"^no resource {'0' * 32}$"):
            server.reject("0" * 32, "unknown")


def test_new_account_refuses_a_taken_or_invalid_name(vms_server: VmsServer) -> None:
    taken = vms_server.new_account().name
    with pytest.raises(Exception, match=f"account '{taken}' already exists"):
        vms_server.new_account(taken)
    # An explicit empty name is a mistake, not a request for a generated one.
    for bad in ("", "-dash", "x" * 65):
        with pytest.raises(Exception, match="an account name is 1-64"):
            vms_server.new_account(bad)


def test_a_wrong_serve_arg_is_an_error_not_an_exit() -> None:
    for args, needle in (
        (["--nope"], "serve_args: unrecognized arguments: --nope"),
        (["--review", "bogus"], "serve_args: argument --review: invalid choice: 'bogus'"),
        (["--workers"], "serve_args: argument --workers: expected one argument"),
    ):
        server = VmsServer(serve_args=args)
        with pytest.raises(VmsServerError) as refused:
            server.start()
        assert str(refused.value).startswith(needle), str(refused.value)
        assert not server.running and server.data_dir is not None and not server.data_dir.exists()


def test_reset_empties_every_library_and_keeps_keys() -> None:
    with VmsServer() as server:
        accounts = [server.new_account() for _ in range(2)]
        for account in accounts:
            with client_for(server, account) as client:
                client.open_create_tts("one", "hello")
                client.open_create_tts("two", "hello", client_token=f"token-{account.name}")
        server.reset()
        for account in accounts:
            with client_for(server, account) as client:
                assert client.query_open_get_resource(ResourceType.TTS).total == 0
                # The ClientToken answer went with the library: the same token creates again.
                again = client.open_create_tts("two", "hello", client_token=f"token-{account.name}")
                assert client.get_resource(again.resource_key).name == "two"


def test_data_dir_is_kept_and_reused(tmp_path: Path) -> None:
    with VmsServer(data_dir=tmp_path / "store") as server:
        account = server.new_account()
        with client_for(server, account) as client:
            key = client.open_create_tts("survives", "hello").resource_key
    assert (tmp_path / "store" / "vmsres.db").exists()
    with VmsServer(data_dir=tmp_path / "store") as server, client_for(server, account) as client:
        assert client.get_resource(key).name == "survives"


def test_fixtures_file_and_settings(tmp_path: Path) -> None:
    fixtures = tmp_path / "fixtures.json"
    fixtures.write_text(
        json.dumps(
            {
                "Accounts": [{"Name": "shop", "Keys": [{"AccessKey": "AKLTshop", "SecretKey": "s3cret"}]}],
                "Resources": [{"Account": "shop", "Name": "preloaded", "State": 0}],
            }
        )
    )
    with (
        VmsServer(fixtures=fixtures, settings={"max_resources": 1}) as server,
        Client("AKLTshop", "s3cret", endpoint=server.endpoint) as client,
    ):
        [record] = client.query_open_get_resource(ResourceType.TTS).records
        assert (record.name, record.state) == ("preloaded", ResourceState.REVIEWING)
        with pytest.raises(QuotaExceeded):
            client.open_create_tts("one too many", "hello")
    with pytest.raises(ValueError):
        VmsServer(settings={"no_such_setting": 1}).start()


def test_admin_token_opens_the_admin_api() -> None:
    with VmsServer() as server:
        answer = httpx.get(
            f"{server.endpoint}/admin/v1/accounts", headers={"Authorization": f"Bearer {server.admin_token}"}
        )
        assert answer.status_code == 200
        assert "default" in answer.text
        assert httpx.get(f"{server.endpoint}/admin/v1/accounts").status_code == 401


def schema_of(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        schema = conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
        ).fetchall()
        version = conn.execute("SELECT version_num FROM alembic_version").fetchall()
        return [*schema, *version]


def test_schema_image_equals_the_migrated_schema(tmp_path: Path) -> None:
    migrated, imaged = tmp_path / "migrated", tmp_path / "imaged"
    for folder in (migrated, imaged):
        folder.mkdir()
    migrate.upgrade(database_url_for_dir(migrated), load_keyring(migrated, None, create=True))
    keyring = load_keyring(imaged, None, create=True)
    migrate.create_sqlite_at_head(database_url_for_dir(imaged), keyring)
    assert schema_of(imaged / "vmsres.db") == schema_of(migrated / "vmsres.db")
    # The image carries this store's master-key check, so another key is refused as on any store.
    engine_url = database_url_for_dir(imaged)
    migrate.upgrade(engine_url, keyring)
    with pytest.raises(Exception, match="wrong master key"):
        migrate.upgrade(engine_url, load_keyring(migrated, None, create=False))


def test_plugin_import_starts_nothing() -> None:
    code = (
        "import sys, threading, vmsres.testing.pytest_plugin, vmsres.testing\n"
        "heavy = [m for m in sys.modules if m.startswith(('vmsres.server', 'uvicorn', 'sqlalchemy'))]\n"
        "print(heavy, threading.active_count())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=SUBPROCESS_TIMEOUT_SECONDS,
    )
    assert out.stdout.split() == ["[]", "1"]


def doc_files() -> dict[str, str]:
    return {name: code for _, name, code in _FILE_BLOCK.findall(DOC.read_text())}


def start_project(folder: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_docs_examples_run_as_a_project(tmp_path: Path) -> None:
    """docs/testing.md's files, written into a folder of their own (no conftest, nothing of this
    repository's tests), run as an integrator runs them: the fixtures come from the entry point."""
    files = doc_files()
    assert {
        "test_sdk.py",
        "test_generated_sdk.py",
        "test_client.py",
        "test_review.py",
        "test_unittest.py",
    } <= set(files)
    for name, code in files.items():
        (tmp_path / name).write_text(code)
    # Both at once: most of each run is importing, which the two cores share.
    with (
        start_project(tmp_path, "-m", "pytest", "-q", "-p", "no:cacheprovider") as with_pytest,
        start_project(tmp_path, "-m", "unittest", "-v", "test_unittest") as with_unittest,
    ):
        pytest_out, pytest_err = with_pytest.communicate(timeout=SUBPROCESS_TIMEOUT_SECONDS)
        _, unittest_err = with_unittest.communicate(timeout=SUBPROCESS_TIMEOUT_SECONDS)
    assert with_pytest.returncode == 0, pytest_out + pytest_err
    tests = sum(len(re.findall(r"^\s*def test_", code, re.M)) for code in files.values())
    assert f"{tests} passed" in pytest_out
    assert with_unittest.returncode == 0 and "OK" in unittest_err, unittest_err


def test_review_option_sets_the_session_server(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_mode="""
        def test_mode(vms_server, vms_client):
            assert vms_server.review == "manual"
            created = vms_client.open_create_tts("waits", "hello")
            assert vms_client.get_resource(created.resource_key).state == 0
        """
    )
    pytester.runpytest_inprocess("-p", "no:cacheprovider", "--vms-review", "manual").assert_outcomes(passed=1)


def test_serve_args_as_the_command_line_takes_them() -> None:
    with VmsServer(
        serve_args=[
            "--admin-token",
            "chosen-admin-token-4f9c2a7e1b",
            "--review",
            "manual",
            "--max-resources",
            "1",
        ]
    ) as server:
        assert (server.admin_token, server.review) == ("chosen-admin-token-4f9c2a7e1b", "manual")
        with client_for(server, server.new_account()) as client:
            created = client.open_create_tts("waits", "hello")
            assert client.get_resource(created.resource_key).state == ResourceState.REVIEWING
            with pytest.raises(QuotaExceeded):
                client.open_create_tts("one too many", "hello")
    with pytest.raises(ValueError, match="rate"):
        VmsServer(serve_args=["--rate-per-key", "fast"]).start()


def test_settings_that_cannot_work_are_a_vmsserver_error(tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    cases = [
        ({"data_dir": a_file}, "is not a folder"),
        ({"database_url": "postgresq://x/y"}, "unsupported database URL"),
        ({"fixtures": tmp_path / "missing.json"}, "no fixtures file"),
    ]
    for options, message in cases:
        server = VmsServer(**options)  # type: ignore[arg-type]
        with pytest.raises(VmsServerError, match=message):
            server.start()
        # A temporary store made before the refusal is gone again; a given data_dir is left alone.
        if "data_dir" not in options:
            assert server.data_dir is not None and not server.data_dir.exists()
        assert a_file.read_text() == "x"
