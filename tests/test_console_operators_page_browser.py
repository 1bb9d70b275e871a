"""The Operators page and login throttling in headless Chromium.

An admin and a reviewer at two desks (two browsers with their own cookies): the admin creates the
reviewer (the token shown once), the reviewer is refused the page and does not see its link, a
new token and a disabled operator end the reviewer's session at their next click, a refused form
keeps its input, a half-filled form survives the session ending, deletion asks first. Then a
login throttled after too many wrong tokens shows its message in the page. The page is measured
at 390 px; screenshots at 1280 and 390 px land in test-artifacts/console/ (docs/img has copies).

Uses the browser helpers of tests/test_console_browser.py (skips without Chromium, fails under CI).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.console_support import TOKEN, console_server
from tests.servers import RunningServer, skip_unless_ci
from tests.test_console_browser import (
    _browser_problem,
    click_and_load,
    css,
    log_in,
    screenshot,
    visible,
    wait,
    wait_until_replaced,
)
from tests.test_console_layout_browser import DESK, PHONE, in_view, sideways_overflow, viewport
from tests.test_console_operators_browser import _new_driver
from vmsres.server.service.logins import FAILURES_PER_TOKEN


@pytest.fixture(scope="module")
def desks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any]]:
    """The admin's browser and the reviewer's."""
    skip_unless_ci(_browser_problem(), "browser")
    admin = _new_driver(tmp_path_factory.mktemp("chromium-admin"))
    try:
        reviewer = _new_driver(tmp_path_factory.mktemp("chromium-reviewer"))
        try:
            yield admin, reviewer
        finally:
            reviewer.quit()
    finally:
        admin.quit()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = console_server(tmp_path_factory.mktemp("console-operators-page"))
    yield running
    running.stop()


def create(driver: Any, name: str, role: str) -> None:
    from selenium.webdriver.support.ui import Select

    field = css(driver, "#o-name")
    field.clear()
    field.send_keys(name)
    Select(css(driver, "#o-role")).select_by_value(role)
    click_and_load(driver, css(driver, "#create-operator-button"))


def act(driver: Any, label: str, accept: bool = True) -> None:
    """Click an operator's button that asks first; answer the question."""
    from selenium.webdriver.support import expected_conditions as ec

    old_page = driver.find_element("tag name", "html")
    css(driver, f"button[aria-label='{label}']").click()
    dialog = wait(driver, ec.alert_is_present(), f"{label} asked nothing")
    if not accept:
        dialog.dismiss()
        return
    dialog.accept()
    wait_until_replaced(driver, old_page, f"{label} did not load a page")


def row_text(driver: Any, name: str) -> str:
    return str(css(driver, f"#operator-{name}").text)


def on_login_page(driver: Any) -> bool:
    return "/console/login" in driver.current_url and bool(driver.find_elements("css selector", "#token"))


def test_an_admin_manages_a_reviewer_who_works_at_another_desk(
    desks: tuple[Any, Any], server: RunningServer
) -> None:
    admin, reviewer = desks
    viewport(admin, DESK)
    log_in(admin, server, TOKEN)
    click_and_load(admin, css(admin, "nav a[href='/console/operators']"))
    wait(admin, visible("#create-operator"), "the operators page did not open")
    assert admin.find_elements("css selector", "#no-operators")

    create(admin, "rita", "reviewer")
    token = wait(admin, visible("#issued-token"), "the new token was not shown").text
    assert token.startswith("vmsop_") and "rita (reviewer)" in css(admin, "#issued-name").text
    assert row_text(admin, "rita").startswith("rita reviewer yes")
    assert token not in admin.current_url
    screenshot(admin, "operators-1280")
    # Shown once: a reload shows the list without it.
    admin.refresh()
    wait(admin, visible("#operators"), "the list did not come back")
    assert not admin.find_elements("css selector", "#issued") and token not in admin.page_source

    # Refused forms come back with their input and the reason.
    create(admin, "rita", "admin")
    assert "operator rita exists already" in wait(admin, visible("#error"), "no error").text
    assert css(admin, "#o-name").get_attribute("value") == "rita"
    assert css(admin, "#o-role").get_attribute("value") == "admin"
    create(admin, "no spaces please", "reviewer")
    assert "an operator name is 1-64 letters" in wait(admin, visible("#error"), "no error").text
    assert css(admin, "#o-name").get_attribute("value") == "no spaces please"

    # The reviewer works at the other desk and is refused the page and its link.
    log_in(reviewer, server, token)
    wait(reviewer, visible("#review-form"), "the reviewer did not get in")
    assert not reviewer.find_elements("css selector", "nav a[href='/console/operators']")
    reviewer.get(server.url + "/console/operators")
    assert "rita is a reviewer: operators are for admins" in css(reviewer, "main").text
    assert not reviewer.find_elements("css selector", "#create-operator")
    screenshot(reviewer, "reviewer-refused-operators")

    # A new token ends the reviewer's session at their next click; the new token lets them in.
    act(admin, "New token for rita")
    new_token = wait(admin, visible("#issued-token"), "the new token was not shown").text
    assert new_token != token and new_token.startswith("vmsop_")
    reviewer.get(server.url + "/console/review")
    assert on_login_page(reviewer), "the old session outlived a new token"
    log_in(reviewer, server, token)
    assert "not an operator token" in wait(reviewer, visible("#error"), "the old token got in").text
    log_in(reviewer, server, new_token)
    wait(reviewer, visible("#review-form"), "the new token did not let the reviewer in")

    # Disabled: the session ends at once and the token stops working until enabled again.
    act(admin, "Disable rita")
    assert "Operator rita disabled; their sessions have ended." in css(admin, "#done").text
    assert row_text(admin, "rita").startswith("rita reviewer no")
    reviewer.get(server.url + "/console/review")
    assert on_login_page(reviewer), "a disabled operator's session went on"
    log_in(reviewer, server, new_token)
    assert wait(reviewer, visible("#error"), "a disabled operator got in")
    click_and_load(admin, css(admin, "button[aria-label='Enable rita']"))
    assert row_text(admin, "rita").startswith("rita reviewer yes")
    log_in(reviewer, server, new_token)
    wait(reviewer, visible("#review-form"), "an enabled operator did not get in")

    # Deleting asks first: answered no, nothing happens.
    act(admin, "Delete rita", accept=False)
    assert row_text(admin, "rita").startswith("rita")
    act(admin, "Delete rita")
    assert "Operator rita deleted" in css(admin, "#done").text
    assert not admin.find_elements("css selector", "#operator-rita")
    reviewer.get(server.url + "/console/review")
    assert on_login_page(reviewer), "a deleted operator's session went on"


def test_a_half_filled_new_operator_survives_the_session_ending(
    desks: tuple[Any, Any], server: RunningServer
) -> None:
    from selenium.webdriver.support.ui import Select

    admin, _ = desks
    viewport(admin, DESK)
    admin.get(server.url + "/console/operators")
    wait(admin, visible("#o-name"), "no operators page").send_keys("half-made")
    Select(css(admin, "#o-role")).select_by_value("admin")
    # The session ends (a logout in another tab ends it server-side, as an expiry does).
    page = admin.current_window_handle
    admin.switch_to.new_window("tab")
    admin.get(server.url + "/console/review")
    click_and_load(admin, wait(admin, visible("#logout"), "no logout in the second tab"))
    admin.close()
    admin.switch_to.window(page)

    click_and_load(admin, css(admin, "#create-operator-button"))
    notice = wait(admin, visible("#expired"), "no message that the session expired").text
    assert notice == "Your session expired; log in to continue — the new operator's name and role are kept."
    css(admin, "#token").send_keys(TOKEN)
    click_and_load(admin, css(admin, "#login"))
    assert wait(admin, visible("#o-name"), "the form did not come back").get_attribute("value") == "half-made"
    assert css(admin, "#o-role").get_attribute("value") == "admin"
    assert not admin.find_elements("css selector", "#operator-half-made"), "created without a session"


def test_the_operators_page_fits_390_px(desks: tuple[Any, Any], server: RunningServer) -> None:
    admin, _ = desks
    viewport(admin, DESK)
    admin.get(server.url + "/console/operators")
    wait(admin, visible("#create-operator"), "no operators page")
    for name, role in (
        ("ana.lee@example", "reviewer"),
        ("ben_admin", "admin"),
        ("chloe-night-shift", "reviewer"),
    ):
        create(admin, name, role)
    viewport(admin, PHONE)
    admin.get(server.url + "/console/operators")
    wait(admin, visible("#operators"), "no operators list")
    width, inner = sideways_overflow(admin)
    assert inner == PHONE[0]
    assert width <= inner, f"the operators page scrolls sideways at 390 px: {width} > {inner}"
    assert in_view(admin, "#logout") and in_view(admin, "#create-operator-button")
    # Each operator is a card: nothing hides in a box that scrolls sideways.
    for label in ("Disable chloe-night-shift", "New token for chloe-night-shift", "Delete chloe-night-shift"):
        assert in_view(admin, f"button[aria-label='{label}']"), f"{label} is out of view at 390 px"
    screenshot(admin, "operators-390")
    viewport(admin, DESK)


def test_a_throttled_login_says_so_in_the_page(desks: tuple[Any, Any], tmp_path: Path) -> None:
    # A server of its own: the lock-out covers this address, which the other tests log in from.
    running = console_server(tmp_path / "throttled")
    _, driver = desks
    try:
        viewport(driver, PHONE)
        for _ in range(FAILURES_PER_TOKEN):
            log_in(driver, running, "vmsop_not-a-token-0123456789abcdef")
            assert "not an operator token" in wait(driver, visible("#error"), "no error").text
        log_in(driver, running, "vmsop_not-a-token-0123456789abcdef")
        heading = wait(driver, visible("main h1"), "no page after the throttled login").text
        assert heading == "Too many failed logins"
        text = css(driver, "main").text
        assert "Too many failed logins from here or with this token; try again later." in text
        width, inner = sideways_overflow(driver)
        assert width <= inner, f"the throttled page scrolls sideways at 390 px: {width} > {inner}"
        screenshot(driver, "login-throttled-390")
        # Another token from this address still gets in (5 of the address's 20 are used).
        log_in(driver, running, TOKEN)
        wait(driver, visible("#review-form"), "the right token was refused")
    finally:
        viewport(driver, DESK)
        running.stop()
