"""upload(), FetchResource and ``vmsres res upload|fetch`` against a real vmsres server."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import docs_examples
from tests.audio import write_wav
from tests.servers import RunningServer, run_cli, start_embedded_server
from tests.stubs import Reply, scripted_server
from vmsres.client import Client, ResourceState
from vmsres.protocol.errors import FileAnalyseError

# FetchResource refuses loopback unless allow-listed; these servers fetch from test origins on it.
LOOPBACK_FETCH = ["--fetch-allow-host", "127.0.0.1"]


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, module_database_url: str | None
) -> Iterator[RunningServer]:
    running = start_embedded_server(
        tmp_path_factory.mktemp("uploads"), module_database_url, serve_args=LOOPBACK_FETCH
    )
    yield running
    running.stop()


@pytest.fixture
def fresh_server(tmp_path: Path, database_url: str | None) -> Iterator[RunningServer]:
    running = start_embedded_server(tmp_path / "data", database_url, serve_args=LOOPBACK_FETCH)
    yield running
    running.stop()


def _client(server: RunningServer) -> Client:
    return Client(server.access_key, server.secret_key, endpoint=server.url)


def _committed_name(file_name: str, name: str, suffix: str) -> bool:
    # Whether the service keeps the extension in Name is its choice; Suffix has it either way.
    return file_name in (name, name + suffix)


def test_upload_then_find_it(server: RunningServer, tmp_path: Path) -> None:
    path = write_wav(tmp_path / "upload-real.wav", seconds=2)
    reports: list[tuple[int, int]] = []
    with _client(server) as client:
        stored = client.upload(path, progress=lambda sent, total: reports.append((sent, total)))
        assert stored.suffix == ".wav"
        assert _committed_name(path.name, stored.name, stored.suffix)
        resource = client.get_resource(stored.resource_key, 0)
    assert resource.duration in (1, 2)
    assert resource.type == 0
    assert reports[-1] == (path.stat().st_size, path.stat().st_size)


def test_upload_of_something_that_is_not_audio(server: RunningServer, tmp_path: Path) -> None:
    path = tmp_path / "not-audio.wav"
    path.write_bytes(b"RIFF but not really" * 100)
    with _client(server) as client, pytest.raises(FileAnalyseError) as raised:
        client.upload(path)
    assert raised.value.request_id


@pytest.fixture
def manual_server(tmp_path: Path) -> Iterator[RunningServer]:
    running = start_embedded_server(tmp_path / "manual", serve_args=["--review", "manual"])
    yield running
    running.stop()


def test_upload_then_wait_for_review(manual_server: RunningServer, tmp_path: Path) -> None:
    with _client(manual_server) as client:
        stored = client.upload(write_wav(tmp_path / "review.wav"))
        assert client.get_resource(stored.resource_key).state == ResourceState.REVIEWING
        manual_server.cli("review", "approve", stored.resource_key)
        assert client.wait_for_review(stored.resource_key, timeout=10).state == ResourceState.APPROVED


def test_fetch_resource_from_a_url(server: RunningServer, tmp_path: Path) -> None:
    audio = write_wav(tmp_path / "remote.wav").read_bytes()
    with scripted_server([Reply(200, audio, "audio/wav")]) as origin, _client(server) as client:
        stored = client.fetch_resource(f"{origin.url}/remote.wav", "fetched-real")
        assert stored.suffix == ".wav"
        assert client.get_resource(stored.resource_key).name == stored.name


def test_cli_upload_and_resume(server: RunningServer, tmp_path: Path) -> None:
    folder = tmp_path / "cli-real"
    folder.mkdir()
    for name in ("cli-real-1.wav", "cli-real-2.wav"):
        write_wav(folder / name)
    env = dict(
        os.environ,
        HOME=str(tmp_path),
        VMSRES_ENDPOINT=server.url,
        VOLC_ACCESSKEY=server.access_key,
        VOLC_SECRETKEY=server.secret_key,
    )
    first = run_cli("res", "upload", str(folder), "--json", check=False, env=env)
    assert first.returncode == 0, first.stderr
    assert {r["Status"] for r in json.loads(first.stdout)} == {"uploaded"}
    again = run_cli("res", "upload", str(folder), "--json", check=False, env=env)
    assert again.returncode == 0, again.stderr
    assert {r["Status"] for r in json.loads(again.stdout)} == {"skipped"}

    audio = (folder / "cli-real-1.wav").read_bytes()
    with scripted_server([Reply(200, audio, "audio/wav")]) as origin:
        fetched = run_cli(
            "res", "fetch", f"{origin.url}/a.wav", "--name", "cli-fetched", "--json", check=False, env=env
        )
    assert fetched.returncode == 0, fetched.stderr
    assert json.loads(fetched.stdout)["Suffix"] == ".wav"


def test_docs_examples_with_uploads(
    fresh_server: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("VMSRES_ENDPOINT", fresh_server.url)
    monkeypatch.setenv("VOLC_ACCESSKEY", fresh_server.access_key)
    monkeypatch.setenv("VOLC_SECRETKEY", fresh_server.secret_key)
    audio = write_wav(tmp_path / "greeting.wav").read_bytes()
    with scripted_server([Reply(200, audio, "audio/wav")]) as origin:
        namespace = docs_examples.run(
            ("python", "python upload"),
            replace={"https://example.com/welcome.mp3": f"{origin.url}/welcome.wav"},
        )
    assert namespace["stored"].suffix == ".wav"
    assert namespace["committed"].resource_key
    assert namespace["fetched"].resource_key
