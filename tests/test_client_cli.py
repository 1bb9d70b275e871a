"""``vmsres res ...`` as a user runs it, against a real server on loopback (in-process; tests/test_cli_smoke.py runs it as a process)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.servers import RunningServer, run_cli

REQUEST_ID = re.compile(r"RequestId \d{14}[0-9A-F]{18}")


@pytest.fixture
def env(server: RunningServer, tmp_path: Path) -> dict[str, str]:
    """Credentials and endpoint from the environment; HOME empty so no stray ~/.volc is read."""
    home = tmp_path / "home"
    home.mkdir()
    environ = dict(os.environ)
    environ.update(
        HOME=str(home),
        VMSRES_ENDPOINT=server.url,
        VOLC_ACCESSKEY=server.access_key,
        VOLC_SECRETKEY=server.secret_key,
    )
    return environ


def res(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("res", *args, check=False, env=env)


def res_json(env: dict[str, str], *args: str) -> Any:
    done = res(env, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_create_list_get_rename_usable_delete(env: dict[str, str]) -> None:
    name = _unique("cli 模板")
    created = res_json(
        env,
        "create-tts",
        "--name",
        name,
        "--tts-template-content",
        "Hi #who#",
        "--tts-option",
        '{"VoiceType": "BV002"}',
        "--remark",
        "from the cli",
    )
    key = created["ResourceKey"]
    assert created == {"ResourceKey": key, "Name": name}

    listed = res(env, "list", "--type", "1", "--keyword", name)
    assert listed.returncode == 0, listed.stderr
    header, row, footer = listed.stdout.splitlines()
    assert header.split() == ["RESOURCE", "KEY", "NAME", "TYPE", "STATE", "DURATION", "CREATED"]
    assert row.startswith(f"{key}  {name}") and " tts " in row and " approved " in row
    assert footer == "1 of 1 (Offset 0, Limit 10)"

    page = res_json(env, "list", "--type", "1", "--keyword", key, "--limit", "5")
    assert (page["Total"], page["Limit"], page["Offset"]) == (1, 5, 0)
    [record] = page["Records"]
    assert record["TtsOptions"] == '{"VoiceType": "BV002"}'  # verbatim, as given
    assert record["Remark"] == "from the cli"

    shown = res(env, "get", key)
    assert shown.returncode == 0, shown.stderr
    assert f"ResourceKey         {key}" in shown.stdout
    assert "TtsTemplateContent  Hi #who#" in shown.stdout
    assert res_json(env, "get", key, "--type", "1") == record

    renamed = res(env, "rename", key, "cli renamed")
    assert (renamed.returncode, renamed.stdout) == (0, f"renamed {key} to cli renamed\n")
    assert res_json(env, "get", key)["Name"] == "cli renamed"

    usable = res_json(env, "usable", "--type", "1")
    assert key in {r["ResourceKey"] for r in usable}
    assert res_json(env, "usable", "--type", "1", "--v2") == usable

    deleted = res(env, "delete", key)
    assert (deleted.returncode, deleted.stdout) == (0, f"deleted {key}\n")
    gone = res(env, "get", key)
    assert gone.returncode == 1
    assert "RESOURCE_KEY_IS_NOT_EXIST" in gone.stderr


def test_list_all_pages_through_everything(env: dict[str, str], server: RunningServer) -> None:
    prefix = _unique("cli-all")
    keys = {
        res_json(env, "create-tts", "--name", f"{prefix}-{i}", "--tts-template-content", "x")["ResourceKey"]
        for i in range(5)
    }
    everything = res_json(env, "list", "--type", "1", "--keyword", prefix, "--all", "--limit", "2")
    assert everything["Total"] == 5
    assert {r["ResourceKey"] for r in everything["Records"]} == keys
    # Without --all, one page.
    assert len(res_json(env, "list", "--type", "1", "--keyword", prefix, "--limit", "2")["Records"]) == 2
    second = res_json(env, "list", "--type", "1", "--keyword", prefix, "--limit", "2", "--offset", "4")
    assert len(second["Records"]) == 1


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("delete", "0" * 32), "RESOURCE_KEY_IS_NOT_EXIST"),
        (("rename", "0" * 32, "x"), "RESOURCE_KEY_IS_NOT_EXIST"),
        (("delete", "", "--no-validate"), "RESOURCE_KEY_IS_NONE"),
        (("rename", "0" * 32, " ", "--no-validate"), "RESOURCE_NAME_IS_NONE"),
        (
            ("create-tts", "--name", "", "--tts-template-content", "x", "--no-validate"),
            "RESOURCE_NAME_IS_NONE",
        ),
        (("list", "--type", "0", "--limit", "500", "--no-validate"), "InvalidParameter"),
        (("create-tts", "--name", "n", "--tts-template-content", "${x}"), "InvalidParameter"),
        (("delete", "0" * 32, "--secret-key", "wrong", "--access-key", "AKLTtestak"), "SignatureNotMatch"),
        (("delete", "0" * 32, "--access-key", "AKLTnobody", "--secret-key", "x"), "InvalidAccessKeyId"),
    ],
)
def test_service_errors_exit_1_with_code_and_request_id(
    env: dict[str, str], args: tuple[str, ...], code: str
) -> None:
    done = res(env, *args)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith(f"vmsres: {code}: ")
    assert REQUEST_ID.search(done.stderr), done.stderr


def test_local_checks_exit_1_without_a_request_id(env: dict[str, str]) -> None:
    done = res(env, "list", "--type", "0", "--limit", "500")
    assert done.returncode == 1
    assert done.stderr.startswith("vmsres: InvalidParameter: The specified parameter Limit is invalid.")
    assert "RequestId" not in done.stderr


def test_usage_errors_exit_2(env: dict[str, str]) -> None:
    assert res(env, "list").returncode == 2  # --type is required, as in the spec
    assert res(env, "list", "--type", "5").returncode == 2  # not one of the spec's choices
    assert res(env, "create-tts", "--name", "n").returncode == 2
    bad_endpoint = res(env, "list", "--type", "0", "--endpoint", "ftp://x")
    assert bad_endpoint.returncode == 2 and "endpoint" in bad_endpoint.stderr
    bad_region = res(env, "list", "--type", "0", "--region", "cn/north")
    assert bad_region.returncode == 2 and "region" in bad_region.stderr
    assert res(env, "list", "--type", "0", "--all", "--offset", "5").returncode == 2


def test_no_answer_exits_3(env: dict[str, str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    done = res(env, "list", "--type", "0", "--endpoint", f"http://127.0.0.1:{port}", "--timeout", "2")
    assert done.returncode == 3
    assert done.stderr.startswith("vmsres: TransportError: ")


def test_credentials_and_endpoint_sources(env: dict[str, str], server: RunningServer) -> None:
    bare = {k: v for k, v in env.items() if k not in ("VOLC_ACCESSKEY", "VOLC_SECRETKEY")}
    missing = res(bare, "usable", "--type", "1")
    assert missing.returncode == 3 and "CredentialsNotFound" in missing.stderr
    volc = Path(bare["HOME"]) / ".volc"
    volc.mkdir()
    (volc / "credentials").write_text(
        f"[default]\naccess_key_id = {server.access_key}\nsecret_access_key = {server.secret_key}\n"
    )
    assert res(bare, "usable", "--type", "1").returncode == 0
    # --endpoint beats VMSRES_ENDPOINT.
    elsewhere = dict(env, VMSRES_ENDPOINT="http://127.0.0.1:9")
    assert res(elsewhere, "usable", "--type", "1", "--timeout", "2").returncode == 3
    assert res(elsewhere, "usable", "--type", "1", "--endpoint", server.url).returncode == 0


def test_options_come_from_the_spec() -> None:
    from vmsres.cli import build_parser
    from vmsres.client.models import python_name
    from vmsres.protocol.spec import ACTIONS

    parser = build_parser()
    for command, action in [
        ("list", "QueryOpenGetResource"),
        ("create-tts", "OpenCreateTts"),
        ("fetch", "FetchResource"),
        ("usable", "QueryUsableResource"),
    ]:
        help_text = " ".join(_help_of(parser, "res", command).split())
        for param in ACTIONS[action].params:
            assert " ".join(param.doc.split()) in help_text, (command, param.name)
            if param.name != "Url":
                assert f"--{python_name(param.name).replace('_', '-')}" in help_text


def _help_of(parser: Any, *path: str) -> str:
    for name in path:
        parser = next(
            action.choices[name]
            for action in parser._actions
            if getattr(action, "choices", None)
            and isinstance(action.choices, dict)
            and name in action.choices
        )
    return str(parser.format_help())
