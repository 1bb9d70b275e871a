"""Where audio bytes live: a folder on local disk or an S3-compatible bucket, behind one interface.

This package knows nothing of HTTP routing or SQL; callers map BlobNotFound, BlobStorageError and
BlobStorageFull to wire errors themselves.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from vmsres.server.blobs.base import (
    BlobNotFound,
    BlobReader,
    BlobStorageError,
    BlobStorageFull,
    BlobStore,
    validate_key,
    validate_prefix,
)
from vmsres.server.blobs.disk import DiskBlobStore

if TYPE_CHECKING:
    from vmsres.server.blobs.s3 import S3BlobStore

__all__ = [
    "BlobNotFound",
    "BlobReader",
    "BlobStorageError",
    "BlobStorageFull",
    "BlobStore",
    "DiskBlobStore",
    "S3BlobStore",
    "delete_quietly",
    "open_blob_store",
    "validate_key",
    "validate_prefix",
]


def __getattr__(name: str) -> Any:
    # S3 support is an extra (boto3): imported when asked for, not with the package.
    if name == "S3BlobStore":
        from vmsres.server.blobs.s3 import S3BlobStore

        return S3BlobStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


async def delete_quietly(store: BlobStore, key: str) -> bool:
    """Delete a blob whose row is already gone; a failure is logged, and garbage collection retries."""
    try:
        await store.delete(key)
    except BlobStorageError:
        logging.getLogger("vmsres").warning("could not delete blob %s; garbage collection will retry", key)
        return False
    return True


def open_blob_store(
    url: str, *, s3_endpoint_url: str | None = None, s3_region: str | None = None
) -> BlobStore:
    """A store for ``url``: a plain path or ``file:///abs/path`` (disk), or ``s3://bucket/prefix``.

    For S3 the endpoint, region and credentials not given here come from the usual AWS environment
    variables (AWS_ENDPOINT_URL, AWS_REGION / AWS_DEFAULT_REGION, AWS_ACCESS_KEY_ID, ...).
    """
    if not url:
        raise ValueError("a blob URL is required")
    scheme = urlsplit(url).scheme.lower() if "://" in url else ""
    if scheme == "s3":
        parts = urlsplit(url)
        if parts.query or parts.fragment:
            raise ValueError(f"an S3 blob URL takes no query or fragment: {url!r}")
        prefix = unquote(parts.path).strip("/")
        if prefix:
            validate_prefix(prefix + "/")
        from vmsres.server.blobs.s3 import S3BlobStore

        return S3BlobStore(parts.netloc, prefix, endpoint_url=s3_endpoint_url, region=s3_region)
    if scheme == "file":
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise ValueError(f"a file blob URL must name a local path (file:///abs/path): {url!r}")
        path = unquote(parts.path)
        if not os.path.isabs(path):
            raise ValueError(f"a file blob URL must hold an absolute path: {url!r}")
        return DiskBlobStore(path)
    if scheme:
        raise ValueError(f"unsupported blob URL scheme {scheme!r}: use a path, file:// or s3://")
    return DiskBlobStore(url)
