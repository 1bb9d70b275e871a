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
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

from vmsres.protocol.records import ResourceState, ResourceType, wire_values
from vmsres.protocol.signing import parse_query, sign_request
from vmsres.server.masterkey import generate_key_text
from vmsres.server.service.services import open_services
from vmsres.server.settings import MASTER_KEY_ENV, Settings, database_url_for_dir
from vmsres.server.store import migrate
from vmsres.server.store.database import sqlite_path
from vmsres.server.store.resources import BLOCK_SHIFTS

ROOT = Path(__file__).resolve().parent.parent
AK, SK = "AKLTbench", "benchsecret"
PG_ADMIN = os.environ.get("VMSRES_BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
# A vocabulary the size of a real tenant's naming habits, so a keyword matches a realistic
# share of the account (a word ~1%, a pair of words far less, a digit or a common character
# much more), not the 10-30% a dozen words gave.
ZH = [
    "会员",
    "到期",
    "通知",
    "订单",
    "物流",
    "提醒",
    "催缴",
    "验证码",
    "活动",
    "回访",
    "满意度",
    "调查",
    "快递",
    "签收",
    "派送",
    "取件",
    "退款",
    "退货",
    "换货",
    "售后",
    "客服",
    "投诉",
    "建议",
    "预约",
    "挂号",
    "就诊",
    "复诊",
    "体检",
    "报告",
    "缴费",
    "账单",
    "欠费",
    "停机",
    "续费",
    "充值",
    "余额",
    "积分",
    "兑换",
    "优惠券",
    "促销",
    "秒杀",
    "新品",
    "上市",
    "生日",
    "祝福",
    "节日",
    "春节",
    "中秋",
    "国庆",
    "元旦",
    "端午",
    "开业",
    "周年",
    "庆典",
    "抽奖",
    "中奖",
    "领取",
    "登录",
    "注册",
    "密码",
    "重置",
    "安全",
    "异常",
    "风险",
    "告警",
    "故障",
    "恢复",
    "维护",
    "升级",
    "停电",
    "停水",
    "燃气",
    "物业",
    "保修",
    "保险",
    "理赔",
    "贷款",
    "还款",
    "逾期",
    "信用卡",
    "额度",
    "审批",
    "放款",
    "面试",
    "录用",
    "入职",
    "离职",
    "考勤",
    "工资",
    "报销",
    "会议",
    "培训",
    "课程",
    "考试",
    "成绩",
    "录取",
    "开学",
    "放假",
    "家长",
    "学生",
    "老师",
    "航班",
    "延误",
    "改签",
    "值机",
    "酒店",
    "入住",
    "退房",
    "门票",
    "演出",
    "电影",
    "外卖",
    "骑手",
    "送达",
    "超时",
    "评价",
    "商家",
    "店铺",
    "仓库",
    "库存",
    "补货",
    "发货",
    "揽收",
    "清关",
    "海关",
    "税费",
    "发票",
    "合同",
    "续约",
    "欢迎",
    "致电",
    "来电",
    "未接",
    "回拨",
    "语音",
    "留言",
    "人工",
    "转接",
    "排队",
    "等待",
    "营业",
    "网点",
    "银行",
    "证券",
    "基金",
    "理财",
    "收益",
    "北京",
    "上海",
    "广州",
    "深圳",
    "杭州",
    "成都",
    "武汉",
    "南京",
    "西安",
    "重庆",
    "华东",
    "华南",
    "华北",
    "总部",
    "分公司",
    "一号",
    "二号",
    "三号",
]
EN = [
    "order",
    "notice",
    "reminder",
    "promo",
    "survey",
    "billing",
    "welcome",
    "alert",
    "final",
    "draft",
    "shipping",
    "delivery",
    "refund",
    "payment",
    "invoice",
    "account",
    "verify",
    "code",
    "login",
    "password",
    "reset",
    "security",
    "update",
    "upgrade",
    "maintenance",
    "outage",
    "service",
    "support",
    "callback",
    "voicemail",
    "greeting",
    "holiday",
    "birthday",
    "campaign",
    "coupon",
    "sale",
    "flash",
    "member",
    "vip",
    "renewal",
    "expiry",
    "overdue",
    "loan",
    "credit",
    "card",
    "bank",
    "insurance",
    "claim",
    "appointment",
    "clinic",
    "doctor",
    "exam",
    "school",
    "parent",
    "flight",
    "hotel",
    "ticket",
    "movie",
    "food",
    "courier",
    "pickup",
    "return",
    "exchange",
    "review",
    "feedback",
    "rating",
    "store",
    "warehouse",
    "stock",
    "urgent",
    "daily",
    "weekly",
    "monthly",
    "night",
    "morning",
    "english",
    "chinese",
    "male",
    "female",
    "fast",
    "slow",
    "test",
    "prod",
    "demo",
    "beta",
    "v1",
    "v2",
    "v3",
    "new",
    "old",
    "cn",
    "us",
    "eu",
    "hk",
    "sg",
]


def name_for(i: int, rng: random.Random) -> str:
    parts = rng.sample(ZH, rng.choice((1, 2, 2, 3)))
    if rng.random() < 0.6:
        parts.insert(
            rng.randrange(len(parts) + 1),
            rng.choice(EN).capitalize() if rng.random() < 0.3 else rng.choice(EN),
        )
    tail = rng.random()
    if tail < 0.3:
        parts.append(f"{2020 + rng.randrange(6)}-{1 + rng.randrange(12):02d}-{1 + rng.randrange(28):02d}")
    elif tail < 0.5:
        parts.append(f"第{1 + rng.randrange(200)}期")
    elif tail < 0.8:
        parts.append(str(i))
    return ("" if rng.random() < 0.5 else " ").join(parts)


TYPES = wire_values(ResourceType)
STATES = wire_values(ResourceState)
# Mostly approved, as a store in use is.
STATE_MIX = wire_values((ResourceState.REVIEWING, *[ResourceState.APPROVED] * 3, ResourceState.REJECTED))


def rows(n: int, account_id: int) -> list[tuple[object, ...]]:
    rng = random.Random(42)
    base = int(time.time()) - n
    out = []
    for i in range(n):
        name = name_for(i, rng)
        type_ = rng.choice(TYPES)
        out.append(
            (
                secrets.token_hex(16),
                account_id,
                type_,
                rng.choice(STATE_MIX),
                name,
                name.casefold(),
                ".mp3" if type_ != 1 else "",
                12,
                "",
                base + i,
                base + i,
            )
        )
    return out


COLUMNS = (
    "resource_key, account_id, type, state, name, name_folded, suffix, duration, remark, "
    "created_at, updated_at"
)


async def make_account(url: str, data_dir: Path) -> int:
    services = open_services(Settings(data_dir=str(data_dir), database_url=url))
    try:
        await services.accounts.ensure_key("bench", AK, SK)
        account = await services.accounts.store.account_by_name("bench")
        assert account is not None
        return int(account["id"])
    finally:
        await services.close()


def load(url: str, n: int, data_dir: Path) -> tuple[int, list[str]]:
    account_id = asyncio.run(make_account(url, data_dir))
    data = rows(n, account_id)
    if url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(sqlite_path(url))
        # The gram and trigram trees take inserts all over their key space; a cache that holds
        # them keeps the load from re-reading pages through the OS on every row.
        conn.execute("PRAGMA cache_size = -2000000")
        with conn:
            conn.executemany(f"INSERT INTO resources ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)", data)
        conn.execute("ANALYZE")
        conn.close()
    else:
        import psycopg

        with psycopg.connect(url) as conn, conn.cursor() as cur:
            # Row triggers make COPY ~50x slower (a plpgsql call and ~25 gram inserts per row),
            # so the bulk load runs with triggers off (superuser session setting) and then
            # writes what they would have written, set-based and in key order. Service writes
            # always go through the triggers; their cost is measured separately (docs).
            cur.execute("SET session_replication_role = replica")
            with cur.copy(f"COPY resources ({COLUMNS}) FROM STDIN") as copy:
                for row in data:
                    copy.write_row(row)
            cur.execute("SET session_replication_role = DEFAULT")
            cur.execute("SET work_mem = '512MB'")
            cur.execute("DELETE FROM resource_counts WHERE account_id = %s", (account_id,))
            cur.execute(
                "INSERT INTO resource_counts (account_id, type, state, n) SELECT account_id, type, state, "
                "count(*) FROM resources WHERE account_id = %s GROUP BY account_id, type, state",
                (account_id,),
            )
            cur.execute(
                "INSERT INTO resource_grams (account_id, type, gram, created_at, id, state) "
                "SELECT r.account_id, r.type, g, r.created_at, r.id, r.state "
                "FROM resources r, unnest(vmsres_grams(r.name_folded)) AS g WHERE r.account_id = %s "
                "ORDER BY 1, 2, 3, 4, 5",
                (account_id,),
            )
            for level, shift in enumerate(BLOCK_SHIFTS):
                cur.execute(
                    "INSERT INTO resource_blocks (account_id, type, level, block, state, n) "
                    f"SELECT account_id, type, {level}, created_at >> {shift}, state, count(*) "
                    "FROM resources WHERE account_id = %s GROUP BY 1, 2, 4, 5 "
                    "ON CONFLICT (account_id, type, level, block, state) "
                    "DO UPDATE SET n = resource_blocks.n + excluded.n",
                    (account_id,),
                )
            cur.execute(
                "INSERT INTO resource_generations (account_id, gen, lease_gen) VALUES (%s, 1, 1) "
                "ON CONFLICT (account_id) DO UPDATE SET gen = resource_generations.gen + 1",
                (account_id,),
            )
            conn.commit()
            conn.autocommit = True
            cur.execute("VACUUM ANALYZE resources")
            cur.execute("VACUUM ANALYZE resource_grams")
            cur.execute("VACUUM ANALYZE resource_blocks")
            # The load leaves gigabytes of dirty buffers; without a checkpoint here the first
            # minutes of queries share the disk with the checkpointer writing them out (p99
            # spikes of ~1 s in a 10 s row), which measures the load's tail, not the queries.
            cur.execute("CHECKPOINT")
    return account_id, [r[0] for r in data[:: max(1, n // 200)]]  # type: ignore[misc]


def signed_pool(host: str, bodies: list[dict[str, object]]) -> list[tuple[str, dict[str, str], bytes]]:
    query = urlencode({"Action": "QueryOpenGetResource", "Version": "2022-01-01"})
    pool = []
    for body in bodies:
        raw = json.dumps(body, ensure_ascii=False).encode()
        headers = sign_request(
            method="POST",
            host=host,
            path="/",
            query_pairs=parse_query(query),
            body=raw,
            content_type="application/json",
            access_key=AK,
            secret_key=SK,
            region="cn-north-1",
            service="vms",
        )
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
    return (
        "local reqs = {\n  " + ",\n  ".join(entries) + "\n}\nlocal i = 0\n"
        "request = function()\n  i = i % #reqs + 1\n  return reqs[i]\nend\n"
        "done = function(summary, latency, requests)\n"
        "  io.write(string.format('BENCH %d %d %.1f %.1f\\n', summary.requests, summary.errors.status,"
        " latency:percentile(50), latency:percentile(99)))\nend\n"
    )


def wrk(url: str, lua: str | None, seconds: int, connections: int) -> dict[str, float]:
    args = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(
            lua
            or "done = function(summary, latency, requests)\n  io.write(string.format('BENCH %d %d %.1f %.1f\\n', summary.requests, summary.errors.status, latency:percentile(50), latency:percentile(99)))\nend\n"
        )
    out = subprocess.run([*args, "-s", f.name, url], capture_output=True, text=True, check=True).stdout
    os.unlink(f.name)
    m = re.search(r"BENCH (\d+) (\d+) ([\d.]+) ([\d.]+)", out)
    assert m, out
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return {
        "rps": rps,
        "errors": int(m.group(2)),
        "p50_ms": float(m.group(3)) / 1000,
        "p99_ms": float(m.group(4)) / 1000,
        "requests": int(m.group(1)),
    }


def start(cmd: list[str], env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env={**os.environ, **(env or {})}
    )
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


# The access log stays on, as in production (one JSON line per request, to a discarded stderr).
LOG_LEVEL = "info"
WARMUP_SECONDS = 3


def mixes(sample_keys: list[str]) -> dict[str, list[dict[str, object]]]:
    rng = random.Random(7)
    deep = [{"Type": t, "Limit": 10, "Offset": rng.randrange(0, 300_000)} for t in TYPES]
    return {
        "Type": [{"Type": t, "Limit": 10} for t in TYPES] + deep,
        "Type+State": [{"Type": t, "State": s, "Limit": 10} for t in TYPES for s in STATES],
        "ResourceKey": [{"Type": rng.choice(TYPES), "Keyword": k} for k in sample_keys[:100]],
        "Keyword 3+ chars": [
            {"Type": t, "Keyword": k}
            for t in TYPES
            for k in ("验证码", "会员到期", "reminder", "Order", "2024-05", "第12期")
        ],
        "Keyword 1-2 chars": [
            {"Type": t, "Keyword": k} for t in TYPES for k in ("通知", "会", "v2", "退款", "9")
        ],
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
        _, keys = load(url, n, data_dir)
        load_s = time.perf_counter() - began
        results: dict[str, object] = {"load_seconds": round(load_s, 1)}
        serve = [
            sys.executable,
            "-m",
            "vmsres",
            "serve",
            "--port",
            "0",
            "--workers",
            "2",
            "--data-dir",
            str(data_dir),
            "--database-url",
            url,
            "--log-level",
            LOG_LEVEL,
        ]
        proc, base = start(serve)
        try:
            host = base.split("://", 1)[1]
            all_bodies = [b for bodies in mixes(keys).values() for b in bodies]
            # Steady state: every request of every pool once per worker first (statement caches,
            # keyword match lists, the OS page cache); the cold cost is measured below.
            wrk(base, lua_for(signed_pool(host, all_bodies)), WARMUP_SECONDS, connections)
            for label, bodies in mixes(keys).items():
                results[label] = wrk(base, lua_for(signed_pool(host, bodies)), seconds, connections)
            results["mix"] = wrk(base, lua_for(signed_pool(host, all_bodies)), seconds, connections)
            results["rss_mb"] = rss_mb(proc.pid)
        finally:
            stop(proc)
        # Every request as if the account had just been written to: no match lists, no kept
        # answers; each one runs its queries.
        proc, base = start([*serve, "--search-cache-mb", "0"])
        try:
            host = base.split("://", 1)[1]
            wrk(base, lua_for(signed_pool(host, all_bodies)), WARMUP_SECONDS, connections)
            for label, bodies in mixes(keys).items():
                pool = signed_pool(host, bodies)
                results[f"{label}, no cache"] = wrk(base, lua_for(pool), seconds, connections)
        finally:
            stop(proc)
        return results
    finally:
        if db_name:
            import psycopg

            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


def ceiling(seconds: int, connections: int) -> dict[str, float]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--app-dir",
            str(ROOT / "scripts"),
            "bench_hello:app",
            "--workers",
            "2",
            "--port",
            "18765",
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            if (
                subprocess.run(["curl", "-sf", "http://127.0.0.1:18765/"], capture_output=True).returncode
                == 0
            ):
                break
            time.sleep(0.1)  # polling for readiness of a third-party server, not test synchronization
        return wrk("http://127.0.0.1:18765/", None, seconds, connections)
    finally:
        proc.terminate()
        proc.wait(15)


def report(
    n: int, seconds: int, connections: int, hello: dict[str, float], results: dict[str, dict[str, object]]
) -> str:
    mem = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1)) // 1024  # type: ignore[union-attr]
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
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
        lines += [
            f"## {backend} (N={n}, 2 workers; bulk load {res['load_seconds']} s)",
            "",
            "| Filter mix | req/s | ratio to ceiling | p50 ms | p99 ms | non-2xx |",
            "|---|---|---|---|---|---|",
        ]
        for label, r in res.items():
            if isinstance(r, dict):
                lines.append(
                    f"| {label} | {r['rps']:.0f} | {r['rps'] / hello['rps']:.2f} | {r['p50_ms']:.2f} | "
                    f"{r['p99_ms']:.2f} | {r['errors']} |"
                )
        lines += ["", f"Worker RSS after the run: {', '.join(f'{x:.0f} MB' for x in res['rss_mb'])}.", ""]  # type: ignore[union-attr]
    return "\n".join(lines)


BEGIN, END = "<!-- BEGIN BENCH RESULTS -->", "<!-- END BENCH RESULTS -->"
TOOLKIT_BEGIN, TOOLKIT_END = "<!-- BEGIN TOOLKIT RESULTS -->", "<!-- END TOOLKIT RESULTS -->"


def write_report(path: Path, numbers: str, begin: str = BEGIN, end: str = END) -> None:
    """Replace only the generated block, keeping the hand-written analysis around it."""
    text = path.read_text() if path.exists() else ""
    block = f"{begin}\n{numbers}\n{end}"
    if begin in text and end in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)


def _ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    return (
        f"{statistics.median(ordered) * 1000:.1f} (min {ordered[0] * 1000:.1f}, max {ordered[-1] * 1000:.1f})"
    )


def toolkit(rounds: int) -> str:
    """vmsres.testing against moto's ThreadedMotoServer, alternating in one process so both see
    the same load: start to first answer, and the per-test isolation step of each (a fresh
    vmsres account; moto's POST /moto-api/reset)."""
    import logging

    import httpx

    imported = time.perf_counter()
    from moto.server import ThreadedMotoServer

    moto_import = time.perf_counter() - imported
    from vmsres.testing import VmsServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    # Imports before any timing, for both (vmsres's are lazy: the first start would pay them).
    imported = time.perf_counter()
    import vmsres.server.serve  # noqa: F401

    vmsres_import = time.perf_counter() - imported
    # One client for every request: a new httpx client loads the CA store (~50 ms) each time.
    http = httpx.Client()

    def vmsres_start() -> tuple[float, VmsServer]:
        began = time.perf_counter()
        server = VmsServer().start()
        http.get(f"{server.endpoint}/healthz").raise_for_status()
        return time.perf_counter() - began, server

    def moto_start() -> tuple[float, ThreadedMotoServer, str]:
        began = time.perf_counter()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        http.get(f"{url}/moto-api/data.json").raise_for_status()
        return time.perf_counter() - began, server, url

    # The first of each in the process still loads a few parts lazily (and vmsres makes its
    # schema image); moto's first runs second, so shared imports (httpx's) favour it.
    first_vmsres, server = vmsres_start()
    server.stop()
    first_moto, moto, _ = moto_start()
    moto.stop()
    vmsres_starts: list[float] = []
    moto_starts: list[float] = []
    for _ in range(rounds):
        took, server = vmsres_start()
        vmsres_starts.append(took)
        server.stop()
        took, moto, _ = moto_start()
        moto_starts.append(took)
        moto.stop()

    server = VmsServer().start()
    _, moto, moto_url = moto_start()
    new_account: list[float] = []
    moto_reset: list[float] = []
    vmsres_reset: list[float] = []
    try:
        for _ in range(rounds * 10):
            began = time.perf_counter()
            server.new_account()
            new_account.append(time.perf_counter() - began)
            began = time.perf_counter()
            http.post(f"{moto_url}/moto-api/reset").raise_for_status()
            moto_reset.append(time.perf_counter() - began)
        with VmsServer() as small:
            for _ in range(rounds):
                small.new_account()
                began = time.perf_counter()
                small.reset()
                vmsres_reset.append(time.perf_counter() - began)
    finally:
        server.stop()
        moto.stop()
        http.close()
    return "\n".join(
        [
            "## vmsres.testing beside moto (docs/testing.md)",
            "",
            f"Both in one process, alternating, {rounds} starts each (loopback, this machine; times in ms).",
            "",
            "| What | vmsres | moto |",
            "|---|---|---|",
            f"| Import of the server (once per process, not in the rows below) | {vmsres_import * 1000:.0f} | "
            f"{moto_import * 1000:.0f} |",
            f"| Server start to first answer, first in the process | {first_vmsres * 1000:.1f} | {first_moto * 1000:.1f} |",
            f"| Server start to first answer, median | {_ms(vmsres_starts)} | {_ms(moto_starts)} |",
            f"| Per-test isolation: `new_account()` (`vms_account`) / `POST /moto-api/reset` | "
            f"{_ms(new_account)} | {_ms(moto_reset)} |",
            f"| `reset()` of every library, 1 to {rounds} empty accounts | {_ms(vmsres_reset)} | |",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    parser.add_argument("--toolkit-rounds", type=int, default=20)
    parser.add_argument("--toolkit-only", action="store_true", help="only the vmsres.testing rows")
    args = parser.parse_args()
    toolkit_numbers = toolkit(args.toolkit_rounds)
    print(toolkit_numbers, flush=True)
    write_report(Path(args.out), toolkit_numbers, TOOLKIT_BEGIN, TOOLKIT_END)
    if args.toolkit_only:
        return
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: run scripts/install-debian-deps.sh")
    work = Path(tempfile.mkdtemp(prefix="vmsres-bench-"))
    # One master key for the whole run: PostgreSQL stores need it from the environment (there is
    # no data dir to keep a key file in), and the servers started below inherit it.
    os.environ.setdefault(MASTER_KEY_ENV, generate_key_text())
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
