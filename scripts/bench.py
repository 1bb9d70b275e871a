"""`make bench`: throughput and latency of the read path, a write mix and writes, on SQLite and PostgreSQL.

Builds a store of N resources in one account among --store-total resources in --accounts
accounts (bulk-loaded straight into the table with the insert triggers off, then a set-based
rebuild of what they keep: counts, blocks, grams, the trigram index; checked against COUNT(*)
before any row), starts the real server with 2 workers, and drives it with wrk. Each request
must carry a valid signature, so a pool of requests is signed up front (valid 15 minutes) and
written into the wrk Lua script, which cycles through them. Upload+commit, a flow of three
requests where an answer feeds the next, is driven by a threaded Python driver instead. The
same wrk run against a raw-ASGI hello app under uvicorn with the same worker count gives the
ceiling; moto's S3 PutObject, driven the same way, the baseline for writes. Results go to
docs/benchmarks.md (docs/benchmarks.md says how to run chosen rows quickly).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fnmatch
import itertools
import json
import os
import platform
import random
import re
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import httpx

if TYPE_CHECKING:
    import psycopg

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
# The write mix's account: small, as a tenant that writes all day often is.
MIX_RESOURCES = 20_000
TTS_TEXT = "您好，#name#，您的订单#order#已发货，预计#day#送达。"


@dataclass
class Account:
    name: str
    access_key: str
    n: int
    seed: int
    id: int = 0
    sample_keys: list[str] = field(default_factory=list)


def plan(n: int, store_total: int, accounts: int) -> list[Account]:
    """The big account, the write mix's account, two empty accounts for the write rows, and
    fillers: `accounts` accounts hold `store_total` resources in all (the big and the mix one
    among them)."""
    out = [
        Account("bench", AK, n, 42),
        Account("benchmix", "AKLTbenchmix", MIX_RESOURCES, 43),
        Account("benchcreate", "AKLTbenchcreate", 0, 0),
        Account("benchupload", "AKLTbenchupload", 0, 0),
    ]
    fillers, rest = accounts - 2, store_total - n - MIX_RESOURCES
    if fillers > 0 and rest > 0:
        each, extra = divmod(rest, fillers)
        out += [
            Account(f"filler{i:04d}", f"AKLTfill{i:04d}", each + (i < extra), 1000 + i)
            for i in range(fillers)
        ]
    return out


def rows(account: Account, span: int) -> Iterator[tuple[object, ...]]:
    """The account's resources, oldest first, spread over the same `span` seconds as the big one."""
    rng, keys = random.Random(account.seed), random.Random(account.seed + 1_000_000)
    base = int(time.time()) - span
    step = max(1, span // max(1, account.n))
    every = max(1, account.n // 200)
    for i in range(account.n):
        name = name_for(i, rng)
        type_ = rng.choice(TYPES)
        key = f"{keys.getrandbits(128):032x}"
        if i % every == 0:
            account.sample_keys.append(key)
        at = base + i * step
        yield (
            key,
            account.id,
            type_,
            rng.choice(STATE_MIX),
            name,
            name.casefold(),
            ".mp3" if type_ != 1 else "",
            12,
            "",
            at,
            at,
        )


COLUMNS = (
    "resource_key, account_id, type, state, name, name_folded, suffix, duration, remark, "
    "created_at, updated_at"
)


async def make_accounts(url: str, data_dir: Path, accounts: list[Account]) -> None:
    services = open_services(Settings(data_dir=str(data_dir), database_url=url))
    try:
        for account in accounts:
            await services.accounts.ensure_key(account.name, account.access_key, SK)
            row = await services.accounts.store.account_by_name(account.name)
            assert row is not None
            account.id = int(row["id"])
    finally:
        await services.close()


def batches(accounts: list[Account], span: int, size: int = 100_000) -> Iterator[list[tuple[object, ...]]]:
    batch: list[tuple[object, ...]] = []
    for account in accounts:
        for row in rows(account, span):
            batch.append(row)
            if len(batch) == size:
                yield batch
                batch = []
    if batch:
        yield batch


# The triggers that fire on INSERT into resources, and what the set-based rebuild after a
# load with them off writes in their place. A trigger not named here (a new index kept by
# triggers) stops the load: the rebuild below must learn to write it first.
SQLITE_INSERT_TRIGGERS = {
    "resources_count_ins",
    "resources_fts_ins",
    "resources_grams_ins",
    "resources_blocks_ins",
}
POSTGRES_INSERT_TRIGGERS = {"resources_count", "resources_grams", "resources_positions"}


def _blocks_rebuild() -> list[str]:
    return [
        "INSERT INTO resource_blocks (account_id, type, level, block, state, n) "
        f"SELECT account_id, type, {level}, created_at >> {shift}, state, count(*) "
        "FROM resources GROUP BY 1, 2, 4, 5"
        for level, shift in enumerate(BLOCK_SHIFTS)
    ]


COUNTS_REBUILD = (
    "INSERT INTO resource_counts (account_id, type, state, n) "
    "SELECT account_id, type, state, count(*) FROM resources GROUP BY 1, 2, 3"
)
GENERATIONS_REBUILD = (
    "INSERT INTO resource_generations (account_id, gen, lease_gen) "
    "SELECT DISTINCT account_id, 1, 1 FROM resources WHERE true "
    "ON CONFLICT (account_id) DO UPDATE SET gen = resource_generations.gen + 1"
)


def _drop_indexes(cur: psycopg.Cursor[Any], table: str, constraints: bool) -> list[str]:
    """Drop the table's indexes (and, with `constraints`, its primary key and unique
    constraints); returns the statements that make them again, sorted in one pass each."""
    again = []
    if constraints:
        for name, definition in cur.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype IN ('p', 'u')",
            (table,),
        ).fetchall():
            cur.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
            again.append(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
    for name, definition in cur.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s AND indexname NOT IN "
        "(SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass)",
        (table, table),
    ).fetchall():
        cur.execute(f'DROP INDEX "{name}"')
        again.append(definition)
    return again


def _unknown_triggers(found: set[str], known: set[str]) -> None:
    if found - known:
        sys.exit(
            f"bench: resources has insert triggers the bulk load does not rebuild: {sorted(found - known)}; "
            "teach load_sqlite/load_postgresql in scripts/bench.py what they write"
        )


def load_sqlite(url: str, accounts: list[Account], span: int, phase: Phases) -> None:
    import sqlite3

    conn = sqlite3.connect(sqlite_path(url), isolation_level=None)
    # The rebuild sorts tens of millions of gram rows; a big page cache keeps it off the disk.
    conn.execute("PRAGMA cache_size = -2000000")
    conn.execute("PRAGMA synchronous = OFF")
    triggers = [
        (name, sql)
        for name, sql in conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'resources'"
        )
        if re.search(r"\bINSERT\b[^;]*?\bON\s+resources\b", sql.split("BEGIN", 1)[0], re.IGNORECASE)
    ]
    _unknown_triggers({name for name, _ in triggers}, SQLITE_INSERT_TRIGGERS)
    # One transaction: the store is never seen without its triggers or with half an index.
    conn.execute("BEGIN")
    for name, _ in triggers:
        conn.execute(f'DROP TRIGGER "{name}"')
    # Secondary indexes are built once, sorted, after the rows: cheaper than keeping them
    # through millions of inserts in random key order.
    indexes = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'resources' AND sql IS NOT NULL"
    ).fetchall()
    for name, _ in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    with phase("sqlite load: rows"):
        for batch in batches(accounts, span):
            conn.executemany(f"INSERT INTO resources ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)", batch)
    with phase("sqlite load: indexes"):
        for _, sql in indexes:
            conn.execute(sql)
    for name, statements in (
        ("counts", ["DELETE FROM resource_counts", COUNTS_REBUILD]),
        ("blocks", ["DELETE FROM resource_blocks", *_blocks_rebuild()]),
        (
            "grams",
            [
                "DELETE FROM resource_grams",
                # Sorted in key order, the WITHOUT ROWID tree is appended to, not split all over.
                "INSERT OR IGNORE INTO resource_grams (account_id, type, gram, created_at, id, state) "
                "SELECT r.account_id, r.type, substr(r.name_folded, p.n, k.k), r.created_at, r.id, r.state "
                "FROM resources r JOIN resource_gram_positions p ON p.n <= length(r.name_folded) "
                "JOIN (SELECT 1 AS k UNION ALL SELECT 2) k ON p.n + k.k - 1 <= length(r.name_folded) "
                "ORDER BY 1, 2, 3, 4, 5",
            ],
        ),
        ("trigram index", ["INSERT INTO resources_fts (resources_fts) VALUES ('rebuild')"]),
        ("generations", [GENERATIONS_REBUILD]),
    ):
        with phase(f"sqlite load: {name}"):
            for statement in statements:
                conn.execute(statement)
    for _, sql in triggers:
        conn.execute(sql)
    with phase("sqlite load: commit"):
        conn.execute("COMMIT")
    with phase("sqlite load: analyze"):
        conn.execute("ANALYZE")
    conn.close()


def load_postgresql(url: str, accounts: list[Account], span: int, phase: Phases) -> None:
    import psycopg

    with psycopg.connect(url) as conn, conn.cursor() as cur:
        found = {
            name
            for (name,) in cur.execute(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = 'resources'::regclass AND NOT tgisinternal "
                "AND tgtype & 4 <> 0"
            )
        }
        _unknown_triggers(found, POSTGRES_INSERT_TRIGGERS)
        # Row triggers make COPY ~50x slower (a plpgsql call and ~25 gram inserts per row),
        # so the bulk load runs with triggers off (superuser session setting) and then
        # writes what they would have written, set-based and in key order. Service writes
        # always go through the triggers; the write rows measure them.
        cur.execute("SET maintenance_work_mem = '1GB'")
        resource_indexes = _drop_indexes(cur, "resources", constraints=False)
        gram_indexes = _drop_indexes(cur, "resource_grams", constraints=True)
        cur.execute("SET session_replication_role = replica")
        with phase("postgresql load: rows"), cur.copy(f"COPY resources ({COLUMNS}) FROM STDIN") as copy:
            for batch in batches(accounts, span):
                for row in batch:
                    copy.write_row(row)
        cur.execute("SET session_replication_role = DEFAULT")
        cur.execute("SET work_mem = '512MB'")
        with phase("postgresql load: indexes"):
            for statement in resource_indexes:
                cur.execute(statement)
        for name, statements in (
            ("counts", ["DELETE FROM resource_counts", COUNTS_REBUILD]),
            ("blocks", ["DELETE FROM resource_blocks", *_blocks_rebuild()]),
            (
                "grams",
                [
                    "DELETE FROM resource_grams",
                    # vmsres_grams() inlined: a SQL function with an aggregate is not inlined by
                    # the planner, and calling it per row costs more than the rest together. A
                    # gram is kept where it first occurs in the name, which makes them distinct
                    # without a sort per row.
                    "INSERT INTO resource_grams (account_id, type, gram, created_at, id, state) "
                    "SELECT r.account_id, r.type, substr(r.name_folded, i, k), r.created_at, r.id, r.state "
                    "FROM resources r, generate_series(1, length(r.name_folded)) AS i, (VALUES (1), (2)) AS v(k) "
                    "WHERE i + k - 1 <= length(r.name_folded) "
                    "AND strpos(r.name_folded, substr(r.name_folded, i, k)) = i",
                ],
            ),
            ("grams key", gram_indexes),
            ("generations", [GENERATIONS_REBUILD]),
        ):
            with phase(f"postgresql load: {name}"):
                for statement in statements:
                    cur.execute(statement)
        with phase("postgresql load: commit"):
            conn.commit()
        conn.autocommit = True
        with phase("postgresql load: vacuum analyze"):
            for table in ("resources", "resource_grams", "resource_blocks"):
                cur.execute(f"VACUUM ANALYZE {table}")
        # The load leaves gigabytes of dirty buffers; without a checkpoint here the first
        # minutes of queries share the disk with the checkpointer writing them out (p99
        # spikes of ~1 s in a 10 s row), which measures the load's tail, not the queries.
        with phase("postgresql load: checkpoint"):
            cur.execute("CHECKPOINT")


Signed = tuple[str, dict[str, str], bytes]


def signed(host: str, action: str, body: dict[str, object], access_key: str = AK) -> Signed:
    query = urlencode({"Action": action, "Version": "2022-01-01"})
    raw = json.dumps(body, ensure_ascii=False).encode()
    headers = sign_request(
        method="POST",
        host=host,
        path="/",
        query_pairs=parse_query(query),
        body=raw,
        content_type="application/json",
        access_key=access_key,
        secret_key=SK,
        region="cn-north-1",
        service="vms",
    )
    return f"/?{query}", headers, raw


def signed_pool(host: str, bodies: list[dict[str, object]], access_key: str = AK) -> list[Signed]:
    return [signed(host, "QueryOpenGetResource", body, access_key) for body in bodies]


REPORT_LUA = (
    "done = function(summary, latency, requests)\n"
    "  io.write(string.format('BENCH %d %d %.1f %.1f\\n', summary.requests, summary.errors.status,"
    " latency:percentile(50), latency:percentile(99)))\nend\n"
)


def lua_for(pool: list[Signed]) -> str:
    def q(s: str | bytes) -> str:
        text = s.decode() if isinstance(s, bytes) else s
        return json.dumps(text, ensure_ascii=False)

    entries = []
    for path, headers, body in pool:
        hs = ", ".join(f"[{q(k)}] = {q(v)}" for k, v in headers.items())
        entries.append(f'wrk.format("POST", {q(path)}, {{{hs}}}, {q(body)})')
    return (
        "local reqs = {\n  " + ",\n  ".join(entries) + "\n}\nlocal i = 0\n"
        "request = function()\n  i = i % #reqs + 1\n  return reqs[i]\nend\n" + REPORT_LUA
    )


def wrk(url: str, lua: str | None, seconds: int, connections: int) -> dict[str, float]:
    args = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(lua or REPORT_LUA)
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


def drive(operation: Callable[[httpx.Client, str], bool], threads: int, seconds: float) -> dict[str, float]:
    """A Python load driver: `threads` threads, each with its own connection, run `operation`
    back to back for `seconds` (for flows wrk cannot express: an answer feeds the next request)."""
    latencies: list[float] = []
    failures = [0]
    names = itertools.count()
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def worker(t: int) -> None:
        mine: list[float] = []
        bad = 0
        with httpx.Client(timeout=60) as client:
            while (began := time.perf_counter()) < deadline:
                ok = operation(client, f"b{t}-{next(names)}")
                mine.append(time.perf_counter() - began)
                bad += not ok
        with lock:
            latencies.extend(mine)
            failures[0] += bad

    began = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    took = time.perf_counter() - began
    ordered = sorted(latencies) or [0.0]
    return {
        "rps": len(latencies) / took,
        "errors": failures[0],
        "p50_ms": ordered[len(ordered) // 2] * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        "requests": len(latencies),
    }


def answered(response: httpx.Response) -> bool:
    if response.status_code != 200:
        return False
    meta = response.json().get("ResponseMetadata", {})
    return "Error" not in meta


def upload_commit(base: str, host: str, mp3: bytes) -> Callable[[httpx.Client, str], bool]:
    """GetResourceUploadUrl, PUT of the bytes, CommitResourceUpload: one new audio resource."""

    def operation(client: httpx.Client, unique: str) -> bool:
        file_name = f"{unique}.mp3"
        path, headers, body = signed(host, "GetResourceUploadUrl", {"FileName": file_name}, "AKLTbenchupload")
        r = client.post(base + path, headers=headers, content=body)
        if not answered(r):
            return False
        if client.put(r.json()["Result"]["UploadUrl"], content=mp3).status_code >= 300:
            return False
        path, headers, body = signed(
            host, "CommitResourceUpload", {"FileName": file_name, "Type": 0}, "AKLTbenchupload"
        )
        return answered(client.post(base + path, headers=headers, content=body))

    return operation


def moto_put(url: str, data: bytes) -> Callable[[httpx.Client, str], bool]:
    def operation(client: httpx.Client, unique: str) -> bool:
        return client.put(f"{url}/bench/{unique}", content=data).status_code == 200

    return operation


def moto_put_lua(size: int) -> str:
    """PutObject of distinct keys (moto checks no signature, so wrk needs no pre-signed pool)."""
    return (
        "local threads = 0\nsetup = function(thread)\n  threads = threads + 1\n  thread:set('tid', threads)\nend\n"
        f"local body = string.rep('x', {size})\nlocal i = 0\n"
        "request = function()\n  i = i + 1\n"
        "  return wrk.format('PUT', '/bench/w' .. tid .. '-' .. i, {['Content-Type'] = 'application/octet-stream'}, body)\nend\n"
        + REPORT_LUA
    )


def make_mp3(path: Path) -> bytes:
    """About 100 KB of MP3 (25 s of a tone at 32 kbit/s)."""
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=25",
            "-ac",
            "1",
            "-b:a",
            "32k",
            str(path),
        ],
        check=True,
    )
    return path.read_bytes()


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
KEYWORDS_3 = ("验证码", "会员到期", "reminder", "Order", "2024-05", "第12期")
KEYWORDS_12 = ("通知", "会", "v2", "退款", "9")


def mixes(sample_keys: list[str]) -> dict[str, list[dict[str, object]]]:
    rng = random.Random(7)
    deep: list[dict[str, object]] = [
        {"Type": t, "Limit": 10, "Offset": rng.randrange(0, 300_000)} for t in TYPES
    ]
    return {
        "Type": [*(dict[str, object](Type=t, Limit=10) for t in TYPES), *deep],
        "Type+State": [{"Type": t, "State": s, "Limit": 10} for t in TYPES for s in STATES],
        "ResourceKey": [{"Type": rng.choice(TYPES), "Keyword": k} for k in sample_keys[:100]],
        "Keyword 3+ chars": [{"Type": t, "Keyword": k} for t in TYPES for k in KEYWORDS_3],
        "Keyword 1-2 chars": [{"Type": t, "Keyword": k} for t in TYPES for k in KEYWORDS_12],
    }


WRITE_MIX = "Write mix (1 OpenCreateTts in 20)"
CREATES = "OpenCreateTts alone"
UPLOADS = "Upload+commit 100 KB MP3 alone"
ONE_AT_A_TIME = "Keyword one at a time, no cache"


def create_body(i: int, rng: random.Random) -> dict[str, object]:
    return {"Name": name_for(i, rng), "TtsTemplateContent": TTS_TEXT, "Remark": f"bench {i}"}


def write_mix_pool(host: str, account: Account, cycles: int = 200) -> list[Signed]:
    """Nineteen reads then one OpenCreateTts, `cycles` times; no two reads alike, so none is
    answered from what another read kept, and every write makes the next reads miss."""
    rng = random.Random(11)
    words = [*ZH, *EN]
    pool = []
    for c in range(cycles):
        for j in range(19):
            kind = j % 4
            body: dict[str, object] = {"Type": rng.choice(TYPES), "Limit": 10}
            if kind == 0:
                body["Offset"] = rng.randrange(0, MIX_RESOURCES // 3)
            elif kind == 1:
                body |= {"State": rng.choice(STATES), "Offset": rng.randrange(0, MIX_RESOURCES // 10)}
            elif kind == 2:
                body["Keyword"] = rng.choice(words)
            else:
                body["Keyword"] = (
                    rng.choice(account.sample_keys) if rng.random() < 0.5 else rng.choice(words)[:1]
                )
            pool.append(signed(host, "QueryOpenGetResource", body, account.access_key))
        pool.append(signed(host, "OpenCreateTts", create_body(c, rng), account.access_key))
    return pool


def create_pool(host: str, size: int = 4000) -> list[Signed]:
    # Names need not be unique (only an audio resource's FileName is), and a request without an
    # idempotency token is a new write each time, so a cycled pool keeps creating.
    rng = random.Random(13)
    return [signed(host, "OpenCreateTts", create_body(i, rng), "AKLTbenchcreate") for i in range(size)]


def measured(base: str, lua: str, seconds: int, connections: int) -> dict[str, float]:
    settle(base)
    return wrk(base, lua, seconds, connections)


def settle(base: str) -> None:
    """Wait until the workers have worked off what the last row left queued (a request whose wrk
    connection closed is still answered), so that backlog is not charged to the next row."""
    path, headers, body = signed(base.split("://", 1)[1], "QueryOpenGetResource", {"Type": 0, "Limit": 1})
    # A new connection per probe, so the kernel hands probes to both workers.
    headers = {**headers, "Connection": "close"}
    quick, deadline = 0, time.perf_counter() + 60
    with httpx.Client(timeout=60) as client:
        while quick < 10 and time.perf_counter() < deadline:
            began = time.perf_counter()
            client.post(base + path, headers=headers, content=body)
            quick = quick + 1 if time.perf_counter() - began < 0.05 else 0


def one_at_a_time(base: str, pool: list[Signed]) -> dict[str, float]:
    """Each request alone, on one connection: what a keyword costs without company."""
    took = []
    with httpx.Client(timeout=60) as client:
        for path, headers, body in pool:
            began = time.perf_counter()
            assert answered(client.post(base + path, headers=headers, content=body))
            took.append((time.perf_counter() - began) * 1000)
    return {"median_ms": statistics.median(took), "max_ms": max(took), "requests": len(took)}


class Phases:
    """Wall time of each phase of the run, printed as it ends (to predict a full run's length).
    This process's CPU time is printed beside it: the SQLite load runs in it, and on a busy
    machine that predicts a quiet load better than the wall time does."""

    def __init__(self) -> None:
        self.took: dict[str, float] = {}
        self.began = time.perf_counter()

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        began, cpu = time.perf_counter(), _cpu_seconds()
        try:
            yield
        finally:
            self.took[name] = time.perf_counter() - began
            print(
                f"phase {name}: {self.took[name]:.1f} s, this process's CPU {_cpu_seconds() - cpu:.1f} s "
                f"(run so far {time.perf_counter() - self.began:.0f} s)",
                flush=True,
            )


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def check_totals(url: str, base: str, host: str, accounts: list[Account]) -> list[str]:
    """Totals the service answers against a COUNT(*) scan of the table, for a few accounts: the
    bulk load's rebuild of counts, blocks, grams and trigram index must equal what the triggers
    would have written."""
    fillers = [a for a in accounts if a.name.startswith("filler")]
    chosen = [a for a in accounts if a.name in ("bench", "benchmix")] + fillers[:: max(1, len(fillers) // 3)][
        :3
    ]
    checks: list[tuple[Account, dict[str, object], str, tuple[object, ...]]] = []
    for account in chosen:
        for t in TYPES:
            checks.append((account, {"Type": t}, "type = ?", (t,)))
            checks.append((account, {"Type": t, "State": 1}, "type = ? AND state = 1", (t,)))
            for kw in ("通知", "会员到期", "v2"):
                checks.append(
                    (account, {"Type": t, "Keyword": kw}, "type = ? AND name_folded LIKE ?", (t, f"%{kw}%"))
                )
    if url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(sqlite_path(url))

        def count(where: str, args: tuple[object, ...]) -> int:
            return int(conn.execute(f"SELECT count(*) FROM resources WHERE {where}", args).fetchone()[0])
    else:
        import psycopg

        pg = psycopg.connect(url)

        def count(where: str, args: tuple[object, ...]) -> int:
            row = pg.execute(
                f"SELECT count(*) FROM resources WHERE {where}".replace("?", "%s"), args
            ).fetchone()
            assert row is not None
            return int(row[0])

    wrong = []
    with httpx.Client(timeout=60) as client:
        for account, body, where, args in checks:
            path, headers, raw = signed(
                host, "QueryOpenGetResource", {**body, "Limit": 1}, account.access_key
            )
            r = client.post(base + path, headers=headers, content=raw)
            total = r.json()["Result"]["Total"]
            expected = count(f"account_id = ? AND {where}", (account.id, *args))
            if total != expected:
                wrong.append(f"{account.name} {body}: Total {total}, COUNT(*) {expected}")
    if not url.startswith("sqlite"):
        pg.close()
    print(f"totals checked: {len(checks)} filters on {len(chosen)} accounts, {len(wrong)} wrong", flush=True)
    return wrong


class Run:
    """What one `make bench` is asked to do, and what it measured."""

    def __init__(self, args: argparse.Namespace, phases: Phases) -> None:
        self.n: int = args.n
        self.seconds: int = args.seconds
        self.connections: int = args.connections
        self.store_total: int = max(args.store_total, args.n + MIX_RESOURCES)
        self.accounts: int = args.accounts
        self.patterns = [p.strip().casefold() for p in args.rows.split(",") if p.strip()] if args.rows else []
        self.phases = phases

    def wants(self, label: str) -> bool:
        return not self.patterns or any(fnmatch.fnmatchcase(label.casefold(), p) for p in self.patterns)


def bench_backend(backend: str, run: Run, work: Path, mp3: bytes) -> dict[str, object]:
    phase = run.phases
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
        accounts = plan(run.n, run.store_total, run.accounts)
        with phase(f"{backend} accounts"):
            migrate.upgrade(url)
            asyncio.run(make_accounts(url, data_dir, accounts))
        began = time.perf_counter()
        with phase(f"{backend} load"):
            (load_sqlite if backend == "sqlite" else load_postgresql)(url, accounts, run.n, phase)
        results: dict[str, object] = {
            "load_seconds": round(time.perf_counter() - began, 1),
            "store": sum(a.n for a in accounts),
            "accounts": sum(1 for a in accounts if a.n),
        }
        big, mix_account = accounts[0], accounts[1]
        keys = big.sample_keys
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
        reads = mixes(keys)
        all_bodies = [b for bodies in reads.values() for b in bodies]
        proc, base = start(serve)
        host = base.split("://", 1)[1]
        try:
            with phase(f"{backend} totals check"):
                wrong = check_totals(url, base, host, accounts)
            if wrong:
                sys.exit("bench: the bulk load's rebuild disagrees with COUNT(*):\n" + "\n".join(wrong))
            with phase(f"{backend} reads"):
                # Steady state: every request of every pool once per worker first (statement caches,
                # keyword match lists, the OS page cache); the cold cost is measured below.
                wrk(base, lua_for(signed_pool(host, all_bodies)), WARMUP_SECONDS, run.connections)
                for label, bodies in reads.items():
                    if run.wants(label):
                        results[label] = measured(
                            base, lua_for(signed_pool(host, bodies)), run.seconds, run.connections
                        )
                if run.wants("mix"):
                    results["mix"] = measured(
                        base, lua_for(signed_pool(host, all_bodies)), run.seconds, run.connections
                    )
            if run.wants(WRITE_MIX):
                with phase(f"{backend} write mix"):
                    results[WRITE_MIX] = measured(
                        base, lua_for(write_mix_pool(host, mix_account)), run.seconds, run.connections
                    )
            if run.wants(CREATES):
                with phase(f"{backend} creates"):
                    results[CREATES] = measured(
                        base, lua_for(create_pool(host)), run.seconds, run.connections
                    )
            if run.wants(UPLOADS):
                with phase(f"{backend} uploads"):
                    settle(base)
                    results[UPLOADS] = drive(upload_commit(base, host, mp3), DRIVER_THREADS, run.seconds)
            results["rss_mb"] = rss_mb(proc.pid)
        finally:
            stop(proc)
        cold = [label for label in reads if run.wants(f"{label}, no cache")]
        if cold or run.wants(ONE_AT_A_TIME):
            # Every request as if the account had just been written to: no match lists, no kept
            # answers; each one runs its queries.
            with phase(f"{backend} no cache"):
                proc, base = start([*serve, "--search-cache-mb", "0"])
                try:
                    host = base.split("://", 1)[1]
                    wrk(base, lua_for(signed_pool(host, all_bodies)), WARMUP_SECONDS, run.connections)
                    for label in cold:
                        pool = signed_pool(host, reads[label])
                        results[f"{label}, no cache"] = measured(
                            base, lua_for(pool), run.seconds, run.connections
                        )
                    if run.wants(ONE_AT_A_TIME):
                        settle(base)
                        keyword_bodies = reads["Keyword 3+ chars"] + reads["Keyword 1-2 chars"]
                        results[ONE_AT_A_TIME] = one_at_a_time(base, signed_pool(host, keyword_bodies))
                finally:
                    stop(proc)
        return results
    finally:
        if db_name:
            import psycopg

            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


# The Python driver's threads: as many as the earlier measurement of writes used.
DRIVER_THREADS = 8


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
        wait_for("http://127.0.0.1:18765/")
        return wrk("http://127.0.0.1:18765/", None, seconds, connections)
    finally:
        proc.terminate()
        proc.wait(15)


def wait_for(url: str) -> None:
    for _ in range(300):
        if subprocess.run(["curl", "-s", "-o", "/dev/null", url], capture_output=True).returncode == 0:
            return
        time.sleep(0.1)  # polling for readiness of a third-party server, not test synchronization
    raise RuntimeError(f"{url} did not start")


MOTO_PUT = "moto S3 PutObject, wrk (body as large as an OpenCreateTts)"
MOTO_UPLOAD = "moto S3 PutObject 100 KB, Python driver"


def moto_baseline(run: Run, mp3: bytes) -> dict[str, dict[str, float]]:
    """moto's S3 PutObject rate, driven as our write rows are: by wrk for the OpenCreateTts row
    (same 2 wrk threads and connections, a body of the same size), by the same Python driver
    (same threads) for the upload+commit row."""
    out: dict[str, dict[str, float]] = {}
    if not (run.wants(CREATES) or run.wants(UPLOADS)):
        return out
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "18766"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = "http://127.0.0.1:18766"
    try:
        wait_for(f"{url}/moto-api/data.json")
        httpx.put(f"{url}/bench").raise_for_status()
        if run.wants(CREATES):
            size = len(create_pool("127.0.0.1", 1)[0][2])
            out[MOTO_PUT] = wrk(url, moto_put_lua(size), run.seconds, run.connections)
        if run.wants(UPLOADS):
            out[MOTO_UPLOAD] = drive(moto_put(url, mp3), DRIVER_THREADS, run.seconds)
    finally:
        proc.terminate()
        proc.wait(15)
    return out


def _row(label: str, r: dict[str, float], hello: float) -> str:
    return (
        f"| {label} | {r['rps']:.0f} | {r['rps'] / hello:.3f} | {r['p50_ms']:.2f} | "
        f"{r['p99_ms']:.2f} | {r['errors']:.0f} | {r['requests']:.0f} |"
    )


def targets(
    hello: float, results: dict[str, dict[str, object]], moto: dict[str, dict[str, float]]
) -> list[str]:
    """The targets of issue 16, each with what this run measured."""
    out = ["## Against the targets (this run)", "", "| Target | Measured | Met? |", "|---|---|---|"]

    def add(target: str, measured: str, met: bool | None) -> None:
        out.append(f"| {target} | {measured} | {'not measured' if met is None else 'yes' if met else 'no'} |")

    def rows_of(backend: str, pick: Callable[[str], bool]) -> list[tuple[str, dict[str, float]]]:
        return [
            (label, r)
            for label, r in results.get(backend, {}).items()
            if isinstance(r, dict) and "rps" in r and pick(label)
        ]

    def span(rs: list[tuple[str, dict[str, float]]], key: str, scale: float = 1.0, fmt: str = ".2f") -> str:
        values = [r[key] / scale for _, r in rs]
        return f"{min(values):{fmt}}-{max(values):{fmt}}" if values else "-"

    sqlite = results.get("sqlite", {})
    mix = sqlite.get(WRITE_MIX)
    if isinstance(mix, dict):
        ratio = mix["rps"] / hello
        add(
            "Write mix (1 in 20), SQLite: >= 0.3 of the ceiling, p99 <= 10 ms",
            f"{ratio:.3f}, p99 {mix['p99_ms']:.1f} ms",
            ratio >= 0.3 and mix["p99_ms"] <= 10,
        )
    else:
        add("Write mix (1 in 20), SQLite: >= 0.3 of the ceiling, p99 <= 10 ms", "-", None)
    cheap = rows_of(
        "sqlite", lambda label: label in {"Type, no cache", "Type+State, no cache", "ResourceKey, no cache"}
    )
    add(
        "No cache, SQLite: Type, Type+State, ResourceKey >= 0.3 of the ceiling, p99 <= 10 ms",
        f"{span(cheap, 'rps', hello, '.3f')} of the ceiling, p99 {span(cheap, 'p99_ms', fmt='.1f')} ms"
        if cheap
        else "-",
        all(r["rps"] / hello >= 0.3 and r["p99_ms"] <= 10 for _, r in cheap) if cheap else None,
    )
    kw = rows_of("sqlite", lambda label: label.startswith("Keyword") and label.endswith("no cache"))
    add(
        "No cache, SQLite: any keyword p99 <= 50 ms under load",
        f"p99 {span(kw, 'p99_ms', fmt='.1f')} ms" if kw else "-",
        all(r["p99_ms"] <= 50 for _, r in kw) if kw else None,
    )
    alone = sqlite.get(ONE_AT_A_TIME)
    add(
        "No cache, SQLite: any keyword median <= 20 ms one at a time",
        f"median {alone['median_ms']:.1f} ms, max {alone['max_ms']:.1f} ms"
        if isinstance(alone, dict)
        else "-",
        alone["median_ms"] <= 20 if isinstance(alone, dict) else None,
    )
    pg_reads = rows_of("postgresql", lambda label: label in {*mixes([]), "mix"} or label.endswith("no cache"))
    add(
        "PostgreSQL: every read row >= 0.2 of the ceiling, no p99 above 50 ms",
        f"{span(pg_reads, 'rps', hello, '.3f')} of the ceiling, p99 {span(pg_reads, 'p99_ms', fmt='.1f')} ms"
        if pg_reads
        else "-",
        all(r["rps"] / hello >= 0.2 and r["p99_ms"] <= 50 for _, r in pg_reads) if pg_reads else None,
    )
    for backend in ("sqlite", "postgresql"):
        kept = rows_of(backend, lambda label: label in {*mixes([]), "mix"})
        add(
            f"Kept answers ({backend}): >= 0.5 of the ceiling",
            f"{span(kept, 'rps', hello, '.3f')}" if kept else "-",
            all(r["rps"] / hello >= 0.5 for _, r in kept) if kept else None,
        )
    creates = sqlite.get(CREATES)
    add(
        "Writes: >= 2,000 OpenCreateTts/s on SQLite, 2 workers",
        f"{creates['rps']:.0f}/s, p99 {creates['p99_ms']:.1f} ms" if isinstance(creates, dict) else "-",
        creates["rps"] >= 2000 if isinstance(creates, dict) else None,
    )
    put = moto.get(MOTO_PUT)
    if isinstance(creates, dict) and put:
        add(
            "Writes: >= 10x moto's S3 PutObject rate (same run, both by wrk)",
            f"{creates['rps'] / put['rps']:.1f}x ({creates['rps']:.0f} against {put['rps']:.0f}/s)",
            creates["rps"] >= 10 * put["rps"],
        )
    else:
        add("Writes: >= 10x moto's S3 PutObject rate (same run, both by wrk)", "-", None)
    worst = max((max(r["rss_mb"]) for r in results.values() if r.get("rss_mb")), default=None)  # type: ignore[call-overload]
    add(
        "RSS <= 300 MB per worker",
        f"{worst:.0f} MB at most" if worst else "-",
        worst <= 300 if worst else None,
    )
    return [*out, ""]


def report(
    run: Run,
    hello: dict[str, float],
    results: dict[str, dict[str, object]],
    moto: dict[str, dict[str, float]],
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
    ceiling_rps = hello["rps"]
    lines = [
        "## Latest run",
        "",
        f"Machine: {os.cpu_count()} cores ({cpu}), {mem} MB memory, {platform.platform()}. "
        f"Load generator (wrk, 2 threads, {run.connections} connections; the Python driver, "
        f"{DRIVER_THREADS} threads) runs on the same machine, so it competes with the server for the same cores.",
        "",
        f"Reproduce: `make bench N={run.n} STORE_TOTAL={run.store_total} ACCOUNTS={run.accounts}` "
        f"(this run: {run.seconds} s per row{', rows ' + ','.join(run.patterns) if run.patterns else ''}).",
        "",
        f"Ceiling (raw-ASGI hello JSON, uvicorn, 2 workers): **{ceiling_rps:.0f} req/s**, "
        f"p50 {hello['p50_ms']:.2f} ms, p99 {hello['p99_ms']:.2f} ms.",
        "",
    ]
    if moto:
        lines += ["Baselines (moto's S3, one process, started by `python -m moto.server`):", ""]
        lines += [
            "| Row | ops/s | ratio to ceiling | p50 ms | p99 ms | failed | requests |",
            "|---|---|---|---|---|---|---|",
        ]
        lines += [_row(label, r, ceiling_rps) for label, r in moto.items()] + [""]
    for backend, res in results.items():
        lines += [
            f"## {backend} (N={run.n} in one account, {res['store']} resources in {res['accounts']} accounts, "
            f"2 workers; bulk load {res['load_seconds']} s)",
            "",
            "| Row | req/s (flows/s) | ratio to ceiling | p50 ms | p99 ms | non-2xx | requests |",
            "|---|---|---|---|---|---|---|",
        ]
        for label, r in res.items():
            if isinstance(r, dict) and "rps" in r:
                lines.append(_row(label, r, ceiling_rps))
        alone = res.get(ONE_AT_A_TIME)
        if isinstance(alone, dict):
            lines += [
                "",
                f"{ONE_AT_A_TIME} ({alone['requests']} keywords, each once, one connection): "
                f"median {alone['median_ms']:.1f} ms, max {alone['max_ms']:.1f} ms.",
            ]
        if res.get("rss_mb"):
            lines += ["", f"Worker RSS after the run: {', '.join(f'{x:.0f} MB' for x in res['rss_mb'])}."]  # type: ignore[attr-defined]
        lines.append("")
    lines += targets(ceiling_rps, results, moto)
    lines += [
        "Phases (wall time): "
        + "; ".join(f"{name} {took:.0f} s" for name, took in run.phases.took.items())
        + ".",
        "",
    ]
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
    parser.add_argument("--n", type=int, default=1_000_000, help="resources in the big account")
    parser.add_argument(
        "--store-total",
        type=int,
        default=0,
        help="resources in the store in all (filler accounts hold what the big and write-mix accounts do not)",
    )
    parser.add_argument("--accounts", type=int, default=1000, help="accounts holding --store-total resources")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument(
        "--rows",
        default="",
        help="comma-separated shell patterns of row labels to run (case-insensitive), e.g. "
        "'Type,write mix*,*no cache,toolkit'; empty: every row",
    )
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    parser.add_argument("--toolkit-rounds", type=int, default=20)
    parser.add_argument("--toolkit-only", action="store_true", help="only the vmsres.testing rows")
    args = parser.parse_args()
    phases = Phases()
    run = Run(args, phases)
    if run.wants("toolkit") or args.toolkit_only:
        with phases("toolkit"):
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
        mp3 = make_mp3(work / "bench.mp3")
        with phases("ceiling and moto"):
            hello = ceiling(args.seconds, args.connections)
            print("ceiling", hello, flush=True)
            moto = moto_baseline(run, mp3)
            print("moto", moto, flush=True)
        results: dict[str, dict[str, object]] = {}
        for backend in args.backends.split(","):
            results[backend] = bench_backend(backend, run, work, mp3)
            print(backend, json.dumps(results[backend], ensure_ascii=False), flush=True)
        numbers = report(run, hello, results, moto)
        print(numbers, flush=True)
        write_report(Path(args.out), numbers)
        print(f"wrote {args.out}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
