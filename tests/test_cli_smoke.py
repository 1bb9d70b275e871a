"""Every ``vmsres`` command once as a real subprocess (``python -m vmsres``).

The other tests run the commands in-process (tests/servers.py run_cli); these show that the entry
point, argument parsing, exit codes and output of a real process agree. Commands that do not
depend on each other run at the same time: most of each run is the interpreter importing vmsres.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.servers import RunningServer, load_factor, start_embedded_server

TIMEOUT_SECONDS = 60


def run_together(
    *commands: list[str], env: dict[str, str] | None = None
) -> list[subprocess.CompletedProcess[str]]:
    started = [
        (
            command,
            subprocess.Popen(
                [sys.executable, "-m", "vmsres", *command],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            ),
        )
        for command in commands
    ]
    done = []
    for command, process in started:
        with process:
            out, err = process.communicate(timeout=TIMEOUT_SECONDS * load_factor())
        done.append(subprocess.CompletedProcess(command, process.returncode, out, err))
    return done


def test_every_command_as_a_process(tmp_path: Path) -> None:
    server = start_embedded_server(tmp_path / "data")
    try:
        check_commands(server, tmp_path)
    finally:
        server.stop()


def check_commands(server: RunningServer, tmp_path: Path) -> None:
    store = server.store_args()
    fixtures = tmp_path / "fixtures.json"
    fixtures.write_text(
        json.dumps(
            {
                "Accounts": [{"Name": "smoke"}],
                "Resources": [{"Account": "smoke", "ResourceKey": "5" * 32, "Name": "smoked", "State": 0}],
            }
        )
    )
    [loaded, created] = run_together(
        ["fixtures", "load", str(fixtures), *store, "--json"],
        ["accounts", "create", "smoke-two", *store, "--json"],
    )
    assert loaded.returncode == 0, loaded.stderr
    assert json.loads(loaded.stdout)["LoadedResourceKeys"] == ["5" * 32]
    assert created.returncode == 0 and json.loads(created.stdout)["Name"] == "smoke-two", created.stderr

    results = run_together(
        ["review", "approve", "5" * 32, *store],
        ["keys", "create", "--account", "smoke", *store, "--json"],
        ["accounts", "list", *store],
        ["audit", "--limit", "5", *store],
        ["gc", *store, "--json"],
        ["backup", str(tmp_path / "smoke.tar"), *store],
        ["no-such-command"],
    )
    *ok, usage_error = results
    for result in ok:
        assert result.returncode == 0, (result.args, result.stderr)
    assert usage_error.returncode == 2 and "invalid choice" in usage_error.stderr
    approve, key, accounts = results[0], results[1], results[2]
    assert "5" * 32 in approve.stdout
    secret = json.loads(key.stdout)
    assert "smoke" in accounts.stdout and "smoke-two" in accounts.stdout

    env = {
        **os.environ,
        "VMSRES_ENDPOINT": server.url,
        "VOLC_ACCESSKEY": secret["AccessKey"],
        "VOLC_SECRETKEY": secret["SecretKey"],
    }
    restored_dir = tmp_path / "restored"
    [listing, restored] = run_together(
        ["res", "list", "--type", "1", "--json"],
        [
            "restore",
            str(tmp_path / "smoke.tar"),
            "--data-dir",
            str(restored_dir),
            "--master-key-file",
            str(server.data_dir / "master.key"),
        ],
        env=env,
    )
    assert listing.returncode == 0, listing.stderr
    assert "5" * 32 in listing.stdout
    assert restored.returncode == 0, restored.stderr
    assert (restored_dir / "vmsres.db").exists()
