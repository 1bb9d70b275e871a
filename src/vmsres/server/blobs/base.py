"""The blob-store contract shared by the disk and S3 backends, and the key rules both enforce."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Protocol, runtime_checkable

# Names the disk store uses for its own scratch files. Keys may not use it, so a temporary file or a
# readiness probe can never collide with, or be listed as, a stored blob.
RESERVED_PREFIX = ".vmsres-"

# S3 allows at most seven days for a SigV4 presigned URL; the disk store shares the bound so that a
# caller's configuration is valid whichever backend it runs on.
MAX_PRESIGN_SECONDS = 7 * 24 * 3600


class BlobNotFound(Exception):
    """The key names no stored blob."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"no blob stored under {key!r}")


class BlobStorageError(Exception):
    """The storage backend failed or could not be reached; retrying later may succeed."""


class BlobStorageFull(BlobStorageError):
    """The storage has no space left for the write; nothing was stored."""


# Downloads are sent in pieces of this size, so serving a blob never holds it whole in memory.
READ_CHUNK_BYTES = 256 * 1024


class BlobReader:
    """An opened blob: its size, then its bytes piece by piece (blocking reads run in a thread)."""

    def __init__(self, size: int, read: Callable[[int], bytes], close: Callable[[], None]) -> None:
        self.size = size
        self._read = read
        self._close = close

    async def chunks(self, chunk_size: int = READ_CHUNK_BYTES) -> AsyncIterator[bytes]:
        try:
            while True:
                try:
                    chunk = await asyncio.to_thread(self._read, chunk_size)
                except OSError as exc:
                    raise BlobStorageError(f"reading a blob failed: {exc}") from exc
                if not chunk:
                    return
                yield chunk
        finally:
            await self.close()

    async def close(self) -> None:
        await asyncio.to_thread(self._close)


@runtime_checkable
class BlobStore(Protocol):
    async def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key``; readers see either the old blob or the whole new one."""
        ...

    async def get(self, key: str) -> bytes:
        """The bytes under ``key``; raises BlobNotFound."""
        ...

    async def open_reader(self, key: str) -> BlobReader:
        """The blob under ``key`` opened for reading in pieces; raises BlobNotFound."""
        ...

    async def delete(self, key: str) -> None:
        """Remove ``key``; a missing key is not an error."""
        ...

    async def exists(self, key: str) -> bool: ...

    async def list_keys(self, prefix: str) -> list[str]:
        """Every key starting with ``prefix`` (plain string prefix, as S3 lists), sorted."""
        ...

    def presign_put(self, key: str, expires_seconds: int, content_type: str | None = None) -> str | None:
        """A URL a client may PUT the blob to, or None when the server must hand out its own."""
        ...

    def presign_get(self, key: str, expires_seconds: int) -> str | None:
        """A URL a client may GET the blob from, or None when the server must serve it itself."""
        ...

    async def check(self) -> None:
        """Raise BlobStorageError when the storage cannot be used right now."""
        ...

    async def close(self) -> None: ...


def _check_segments(value: str, what: str, *, allow_partial_tail: bool) -> None:
    if "\\" in value:
        raise ValueError(f"{what} {value!r} contains a backslash")
    if "\x00" in value:
        raise ValueError(f"{what} contains a NUL character")
    if value.startswith("/"):
        raise ValueError(f"{what} {value!r} is absolute")
    segments = value.split("/")
    for index, segment in enumerate(segments):
        is_tail = index == len(segments) - 1
        if segment == "":
            if is_tail and allow_partial_tail:
                continue
            raise ValueError(f"{what} {value!r} has an empty segment")
        if segment in (".", ".."):
            raise ValueError(f"{what} {value!r} has a {segment!r} segment")
        if segment.startswith(RESERVED_PREFIX):
            raise ValueError(f"{what} {value!r} uses the reserved name prefix {RESERVED_PREFIX!r}")


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe relative path, else raise ValueError.

    The rules hold for S3 too although S3 would accept anything: a key that is valid on one backend
    must be valid on the other, so that switching backends never strands a blob.
    """
    if not isinstance(key, str) or key == "":
        raise ValueError("a blob key must be a non-empty string")
    _check_segments(key, "blob key", allow_partial_tail=False)
    return key


def validate_prefix(prefix: str) -> str:
    """Like validate_key, but "" (everything) and a trailing "/" or partial last segment are fine."""
    if not isinstance(prefix, str):
        raise ValueError("a blob key prefix must be a string")
    if prefix == "":
        return prefix
    _check_segments(prefix, "blob key prefix", allow_partial_tail=True)
    return prefix


def validate_expiry(expires_seconds: int) -> int:
    if not 1 <= expires_seconds <= MAX_PRESIGN_SECONDS:
        raise ValueError(f"expires_seconds must be between 1 and {MAX_PRESIGN_SECONDS}")
    return expires_seconds
