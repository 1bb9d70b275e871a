"""Operators in headless Chromium: two reviewers deciding the same resource in two browsers,
and a reviewer refused the accounts and keys page.

Uses the browser helpers of tests/test_console_browser.py (skips without Chromium, fails under CI).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.console_support import console_server
from tests.servers import RunningServer, run_cli, skip_unless_ci
from tests.test_console_browser import (
    _browser_problem,
    click_and_load,
    css,
    log_in,
    screenshot,
    visible,
    wait,
)
from tests.wire_client import signed_request


def _new_driver(profile: Path) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    from tests.test_console_browser import CHROMEDRIVER, CHROMIUM

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))


@pytest.fixture(scope="module")
def browsers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any]]:
    """Two browsers with their own cookies: two people at two desks."""
    skip_unless_ci(_browser_problem(), "browser")
    first = _new_driver(tmp_path_factory.mktemp("chromium-first"))
    try:
        second = _new_driver(tmp_path_factory.mktemp("chromium-second"))
        try:
            yield first, second
        finally:
            second.quit()
    finally:
        first.quit()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = console_server(tmp_path_factory.mktemp("console-operators"))
    yield running
    running.stop()


def operator_token(server: RunningServer, name: str) -> str:
    created = run_cli(*("operators", "create", name, "--role", "reviewer"), *server.store_args())
    (line,) = [line for line in created.stdout.splitlines() if line.startswith("Token: ")]
    return line.removeprefix("Token: ")


def test_two_reviewers_decide_the_same_resource(browsers: tuple[Any, Any], server: RunningServer) -> None:
    first, second = browsers
    created = signed_request(server, "OpenCreateTts", {"Name": "twice", "TtsTemplateContent": "您好"})
    key = created.json()["Result"]["ResourceKey"]
    log_in(first, server, operator_token(server, "ana"))
    log_in(second, server, operator_token(server, "ben"))
    # Both see the resource waiting.
    for driver in (first, second):
        driver.get(server.url + "/console/review")
        wait(driver, visible(f"#pick-{key}"), "the resource is not in the queue")
    assert "ana (reviewer)" in css(first, "#who").text and "ben (reviewer)" in css(second, "#who").text

    css(first, f"#pick-{key}").click()
    click_and_load(first, css(first, "#approve"))
    assert "now approved" in wait(first, visible("#results"), "no results for ana").text

    # Ben's page is stale: his rejection is refused and says who decided and when.
    css(second, f"#pick-{key}").click()
    css(second, "#reason").send_keys("too late")
    click_and_load(second, css(second, "#reject"))
    results = wait(second, visible("#results"), "no results for ben").text
    screenshot(second, "already-decided")
    assert "0 of 1 decided" in results
    assert "already decided by ana at " in results and ": approved" in results
    record = signed_request(server, "QueryOpenGetResource", {"Type": 1, "Keyword": key}).json()
    assert record["Result"]["Records"][0]["State"] == 1
    # A reload repeats the page, not the decision.
    second.refresh()
    assert "already decided by ana" in wait(second, visible("#results"), "no results").text


def test_a_reviewer_is_refused_the_accounts_page(browsers: tuple[Any, Any], server: RunningServer) -> None:
    _, second = browsers
    second.get(server.url + "/console/review")
    wait(second, visible("#review-form"), "the review queue did not open")
    assert not second.find_elements("css selector", "nav a[href='/console/accounts']")
    second.get(server.url + "/console/accounts")
    assert "accounts and keys are for admins" in second.page_source
    assert not second.find_elements("css selector", "#keys")
    screenshot(second, "reviewer-refused-accounts")
