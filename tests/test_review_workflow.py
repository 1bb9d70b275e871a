"""Review policies, the admin API, webhooks, audit and test controls, on real servers over HTTP."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import official_vms_service
from tests.servers import RunningServer, run_cli, start_embedded_server, start_server, wait_for
from tests.webhook_receiver import FAST_WEBHOOKS, Receiver

TOKEN = "admin-test-token-4f9c2a7e1b"


def admin_server(data_dir: Path, *extra: str) -> RunningServer:
    data_dir.mkdir(parents=True, exist_ok=True)
    words = data_dir / "banned.txt"
    words.write_text("赌博\ncasino\n", encoding="utf-8")
    return start_embedded_server(
        data_dir, serve_args=["--admin-token", TOKEN, "--banned-words", str(words), *FAST_WEBHOOKS, *extra]
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = admin_server(tmp_path_factory.mktemp("review"))
    yield running
    running.stop()


class Admin:
    def __init__(self, server: RunningServer, token: str = TOKEN) -> None:
        self.client = httpx.Client(
            base_url=server.url + "/admin/v1", headers={"Authorization": f"Bearer {token}"}, timeout=30
        )

    def __call__(self, method: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        response = self.client.request(method, path, **kwargs)
        assert response.status_code == expect, response.text
        return response.json()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def new_account(admin: Admin, server: RunningServer, policy: str | None) -> tuple[str, Any]:
    name = unique("acct")
    admin("POST", "/accounts", 201, json={"Name": name, "ReviewPolicy": policy})
    key = admin("POST", "/keys", 201, json={"Account": name})
    return name, official_vms_service(server, ak=key["AccessKey"], sk=key["SecretKey"])


def create(vms: Any, name: str, content: str) -> str:
    return str(vms.create_tts({"Name": name, "TtsTemplateContent": content})["Result"]["ResourceKey"])


def record(vms: Any, key: str) -> dict[str, Any]:
    records = vms.query_open_get_resource({"Type": 1, "Keyword": key})["Result"]["Records"]
    assert len(records) == 1
    return dict(records[0])


def usable(vms: Any) -> set[str]:
    return {r["ResourceKey"] for r in vms.query_usable_resource({"Type": 1})["Result"]}


def test_auto_policy_approves_good_and_rejects_banned_with_reason(server: RunningServer) -> None:
    vms = official_vms_service(server)
    good = create(vms, unique("good"), "您好 #name#")
    bad = create(vms, unique("bad"), "欢迎来到 Casino #name#")
    assert record(vms, good)["State"] == 1 and record(vms, good)["RejectReason"] == ""
    rejected = record(vms, bad)
    assert rejected["State"] == 2 and "casino" in rejected["RejectReason"]
    assert good in usable(vms) and bad not in usable(vms)
    detail = Admin(server)("GET", f"/resources/{bad}")
    assert detail["ReviewedBy"] == "auto:tts-banned-word" and detail["ReviewedAt"]


def test_manual_policy_waits_for_an_operator_and_the_reason_round_trips(server: RunningServer) -> None:
    admin = Admin(server)
    name, vms = new_account(admin, server, "manual")
    first = create(vms, unique("one"), "hello #who#")
    second = create(vms, unique("two"), "赌博 hello")  # manual: rules do not decide
    assert record(vms, first)["State"] == 0 and record(vms, second)["State"] == 0
    assert usable(vms) == set()
    queue = admin("GET", "/review/queue", params={"account": name, "type": 1})
    assert [r["ResourceKey"] for r in queue] == [first, second]

    approved = admin("POST", "/review/approve", json={"ResourceKeys": [first], "Reviewer": "alice"})
    assert approved == [{"ResourceKey": first, "Ok": True, "State": 1}]
    admin(
        "POST", "/review/reject", json={"ResourceKeys": [second], "Reason": "含有违禁词", "Reviewer": "bob"}
    )
    assert usable(vms) == {first}
    assert record(vms, second)["State"] == 2 and record(vms, second)["RejectReason"] == "含有违禁词"
    assert admin("GET", f"/resources/{second}")["ReviewedBy"] == "reviewer:bob"
    assert admin("GET", "/review/queue", params={"account": name}) == []
    admin("POST", "/review/reject", 422, json={"ResourceKeys": [first], "Reason": ""})


def test_auto_then_manual_rejects_the_clearly_bad_and_queues_the_rest(server: RunningServer) -> None:
    admin = Admin(server)
    name, vms = new_account(admin, server, "auto-then-manual")
    bad = create(vms, unique("bad"), "赌博 #x#")
    waiting = [create(vms, unique("ok"), f"hello {i}") for i in range(3)]
    assert record(vms, bad)["State"] == 2 and "赌博" in record(vms, bad)["RejectReason"]
    assert all(record(vms, k)["State"] == 0 for k in waiting)
    assert [r["ResourceKey"] for r in admin("GET", "/review/queue", params={"account": name})] == waiting
    assert admin("GET", "/review/queue", params={"account": name, "type": 0}) == []

    missing = uuid.uuid4().hex
    results = admin("POST", "/review/approve", json={"ResourceKeys": [*waiting, missing]})
    assert [r["Ok"] for r in results] == [True, True, True, False]
    assert usable(vms) == set(waiting)

    # The per-account policy can go back to the server's default (auto).
    admin("PUT", f"/accounts/{name}/review-policy", json={"ReviewPolicy": None})
    assert record(vms, create(vms, unique("later"), "hi"))["State"] == 1
    admin("PUT", f"/accounts/{name}/review-policy", 400, json={"ReviewPolicy": "sometimes"})


def test_every_mutating_call_is_audited(server: RunningServer) -> None:
    admin = Admin(server)
    name, vms = new_account(admin, server, None)
    key = create(vms, unique("a"), "hi")
    vms.open_update_resource({"ResourceKey": key, "Name": "renamed"})
    vms.delete_resource({"ResourceKey": key})
    missing = uuid.uuid4().hex
    failed = vms.open_update_resource({"ResourceKey": missing, "Name": "x"})
    assert failed["ResponseMetadata"]["Error"]["Code"] == "RESOURCE_KEY_IS_NOT_EXIST"
    vms.query_open_get_resource({"Type": 1})  # reads are not audited

    trail = admin("GET", "/audit", params={"account": name})
    wire = [e for e in trail if e["Actor"] == "key"]
    assert [(e["Action"], e["Outcome"]) for e in reversed(wire)] == [
        ("OpenCreateTts", "ok"),
        ("OpenUpdateResource", "ok"),
        ("OpenDeleteResource", "ok"),
        ("OpenUpdateResource", "RESOURCE_KEY_IS_NOT_EXIST"),
    ]
    assert all(e["AccessKey"] and len(e["RequestId"]) == 32 and e["At"] for e in wire)
    assert {e["ResourceKey"] for e in wire} == {key, missing}
    by_resource = admin("GET", "/audit", params={"resource_key": key})
    assert [e["Action"] for e in by_resource] == ["OpenDeleteResource", "OpenUpdateResource", "OpenCreateTts"]
    admin_entries = [(e["Action"], e["Actor"]) for e in trail if e["Actor"] == "admin"]
    assert ("CreateAccount", "admin") in admin_entries and ("CreateKey", "admin") in admin_entries

    admin("POST", "/accounts", 409, json={"Name": name})
    refused = admin("GET", "/audit", params={"account": name, "action": "CreateAccount"})
    assert [e["Outcome"] for e in refused] == ["ConflictError", "ok"]


def test_admin_api_needs_the_token_and_is_absent_without_one(server: RunningServer, tmp_path: Path) -> None:
    assert httpx.get(server.url + "/admin/v1/accounts").status_code == 401
    assert Admin(server, "wrong")("GET", "/accounts", 401)
    assert httpx.get(server.url + "/admin/v1/openapi.json").json()["info"]["title"] == "vmsres admin API"
    assert "swagger" in httpx.get(server.url + "/admin/v1/docs").text.lower()
    plain = start_server(tmp_path / "plain")
    try:
        assert (
            httpx.get(plain.url + "/admin/v1/accounts", headers={"Authorization": "Bearer x"}).status_code
            == 404
        )
        assert httpx.get(plain.url + "/admin/v1/openapi.json").status_code == 404
    finally:
        plain.stop()


def test_keys_rotate_and_disable_through_the_admin_api(server: RunningServer) -> None:
    admin = Admin(server)
    name = unique("keys")
    admin("POST", "/accounts", 201, json={"Name": name})
    key = admin("POST", "/keys", 201, json={"Account": name})
    assert [k["AccessKey"] for k in admin("GET", "/keys", params={"account": name})] == [key["AccessKey"]]
    rotated = admin("POST", f"/keys/{key['AccessKey']}/rotate")
    assert rotated["SecretKey"] != key["SecretKey"]
    new = official_vms_service(server, ak=key["AccessKey"], sk=rotated["SecretKey"])
    assert new.query_open_get_resource({"Type": 1})["Result"]["Total"] == 0
    with pytest.raises(Exception, match="SignatureNotMatch"):
        official_vms_service(server, ak=key["AccessKey"], sk=key["SecretKey"]).query_open_get_resource(
            {"Type": 1}
        )
    admin("POST", f"/keys/{key['AccessKey']}/disable")
    with pytest.raises(Exception, match="InvalidAccessKeyId"):
        official_vms_service(server, ak=key["AccessKey"], sk=rotated["SecretKey"]).query_open_get_resource(
            {"Type": 1}
        )
    admin("POST", "/keys/AKLTnobody/rotate", 404)


def test_webhooks_signed_retried_and_surviving_a_restart(tmp_path: Path) -> None:
    receiver = Receiver(secret="whsec-test")
    server = admin_server(tmp_path / "data", "--review", "manual")
    try:
        admin = Admin(server)
        hook = admin("PUT", "/accounts/default/webhook", json={"Url": receiver.url, "Secret": "whsec-test"})
        assert hook["Secret"] == "whsec-test"
        vms = official_vms_service(server)
        key = create(vms, "hooked", "hello #who#")
        created = receiver.next_event()
        assert created.signature_ok and created.event["Type"] == "resource.created"
        assert created.event["Data"]["ResourceKey"] == key and created.event["Data"]["State"] == 0
        assert created.headers["X-Vmsres-Event"] == "resource.created"

        # Receiver down: the first attempt fails, a later one gets through with the same event.
        receiver.down = True
        admin("POST", "/review/reject", json={"ResourceKeys": [key], "Reason": "too loud"})
        assert receiver.next() == "dropped"
        receiver.down = False
        reviewed = receiver.next_event()
        assert reviewed.signature_ok and reviewed.event["Type"] == "resource.reviewed"
        assert reviewed.event["Data"]["State"] == 2 and reviewed.event["Data"]["RejectReason"] == "too loud"
        # The dispatcher records the delivery after the receiver answered: wait for that record.
        delivery = wait_for(
            lambda: next(
                (
                    d
                    for d in admin("GET", "/webhook-deliveries", params={"account": "default"})
                    if d["EventId"] == reviewed.event["EventId"] and d["State"] != "pending"
                ),
                None,
            ),
            what="the delivery to be recorded",
        )
        assert delivery["State"] == "delivered" and delivery["Attempts"] >= 2

        # Down again, then the server stops: the pending delivery is sent by the next server.
        receiver.down = True
        vms.delete_resource({"ResourceKey": key})
        assert receiver.next() == "dropped"
        server.stop()
        receiver.down = False
        server = admin_server(tmp_path / "data", "--review", "manual")
        deleted = receiver.next_event()
        assert deleted.signature_ok and deleted.event["Type"] == "resource.deleted"
        assert deleted.event["Data"]["ResourceKey"] == key
        restarted = Admin(server)

        def settled() -> dict[str, str] | None:
            states = {d["EventType"]: d["State"] for d in restarted("GET", "/webhook-deliveries")}
            return None if "pending" in states.values() else states

        assert wait_for(settled, what="every delivery to settle") == {
            "resource.created": "delivered",
            "resource.reviewed": "delivered",
            "resource.deleted": "delivered",
        }
    finally:
        server.stop()
        receiver.close()


def test_a_wrong_secret_fails_verification_at_the_receiver(server: RunningServer) -> None:
    receiver = Receiver(secret="the-receivers-idea")
    try:
        admin = Admin(server)
        name, vms = new_account(admin, server, None)
        generated = admin("PUT", f"/accounts/{name}/webhook", json={"Url": receiver.url})
        assert len(generated["Secret"]) >= 32
        assert admin("GET", f"/accounts/{name}/webhook") == {"Account": name, "Url": receiver.url}
        create(vms, unique("x"), "hi")
        got = receiver.next_event()
        assert not got.signature_ok  # and the 401 makes the server try again later
        receiver.secret = generated["Secret"]
        assert receiver.next_event().signature_ok
        admin("PUT", f"/accounts/{name}/webhook", 400, json={"Url": "ftp://nowhere"})
    finally:
        receiver.close()


FIXTURES = {
    "Accounts": [
        {
            "Name": "fixture-co",
            "ReviewPolicy": "manual",
            "Keys": [{"AccessKey": "AKLTfixture", "SecretKey": "fixture-secret"}],
        }
    ],
    "Resources": [
        {
            "Account": "fixture-co",
            "ResourceKey": "a" * 32,
            "Name": "approved",
            "State": 1,
            "TtsTemplateContent": "hi",
        },
        {
            "Account": "fixture-co",
            "ResourceKey": "b" * 32,
            "Name": "rejected",
            "State": 2,
            "RejectReason": "no",
        },
        {"Account": "fixture-co", "ResourceKey": "c" * 32, "Name": "waiting", "State": 0},
        {
            "Account": "fixture-co",
            "ResourceKey": "d" * 32,
            "Name": "song",
            "Type": 0,
            "Suffix": ".wav",
            "Duration": 7,
        },
    ],
}


def test_fixtures_force_and_reset_for_integrators(tmp_path: Path) -> None:
    fixtures = tmp_path / "fixtures.json"
    fixtures.write_text(json.dumps(FIXTURES))
    server = admin_server(tmp_path / "data", "--fixtures", str(fixtures))
    try:
        vms = official_vms_service(server, ak="AKLTfixture", sk="fixture-secret")
        assert usable(vms) == {"a" * 32}
        assert record(vms, "b" * 32)["RejectReason"] == "no"
        audio = vms.query_open_get_resource({"Type": 0})["Result"]["Records"]
        assert [(r["Name"], r["Suffix"], r["Duration"], r["State"]) for r in audio] == [
            ("song", ".wav", 7, 1)
        ]

        remote = ["--endpoint", server.url, "--admin-token", TOKEN, "--json"]
        forced = run_cli("review", "force", "c" * 32, "--state", "2", "--reason", "forced no", *remote)
        assert json.loads(forced.stdout)["State"] == 2
        assert record(vms, "c" * 32)["RejectReason"] == "forced no"
        run_cli("review", "force", "a" * 32, "--state", "0", *remote)
        assert usable(vms) == set()

        reset = json.loads(run_cli("accounts", "reset", "fixture-co", *remote).stdout)
        assert sorted(reset["DeletedResourceKeys"]) == [c * 32 for c in "abcd"]
        assert vms.query_open_get_resource({"Type": 1})["Result"]["Total"] == 0
        # Loading again on demand (idempotent: loading twice adds nothing the second time).
        loaded = json.loads(run_cli("fixtures", "load", str(fixtures), *remote).stdout)
        assert len(loaded["LoadedResourceKeys"]) == 4
        again = json.loads(run_cli("fixtures", "load", str(fixtures), *remote).stdout)
        assert again["LoadedResourceKeys"] == []
        assert usable(vms) == {"a" * 32}
        bad = run_cli("review", "force", "a" * 32, "--state", "2", *remote, check=False)
        assert bad.returncode == 1 and "reason" in bad.stderr
    finally:
        server.stop()


def test_cli_remote_and_local_share_the_service_layer(server: RunningServer) -> None:
    remote = ["--endpoint", server.url, "--admin-token", TOKEN]
    name = unique("cli")
    run_cli("accounts", "create", name, "--review-policy", "manual", *remote)
    accounts = json.loads(run_cli("accounts", "list", "--json", *remote).stdout)
    assert {"Name": name, "Enabled": True, "ReviewPolicy": "manual"} in accounts
    key = json.loads(run_cli("keys", "create", "--account", name, "--json", *remote).stdout)
    vms = official_vms_service(server, ak=key["AccessKey"], sk=key["SecretKey"])
    first, second = create(vms, unique("q"), "a"), create(vms, unique("q"), "b")
    queue = json.loads(run_cli("review", "queue", "--account", name, "--json", *remote).stdout)
    assert [r["ResourceKey"] for r in queue] == [first, second]
    bulk = json.loads(run_cli("review", "approve", first, second, "--json", *remote).stdout)
    assert bulk == [{"ResourceKey": first, "State": 1}, {"ResourceKey": second, "State": 1}]
    # The local CLI on the same store sees the same queue and writes the same audit trail.
    assert json.loads(server.cli("review", "queue", "--account", name, "--json").stdout) == []
    # Deciding again needs --force (decisions are compare-and-set, docs/review.md).
    stale = server.cli("review", "reject", first, "--reason", "changed my mind", check=False)
    assert stale.returncode == 1 and "already decided: State 1" in stale.stderr
    assert record(vms, first)["State"] == 1
    server.cli("review", "reject", first, "--reason", "changed my mind", "--force")
    assert record(vms, first)["RejectReason"] == "changed my mind"
    trail = json.loads(run_cli("audit", "--resource", first, "--json", *remote).stdout)
    assert [(e["Action"], e["Actor"].split(":")[0], e["Outcome"]) for e in trail[:3]] == [
        ("Reject", "cli", "ok"),
        ("Reject", "cli", "AlreadyDecided"),
        ("Approve", "admin", "ok"),
    ]
    assert "forced over State 1" in trail[0]["Detail"]
    wrong = run_cli("accounts", "list", "--endpoint", server.url, "--admin-token", "nope", check=False)
    assert wrong.returncode == 1 and "401" in wrong.stderr


def test_resource_answers_match_the_schema_declared_from_the_record(tmp_path: Path) -> None:
    """The admin API's resource answers are documented by a schema made from the protocol's
    record (admin/operations.py ADMIN_RESOURCE); every answer, of either Type, decided or not,
    must validate against the OpenAPI document the server publishes."""
    import jsonschema

    from vmsres.protocol.records import RESOURCE
    from vmsres.server.admin.operations import AUDIO_FACTS

    fixtures = tmp_path / "fixtures.json"
    fixtures.write_text(json.dumps(FIXTURES))
    server = admin_server(tmp_path / "data", "--fixtures", str(fixtures))
    try:
        admin = Admin(server)
        document = admin("GET", "/openapi.json")
        schema = {**document["components"]["schemas"]["AdminResource"], "additionalProperties": False}
        schema["components"] = document["components"]
        assert set(schema["properties"]) == {f.name for f in RESOURCE.fields} | {
            "Account",
            "ReviewedBy",
            "ReviewedAt",
        } | {f.name for f in AUDIO_FACTS.fields}
        routes = document["paths"]
        for path, method in [
            ("/admin/v1/resources", "get"),
            ("/admin/v1/resources/{resource_key}", "get"),
            ("/admin/v1/review/queue", "get"),
            ("/admin/v1/resources/{resource_key}/force-state", "post"),
        ]:
            answer = routes[path][method]["responses"]["200"]["content"]["application/json"]["schema"]
            assert "AdminResource" in json.dumps(answer), path

        answers = [
            *admin("GET", "/resources"),
            *admin("GET", "/review/queue"),
            admin("GET", f"/resources/{'d' * 32}"),
            admin("GET", f"/resources/{'a' * 32}"),
        ]
        forced = admin("POST", f"/resources/{'c' * 32}/force-state", json={"State": 2, "Reason": "no"})
        answers.append(forced)
        assert {a["Type"] for a in answers} == {0, 1}
        assert {a["State"] for a in answers} == {0, 1, 2}
        for answer in answers:
            jsonschema.validate(answer, schema)
        assert forced["ReviewedBy"] == "forced:admin" and isinstance(forced["ReviewedAt"], int)
    finally:
        server.stop()
