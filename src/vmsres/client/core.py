"""What Client and AsyncClient share, without I/O: building and signing requests, retry decisions,
paging, waiting for review and upload planning.

Each helper is a generator (a "flow") that yields the effects it needs (send this request, sleep,
PUT these bytes, read this file) and receives their outcomes; it returns the helper's answer. The
sync and async clients only carry the effects out with their transport (the pattern of httpx's
``BaseClient``), so the two cannot disagree about what is sent, retried or returned.
"""

from __future__ import annotations

import mimetypes
import re
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

import httpx

from vmsres.client import operations as ops
from vmsres.client.base import Operation
from vmsres.client.credentials import Credentials, resolve_credentials
from vmsres.client.errors import ProtocolError, RequestTimeout, TransportError, error_from_envelope
from vmsres.client.models import Resource, ResourcePage, StoredResource
from vmsres.client.retry import RetryPolicy
from vmsres.client.wire import (
    DEFAULT_ENDPOINT,
    DEFAULT_REGION,
    Endpoint,
    PreparedCall,
    decode_response,
    prepare_call,
    signed_request,
)
from vmsres.protocol.errors import ResourceKeyIsNotExist, VmsError
from vmsres.protocol.records import ResourceState, ResourceType, wire_values

DEFAULT_TIMEOUT_SECONDS = 30.0
# Bytes per progress report while uploading.
UPLOAD_CHUNK = 64 * 1024
ProgressCallback = Callable[[int, int], None]
_REGION = re.compile(r"[A-Za-z0-9._-]+")

R = TypeVar("R")


# --- Effects: what a flow asks its client to do ----------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    """Send one request; the outcome is the httpx.Response, or the httpx.HTTPError it raised."""

    method: str
    url: str
    headers: Mapping[str, str]
    content: bytes


@dataclass(frozen=True, slots=True)
class Sleep:
    seconds: float


@dataclass(frozen=True, slots=True)
class Put:
    """PUT the file's bytes in chunks; the outcome as for Send."""

    url: str
    source: UploadSource
    progress: ProgressCallback | None


@dataclass(frozen=True, slots=True)
class ReadFile:
    """Read a file to upload; the outcome is its UploadSource."""

    path: str | Path
    name: str | None


@dataclass(frozen=True, slots=True)
class Emit:
    """One item of an iterating helper, handed to the caller; the outcome is None."""

    item: Resource


Effect: TypeAlias = Send | Sleep | Put | ReadFile | Emit
Flow: TypeAlias = Generator[Effect, Any, R]


def check_location(endpoint: str | None, region: str | None) -> tuple[Endpoint, str]:
    """The parsed endpoint and the region; ValueError if either cannot be used."""
    region = region or DEFAULT_REGION
    # It travels in the Authorization header's "/"-separated credential scope.
    if not _REGION.fullmatch(region):
        raise ValueError(f"region must be letters, digits, '.', '_' or '-', got {region!r}")
    return Endpoint.parse(endpoint or DEFAULT_ENDPOINT), region


@dataclass(frozen=True, slots=True)
class UploadSource:
    file_name: str
    data: bytes
    content_type: str

    @classmethod
    def read(cls, path: str | Path, name: str | None) -> UploadSource:
        path = Path(path)
        data = path.read_bytes()
        guessed = mimetypes.guess_type(path.name)[0]
        return cls(name or path.name, data, guessed or "application/octet-stream")

    def headers(self) -> dict[str, str]:
        # An explicit length keeps the PUT unchunked, which presigned object-store URLs require.
        return {"Content-Type": self.content_type, "Content-Length": str(len(self.data))}

    def chunks(self, progress: ProgressCallback | None) -> Iterator[bytes]:
        total = len(self.data)
        if progress is not None:
            progress(0, total)
        for start in range(0, total, UPLOAD_CHUNK):
            chunk = self.data[start : start + UPLOAD_CHUNK]
            yield chunk
            if progress is not None:
                progress(start + len(chunk), total)


def next_offset(page: ResourcePage, offset: int) -> int | None:
    """Where the next page starts, or None after the last one.

    Stops on an empty page as well as on Total, so a listing that shrinks while we page cannot
    loop forever.
    """
    offset += len(page.records)
    if not page.records or offset >= page.total:
        return None
    return offset


def check_put_response(response: httpx.Response) -> None:
    if 200 <= response.status_code < 300:
        return
    try:
        payload = response.json()
    except ValueError:
        payload = None
    error: VmsError | None = error_from_envelope(payload, response.status_code)
    if error is not None:
        raise error
    raise ProtocolError(
        f"the upload URL answered HTTP {response.status_code}",
        http_status=response.status_code,
        body=response.content[:2048],
    )


class ClientCore:
    def __init__(
        self,
        access_key: str | None,
        secret_key: str | None,
        *,
        endpoint: str,
        region: str,
        session_token: str | None,
        retry: RetryPolicy | None,
        validate: bool,
        clock: Callable[[], float],
    ) -> None:
        self.endpoint, self.region = check_location(endpoint, region)
        self.credentials: Credentials = resolve_credentials(
            access_key, secret_key, session_token=session_token
        )
        self.retry = retry if retry is not None else RetryPolicy()
        self.validate = validate
        self.clock = clock

    # --- The wire ---------------------------------------------------------------------------

    def _send(self, call: PreparedCall) -> Send:
        # Signed afresh for every attempt, as X-Date moves.
        url, headers = signed_request(call, self.endpoint, self.credentials, self.region, self.clock())
        return Send(call.method, url, headers, call.body)

    def call(self, action: str, params: Mapping[str, Any]) -> Flow[Any]:
        """Send any action with wire-named parameters, retrying as the policy allows; the Result."""
        call = prepare_call(action, params, validate=self.validate)
        attempt = 0
        while True:
            attempt += 1
            outcome = yield self._send(call)
            if isinstance(outcome, httpx.HTTPError):
                delay = self.retry.after_exception(outcome, attempt, call.mutating)
                if delay is None:
                    kind = RequestTimeout if isinstance(outcome, httpx.TimeoutException) else TransportError
                    raise kind(f"{action}: {outcome!r}") from outcome
            else:
                try:
                    return decode_response(outcome.status_code, outcome.content, outcome.headers)
                except (VmsError, ProtocolError) as error:
                    delay = self.retry.after_answer(error, attempt)
                    if delay is None:
                        raise
            yield Sleep(delay)

    def perform(self, operation: Operation[R]) -> Flow[R]:
        return operation.decode((yield from self.call(operation.action, operation.params)))

    # --- Helpers over several calls ---------------------------------------------------------

    def iter_resources(self, type: int, state: int | None, keyword: str | None, page_size: int) -> Flow[None]:
        """Emits every matching resource, fetched page by page through Offset/Limit."""
        offset: int | None = 0
        while offset is not None:
            page = yield from self.perform(
                ops.query_open_get_resource(
                    type, keyword=keyword, state=state, limit=page_size, offset=offset
                )
            )
            for record in page.records:
                yield Emit(record)
            offset = next_offset(page, offset)

    def find_by_name(self, type: int, name: str) -> Flow[Resource | None]:
        # Keyword alone also matches longer names; only the exact name counts.
        listing = self.iter_resources(type, None, name, 100)
        outcome: Any = None
        while True:
            try:
                effect = listing.send(outcome)
            except StopIteration:
                return None
            if isinstance(effect, Emit) and effect.item.name == name:
                listing.close()
                return effect.item
            outcome = None if isinstance(effect, Emit) else (yield effect)

    def get_resource(self, resource_key: str, type: int | None) -> Flow[Resource]:
        """One resource by key; without ``type`` every type is searched."""
        for candidate in wire_values(ResourceType) if type is None else (type,):
            page = yield from self.perform(ops.query_open_get_resource(candidate, keyword=resource_key))
            # Keyword also matches names containing the text; only the key itself counts here.
            found = next((r for r in page.records if r.resource_key == resource_key), None)
            if found is not None:
                return found
        raise ResourceKeyIsNotExist(f"No resource has the key {resource_key}.")

    def wait_for_review(
        self, resource_key: str, timeout: float, type: int | None, interval: float, max_interval: float
    ) -> Flow[Resource]:
        """Polls until the resource leaves review; TimeoutError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            resource = yield from self.get_resource(resource_key, type)
            if resource.state != ResourceState.REVIEWING:
                return resource
            type = resource.type
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{resource_key} is still under review after {timeout:g} s")
            yield Sleep(min(interval, remaining))
            interval = min(interval * 2, max_interval)

    def upload(
        self, path: str | Path, type: int, name: str | None, progress: ProgressCallback | None
    ) -> Flow[StoredResource]:
        """GetResourceUploadUrl, PUT the file's bytes there, then CommitResourceUpload."""
        source: UploadSource = yield ReadFile(path, name)
        ticket = yield from self.perform(ops.get_resource_upload_url(source.file_name))
        yield from self._put(ticket.upload_url, source, progress)
        return (yield from self.perform(ops.commit_resource_upload(source.file_name, type=type)))

    def _put(self, url: str, source: UploadSource, progress: ProgressCallback | None) -> Flow[None]:
        attempt = 0
        while True:
            attempt += 1
            outcome = yield Put(url, source, progress)
            if isinstance(outcome, httpx.HTTPError):
                # A PUT of the same bytes to the same URL is idempotent: any failure may be retried.
                delay = self.retry.after_exception(outcome, attempt, mutating=False)
                if delay is None:
                    raise TransportError(f"upload of {source.file_name}: {outcome!r}") from outcome
            else:
                try:
                    check_put_response(outcome)
                    return
                except (VmsError, ProtocolError) as error:
                    delay = self.retry.after_answer(error, attempt)
                    if delay is None:
                        raise
            yield Sleep(delay)
