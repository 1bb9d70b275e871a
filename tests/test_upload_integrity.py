"""Uploads that end early store nothing, truncated audio is never committed, and a small file
cannot expand without bound: duration limit, renditions in StorageBytes, streamed downloads."""

from __future__ import annotations

import json
import socket
import struct
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.audio_factory import make_wav, require_ffmpeg, riff_wav
from tests.conftest import official_vms_service
from tests.servers import RunningServer, start_server, wait_for
from tests.wire_client import error_code, signed_request
from vmsres.server.audio import telephony_rendition_bytes


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("uploads"), ["--max-audio-duration", "60"])
    yield running
    running.stop()


def upload_url(server: RunningServer, file_name: str) -> str:
    return str(
        official_vms_service(server).get_resource_upload_url({"FileName": file_name})["Result"]["UploadUrl"]
    )


def commit(server: RunningServer, file_name: str) -> httpx.Response:
    return signed_request(server, "CommitResourceUpload", {"FileName": file_name})


def client_aborts(server: RunningServer) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in server.log_lines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == "client abort"]


def put_partially(url: str, data: bytes, sent: int, *, half_close: bool) -> None:
    """PUT ``data`` announcing its full length, send only ``sent`` bytes, then go away."""
    parts = urlsplit(url)
    head = (
        f"PUT {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Length: {len(data)}\r\n\r\n"
    ).encode()
    sock = socket.create_connection((parts.hostname or "", parts.port or 80))
    sock.sendall(head + data[:sent])
    if half_close:
        # Fewer bytes than announced, then end of stream: the server must not take it as complete.
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(10)
        assert sock.recv(1000) == b""
    sock.close()


@pytest.mark.parametrize("half_close", [False, True], ids=["disconnect", "short-body"])
def test_a_put_that_ends_early_stores_nothing_and_the_url_stays_usable(
    server: RunningServer, half_close: bool
) -> None:
    name = f"cut-{uuid.uuid4().hex[:8]}.wav"
    url = upload_url(server, name)
    wav = make_wav(2.0, sample_rate=8000)
    aborts = len(client_aborts(server))
    put_partially(url, wav, len(wav) // 2, half_close=half_close)
    wait_for(lambda: len(client_aborts(server)) == aborts + 1, what="the client abort log line")
    assert len(client_aborts(server)) == aborts + 1

    refused = commit(server, name)
    assert (refused.status_code, error_code(refused)) == (404, "RESOURCE_IS_NONE")

    # The same URL takes the whole file afterwards, and the commit sees exactly that file.
    retried = httpx.put(url, content=wav, timeout=30)
    assert retried.status_code == 200
    assert retried.json()["Result"]["Size"] == len(wav)
    committed = commit(server, name)
    assert committed.status_code == 200, committed.text
    key = committed.json()["Result"]["ResourceKey"]
    link = signed_request(server, "GetResourceDownloadUrl", {"ResourceKey": key})
    assert httpx.get(link.json()["Result"]["Url"], timeout=30).content == wav


def _streamed_wav(frames: bytes) -> bytes:
    """A WAV as ffmpeg or sox write it to a pipe: both sizes 0xFFFFFFFF, data to the end."""
    wav = bytearray(riff_wav(frames, sample_rate=8000, channels=1))
    struct.pack_into("<I", wav, 4, 0xFFFFFFFF)
    struct.pack_into("<I", wav, 40, 0xFFFFFFFF)
    return bytes(wav)


def test_a_streamed_wav_cut_inside_a_frame_is_not_committed(server: RunningServer) -> None:
    whole = _streamed_wav(make_wav(1.0, sample_rate=8000)[44:])
    name = f"stream-{uuid.uuid4().hex[:8]}.wav"
    assert httpx.put(upload_url(server, name), content=whole[:-1], timeout=30).status_code == 200
    refused = commit(server, name)
    assert (refused.status_code, error_code(refused)) == (400, "FILE_ANALYSE_ERROR")
    assert "truncated" in refused.json()["ResponseMetadata"]["Error"]["Message"]

    name = f"stream-{uuid.uuid4().hex[:8]}.wav"
    assert httpx.put(upload_url(server, name), content=whole, timeout=30).status_code == 200
    assert commit(server, name).status_code == 200


def test_audio_longer_than_the_limit_is_refused_before_rendering(server: RunningServer) -> None:
    # 8-bit mono at 1 kHz: 61 s in 61 kB, over this server's 60 s limit.
    long_wav = riff_wav(b"\x80" * 61_000, codec="pcm_u8", sample_rate=1000)
    name = f"long-{uuid.uuid4().hex[:8]}.wav"
    assert httpx.put(upload_url(server, name), content=long_wav, timeout=30).status_code == 200
    refused = commit(server, name)
    assert (refused.status_code, error_code(refused)) == (400, "AUDIO_DURATION_OVER_LIMIT")
    assert "60 seconds" in refused.json()["ResponseMetadata"]["Error"]["Message"]
    page = official_vms_service(server).query_open_get_resource({"Type": 0, "Keyword": name})
    assert page["Result"]["Total"] == 0


def test_renditions_count_in_storage_bytes(tmp_path: Path) -> None:
    require_ffmpeg()
    original = make_wav(10.0, sample_rate=8000, codec="pcm_u8")  # 80 kB; its rendition is 160 kB
    rendition = telephony_rendition_bytes(10_000)
    limit = len(original) + rendition - 1
    running = start_server(tmp_path / "data", ["--max-storage-bytes", str(limit)])
    try:
        vms = official_vms_service(running)
        url = vms.get_resource_upload_url({"FileName": "a.wav"})["Result"]["UploadUrl"]
        assert httpx.put(url, content=original, timeout=30).status_code == 200
        refused = commit(running, "a.wav")
        assert (refused.status_code, error_code(refused)) == (400, "QuotaExceeded")
        assert "StorageBytes" in refused.json()["ResponseMetadata"]["Error"]["Message"]
    finally:
        running.stop()
    roomy = start_server(tmp_path / "data2", ["--max-storage-bytes", str(limit + 1)])
    try:
        vms = official_vms_service(roomy)
        url = vms.get_resource_upload_url({"FileName": "a.wav"})["Result"]["UploadUrl"]
        assert httpx.put(url, content=original, timeout=30).status_code == 200
        committed = commit(roomy, "a.wav")
        assert committed.status_code == 200, committed.text
        key = committed.json()["Result"]["ResourceKey"]
        # The rendition is exactly the size the quota counted, and downloads stream both files whole.
        for version, size in (("telephony", rendition), ("original", len(original))):
            link = signed_request(roomy, "GetResourceDownloadUrl", {"ResourceKey": key, "Rendition": version})
            assert link.status_code == 200, link.text
            body = httpx.get(link.json()["Result"]["Url"], timeout=30)
            assert body.status_code == 200
            assert len(body.content) == size == int(body.headers["content-length"])
            if version == "original":
                assert body.content == original
    finally:
        roomy.stop()
