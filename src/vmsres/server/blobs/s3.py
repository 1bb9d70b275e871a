"""Blobs as objects in an S3-compatible bucket (AWS S3, MinIO, moto, Volcengine TOS's S3 endpoint...)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import boto3  # type: ignore[import-untyped]
from botocore.config import Config  # type: ignore[import-untyped]
from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

from vmsres.server.blobs.base import (
    BlobNotFound,
    BlobReader,
    BlobStorageError,
    validate_expiry,
    validate_key,
    validate_prefix,
)

_P = ParamSpec("_P")
_T = TypeVar("_T")

# S3 and the compatible servers disagree on the code of a missing object: GetObject says NoSuchKey,
# HeadObject has no body and so only a bare 404.
_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})

DEFAULT_REGION = "us-east-1"


def _error_code(exc: ClientError) -> str:
    error = exc.response.get("Error", {}) if isinstance(exc.response, dict) else {}
    return str(error.get("Code", ""))


def _env(*names: str) -> str | None:
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return None


class S3BlobStore:
    """Every key lives at ``<prefix>/<key>`` in one bucket; boto3 runs in worker threads."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
    ) -> None:
        if not bucket:
            raise ValueError("an S3 blob URL needs a bucket: s3://bucket/prefix")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        # botocore reads AWS_ENDPOINT_URL itself, but we must know whether an endpoint is set to choose
        # path-style addressing, so the lookup is done here once, in botocore's order of precedence.
        self.endpoint_url = endpoint_url or _env("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
        self.region = region or _env("AWS_REGION", "AWS_DEFAULT_REGION") or DEFAULT_REGION

        options: dict[str, Any] = {"signature_version": "s3v4"}
        if self.endpoint_url:
            # Self-hosted servers seldom have wildcard DNS for virtual-hosted buckets, and presigned
            # URLs must name a host the client can actually resolve.
            options["s3"] = {"addressing_style": "path"}
            # botocore 1.36 began adding CRC checksums to every upload by default, which several
            # S3-compatible servers reject; for those, checksum only where the API demands it.
            if "request_checksum_calculation" in Config.OPTION_DEFAULTS:
                options["request_checksum_calculation"] = "when_required"
                options["response_checksum_validation"] = "when_required"
        session = boto3.session.Session()

        def client(connect_timeout: int, read_timeout: int, max_attempts: int) -> Any:
            retries = {"mode": "standard", "max_attempts": max_attempts}
            return session.client(
                "s3",
                endpoint_url=self.endpoint_url,
                region_name=self.region,
                config=Config(
                    connect_timeout=connect_timeout, read_timeout=read_timeout, retries=retries, **options
                ),
            )

        self._client = client(10, 60, 3)
        # /readyz must answer quickly: one attempt, short timeouts, no retry backoff.
        self._probe_client = client(3, 5, 1)

    def __repr__(self) -> str:
        return f"S3BlobStore(bucket={self.bucket!r}, prefix={self.prefix!r}, endpoint={self.endpoint_url!r})"

    def _object_key(self, key: str) -> str:
        validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    # --- blocking halves, run in a worker thread -------------------------------------------------

    def _get_object_sync(self, object_key: str, key: str) -> Any:
        try:
            return self._client.get_object(Bucket=self.bucket, Key=object_key)
        except ClientError as exc:
            if _error_code(exc) in _MISSING_CODES:
                raise BlobNotFound(key) from None
            raise

    def _get_sync(self, object_key: str, key: str) -> bytes:
        body = self._get_object_sync(object_key, key)["Body"]
        try:
            data = body.read()
        finally:
            body.close()
        return bytes(data)

    def _open_sync(self, object_key: str, key: str) -> BlobReader:
        response = self._get_object_sync(object_key, key)
        body = response["Body"]
        return BlobReader(int(response["ContentLength"]), body.read, body.close)

    def _exists_sync(self, object_key: str) -> bool:
        try:
            self._client.head_object(Bucket=self.bucket, Key=object_key)
        except ClientError as exc:
            if _error_code(exc) in _MISSING_CODES:
                return False
            raise
        return True

    def _list_sync(self, prefix: str) -> list[str]:
        base = f"{self.prefix}/" if self.prefix else ""
        paginator = self._client.get_paginator("list_objects_v2")
        keys: list[str] = []
        for page in paginator.paginate(Bucket=self.bucket, Prefix=base + prefix):
            for item in page.get("Contents", []):
                name = str(item["Key"])
                if name.startswith(base):
                    keys.append(name[len(base) :])
        keys.sort()
        return keys

    # --- the BlobStore interface --------------------------------------------------------------------

    async def put(self, key: str, data: bytes) -> None:
        # PutObject is atomic on S3: an object becomes visible whole or not at all.
        object_key = self._object_key(key)
        await _run(self._client.put_object, Bucket=self.bucket, Key=object_key, Body=bytes(data))

    async def get(self, key: str) -> bytes:
        return await _run(self._get_sync, self._object_key(key), key)

    async def open_reader(self, key: str) -> BlobReader:
        return await _run(self._open_sync, self._object_key(key), key)

    async def delete(self, key: str) -> None:
        # DeleteObject of a missing key already succeeds on S3, which is the idempotence we promise.
        await _run(self._client.delete_object, Bucket=self.bucket, Key=self._object_key(key))

    async def exists(self, key: str) -> bool:
        return await _run(self._exists_sync, self._object_key(key))

    async def list_keys(self, prefix: str) -> list[str]:
        return await _run(self._list_sync, validate_prefix(prefix))

    def presign_put(self, key: str, expires_seconds: int, content_type: str | None = None) -> str | None:
        params = {"Bucket": self.bucket, "Key": self._object_key(key)}
        if content_type:
            # Signed into the URL: the uploader must then send exactly this Content-Type.
            params["ContentType"] = content_type
        return self._presign("put_object", params, expires_seconds)

    def presign_get(self, key: str, expires_seconds: int) -> str | None:
        params = {"Bucket": self.bucket, "Key": self._object_key(key)}
        return self._presign("get_object", params, expires_seconds)

    def _presign(self, operation: str, params: dict[str, str], expires_seconds: int) -> str:
        validate_expiry(expires_seconds)
        try:
            url = self._client.generate_presigned_url(operation, Params=params, ExpiresIn=expires_seconds)
        except (BotoCoreError, ClientError) as exc:
            raise BlobStorageError(f"S3 presigning failed: {exc}") from exc
        return str(url)

    async def check(self) -> None:
        await _run(self._probe_client.head_bucket, Bucket=self.bucket)

    async def close(self) -> None:
        for client in (self._client, self._probe_client):
            client.close()


async def _run(func: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
    try:
        return await asyncio.to_thread(func, *args, **kwargs)
    except BlobNotFound:
        raise
    except ClientError as exc:
        raise BlobStorageError(f"S3 blob storage answered {_error_code(exc) or 'an error'}: {exc}") from exc
    except BotoCoreError as exc:
        # Connection refused, timeouts, missing credentials, bad endpoint URLs...
        raise BlobStorageError(f"S3 blob storage failed: {exc}") from exc
    except OSError as exc:
        raise BlobStorageError(f"S3 blob storage failed: {exc}") from exc
