"""``vmsres backup FILE`` and ``vmsres restore FILE``, for every store: SQLite or PostgreSQL, disk or S3.

A backup is a tar file in a portable format, the same whatever the store:

    tables/<table>.jsonl.gz   every row of one table, one JSON object a line, in key order
    blobs/<key>               the audio (and pending uploads) those rows reference
    blobs.jsonl               one {"key", "size", "sha256"} a line per blob
    manifest.json             last: format, schema revision, master key id, row counts, checksums

So a backup of SQLite + disk restores into PostgreSQL + S3 and back.

Consistency. The rows come from one read-only snapshot transaction (PostgreSQL REPEATABLE
READ, the snapshot pg_dump takes; SQLite one read transaction in WAL mode) while servers keep
writing. Blobs are immutable once written and always written before the row that references
them, so every blob the snapshot references exists when the snapshot is taken; what could
remove one before it is copied is a delete or garbage collection. Before the snapshot the
backup commits a row in ``backup_holds``; servers check it after committing a delete and then
leave the blobs to garbage collection, which itself deletes nothing while a hold is live (see
ResourceService.blobs_held). The snapshot is therefore exact: every row with its audio. Should
a referenced blob be missing anyway (a hold that expired, a blob removed by hand), its resource
is left out of the archive and counted, never archived without audio.

The master key is deliberately not in the backup: sealed values (SecretKeys, server and webhook
secrets) are copied sealed, so a stolen backup is as useless as a stolen database, and a restore
needs the master key the backup was made under. Restore refuses before changing anything when
the key does not fit.

Archives of the earlier SQLite-only format (``vmsres.db`` + ``blobs/``) are still restored, into
any store.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import io
import os
import shutil
import socket
import tarfile
import tempfile
import time
import zlib
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

import orjson
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory
from alembic.util import CommandError

from vmsres.server.blobs import BlobNotFound, BlobStore, open_blob_store, validate_key
from vmsres.server.masterkey import (
    CHECK_CONTEXT,
    CHECK_SECRET_NAME,
    Keyring,
    MasterKeyError,
    load_keyring,
    stored_key_id,
)
from vmsres.server.settings import Settings
from vmsres.server.store import migrate
from vmsres.server.store.database import sqlite_path
from vmsres.server.store.schema import backup_holds, metadata, resources, server_secrets, uploads

FORMAT = "vmsres-backup"
VERSION = 1
MANIFEST = "manifest.json"
BLOB_INDEX = "blobs.jsonl"
TABLES_DIR = "tables/"
BLOBS_DIR = "blobs/"
# The earlier, SQLite-only format: a database file and a copy of the blob folder.
LEGACY_DB = "vmsres.db"

# Kept by triggers from the rows they summarise (restoring the rows rebuilds them; a restore at
# an older revision gets them from the migration that adds them), or meaningful only while a
# backup runs: never archived.
DERIVED_TABLES = frozenset(
    {"resource_counts", "resource_blocks", "resource_generations", "credential_generation", "backup_holds"}
)
# Rows that, when present, mean a store holds data (server_secrets alone only means it was opened).
DATA_TABLES = tuple(
    t.name for t in metadata.sorted_tables if t.name not in DERIVED_TABLES | {"server_secrets"}
)
# Objects of ours that migrations create beyond the tables of schema.metadata (PostgreSQL).
EXTRA_TABLES = ("resource_grams", "alembic_version")

HOLD_SECONDS = 15 * 60
HOLD_RENEW_SECONDS = 60
# Blobs fetched or stored at once: S3 latency overlaps, memory stays a few blobs.
WINDOW = 8
BATCH = 1000


class BackupError(Exception):
    """The backup or restore cannot be done as asked."""


# --- Engines ------------------------------------------------------------------------------


def _engine(url: str) -> sa.Engine:
    """A synchronous engine whose transactions really are transactions on SQLite too.

    pysqlite opens a transaction only before a write, so consecutive SELECTs would each see a
    different moment; issuing BEGIN ourselves makes the whole read one snapshot.
    """
    engine = sa.create_engine(migrate.sync_url(url))
    if engine.dialect.name == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None
            dbapi_connection.execute("PRAGMA busy_timeout=5000")

        @sa.event.listens_for(engine, "begin")
        def _begin(connection: sa.Connection) -> None:
            connection.exec_driver_sql("BEGIN")

    return engine


def _blob_kind(settings: Settings) -> str:
    url = settings.resolved_blob_url()
    return "s3" if url.lower().startswith("s3://") else "disk"


def _describe_database(url: str) -> str:
    return sa.make_url(url).render_as_string(hide_password=True)


def _known_revision(revision: str) -> None:
    try:
        found = ScriptDirectory.from_config(migrate.alembic_config()).get_revision(revision)
    except CommandError:
        found = None
    if found is None:
        raise BackupError(
            f"the backup's schema {revision!r} is unknown to this vmsres (made by a newer one?)"
        )


# --- Holds ---------------------------------------------------------------------------------


class BlobHold:
    """A row in backup_holds for as long as the ``with`` block runs, renewed by ``renew``."""

    def __init__(self, url: str, clock: Callable[[], float] = time.time) -> None:
        self.url = url
        self.clock = clock
        self._engine = _engine(url)
        self._id: int | None = None
        self._renewed = 0.0

    def __enter__(self) -> BlobHold:
        now = int(self.clock())
        holder = f"backup:{socket.gethostname()}:{os.getpid()}"[:128]
        with self._engine.begin() as conn:
            conn.execute(backup_holds.delete().where(backup_holds.c.expires_at <= now))
            self._id = conn.execute(
                backup_holds.insert()
                .values(holder=holder, created_at=now, expires_at=now + HOLD_SECONDS)
                .returning(backup_holds.c.id)
            ).scalar_one()
        self._renewed = time.monotonic()
        return self

    def renew(self) -> None:
        if time.monotonic() - self._renewed < HOLD_RENEW_SECONDS:
            return
        with self._engine.begin() as conn:
            conn.execute(
                backup_holds.update()
                .where(backup_holds.c.id == self._id)
                .values(expires_at=int(self.clock()) + HOLD_SECONDS)
            )
        self._renewed = time.monotonic()

    def __exit__(self, *exc: object) -> None:
        try:
            # If this fails (database gone), the hold still expires on its own.
            with contextlib.suppress(sa.exc.SQLAlchemyError), self._engine.begin() as conn:
                conn.execute(backup_holds.delete().where(backup_holds.c.id == self._id))
        finally:
            self._engine.dispose()


# --- Backup --------------------------------------------------------------------------------


@dataclass
class _Dumped:
    name: str
    path: Path
    rows: int = 0
    sha256: str = ""


@dataclass
class _Snapshot:
    revision: str
    tables: list[_Dumped]
    # One JSON array a line: [blob key, resource key or null (a pending upload's staging blob)].
    refs: Path
    master_key_id: str | None
    dialect: str


def _sha256_stream(handle: IO[bytes]) -> str:
    digest = hashlib.sha256()
    while chunk := handle.read(1 << 20):
        digest.update(chunk)
    return digest.hexdigest()


def _sha256_file(path: Path) -> str:
    with path.open("rb") as handle:
        return _sha256_stream(handle)


def _row_dict(row: sa.Row[Any]) -> dict[str, Any]:
    # Column names arrive as sqlalchemy's quoted_name, a str subclass orjson refuses as a key.
    return {str(name): value for name, value in row._mapping.items()}


def _json_row(row: sa.Row[Any]) -> bytes:
    return orjson.dumps(_row_dict(row)) + b"\n"


def _snapshot(engine: sa.Engine, scratch: Path, hold: BlobHold) -> _Snapshot:
    """Every archived table, read in one snapshot, into gzip'd JSON lines under ``scratch``."""
    refs_path = scratch / "refs.jsonl"
    dumped: list[_Dumped] = []
    master_key_id: str | None = None
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with conn.begin(), refs_path.open("wb") as refs:
            revision = migrate.current_revision(conn)
            head = migrate.head_revision()
            if revision is None or revision != head:
                raise BackupError(
                    f"the store's schema is at {revision}, this vmsres expects {head}: "
                    "run a server or any store command of this version on it first"
                )
            for table in metadata.sorted_tables:
                if table.name in DERIVED_TABLES:
                    continue
                target = _Dumped(str(table.name), scratch / f"{table.name}.jsonl.gz")
                stmt = sa.select(table).order_by(*table.primary_key.columns)
                result = conn.execute(stmt.execution_options(yield_per=BATCH))
                with gzip.open(target.path, "wb", compresslevel=6) as out:
                    for row in result:
                        out.write(_json_row(row))
                        target.rows += 1
                        if target.rows % BATCH == 0:
                            hold.renew()  # a large table may take longer than the hold lasts
                        if table is resources:
                            for key in (row.blob_key, row.rendition_key):
                                if key:
                                    refs.write(orjson.dumps([key, row.resource_key]) + b"\n")
                        elif table is uploads:
                            refs.write(orjson.dumps([row.staging_key, None]) + b"\n")
                        elif table is server_secrets and row.name == CHECK_SECRET_NAME:
                            master_key_id = stored_key_id(row.value)
                target.sha256 = _sha256_file(target.path)
                dumped.append(target)
            dialect = conn.dialect.name
    return _Snapshot(revision, dumped, refs_path, master_key_id, dialect)


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(time.time())
    info.mode = 0o644
    archive.addfile(info, io.BytesIO(data))


async def _windowed(
    items: Iterator[Any], start: Callable[[Any], Awaitable[Any]], finish: Callable[[Any, Any], None]
) -> None:
    """``start`` up to WINDOW items at once; ``finish`` each result in the items' order."""
    pending: deque[tuple[Any, asyncio.Task[Any]]] = deque()
    try:
        for item in items:
            pending.append((item, asyncio.ensure_future(start(item))))
            if len(pending) >= WINDOW:
                item, task = pending.popleft()
                finish(item, await task)
        while pending:
            item, task = pending.popleft()
            finish(item, await task)
    finally:
        for _, task in pending:
            task.cancel()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.gather(*(task for _, task in pending), return_exceptions=True)


def _read_refs(path: Path) -> Iterator[tuple[str, str | None]]:
    with path.open("rb") as handle:
        for line in handle:
            key, resource_key = orjson.loads(line)
            yield str(key), resource_key


@dataclass
class _Copied:
    count: int = 0
    size: int = 0
    missing_resources: set[str] = field(default_factory=set)


async def _copy_blobs(
    store: BlobStore, snapshot: _Snapshot, archive: tarfile.TarFile, index: IO[bytes], hold: BlobHold
) -> _Copied:
    copied = _Copied()

    async def fetch(ref: tuple[str, str | None]) -> bytes | None:
        try:
            return await store.get(ref[0])
        except BlobNotFound:
            return None

    def write(ref: tuple[str, str | None], data: bytes | None) -> None:
        key, resource_key = ref
        hold.renew()
        if data is None:
            # A pending upload's bytes may never have come (or were committed meanwhile); a
            # resource without its audio is left out (see the module docstring).
            if resource_key is not None:
                copied.missing_resources.add(resource_key)
            return
        _add_bytes(archive, BLOBS_DIR + key, data)
        digest = hashlib.sha256(data).hexdigest()
        index.write(orjson.dumps({"key": key, "size": len(data), "sha256": digest}) + b"\n")
        copied.count += 1
        copied.size += len(data)

    await _windowed(_read_refs(snapshot.refs), fetch, write)
    return copied


def _drop_resources(dumped: _Dumped, missing: set[str]) -> int:
    """Rewrite the resources table without ``missing``; how many rows went."""
    kept = dumped.path.with_name("kept-" + dumped.path.name)
    dropped = 0
    with gzip.open(dumped.path, "rb") as source, gzip.open(kept, "wb", compresslevel=6) as out:
        for line in source:
            if orjson.loads(line)["resource_key"] in missing:
                dropped += 1
                continue
            out.write(line)
    os.replace(kept, dumped.path)
    dumped.rows -= dropped
    dumped.sha256 = _sha256_file(dumped.path)
    return dropped


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def backup(settings: Settings, file: Path) -> dict[str, Any]:
    return asyncio.run(_backup(settings, file))


async def _backup(settings: Settings, file: Path) -> dict[str, Any]:
    url = settings.resolved_database_url()
    if url.startswith("sqlite:///") and not Path(sqlite_path(url)).is_file():
        raise BackupError(f"no database at {sqlite_path(url)}")
    folder = file.parent if str(file.parent) else Path(".")
    if not folder.is_dir():
        raise BackupError(f"no folder {folder} to write the backup into")
    store = open_blob_store(settings.resolved_blob_url(), s3_endpoint_url=settings.s3_endpoint_url)
    engine = _engine(url)
    partial = file.with_name(file.name + ".partial")
    try:
        # The scratch folder sits beside the backup: the table files may be large, and the
        # final rename stays on one filesystem.
        with (
            tempfile.TemporaryDirectory(dir=folder, prefix=".vmsres-backup-") as scratch_name,
            tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as archive,
        ):
            scratch = Path(scratch_name)
            index_path = scratch / BLOB_INDEX
            # Held from before the snapshot until its last blob is copied (see the docstring).
            with BlobHold(url) as hold, index_path.open("wb") as index:
                snapshot = _snapshot(engine, scratch, hold)
                copied = await _copy_blobs(store, snapshot, archive, index, hold)
            dropped = 0
            if copied.missing_resources:
                dumped = next(t for t in snapshot.tables if t.name == resources.name)
                dropped = _drop_resources(dumped, copied.missing_resources)
            tables = []
            for dumped in snapshot.tables:
                member = f"{TABLES_DIR}{dumped.name}.jsonl.gz"
                archive.add(dumped.path, member)
                tables.append(
                    {"name": dumped.name, "member": member, "rows": dumped.rows, "sha256": dumped.sha256}
                )
            archive.add(index_path, BLOB_INDEX)
            manifest = {
                "format": FORMAT,
                "version": VERSION,
                "created_at": int(time.time()),
                "schema_revision": snapshot.revision,
                "source": {"database": snapshot.dialect, "blobs": _blob_kind(settings)},
                "master_key_id": snapshot.master_key_id,
                "tables": tables,
                "blobs": {
                    "member": BLOB_INDEX,
                    "sha256": _sha256_file(index_path),
                    "count": copied.count,
                    "bytes": copied.size,
                },
                "dropped_resources": dropped,
            }
            _add_bytes(archive, MANIFEST, orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
        _fsync(partial)
        os.replace(partial, file)
        _fsync(folder)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        engine.dispose()
        await store.close()
    rows = {t["name"]: t["rows"] for t in tables}
    return {
        "File": str(file),
        "SchemaRevision": snapshot.revision,
        "MasterKeyId": snapshot.master_key_id,
        "Resources": rows.get(resources.name, 0),
        "Rows": rows,
        "Blobs": copied.count,
        "BlobBytes": copied.size,
        "DroppedMissingBlobs": dropped,
    }


# --- Reading archives ----------------------------------------------------------------------


class _Archive(Protocol):
    revision: str
    master_key_check: str | None

    def tables(self) -> list[str]: ...
    def rows(self, table: str) -> Iterator[dict[str, Any]]: ...
    def blobs(self) -> Iterator[tuple[str, bytes]]: ...
    def verify(self) -> None: ...


def _master_key_check(archive: _Archive) -> str | None:
    """The archived master-key check value, to test the restoring key against before any change."""
    if "server_secrets" not in archive.tables():
        return None
    for row in archive.rows("server_secrets"):
        if row.get("name") == CHECK_SECRET_NAME:
            return str(row["value"])
    return None


def _damaged(file: Path, what: str) -> BackupError:
    return BackupError(f"{file} is damaged or not a vmsres backup: {what}")


def _check_member_name(file: Path, member: tarfile.TarInfo) -> None:
    parts = member.name.split("/")
    if member.name.startswith("/") or ".." in parts or not (member.isfile() or member.isdir()):
        raise _damaged(file, f"refusing the member {member.name!r}")


class _PortableArchive:
    def __init__(self, file: Path, archive: tarfile.TarFile, members: dict[str, tarfile.TarInfo]) -> None:
        self.file = file
        self.archive = archive
        self.members = members
        self.index: dict[str, tuple[int, str]] = {}
        try:
            self._read_manifest()
        except (KeyError, TypeError, ValueError) as error:
            if isinstance(error, orjson.JSONDecodeError):
                raise
            raise _damaged(file, f"unexpected manifest content ({type(error).__name__}: {error})") from None
        self.master_key_check = _master_key_check(self)

    def _read_manifest(self) -> None:
        manifest = orjson.loads(self._read(MANIFEST))
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise _damaged(self.file, "its manifest is not a vmsres backup manifest")
        if manifest.get("version") != VERSION:
            raise BackupError(
                f"{self.file} is backup format {manifest.get('version')!r}; this vmsres reads {VERSION}"
            )
        self.revision = str(manifest["schema_revision"])
        # Every field read later is checked now, inside the manifest's error handling.
        self._tables: dict[str, dict[str, str]] = {
            str(t["name"]): {"name": str(t["name"]), "member": str(t["member"]), "sha256": str(t["sha256"])}
            for t in manifest["tables"]
        }
        for entry in self._tables.values():
            if entry["member"] not in self.members:
                raise _damaged(self.file, f"{entry['member']} is missing")
        blob_index = manifest["blobs"]
        raw_index = self._read(str(blob_index["member"]))
        if hashlib.sha256(raw_index).hexdigest() != blob_index["sha256"]:
            raise _damaged(self.file, "the blob index fails its checksum")
        for line in raw_index.splitlines():
            entry = orjson.loads(line)
            self.index[validate_key(str(entry["key"]))] = (int(entry["size"]), str(entry["sha256"]))

    def _read(self, name: str) -> bytes:
        member = self.members.get(name)
        if member is None:
            raise _damaged(self.file, f"{name} is missing")
        handle = self.archive.extractfile(member)
        if handle is None:
            raise _damaged(self.file, f"{name} is not a file")
        return handle.read()

    def tables(self) -> list[str]:
        return list(self._tables)

    def rows(self, table: str) -> Iterator[dict[str, Any]]:
        member = self.members[self._tables[table]["member"]]
        handle = self.archive.extractfile(member)
        assert handle is not None
        with gzip.open(handle, "rb") as lines:
            for line in lines:
                row = orjson.loads(line)
                if not isinstance(row, dict):
                    raise _damaged(self.file, f"a row of {table} is not an object")
                yield row

    def blobs(self) -> Iterator[tuple[str, bytes]]:
        for key, (size, digest) in self.index.items():
            data = self._read(BLOBS_DIR + key)
            if len(data) != size or hashlib.sha256(data).hexdigest() != digest:
                raise _damaged(self.file, f"the blob {key} fails its checksum")
            yield key, data

    def verify(self) -> None:
        """Every checksum, before anything is changed: a damaged archive is refused whole."""
        for entry in self._tables.values():
            handle = self.archive.extractfile(self.members[entry["member"]])
            assert handle is not None
            if _sha256_stream(handle) != entry["sha256"]:
                raise _damaged(self.file, f"{entry['member']} fails its checksum")
            sum(1 for _ in self.rows(entry["name"]))  # the gzip stream and every line parse
        for _ in self.blobs():
            pass


class _LegacyArchive:
    """The earlier format: a SQLite file (at whatever schema it had) and a copy of the blob folder."""

    def __init__(
        self, file: Path, archive: tarfile.TarFile, members: dict[str, tarfile.TarInfo], scratch: Path
    ) -> None:
        self.file = file
        self.archive = archive
        self.blob_members = [m for name, m in members.items() if name.startswith(BLOBS_DIR) and m.isfile()]
        handle = archive.extractfile(members[LEGACY_DB])
        if handle is None:
            raise _damaged(file, f"{LEGACY_DB} is not a file")
        db = scratch / LEGACY_DB
        with db.open("wb") as out:
            shutil.copyfileobj(handle, out)
        self.engine = _engine(f"sqlite:///{db}")
        self.reflected = sa.MetaData()
        with self.engine.connect() as conn:
            revision = migrate.current_revision(conn)
            present = set(sa.inspect(conn).get_table_names())
            wanted = [
                t.name for t in metadata.sorted_tables if t.name not in DERIVED_TABLES and t.name in present
            ]
            self.reflected.reflect(conn, only=wanted)
        if revision is None:
            raise _damaged(file, f"{LEGACY_DB} has no schema revision")
        self.revision = revision
        self._tables = [t.name for t in self.reflected.sorted_tables if t.name in wanted]
        self.master_key_check = _master_key_check(self)

    def tables(self) -> list[str]:
        return list(self._tables)

    def rows(self, table: str) -> Iterator[dict[str, Any]]:
        source = self.reflected.tables[table]
        with self.engine.connect() as conn:
            stmt = sa.select(source).order_by(*source.primary_key.columns)
            for row in conn.execute(stmt.execution_options(yield_per=BATCH)):
                yield _row_dict(row)

    def blobs(self) -> Iterator[tuple[str, bytes]]:
        for member in self.blob_members:
            handle = self.archive.extractfile(member)
            assert handle is not None
            yield validate_key(member.name[len(BLOBS_DIR) :]), handle.read()

    def verify(self) -> None:
        with self.engine.connect() as conn:
            if conn.exec_driver_sql("PRAGMA integrity_check").scalar() != "ok":
                raise _damaged(self.file, f"{LEGACY_DB} fails SQLite's integrity check")
        for _ in self.blobs():
            pass

    def close(self) -> None:
        self.engine.dispose()


@contextlib.contextmanager
def _open_archive(file: Path) -> Iterator[_Archive]:
    if not file.is_file():
        raise BackupError(f"no backup file at {file}")
    try:
        # Closed by the ``with`` below; only opening it is expected to fail.
        archive = tarfile.open(file, "r")  # noqa: SIM115
    except tarfile.TarError:
        raise _damaged(file, "not a tar file") from None
    with archive, tempfile.TemporaryDirectory(prefix="vmsres-restore-") as scratch:
        try:
            members: dict[str, tarfile.TarInfo] = {}
            for member in archive.getmembers():
                _check_member_name(file, member)
                members[member.name] = member
            if MANIFEST in members:
                yield _PortableArchive(file, archive, members)
            elif LEGACY_DB in members:
                legacy = _LegacyArchive(file, archive, members, Path(scratch))
                try:
                    yield legacy
                finally:
                    legacy.close()
            else:
                raise _damaged(file, f"it holds neither {MANIFEST} nor {LEGACY_DB}")
        # Only what reading the archive raises: the caller's own failures pass through untouched.
        except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, orjson.JSONDecodeError) as error:
            raise _damaged(file, str(error) or type(error).__name__) from None


# --- Restore -------------------------------------------------------------------------------


def _restore_keyring(settings: Settings, archive: _Archive) -> Keyring:
    needed = archive.master_key_check
    wanted = f" (key id {stored_key_id(needed)})" if needed else ""
    try:
        keyring = load_keyring(settings.data_dir, settings.master_key_file, create=False)
    except MasterKeyError as error:
        raise MasterKeyError(
            f"restoring needs the master key the backup was made under{wanted}: set VMSRES_MASTER_KEY, "
            f"pass --master-key-file, or put the key file at DATA_DIR/master.key ({error})"
        ) from None
    if needed is not None:
        try:
            keyring.decrypt(needed, CHECK_CONTEXT)
        except MasterKeyError as error:
            raise MasterKeyError(f"this backup needs another master key: {error}") from None
    return keyring


def _database_has_data(url: str) -> bool:
    if url.startswith("sqlite:///"):
        path = Path(sqlite_path(url))
        if not path.exists():
            return False
    engine = _engine(url)
    try:
        # Connecting may fail (a database that does not answer): that is an error, not "data".
        with engine.connect() as conn:
            try:
                present = set(sa.inspect(conn).get_table_names())
                probe = [
                    sa.select(sa.literal(1)).select_from(sa.table(n)).limit(1)
                    for n in DATA_TABLES
                    if n in present
                ]
                return any(conn.execute(stmt).first() for stmt in probe)
            except sa.exc.DatabaseError:
                # Something that is not a vmsres database (a stray or damaged file): not ours to
                # overwrite without --force.
                return True
    finally:
        engine.dispose()


async def _delete_all_blobs(store: BlobStore) -> int:
    keys = await store.list_keys("")
    await _windowed(iter(keys), store.delete, lambda _key, _none: None)
    return len(keys)


async def _upload_blobs(store: BlobStore, archive: _Archive) -> tuple[int, int]:
    count = 0
    size = 0

    async def put(item: tuple[str, bytes]) -> None:
        await store.put(*item)

    def done(item: tuple[str, bytes], _result: None) -> None:
        nonlocal count, size
        count += 1
        size += len(item[1])

    await _windowed(archive.blobs(), put, done)
    return count, size


def _drop_our_objects(conn: sa.Connection) -> None:
    """Empty a PostgreSQL target of everything vmsres migrations make, to migrate it afresh."""
    names = [*metadata.tables, *EXTRA_TABLES]
    quote = conn.dialect.identifier_preparer.quote
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {', '.join(quote(n) for n in names)} CASCADE")
    functions = conn.execute(
        sa.text(
            "SELECT CAST(CAST(p.oid AS regprocedure) AS text) FROM pg_proc p "
            "JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = current_schema() AND p.proname LIKE 'vmsres\\_%'"
        )
    ).scalars()
    for signature in list(functions):
        conn.exec_driver_sql(f"DROP FUNCTION IF EXISTS {signature} CASCADE")


def _insert_rows(conn: sa.Connection, archive: _Archive) -> dict[str, int]:
    """The archive's rows into a schema at the archive's revision, parents before children."""
    wanted = set(archive.tables())
    present = set(sa.inspect(conn).get_table_names())
    if wanted - present:
        raise BackupError(f"schema {archive.revision} has no table {sorted(wanted - present)[0]}")
    reflected = sa.MetaData()
    reflected.reflect(conn, only=sorted(wanted))
    counts: dict[str, int] = {}
    for table in reflected.sorted_tables:
        name = str(table.name)
        if name not in wanted:
            continue
        columns = set(table.c.keys())
        batch: list[dict[str, Any]] = []
        counts[name] = 0
        for row in archive.rows(table.name):
            unknown = row.keys() - columns
            if unknown:
                raise BackupError(
                    f"table {table.name} at schema {archive.revision} has no column {sorted(unknown)[0]}"
                )
            batch.append(row)
            if len(batch) >= BATCH:
                conn.execute(table.insert(), batch)
                counts[name] += len(batch)
                batch = []
        if batch:
            conn.execute(table.insert(), batch)
            counts[name] += len(batch)
        if conn.dialect.name == "postgresql":
            _reset_sequence(conn, table)
        # SQLite needs nothing: our tables are rowid tables without AUTOINCREMENT, whose next id
        # is always one past the largest present.
    return counts


def _reset_sequence(conn: sa.Connection, table: sa.Table) -> None:
    """Rows came with their ids; the id sequence must continue after the largest."""
    key = list(table.primary_key.columns)
    if len(key) != 1 or not isinstance(key[0].type, sa.Integer):
        return
    sequence = conn.execute(sa.select(sa.func.pg_get_serial_sequence(table.name, key[0].name))).scalar()
    if sequence is None:
        return
    top = conn.execute(sa.select(sa.func.max(key[0]))).scalar()
    conn.execute(
        sa.text("SELECT setval(CAST(:sequence AS regclass), :next, false)"),
        {"sequence": sequence, "next": int(top or 0) + 1},
    )


def _restore_database(url: str, archive: _Archive, keyring: Keyring) -> dict[str, int]:
    """Schema at the archive's revision, its rows, then the migrations since: one transaction."""
    engine = _engine(url)
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(migrate.MIGRATION_LOCK_ID)))
                _drop_our_objects(conn)
            config = migrate.alembic_config()
            config.attributes["connection"] = conn
            config.attributes["keyring"] = keyring
            command.upgrade(config, archive.revision)
            counts = _insert_rows(conn, archive)
            command.upgrade(config, "head")
            migrate.check_master_key(conn, keyring)
    finally:
        engine.dispose()
    return counts


def restore(settings: Settings, file: Path, *, force: bool) -> dict[str, Any]:
    return asyncio.run(_restore(settings, file, force=force))


async def _restore(settings: Settings, file: Path, *, force: bool) -> dict[str, Any]:
    url = settings.resolved_database_url()
    with _open_archive(file) as archive:
        _known_revision(archive.revision)
        keyring = _restore_keyring(settings, archive)
        store = open_blob_store(settings.resolved_blob_url(), s3_endpoint_url=settings.s3_endpoint_url)
        try:
            blobs_present = bool(await store.list_keys(""))
            if (blobs_present or _database_has_data(url)) and not force:
                where = _describe_database(url) + " / " + settings.resolved_blob_url()
                raise BackupError(
                    f"the target store is not empty ({where}); restore into an empty one or add --force"
                )
            # Every checksum before the first change: a damaged archive is refused whole.
            archive.verify()
            if url.startswith("sqlite:///"):
                Path(sqlite_path(url)).parent.mkdir(parents=True, exist_ok=True)
            if blobs_present:
                await _delete_all_blobs(store)
            # Blobs first: a restore that stops half way leaves blobs without rows (a rerun with
            # --force replaces them), never rows without audio.
            blob_count, blob_bytes = await _upload_blobs(store, archive)
        finally:
            await store.close()
        if url.startswith("sqlite:///"):
            counts = _restore_sqlite(url, archive, keyring)
        else:
            counts = _restore_database(url, archive, keyring)
    return {
        "Database": _describe_database(url),
        "Blobs": settings.resolved_blob_url(),
        "SchemaRevision": migrate.head_revision(),
        "FromSchemaRevision": archive.revision,
        "Resources": counts.get(resources.name, 0),
        "Rows": counts,
        "BlobCount": blob_count,
        "BlobBytes": blob_bytes,
        "MasterKeyId": keyring.primary_id,
    }


def _restore_sqlite(url: str, archive: _Archive, keyring: Keyring) -> dict[str, int]:
    """Into a new file beside the database, renamed over it once complete: all or nothing."""
    target = Path(sqlite_path(url))
    building = target.with_name(target.name + ".restoring")
    building.unlink(missing_ok=True)
    try:
        counts = _restore_database(f"sqlite:///{building}", archive, keyring)
    except BaseException:
        building.unlink(missing_ok=True)
        raise
    for stale in (Path(f"{target}-wal"), Path(f"{target}-shm")):
        stale.unlink(missing_ok=True)
    os.replace(building, target)
    return counts
