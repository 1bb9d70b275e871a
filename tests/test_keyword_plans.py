"""PostgreSQL plans each keyword statement for its own pattern, every time.

asyncpg prepares a statement once per connection; after five runs PostgreSQL may switch it to a
generic plan made without the parameter values. For a keyword (a ResourceKey, a rare word) such
a plan cannot see how selective the pattern is, and walked every row of the account's Type: ~1 ms
with a plan of its own against 10-200 ms in the benchmark's store (docs/benchmarks.md). The
server's ``pg_prepared_statements`` view counts the plans each prepared statement was given.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlalchemy as sa

from tests.servers import insert_account, keyed_store, provision_database
from vmsres.server.store.database import PostgresDatabase
from vmsres.server.store.migrate import upgrade
from vmsres.server.store.resources import KeywordMatchCache, ListFilter, ResourceStore

NOW = 1_790_000_000
# (This statement names the column too, and has no parameters: it is left out.)
_PLANS = sa.text(
    "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
    " WHERE statement LIKE '%name_folded%' AND statement NOT LIKE '%pg_prepared_statements%'"
)


def test_keyword_statements_never_get_a_generic_plan(tmp_path: Path) -> None:
    with provision_database("postgresql") as database_url:
        assert database_url is not None
        keyring, url = keyed_store(tmp_path / "data", database_url)
        upgrade(url, keyring)
        account_id = insert_account(url, "default")

        async def run() -> list[tuple[int, int]]:
            # One long-read connection, so every keyword statement below runs on the session
            # whose prepared statements are then listed.
            db = PostgresDatabase(url, long_read_size=1)
            try:
                store = ResourceStore(db, KeywordMatchCache(0))
                keys = []
                for i in range(40):
                    key = f"{i:032x}"
                    keys.append(key)
                    values = {"resource_key": key, "account_id": account_id, "type": 0, "state": 1}
                    await store.insert({**values, "name": f"order {i} shipped", "created_at": NOW + i})
                for key in keys[:12]:
                    rows, total = await store.page(ListFilter(account_id, 0, None, key), 10, 0, NOW)
                    assert (total, [row["resource_key"] for row in rows]) == (1, [key])
                rows, total = await store.page(ListFilter(account_id, 0, None, "shipped"), 10, 20, NOW)
                assert total == 40 and len(rows) == 10
                plans = await db.long_reads.fetch_all(_PLANS)
                return [(int(p["generic_plans"]), int(p["custom_plans"])) for p in plans]
            finally:
                await db.close()

        plans = asyncio.run(run())
        assert plans, "no keyword statement was prepared on the long-read connection"
        assert sum(custom for _, custom in plans) >= 13
        assert all(generic == 0 for generic, _ in plans), plans


def test_names_written_are_in_the_trigram_index_at_once_not_in_a_pending_list(tmp_path: Path) -> None:
    """A GIN index keeps new entries in a pending list by default, which every search then reads
    whole until VACUUM merges it: a keyword page over a store written to all day slowed tenfold.
    Migration 0014 turns that off; ``pgstatginindex`` (pgstattuple) counts what is pending."""
    with provision_database("postgresql") as database_url:
        assert database_url is not None
        keyring, url = keyed_store(tmp_path / "data", database_url)
        upgrade(url, keyring)
        account_id = insert_account(url, "default")

        async def run() -> tuple[int, int]:
            db = PostgresDatabase(url)
            try:
                await db.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pgstattuple"))
                store = ResourceStore(db)
                for i in range(60):
                    values = {"resource_key": f"p{i:031x}", "account_id": account_id, "type": 0, "state": 1}
                    await store.insert({**values, "name": f"会员到期通知 order {i}", "created_at": NOW + i})
                rows, total = await store.page(ListFilter(account_id, 0, None, "到期通知 ord"), 10, 0, NOW)
                assert total == 60 and len(rows) == 10
                pending = await db.fetch_one(
                    sa.text(
                        "SELECT pending_pages, pending_tuples FROM pgstatginindex('ix_resources_name_trgm')"
                    )
                )
                assert pending is not None
                return int(pending["pending_pages"]), int(pending["pending_tuples"])
            finally:
                await db.close()

        assert asyncio.run(run()) == (0, 0)
