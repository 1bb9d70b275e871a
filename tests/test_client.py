"""Client and AsyncClient against a real vmsres server on loopback."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers import RunningServer, start_server
from vmsres.client import (
    NO_RETRY,
    AsyncClient,
    Client,
    CredentialsNotFound,
    Resource,
    ResourceState,
    ResourceType,
    TransportError,
)
from vmsres.protocol.errors import (
    InvalidAccessKeyId,
    InvalidParameter,
    MissingParameter,
    ParameterError,
    ResourceKeyIsNone,
    ResourceKeyIsNotExist,
    ResourceNameIsNone,
    SignatureNotMatch,
    VmsError,
)

REQUEST_ID = re.compile(r"\d{14}[0-9A-F]{18}")


class RecordingTransport(httpx.HTTPTransport):
    """httpx's real transport, keeping each request it sends so tests can see Offset and Limit."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return super().handle_request(request)

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests]


def _client(server: RunningServer, **kwargs: Any) -> Client:
    return Client(server.access_key, server.secret_key, endpoint=server.url, **kwargs)


@pytest.fixture
def client(server: RunningServer) -> Iterator[Client]:
    with _client(server) as c:
        yield c


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_every_action_the_server_has(client: Client) -> None:
    name = _unique("round trip 中文")
    created = client.open_create_tts(
        name, "Hello #who#, code #code#", tts_option={"VoiceType": "BV001", "Speed": 1}, remark="r1"
    )
    assert re.fullmatch(r"[0-9a-f]{32}", created.resource_key)
    assert created.name == name

    page = client.query_open_get_resource(ResourceType.TTS, keyword=created.resource_key)
    assert (page.total, page.limit, page.offset) == (1, 10, 0)
    [record] = page.records
    assert record == client.get_resource(created.resource_key)
    assert record.name == name
    assert record.type == ResourceType.TTS
    assert record.state == ResourceState.APPROVED  # the server's default review policy is "auto"
    assert record.suffix == ""
    assert record.remark == "r1"
    assert record.tts_template_content == "Hello #who#, code #code#"
    assert json.loads(record.tts_options) == {"VoiceType": "BV001", "Speed": 1}
    assert record.created_at is not None and record.created_at.utcoffset() is not None

    usable = client.query_usable_resource(ResourceType.TTS)
    assert created.resource_key in {r.resource_key for r in usable}
    assert client.query_usable_resource_v2(ResourceType.TTS) == usable

    renamed = client.open_update_resource(created.resource_key, "renamed & + = ?")
    assert (renamed.resource_key, renamed.name) == (created.resource_key, "renamed & + = ?")
    assert client.get_resource(created.resource_key, ResourceType.TTS).name == "renamed & + = ?"

    deleted = client.open_delete_resource(created.resource_key)
    assert deleted.resource_key == created.resource_key
    with pytest.raises(ResourceKeyIsNotExist):
        client.get_resource(created.resource_key)


def test_async_client_does_the_same(server: RunningServer) -> None:
    async def scenario() -> list[Resource]:
        async with AsyncClient(server.access_key, server.secret_key, endpoint=server.url) as client:
            prefix = _unique("async")
            refs = await asyncio.gather(
                *(client.open_create_tts(f"{prefix}-{i}", f"text {i}") for i in range(5))
            )
            found = [r async for r in client.iter_resources(ResourceType.TTS, keyword=prefix, page_size=2)]
            assert {r.resource_key for r in found} == {r.resource_key for r in refs}
            usable = await client.query_usable_resource(ResourceType.TTS)
            assert await client.query_usable_resource_v2(ResourceType.TTS) == usable
            renamed = await client.open_update_resource(refs[0].resource_key, f"{prefix}-renamed")
            assert (await client.get_resource(renamed.resource_key)).name == f"{prefix}-renamed"
            assert await client.find_by_name(ResourceType.TTS, f"{prefix}-renamed") is not None
            await client.open_delete_resource(refs[0].resource_key)
            with pytest.raises(ResourceKeyIsNotExist) as missing:
                await client.open_delete_resource(refs[0].resource_key)
            assert REQUEST_ID.fullmatch(missing.value.request_id)
            return found

    assert len(asyncio.run(scenario())) == 5


@pytest.mark.parametrize("page_size", [1, 3, 7, 100])
def test_iter_resources_pages_across_offsets(server: RunningServer, page_size: int) -> None:
    prefix = _unique("paging")
    with _client(server) as client:
        keys = [client.open_create_tts(f"{prefix}-{i:02d}", "x").resource_key for i in range(7)]
    transport = RecordingTransport()
    with _client(server, transport=transport) as client:
        listed = list(client.iter_resources(ResourceType.TTS, keyword=prefix, page_size=page_size))
        one_page = client.query_open_get_resource(ResourceType.TTS, keyword=prefix, limit=100)
    assert [r.resource_key for r in listed] == [r.resource_key for r in one_page.records]
    assert sorted(r.resource_key for r in listed) == sorted(keys)
    pages = transport.bodies()[:-1]
    expected_offsets = list(range(0, 7, page_size))
    assert [b["Offset"] for b in pages] == expected_offsets
    assert {b["Limit"] for b in pages} == {page_size}
    assert {b["Keyword"] for b in pages} == {prefix}


def test_iter_resources_stops_at_an_exact_multiple_and_filters_state(server: RunningServer) -> None:
    prefix = _unique("exact")
    with _client(server) as client:
        for i in range(6):
            client.open_create_tts(f"{prefix}-{i}", "x")
    transport = RecordingTransport()
    with _client(server, transport=transport) as client:
        assert len(list(client.iter_resources(ResourceType.TTS, keyword=prefix, page_size=3))) == 6
        # Six rows in pages of three: no third, empty request.
        assert [b["Offset"] for b in transport.bodies()] == [0, 3]
        assert (
            list(client.iter_resources(ResourceType.TTS, state=ResourceState.REJECTED, keyword=prefix)) == []
        )
        assert list(client.iter_resources(ResourceType.AUDIO, keyword=prefix)) == []


def test_find_by_name_wants_the_exact_name(client: Client) -> None:
    prefix = _unique("exact-name")
    longer = client.open_create_tts(f"{prefix}-longer", "x")
    assert client.find_by_name(ResourceType.TTS, prefix) is None
    exact = client.open_create_tts(prefix, "x")
    found = client.find_by_name(ResourceType.TTS, prefix)
    assert found is not None and found.resource_key == exact.resource_key != longer.resource_key


# --- Errors, as the server answers them -------------------------------------------------------

WIRE_ERRORS: list[tuple[str, dict[str, Any], type[VmsError], int, str | None]] = [
    ("QueryOpenGetResource", {"Limit": 5}, MissingParameter, 400, "Type"),
    ("QueryOpenGetResource", {"Type": 0, "Limit": 500}, InvalidParameter, 400, "Limit"),
    ("OpenUpdateResource", {"ResourceKey": "0" * 32, "Name": "n"}, ResourceKeyIsNotExist, 404, None),
    ("OpenDeleteResource", {"ResourceKey": "0" * 32}, ResourceKeyIsNotExist, 404, None),
    ("OpenDeleteResource", {}, ResourceKeyIsNone, 400, None),
    ("OpenUpdateResource", {"ResourceKey": "0" * 32, "Name": " "}, ResourceNameIsNone, 400, None),
    ("OpenCreateTts", {"TtsTemplateContent": "x"}, ResourceNameIsNone, 400, None),
]


@pytest.mark.parametrize(
    ("action", "params", "error", "status", "parameter"),
    WIRE_ERRORS,
    ids=[f"{e[2].code}-{e[0]}" for e in WIRE_ERRORS],
)
def test_wire_errors_become_their_classes(
    server: RunningServer,
    action: str,
    params: dict[str, Any],
    error: type[VmsError],
    status: int,
    parameter: str | None,
) -> None:
    with _client(server, validate=False) as client, pytest.raises(error) as raised:
        client.call(action, **params)
    assert type(raised.value) is error
    assert raised.value.code == error.code
    assert raised.value.http_status == status
    assert REQUEST_ID.fullmatch(raised.value.request_id)
    assert raised.value.message
    assert raised.value.request_id in str(raised.value)
    if parameter is not None:
        assert isinstance(raised.value, ParameterError)
        assert raised.value.parameter == parameter


def test_typed_methods_raise_the_same_classes_locally(client: Client) -> None:
    with pytest.raises(ResourceNameIsNone) as local:
        client.open_update_resource("0" * 32, "")
    assert local.value.request_id == ""
    with pytest.raises(InvalidParameter):
        client.query_open_get_resource(0, limit=0)


def test_wrong_secret_is_signature_not_match(server: RunningServer) -> None:
    with (
        Client(server.access_key, "not-the-secret", endpoint=server.url) as client,
        pytest.raises(SignatureNotMatch) as raised,
    ):
        client.query_usable_resource(0)
    assert raised.value.http_status == 401
    assert REQUEST_ID.fullmatch(raised.value.request_id)


def test_unknown_key_is_invalid_access_key_id(server: RunningServer) -> None:
    with (
        Client("AKLTnobody", server.secret_key, endpoint=server.url) as client,
        pytest.raises(InvalidAccessKeyId) as raised,
    ):
        client.query_open_get_resource(0)
    assert raised.value.http_status == 403
    assert REQUEST_ID.fullmatch(raised.value.request_id)


def test_connection_refused_is_a_transport_error() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on the port any more.
    with (
        Client("ak", "sk", endpoint=f"http://127.0.0.1:{port}", retry=NO_RETRY) as client,
        pytest.raises(TransportError),
    ):
        client.query_usable_resource(0)


# --- Review -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def manual_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("manual"), extra_args=["--review", "manual"])
    yield running
    running.stop()


def test_wait_for_review_times_out_then_sees_the_decision(manual_server: RunningServer) -> None:
    with _client(manual_server) as client:
        ref = client.open_create_tts(_unique("review"), "x")
        assert client.get_resource(ref.resource_key).state == ResourceState.REVIEWING
        with pytest.raises(TimeoutError):
            client.wait_for_review(ref.resource_key, timeout=0.2, interval=0.05)
        manual_server.cli("review", "reject", ref.resource_key, "--reason", "too loud")
        decided = client.wait_for_review(ref.resource_key, timeout=5, type=ResourceType.TTS)
    assert decided.state == ResourceState.REJECTED
    assert decided.reject_reason == "too loud"


def test_wait_for_review_returns_once_approved_meanwhile(manual_server: RunningServer) -> None:
    with _client(manual_server) as client:
        ref = client.open_create_tts(_unique("review"), "x")
        outcome: list[Resource | BaseException] = []

        def wait() -> None:
            try:
                outcome.append(client.wait_for_review(ref.resource_key, timeout=60, interval=0.05))
            except BaseException as error:  # handed to the test thread below
                outcome.append(error)

        waiter = threading.Thread(target=wait)
        waiter.start()
        manual_server.cli("review", "approve", ref.resource_key)
        waiter.join(timeout=60)
    assert not waiter.is_alive()
    [result] = outcome
    assert isinstance(result, Resource) and result.state == ResourceState.APPROVED


def test_async_wait_for_review(manual_server: RunningServer) -> None:
    async def scenario() -> Resource:
        async with AsyncClient(
            manual_server.access_key, manual_server.secret_key, endpoint=manual_server.url
        ) as client:
            ref = await client.open_create_tts(_unique("review"), "x")
            with pytest.raises(TimeoutError):
                await client.wait_for_review(ref.resource_key, timeout=0.1, interval=0.02)
            await asyncio.to_thread(manual_server.cli, "review", "approve", ref.resource_key)
            return await client.wait_for_review(ref.resource_key, timeout=5)

    assert asyncio.run(scenario()).state == ResourceState.APPROVED


def test_wait_for_review_of_an_unknown_key(client: Client) -> None:
    with pytest.raises(ResourceKeyIsNotExist):
        client.wait_for_review("f" * 32, timeout=1)


# --- Credentials ------------------------------------------------------------------------------


@pytest.fixture
def clean_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("VOLC_ACCESSKEY", raising=False)
    monkeypatch.delenv("VOLC_SECRETKEY", raising=False)
    return tmp_path


def _works(server: RunningServer, **kwargs: Any) -> bool:
    with Client(endpoint=server.url, retry=NO_RETRY, **kwargs) as client:
        try:
            client.query_usable_resource(0)
        except SignatureNotMatch:
            return False
    return True


def test_credentials_from_the_environment(
    server: RunningServer, clean_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOLC_ACCESSKEY", server.access_key)
    monkeypatch.setenv("VOLC_SECRETKEY", server.secret_key)
    assert _works(server)
    # Arguments come first.
    assert not _works(server, access_key=server.access_key, secret_key="wrong")


def test_credentials_from_the_volc_credentials_file(
    server: RunningServer, clean_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    volc = clean_home / ".volc"
    volc.mkdir()
    (volc / "credentials").write_text(
        f"[default]\naccess_key_id = {server.access_key}\nsecret_access_key = {server.secret_key}\n"
    )
    assert _works(server)
    # The environment comes before the file, but only with both variables set.
    monkeypatch.setenv("VOLC_ACCESSKEY", server.access_key)
    assert _works(server)
    monkeypatch.setenv("VOLC_SECRETKEY", "wrong")
    assert not _works(server)


def test_credentials_from_the_volc_config_json(server: RunningServer, clean_home: Path) -> None:
    volc = clean_home / ".volc"
    volc.mkdir()
    (volc / "config").write_text(json.dumps({"ak": server.access_key, "sk": server.secret_key}))
    assert _works(server)
    # As in the SDK, an INI file hides the JSON one even when it lacks the keys.
    (volc / "credentials").write_text("[default]\n")
    with pytest.raises(CredentialsNotFound):
        Client(endpoint=server.url)


def test_missing_or_half_credentials(clean_home: Path) -> None:
    with pytest.raises(CredentialsNotFound):
        Client()
    with pytest.raises(CredentialsNotFound):
        Client(access_key="only-the-key")


def test_endpoint_and_region_are_checked_up_front() -> None:
    with pytest.raises(ValueError, match="region"):
        Client("ak", "sk", region="cn/north-1")
    with pytest.raises(ValueError, match="endpoint"):
        Client("ak", "sk", endpoint="ftp://example.com")
    with Client("ak", "sk", endpoint="127.0.0.1:9") as client:
        assert client.endpoint == "http://127.0.0.1:9/"
