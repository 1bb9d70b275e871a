"""Soak: mixed load against a server this script starts, for --seconds; reports errors, latency
percentiles and how the server's resident memory drifted. Not part of the test run.

    .venv/bin/python scripts/soak.py --seconds 600 --clients 4
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.audio_factory import make_wav
from tests.servers import RunningServer, start_server
from tests.wire_client import signed_request


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies: dict[str, list[float]] = {}
        self.errors: Counter[str] = Counter()

    def record(self, op: str, seconds: float, error: str | None) -> None:
        with self.lock:
            self.latencies.setdefault(op, []).append(seconds)
            if error:
                self.errors[f"{op}: {error}"] += 1


def client(server: RunningServer, index: int, until: float, stats: Stats, seed: int) -> None:
    rng = random.Random(seed + index)
    mine: list[str] = []
    serial = 0
    audio = [make_wav(0.3 + i * 0.2, sample_rate=8000) for i in range(4)]
    while time.monotonic() < until:
        serial += 1
        op = rng.choice(["commit", "query", "query", "tts", "rename", "delete"] if mine else ["commit"])
        started = time.perf_counter()
        error: str | None = None
        try:
            if op == "commit":
                name = f"soak-{index}-{serial}.wav"
                url = signed_request(server, "GetResourceUploadUrl", {"FileName": name}).json()["Result"]
                httpx.put(url["UploadUrl"], content=rng.choice(audio), timeout=30).raise_for_status()
                response = signed_request(server, "CommitResourceUpload", {"FileName": name})
                if response.status_code == 200:
                    mine.append(response.json()["Result"]["ResourceKey"])
            elif op == "query":
                response = signed_request(server, "QueryOpenGetResource", {"Type": 0, "Limit": 20})
            elif op == "tts":
                response = signed_request(
                    server, "OpenCreateTts", {"Name": f"tts-{index}-{serial}", "TtsTemplateContent": "hi"}
                )
            elif op == "rename":
                key = rng.choice(mine)
                response = signed_request(
                    server, "OpenUpdateResource", query={"ResourceKey": key, "Name": f"r-{serial}"}
                )
            else:
                response = signed_request(server, "OpenDeleteResource", query={"ResourceKey": mine.pop(0)})
            if response.status_code != 200:
                error = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            error = type(exc).__name__
        stats.record(op, time.perf_counter() - started, error)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data-dir", help="default: a temporary folder")
    parser.add_argument("--database-url")
    args = parser.parse_args()
    data = Path(args.data_dir or tempfile.mkdtemp(prefix="vmsres-soak-"))
    server = start_server(data, ["--gc-interval", "30"], database_url=args.database_url)
    stats = Stats()
    try:
        rss_start = rss_kib(server.process.pid)
        until = time.monotonic() + args.seconds
        threads = [
            threading.Thread(target=client, args=(server, i, until, stats, args.seed))
            for i in range(args.clients)
        ]
        for thread in threads:
            thread.start()
        samples = [rss_start]
        while any(t.is_alive() for t in threads):
            for thread in threads:
                thread.join(timeout=5)
            samples.append(rss_kib(server.process.pid))
        rss_end = rss_kib(server.process.pid)
    finally:
        server.stop()
    total = sum(len(v) for v in stats.latencies.values())
    print(f"soak: {args.seconds:.0f}s, {args.clients} clients, {total} operations, data in {data}")
    for op, values in sorted(stats.latencies.items()):
        print(
            f"  {op:8} n={len(values):6}  p50={percentile(values, 0.5):7.1f}ms  "
            f"p95={percentile(values, 0.95):7.1f}ms  p99={percentile(values, 0.99):7.1f}ms"
        )
    print(
        f"  RSS: start {rss_start} KiB, end {rss_end} KiB, max {max(samples)} KiB, drift {rss_end - rss_start:+} KiB"
    )
    errors = sum(stats.errors.values())
    print(f"  errors: {errors}")
    for what, count in stats.errors.most_common(10):
        print(f"    {count:6}  {what}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
