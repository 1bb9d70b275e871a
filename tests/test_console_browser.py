"""The console in headless Chromium against a real server: login, review, playback, search, keys.

Screenshots land in test-artifacts/console/. Without Chromium these tests skip, except under CI
(CI set), where a missing browser is a failure: CI must be able to run them.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.audio import write_wav
from tests.console_support import TOKEN, console_server
from tests.servers import RunningServer, skip_unless_ci
from vmsres.client import Client

CHROMIUM = os.environ.get("VMSRES_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("VMSRES_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "console"
WAIT_SECONDS = 20


def _browser_problem() -> str | None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not (os.path.exists(p) or shutil.which(p))]
    if missing:
        return f"not installed: {', '.join(missing)} (apt-get install chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    return None


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    skip_unless_ci(_browser_problem(), "browser")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--autoplay-policy=no-user-gesture-required",
        "--window-size=1280,900",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = console_server(tmp_path_factory.mktemp("console-browser"))
    yield running
    running.stop()


class Library:
    """What the tests put on the server through the wire API (policy manual: all of it waits)."""

    def __init__(self, server: RunningServer, tmp: Path) -> None:
        tag = uuid.uuid4().hex[:6]
        self.greeting = f"欢迎来电-{tag}"
        self.holiday = f"节日问候-{tag}"
        self.spam = f"promo-{tag}"
        with Client(server.access_key, server.secret_key, endpoint=server.url) as client:
            self.greeting_key = self._tts(client, self.greeting, "您好 #name#，欢迎致电。")
            self.holiday_key = self._tts(client, self.holiday, "#name# 节日快乐")
            self.spam_key = self._tts(client, self.spam, "Win a prize, #name#!")
            self.audio_key = client.upload(write_wav(tmp / f"jingle-{tag}.wav", seconds=2)).resource_key

    @staticmethod
    def _tts(client: Client, name: str, content: str) -> str:
        return str(client.call("OpenCreateTts", Name=name, TtsTemplateContent=content)["ResourceKey"])


@pytest.fixture(scope="module")
def library(server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Library:
    return Library(server, tmp_path_factory.mktemp("audio"))


def admin_get(server: RunningServer, path: str) -> Any:
    response = httpx.get(
        f"{server.url}/admin/v1{path}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
    )
    assert response.status_code == 200, response.text
    return response.json()


def wait(driver: Any, condition: Any, message: str) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT_SECONDS).until(condition, message)


def screenshot(driver: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def css(driver: Any, selector: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, selector)


def click_and_load(driver: Any, element: Any) -> None:
    """Click something that loads a new page, and wait until the old page is gone.

    Without this a wait for an element that both pages have (a results table, say) can find the
    old page's copy, which then goes stale under the test.
    """
    old_page = driver.find_element("tag name", "html")
    element.click()
    wait_until_replaced(driver, old_page, "the click did not load a new page")


def wait_until_replaced(driver: Any, old_page: Any, message: str) -> None:
    """Wait until `old_page` (the `html` element found before an action) is no longer shown."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

    def old_page_gone(_: Any) -> bool:
        try:
            old_page.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as error:
            # Chromium sometimes reports a node of a page already replaced this way instead.
            if "does not belong to the document" in str(error):
                return True
            raise
        return False

    wait(driver, old_page_gone, message)


def visible(selector: str) -> Any:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    return ec.visibility_of_element_located((By.CSS_SELECTOR, selector))


def log_in(driver: Any, server: RunningServer, token: str) -> None:
    driver.get(server.url + "/console/review")
    token_field = wait(driver, visible("#token"), "the login form did not appear")
    token_field.clear()
    token_field.send_keys(token)
    click_and_load(driver, css(driver, "#login"))


# The tests of this module run in order on one browser session: login first.


def test_login_refuses_a_wrong_token_then_accepts_the_right_one(
    browser: Any, server: RunningServer, library: Library
) -> None:
    log_in(browser, server, "wrong-" + TOKEN)
    error = wait(browser, visible("#error"), "no error for a wrong token")
    assert "not an operator token or the admin token" in error.text
    assert "/console/login" in browser.current_url
    screenshot(browser, "login")
    log_in(browser, server, TOKEN)
    wait(browser, visible("#review-form"), "the review queue did not open after logging in")
    assert browser.title.startswith("Review queue")
    cookie = browser.get_cookie("vmsres_console")
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"


def test_queue_shows_template_variables_and_plays_audio(
    browser: Any, server: RunningServer, library: Library
) -> None:
    browser.get(server.url + "/console/review")
    item = wait(browser, visible(f"#item-{library.greeting_key}"), "the TTS template is not queued")
    assert [m.text for m in item.find_elements("css selector", "mark.var")] == ["#name#"]
    audio_item = css(browser, f"#item-{library.audio_key}")
    screenshot(browser, "review")
    # Load each player and wait until the browser has decoded enough to know the duration.
    for kind, scope in (("original", audio_item), ("telephony", audio_item), ("preview", item)):
        player = scope.find_element("css selector", f"audio[data-kind={kind}]")
        browser.execute_script("arguments[0].preload = 'auto'; arguments[0].load();", player)
        wait(
            browser,
            lambda d, p=player: (
                d.execute_script(
                    "return arguments[0].error ? 'error ' + arguments[0].error.code"
                    " : (arguments[0].readyState >= 1 && arguments[0].duration > 0);",
                    p,
                )
                is True
            ),
            f"the {kind} audio did not load",
        )
        duration = browser.execute_script("return arguments[0].duration;", player)
        if kind != "preview":
            assert 1.5 < duration < 2.5, (kind, duration)


def test_the_resource_page_shows_duration_and_waveform_before_playing(
    browser: Any, server: RunningServer, library: Library
) -> None:
    browser.get(f"{server.url}/console/resources/{library.audio_key}")
    duration = wait(browser, visible("#duration"), "no duration on the resource page")
    player = css(browser, "audio[data-kind=original]")
    # Nothing was played or loaded (preload="none"): the duration comes from the server.
    assert browser.execute_script("return arguments[0].readyState;", player) == 0
    assert duration.text.startswith("0:02.0")
    assert css(browser, ".player .duration[data-kind=original]").text == "0:02.0"
    assert "Hz" in css(browser, "#format").text and "dBFS" in css(browser, "#levels").text
    # The waveform is an image of this origin: the console's CSP lets it load.
    waveform = wait(browser, visible("#waveform"), "no waveform")
    wait(
        browser,
        lambda d: d.execute_script(
            "return arguments[0].complete && arguments[0].naturalWidth > 0;", waveform
        ),
        "the waveform image did not load",
    )
    screenshot(browser, "resource-audio")


def test_the_tts_resource_page_shows_the_previews_duration_before_playing(
    browser: Any, server: RunningServer, library: Library
) -> None:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    browser.get(f"{server.url}/console/resources/{library.greeting_key}")
    shown = wait(browser, visible(".player .duration[data-kind=preview]"), "no duration for the preview")
    player = css(browser, "audio[data-kind=preview]")
    # Nothing loaded in the browser: the duration is the server's, of the preview it rendered.
    assert browser.execute_script("return arguments[0].readyState;", player) == 0
    minutes, seconds = shown.text.split(":")
    assert minutes == "0" and 0.3 < float(seconds) < 10, shown.text
    browser.execute_script("arguments[0].preload = 'auto'; arguments[0].load();", player)
    wait(
        browser,
        lambda d: d.execute_script(
            "return arguments[0].readyState >= 1 && arguments[0].duration > 0;", player
        ),
        "the preview did not load",
    )
    played = browser.execute_script("return arguments[0].duration;", player)
    assert abs(played - float(seconds)) <= 0.1, (played, shown.text)


def test_approve_one_from_the_queue(browser: Any, server: RunningServer, library: Library) -> None:
    browser.get(server.url + "/console/review")
    wait(browser, visible(f"#pick-{library.greeting_key}"), "queue not shown").click()
    click_and_load(browser, css(browser, "#approve"))
    results = wait(browser, visible("#results"), "no results after approving")
    assert library.greeting_key in results.text and "now approved" in results.text
    record = admin_get(server, f"/resources/{library.greeting_key}")
    assert record["State"] == 1 and record["ReviewedBy"] == "reviewer:admin"
    assert not browser.find_elements("css selector", f"#item-{library.greeting_key}")


def test_reject_many_with_a_reason(browser: Any, server: RunningServer, library: Library) -> None:
    browser.get(server.url + "/console/review")
    for key in (library.spam_key, library.holiday_key):
        wait(browser, visible(f"#pick-{key}"), "queue not shown").click()
    css(browser, "#reason").send_keys("营销内容 not allowed")
    click_and_load(browser, css(browser, "#reject"))
    results = wait(browser, visible("#results"), "no results after rejecting")
    assert "2 of 2 decided" in results.text
    for key in (library.spam_key, library.holiday_key):
        record = admin_get(server, f"/resources/{key}")
        assert record["State"] == 2 and record["RejectReason"] == "营销内容 not allowed"


def test_keyboard_shortcuts_approve_the_current_item(
    browser: Any, server: RunningServer, library: Library
) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    browser.get(server.url + "/console/review")
    wait(browser, visible(f"#item-{library.audio_key}"), "the audio is not queued")
    first = css(browser, ".queue .item").get_attribute("data-key")
    ActionChains(browser).send_keys("j").perform()
    wait(browser, lambda d: "current" in css(d, ".queue .item").get_attribute("class"), "j moved nowhere")
    ActionChains(browser).send_keys("a").perform()
    results = wait(browser, visible("#results"), "a did not approve")
    assert first in results.text
    assert admin_get(server, f"/resources/{first}")["State"] == 1


def test_search_with_a_chinese_keyword_and_open_the_details(
    browser: Any, server: RunningServer, library: Library
) -> None:
    browser.get(server.url + "/console/resources")
    keyword = wait(browser, visible("#s-keyword"), "no search form")
    keyword.send_keys("欢迎来电")
    click_and_load(browser, css(browser, "#search"))
    table = wait(browser, visible("#results-table"), "no results for a Chinese keyword")
    assert library.greeting in table.text
    assert library.holiday not in table.text
    assert "1 found" in css(browser, "#total").text
    screenshot(browser, "resources")
    click_and_load(browser, table.find_element("link text", library.greeting))
    trail = wait(browser, visible("#audit"), "no audit trail on the details page")
    assert "OpenCreateTts" in trail.text and "Approve" in trail.text
    screenshot(browser, "resource")


def test_create_a_key_shows_its_secret_once(browser: Any, server: RunningServer, library: Library) -> None:
    browser.get(server.url + "/console/accounts")
    click_and_load(browser, wait(browser, visible("#create-key-default"), "no create-key button"))
    wait(browser, visible("#secret"), "no secret after creating a key")
    access_key = css(browser, "#secret-ak").text
    secret_key = css(browser, "#secret-sk").text
    screenshot(browser, "accounts")
    with Client(access_key, secret_key, endpoint=server.url) as client:
        assert client.get_resource(library.greeting_key, 1).name == library.greeting
    browser.get(server.url + "/console/accounts")
    wait(browser, visible("#keys"), "keys table missing")
    assert access_key in css(browser, "#keys").text
    assert secret_key not in browser.page_source
    assert not browser.find_elements("css selector", "#secret")
