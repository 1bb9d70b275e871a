"""The store commands made from the admin operation table print the same on a store and
through a server's admin API (--endpoint), for every group: accounts, keys, limits, leases."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.servers import RunningServer, start_server
from vmsres.cli import main

TOKEN = "admin-cli-token-4f9c2a7e1b"
Run = Callable[..., str]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("admin-cli") / "data", ["--admin-token", TOKEN])
    yield running
    running.stop()


@pytest.fixture(params=["local", "remote"])
def run(
    request: pytest.FixtureRequest, server: RunningServer, capsys: pytest.CaptureFixture[str]
) -> Iterator[Run]:
    where = (
        server.store_args()
        if request.param == "local"
        else ["--endpoint", server.url, "--admin-token", TOKEN]
    )

    def run(*args: str, status: int = 0) -> str:
        capsys.readouterr()
        assert main([*args, *where]) == status
        captured = capsys.readouterr()
        return (captured.out if status == 0 else captured.err).rstrip("\n")

    yield run


def test_accounts_and_webhooks(run: Run) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    assert run("accounts", "create", name) == f"created account {name}"
    assert run("accounts", "set-policy", name, "manual") == f"{name}: review manual"
    assert run("accounts", "set-policy", name, "default") == f"{name}: review server default"
    hook = run("accounts", "set-webhook", name, "--url", "http://127.0.0.1:9/hook", "--secret", "s3")
    assert hook == "Url: http://127.0.0.1:9/hook\nSecret: s3"
    assert run("accounts", "set-webhook", name) == f"webhook of {name} removed"
    assert f"\n{name}  " in run("accounts", "list") + "  "
    assert run("accounts", "create", name, status=1).endswith("already exists")


def test_keys_life_cycle(run: Run) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    run("accounts", "create", name)
    created = run("keys", "create", "--account", name)
    match = re.fullmatch(r"AccessKey: (\S+)\nSecretKey: \S+", created)
    assert match, created
    access_key = match.group(1)
    assert run("keys", "disable", access_key) == f"disabled {access_key}"
    listed = json.loads(run("keys", "list", "--account", name, "--json"))
    assert listed == [{"AccessKey": access_key, "Account": name, "Enabled": False}]
    assert run("keys", "enable", access_key) == f"enabled {access_key}"
    assert run("keys", "rotate", access_key).startswith(f"AccessKey: {access_key}\nSecretKey: ")
    assert run("keys", "delete", access_key) == f"deleted {access_key}"
    assert "no access key" in run("keys", "delete", access_key, status=1)


def test_limits_left_out_stay_and_default_returns_to_the_server_default(run: Run) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    run("accounts", "create", name)
    assert run("limits", "set", name, "--rate-per-key", "5/s", "--max-resources", "3") == (
        f"Account: {name}\nRatePerKey: 5/s\nRatePerAccount: server default\n"
        "MaxResources: 3\nMaxStorageBytes: server default"
    )
    run("limits", "set", name, "--max-resources", "default")
    assert json.loads(run("limits", "show", name, "--json")) == {
        "Account": name,
        "RatePerKey": "5/s",
        "RatePerAccount": None,
        "MaxResources": None,
        "MaxStorageBytes": None,
    }
    assert run("limits", "set", name, "--max-resources", "lots", status=1) == "vmsres: not a count: 'lots'"
    # Beyond what the store holds (a 64-bit integer): refused in one line, locally and remotely alike.
    huge = str(2**63)
    assert (
        run("limits", "set", name, "--max-storage-bytes", huge, status=1) == f"vmsres: not a count: '{huge}'"
    )
    assert run("limits", "set", name, "--max-resources", "-2", status=1) == "vmsres: not a count: '-2'"


def test_leases_of_a_fixture_resource(run: Run, tmp_path: Path) -> None:
    name, key = f"cli-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    fixtures = tmp_path / "fixtures.json"
    fixtures.write_text(json.dumps([{"Account": name, "ResourceKey": key, "Name": "greeting"}]))
    assert run("fixtures", "load", str(fixtures)) == "loaded 1 resources"
    assert re.fullmatch(
        rf"{key}: in use until \d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\dZ",
        run("leases", "lease", key, "--seconds", "60"),
    )
    listed = run("leases", "list", "--account", name).splitlines()
    assert listed[0].split() == ["RESOURCE", "KEY", "ACCOUNT", "HOLDER", "EXPIRES", "AT"]
    assert listed[1].split()[:3] == [key, name, "dialer"]
    assert run("leases", "release", key) == f"{key}: released"
    assert run("leases", "release", key) == f"{key}: was not leased"
