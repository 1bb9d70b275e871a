"""Uploading, committing, fetching and downloading real audio, on disk and on S3 (moto)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import threading
import time
import uuid
import wave
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.audio_factory import make_mp3, make_ogg, make_silence, make_wav, require_ffmpeg
from tests.conftest import generated_vms_api, official_vms_service
from tests.s3_server import create_bucket, s3_env_vars, start_moto_server
from tests.servers import RunningServer, start_embedded_server, start_server
from tests.wire_client import error_code, signed_request
from vmsres.server.masterkey import load_keyring
from vmsres.server.service.shared_secrets import secret_context
from vmsres.server.service.tokens import make_token


@pytest.fixture(scope="module", params=["disk", "s3"])
def audio_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp(f"ingest-{request.param}")
    if request.param == "disk":
        server = start_server(data)
        yield server
        server.stop()
        return
    endpoint, stop_moto = start_moto_server()
    bucket = create_bucket(endpoint)
    server = start_server(data, ["--blob-url", f"s3://{bucket}/vmsres"], env=s3_env_vars(endpoint))
    yield server
    server.stop()
    stop_moto()


def is_s3(server: RunningServer) -> bool:
    return "ingest-s3" in str(server.data_dir)


def upload(server: RunningServer, file_name: str, data: bytes, tmp_path: Path) -> tuple[bool, bytes]:
    vms = official_vms_service(server)
    url = vms.get_resource_upload_url({"FileName": file_name})["Result"]["UploadUrl"]
    path = tmp_path / "upload.bin"
    path.write_bytes(data)
    ok, body = vms.put(url, str(path), {})
    return bool(ok), bytes(body)


def commit(server: RunningServer, file_name: str, type_: int | None = None) -> httpx.Response:
    body: dict[str, Any] = {"FileName": file_name}
    if type_ is not None:
        body["Type"] = type_
    return signed_request(server, "CommitResourceUpload", body)


def record(server: RunningServer, type_: int, key: str) -> dict[str, Any]:
    page = official_vms_service(server).query_open_get_resource({"Type": type_, "Keyword": key})["Result"]
    assert page["Total"] == 1
    return dict(page["Records"][0])


def test_upload_and_commit_wav_with_the_official_sdk(audio_server: RunningServer, tmp_path: Path) -> None:
    name = f"greeting-{uuid.uuid4().hex[:6]}.wav"
    ok, _ = upload(audio_server, name, make_wav(3.4, sample_rate=8000), tmp_path)
    assert ok
    result = official_vms_service(audio_server).commit_resource_upload({"FileName": name})["Result"]
    assert result["Name"] == name and result["Suffix"] == ".wav"
    rec = record(audio_server, 0, result["ResourceKey"])
    assert (rec["Duration"], rec["Suffix"], rec["Name"], rec["State"], rec["Type"]) == (3, ".wav", name, 1, 0)


def test_mp3_named_wav_gets_its_real_suffix_and_ivr_type(audio_server: RunningServer, tmp_path: Path) -> None:
    require_ffmpeg()
    name = f"menu-{uuid.uuid4().hex[:6]}.wav"
    assert upload(audio_server, name, make_mp3(5.0), tmp_path)[0]
    response = commit(audio_server, name, type_=2)
    assert response.status_code == 200, response.text
    key = response.json()["Result"]["ResourceKey"]
    assert response.json()["Result"]["Suffix"] == ".mp3"
    rec = record(audio_server, 2, key)
    assert rec["Duration"] == 5 and rec["Type"] == 2


def test_generated_sdk_upload_flow_and_idempotent_commit(audio_server: RunningServer) -> None:
    from volcenginesdkvms.models import CommitResourceUploadRequest, GetResourceUploadUrlRequest

    api = generated_vms_api(audio_server)
    name = f"gen-{uuid.uuid4().hex[:6]}.wav"
    url = api.get_resource_upload_url(GetResourceUploadUrlRequest(file_name=name)).upload_url
    assert httpx.put(url, content=make_wav(1.0)).status_code == 200
    first = api.commit_resource_upload(CommitResourceUploadRequest(file_name=name))
    again = api.commit_resource_upload(CommitResourceUploadRequest(file_name=name))
    assert first.resource_key == again.resource_key and first.suffix == ".wav"
    # The FileName is taken now: no new upload URL for it.
    assert (
        error_code(signed_request(audio_server, "GetResourceUploadUrl", {"FileName": name}))
        == "NOT_REPET_INVOCK"
    )


def test_commit_of_a_file_never_uploaded(audio_server: RunningServer) -> None:
    response = commit(audio_server, f"ghost-{uuid.uuid4().hex}.mp3")
    assert response.status_code == 404 and error_code(response) == "RESOURCE_IS_NONE"


def _truncated_mp3() -> bytes:
    require_ffmpeg()
    data = make_mp3(4.0)
    return data[: len(data) // 3] + os.urandom(200)


BAD_FILES = [
    ("text.mp3", lambda: b"this is not audio at all\n" * 40, "FILE_ANALYSE_ERROR"),
    ("random.wav", lambda: os.urandom(20000), "FILE_ANALYSE_ERROR"),
    ("truncated.mp3", _truncated_mp3, "FILE_ANALYSE_ERROR"),
    ("empty.mp3", lambda: b"", "EMPTY_RESOURCE_BODY"),
    ("ogg.wav", lambda: (require_ffmpeg(), make_ogg(2.0))[1], "FILE_ANALYSE_ERROR"),
]


@pytest.mark.parametrize(("suffix", "make", "code"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_files_are_refused_at_commit(
    audio_server: RunningServer, tmp_path: Path, suffix: str, make: Any, code: str
) -> None:
    name = f"bad-{uuid.uuid4().hex[:6]}-{suffix}"
    assert upload(audio_server, name, make(), tmp_path)[0]
    response = commit(audio_server, name)
    assert response.status_code == 400 and error_code(response) == code
    assert (
        signed_request(audio_server, "QueryOpenGetResource", {"Type": 0, "Keyword": name}).json()["Result"][
            "Total"
        ]
        == 0
    )


def test_five_megabytes_plus_one_byte(audio_server: RunningServer, tmp_path: Path) -> None:
    name = f"huge-{uuid.uuid4().hex[:6]}.wav"
    data = make_wav(1.0) + b"\0" * (5 * 1024 * 1024)
    data = data[: 5 * 1024 * 1024 + 1]
    ok, body = upload(audio_server, name, data, tmp_path)
    if is_s3(audio_server):
        assert ok  # the bucket takes it; the commit measures it
        response = commit(audio_server, name)
        assert error_code(response) == "RESOURCE_SIZE_OVER_LIMIT"
    else:
        assert not ok and b"RESOURCE_SIZE_OVER_LIMIT" in body


def test_local_upload_url_rules(tmp_path: Path, database_url: str | None) -> None:
    server = start_embedded_server(tmp_path / "data", database_url)
    try:
        vms = official_vms_service(server)
        url = vms.get_resource_upload_url({"FileName": "once.wav"})["Result"]["UploadUrl"]
        assert url.startswith(server.url + "/upload/")
        head, _, mac = url.rpartition(".")
        tampered = httpx.put(head + "." + ("A" if mac[0] != "A" else "B") + mac[1:], content=make_wav(1.0))
        assert tampered.status_code == 403 and error_code(tampered) == "AccessDenied"

        assert httpx.put(url, content=make_wav(1.0)).status_code == 200
        second = httpx.put(url, content=make_wav(1.0))
        assert second.status_code == 400 and error_code(second) == "NOT_REPET_INVOCK"

        # An expired token, made with the server's own key, as a URL from 11 minutes ago would be.
        sealed = server.sql("SELECT value FROM server_secrets WHERE name = 'url_token_key'")[0][0]
        keyring = load_keyring(str(server.data_dir), None, create=False)
        key = bytes.fromhex(keyring.decrypt(sealed, secret_context("url_token_key")))
        nonce = server.sql("SELECT nonce FROM uploads")[0][0]
        expired = make_token(key, "up", {"n": nonce, "a": 1}, int(time.time()) - 60)
        late = httpx.put(f"{server.url}/upload/{expired}", content=make_wav(1.0))
        assert late.status_code == 403 and "expired" in late.json()["ResponseMetadata"]["Error"]["Message"]

        if shutil.which("curl"):
            curl_url = vms.get_resource_upload_url({"FileName": "curl.wav"})["Result"]["UploadUrl"]
            path = tmp_path / "curl.wav"
            path.write_bytes(make_wav(2.0))
            out = subprocess.run(
                ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-T", str(path), curl_url],
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert out.stdout == "200"
            assert commit(server, "curl.wav").json()["Result"]["Suffix"] == ".wav"
    finally:
        server.stop()


def test_download_urls_and_delete_removes_the_audio(audio_server: RunningServer, tmp_path: Path) -> None:
    name = f"dl-{uuid.uuid4().hex[:6]}.wav"
    original = make_wav(2.0, sample_rate=16000, channels=2)
    assert upload(audio_server, name, original, tmp_path)[0]
    key = commit(audio_server, name).json()["Result"]["ResourceKey"]

    got = signed_request(audio_server, "GetResourceDownloadUrl", {"ResourceKey": key}).json()["Result"]
    assert httpx.get(got["Url"]).content == original
    telephony = signed_request(
        audio_server, "GetResourceDownloadUrl", {"ResourceKey": key, "Rendition": "telephony"}
    )
    if telephony.status_code == 200:
        with wave.open(BytesIO(httpx.get(telephony.json()["Result"]["Url"]).content)) as w:
            assert (w.getframerate(), w.getnchannels()) == (8000, 1)
    else:
        assert shutil.which("ffmpeg") is None  # no rendition only when ffmpeg is absent

    assert signed_request(audio_server, "OpenDeleteResource", {"ResourceKey": key}).status_code == 200
    assert httpx.get(got["Url"]).status_code in (403, 404)
    if not is_s3(audio_server):
        assert not [p for p in (audio_server.data_dir / "blobs").rglob("*") if p.is_file() and key in str(p)]


class _AudioHandler(BaseHTTPRequestHandler):
    payload = b""

    def do_GET(self) -> None:
        if self.path == "/redirect-private":
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.2:{self.server.server_address[1]}/a.wav")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.payload)))
        self.end_headers()
        self.wfile.write(self.payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def audio_origin() -> Iterator[str]:
    _AudioHandler.payload = make_wav(2.0)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _AudioHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_fetch_resource_from_an_allowed_host(
    tmp_path: Path, audio_origin: str, database_url: str | None
) -> None:
    server = start_embedded_server(
        tmp_path / "data", database_url, serve_args=["--fetch-allow-host", "127.0.0.1"]
    )
    try:
        vms = official_vms_service(server)
        result = vms.fetch_resource({"Url": f"{audio_origin}/a.wav", "Name": "fetched.wav"})["Result"]
        assert result["Suffix"] == ".wav" and result["Name"] == "fetched.wav"
        assert record(server, 0, result["ResourceKey"])["Duration"] == 2
        again = vms.fetch_resource({"Url": f"{audio_origin}/a.wav", "Name": "fetched.wav"})["Result"]
        assert again["ResourceKey"] == result["ResourceKey"]

        refused = signed_request(
            server, "FetchResource", {"Url": f"{audio_origin}/redirect-private", "Name": "r"}
        )
        assert error_code(refused) == "InvalidParameter"
        other_loopback = audio_origin.replace("127.0.0.1", "127.0.0.3")
        refused = signed_request(server, "FetchResource", {"Url": other_loopback + "/a.wav", "Name": "r"})
        assert error_code(refused) == "InvalidParameter"
        message = refused.json()["ResponseMetadata"]["Error"]["Message"]
        assert "--fetch-allow-host 127.0.0.3" in message and "VMSRES_FETCH_ALLOW_HOST" in message
        assert error_code(signed_request(server, "FetchResource", {"Name": "r"})) == "URL_IS_NONE"
        assert error_code(signed_request(server, "FetchResource", {"Url": "ftp://x/a.wav", "Name": "r"})) == (
            "InvalidParameter"
        )
    finally:
        server.stop()


def test_garbage_collection_of_expired_uploads(tmp_path: Path) -> None:
    from vmsres.server.service.services import open_services
    from vmsres.server.settings import Settings

    server = start_embedded_server(tmp_path / "data")
    try:
        vms = official_vms_service(server)
        url = vms.get_resource_upload_url({"FileName": "abandoned.wav"})["Result"]["UploadUrl"]
        assert httpx.put(url, content=make_wav(1.0)).status_code == 200
    finally:
        server.stop()
    staging = list((tmp_path / "data" / "blobs" / "staging").rglob("*"))
    assert [p for p in staging if p.is_file()]

    async def collect(offset: float) -> Any:
        services = open_services(
            Settings(data_dir=str(tmp_path / "data")), clock=lambda: time.time() + offset
        )
        try:
            return await services.ingest.collect_garbage()
        finally:
            await services.close()

    assert asyncio.run(collect(0)).expired_uploads == 0
    assert asyncio.run(collect(2 * 3600)).expired_uploads == 1
    assert not [p for p in (tmp_path / "data" / "blobs" / "staging").rglob("*") if p.is_file()]


def test_review_rules_apply_to_uploaded_audio(tmp_path: Path, database_url: str | None) -> None:
    server = start_embedded_server(
        tmp_path / "data",
        database_url,
        serve_args=["--review", "auto-then-manual", "--min-audio-seconds", "2"],
    )
    try:
        outcomes = {}
        for name, data in (
            ("speech.wav", make_wav(3.0)),
            ("silence.wav", make_silence(3.0)),
            ("short.wav", make_wav(1.0)),
        ):
            assert upload(server, name, data, tmp_path)[0]
            key = commit(server, name).json()["Result"]["ResourceKey"]
            outcomes[name] = record(server, 0, key)
        # Clearly bad is rejected at once with its reason; the rest waits for an operator.
        assert outcomes["speech.wav"]["State"] == 0
        assert outcomes["silence.wav"]["State"] == 2 and outcomes["silence.wav"]["RejectReason"]
        assert outcomes["short.wav"]["State"] == 2 and outcomes["short.wav"]["RejectReason"]
    finally:
        server.stop()
