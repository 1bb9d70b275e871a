"""`make bench`: QueryOpenGetResource throughput and latency on a large store, SQLite and PostgreSQL.

Builds a store of N resources in one account (bulk-loaded straight into the table; the
triggers of migration 0004_scale keep counts and trigram indexes as they would in service),
starts the real server with 2 workers, and drives it with wrk. Each request must carry a valid
signature, so a pool of requests is signed up front (valid 15 minutes) and written into the
wrk Lua script, which cycles through them. The same wrk run against a raw-ASGI hello app under
uvicorn with the same worker count gives the ceiling. Results go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

from vmsres.service.services import open_services
from vmsres.signing import parse_query, sign_request
from vmsres.store import migrate
from vmsres.store.database import database_url_for_dir

ROOT = Path(__file__).resolve().parent.parent
AK, SK = "AKLTbench", "benchsecret"
PG_ADMIN = os.environ.get("VMSRES_BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
WORDS = ["会员", "到期", "通知", "订单", "物流", "提醒", "催缴", "验证码", "活动", "回访", "满意度", "调查"]
LATIN = ["order", "notice", "reminder", "promo", "survey", "billing", "welcome", "alert", "v2", "final"]


def name_for(i: int, rng: random.Random) -> str:
    parts = rng.sample(WORDS, 2) + [rng.choice(LATIN), str(i)]
    rng.shuffle(parts)
    return "".join(parts) if rng.random() < 0.5 else " ".join(parts)


def rows(n: int, account_id: int) -> list[tuple[object, ...]]:
    rng = random.Random(42)
    base = int(time.time()) - n
    out = []
    for i in range(n):
        name = name_for(i, rng)
        type_ = rng.choice((0, 1, 2))
        out.append(
            (secrets.token_hex(16), account_id, type_, rng.choice((0, 1, 1, 1, 2)), name, name.casefold(),
             ".mp3" if type_ != 1 else "", 12, "", base + i, base + i)
        )
    return out


COLUMNS = ("resource_key, account_id, type, state, name, name_folded, suffix, duration, remark, "
           "created_at, updated_at")


async def make_account(url: str) -> int:
    services = open_services(url)
    try:
        await services.accounts.ensure_key("bench", AK, SK)
        account = await services.accounts.store.account_by_name("bench")
        assert account is not None
        return int(account["id"])
    finally:
        await services.close()


def load(url: str, n: int) -> tuple[int, list[str]]:
    account_id = asyncio.run(make_account(url))
    data = rows(n, account_id)
    if url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        with conn:
            conn.executemany(f"INSERT INTO resources ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)", data)
        conn.execute("ANALYZE")
        conn.close()
    else:
        import psycopg

        with psycopg.connect(url) as conn, conn.cursor() as cur:
            with cur.copy(f"COPY resources ({COLUMNS}) FROM STDIN") as copy:
                for row in data:
                    copy.write_row(row)
            conn.commit()
            conn.autocommit = True
            cur.execute("VACUUM ANALYZE resources")
    return account_id, [r[0] for r in data[:: max(1, n // 200)]]  # type: ignore[misc]


def signed_pool(host: str, bodies: list[dict[str, object]]) -> list[tuple[str, dict[str, str], bytes]]:
    query = urlencode({"Action": "QueryOpenGetResource", "Version": "2022-01-01"})
    pool = []
    for body in bodies:
        raw = json.dumps(body, ensure_ascii=False).encode()
        headers = sign_request(method="POST", host=host, path="/", query_pairs=parse_query(query), body=raw,
                               content_type="application/json", access_key=AK, secret_key=SK,
                               region="cn-north-1", service="vms")
        pool.append((f"/?{query}", headers, raw))
    return pool


def lua_for(pool: list[tuple[str, dict[str, str], bytes]]) -> str:
    def q(s: str | bytes) -> str:
        text = s.decode() if isinstance(s, bytes) else s
        return json.dumps(text, ensure_ascii=False)

    entries = []
    for path, headers, body in pool:
        hs = ", ".join(f"[{q(k)}] = {q(v)}" for k, v in headers.items())
        entries.append(f'wrk.format("POST", {q(path)}, {{{hs}}}, {q(body)})')
    return ("local reqs = {\n  " + ",\n  ".join(entries) + "\n}\nlocal i = 0\n"
            "request = function()\n  i = i % #reqs + 1\n  return reqs[i]\nend\n"
            "done = function(summary, latency, requests)\n"
            "  io.write(string.format('BENCH %d %d %.1f %.1f\\n', summary.requests, summary.errors.status,"
            " latency:percentile(50), latency:percentile(99)))\nend\n")


def wrk(url: str, lua: str | None, seconds: int, connections: int) -> dict[str, float]:
    args = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(lua or "done = function(summary, latency, requests)\n  io.write(string.format('BENCH %d %d %.1f %.1f\\n', summary.requests, summary.errors.status, latency:percentile(50), latency:percentile(99)))\nend\n")
    out = subprocess.run([*args, "-s", f.name, url], capture_output=True, text=True, check=True).stdout
    os.unlink(f.name)
    m = re.search(r"BENCH (\d+) (\d+) ([\d.]+) ([\d.]+)", out)
    assert m, out
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return {"rps": rps, "errors": int(m.group(2)), "p50_ms": float(m.group(3)) / 1000,
            "p99_ms": float(m.group(4)) / 1000, "requests": int(m.group(1))}


def start(cmd: list[str], env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, **(env or {})})
    assert proc.stdout is not None
    for line in proc.stdout:
        if '"listening"' in line:
            return proc, json.loads(line)["url"]
    raise RuntimeError("server did not start")


def rss_mb(pid: int) -> list[float]:
    """RSS of each worker (the children of the supervisor), in MB."""
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    out = []
    for child in children or [str(pid)]:
        status = Path(f"/proc/{child}/status").read_text()
        out.append(int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024)  # type: ignore[union-attr]
    return out


def stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()


def mixes(sample_keys: list[str]) -> dict[str, list[dict[str, object]]]:
    rng = random.Random(7)
    deep = [{"Type": t, "Limit": 10, "Offset": rng.randrange(0, 300_000)} for t in (0, 1, 2)]
    return {
        "Type": [{"Type": t, "Limit": 10} for t in (0, 1, 2)] + deep,
        "Type+State": [{"Type": t, "State": s, "Limit": 10} for t in (0, 1, 2) for s in (0, 1, 2)],
        "ResourceKey": [{"Type": rng.choice((0, 1, 2)), "Keyword": k} for k in sample_keys[:100]],
        "Keyword 3+ chars": [{"Type": t, "Keyword": k} for t in (0, 1, 2)
                             for k in ("验证码", "会员到期", "reminder", "Order", "123", "通知订单")],
        "Keyword 1-2 chars": [{"Type": t, "Keyword": k} for t in (0, 1, 2) for k in ("通知", "会", "v2", "9")],
    }


def bench_backend(backend: str, n: int, seconds: int, connections: int, work: Path) -> dict[str, object]:
    if backend == "sqlite":
        data_dir = work / "sqlite"
        data_dir.mkdir()
        url, db_name = database_url_for_dir(data_dir), None
    else:
        import psycopg

        db_name = f"vmsres_bench_{secrets.token_hex(4)}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{db_name}"')
        url = PG_ADMIN.rsplit("/", 1)[0] + "/" + db_name
        data_dir = work / "pg"
        data_dir.mkdir()
    try:
        migrate.upgrade(url)
        began = time.perf_counter()
        _, keys = load(url, n)
        load_s = time.perf_counter() - began
        proc, base = start([sys.executable, "-m", "vmsres", "serve", "--port", "0", "--workers", "2",
                            "--data-dir", str(data_dir), "--database-url", url, "--log-level", "warning"])
        try:
            host = base.split("://", 1)[1]
            results: dict[str, object] = {"load_seconds": round(load_s, 1)}
            for label, bodies in mixes(keys).items():
                results[label] = wrk(base, lua_for(signed_pool(host, bodies)), seconds, connections)
            all_bodies = [b for bodies in mixes(keys).values() for b in bodies]
            results["mix"] = wrk(base, lua_for(signed_pool(host, all_bodies)), seconds, connections)
            results["rss_mb"] = rss_mb(proc.pid)
        finally:
            stop(proc)
        return results
    finally:
        if db_name:
            import psycopg

            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


def ceiling(seconds: int, connections: int) -> dict[str, float]:
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--app-dir", str(ROOT / "scripts"), "bench_hello:app",
                             "--workers", "2", "--port", "18765", "--log-level", "warning", "--no-access-log"],
                            stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if subprocess.run(["curl", "-sf", "http://127.0.0.1:18765/"], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)  # polling for readiness of a third-party server, not test synchronization
        return wrk("http://127.0.0.1:18765/", None, seconds, connections)
    finally:
        proc.terminate()
        proc.wait(15)


def report(n: int, seconds: int, connections: int, hello: dict[str, float],
           results: dict[str, dict[str, object]]) -> str:
    mem = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1)) // 1024  # type: ignore[union-attr]
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), platform.processor())
    lines = [
        "## Latest run",
        "",
        f"Machine: {os.cpu_count()} cores ({cpu}), {mem} MB memory, {platform.platform()}. "
        f"Load generator (wrk, 2 threads, {connections} connections) runs on the same machine, so it "
        "competes with the server for the same cores.",
        "",
        f"Reproduce: `make bench N={n}` (this run: N={n} resources in one account, {seconds} s per row).",
        "",
        f"Ceiling (raw-ASGI hello JSON, uvicorn, 2 workers): **{hello['rps']:.0f} req/s**, "
        f"p50 {hello['p50_ms']:.2f} ms, p99 {hello['p99_ms']:.2f} ms.",
        "",
    ]
    for backend, res in results.items():
        lines += [f"## {backend} (N={n}, 2 workers; bulk load {res['load_seconds']} s)", "",
                  "| Filter mix | req/s | ratio to ceiling | p50 ms | p99 ms | non-2xx |", "|---|---|---|---|---|---|"]
        for label, r in res.items():
            if isinstance(r, dict):
                lines.append(f"| {label} | {r['rps']:.0f} | {r['rps'] / hello['rps']:.2f} | {r['p50_ms']:.2f} | "
                             f"{r['p99_ms']:.2f} | {r['errors']} |")
        lines += ["", f"Worker RSS after the run: {', '.join(f'{x:.0f} MB' for x in res['rss_mb'])}.", ""]  # type: ignore[union-attr]
    return "\n".join(lines)


BEGIN, END = "<!-- BEGIN BENCH RESULTS -->", "<!-- END BENCH RESULTS -->"


def write_report(path: Path, numbers: str) -> None:
    """Replace only the generated block, keeping the hand-written analysis around it."""
    text = path.read_text() if path.exists() else ""
    block = f"{BEGIN}\n{numbers}\n{END}"
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + block + text[text.index(END) + len(END) :]
    else:
        text = block + "\n" + text
    path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: run scripts/install-debian-deps.sh")
    work = Path(tempfile.mkdtemp(prefix="vmsres-bench-"))
    try:
        hello = ceiling(args.seconds, args.connections)
        print("ceiling", hello, flush=True)
        results = {}
        for backend in args.backends.split(","):
            results[backend] = bench_backend(backend, args.n, args.seconds, args.connections, work)
            print(backend, json.dumps(results[backend], ensure_ascii=False), flush=True)
        write_report(Path(args.out), report(args.n, args.seconds, args.connections, hello, results))
        print(f"wrote {args.out}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
