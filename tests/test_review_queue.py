"""The review queue's pages (GET /admin/v1/review/queue/page, `vmsres review page`): the exact
total, paging, every filter, the sorts, counts per account and Type, and bad input, on a real
server over HTTP with 300+ resources under review across two accounts."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.servers import RunningServer, run_cli, start_embedded_server
from tests.test_review_workflow import TOKEN, Admin

# Created this long ago, one second apart: item i is (BASE_AGE - i) seconds old.
BASE_AGE = 10 * 86400
ACME_ITEMS = 180
BETA_ITEMS = 121


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, module_database_url: str | None
) -> Iterator[RunningServer]:
    running = start_embedded_server(
        tmp_path_factory.mktemp("queue"),
        database_url=module_database_url,
        serve_args=["--admin-token", TOKEN],
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def queue(server: RunningServer) -> dict[str, Any]:
    """Two accounts' resources under review (acme: TTS then audio, beta: IVR), each a second
    apart, interleaved in time; plus decided resources that no count may include."""
    suffix = uuid.uuid4().hex[:6]
    acme, beta = f"acme-{suffix}", f"beta-{suffix}"
    start = int(time.time()) - BASE_AGE
    resources: list[dict[str, Any]] = []
    in_acme = 0
    for i in range(ACME_ITEMS + BETA_ITEMS):
        # Three of every five to acme until it has its share: the two accounts interleave in time.
        mine = i % 5 < 3 and in_acme < ACME_ITEMS
        in_acme += mine
        resources.append(
            {
                "ResourceKey": uuid.uuid4().hex,
                "Account": acme if mine else beta,
                # acme: TTS and audio alternately; beta: IVR.
                "Type": (1 if i % 2 == 0 else 0) if mine else 2,
                "State": 0,
                "Name": f"item {i:03d}",
                "CreateTime": start + i,
            }
        )
    decided = [
        {"Account": acme, "Name": "item decided", "State": 1, "Type": 1, "CreateTime": start - 5},
        {"Account": beta, "Name": "item rejected", "State": 2, "Type": 2, "RejectReason": "x"},
    ]
    Admin(server)("POST", "/fixtures", json=[*resources, *decided])
    return {"acme": acme, "beta": beta, "resources": resources, "start": start}


def page(server: RunningServer, expect: int = 200, **params: Any) -> Any:
    return Admin(server)("GET", "/review/queue/page", expect, params=params)


def ours(queue: dict[str, Any], answer: dict[str, Any]) -> list[str]:
    names = {r["ResourceKey"]: r["Name"] for r in queue["resources"]}
    return [names[item["ResourceKey"]] for item in answer["Items"] if item["ResourceKey"] in names]


def test_the_total_is_exact_and_paging_reaches_every_item_once(
    server: RunningServer, queue: dict[str, Any]
) -> None:
    acme = queue["acme"]
    first = page(server, account=acme, limit=200)
    assert first["Total"] == ACME_ITEMS and len(first["Items"]) == 200 - 20
    seen: list[str] = []
    for offset in range(0, ACME_ITEMS + 50, 50):
        answer = page(server, account=acme, offset=offset, limit=50)
        assert answer["Total"] == ACME_ITEMS and answer["Offset"] == offset
        assert len(answer["Items"]) == max(0, min(50, ACME_ITEMS - offset))
        seen += [item["ResourceKey"] for item in answer["Items"]]
    expected = [r["ResourceKey"] for r in queue["resources"] if r["Account"] == acme]
    assert seen == expected  # oldest first, none twice, none skipped
    # The last item alone, and one past the end.
    assert [i["ResourceKey"] for i in page(server, account=acme, offset=ACME_ITEMS - 1)["Items"]] == [
        expected[-1]
    ]
    assert page(server, account=acme, offset=ACME_ITEMS)["Items"] == []


def test_the_whole_queue_is_counted_per_account_and_type_whatever_the_filters(
    server: RunningServer, queue: dict[str, Any]
) -> None:
    acme, beta = queue["acme"], queue["beta"]
    answer = page(server, account=beta, name="item 00")
    by_account = {c["Account"]: c["Count"] for c in answer["ByAccount"]}
    assert by_account[acme] == ACME_ITEMS and by_account[beta] == BETA_ITEMS
    acme_tts = sum(1 for r in queue["resources"] if r["Account"] == acme and r["Type"] == 1)
    by_type = {c["Type"]: c["Count"] for c in answer["ByType"]}
    assert by_type[1] >= acme_tts and by_type[2] >= BETA_ITEMS
    assert answer["QueueTotal"] == sum(by_account.values()) == sum(by_type.values())
    assert answer["QueueTotal"] >= ACME_ITEMS + BETA_ITEMS
    # Only beta's names starting "item 00" (items 000-009 that beta holds).
    expected = [r["Name"] for r in queue["resources"] if r["Account"] == beta and r["Name"] < "item 010"]
    assert ours(queue, answer) == expected and answer["Total"] == len(expected)


def test_every_filter_narrows_the_total(server: RunningServer, queue: dict[str, Any]) -> None:
    acme, resources, start = queue["acme"], queue["resources"], queue["start"]
    audio = [r["Name"] for r in resources if r["Account"] == acme and r["Type"] == 0]
    answer = page(server, account=acme, type=0, limit=1000)
    assert answer["Total"] == len(audio) and ours(queue, answer) == audio
    # A name substring, any case, and % and _ are literal.
    answer = page(server, account=acme, name="ITEM 1", limit=1000)
    assert ours(queue, answer) == [
        r["Name"] for r in resources if r["Account"] == acme and "item 1" in r["Name"]
    ]
    assert page(server, account=acme, name="%")["Total"] == 0
    assert page(server, account=acme, name="item_")["Total"] == 0
    # Submit times: both ends included.
    answer = page(server, account=acme, created_after=start + 10, created_before=start + 20, limit=1000)
    assert ours(queue, answer) == [
        r["Name"] for r in resources if r["Account"] == acme and start + 10 <= r["CreateTime"] <= start + 20
    ]
    # Older than: item i is BASE_AGE - i seconds old when the fixture is loaded, a little older now.
    assert page(server, account=acme, older_than=f"{BASE_AGE // 60 - 10}m")["Total"] == ACME_ITEMS
    assert page(server, account=acme, older_than=f"{BASE_AGE // 86400 + 1}d")["Total"] == 0
    older = page(server, account=acme, older_than=f"{BASE_AGE - 100}", limit=1000)
    at_least = [r["Name"] for r in resources if r["Account"] == acme and r["CreateTime"] <= start + 100]
    at_most = [r["Name"] for r in resources if r["Account"] == acme and r["CreateTime"] <= start + 150]
    assert at_least == ours(queue, older)[: len(at_least)] and older["Total"] <= len(at_most)
    # An account with nothing waiting, or none at all: zero, not an error.
    assert page(server, account="no-such-account-here")["Total"] == 0


def test_sort_orders(server: RunningServer, queue: dict[str, Any]) -> None:
    acme, beta, resources = queue["acme"], queue["beta"], queue["resources"]
    mine = [r["Name"] for r in resources if r["Account"] == acme]
    assert ours(queue, page(server, account=acme, sort="newest", limit=1000)) == mine[::-1]
    assert ours(queue, page(server, account=acme, sort="name", limit=1000)) == sorted(mine)
    both = page(server, name="item", sort="account", limit=1000)
    accounts = [item["Account"] for item in both["Items"] if item["Account"] in (acme, beta)]
    assert accounts == sorted(accounts) and len(accounts) == ACME_ITEMS + BETA_ITEMS
    # Within an account, oldest first.
    assert ours(queue, both)[:ACME_ITEMS] == mine


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"offset": -1}, "offset"),
        ({"offset": 1_000_001}, "offset"),
        ({"type": 7}, "type"),
        ({"sort": "random"}, "sort"),
        ({"older_than": "ten days"}, "older_than"),
        ({"older_than": "5w"}, "older_than"),
        ({"created_after": -1}, "created_after"),
        ({"created_before": 10**30}, "created_before"),
    ],
)
def test_bad_input_is_400_naming_the_value(server: RunningServer, params: dict[str, Any], named: str) -> None:
    detail = page(server, 400, **params)["detail"]
    assert named in detail


def test_a_reviewer_may_read_the_page_and_the_cli_prints_it(
    server: RunningServer, queue: dict[str, Any]
) -> None:
    name = f"rev-{uuid.uuid4().hex[:6]}"
    created = Admin(server)("POST", "/operators", 201, json={"Name": name, "Role": "reviewer"})
    reviewer = Admin(server, created["Token"])
    assert reviewer("GET", "/review/queue/page", params={"account": queue["acme"]})["Total"] == ACME_ITEMS
    remote = ["--endpoint", server.url, "--admin-token", created["Token"]]
    out = run_cli("review", "page", "--account", queue["acme"], "--limit", "3", *remote).stdout
    assert out.startswith(f"{ACME_ITEMS} waiting match (showing 1-3, sort oldest)")
    assert f"{queue['acme']} {ACME_ITEMS}" in out
    data = json.loads(
        run_cli("review", "page", "--account", queue["acme"], "--offset", "179", "--json", *remote).stdout
    )
    assert data["Total"] == ACME_ITEMS and len(data["Items"]) == 1
