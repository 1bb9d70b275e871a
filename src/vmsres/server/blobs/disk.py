"""Blobs as files under one root folder, each key a relative path below it."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

from vmsres.server.blobs.base import (
    RESERVED_PREFIX,
    BlobNotFound,
    BlobReader,
    BlobStorageError,
    BlobStorageFull,
    validate_expiry,
    validate_key,
    validate_prefix,
)

_TEMP_PREFIX = RESERVED_PREFIX + "tmp-"
_PROBE_PREFIX = RESERVED_PREFIX + "probe-"

# A key whose path runs into a file where a folder should be, or that names a folder, is simply not a
# blob: report it as missing rather than as a storage failure.
_ABSENT_ERRNOS = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EISDIR})

# No space left, or the user's disk quota is used up: writes fail until space is freed.
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})

_P = ParamSpec("_P")
_T = TypeVar("_T")


def _fsync_dir(path: Path) -> None:
    # Without this a crash right after os.replace() or mkdir() may forget the new directory entry even
    # though the file's bytes reached the disk.
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class DiskBlobStore:
    """Atomic, durable writes through a temporary file, fsync and rename in the blob's folder."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().absolute()

    def __repr__(self) -> str:
        return f"DiskBlobStore({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*validate_key(key).split("/"))

    def _make_dirs(self, directory: Path) -> None:
        missing: list[Path] = []
        probe = directory
        while not probe.is_dir() and probe.parent != probe:
            missing.append(probe)
            probe = probe.parent
        for folder in reversed(missing):
            try:
                folder.mkdir()
            except FileExistsError:
                if not folder.is_dir():
                    raise
                continue  # another writer made it first; it fsynced its parent
            _fsync_dir(folder.parent)

    # --- blocking halves, run in a worker thread -------------------------------------------------

    def _put_sync(self, path: Path, data: bytes) -> None:
        self._make_dirs(path.parent)
        # The temporary file lives in the destination folder so os.replace() stays on one filesystem
        # and is therefore atomic; its reserved name keeps it out of list_keys().
        temp = path.parent / f"{_TEMP_PREFIX}{secrets.token_hex(8)}"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            with os.fdopen(fd, "wb") as stream:
                stream.write(data)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temp, path)
        except BaseException:
            # Whatever went wrong (disk full, a cancelled task, an interrupt), the previous blob under
            # this key is untouched; only our temporary file needs cleaning up.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise
        _fsync_dir(path.parent)

    def _get_sync(self, path: Path, key: str) -> bytes:
        try:
            return path.read_bytes()
        except OSError as exc:
            if exc.errno in _ABSENT_ERRNOS:
                raise BlobNotFound(key) from None
            raise

    def _open_sync(self, path: Path, key: str) -> BlobReader:
        try:
            stream = path.open("rb")
        except OSError as exc:
            if exc.errno in _ABSENT_ERRNOS:
                raise BlobNotFound(key) from None
            raise
        return BlobReader(os.fstat(stream.fileno()).st_size, stream.read, stream.close)

    def _delete_sync(self, path: Path) -> None:
        try:
            os.unlink(path)
        except OSError as exc:
            # unlink() of a folder fails with EISDIR on Linux but EPERM on macOS; neither is a blob.
            if exc.errno in _ABSENT_ERRNOS or (exc.errno == errno.EPERM and path.is_dir()):
                return
            raise
        _fsync_dir(path.parent)

    def _exists_sync(self, path: Path) -> bool:
        try:
            return path.is_file()
        except OSError as exc:
            if exc.errno in _ABSENT_ERRNOS:
                return False
            raise

    def _list_sync(self, prefix: str) -> list[str]:
        # Walk only the deepest folder the prefix pins down, then filter by plain string prefix, so
        # "accounts/1" also lists "accounts/12/..." exactly as S3 would.
        folder_part, _, _ = prefix.rpartition("/")
        start = self.root.joinpath(*folder_part.split("/")) if folder_part else self.root
        if not start.is_dir():
            return []
        keys: list[str] = []
        for dirpath, dirnames, filenames in os.walk(start, onerror=_raise_walk_error):
            dirnames[:] = [name for name in dirnames if not name.startswith(RESERVED_PREFIX)]
            relative = Path(dirpath).relative_to(self.root).as_posix()
            base = "" if relative == "." else relative + "/"
            for name in filenames:
                if name.startswith(RESERVED_PREFIX):
                    continue
                key = base + name
                if key.startswith(prefix):
                    keys.append(key)
        keys.sort()
        return keys

    def _check_sync(self) -> None:
        # Readiness means we could store a blob now: the root exists (or can be made) and is writable.
        self._make_dirs(self.root)
        probe = self.root / f"{_PROBE_PREFIX}{secrets.token_hex(8)}"
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        os.unlink(probe)

    # --- the BlobStore interface --------------------------------------------------------------------

    async def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        await _run(self._put_sync, path, bytes(data))

    async def get(self, key: str) -> bytes:
        return await _run(self._get_sync, self._path(key), key)

    async def open_reader(self, key: str) -> BlobReader:
        return await _run(self._open_sync, self._path(key), key)

    async def delete(self, key: str) -> None:
        await _run(self._delete_sync, self._path(key))

    async def exists(self, key: str) -> bool:
        return await _run(self._exists_sync, self._path(key))

    async def list_keys(self, prefix: str) -> list[str]:
        return await _run(self._list_sync, validate_prefix(prefix))

    def presign_put(self, key: str, expires_seconds: int, content_type: str | None = None) -> str | None:
        validate_key(key)
        validate_expiry(expires_seconds)
        return None

    def presign_get(self, key: str, expires_seconds: int) -> str | None:
        validate_key(key)
        validate_expiry(expires_seconds)
        return None

    async def check(self) -> None:
        await _run(self._check_sync)

    async def close(self) -> None:
        return None


def _raise_walk_error(exc: OSError) -> None:
    # os.walk() silently skips unreadable folders by default, which would make garbage collection
    # believe blobs are gone; a vanished folder (deleted concurrently) is the one harmless case.
    if exc.errno not in _ABSENT_ERRNOS:
        raise exc


async def _run(func: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
    try:
        return await asyncio.to_thread(func, *args, **kwargs)
    except BlobNotFound:
        raise
    except OSError as exc:
        if exc.errno in _FULL_ERRNOS:
            raise BlobStorageFull(f"disk blob storage is full: {exc}") from exc
        raise BlobStorageError(f"disk blob storage failed: {exc}") from exc
