"""Starting real vmsres servers on loopback for tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

TEST_ACCESS_KEY = "AKLTtestak"
TEST_SECRET_KEY = "testsk"
START_TIMEOUT_SECONDS = 60


@dataclass
class RunningServer:
    url: str
    data_dir: Path
    process: subprocess.Popen[str]
    access_key: str = TEST_ACCESS_KEY
    secret_key: str = TEST_SECRET_KEY
    stdout_lines: list[str] = field(default_factory=list)
    log_path: Path | None = None

    @property
    def host_port(self) -> str:
        return self.url.split("://", 1)[1]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)

    def log_lines(self) -> list[str]:
        return self.log_path.read_text().splitlines() if self.log_path else []

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a ``vmsres`` command against this server's store."""
        return run_cli(*args, "--data-dir", str(self.data_dir), check=check)


def run_cli(
    *args: str, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vmsres", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=check,
        env=env,
    )


def _read_until_listening(stream: IO[str], seen: list[str]) -> str:
    for line in stream:
        seen.append(line)
        if line.startswith("{") and '"listening"' in line:
            return str(json.loads(line)["url"])
    raise RuntimeError("server exited before listening:\n" + "".join(seen))


def start_server(
    data_dir: Path,
    extra_args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    bootstrap: bool = True,
) -> RunningServer:
    """Start ``vmsres serve --port 0`` and return once its socket listens (it says so on stdout)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    full_env = dict(os.environ)
    if bootstrap:
        full_env["VMSRES_BOOTSTRAP_ACCESS_KEY"] = TEST_ACCESS_KEY
        full_env["VMSRES_BOOTSTRAP_SECRET_KEY"] = TEST_SECRET_KEY
    full_env.update(env or {})
    log_path = data_dir / f"server-{len(list(data_dir.glob('server-*.log')))}.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vmsres",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--data-dir",
            str(data_dir),
            *extra_args,
        ],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env=full_env,
    )
    assert process.stdout is not None
    seen: list[str] = []
    try:
        url = _read_until_listening(process.stdout, seen)
    except Exception:
        process.kill()
        process.wait()
        raise RuntimeError("".join(seen) + log_path.read_text()) from None
    return RunningServer(url=url, data_dir=data_dir, process=process, stdout_lines=seen, log_path=log_path)
