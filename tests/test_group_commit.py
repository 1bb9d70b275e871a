"""Group commit on SQLite: the writes of one worker that are ready together share one transaction.

The real application is called in-process (ASGI, no socket) with signed requests released in one
event-loop turn, so they land in one batch for certain; the counts of resources, audit rows and
webhook deliveries are then read from the database file itself. A batch whose COMMIT fails (a
full disk, a database locked by another process) must fail every request in it and store none.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson

from tests.test_dependency_faults import fill, small_disk  # noqa: F401  (a fixture)
from vmsres.protocol.signing import parse_query, sign_request
from vmsres.server.serve import create_app
from vmsres.server.service.admin import AdminOps
from vmsres.server.service.events import Actor
from vmsres.server.service.services import open_services
from vmsres.server.settings import Settings
from vmsres.server.store.database import SqliteDatabase
from vmsres.server.wire.app import VmsApp

AK, SK = "AKLTgroupcommit", "group-commit-secret"
HOST = "127.0.0.1:80"


def signed(action: str, body: dict[str, Any]) -> tuple[bytes, list[tuple[bytes, bytes]], bytes]:
    query = urlencode({"Action": action, "Version": "2022-01-01"})
    raw = orjson.dumps(body)
    headers = sign_request(
        method="POST",
        host=HOST,
        path="/",
        query_pairs=parse_query(query),
        body=raw,
        content_type="application/json",
        access_key=AK,
        secret_key=SK,
        region="cn-north-1",
        service="vms",
    )
    pairs = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return query.encode(), [*pairs, (b"host", HOST.encode())], raw


async def call(app: VmsApp, action: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    query, headers, raw = signed(action, body)
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "raw_path": b"/",
        "query_string": query,
        "headers": headers,
        "scheme": "http",
        "server": ("127.0.0.1", 80),
        "client": ("127.0.0.1", 40000),
        "http_version": "1.1",
    }
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if delivered:
            return {"type": "http.disconnect"}
        delivered = True
        return {"type": "http.request", "body": raw, "more_body": False}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    body_bytes = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], orjson.loads(body_bytes)


@contextlib.asynccontextmanager
async def application(
    data_dir: Path, database: Path, *, max_resources: int | None = None
) -> AsyncIterator[VmsApp]:
    settings = Settings(data_dir=str(data_dir), database_url=f"sqlite:///{database}", gc_interval_seconds=0)
    setup = open_services(settings)
    try:
        await setup.accounts.ensure_key("batch", AK, SK)
        ops = AdminOps(setup, Actor("cli"))
        await ops.set_webhook("batch", "http://127.0.0.1:9/hook", "hook-secret")
        if max_resources is not None:
            await ops.set_limits("batch", {"MaxResources": max_resources})
    finally:
        await setup.close()
    app = create_app(settings)
    try:
        yield app
    finally:
        await app.services.close()


def sqlite_of(app: VmsApp) -> SqliteDatabase:
    db = app.services.resources.store.db
    assert isinstance(db, SqliteDatabase)
    return db


def counts(database: Path) -> dict[str, Any]:
    with contextlib.closing(sqlite3.connect(database)) as conn:
        return {
            "resources": sorted(r[0] for r in conn.execute("SELECT name FROM resources")),
            "ok": conn.execute(
                "SELECT count(*) FROM audit_log WHERE action = 'OpenCreateTts' AND outcome = 'ok'"
            ).fetchone()[0],
            "refused": sorted(
                r[0]
                for r in conn.execute(
                    "SELECT outcome FROM audit_log WHERE action = 'OpenCreateTts' AND outcome != 'ok'"
                )
            ),
            "deliveries": sorted(r[0] for r in conn.execute("SELECT resource_key FROM webhook_deliveries")),
            "keys": sorted(r[0] for r in conn.execute("SELECT resource_key FROM resources")),
            "answers": conn.execute(
                "SELECT count(*) FROM idempotency_tokens WHERE result IS NOT NULL"
            ).fetchone()[0],
        }


def test_one_batch_with_refusals_makes_each_acknowledged_change_exactly_once(tmp_path: Path) -> None:
    """Twelve creates released together, under a quota of 5: duplicates of one ClientToken, a
    token reused with other parameters, and more creations than the quota allows."""
    database = tmp_path / "data" / "vmsres.db"

    async def run() -> tuple[list[tuple[int, dict[str, Any]]], int, int]:
        async with application(tmp_path / "data", database, max_resources=5) as app:
            db = sqlite_of(app)
            bodies: list[dict[str, Any]] = [
                {"Name": f"gc-{i}", "TtsTemplateContent": "hello #name#", "ClientToken": f"tok-{i}"}
                for i in range(8)
            ]
            # The same request twice more (answered once), and tok-1 with other parameters.
            bodies += [dict(bodies[0]), dict(bodies[0])]
            bodies.append({"Name": "gc-other", "TtsTemplateContent": "hi", "ClientToken": "tok-1"})
            bodies += [{"Name": f"gc-plain-{i}", "TtsTemplateContent": "hi"} for i in range(2)]
            answers = await asyncio.gather(*(call(app, "OpenCreateTts", b) for b in bodies))
            return answers, db.batches, db.batched_units

    answers, batches, units = asyncio.run(run())
    assert units > batches, "the creates did not share a commit"
    ok = [body for status, body in answers if status == 200]
    codes = [body["ResponseMetadata"]["Error"]["Code"] for status, body in answers if status != 200]
    # tok-0's three copies carry one answer; 5 resources exist in all, the quota.
    keys = {body["Result"]["ResourceKey"] for body in ok}
    assert len(keys) == 5
    assert answers[8][1]["Result"] == answers[9][1]["Result"] == answers[0][1]["Result"]
    assert sorted(set(codes)) == ["IdempotentParameterMismatch", "QuotaExceeded"]
    assert codes.count("IdempotentParameterMismatch") == 1
    assert len(ok) + len(codes) == 13
    stored = counts(database)
    assert sorted(stored["keys"]) == sorted(keys)
    # One "ok" row per acknowledged request (the two replays of tok-0 included), one event per change.
    assert stored["ok"] == len(ok) == 7
    assert stored["deliveries"] == sorted(keys)
    assert len(stored["refused"]) == len(codes)
    # A token's answer is kept exactly when its change was made (tok-0 once for three requests).
    token_keys = {answers[i][1]["Result"]["ResourceKey"] for i in range(8) if answers[i][0] == 200}
    assert stored["answers"] == len(token_keys)


def test_a_failed_commit_fails_every_request_of_its_batch_and_stores_none(
    tmp_path: Path,
    small_disk: Path,  # noqa: F811  (the fixture imported above)
) -> None:
    database = small_disk / "vmsres.db"

    async def run() -> None:
        async with application(tmp_path / "data", database) as app:
            db = sqlite_of(app)
            status, _ = await call(app, "OpenCreateTts", {"Name": "before", "TtsTemplateContent": "hi"})
            assert status == 200
            # An empty write-ahead log, so the batch's COMMIT needs new space on the full disk.
            with contextlib.closing(sqlite3.connect(database)) as conn:
                assert conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
            filler = small_disk / "filler"
            fill(filler)
            batches, units = db.batches, db.batched_units
            answers = await asyncio.gather(
                *(
                    call(app, "OpenCreateTts", {"Name": f"full-{i}", "TtsTemplateContent": "hi"})
                    for i in range(10)
                )
            )
            assert db.batched_units - units > db.batches - batches, "the creates did not share a commit"
            assert [status for status, _ in answers] == [507] * 10, answers
            assert {body["ResponseMetadata"]["Error"]["Code"] for _, body in answers} == {
                "InsufficientStorage"
            }
            filler.unlink()
            status, _ = await call(app, "OpenCreateTts", {"Name": "after", "TtsTemplateContent": "hi"})
            assert status == 200

    asyncio.run(run())
    stored = counts(database)
    assert stored["resources"] == ["after", "before"]
    assert stored["ok"] == 2
    assert len(stored["deliveries"]) == 2


def test_a_batch_waiting_for_a_lock_held_elsewhere_fails_whole_with_503(tmp_path: Path) -> None:
    database = tmp_path / "data" / "vmsres.db"

    async def run() -> None:
        async with application(tmp_path / "data", database) as app:
            status, _ = await call(app, "OpenCreateTts", {"Name": "before", "TtsTemplateContent": "hi"})
            assert status == 200
            holder = sqlite3.connect(database, isolation_level=None)
            try:
                holder.execute("BEGIN EXCLUSIVE")
                answers = await asyncio.gather(
                    *(
                        call(app, "OpenCreateTts", {"Name": f"locked-{i}", "TtsTemplateContent": "hi"})
                        for i in range(6)
                    ),
                    # Reads go on while the writes wait (the loop is not blocked by the wait).
                    call(app, "QueryOpenGetResource", {"Type": 1}),
                )
            finally:
                holder.execute("ROLLBACK")
                holder.close()
            *writes, read = answers
            assert read[0] == 200 and read[1]["Result"]["Total"] == 1
            assert [status for status, _ in writes] == [503] * 6
            assert {body["ResponseMetadata"]["Error"]["Code"] for _, body in writes} == {"ServiceUnavailable"}
            status, _ = await call(app, "OpenCreateTts", {"Name": "after", "TtsTemplateContent": "hi"})
            assert status == 200

    asyncio.run(run())
    assert counts(database)["resources"] == ["after", "before"]


def test_reads_never_see_a_batch_before_its_commit(tmp_path: Path) -> None:
    """A listing that runs while a batch is open (after its units, before its COMMIT) answers
    from committed data only, so it can never show a resource whose create then fails."""
    database = tmp_path / "data" / "vmsres.db"

    async def run() -> None:
        async with application(tmp_path / "data", database) as app:
            db = sqlite_of(app)

            async def listing() -> tuple[bool, int]:
                # Released with the creates, after them: their units have run, their COMMIT not.
                open_batch = db._batch is not None
                status, body = await call(app, "QueryOpenGetResource", {"Type": 1})
                assert status == 200
                return open_batch, body["Result"]["Total"]

            creates = [
                call(app, "OpenCreateTts", {"Name": f"r-{i}", "TtsTemplateContent": "hi"}) for i in range(20)
            ]
            *created, (open_batch, total) = await asyncio.gather(*creates, listing())
            assert [status for status, _ in created] == [200] * 20
            assert open_batch, "the listing did not run while the batch was open"
            assert total == 0
            status, body = await call(app, "QueryOpenGetResource", {"Type": 1})
            assert status == 200
            assert body["Result"]["Total"] == 20

    asyncio.run(run())


def test_reads_of_every_kind_open_no_batch(tmp_path: Path) -> None:
    """Listings (keywords of every length: their statements include UNIONs) run on the reading
    connection: they neither wait for the write lock nor cost a COMMIT."""
    database = tmp_path / "data" / "vmsres.db"

    async def run() -> None:
        async with application(tmp_path / "data", database) as app:
            db = sqlite_of(app)
            status, _ = await call(app, "OpenCreateTts", {"Name": "会员到期通知", "TtsTemplateContent": "hi"})
            assert status == 200
            batches = db.batches
            for keyword in ("", "通", "通知", "会员到期"):
                body: dict[str, Any] = {"Type": 1, "Keyword": keyword} if keyword else {"Type": 1}
                status, answer = await call(app, "QueryOpenGetResource", body)
                assert status == 200 and answer["Result"]["Total"] == 1, answer
                status, _ = await call(app, "QueryUsableResource", {"Type": 1})
                assert status == 200
            assert db.batches == batches

    asyncio.run(run())


def test_a_batch_is_answered_after_its_wal_is_synced_off_the_loop(tmp_path: Path) -> None:
    """The COMMIT only appends to the WAL (synchronous=NORMAL, so the write lock is held briefly);
    the worker then syncs the WAL file on a thread before it answers the batch's requests, and a
    listing made meanwhile sees all of the batch or none of it."""
    database = tmp_path / "data" / "vmsres.db"

    async def run() -> None:
        async with application(tmp_path / "data", database) as app:
            db = sqlite_of(app)
            normal = 1
            assert db._writer.execute("PRAGMA synchronous").fetchone()[0] == normal

            async def listing_during_sync() -> tuple[int, int]:
                for _ in range(10_000):
                    if db._syncs:
                        break
                    await asyncio.sleep(0)
                else:
                    raise AssertionError("no WAL sync ran off the event loop")
                status, body = await call(app, "QueryOpenGetResource", {"Type": 1})
                return status, body["Result"]["Total"]

            creates = [
                call(app, "OpenCreateTts", {"Name": f"d-{i}", "TtsTemplateContent": "hi"}) for i in range(10)
            ]
            *created, (status, total) = await asyncio.gather(*creates, listing_during_sync())
            assert [s for s, _ in created] == [200] * 10
            assert status == 200 and total in (0, 10)
            assert db._wal_fd is not None
            status, body = await call(app, "QueryOpenGetResource", {"Type": 1})
            assert body["Result"]["Total"] == 10

    asyncio.run(run())


def test_a_failed_unit_is_answered_after_its_batch_commits(tmp_path: Path) -> None:
    """Ten first asks for one deployment-wide secret, in one batch: one insert wins, nine fail on
    its UNIQUE row before it is committed. Each loser reads the winner's value back on the reading
    connection, so it must not be answered before the batch commits; all ten agree on one value."""
    database = tmp_path / "data" / "vmsres.db"

    async def run() -> None:
        async with application(tmp_path / "data", database) as app:
            secrets = app.services.shared_secrets
            values = await asyncio.gather(*(secrets.get("first-asked-together", 8) for _ in range(10)))
            assert len(set(values)) == 1, values
            assert len(values[0]) == 16 and int(values[0], 16) >= 0
            assert await secrets.get("first-asked-together", 8) == values[0]

    asyncio.run(run())
