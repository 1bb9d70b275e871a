"""vmsres backup under write load, vmsres restore, and a restored server that serves every record."""

from __future__ import annotations

import hashlib
import shutil
import threading
from pathlib import Path

import httpx

from tests.audio_factory import make_wav
from tests.servers import RunningServer, run_cli, start_server
from tests.wire_client import signed_request


def _commit(server: RunningServer, name: str, seconds: float) -> str:
    response = signed_request(server, "GetResourceUploadUrl", {"FileName": name})
    assert response.status_code == 200, response.text
    put = httpx.put(response.json()["Result"]["UploadUrl"], content=make_wav(seconds, sample_rate=8000))
    assert put.status_code == 200, put.text
    response = signed_request(server, "CommitResourceUpload", {"FileName": name})
    assert response.status_code == 200, response.text
    return str(response.json()["Result"]["ResourceKey"])


def _records(server: RunningServer) -> list[dict[str, object]]:
    records: list[dict[str, object]] = []
    while True:
        page = signed_request(
            server, "QueryOpenGetResource", {"Type": 0, "Limit": 100, "Offset": len(records)}
        ).json()["Result"]
        records += page["Records"]
        if len(records) >= page["Total"] or not page["Records"]:
            return records


def _write_until(server: RunningServer, stop: threading.Event, failures: list[str], done: list[str]) -> None:
    serial = 0
    while not stop.is_set():
        serial += 1
        try:
            key = _commit(server, f"during-{serial}.wav", 0.2 + serial % 5 * 0.1)
            done.append(key)
            if serial % 3 == 0:
                # Deletes during the backup: a row in the snapshot may lose its blob meanwhile.
                deleted = signed_request(server, "OpenDeleteResource", query={"ResourceKey": done.pop(0)})
                assert deleted.status_code == 200, deleted.text
        except Exception as error:  # reported by the test, not lost in the thread
            failures.append(repr(error))
            return


def test_backup_under_write_load_restores_a_consistent_store(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = start_server(data, ["--gc-interval", "0"])
    stop, failures, written = threading.Event(), [], []
    try:
        for i in range(5):
            _commit(server, f"before-{i}.wav", 0.3 + i * 0.1)
        writer = threading.Thread(target=_write_until, args=(server, stop, failures, written), daemon=True)
        writer.start()
        archive = tmp_path / "snapshot.tar"
        # Back up while the writer is busy, several times, so snapshots land amid commits and deletes.
        for attempt in range(3):
            done = run_cli("backup", str(archive), *server.store_args())
            assert "backed up" in done.stdout, done.stderr
            assert attempt == 2 or archive.exists()
        stop.set()
        writer.join(timeout=60)
        assert not failures, failures
        assert written, "the writer made nothing while the backups ran"
    finally:
        stop.set()
        server.stop()

    restored = tmp_path / "restored"
    done = run_cli("restore", str(archive), "--data-dir", str(restored))
    assert "master key" in done.stdout
    shutil.copy2(data / "master.key", restored / "master.key")
    again = run_cli("restore", str(archive), "--data-dir", str(restored), check=False)
    assert again.returncode == 1 and "not empty" in again.stderr

    server = start_server(restored, ["--gc-interval", "0"])
    try:
        records = _records(server)
        assert len(records) >= 5
        names = {r["Name"] for r in records}
        assert {f"before-{i}.wav" for i in range(5)} <= names
        for record in records:
            url = signed_request(
                server, "GetResourceDownloadUrl", {"ResourceKey": record["ResourceKey"]}
            ).json()["Result"]["Url"]
            audio = httpx.get(url, timeout=30)
            assert audio.status_code == 200, (record, audio.text)
            [(sha,)] = server.sql(
                "SELECT sha256 FROM resources WHERE resource_key = :k", {"k": record["ResourceKey"]}
            )
            assert hashlib.sha256(audio.content).hexdigest() == sha
        [(integrity,)] = server.sql("PRAGMA integrity_check")
        assert integrity == "ok"
        # The counts the triggers keep agree with the rows that survived.
        [(total,)] = server.sql("SELECT count(*) FROM resources WHERE type = 0")
        page = signed_request(server, "QueryOpenGetResource", {"Type": 0, "Limit": 1}).json()["Result"]
        assert page["Total"] == total == len(records)
    finally:
        server.stop()


def test_backup_refuses_postgresql(tmp_path: Path) -> None:
    done = run_cli(
        "backup",
        str(tmp_path / "x.tar"),
        "--database-url",
        "postgresql://nobody@127.0.0.1:1/none",
        check=False,
    )
    assert done.returncode == 1 and "pg_dump" in done.stderr
