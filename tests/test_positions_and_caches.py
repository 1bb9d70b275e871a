"""Deep Offsets through resource_blocks, and the per-worker caches (verified keys, keyword match
lists) staying coherent with writes made by other processes, on both databases."""

from __future__ import annotations

import asyncio
import json
import math
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import official_vms_service
from tests.servers import (
    RunningServer,
    insert_account,
    keyed_store,
    load_factor,
    migrate_to,
    run_cli,
    run_sql,
    start_server,
    wait_for,
)
from vmsres.server.store.database import open_database
from vmsres.server.store.resources import (
    BLOCK_SHIFTS,
    DEEP_OFFSET,
    WRITTEN_LIMITS,
    ListFilter,
    ResourceStore,
)

# More rows in one (Type, State) than DEEP_OFFSET, so the block lookups are what answers.
ROWS = DEEP_OFFSET + 1200
YEAR = 365 * 86400


@pytest.fixture
def two_worker_server(tmp_path: Path, database_url: str | None) -> Iterator[RunningServer]:
    running = start_server(tmp_path / "data", ["--workers", "2"], database_url=database_url)
    yield running
    running.stop()


def _insert_rows(store_url: str, rng: random.Random, count: int) -> None:
    """Rows written straight into the table (the triggers keep blocks, counts and grams), with
    CreateTimes over three years, bursts within one second and within one block."""
    account_id = int(run_sql(store_url, "SELECT id FROM accounts WHERE name = 'default'")[0][0])
    now = 1_790_000_000
    burst = now - YEAR
    rows = []
    for i in range(count):
        created = burst if i % 50 == 0 else rng.randrange(now - 3 * YEAR, now)
        rows.append(
            {
                "k": f"deep{i:06d}{rng.randrange(10**6):06d}",
                "a": account_id,
                "s": 1 if rng.random() < 0.9 else rng.choice((0, 2)),
                "n": f"r{i}",
                "c": created,
            }
        )
    run_sql(
        store_url,
        "INSERT INTO resources (resource_key, account_id, type, state, name, name_folded, suffix, "
        "duration, remark, created_at, updated_at) VALUES (:k, :a, 0, :s, :n, :n, '.mp3', 1, '', :c, :c)",
        rows,  # type: ignore[arg-type]
    )


def _scan(server: RunningServer, state: int | None) -> list[str]:
    rows = server.sql("SELECT resource_key, state, created_at, id FROM resources WHERE type = 0")
    matches = [r for r in rows if state is None or r.state == state]
    matches.sort(key=lambda r: (r.created_at, r.id), reverse=True)
    return [r.resource_key for r in matches]


def _page(vms: Any, state: int | None, offset: int, limit: int = 7) -> tuple[list[str], int]:
    body: dict[str, Any] = {"Type": 0, "Limit": limit, "Offset": offset}
    if state is not None:
        body["State"] = state
    result = vms.query_open_get_resource(body)["Result"]
    return [r["ResourceKey"] for r in result["Records"]], result["Total"]


def _check_deep_pages(server: RunningServer, rng: random.Random) -> None:
    vms = official_vms_service(server)
    for state in (None, 1):
        expected = _scan(server, state)
        assert len(expected) > DEEP_OFFSET
        offsets = [DEEP_OFFSET, DEEP_OFFSET + 1, len(expected) - 1, len(expected) - 3, len(expected)]
        offsets += [len(expected) + 1, len(expected) + 10**6]
        offsets += [rng.randrange(DEEP_OFFSET, len(expected)) for _ in range(6)]
        for offset in offsets:
            assert _page(vms, state, offset) == (expected[offset : offset + 7], len(expected)), (
                state,
                offset,
            )


def _check_blocks(server: RunningServer) -> None:
    """Every level of resource_blocks equals a recount of the table."""
    stored = {
        (r.level, r.block, r.state): r.n
        for r in server.sql("SELECT level, block, state, n FROM resource_blocks WHERE type = 0 AND n <> 0")
    }
    rows = server.sql("SELECT state, created_at FROM resources WHERE type = 0")
    recount: dict[tuple[int, int, int], int] = {}
    for row in rows:
        for level, shift in enumerate(BLOCK_SHIFTS):
            key = (level, row.created_at >> shift, row.state)
            recount[key] = recount.get(key, 0) + 1
    assert stored == recount


def test_deep_offsets_match_a_full_scan_through_writes(fresh_server: RunningServer) -> None:
    rng = random.Random(5)
    _insert_rows(fresh_server.store_url, rng, ROWS)
    _check_blocks(fresh_server)
    _check_deep_pages(fresh_server, rng)

    keys = [k for (k,) in fresh_server.sql("SELECT resource_key FROM resources WHERE type = 0")]
    rng.shuffle(keys)
    moved, restated, deleted = keys[:150], keys[150:400], keys[400:600]
    for key in moved:
        fresh_server.sql(
            "UPDATE resources SET created_at = :c WHERE resource_key = :k",
            {"c": rng.randrange(1_700_000_000, 1_800_000_000), "k": key},
        )
    for key in restated:
        fresh_server.sql("UPDATE resources SET state = 2 WHERE resource_key = :k", {"k": key})
    vms = official_vms_service(fresh_server)
    for key in deleted[:20]:
        vms.delete_resource({"ResourceKey": key})
    for key in deleted[20:]:
        fresh_server.sql("DELETE FROM resources WHERE resource_key = :k", {"k": key})
    _check_blocks(fresh_server)
    _check_deep_pages(fresh_server, rng)


def test_deep_offsets_walk_the_listing_when_the_blocks_say_nothing(fresh_server: RunningServer) -> None:
    """Blocks that disagree with the count (here: none at all) make a deep page walk the listing
    from its start: slower, never wrong."""
    rng = random.Random(8)
    _insert_rows(fresh_server.store_url, rng, ROWS)
    fresh_server.sql("DELETE FROM resource_blocks")
    _check_deep_pages(fresh_server, rng)


def test_pages_of_every_size_match_a_full_scan(fresh_server: RunningServer) -> None:
    """Page sizes written into the SQL (up to WRITTEN_LIMITS) and larger ones bound (the
    console's merged pages ask for those), at Offsets before, at and past DEEP_OFFSET and the
    end, straight from the store: each page and Total is the full scan's."""
    rng = random.Random(9)
    _insert_rows(fresh_server.store_url, rng, ROWS)
    account_id = int(fresh_server.sql("SELECT id FROM accounts WHERE name = 'default'")[0][0])
    expected = {state: _scan(fresh_server, state) for state in (None, 1)}

    async def pages() -> None:
        db = open_database(fresh_server.store_url, durable=False)
        try:
            store = ResourceStore(db)
            for state, listing in expected.items():
                where = ListFilter(account_id, 0, state, "")
                for limit in (1, 7, WRITTEN_LIMITS, WRITTEN_LIMITS + 1, 1500):
                    for offset in (
                        0,
                        3,
                        700,
                        DEEP_OFFSET - 1,
                        DEEP_OFFSET + 17,
                        len(listing) - 2,
                        len(listing) + 5,
                    ):
                        rows, total = await store.page(where, limit, offset, 0)
                        got = [row["resource_key"] for row in rows]
                        assert (got, total) == (listing[offset : offset + limit], len(listing)), (
                            state,
                            limit,
                            offset,
                        )
        finally:
            await db.close()

    asyncio.run(pages())


def _listed(vms: Any, keyword: str, state: int | None = None) -> tuple[list[str], int]:
    keys: list[str] = []
    offset = 0
    while True:
        body: dict[str, Any] = {"Type": 1, "Keyword": keyword, "Limit": 2, "Offset": offset}
        if state is not None:
            body["State"] = state
        result = vms.query_open_get_resource(body)["Result"]
        keys += [r["ResourceKey"] for r in result["Records"]]
        offset += 2
        if offset >= result["Total"]:
            return keys, result["Total"]


def _expected(server: RunningServer, keyword: str, state: int | None = None) -> tuple[list[str], int]:
    rows = server.sql("SELECT resource_key, name, state, created_at, id FROM resources WHERE type = 1")
    folded = keyword.casefold()
    found = [
        r
        for r in rows
        if (folded in r.name.casefold() or r.resource_key == folded) and (state is None or r.state == state)
    ]
    found.sort(key=lambda r: (r.created_at, r.id), reverse=True)
    return [r.resource_key for r in found], len(found)


def test_keyword_results_follow_writes_made_through_other_processes(
    two_worker_server: RunningServer,
) -> None:
    """Each query goes on a fresh connection, so both workers answer and keep match lists; every
    write is made by another process (the CLI) or another worker, and must show at once."""
    server = two_worker_server
    vms = official_vms_service(server)
    keywords = ["通知", "通", "order", "会员到期"]

    def check() -> None:
        for keyword in keywords:
            for state in (None, 1):
                for _ in range(3):
                    assert _listed(official_vms_service(server), keyword, state) == _expected(
                        server, keyword, state
                    ), (keyword, state)

    created = [
        vms.create_tts({"Name": name, "TtsTemplateContent": "hi"})["Result"]["ResourceKey"]
        for name in ("会员到期通知", "订单通知 Order", "物流", "通知")
    ]
    check()
    vms.create_tts({"Name": "新的通知 order", "TtsTemplateContent": "hi"})
    check()
    vms.open_update_resource({"ResourceKey": created[2], "Name": "物流通知 ORDER"})
    check()
    vms.open_update_resource({"ResourceKey": created[0], "Name": "plain"})
    check()
    server.cli("review", "reject", created[1], "--reason", "no", "--force")
    check()
    vms.delete_resource({"ResourceKey": created[3]})
    check()
    server.sql("DELETE FROM resources WHERE resource_key = :k", {"k": created[1]})
    check()


def test_key_changes_take_effect_at_once_in_every_worker(two_worker_server: RunningServer) -> None:
    server = two_worker_server
    key = json.loads(server.cli("keys", "create", "--account", "default", "--json").stdout)

    def codes_of(secret: str) -> list[str]:
        """The error code (or "ok") of six requests on fresh connections: both workers answer."""
        codes = []
        for _ in range(6):
            vms = official_vms_service(server, ak=key["AccessKey"], sk=secret)
            try:
                reply = vms.query_open_get_resource({"Type": 0})
            except Exception as exc:  # the SDK raises on 4xx for JSON-body actions
                # It carries the response body: keep its error code, or all of it when there is none.
                found = re.search(r'"Code":\s*"([^"]+)"', str(exc))
                codes.append(found.group(1) if found else str(exc))
                continue
            error = reply.get("ResponseMetadata", {}).get("Error")
            codes.append(error["Code"] if error else "ok")
        return codes

    assert codes_of(key["SecretKey"]) == ["ok"] * 6
    rotated = server.cli("keys", "rotate", key["AccessKey"], "--json")
    new_secret = json.loads(rotated.stdout)["SecretKey"]
    assert codes_of(new_secret) == ["ok"] * 6
    assert codes_of(key["SecretKey"]) == ["SignatureNotMatch"] * 6
    server.cli("keys", "disable", key["AccessKey"])
    assert codes_of(new_secret) == ["InvalidAccessKeyId"] * 6
    run_cli("keys", "enable", key["AccessKey"], *server.store_args())
    assert codes_of(new_secret) == ["ok"] * 6


def test_an_answer_showing_a_lease_is_not_kept_past_the_lease(
    tmp_path: Path, database_url: str | None
) -> None:
    """A lease runs out without any write; answers that show InUse must not outlive it."""
    token = "answers-admin-token-4f9c2a7e1b"
    server = start_server(tmp_path / "data", ["--admin-token", token], database_url=database_url)
    try:
        vms = official_vms_service(server)
        key = vms.create_tts({"Name": "leased briefly", "TtsTemplateContent": "hi"})["Result"]["ResourceKey"]

        def in_use() -> list[bool]:
            page = vms.query_open_get_resource({"Type": 1})["Result"]["Records"]
            usable = vms.query_usable_resource({"Type": 1})["Result"]
            return [r["InUse"] for r in page + usable if r["ResourceKey"] == key]

        server.cli("review", "approve", key, "--force")
        assert in_use() == [False, False] and in_use() == [False, False]
        # Long enough that the next two queries come inside it, however loaded the machine (a
        # lease lasts at least its Seconds: test_hardening.py).
        seconds = math.ceil(load_factor()) + 1
        httpx.post(
            f"{server.url}/admin/v1/resources/{key}/lease",
            json={"Seconds": seconds, "Holder": "dialer"},
            headers={"Authorization": f"Bearer {token}"},
        ).raise_for_status()
        assert in_use() == [True, True]
        wait_for(lambda: in_use() == [False, False], timeout=seconds + 10, what="the lease to run out")
    finally:
        server.stop()


def test_migration_0009_counts_the_resources_already_stored(tmp_path: Path, database_url: str | None) -> None:
    """A store upgraded with resources in it gets blocks and generations that match its rows,
    and a server on it answers deep pages and keyword queries like a full scan."""
    data = tmp_path / "data"
    ring, url = keyed_store(data, database_url)
    migrate_to(url, "0008_secrets_holds", ring)
    account_id = insert_account(url, "default")
    rng = random.Random(9)
    _insert_rows(url, rng, ROWS)
    migrate_to(url, "head", ring)
    assert run_sql(
        url, "SELECT count(*) FROM resource_generations WHERE account_id = :a", {"a": account_id}
    ) == [(1,)]
    server = start_server(data, database_url=database_url)
    try:
        _check_blocks(server)
        _check_deep_pages(server, rng)
    finally:
        server.stop()
