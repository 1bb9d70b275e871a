"""``vmsres backup FILE`` and ``vmsres restore FILE`` for the embedded store (SQLite + disk blobs).

A backup is a tar file holding ``vmsres.db`` (an online snapshot through SQLite's backup API,
taken while servers keep writing) and ``blobs/``. Blobs are copied once before the snapshot and
once after: a blob is written before the row that references it, so every blob the snapshot
references existed at snapshot time and one of the two passes finds it, unless a delete
removed it after the snapshot. Those rows are then dropped from the copy: the backup shows the
delete a moment early instead of a resource without audio. Extra blobs are harmless garbage.

The master key is deliberately not in the backup: a stolen backup must be as useless as a
stolen database. Keep DATA_DIR/master.key (or VMSRES_MASTER_KEY) safe separately.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from vmsres.blobs.base import RESERVED_PREFIX
from vmsres.masterkey import MASTER_KEY_FILE_NAME
from vmsres.settings import Settings
from vmsres.store.database import sqlite_path

DB_MEMBER = "vmsres.db"
BLOBS_MEMBER = "blobs"


class BackupError(Exception):
    """The backup or restore cannot be done as asked."""


def _embedded(settings: Settings) -> tuple[Path, Path]:
    url = settings.resolved_database_url()
    if not url.startswith("sqlite:///"):
        raise BackupError(
            "vmsres backup covers the embedded SQLite store; back up PostgreSQL with pg_dump "
            "(see docs/operations.md)"
        )
    blob_url = settings.resolved_blob_url()
    if "://" in blob_url and not blob_url.startswith("file://"):
        raise BackupError("vmsres backup covers disk blobs; protect S3 with versioning or replication")
    return Path(sqlite_path(url)), Path(blob_url.removeprefix("file://"))


def _copy_blobs(source: Path, target: Path) -> int:
    copied = 0
    for dirpath, dirnames, filenames in os.walk(source):
        dirnames[:] = [d for d in dirnames if not d.startswith(RESERVED_PREFIX)]
        relative = Path(dirpath).relative_to(source)
        for name in filenames:
            if name.startswith(RESERVED_PREFIX):
                continue
            destination = target / relative / name
            if destination.exists():
                continue
            destination.parent.mkdir(parents=True, exist_ok=True)
            try:
                shutil.copy2(Path(dirpath) / name, destination)
            except FileNotFoundError:
                continue  # deleted while we walked: its row is gone too, or the second pass decides
            copied += 1
    return copied


def backup(settings: Settings, file: Path) -> dict[str, Any]:
    db_path, blob_root = _embedded(settings)
    if not db_path.exists():
        raise BackupError(f"no database at {db_path}")
    with tempfile.TemporaryDirectory(dir=file.parent if file.parent.exists() else None) as scratch:
        work = Path(scratch)
        blobs = work / BLOBS_MEMBER
        blobs.mkdir()
        _copy_blobs(blob_root, blobs)
        snapshot = work / DB_MEMBER
        source = sqlite3.connect(db_path)
        target = sqlite3.connect(snapshot)
        try:
            # One step (pages=-1) reads the whole database inside one read transaction: a
            # consistent snapshot however many writers are busy meanwhile.
            source.backup(target, pages=-1)
        finally:
            source.close()
        _copy_blobs(blob_root, blobs)
        try:
            dropped = _drop_rows_without_blobs(target, blobs)
            target.execute("PRAGMA journal_mode=DELETE")
        finally:
            target.close()
        temp = file.with_name(file.name + ".partial")
        with tarfile.open(temp, "w") as archive:
            archive.add(snapshot, DB_MEMBER)
            archive.add(blobs, BLOBS_MEMBER)
        os.replace(temp, file)
    return {"File": str(file), "DroppedDeletedDuringBackup": dropped}


def _drop_rows_without_blobs(db: sqlite3.Connection, blobs: Path) -> int:
    rows = db.execute(
        "SELECT resource_key, blob_key, rendition_key FROM resources WHERE blob_key IS NOT NULL"
    )
    missing = [
        key
        for key, blob_key, rendition_key in rows.fetchall()
        if not (blobs / blob_key).is_file() or (rendition_key and not (blobs / rendition_key).is_file())
    ]
    with db:
        db.executemany("DELETE FROM resources WHERE resource_key = ?", [(k,) for k in missing])
    return len(missing)


def _safe_members(archive: tarfile.TarFile) -> list[tarfile.TarInfo]:
    members = archive.getmembers()
    for member in members:
        parts = Path(member.name).parts
        if member.name.startswith("/") or ".." in parts or not (member.isfile() or member.isdir()):
            raise BackupError(f"refusing a backup member {member.name!r}")
        if parts[0] not in (DB_MEMBER, BLOBS_MEMBER):
            raise BackupError(f"unexpected backup member {member.name!r}")
    return members


def restore(settings: Settings, file: Path, *, force: bool) -> dict[str, Any]:
    db_path, blob_root = _embedded(settings)
    data_dir = Path(settings.data_dir)
    present = [p for p in data_dir.iterdir() if p.name != MASTER_KEY_FILE_NAME] if data_dir.exists() else []
    if present and not force:
        raise BackupError(f"{data_dir} is not empty; restore into an empty folder or add --force")
    with tarfile.open(file, "r") as archive:
        members = _safe_members(archive)
        with tempfile.TemporaryDirectory() as scratch:
            archive.extractall(scratch, members=members)
            unpacked = Path(scratch)
            if not (unpacked / DB_MEMBER).is_file():
                raise BackupError(f"{file} holds no {DB_MEMBER}")
            data_dir.mkdir(parents=True, exist_ok=True)
            for stale in (db_path, Path(f"{db_path}-wal"), Path(f"{db_path}-shm")):
                stale.unlink(missing_ok=True)
            if blob_root.exists():
                shutil.rmtree(blob_root)
            db_path.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(unpacked / DB_MEMBER, db_path)
            shutil.move(unpacked / BLOBS_MEMBER, blob_root)
    master_key_present = (data_dir / MASTER_KEY_FILE_NAME).exists()
    return {"DataDir": str(data_dir), "MasterKeyPresent": master_key_present}
