"""Keyword statements on SQLite run on the reader thread (docs/search.md, "Reader thread"): they
leave the event loop free for cheap requests, and they still see every write committed before
the request that runs them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlalchemy as sa

from tests.servers import insert_account, keyed_store
from vmsres.server.store.database import SqliteDatabase
from vmsres.server.store.migrate import upgrade
from vmsres.server.store.resources import KeywordMatchCache, ListFilter, ResourceStore

NOW = 1_790_000_000


def _store_url(tmp_path: Path) -> tuple[str, int]:
    keyring, url = keyed_store(tmp_path / "data", None)
    upgrade(url, keyring, durable=False)
    return url, insert_account(url, "default")


async def _fill(store: ResourceStore, account_id: int, count: int) -> None:
    for i in range(count):
        name = f"会员到期通知 {i}" if i % 2 else f"order shipped {i}"
        values = {"resource_key": f"k{i:06d}", "account_id": account_id, "type": 0, "state": 1}
        await store.insert({**values, "name": name, "created_at": NOW - count + i})


def test_a_cheap_request_is_answered_while_a_keyword_statement_runs(tmp_path: Path) -> None:
    """Ordered by events, not by time: on one event loop, a keyword page started first and a
    Type page started after it. A keyword statement that held the loop would finish before the
    Type page could start; on the reader thread it is still pending when the Type page (whose
    statements never suspend on SQLite) has its answer, however fast the keyword's count is."""
    url, account_id = _store_url(tmp_path)

    async def run() -> list[tuple[str, int]]:
        db = SqliteDatabase(url, durable=False)
        try:
            store = ResourceStore(db, KeywordMatchCache(0))
            await _fill(store, account_id, 400)
            finished: list[tuple[str, int]] = []

            async def page(label: str, keyword: str) -> None:
                rows, total = await store.page(ListFilter(account_id, 0, None, keyword), 10, 0, NOW)
                assert len(rows) == min(total, 10)
                finished.append((label, total))

            await asyncio.gather(page("keyword", "到期通"), page("type", ""), page("short", "通知"))
            return finished
        finally:
            await db.close()

    assert asyncio.run(run()) == [("type", 400), ("keyword", 200), ("short", 200)]


def test_the_reader_sees_every_write_committed_before_it_asks(tmp_path: Path) -> None:
    """Writes through the loop's connection, each followed at once by keyword pages through the
    reader's: every Total and first record is the one after the write, with the match lists on
    (tagged with the generation read on the loop's connection) and off."""
    url, account_id = _store_url(tmp_path)

    async def run() -> None:
        db = SqliteDatabase(url, durable=False)
        try:
            cached = ResourceStore(db, KeywordMatchCache.of_megabytes(1))
            uncached = ResourceStore(db, KeywordMatchCache(0))
            for i in range(60):
                key = f"w{i:04d}"
                await cached.insert(
                    {"resource_key": key, "account_id": account_id, "type": 0, "state": 1}
                    | {"name": f"通知 {i}", "created_at": NOW + i}
                )
                if i % 3 == 2:
                    # A rename out of the match: the Total falls again.
                    await cached.rename(account_id, key, "renamed", NOW + i)
                expected = i + 1 - (i + 1) // 3
                newest = key if i % 3 != 2 else f"w{i - 1:04d}"
                for store in (cached, uncached):
                    for keyword in ("通知", "通知 "):
                        where = ListFilter(account_id, 0, None, keyword)
                        rows, total = await store.page(where, 5, 0, NOW)
                        assert (total, rows[0]["resource_key"]) == (expected, newest), (i, keyword)
                        deeper, total = await store.page(where, 5, 2, NOW)
                        assert total == expected and len(deeper) == max(0, min(5, expected - 2))
        finally:
            await db.close()

    asyncio.run(run())


def test_a_small_account_scans_its_rows_and_a_large_one_asks_the_trigram_index(tmp_path: Path) -> None:
    """SQLite: a 3+ character keyword over at most ``scan_rows`` resources of the filter reads
    them in order and checks each name; over more, it asks the FTS5 index shared by every account.
    With that index emptied behind the store's back, only the scan still finds the matches: the
    same keyword then answers the small filter in full and the large one with nothing."""
    url, account_id = _store_url(tmp_path)

    async def run() -> None:
        db = SqliteDatabase(url, durable=False)
        try:
            await _fill(ResourceStore(db), account_id, 40)  # Type 0: 20 of 40 names hold "到期通"
            for i in range(50):
                values = {"resource_key": f"t1-{i:04d}", "account_id": account_id, "type": 1, "state": 1}
                await ResourceStore(db).insert({**values, "name": f"会员到期通知 {i}", "created_at": NOW + i})
            store = ResourceStore(db, KeywordMatchCache(0), scan_rows=45)
            small, large = (
                ListFilter(account_id, 0, None, "到期通"),
                ListFilter(account_id, 1, None, "到期通"),
            )
            before = [await store.page(where, 5, 0, NOW) for where in (small, large)]
            assert [total for _, total in before] == [20, 50]
            await db.execute(sa.text("INSERT INTO resources_fts (resources_fts) VALUES ('delete-all')"))
            rows, total = await store.page(small, 5, 0, NOW)
            assert (total, rows) == (before[0][1], before[0][0])
            assert await store.page(large, 5, 0, NOW) == ([], 0)
            # The match lists are built the same way.
            cached = ResourceStore(db, KeywordMatchCache.of_megabytes(1), scan_rows=45)
            assert (await cached.page(small, 5, 15, NOW))[1] == 20
            assert await cached.page(large, 5, 0, NOW) == ([], 0)
        finally:
            await db.close()

    asyncio.run(run())
