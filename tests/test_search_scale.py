"""The scaled listing (trigger-kept counts, trigram indexes, deferred join) answers exactly what
a plain scan of the table would, on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import official_vms_service
from tests.servers import RunningServer, start_server

NAMES = [
    "会员到期通知",
    "订单通知 Order",
    "ORDER shipped",
    'say "hi" 100%',
    "a_b_c reminder",
    "通知",
    "x",
    "物流通知二号",
    "Straße 50% off",
]


@pytest.fixture(params=["cached", "uncached"])
def manual_server(
    tmp_path: Path, database_url: str | None, request: pytest.FixtureRequest
) -> Iterator[RunningServer]:
    """With the per-worker caches (match lists, answers) and without them (every request runs
    the count and page statements), so both paths are held to the full scan."""
    extra = [] if request.param == "cached" else ["--search-cache-mb", "0"]
    running = start_server(tmp_path / "data", ["--review", "manual", *extra], database_url=database_url)
    yield running
    running.stop()


def _scan(server: RunningServer, type_: int, state: int | None, keyword: str) -> list[str]:
    """The definition, as a full scan in Python over every row of the table."""
    rows = server.sql(
        "SELECT resource_key, name, state, created_at, id FROM resources WHERE type = :t", {"t": type_}
    )
    folded = keyword.casefold()
    matches = [
        r
        for r in rows
        if (state is None or r.state == state)
        and (not keyword or r.resource_key == folded or folded in r.name.casefold())
    ]
    matches.sort(key=lambda r: (r.created_at, r.id), reverse=True)
    return [r.resource_key for r in matches]


def _listed(vms: Any, type_: int, state: int | None, keyword: str, limit: int) -> tuple[list[str], int]:
    keys: list[str] = []
    offset = 0
    while True:
        body: dict[str, Any] = {"Type": type_, "Keyword": keyword, "Limit": limit, "Offset": offset}
        if state is not None:
            body["State"] = state
        result = vms.query_open_get_resource(body)["Result"]
        keys += [r["ResourceKey"] for r in result["Records"]]
        offset += limit
        if offset >= result["Total"]:
            return keys, result["Total"]


def test_totals_and_pages_match_a_full_scan_through_writes(manual_server: RunningServer) -> None:
    vms = official_vms_service(manual_server)
    keys = [
        vms.create_tts({"Name": name, "TtsTemplateContent": "hi"})["Result"]["ResourceKey"]
        for name in NAMES * 2
    ]
    manual_server.cli("review", "approve", keys[0])
    manual_server.cli("review", "approve", keys[1])
    manual_server.cli("review", "reject", keys[1], "--reason", "changed my mind", "--force")
    vms.delete_resource({"ResourceKey": keys[2]})
    vms.open_update_resource({"ResourceKey": keys[3], "Name": "通知 renamed ORDER"})
    vms.open_update_resource({"ResourceKey": keys[4], "Name": "plain"})

    keywords = [
        "",
        "通知",
        "通",
        "order",
        "ORDER SHIP",
        '"hi"',
        "100%",
        "a_b",
        "_",
        "%",
        "x",
        "ß",
        "SS",
        "0%",
        '"h',
        "知二",
        keys[5],
        "renamed",
    ]
    vms = official_vms_service(manual_server)
    for state in (None, 0, 1, 2):
        for keyword in keywords:
            expected = _scan(manual_server, 1, state, keyword)
            listed, total = _listed(vms, 1, state, keyword, limit=3)
            assert (listed, total) == (expected, len(expected)), (state, keyword)
    counts = manual_server.sql("SELECT sum(n) FROM resource_counts")[0][0]
    assert counts == len(NAMES) * 2 - 1


def _grams(folded: str) -> set[str]:
    return {folded[i : i + k] for k in (1, 2) for i in range(len(folded) - k + 1)}


def test_gram_rows_follow_inserts_renames_state_changes_and_deletes(manual_server: RunningServer) -> None:
    """resource_grams holds exactly the 1- and 2-grams of every live row, with its State."""
    vms = official_vms_service(manual_server)
    keys = [
        vms.create_tts({"Name": name, "TtsTemplateContent": "hi"})["Result"]["ResourceKey"] for name in NAMES
    ]
    manual_server.cli("review", "approve", keys[0])
    manual_server.cli("review", "reject", keys[1], "--reason", "no")
    vms.open_update_resource({"ResourceKey": keys[2], "Name": "ÖL und Öl"})
    vms.delete_resource({"ResourceKey": keys[3]})

    rows = manual_server.sql("SELECT id, account_id, type, state, created_at, name_folded FROM resources")
    expected = {
        (r.account_id, r.type, gram, r.created_at, r.id, r.state)
        for r in rows
        for gram in _grams(r.name_folded)
    }
    stored = {
        tuple(g)
        for g in manual_server.sql("SELECT account_id, type, gram, created_at, id, state FROM resource_grams")
    }
    assert stored == expected
