"""The console's security over plain HTTP: login, sessions, CSRF, logout and expiry."""

from __future__ import annotations

import csv
import io
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.audio import write_wav
from tests.console_support import TOKEN, console_server, csrf_of, login
from tests.servers import RunningServer, start_server, wait_for
from tests.wire_client import signed_request
from vmsres.client import Client

_ADMIN = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = console_server(tmp_path_factory.mktemp("console-http"))
    yield running
    running.stop()


@pytest.mark.parametrize(
    "path",
    ["/console/review", "/console/resources?keyword=x", "/console/accounts", "/console/audio/abc/original"],
)
def test_no_session_redirects_to_login(server: RunningServer, path: str) -> None:
    response = httpx.get(server.url + path)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/console/login?next=%2Fconsole%2F")


def test_post_without_session_goes_to_login_and_changes_nothing(server: RunningServer) -> None:
    response = httpx.post(
        server.url + "/console/accounts", data={"action": "create-account", "name": "nosess"}
    )
    assert response.status_code == 303
    client, _ = login(server)
    assert "nosess" not in client.get("/console/accounts").text


def test_wrong_token_refused_right_token_gives_a_strict_http_only_cookie(server: RunningServer) -> None:
    client, refused = login(server, token="not-" + TOKEN)
    assert refused.status_code == 401
    assert "not an operator token or the admin token" in refused.text
    assert "vmsres_console=" not in refused.headers.get("set-cookie", "")
    assert client.get("/console/review").status_code == 303

    client, accepted = login(server)
    assert accepted.status_code == 303 and accepted.headers["location"] == "/console/review"
    cookie = next(c for c in accepted.headers.get_list("set-cookie") if c.startswith("vmsres_console="))
    attributes = {part.strip().lower() for part in cookie.split(";")}
    assert "httponly" in attributes and "samesite=strict" in attributes and "path=/console" in attributes
    page = client.get("/console/review")
    assert page.status_code == 200 and "Review queue" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


def test_login_form_without_its_csrf_token_is_refused(server: RunningServer) -> None:
    client = httpx.Client(base_url=server.url)
    client.get("/console/login")
    assert client.post("/console/login", data={"token": TOKEN}).status_code == 403
    # A token from another browser's form does not fit this browser's login cookie.
    other = httpx.Client(base_url=server.url)
    foreign = csrf_of(other.get("/console/login").text)
    assert client.post("/console/login", data={"token": TOKEN, "csrf": foreign}).status_code == 403


def test_post_without_or_with_a_wrong_csrf_token_is_403(server: RunningServer) -> None:
    client, _ = login(server)
    form = {"action": "create-account", "name": "csrf-victim"}
    assert client.post("/console/accounts", data=form).status_code == 403
    assert client.post("/console/accounts", data={**form, "csrf": "0" * 64}).status_code == 403
    # Another session's token is not this session's.
    other, _ = login(server)
    foreign = csrf_of(other.get("/console/accounts").text)
    assert client.post("/console/accounts", data={**form, "csrf": foreign}).status_code == 403
    assert client.post("/console/review", data={"decision": "approve", "keys": "x"}).status_code == 403
    assert client.post("/console/logout").status_code == 403
    assert "csrf-victim" not in client.get("/console/accounts").text
    # The same request with the page's token goes through: the refusals above were the CSRF check.
    token = csrf_of(client.get("/console/accounts").text)
    done = client.post("/console/accounts", data={**form, "csrf": token})
    # Post/Redirect/Get: the change answers with a redirect to the page that shows it.
    assert done.status_code == 303 and done.headers["location"] == "/console/accounts"
    assert "csrf-victim" in client.get("/console/accounts").text


def test_cross_origin_post_is_refused_even_with_the_token(server: RunningServer) -> None:
    client, _ = login(server)
    token = csrf_of(client.get("/console/accounts").text)
    response = client.post(
        "/console/accounts",
        data={"action": "create-account", "name": "xorigin", "csrf": token},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403


def test_logout_invalidates_the_session_cookie(server: RunningServer) -> None:
    client, _ = login(server)
    cookie = client.cookies["vmsres_console"]
    token = csrf_of(client.get("/console/review").text)
    response = client.post("/console/logout", data={"csrf": token})
    assert response.status_code == 303 and response.headers["location"] == "/console/login"
    # A copy of the cookie kept from before the logout is worthless now.
    replay = httpx.get(server.url + "/console/review", cookies={"vmsres_console": cookie})
    assert replay.status_code == 303 and "/console/login" in replay.headers["location"]


def test_tampered_cookie_is_refused(server: RunningServer) -> None:
    client, _ = login(server)
    cookie = client.cookies["vmsres_console"]
    payload, mac = cookie.split(".")
    forged = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB") + "." + mac
    response = httpx.get(server.url + "/console/review", cookies={"vmsres_console": forged})
    assert response.status_code == 303


def test_expired_session_is_refused(tmp_path: Path) -> None:
    running = console_server(tmp_path / "d", env={"VMSRES_CONSOLE_SESSION_SECONDS": "2"})
    try:
        client, response = login(running)
        assert response.status_code == 303
        issued = time.monotonic()
        assert client.get("/console/review").status_code == 200
        # Wait on the condition itself (the server refusing the cookie), with a deadline.
        wait_for(
            lambda: client.get("/console/review").status_code == 303,
            timeout=30,
            what="the server to refuse the session cookie (the session outlived its lifetime)",
        )
        assert time.monotonic() - issued >= 1, "refused before it could have expired"
    finally:
        running.stop()


def test_no_console_without_an_admin_token(tmp_path: Path) -> None:
    running = start_server(tmp_path / "d")
    try:
        assert httpx.get(running.url + "/console/login").status_code == 404
    finally:
        running.stop()


def test_details_show_the_audit_trail_and_webhook_deliveries_and_escape_names(server: RunningServer) -> None:
    from vmsres.client import Client

    admin = httpx.Client(base_url=server.url + "/admin/v1", headers={"Authorization": f"Bearer {TOKEN}"})
    hook = admin.put("/accounts/default/webhook", json={"Url": "http://127.0.0.1:9/console-hook"})
    assert hook.status_code == 200, hook.text
    name = "<script>alert(1)</script>问候"
    with Client(server.access_key, server.secret_key, endpoint=server.url) as vms:
        key = str(vms.call("OpenCreateTts", Name=name, TtsTemplateContent="您好 #who#")["ResourceKey"])
    admin.delete("/accounts/default/webhook")
    client, _ = login(server)
    page = client.get(f"/console/resources/{key}")
    assert page.status_code == 200
    assert "<script>alert(1)</script>" not in page.text and "&lt;script&gt;" in page.text
    assert '<mark class="var">#who#</mark>' in page.text
    audit = page.text.split('id="audit"', 1)[1].split("</table>", 1)[0]
    assert "OpenCreateTts" in audit
    deliveries = page.text.split('id="deliveries"', 1)[1].split("</table>", 1)[0]
    assert "resource.created" in deliveries and "console-hook" in deliveries
    assert client.get("/console/resources/" + "0" * 32).status_code == 404
    # A reviewer sees the record and its trail, not the deliveries: their URLs are the admin's
    # (the admin API refuses a reviewer the webhook and its deliveries alike).
    made = admin.post("/operators", json={"Name": f"rev-{uuid.uuid4().hex[:6]}", "Role": "reviewer"})
    reviewer, _ = login(server, made.json()["Token"])
    page = reviewer.get(f"/console/resources/{key}")
    assert page.status_code == 200 and 'id="audit"' in page.text
    assert 'id="deliveries"' not in page.text and "console-hook" not in page.text


def test_a_decision_redirects_and_a_stale_one_shows_who_decided(server: RunningServer) -> None:
    created = signed_request(server, "OpenCreateTts", {"Name": "prg", "TtsTemplateContent": "hi"})
    key = created.json()["Result"]["ResourceKey"]
    client, _ = login(server)
    token = csrf_of(client.get("/console/review").text)
    approved = client.post("/console/review", data={"csrf": token, "decision": "approve", "keys": key})
    # Post/Redirect/Get: the page that shows the outcome is a GET, so a reload decides nothing.
    assert approved.status_code == 303 and f"decided={key}" in approved.headers["location"]
    page = client.get(approved.headers["location"])
    assert "1 of 1 decided" in page.text and "now approved" in page.text
    # The same decision from a page still showing the resource as waiting: refused, not applied.
    stale = client.post(
        "/console/review", data={"csrf": token, "decision": "reject", "keys": key, "reason": "late"}
    )
    assert stale.status_code == 303 and f"refused={key}" in stale.headers["location"]
    page = client.get(stale.headers["location"])
    assert "0 of 1 decided" in page.text and "already decided</strong> by reviewer:admin" in page.text
    record = signed_request(server, "QueryOpenGetResource", {"Type": 1, "Keyword": key}).json()
    assert record["Result"]["Records"][0]["State"] == 1


def test_a_failed_login_keeps_next(server: RunningServer) -> None:
    client = httpx.Client(base_url=server.url, timeout=30)
    page = client.get("/console/resources?keyword=kept")
    assert page.status_code == 303
    form = client.get(page.headers["location"])
    assert 'name="next" value="/console/resources?keyword=kept"' in form.text
    refused = client.post(
        "/console/login",
        data={
            "token": "wrong-" + TOKEN,
            "csrf": csrf_of(form.text),
            "next": "/console/resources?keyword=kept",
        },
    )
    assert refused.status_code == 401
    assert 'name="next" value="/console/resources?keyword=kept"' in refused.text
    accepted = client.post(
        "/console/login",
        data={"token": TOKEN, "csrf": csrf_of(refused.text), "next": "/console/resources?keyword=kept"},
    )
    assert accepted.status_code == 303 and accepted.headers["location"] == "/console/resources?keyword=kept"


def test_a_review_post_after_logout_keeps_the_form_for_after_login(server: RunningServer) -> None:
    created = signed_request(
        server, "OpenCreateTts", {"Name": f"kept-{uuid.uuid4().hex[:6]}", "TtsTemplateContent": "hi"}
    )
    key = created.json()["Result"]["ResourceKey"]
    client, _ = login(server)
    csrf = csrf_of(client.get("/console/review").text)
    # The session ends server-side (as when it expires) while the form is half filled.
    session_cookie = client.cookies["vmsres_console"]
    assert client.post("/console/logout", data={"csrf": csrf}).status_code == 303
    client.cookies.set("vmsres_console", session_cookie, path="/console")
    sent = client.post(
        "/console/review?type=1",
        data={"csrf": csrf, "keys": key, "reason": "half written", "decision": "reject"},
    )
    assert sent.status_code == 303
    assert sent.headers["location"] == "/console/login?next=%2Fconsole%2Freview%3Ftype%3D1&expired=1"
    client.cookies.delete("vmsres_console")  # the browser's copy, which opens nothing now
    login_page = client.get(sent.headers["location"])
    assert "your selection and reason are kept" in login_page.text
    assert (
        signed_request(server, "QueryOpenGetResource", {"Type": 1, "Keyword": key}).json()["Result"][
            "Records"
        ][0]["State"]
        == 0
    )
    accepted = client.post(
        "/console/login",
        data={"token": TOKEN, "csrf": csrf_of(login_page.text), "next": "/console/review?type=1"},
    )
    assert accepted.headers["location"] == "/console/review?type=1"
    review = client.get("/console/review?type=1")
    assert f'id="pick-{key}" checked' in review.text and 'value="half written"' in review.text
    # Offered once: the next visit starts empty, and nothing was decided for the reviewer.
    assert 'value="half written"' not in client.get("/console/review?type=1").text
    assert (
        signed_request(server, "QueryOpenGetResource", {"Type": 1, "Keyword": key}).json()["Result"][
            "Records"
        ][0]["State"]
        == 0
    )


def test_a_refused_form_keeps_its_input(server: RunningServer) -> None:
    client, _ = login(server)
    csrf = csrf_of(client.get("/console/review").text)
    created = signed_request(
        server, "OpenCreateTts", {"Name": f"refused-{uuid.uuid4().hex[:6]}", "TtsTemplateContent": "hi"}
    )
    key = created.json()["Result"]["ResourceKey"]
    refused = client.post(
        "/console/review", data={"csrf": csrf, "keys": key, "reason": "", "decision": "reject"}
    )
    page = client.get(refused.headers["location"])
    assert "A rejection needs a reason." in page.text and f'id="pick-{key}" checked' in page.text
    client.post("/console/accounts", data={"csrf": csrf, "action": "create-account", "name": "dup-name"})
    again = client.post(
        "/console/accounts",
        data={"csrf": csrf, "action": "create-account", "name": "dup-name", "policy": "auto"},
    )
    page = client.get(again.headers["location"])
    assert page.status_code == 400
    assert 'value="dup-name"' in page.text and '<option value="auto" selected>' in page.text


def test_goto_a_resource_key(server: RunningServer) -> None:
    created = signed_request(
        server, "OpenCreateTts", {"Name": f"goto-{uuid.uuid4().hex[:6]}", "TtsTemplateContent": "hi"}
    )
    key = created.json()["Result"]["ResourceKey"]
    client, _ = login(server)
    found = client.get("/console/goto", params={"key": f"  {key.upper()} "})
    assert found.status_code == 303 and found.headers["location"] == f"/console/resources/{key}"
    malformed = client.get("/console/goto", params={"key": "not-a-key"})
    assert malformed.status_code == 400 and "32 hexadecimal digits" in malformed.text
    unknown = client.get("/console/goto", params={"key": "0" * 32})
    assert unknown.status_code == 404 and f"No resource has the ResourceKey {'0' * 32}." in unknown.text


def test_csv_export_of_a_search_is_escaped_against_formulas(server: RunningServer, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    names = [f"={tag}+1", f"+{tag}", f"-{tag}", f"@{tag}", f'{tag}, "quoted"', f"{tag} 中文"]
    keys = {}
    for name in names:
        created = signed_request(server, "OpenCreateTts", {"Name": name, "TtsTemplateContent": "hi"})
        keys[created.json()["Result"]["ResourceKey"]] = name
    with Client(server.access_key, server.secret_key, endpoint=server.url) as sdk:
        audio_key = sdk.upload(write_wav(tmp_path / f"{tag}.wav")).resource_key
    client, _ = login(server)
    page = client.get("/console/resources", params={"type": "", "keyword": tag})
    assert f"{len(names) + 1} found" in page.text  # all types: the recording too
    assert 'href="/console/resources.csv?account=&amp;type=&amp;state=&amp;keyword=' + tag in page.text
    export = client.get(
        "/console/resources.csv", params={"account": "", "type": "", "state": "", "keyword": tag}
    )
    assert export.status_code == 200 and export.headers["content-type"] == "text/csv; charset=utf-8"
    assert "attachment" in export.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(export.content.decode("utf-8"))))
    assert rows[0] == ["ResourceKey", "Name", "Account", "Type", "State", "CreateTime", "Remark"]
    by_key = {row[0]: row for row in rows[1:]}
    assert set(by_key) == {*keys, audio_key}
    shown = {key: by_key[key][1] for key in keys}
    assert shown == {key: ("'" + name if name[0] in "=+-@" else name) for key, name in keys.items()}
    assert by_key[audio_key][3] != "TTS" and {by_key[k][3] for k in keys} == {"TTS"}
    # One type only: the recording is not in it.
    tts_only = client.get("/console/resources.csv", params={"type": "1", "keyword": tag})
    assert audio_key not in tts_only.text and all(key in tts_only.text for key in keys)


def test_a_new_account_form_sent_after_logout_comes_back_after_login(server: RunningServer) -> None:
    client, _ = login(server)
    csrf = csrf_of(client.get("/console/accounts").text)
    assert client.post("/console/logout", data={"csrf": csrf}).status_code == 303
    sent = client.post(
        "/console/accounts",
        data={"csrf": csrf, "action": "create-account", "name": "late-acct", "policy": "manual"},
    )
    assert sent.headers["location"] == "/console/login?next=%2Fconsole%2Faccounts&expired=1"
    login_page = client.get(sent.headers["location"])
    assert "the new account&#39;s name and policy are kept" in login_page.text
    client.post(
        "/console/login", data={"token": TOKEN, "csrf": csrf_of(login_page.text), "next": "/console/accounts"}
    )
    page = client.get("/console/accounts")
    assert 'value="late-acct"' in page.text and '<option value="manual" selected>' in page.text
    assert "<td>late-acct</td>" not in page.text  # offered, not created
    assert 'value="late-acct"' not in client.get("/console/accounts").text


def test_a_logout_sent_after_the_session_ended_keeps_nothing(server: RunningServer) -> None:
    client, _ = login(server)
    csrf = csrf_of(client.get("/console/review").text)
    assert client.post("/console/logout", data={"csrf": csrf}).status_code == 303
    again = client.post("/console/logout", data={"csrf": csrf})
    assert again.headers["location"].endswith("&expired=1")
    assert "vmsres_console_kept" not in again.headers.get("set-cookie", "")
    assert "Your session expired; log in to continue." in client.get(again.headers["location"]).text


def test_an_item_button_without_a_key_decides_nothing(server: RunningServer) -> None:
    client, _ = login(server)
    csrf = csrf_of(client.get("/console/review").text)
    before = len(httpx.get(server.url + "/admin/v1/audit", headers=_ADMIN, params={"limit": 500}).json())
    sent = client.post("/console/review?page=2", data={"csrf": csrf, "one": "approve:"})
    assert sent.status_code == 303 and "refused=" not in sent.headers["location"]
    page = client.get(sent.headers["location"])
    assert "Select at least one resource." in page.text
    # Nothing was tried: no audit row for an empty ResourceKey.
    after = httpx.get(server.url + "/admin/v1/audit", headers=_ADMIN, params={"limit": 500}).json()
    assert len(after) == before


@pytest.mark.parametrize(
    ("path", "named"),
    [
        ("/console/review?type=9", "type 9 is not one of 0 (audio), 1 (TTS), 2 (IVR)"),
        ("/console/review?type=abc", "type &#39;abc&#39; is not one of 0 (audio), 1 (TTS), 2 (IVR)"),
        ("/console/resources?type=-1", "type -1 is not one of"),
        ("/console/resources?state=7", "state 7 is not one of 0 (under review)"),
        ("/console/resources.csv?state=x", "state &#39;x&#39; is not one of"),
    ],
)
def test_a_bad_type_or_state_in_the_address_says_which_and_what_is_allowed(
    server: RunningServer, path: str, named: str
) -> None:
    client, _ = login(server)
    page = client.get(path)
    assert page.status_code == 400 and named in page.text


def test_a_bulk_decision_is_confirmed_by_the_server_even_with_a_long_chinese_reason(
    server: RunningServer,
) -> None:
    created = signed_request(
        server, "OpenCreateTts", {"Name": f"bulk-{uuid.uuid4().hex[:6]}", "TtsTemplateContent": "hi"}
    )
    key = created.json()["Result"]["ResourceKey"]
    # A page's worth of keys (one real, the rest unknown) and the longest reason allowed, in
    # Chinese: nine bytes a character once in an address, far beyond the 8 KiB a target may have.
    keys = [key] + [uuid.uuid4().hex for _ in range(49)]
    reason = "录音里有杂音" * 333
    client, _ = login(server)
    csrf = csrf_of(client.get("/console/review").text)
    form = {"csrf": csrf, "decision": "reject", "keys": keys, "reason": reason}
    asked = client.post("/console/review?sort=newest", data=form)
    if asked.status_code == 303:
        asked = client.get(asked.headers["location"])
    # The question, never an error: nothing is decided until it is answered.
    assert asked.status_code == 200 and "Reject 50 resources?" in asked.text
    assert reason in asked.text and asked.text.count('name="keys"') == 50
    state = signed_request(server, "QueryOpenGetResource", {"Type": 1, "Keyword": key}).json()
    assert state["Result"]["Records"][0]["State"] == 0
    answered = client.post(
        "/console/review?sort=newest", data={**form, "csrf": csrf_of(asked.text), "confirm": "yes"}
    )
    assert answered.status_code == 303 and f"decided={key}" in answered.headers["location"]
    assert client.get(answered.headers["location"]).status_code == 200
    state = signed_request(server, "QueryOpenGetResource", {"Type": 1, "Keyword": key}).json()
    assert state["Result"]["Records"][0]["RejectReason"] == reason


# Browsers drop a cookie whose name and value pass 4096 bytes: a form kept in a bigger one is lost
# without a word.
_BROWSER_COOKIE_BYTES = 4096


def _cookie_sizes(response: httpx.Response, name: str) -> list[int]:
    return [
        len(h.split(";", 1)[0]) for h in response.headers.get_list("set-cookie") if h.startswith(name + "=")
    ]


def test_a_long_reason_kept_across_a_lost_session_fits_a_cookie_and_says_what_was_cut(
    server: RunningServer,
) -> None:
    created = signed_request(
        server, "OpenCreateTts", {"Name": f"longkept-{uuid.uuid4().hex[:6]}", "TtsTemplateContent": "hi"}
    )
    key = created.json()["Result"]["ResourceKey"]
    keys = [key] + [uuid.uuid4().hex for _ in range(49)]  # a page of them ticked
    reason = "录音里有杂音，" * 285  # 1995 characters, the most a reason may have
    client, _ = login(server)
    csrf = csrf_of(client.get("/console/review").text)
    assert client.post("/console/logout", data={"csrf": csrf}).status_code == 303
    sent = client.post(
        "/console/review", data={"csrf": csrf, "keys": keys, "reason": reason, "decision": "reject"}
    )
    sizes = _cookie_sizes(sent, "vmsres_console_kept")
    assert sizes and max(sizes) <= _BROWSER_COOKIE_BYTES
    login_page = client.get(sent.headers["location"])
    client.post(
        "/console/login", data={"token": TOKEN, "csrf": csrf_of(login_page.text), "next": "/console/review"}
    )
    review = client.get("/console/review")
    assert f'id="pick-{key}" checked' in review.text
    kept = review.text.split('name="reason"', 1)[1].split('value="', 1)[1].split('"', 1)[0]
    assert kept and reason.startswith(kept) and len(kept) < len(reason)
    assert (
        f"Only the first {len(kept)} of the {len(reason)} characters of your reason were kept" in review.text
    )


def test_a_refused_form_with_a_long_reason_still_says_why(server: RunningServer) -> None:
    client, _ = login(server)
    csrf = csrf_of(client.get("/console/review").text)
    reason = "录音里有杂音，" * 285
    # Nothing ticked: refused, and the page must say so even though the reason is long.
    refused = client.post("/console/review", data={"csrf": csrf, "reason": reason, "decision": "reject"})
    sizes = _cookie_sizes(refused, "vmsres_console_flash")
    assert sizes and max(sizes) <= _BROWSER_COOKIE_BYTES
    page = client.get(refused.headers["location"])
    assert "Select at least one resource." in page.text and "characters of your reason were kept" in page.text


def test_a_page_past_the_end_of_the_queue_leads_back_to_its_last_page(server: RunningServer) -> None:
    # As after deciding every item of the last page: the decision comes back to a page now empty.
    tag = f"pastend{uuid.uuid4().hex[:6]}"
    for n in range(3):
        signed_request(server, "OpenCreateTts", {"Name": f"{tag}-{n}", "TtsTemplateContent": "hi"})
    client, _ = login(server)
    for page in (2, 20000):
        shown = client.get("/console/review", params={"name": tag, "page": page})
        assert shown.status_code == 200 and "No items on this page." in shown.text
        assert f'href="/console/review?name={tag}" id="last-page"' in shown.text


def test_nul_characters_are_refused_by_the_admin_api_and_the_console_on_every_store(
    tmp_path: Path, database_url: str | None
) -> None:
    # PostgreSQL refuses NUL in text: unchecked, each of these was a 500.
    running = console_server(tmp_path, database_url=database_url)
    try:
        admin = httpx.Client(base_url=running.url, headers=_ADMIN, timeout=30)
        for path in (
            "/admin/v1/review/queue/page?account=%00",
            "/admin/v1/review/queue/page?name=a%00",
            "/admin/v1/audit?resource_key=%00",
            "/admin/v1/resources/%00",
            "/admin/v1/keys?account=%00",
        ):
            answer = admin.get(path)
            assert answer.status_code == 400 and "NUL" in answer.json()["detail"], path
        for path, body in (
            ("/admin/v1/operators", {"Name": "a\u0000b", "Role": "reviewer"}),
            ("/admin/v1/review/reject", {"ResourceKeys": ["a" * 32], "Reason": "x\u0000y"}),
        ):
            answer = admin.post(path, json=body)
            assert answer.status_code == 400 and "NUL" in answer.json()["detail"], path
        client, _ = login(running)
        for path in ("/console/review?account=%00", "/console/resources?keyword=%00"):
            page = client.get(path)
            assert page.status_code == 400 and "NUL" in page.text, path
        csrf = csrf_of(client.get("/console/review").text)
        sent = client.post("/console/review", data={"csrf": csrf, "one": "approve:\x00"})
        assert sent.status_code == 400
        # Still serving: nothing above broke the server.
        assert admin.get("/admin/v1/review/queue/page").status_code == 200
    finally:
        running.stop()
