"""upload() and ``vmsres res upload`` against a loopback peer speaking the documented upload protocol.

The real server answers GetResourceUploadUrl with InvalidAction until issue 3 lands; these tests
exercise the client's side now (tests/upload_peer.py), tests/test_client_upload.py does the same
against the real server once it can.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.audio import write_wav
from tests.servers import run_cli
from tests.upload_peer import ACCESS_KEY, SECRET, UploadPeer, upload_peer
from vmsres.client import AsyncClient, Client, RetryPolicy, StoredResource
from vmsres.client.cli import UploadProgress
from vmsres.protocol.errors import FileAnalyseError

FAST = RetryPolicy(attempts=3, base_delay=0.001, max_delay=0.002)


@pytest.fixture
def peer() -> Any:
    with upload_peer() as running:
        yield running


def _client(peer: UploadPeer) -> Client:
    return Client(ACCESS_KEY, SECRET, endpoint=peer.url, retry=FAST)


def test_upload_puts_the_bytes_and_commits(peer: UploadPeer, tmp_path: Path) -> None:
    path = write_wav(tmp_path / "greeting.wav", seconds=3)
    reports: list[tuple[int, int]] = []
    with _client(peer) as client:
        stored = client.upload(path, 2, progress=lambda sent, total: reports.append((sent, total)))
    assert peer.actions == ["GetResourceUploadUrl", "PUT", "CommitResourceUpload"]
    assert peer.uploaded["greeting.wav"] == path.read_bytes()
    assert stored == StoredResource(peer.committed[0]["ResourceKey"], "greeting", ".wav")
    assert peer.committed[0]["Type"] == 2
    size = path.stat().st_size
    assert reports[0] == (0, size) and reports[-1] == (size, size)
    assert len(reports) > 2  # several chunks, each reported
    assert [s for s, _ in reports] == sorted(s for s, _ in reports)


def test_upload_under_another_name_and_through_a_flaky_put(peer: UploadPeer, tmp_path: Path) -> None:
    peer.flaky_puts = 2
    path = write_wav(tmp_path / "local.wav")
    with _client(peer) as client:
        stored = client.upload(path, name="remote.wav")
    assert stored.name == "remote"
    assert peer.actions == ["GetResourceUploadUrl", "PUT", "PUT", "PUT", "CommitResourceUpload"]
    assert peer.uploaded["remote.wav"] == path.read_bytes()


def test_a_refused_commit_raises_its_class(peer: UploadPeer, tmp_path: Path) -> None:
    peer.refuse.add("noise.wav")
    with _client(peer) as client, pytest.raises(FileAnalyseError):
        client.upload(write_wav(tmp_path / "noise.wav"))


def test_async_upload(peer: UploadPeer, tmp_path: Path) -> None:
    paths = [write_wav(tmp_path / f"a{i}.wav", seconds=2) for i in range(3)]

    async def scenario() -> list[StoredResource]:
        async with AsyncClient(ACCESS_KEY, SECRET, endpoint=peer.url, retry=FAST) as client:
            return list(await asyncio.gather(*(client.upload(p) for p in paths)))

    stored = asyncio.run(scenario())
    assert sorted(s.name for s in stored) == ["a0", "a1", "a2"]
    assert {name: data for name, data in peer.uploaded.items()} == {p.name: p.read_bytes() for p in paths}


# --- The CLI ----------------------------------------------------------------------------------


def _env(peer: UploadPeer, tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return dict(
        os.environ,
        HOME=str(home),
        VMSRES_ENDPOINT=peer.url,
        VOLC_ACCESSKEY=ACCESS_KEY,
        VOLC_SECRETKEY=SECRET,
    )


def upload(peer: UploadPeer, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("res", "upload", *args, check=False, env=_env(peer, tmp_path))


def test_cli_uploads_a_folder_and_resumes(peer: UploadPeer, tmp_path: Path) -> None:
    folder = tmp_path / "sounds"
    folder.mkdir()
    for name in ("one.wav", "two.WAV", "three.wav"):
        write_wav(folder / name)
    (folder / "notes.txt").write_text("not audio")

    first = upload(peer, tmp_path, str(folder), "--concurrency", "2")
    assert first.returncode == 0, first.stderr
    assert sorted(peer.uploaded) == ["one.wav", "three.wav", "two.WAV"]
    lines = first.stderr.splitlines()
    assert sorted(line.split(":")[0].split()[-1] for line in lines[:-1]) == [
        "one.wav",
        "three.wav",
        "two.WAV",
    ]
    assert all(line.startswith("uploaded ") for line in lines[:-1])
    assert lines[-1] == "3 uploaded, 0 skipped, 0 failed"
    header, *rows = first.stdout.splitlines()
    assert header.split() == ["STATUS", "FILE", "NAME", "RESOURCE", "KEY", "ERROR"]
    assert sorted(r.split()[:2] for r in rows) == [
        ["uploaded", "one.wav"],
        ["uploaded", "three.wav"],
        ["uploaded", "two.WAV"],
    ]

    # Again, plus one new file: only the new one goes up.
    write_wav(folder / "four.wav")
    calls_before = peer.actions.count("GetResourceUploadUrl")
    again = upload(peer, tmp_path, str(folder), "--json")
    assert again.returncode == 0, again.stderr
    assert peer.actions.count("GetResourceUploadUrl") == calls_before + 1
    result = {r["FileName"]: r for r in json.loads(again.stdout)}
    assert {n: r["Status"] for n, r in result.items()} == {
        "four.wav": "uploaded",
        "one.wav": "skipped",
        "three.wav": "skipped",
        "two.WAV": "skipped",
    }
    keys = {r["Name"] + r["Suffix"]: r["ResourceKey"] for r in peer.committed}
    assert result["one.wav"]["ResourceKey"] == keys["one.wav"]
    assert again.stderr.splitlines()[-1] == "1 uploaded, 3 skipped, 0 failed"


def test_cli_reports_partial_failure(peer: UploadPeer, tmp_path: Path) -> None:
    good, bad = write_wav(tmp_path / "good.wav"), write_wav(tmp_path / "bad.wav")
    peer.refuse.add("bad.wav")
    done = upload(peer, tmp_path, str(good), str(bad), "--json", "--type", "2")
    assert done.returncode == 1
    rows = {r["FileName"]: r for r in json.loads(done.stdout)}
    assert rows["good.wav"]["Status"] == "uploaded"
    assert rows["bad.wav"]["Status"] == "failed"
    assert rows["bad.wav"]["Error"]["Code"] == "FILE_ANALYSE_ERROR"
    assert rows["bad.wav"]["Error"]["RequestId"]
    [failed_line] = [line for line in done.stderr.splitlines() if line.startswith("failed")]
    assert "bad.wav: FILE_ANALYSE_ERROR: " in failed_line and "RequestId" in failed_line
    assert {r["Type"] for r in peer.committed} == {2}


def test_cli_upload_usage_and_credentials(peer: UploadPeer, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    write_wav(tmp_path / "a" / "same.wav")
    write_wav(tmp_path / "b" / "same.wav")
    duplicate = upload(peer, tmp_path, str(tmp_path / "a"), str(tmp_path / "b"))
    assert duplicate.returncode == 2 and "same FileName" in duplicate.stderr
    missing = upload(peer, tmp_path, str(tmp_path / "nope.wav"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    assert upload(peer, tmp_path, str(empty)).returncode == 2
    wrong = upload(peer, tmp_path, str(tmp_path / "a"), "--secret-key", "wrong", "--access-key", ACCESS_KEY)
    assert wrong.returncode == 1 and "SignatureNotMatch" in wrong.stderr
    assert peer.uploaded == {}


def test_cli_fetch(peer: UploadPeer, tmp_path: Path) -> None:
    done = run_cli(
        "res",
        "fetch",
        "https://example.com/hello.mp3",
        "--name",
        "hello",
        "--type",
        "2",
        check=False,
        env=_env(peer, tmp_path),
    )
    assert done.returncode == 0, done.stderr
    [record] = peer.committed
    assert (record["Url"], record["Name"], record["Type"]) == ("https://example.com/hello.mp3", "hello", 2)
    # The Name as stored, "hello"; the format (Suffix) apart, not glued to the name.
    assert done.stdout == f"fetched {record['ResourceKey']}  hello  (mp3)\n"
    refused = run_cli("res", "fetch", " ", "--name", "x", check=False, env=_env(peer, tmp_path))
    assert refused.returncode == 1 and refused.stderr.startswith("vmsres: URL_IS_NONE: ")


class _Terminal:
    """A text sink that says it is a terminal, to see the redrawn status line."""

    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> int:
        self.text += text
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return True


def test_progress_on_a_terminal_redraws_one_line() -> None:
    sink = _Terminal()
    progress = UploadProgress(sink, files=2, total_bytes=2_000_000)  # type: ignore[arg-type]
    report = progress.callback("a.wav")
    report(0, 1_000_000)
    report(500_000, 1_000_000)
    assert sink.text.endswith("\r\x1b[K[0/2] 0.5 of 2.0 MB")
    progress.line("uploaded a.wav: k", "a.wav", 1_000_000)
    assert sink.text.endswith("\r\x1b[Kuploaded a.wav: k\n\r\x1b[K[1/2] 1.0 of 2.0 MB")
    progress.close()
    assert sink.text.endswith("\r\x1b[K")
