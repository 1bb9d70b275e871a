"""Telephony renditions without ffmpeg: visible, pending, and made once ffmpeg is there.

vmsres finds ffmpeg on PATH or where VMSRES_FFMPEG names it; these tests point VMSRES_FFMPEG at a
path that holds nothing (ffmpeg "not installed") and later put the real ffmpeg there.
"""

from __future__ import annotations

import json
import os
import uuid
import wave
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx

from tests.audio_factory import make_wav, require_ffmpeg
from tests.conftest import official_vms_service
from tests.servers import RunningServer, migrate_to, run_cli, start_server, wait_for
from tests.wire_client import error_code, signed_request
from vmsres.server.masterkey import load_keyring

MISSING_NOTE = {"status": "ready", "ffmpeg": "missing: telephony renditions are pending"}


def _status_and_note(readyz: dict[str, Any]) -> dict[str, Any]:
    """/readyz without its per-dependency report: the status and the ffmpeg note, if any."""
    return {k: v for k, v in readyz.items() if k != "dependencies"}


WARNING = "ffmpeg not found"


def _env(ffmpeg: str | None) -> dict[str, str]:
    """The environment of a vmsres process: ffmpeg where ``ffmpeg`` says, or found on PATH (None)."""
    env = dict(os.environ)
    env.pop("VMSRES_FFMPEG", None)
    if ffmpeg is not None:
        env["VMSRES_FFMPEG"] = ffmpeg
    return env


def _commit_wav(server: RunningServer, tmp_path: Path) -> str:
    name = f"prompt-{uuid.uuid4().hex[:8]}.wav"
    vms = official_vms_service(server)
    url = vms.get_resource_upload_url({"FileName": name})["Result"]["UploadUrl"]
    assert httpx.put(url, content=make_wav(2.0, sample_rate=16000, channels=2)).status_code == 200
    committed = signed_request(server, "CommitResourceUpload", {"FileName": name})
    assert committed.status_code == 200, committed.text
    return str(committed.json()["Result"]["ResourceKey"])


def _telephony(server: RunningServer, key: str) -> httpx.Response:
    return signed_request(server, "GetResourceDownloadUrl", {"ResourceKey": key, "Rendition": "telephony"})


def _telephony_wav(server: RunningServer, key: str) -> tuple[int, int, int] | None:
    answer = _telephony(server, key)
    if answer.status_code != 200:
        return None
    with wave.open(BytesIO(httpx.get(answer.json()["Result"]["Url"]).content)) as reader:
        return reader.getframerate(), reader.getnchannels(), reader.getnframes()


def _pending(server: RunningServer, key: str) -> bool:
    [(pending,)] = server.sql("SELECT rendition_pending FROM resources WHERE resource_key = :k", {"k": key})
    return bool(pending)


def _rebuild(server: RunningServer, ffmpeg: str | None, *extra: str) -> Any:
    return run_cli("renditions", "rebuild", *extra, *server.store_args(), check=False, env=_env(ffmpeg))


def test_without_ffmpeg_renditions_are_pending_and_rebuild_makes_them(
    tmp_path: Path, database_url: str | None
) -> None:
    require_ffmpeg()
    absent = str(tmp_path / "no-ffmpeg-here" / "ffmpeg")
    server = start_server(tmp_path / "data", env={"VMSRES_FFMPEG": absent}, database_url=database_url)
    try:
        assert sum(WARNING in line for line in server.log_lines()) == 1
        ready = httpx.get(f"{server.url}/readyz")
        assert ready.status_code == 200 and _status_and_note(ready.json()) == MISSING_NOTE

        key = _commit_wav(server, tmp_path)
        assert _pending(server, key)
        refused = _telephony(server, key)
        assert refused.status_code == 400 and error_code(refused) == "InvalidParameter"
        message = refused.json()["ResponseMetadata"]["Error"]["Message"]
        assert "pending" in message and "ffmpeg is not installed on the server" in message
        assert "vmsres renditions rebuild" in message
        original = signed_request(server, "GetResourceDownloadUrl", {"ResourceKey": key})
        assert original.status_code == 200

        still_missing = _rebuild(server, absent)
        assert still_missing.returncode == 1
        assert WARNING in still_missing.stderr and "still pending: 1" in still_missing.stderr
        assert _pending(server, key)

        rebuilt = _rebuild(server, None, "--json")
        assert rebuilt.returncode == 0, rebuilt.stderr
        assert json.loads(rebuilt.stdout) == {
            "made": 1,
            "failed": 0,
            "storage_errors": 0,
            "pending": 0,
            "levels_measured": 1,
            "levels_pending": 0,
        }
        assert not _pending(server, key)
        # The running server (still without ffmpeg) serves what the command made.
        assert _telephony_wav(server, key) == (8000, 1, 16000)
        again = _rebuild(server, None, "--json")
        assert json.loads(again.stdout) == {
            "made": 0,
            "failed": 0,
            "storage_errors": 0,
            "pending": 0,
            "levels_measured": 0,
            "levels_pending": 0,
        }
    finally:
        server.stop()


def test_a_server_makes_pending_renditions_once_ffmpeg_is_there(
    tmp_path: Path, database_url: str | None
) -> None:
    ffmpeg = require_ffmpeg()
    data = tmp_path / "data"
    installed = tmp_path / "bin" / "ffmpeg"
    without = {"VMSRES_FFMPEG": str(installed)}

    first = start_server(data, env=without, database_url=database_url)
    try:
        before_restart = _commit_wav(first, tmp_path)
        assert _pending(first, before_restart)
    finally:
        first.stop()

    # Restarted where ffmpeg is found: the pass at start makes it (no collection interval at all).
    restarted = start_server(data, ["--gc-interval", "0"], database_url=database_url)
    try:
        assert not any(WARNING in line for line in restarted.log_lines())
        assert _status_and_note(httpx.get(f"{restarted.url}/readyz").json()) == {"status": "ready"}
        made = wait_for(lambda: _telephony_wav(restarted, before_restart), what="rendition made at start")
        assert made == (8000, 1, 16000)
        assert not _pending(restarted, before_restart)
    finally:
        restarted.stop()

    # ffmpeg installed while the server runs: found at the next interval.
    running = start_server(data, ["--gc-interval", "1"], env=without, database_url=database_url)
    try:
        while_running = _commit_wav(running, tmp_path)
        assert _pending(running, while_running)
        installed.parent.mkdir()
        installed.symlink_to(ffmpeg)
        made = wait_for(lambda: _telephony_wav(running, while_running), what="rendition made once found")
        assert made == (8000, 1, 16000)
        assert _status_and_note(httpx.get(f"{running.url}/readyz").json()) == {"status": "ready"}
        logged = [json.loads(line) for line in running.log_lines() if '"event":"renditions"' in line]
        assert [(e["made"], e["failed"]) for e in logged] == [(1, 0)]
    finally:
        running.stop()


def test_migration_marks_audio_stored_without_a_rendition_pending(
    tmp_path: Path, database_url: str | None
) -> None:
    """A store from before 0010_rendition_pending: its audio without a rendition is made later."""
    require_ffmpeg()
    data = tmp_path / "data"
    server = start_server(data, env={"VMSRES_FFMPEG": ""}, database_url=database_url)
    try:
        key = _commit_wav(server, tmp_path)
        tts = official_vms_service(server).create_tts({"Name": "t", "TtsTemplateContent": "hi"})
        tts_key = tts["Result"]["ResourceKey"]
    finally:
        server.stop()
    keyring = load_keyring(data, None, create=False)
    migrate_to(server.store_url, "0009_positions", keyring, downgrade=True)
    migrate_to(server.store_url, "head", keyring)
    assert _pending(server, key) and not _pending(server, tts_key)
    rebuilt = _rebuild(server, None, "--json")
    assert json.loads(rebuilt.stdout)["made"] == 1 and not _pending(server, key)
