"""vmsres backup and restore on every store, under write load, across stores, and on bad input."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import shutil
import sqlite3
import tarfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.audio_factory import make_silence, make_wav, require_ffmpeg
from tests.conftest import official_vms_service
from tests.s3_server import create_bucket, s3_endpoint, s3_env_vars  # noqa: F401
from tests.servers import (
    TEST_SECRET_KEY,
    RunningServer,
    provision_database,
    run_cli,
    run_sql,
    start_server,
)
from tests.webhook_receiver import Receiver
from tests.wire_client import signed_request
from vmsres.ops.backup import BlobHold
from vmsres.server.masterkey import CHECK_SECRET_NAME, generate_key_text, load_keyring
from vmsres.server.service.shared_secrets import secret_context
from vmsres.server.settings import Settings, database_url_for_dir

TOKEN = "admin-test-token-4f9c2a7e1b"
WEBHOOK_SECRET = f"whsec-backup-{uuid.uuid4().hex}"
SERVER_ARGS = ["--gc-interval", "0", "--admin-token", TOKEN, "--webhook-poll", "0.2"]


@dataclass
class Store:
    """Where one deployment keeps its rows and audio: SQLite or PostgreSQL, a folder or S3."""

    data_dir: Path
    database_url: str | None
    blob_url: str | None
    env: dict[str, str] = field(default_factory=dict)

    def args(self) -> list[str]:
        args = ["--data-dir", str(self.data_dir)]
        if self.database_url:
            args += ["--database-url", self.database_url]
        return [*args, "--blob-url", self.blob_url] if self.blob_url else args

    def start(self) -> RunningServer:
        blob_args = ["--blob-url", self.blob_url] if self.blob_url else []
        return start_server(
            self.data_dir, [*SERVER_ARGS, *blob_args], env=self.env, database_url=self.database_url
        )

    def cli(self, *args: str, check: bool = True) -> Any:
        return run_cli(*args, *self.args(), check=check, env={**os.environ, **self.env})

    def settings(self) -> Settings:
        return Settings(data_dir=str(self.data_dir), database_url=self.database_url, blob_url=self.blob_url)


@contextlib.contextmanager
def make_store(kind: str, folder: Path, s3: str | None = None) -> Iterator[Store]:
    """``kind`` is "<sqlite|postgresql>+<disk|s3>"; a fresh database and bucket every time."""
    database, blobs = kind.split("+")
    with provision_database(database) as url:
        if blobs == "disk":
            yield Store(folder, url, None)
        else:
            assert s3 is not None
            yield Store(folder, url, f"s3://{create_bucket(s3)}/vmsres", s3_env_vars(s3))


def _upload(server: RunningServer, name: str, audio: bytes) -> str:
    response = signed_request(server, "GetResourceUploadUrl", {"FileName": name})
    assert response.status_code == 200, response.text
    put = httpx.put(response.json()["Result"]["UploadUrl"], content=audio, timeout=30)
    assert put.status_code == 200, put.text
    response = signed_request(server, "CommitResourceUpload", {"FileName": name})
    assert response.status_code == 200, response.text
    return str(response.json()["Result"]["ResourceKey"])


def _records(server: RunningServer) -> dict[str, dict[str, Any]]:
    """Every resource the official SDK lists, by key, checking Total against the pages."""
    vms = official_vms_service(server)
    found: dict[str, dict[str, Any]] = {}
    for type_ in (0, 1, 2):
        seen: list[dict[str, Any]] = []
        while True:
            page = vms.query_open_get_resource({"Type": type_, "Limit": 100, "Offset": len(seen)})["Result"]
            seen += page["Records"]
            if len(seen) >= page["Total"] or not page["Records"]:
                break
        assert len(seen) == page["Total"], "the counts kept by triggers disagree with the rows"
        found.update({r["ResourceKey"]: r for r in seen})
    return found


def _download_sha256(server: RunningServer, key: str) -> str:
    answer = signed_request(server, "GetResourceDownloadUrl", {"ResourceKey": key})
    assert answer.status_code == 200, answer.text
    audio = httpx.get(answer.json()["Result"]["Url"], timeout=30)
    assert audio.status_code == 200, audio.text
    return hashlib.sha256(audio.content).hexdigest()


@dataclass
class Ledger:
    """What the writer was told, with when: (monotonic start, monotonic end) per acknowledged write."""

    created: dict[str, tuple[str, float, float]] = field(default_factory=dict)  # key -> sha256, start, end
    deleted: dict[str, tuple[float, float]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


def _write_until(server: RunningServer, stop: threading.Event, ledger: Ledger) -> None:
    serial = 0
    live: list[str] = []
    while not stop.is_set():
        serial += 1
        try:
            audio = make_wav(0.2 + serial % 5 * 0.1, sample_rate=8000)
            began = time.monotonic()
            key = _upload(server, f"during-{serial}.wav", audio)
            ledger.created[key] = (hashlib.sha256(audio).hexdigest(), began, time.monotonic())
            live.append(key)
            if serial % 3 == 0:
                # Deletes during the backup: a row in the snapshot loses its row meanwhile, and
                # its audio must still reach the archive.
                victim = live.pop(0)
                began = time.monotonic()
                answer = signed_request(server, "OpenDeleteResource", query={"ResourceKey": victim})
                assert answer.status_code == 200, answer.text
                ledger.deleted[victim] = (began, time.monotonic())
        except Exception as error:  # reported by the test, not lost in the thread
            ledger.failures.append(repr(error))
            return


def _archive_text(archive: Path) -> bytes:
    """The archive as a thief reads it: the raw file and every table decompressed."""
    parts = [archive.read_bytes()]
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            if member.name.endswith(".gz"):
                handle = tar.extractfile(member)
                assert handle is not None
                parts.append(gzip.decompress(handle.read()))
    return b"\n".join(parts)


def _populate_and_back_up(
    source: Store, archive: Path, receiver: Receiver
) -> tuple[Ledger, dict[str, Any], float]:
    """Resources, a webhook, then backups while a writer commits and deletes; returns what the
    writer was told, the last backup's report and when that backup started (monotonic)."""
    server = source.start()
    ledger = Ledger()
    stop = threading.Event()
    try:
        hook = httpx.put(
            f"{server.url}/admin/v1/accounts/default/webhook",
            json={"Url": receiver.url, "Secret": WEBHOOK_SECRET},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert hook.status_code == 200, hook.text
        for i in range(4):
            audio = make_wav(0.3 + i * 0.1, sample_rate=8000)
            began = time.monotonic()
            key = _upload(server, f"before-{i}.wav", audio)
            ledger.created[key] = (hashlib.sha256(audio).hexdigest(), began, time.monotonic())
        vms = official_vms_service(server)
        tts = vms.create_tts({"Name": "greeting", "TtsTemplateContent": "hello #who#"})["Result"]
        ledger.created[tts["ResourceKey"]] = ("", 0.0, time.monotonic())
        writer = threading.Thread(target=_write_until, args=(server, stop, ledger), daemon=True)
        writer.start()
        # Back up while the writer is busy, more than once, so snapshots land amid commits and deletes.
        report: dict[str, Any] = {}
        started = 0.0
        for _ in range(2):
            started = time.monotonic()
            done = source.cli("backup", str(archive), "--json")
            report = json.loads(done.stdout)
            assert report["DroppedMissingBlobs"] == 0, report
        stop.set()
        writer.join(timeout=60)
        assert not ledger.failures, ledger.failures
        assert any(end > started for _, _, end in ledger.created.values()), "no write overlapped the backup"
    finally:
        stop.set()
        server.stop()
    return ledger, report, started


def _check_restored(target: Store, ledger: Ledger, backup_started: float, receiver: Receiver) -> None:
    server = target.start()
    try:
        records = _records(server)
        created_before = {k for k, (_, _, end) in ledger.created.items() if end < backup_started}
        deleted_before = {k for k, (_, end) in ledger.deleted.items() if end < backup_started}
        # Every write acknowledged before the backup began is there, and nothing it had deleted.
        assert created_before - set(ledger.deleted) <= set(records)
        assert not deleted_before & set(records)
        assert set(records) <= set(ledger.created), "a resource nobody created"
        for key, record in records.items():
            expected = ledger.created[key][0]
            if record["Type"] != 1:
                assert _download_sha256(server, key) == expected, record
        # New writes work: ids continue after the restored ones, and the webhook still signs.
        fresh = _upload(server, "after-restore.wav", make_wav(0.5, sample_rate=8000))
        assert fresh in _records(server)
        while True:
            got = receiver.next_event()
            if got.event["Data"].get("ResourceKey") == fresh:
                assert got.signature_ok
                break
    finally:
        server.stop()


def _install_master_key(source: Store, target: Store) -> None:
    target.data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source.data_dir / "master.key", target.data_dir / "master.key")


def _assert_no_plaintext_secrets(archive: Path, report: dict[str, Any], source: Store) -> None:
    keyring = load_keyring(source.data_dir, None, create=False)
    assert report["MasterKeyId"] == keyring.primary_id
    raw = _archive_text(archive)
    assert b"AKLTtestak" in raw and b"vmsk1:" in raw  # the rows are there, sealed
    url = source.database_url or database_url_for_dir(source.data_dir)
    # The deployment's shared secrets (the URL-token key on disk blobs, ...) stay sealed too.
    shared = [
        keyring.decrypt(value, secret_context(name))
        for name, value in run_sql(url, "SELECT name, value FROM server_secrets")
        if name != CHECK_SECRET_NAME
    ]
    for plaintext in (TEST_SECRET_KEY, WEBHOOK_SECRET, *shared):
        assert plaintext.encode() not in raw


@pytest.mark.parametrize("kind", ["sqlite+disk", "postgresql+s3"])
def test_backup_under_write_load_round_trips(tmp_path: Path, s3_endpoint: str, kind: str) -> None:  # noqa: F811
    receiver = Receiver(secret=WEBHOOK_SECRET)
    archive = tmp_path / "snapshot.tar"
    try:
        with make_store(kind, tmp_path / "source", s3_endpoint) as source:
            ledger, report, started = _populate_and_back_up(source, archive, receiver)
            assert report["Resources"] >= 5 and report["Blobs"] >= 8
            _assert_no_plaintext_secrets(archive, report, source)
            with make_store(kind, tmp_path / "target", s3_endpoint) as target:
                _install_master_key(source, target)
                restored = json.loads(target.cli("restore", str(archive), "--json").stdout)
                assert restored["Resources"] == report["Resources"]
                again = target.cli("restore", str(archive), check=False)
                assert again.returncode == 1 and "not empty" in again.stderr, again.stderr
                _check_restored(target, ledger, started, receiver)
    finally:
        receiver.close()


def test_a_backup_moves_sqlite_disk_to_postgresql_s3_and_back(tmp_path: Path, s3_endpoint: str) -> None:  # noqa: F811
    receiver = Receiver(secret=WEBHOOK_SECRET)
    try:
        with (
            make_store("sqlite+disk", tmp_path / "first", s3_endpoint) as first,
            make_store("postgresql+s3", tmp_path / "second", s3_endpoint) as second,
            make_store("sqlite+disk", tmp_path / "third", s3_endpoint) as third,
        ):
            ledger, _, started = _populate_and_back_up(first, tmp_path / "one.tar", receiver)
            _install_master_key(first, second)
            second.cli("restore", str(tmp_path / "one.tar"))
            _check_restored(second, ledger, started, receiver)
            # Back again, with what the PostgreSQL + S3 deployment added on top.
            second.cli("backup", str(tmp_path / "two.tar"))
            _install_master_key(first, third)
            third.cli("restore", str(tmp_path / "two.tar"))
            server = third.start()
            try:
                records = _records(server)
                assert "after-restore.wav" in {r["Name"] for r in records.values()}
                for key, record in records.items():
                    if record["Type"] != 1 and key in ledger.created:
                        assert _download_sha256(server, key) == ledger.created[key][0]
            finally:
                server.stop()
    finally:
        receiver.close()


def test_a_backup_hold_keeps_deleted_audio_until_it_ends(tmp_path: Path, database_url: str | None) -> None:
    import asyncio

    from vmsres.server.service.services import open_services

    store = Store(tmp_path / "data", database_url, None)
    server = store.start()
    try:
        key = _upload(server, "held.wav", make_wav(0.5, sample_rate=8000))
        [(blob_key, rendition_key)] = server.sql(
            "SELECT blob_key, rendition_key FROM resources WHERE resource_key = :k", {"k": key}
        )
        audio = [tmp_path / "data" / "blobs" / k for k in (blob_key, rendition_key) if k]
        with BlobHold(server.store_url):
            deleted = signed_request(server, "OpenDeleteResource", query={"ResourceKey": key})
            assert deleted.status_code == 200, deleted.text
            assert all(path.is_file() for path in audio), "a delete removed audio a backup holds"
            collected = json.loads(store.cli("gc", "--json").stdout)
            assert collected["held_by_backup"] is True
            assert all(path.is_file() for path in audio)
    finally:
        server.stop()

    async def collect(offset: float) -> Any:
        services = open_services(store.settings(), clock=lambda: time.time() + offset)
        try:
            return await services.ingest.collect_garbage()
        finally:
            await services.close()

    # Released: the next collection (its clock an hour on, past the orphan minimum age) removes it.
    report = asyncio.run(collect(2 * 3600))
    assert not report.held_by_backup and report.orphan_blobs == len(audio)
    assert not any(path.exists() for path in audio)


def test_a_killed_backups_hold_expires(tmp_path: Path) -> None:
    import asyncio

    from vmsres.server.service.services import open_services

    store = Store(tmp_path / "data", None, None)
    store.start().stop()
    hold = BlobHold(database_url_for_dir(tmp_path / "data"))
    hold.__enter__()  # and never left, as if the backup process died

    async def collect(offset: float) -> bool:
        services = open_services(store.settings(), clock=lambda: time.time() + offset)
        try:
            return (await services.ingest.collect_garbage()).held_by_backup
        finally:
            await services.close()

    assert asyncio.run(collect(0)) is True
    assert asyncio.run(collect(3600)) is False


# --- A small backup, and what restore makes of bad input ----------------------------------


@pytest.fixture(scope="module")
def small_backup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    """A backup of two audio resources; returns (archive, master key file, key -> sha256)."""
    folder = tmp_path_factory.mktemp("small")
    store = Store(folder / "data", None, None)
    server = store.start()
    try:
        expected = {}
        for i in range(2):
            audio = make_wav(0.4 + i * 0.2, sample_rate=8000)
            expected[_upload(server, f"small-{i}.wav", audio)] = hashlib.sha256(audio).hexdigest()
        archive = folder / "small.tar"
        store.cli("backup", str(archive))
    finally:
        server.stop()
    return archive, folder / "data" / "master.key", expected


def _target(tmp_path: Path, key: Path | None) -> Store:
    target = Store(tmp_path / "target", None, None)
    target.data_dir.mkdir()
    if key is not None:
        shutil.copy2(key, target.data_dir / "master.key")
    return target


def _refused(done: Any, *needles: str) -> None:
    assert done.returncode == 1, done.stdout
    assert "Traceback" not in done.stderr, done.stderr
    for needle in needles:
        assert needle in done.stderr, done.stderr


def _untouched(target: Store) -> None:
    assert sorted(p.name for p in target.data_dir.iterdir()) in ([], ["master.key"])


def test_restore_needs_the_master_key_of_the_backup(
    tmp_path: Path, small_backup: tuple[Path, Path, dict[str, str]]
) -> None:
    archive, _, _ = small_backup
    target = _target(tmp_path, None)
    _refused(target.cli("restore", str(archive), check=False), "restoring needs the master key", "key id")
    _untouched(target)
    (target.data_dir / "master.key").write_text(generate_key_text())
    _refused(target.cli("restore", str(archive), check=False), "needs another master key")
    _untouched(target)


def test_restore_refuses_a_damaged_archive_before_touching_the_target(
    tmp_path: Path, small_backup: tuple[Path, Path, dict[str, str]]
) -> None:
    archive, key, _ = small_backup
    target = _target(tmp_path, key)
    not_tar = tmp_path / "notes.tar"
    not_tar.write_text("hello")
    _refused(target.cli("restore", str(not_tar), check=False), "not a vmsres backup")
    _refused(target.cli("restore", str(tmp_path / "absent.tar"), check=False), "no backup file")
    truncated = tmp_path / "truncated.tar"
    truncated.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    _refused(target.cli("restore", str(truncated), check=False), "damaged")
    # One byte of audio changed inside the archive: its checksum gives it away.
    with tarfile.open(archive) as tar:
        blob = next(m for m in tar.getmembers() if m.name.startswith("blobs/accounts/"))
    raw = bytearray(archive.read_bytes())
    raw[blob.offset_data + blob.size // 2] ^= 0xFF
    tampered = tmp_path / "tampered.tar"
    tampered.write_bytes(bytes(raw))
    _refused(target.cli("restore", str(tampered), check=False), "fails its checksum")
    # A manifest that lacks what restore reads later is refused up front, not half way.
    odd = tmp_path / "odd-manifest.tar"
    with tarfile.open(archive) as tar, tarfile.open(odd, "w") as out:
        for member in tar.getmembers():
            handle = tar.extractfile(member)
            assert handle is not None
            data = handle.read()
            if member.name == "manifest.json":
                manifest = json.loads(data)
                del manifest["tables"][0]["sha256"]
                data = json.dumps(manifest).encode()
            info = tarfile.TarInfo(member.name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))
    _refused(target.cli("restore", str(odd), check=False), "unexpected manifest content")
    _untouched(target)


def test_restore_force_replaces_a_store_that_holds_something(
    tmp_path: Path, small_backup: tuple[Path, Path, dict[str, str]]
) -> None:
    archive, key, expected = small_backup
    target = _target(tmp_path, key)
    server = target.start()
    try:
        _upload(server, "will-be-replaced.wav", make_wav(0.3, sample_rate=8000))
    finally:
        server.stop()
    _refused(target.cli("restore", str(archive), check=False), "not empty", "--force")
    target.cli("restore", str(archive), "--force")
    server = target.start()
    try:
        records = _records(server)
        assert set(records) == set(expected)
        for resource_key, sha in expected.items():
            assert _download_sha256(server, resource_key) == sha
        referenced = {
            k for row in server.sql("SELECT blob_key, rendition_key FROM resources") for k in row if k
        }
    finally:
        server.stop()
    # The replaced store's audio went with it.
    blobs = target.data_dir / "blobs"
    assert {p.relative_to(blobs).as_posix() for p in blobs.rglob("*") if p.is_file()} == referenced


def test_backup_reports_bad_targets_clearly(tmp_path: Path) -> None:
    _refused(
        run_cli("backup", str(tmp_path / "x.tar"), "--data-dir", str(tmp_path / "none"), check=False),
        "no vmsres store at",
    )
    _refused(
        run_cli(
            "backup",
            str(tmp_path / "x.tar"),
            "--database-url",
            "postgresql://nobody@127.0.0.1:1/none",
            check=False,
        ),
        "database:",
    )
    store = Store(tmp_path / "data", None, None)
    store.start().stop()
    _refused(store.cli("backup", str(tmp_path / "missing" / "x.tar"), check=False), "no folder")


def test_an_archive_of_the_earlier_format_restores_into_any_store(
    tmp_path: Path, database_url: str | None
) -> None:
    source = Store(tmp_path / "old", None, None)
    server = source.start()
    try:
        audio = make_wav(0.6, sample_rate=8000)
        key = _upload(server, "old-format.wav", audio)
    finally:
        server.stop()
    # What the SQLite-only `vmsres backup` used to write: the database file and the blob folder.
    legacy = tmp_path / "legacy.tar"
    copy = tmp_path / "vmsres.db"
    with sqlite3.connect(source.data_dir / "vmsres.db") as db, sqlite3.connect(copy) as out:
        db.backup(out)
    with tarfile.open(legacy, "w") as tar:
        tar.add(copy, "vmsres.db")
        tar.add(source.data_dir / "blobs", "blobs")
    target = Store(tmp_path / "new", database_url, None)
    _install_master_key(source, target)
    target.cli("restore", str(legacy))
    server = target.start()
    try:
        assert set(_records(server)) == {key}
        assert _download_sha256(server, key) == hashlib.sha256(audio).hexdigest()
    finally:
        server.stop()


def test_a_backup_keeps_the_measured_audio_levels(tmp_path: Path) -> None:
    """Peak, loudness, true peak, silence share, waveform and the pending flag come back as they
    were stored, SQLite to PostgreSQL (floats and -200 for digital silence included)."""
    require_ffmpeg()
    query = (
        "SELECT resource_key, peak_dbfs, loudness_lufs, true_peak_dbtp, silence_share, waveform, "
        "levels_pending FROM resources ORDER BY resource_key"
    )
    with (
        make_store("sqlite+disk", tmp_path / "first") as first,
        make_store("postgresql+disk", tmp_path / "second") as second,
    ):
        server = first.start()
        try:
            _upload(server, "sine.wav", make_wav(2.0, freq=1000.0, amplitude=0.1))
            _upload(server, "quiet.wav", make_silence(1.0))
            before = [tuple(row) for row in server.sql(query, {})]
        finally:
            server.stop()
        assert len(before) == 2 and all(row[5] for row in before)
        first.cli("backup", str(tmp_path / "levels.tar"))
        _install_master_key(first, second)
        second.cli("restore", str(tmp_path / "levels.tar"))
        server = second.start()
        try:
            after = [tuple(row) for row in server.sql(query, {})]
        finally:
            server.stop()
    assert [(*row[:6], bool(row[6])) for row in after] == [(*row[:6], bool(row[6])) for row in before]
