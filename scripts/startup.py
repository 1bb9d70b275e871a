"""How long the ``vmsres`` command takes to start: help and version, and ``serve`` until /readyz answers.

    .venv/bin/python scripts/startup.py [--runs 5]

Each figure is the median of ``--runs`` fresh processes (``python -m vmsres``): wall time, which
depends on whatever else the machine is doing, and the process's CPU time (user + system), which
mostly does not. ``serve`` is timed from spawning to the first 200 from /readyz; "first start" is
an empty data dir (migrations, the master key, the bootstrap key), "restart" the same store again.
Results go to stdout as a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

COMMANDS = {
    "vmsres --version": ["--version"],
    "vmsres res --help": ["res", "--help"],
    "vmsres --help": ["--help"],
    "vmsres accounts list": ["accounts", "list"],
}
READY_TIMEOUT_SECONDS = 60.0


def _vmsres(*args: str) -> list[str]:
    return [sys.executable, "-m", "vmsres", *args]


Timing = tuple[float, float]  # wall seconds, CPU seconds (user + system) of the process


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_command(args: list[str], data_dir: Path) -> Timing:
    """NaN where this version lacks the command."""
    started, cpu = time.perf_counter(), _children_cpu()
    done = subprocess.run(
        _vmsres(*args, *(["--data-dir", str(data_dir)] if args[0] == "accounts" else [])),
        capture_output=True,
    )
    if done.returncode != 0:
        return math.nan, math.nan
    return time.perf_counter() - started, _children_cpu() - cpu


def _process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def time_serve(data_dir: Path) -> Timing:
    """From spawning ``vmsres serve`` to the first 200 from /readyz."""
    env = {**os.environ, "VMSRES_BOOTSTRAP_ACCESS_KEY": "AKLTstartup", "VMSRES_BOOTSTRAP_SECRET_KEY": "sk"}
    started = time.perf_counter()
    process = subprocess.Popen(
        _vmsres("serve", "--port", "0", "--data-dir", str(data_dir), "--log-level", "warning"),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        url = next(json.loads(line)["url"] for line in process.stdout if '"listening"' in line)
        with httpx.Client(timeout=5) as http:
            while time.perf_counter() - started < READY_TIMEOUT_SECONDS:
                try:
                    if http.get(f"{url}/readyz").status_code == 200:
                        return time.perf_counter() - started, _process_cpu(process.pid)
                except httpx.TransportError:
                    pass
                time.sleep(0.005)
        raise RuntimeError("the server did not become ready")
    finally:
        process.terminate()
        process.wait(timeout=30)


def _run_again(command: list[str], data_dir: Path, _run: int) -> Timing:
    return time_command(command, data_dir)


def median(runs: int, measure: Callable[[int], Timing]) -> Timing:
    timings = [measure(i) for i in range(runs)]
    return statistics.median(t[0] for t in timings), statistics.median(t[1] for t in timings)


def _cell(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    rows: list[tuple[str, Timing]] = []
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        time_serve(root / "existing")  # a store for the store command and the restarts
        for name, command in COMMANDS.items():
            rows.append((name, median(args.runs, functools.partial(_run_again, command, root / "existing"))))
        rows.append(("vmsres serve (first start)", median(args.runs, lambda i: time_serve(root / f"new{i}"))))
        rows.append(("vmsres serve (restart)", median(args.runs, lambda _: time_serve(root / "existing"))))
    print("| Command | wall s | CPU s |\n|---|---|---|")
    for name, (wall, cpu) in rows:
        print(f"| `{name}` | {_cell(wall)} | {_cell(cpu)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
