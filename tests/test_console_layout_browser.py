"""The console's layout and lost-work flows in headless Chromium: every page at 390 px without
sideways scrolling, the sticky bar never over the current item, the header's focus ring contrast,
a review form half filled when the session ends, a failed login keeping ``next``, the go-to box
and the All types search.

Uses the browser helpers of tests/test_console_browser.py (skips without Chromium, fails under CI).
Screenshots at 1280 and 390 px land in test-artifacts/console/ (docs/img has copies).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.audio import write_wav
from tests.console_support import TOKEN, console_server
from tests.servers import RunningServer, skip_unless_ci
from tests.test_console_browser import (
    _browser_problem,
    click_and_load,
    css,
    screenshot,
    visible,
    wait,
)
from tests.test_console_operators_browser import _new_driver
from tests.wire_client import signed_request
from vmsres.client import Client

PHONE = (390, 844)
DESK = (1280, 900)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    skip_unless_ci(_browser_problem(), "browser")
    driver = _new_driver(tmp_path_factory.mktemp("chromium-layout"))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = console_server(tmp_path_factory.mktemp("console-layout"))
    yield running
    running.stop()


class Queue:
    """A dozen TTS templates and a recording waiting for review, all named with one tag."""

    def __init__(self, server: RunningServer, tmp: Path) -> None:
        self.tag = uuid.uuid4().hex[:6]
        self.tts_keys = [
            signed_request(
                server,
                "OpenCreateTts",
                {"Name": f"layout-{self.tag}-{n:02d}", "TtsTemplateContent": f"您好 #name#，第 {n} 条通知。"},
            ).json()["Result"]["ResourceKey"]
            for n in range(12)
        ]
        with Client(server.access_key, server.secret_key, endpoint=server.url) as client:
            wav = write_wav(tmp / f"layout-{self.tag}-recording.wav", seconds=1)
            self.audio_key = client.upload(wav).resource_key


@pytest.fixture(scope="module")
def queue(server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Queue:
    return Queue(server, tmp_path_factory.mktemp("layout-audio"))


def viewport(driver: Any, size: tuple[int, int]) -> None:
    """Lay pages out as a phone (or a desk) of exactly this many CSS pixels."""
    width, height = size
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
    )


def sideways_overflow(driver: Any) -> tuple[int, int]:
    return tuple(driver.execute_script("return [document.documentElement.scrollWidth, window.innerWidth];"))


def in_view(driver: Any, selector: str) -> bool:
    return bool(
        driver.execute_script(
            "var r = document.querySelector(arguments[0]).getBoundingClientRect();"
            "return r.width > 0 && r.left >= 0 && r.right <= window.innerWidth;",
            selector,
        )
    )


def contrast(first: str, second: str) -> float:
    """WCAG 2 contrast ratio of two computed CSS colours (``rgb(...)`` or ``rgba(...)``)."""

    def luminance(colour: str) -> float:
        channels = [float(c) / 255 for c in colour[colour.index("(") + 1 : colour.index(")")].split(",")[:3]]
        linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    light, dark = sorted((luminance(first), luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_contrast_formula() -> None:
    assert contrast("rgb(0, 0, 0)", "rgb(255, 255, 255)") == pytest.approx(21.0)
    # The ring this replaces: the page's blue on the header's navy.
    assert contrast("rgb(11, 87, 208)", "rgb(20, 35, 60)") < 3


def test_a_failed_login_keeps_next_in_the_browser(browser: Any, server: RunningServer, queue: Queue) -> None:
    viewport(browser, PHONE)
    browser.get(server.url + f"/console/resources?type=&keyword={queue.tag}")
    token = wait(browser, visible("#token"), "no login form")
    assert sideways_overflow(browser)[0] <= sideways_overflow(browser)[1]
    screenshot(browser, "layout-login-390")
    token.send_keys("wrong-" + TOKEN)
    click_and_load(browser, css(browser, "#login"))
    assert "not an operator token" in wait(browser, visible("#error"), "no error").text
    css(browser, "#token").send_keys(TOKEN)
    click_and_load(browser, css(browser, "#login"))
    wait(browser, visible("#results-table"), "the search did not open after the second try")
    assert browser.current_url.endswith(f"/console/resources?type=&keyword={queue.tag}")


def test_all_types_search_and_csv_link(browser: Any, server: RunningServer, queue: Queue) -> None:
    viewport(browser, DESK)
    browser.get(server.url + "/console/resources")
    wait(browser, visible("#s-keyword"), "no search form").send_keys(queue.tag)
    from selenium.webdriver.support.ui import Select

    Select(css(browser, "#s-type")).select_by_visible_text("All types")
    click_and_load(browser, css(browser, "#search"))
    table = wait(browser, visible("#results-table"), "no results across types").text
    assert "13 found" in css(browser, "#total").text
    assert "audio" in table and "TTS" in table
    assert f"keyword={queue.tag}" in css(browser, "#csv").get_attribute("href")
    screenshot(browser, "layout-resources-1280")


def test_go_to_a_resource_key_from_the_header(browser: Any, server: RunningServer, queue: Queue) -> None:
    viewport(browser, DESK)
    browser.get(server.url + "/console/review")
    wait(browser, visible("#goto-key"), "no go-to box").send_keys(queue.audio_key.upper())
    click_and_load(browser, css(browser, "#goto"))
    assert browser.current_url.endswith(f"/console/resources/{queue.audio_key}")
    assert queue.audio_key in css(browser, ".facts").text
    css(browser, "#goto-key").send_keys("f" * 32)
    click_and_load(browser, css(browser, "#goto"))
    assert f"No resource has the ResourceKey {'f' * 32}." in css(browser, "main").text


def test_every_page_fits_390_px(browser: Any, server: RunningServer, queue: Queue) -> None:
    viewport(browser, PHONE)
    pages = {
        "review": "/console/review",
        "resources": f"/console/resources?type=&keyword={queue.tag}",
        "resource": f"/console/resources/{queue.tts_keys[0]}",
        "accounts": "/console/accounts",
        "operators": "/console/operators",
        "error": "/console/goto?key=nonsense",
    }
    for name, path in pages.items():
        browser.get(server.url + path)
        wait(browser, visible("main h1"), f"the {name} page did not load")
        width, inner = sideways_overflow(browser)
        assert inner == PHONE[0]
        assert width <= inner, f"the {name} page scrolls sideways at 390 px: {width} > {inner}"
        if name == "error":
            continue  # an error page shows no header: it may be for someone not logged in
        assert in_view(browser, "#logout"), f"Log out is cut off on the {name} page"
        assert in_view(browser, "#goto-key"), f"the go-to box is cut off on the {name} page"
        if name in ("review", "resources"):
            screenshot(browser, f"layout-{name}-390")


def test_header_focus_ring_has_3_to_1_contrast(browser: Any, server: RunningServer, queue: Queue) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    viewport(browser, DESK)
    browser.get(server.url + "/console/review")
    wait(browser, visible("#review-form"), "no queue")
    # Keyboard focus (what :focus-visible is for): the skip link first, then the first section link.
    ActionChains(browser).send_keys(Keys.TAB, Keys.TAB).perform()
    style = browser.execute_script(
        "var el = document.activeElement, s = getComputedStyle(el);"
        "return [el.closest('header') !== null, s.outlineStyle, s.outlineColor,"
        " getComputedStyle(document.querySelector('header.top')).backgroundColor];"
    )
    in_header, outline_style, outline, background = style
    assert in_header and outline_style == "solid"
    assert contrast(outline, background) >= 3, (outline, background)
    for selector in ("#goto-key", "#logout"):
        browser.execute_script("document.querySelector(arguments[0]).focus();", selector)
        ring = browser.execute_script("return getComputedStyle(document.activeElement).outlineColor;")
        assert contrast(ring, background) >= 3, (selector, ring, background)


def test_the_sticky_bar_never_covers_the_current_item(
    browser: Any, server: RunningServer, queue: Queue
) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    for size in (PHONE, DESK):
        viewport(browser, size)
        browser.get(server.url + "/console/review")
        wait(browser, visible("#review-form"), "no queue")
        count = len(browser.find_elements("css selector", ".queue .item"))
        assert count >= 13
        for key in ["j"] * count + ["k"] * count:
            ActionChains(browser).send_keys(key).perform()
            covered = browser.execute_script(
                "var item = document.querySelector('.item.current').getBoundingClientRect();"
                "var bar = document.querySelector('.bulk').getBoundingClientRect();"
                "return [item.top, bar.bottom, item.bottom, window.innerHeight];"
            )
            item_top, bar_bottom, item_bottom, height = covered
            assert item_top >= bar_bottom, f"at {size} the bar covers the current item ({key}): {covered}"
            assert item_bottom <= height + 1 or item_top <= bar_bottom + 16, covered


def test_a_half_filled_review_survives_the_session_ending(
    browser: Any, server: RunningServer, queue: Queue
) -> None:
    viewport(browser, DESK)
    key = queue.tts_keys[3]
    browser.get(server.url + "/console/review")
    wait(browser, visible(f"#pick-{key}"), "the item is not queued").click()
    css(browser, "#reason").send_keys("half a reason")
    screenshot(browser, "layout-review-1280")
    # The session ends while the form is half filled: logging out in another tab ends it
    # server-side (and drops the cookie), exactly as an expiry does.
    review_tab = browser.current_window_handle
    browser.switch_to.new_window("tab")
    browser.get(server.url + "/console/review")
    click_and_load(browser, wait(browser, visible("#logout"), "no logout in the second tab"))
    browser.close()
    browser.switch_to.window(review_tab)

    click_and_load(browser, css(browser, "#reject"))
    notice = wait(browser, visible("#expired"), "no message that the session expired").text
    assert notice == "Your session expired; log in to continue — your selection and reason are kept."
    state = signed_request(server, "QueryOpenGetResource", {"Type": 1, "Keyword": key}).json()
    assert state["Result"]["Records"][0]["State"] == 0, "the rejection was carried out without a session"
    css(browser, "#token").send_keys(TOKEN)
    click_and_load(browser, css(browser, "#login"))
    # Back on the review page, the selection and reason as they were; nothing decided yet.
    assert wait(browser, visible(f"#pick-{key}"), "the review page did not come back").is_selected()
    assert css(browser, "#reason").get_attribute("value") == "half a reason"
    picked = [
        box.get_attribute("value")
        for box in browser.find_elements("css selector", "input[name=keys]:checked")
    ]
    assert picked == [key]
    state = signed_request(server, "QueryOpenGetResource", {"Type": 1, "Keyword": key}).json()
    assert state["Result"]["Records"][0]["State"] == 0
    # The reviewer finishes the job.
    click_and_load(browser, css(browser, "#reject"))
    assert "1 of 1 decided" in wait(browser, visible("#results"), "no results").text
