"""The console's review queue in headless Chromium with 299 resources waiting across two
accounts: the true total and paging, filters and counts, per-item decisions on the queue and on
the resource page, preset reject reasons, and bulk decisions above --bulk-confirm-above asked
before they are done (enforced by the server, not the page's script).

Uses the browser helpers of tests/test_console_browser.py (skips without Chromium, fails under CI).
The tests run in order on one server and one browser session: each leaves the queue as the next
expects it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.console_support import TOKEN, console_server, csrf_of, login
from tests.servers import RunningServer, run_cli, skip_unless_ci
from tests.test_console_browser import (
    _browser_problem,
    admin_get,
    click_and_load,
    css,
    log_in,
    screenshot,
    visible,
    wait,
)
from tests.test_console_layout_browser import PHONE, sideways_overflow, viewport
from tests.test_console_operators_browser import _new_driver

ACME, BETA = "acme", "beta"
WAITING = 299
CONFIRM_ABOVE = 5
REASONS = ["Contains a competitor's brand", "录音质量太差", "Name does not match the content"]


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    skip_unless_ci(_browser_problem(), "browser")
    driver = _new_driver(tmp_path_factory.mktemp("chromium-queue"))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("console-queue")
    reasons = data / "reasons.txt"
    reasons.write_text("# our reasons\n" + "\n".join(REASONS) + "\n\n", encoding="utf-8")
    running = console_server(
        data / "data", "--bulk-confirm-above", str(CONFIRM_ABOVE), "--reject-reasons", str(reasons)
    )
    yield running
    running.stop()


def admin(server: RunningServer, method: str, path: str, **kwargs: Any) -> Any:
    response = httpx.request(
        method,
        f"{server.url}/admin/v1{path}",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=60,
        **kwargs,
    )
    assert response.status_code < 300, response.text
    return response.json()


@pytest.fixture(scope="module")
def names(server: RunningServer) -> list[str]:
    """299 waiting, oldest first: two of every three acme's (TTS), the third beta's (IVR)."""
    start = int(time.time()) - 3 * 86400
    resources = []
    for i in range(WAITING):
        account = BETA if i % 3 == 2 else ACME
        resources.append(
            {
                "ResourceKey": uuid.uuid4().hex,
                "Account": account,
                "Type": 2 if account == BETA else 1,
                "State": 0,
                "Name": f"{account} item {i:03d}",
                "CreateTime": start + i,
            }
        )
    admin(server, "POST", "/fixtures", json=resources)
    return [r["Name"] for r in resources]


def state_of(server: RunningServer, key: str) -> dict[str, Any]:
    return dict(admin_get(server, f"/resources/{key}"))


def shown_keys(browser: Any) -> list[str]:
    return [item.get_attribute("data-key") for item in browser.find_elements("css selector", ".queue .item")]


def key_named(server: RunningServer, name: str) -> str:
    found = admin(server, "GET", "/review/queue/page", params={"name": name})["Items"]
    assert len(found) == 1, found
    return str(found[0]["ResourceKey"])


def test_the_true_total_and_paging_to_item_250(browser: Any, server: RunningServer, names: list[str]) -> None:
    log_in(browser, server, TOKEN)
    wait(browser, visible("#review-form"), "the queue did not open")
    assert css(browser, "#total").text.startswith(f"{WAITING} waiting; showing 1–50")
    counts = css(browser, "#counts").text
    assert "acme 200" in counts and "beta 99" in counts and "TTS 200" in counts and "IVR 99" in counts
    for _ in range(4):
        click_and_load(browser, css(browser, "#next"))
    assert "Page 5 of 6" in css(browser, "#pager").text
    last = css(browser, ".queue .item:last-child")
    assert "#250 " in last.text and names[249] in last.text
    assert css(browser, "#total").text.startswith(f"{WAITING} waiting; showing 201–250")
    # The keyboard pages too: n to page 6 (items 251-299), b back.
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(browser).send_keys("n").perform()
    wait(browser, lambda d: d.current_url.endswith("page=6"), "n did not page")
    assert "Page 6 of 6" in wait(browser, visible("#pager"), "no pager").text
    assert len(shown_keys(browser)) == WAITING - 250
    ActionChains(browser).send_keys("b").perform()
    wait(browser, lambda d: d.current_url.endswith("page=5"), "b did not page back")


def test_filter_by_account_and_name_then_by_a_count(
    browser: Any, server: RunningServer, names: list[str]
) -> None:
    from selenium.webdriver.support.ui import Select

    viewport(browser, (1280, 900))
    browser.get(server.url + "/console/review")
    Select(wait(browser, visible("#f-account"), "no filters")).select_by_visible_text(BETA)
    css(browser, "#f-name").send_keys("ITEM 1")
    click_and_load(browser, css(browser, "#filter"))
    expected = [n for n in names if n.startswith(BETA) and "item 1" in n]
    assert css(browser, "#total").text.startswith(f"{len(expected)} waiting for these filters (of {WAITING}")
    shown = [e.text for e in browser.find_elements("css selector", ".queue .item label strong")]
    assert shown == expected
    # The whole queue's counts stay; clicking acme's keeps the name filter, changes the account.
    click_and_load(browser, css(browser, '#counts a[data-account="acme"]'))
    expected = [n for n in names if n.startswith(ACME) and "item 1" in n]
    assert css(browser, "#total").text.startswith(f"{len(expected)} waiting for these filters")
    assert "name=ITEM+1" in browser.current_url and "account=acme" in browser.current_url
    # Newest first within the filter, across a page boundary the filters stay.
    Select(css(browser, "#f-sort")).select_by_visible_text("Newest first")
    click_and_load(browser, css(browser, "#filter"))
    shown = [e.text for e in browser.find_elements("css selector", ".queue .item label strong")]
    assert shown == expected[::-1][:50]
    click_and_load(browser, css(browser, "#next"))
    shown = [e.text for e in browser.find_elements("css selector", ".queue .item label strong")]
    assert shown == expected[::-1][50:100]
    assert "sort=newest" in browser.current_url and "account=acme" in browser.current_url


def test_approve_one_item_from_the_queue(browser: Any, server: RunningServer, names: list[str]) -> None:
    browser.get(server.url + "/console/review?account=beta")
    key = shown_keys(browser)[1]
    click_and_load(browser, css(browser, f"#approve-{key}"))
    results = wait(browser, visible("#results"), "no results after approving one").text
    assert "1 of 1 decided" in results and key in results and "now approved" in results
    assert state_of(server, key)["State"] == 1
    assert key not in shown_keys(browser) and "account=beta" in browser.current_url
    assert css(browser, "#total").text.startswith("98 waiting for these filters")


def test_a_preset_reason_on_the_resource_page_becomes_the_reject_reason(
    browser: Any, server: RunningServer, names: list[str]
) -> None:
    from selenium.webdriver.support.ui import Select

    key = key_named(server, names[10])
    browser.get(server.url + f"/console/resources/{key}")
    Select(
        wait(browser, visible("#preset"), "no decision form on a resource under review")
    ).select_by_visible_text(REASONS[1])
    click_and_load(browser, css(browser, "#reject"))
    assert "now rejected" in wait(browser, visible("#decided"), "no outcome").text.lower()
    record = state_of(server, key)
    assert record["State"] == 2 and record["RejectReason"] == REASONS[1]
    assert not browser.find_elements("css selector", "#decision"), "a decided resource still offers decisions"
    # Preset and free text together: "preset: text".
    other = key_named(server, names[13])
    browser.get(server.url + f"/console/resources/{other}")
    Select(wait(browser, visible("#preset"), "no form")).select_by_visible_text(REASONS[0])
    css(browser, "#reason").send_keys("the logo at 0:03")
    click_and_load(browser, css(browser, "#reject"))
    assert state_of(server, other)["RejectReason"] == f"{REASONS[0]}: the logo at 0:03"


def test_approve_on_the_resource_page_and_already_decided(
    browser: Any, server: RunningServer, names: list[str]
) -> None:
    key = key_named(server, names[16])
    browser.get(server.url + f"/console/resources/{key}")
    click_and_load(browser, wait(browser, visible("#approve"), "no Approve on the resource page"))
    assert "now approved" in css(browser, "#decided").text.lower()
    assert state_of(server, key)["State"] == 1
    # Another reviewer decides while this page is open: the click changes nothing and says so.
    late = key_named(server, names[19])
    browser.get(server.url + f"/console/resources/{late}")
    wait(browser, visible("#approve"), "no form")
    admin(
        server, "POST", "/review/reject", json={"ResourceKeys": [late], "Reason": "first", "Reviewer": "zoe"}
    )
    click_and_load(browser, css(browser, "#approve"))
    said = css(browser, "#decided").text
    assert "Already decided by reviewer:zoe at" in said and "Nothing was changed" in said
    assert state_of(server, late)["State"] == 2


def test_a_bulk_decision_above_the_threshold_waits_for_a_confirmation(
    browser: Any, server: RunningServer, names: list[str]
) -> None:
    browser.get(server.url + "/console/review?account=acme")
    wait(browser, visible("#select-all"), "no Select all").click()
    picked = shown_keys(browser)
    assert len(picked) == 50 > CONFIRM_ABOVE
    click_and_load(browser, css(browser, "#approve"))
    assert wait(browser, visible("#question"), "no confirmation").text == "Approve 50 resources?"
    screenshot(browser, "queue-confirm-1280")
    # Nothing is decided while the question is open.
    assert all(state_of(server, key)["State"] == 0 for key in picked[::7])
    click_and_load(browser, css(browser, "#cancel"))
    assert "account=acme" in browser.current_url and shown_keys(browser) == picked
    # Asked again, and confirmed.
    css(browser, "#select-all").click()
    click_and_load(browser, css(browser, "#approve"))
    click_and_load(browser, wait(browser, visible("#confirm"), "no Confirm"))
    assert "50 of 50 decided" in wait(browser, visible("#results"), "no results").text
    assert all(state_of(server, key)["State"] == 1 for key in picked)
    assert "account=acme" in browser.current_url


def test_a_bulk_decision_at_or_below_the_threshold_is_done_at_once(
    browser: Any, server: RunningServer, names: list[str]
) -> None:
    browser.get(server.url + "/console/review?account=acme")
    picked = shown_keys(browser)[:CONFIRM_ABOVE]
    for key in picked:
        wait(browser, visible(f"#pick-{key}"), "queue not shown").click()
    css(browser, "#reason").send_keys("five at once")
    click_and_load(browser, css(browser, "#reject"))
    assert (
        f"{CONFIRM_ABOVE} of {CONFIRM_ABOVE} decided" in wait(browser, visible("#results"), "no results").text
    )
    assert all(state_of(server, key)["RejectReason"] == "five at once" for key in picked)


def test_the_server_refuses_an_unconfirmed_bulk_decision(server: RunningServer, names: list[str]) -> None:
    """The script is not what asks: a POST of more keys without confirm=yes decides nothing."""
    client, _ = login(server)
    keys = [
        item["ResourceKey"]
        for item in admin(server, "GET", "/review/queue/page", params={"limit": 6})["Items"]
    ]
    csrf = csrf_of(client.get("/console/review").text)
    asked = client.post(
        "/console/review?account=acme&page=2", data={"csrf": csrf, "decision": "approve", "keys": keys}
    )
    assert asked.status_code == 303
    location = asked.headers["location"]
    assert location.startswith("/console/review/confirm?account=acme&page=2&decision=approve&keys=")
    assert all(state_of(server, key)["State"] == 0 for key in keys)
    question = client.get(location)
    assert "Approve 6 resources?" in question.text
    # A preset that is not in the list is refused, not stored.
    refused = client.post(
        "/console/review",
        data={"csrf": csrf, "decision": "reject", "keys": keys[0], "preset": "made up", "confirm": "yes"},
    )
    assert refused.status_code == 400 and state_of(server, keys[0])["State"] == 0
    done = client.post(
        "/console/review?account=acme&page=2",
        data={"csrf": csrf, "decision": "approve", "keys": keys, "confirm": "yes"},
    )
    assert done.status_code == 303 and done.headers["location"].startswith(
        "/console/review?account=acme&page=2&decided="
    )
    assert all(state_of(server, key)["State"] == 1 for key in keys)


def test_the_new_pages_fit_390_px(
    browser: Any, server: RunningServer, names: list[str], tmp_path: Path
) -> None:
    viewport(browser, PHONE)
    key = key_named(server, names[-1])
    six = [
        item["ResourceKey"]
        for item in admin(server, "GET", "/review/queue/page", params={"limit": 6})["Items"]
    ]
    pages = {
        "filtered queue": "/console/review?account=beta&name=item&older_than=1d&sort=name&page=2",
        "queue past the end": "/console/review?page=99",
        "resource under review": f"/console/resources/{key}",
        "confirmation": f"/console/review/confirm?decision=reject&preset={REASONS[1]}&reason=x&keys="
        + ",".join(six),
    }
    for name, path in pages.items():
        browser.get(server.url + path)
        wait(browser, visible("main h1"), f"the {name} page did not load")
        width, inner = sideways_overflow(browser)
        assert inner == PHONE[0]
        assert width <= inner, f"the {name} page scrolls sideways at 390 px: {width} > {inner}"
        screenshot(browser, "queue-" + name.replace(" ", "-") + "-390")
    assert css(browser, "#question").text == "Reject 6 resources?"
    assert css(browser, "#confirm-reason").text == f"{REASONS[1]}: x"


def test_a_resource_decision_after_the_session_ended_keeps_the_reason(
    server: RunningServer, names: list[str]
) -> None:
    key = key_named(server, names[-4])
    client, _ = login(server)
    page = client.get(f"/console/resources/{key}")
    assert 'id="decision"' in page.text
    csrf = csrf_of(page.text)
    client.post("/console/logout", data={"csrf": csrf})
    sent = client.post(
        f"/console/resources/{key}/decide",
        data={"csrf": csrf, "decision": "reject", "preset": REASONS[2], "reason": "half written"},
    )
    assert sent.status_code == 303 and "expired=1" in sent.headers["location"]
    assert "your reason is kept" in client.get(sent.headers["location"]).text
    assert state_of(server, key)["State"] == 0
    login_page = client.get("/console/login")
    client.post("/console/login", data={"token": TOKEN, "csrf": csrf_of(login_page.text)})
    again = client.get(f"/console/resources/{key}").text
    assert 'value="half written"' in again and f"<option selected>{REASONS[2]}</option>" in again
    assert state_of(server, key)["State"] == 0


def test_an_unreadable_or_empty_reasons_file_stops_serve(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing yet\n\n", encoding="utf-8")
    for path, said in ((tmp_path / "missing.txt", "No such file"), (empty, "lists no reason")):
        ran = run_cli("serve", "--data-dir", str(tmp_path / "d"), "--reject-reasons", str(path), check=False)
        assert ran.returncode == 2 and "--reject-reasons" in ran.stderr and said in ran.stderr, ran.stderr
