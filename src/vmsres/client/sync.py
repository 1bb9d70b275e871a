"""The blocking client."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar

import httpx

from vmsres.client import operations as ops
from vmsres.client.core import (
    DEFAULT_TIMEOUT_SECONDS,
    ClientCore,
    ProgressCallback,
    UploadSource,
    bound_signature,
    check_put_response,
    match_key,
    next_offset,
    not_found,
    types_to_search,
)
from vmsres.client.errors import ProtocolError, RequestTimeout, TransportError
from vmsres.client.models import Resource, ResourceState, StoredResource
from vmsres.client.retry import RetryPolicy
from vmsres.client.wire import DEFAULT_ENDPOINT, DEFAULT_REGION
from vmsres.protocol.errors import VmsError

P = ParamSpec("P")
R = TypeVar("R")


def _method(op: Callable[P, ops.Operation[R]]) -> Callable[Concatenate[Client, P], R]:
    def method(self: Client, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.run(op(*args, **kwargs))

    method.__name__ = method.__qualname__ = op.__name__
    method.__doc__ = op.__doc__
    method.__signature__ = bound_signature(op, "Client")  # type: ignore[attr-defined]
    return method


class Client:
    """A VMS voice-resource client for vmsres or the real endpoint.

    Credentials come from the arguments, else VOLC_ACCESSKEY/VOLC_SECRETKEY, else
    ~/.volc/credentials. Parameters are checked locally with the server's rules unless
    ``validate=False``. Use it as a context manager, or call close().
    """

    def __init__(
        self,
        access_key: str | None = None,
        secret_key: str | None = None,
        *,
        endpoint: str = DEFAULT_ENDPOINT,
        region: str = DEFAULT_REGION,
        session_token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        retry: RetryPolicy | None = None,
        validate: bool = True,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._core = ClientCore(
            access_key,
            secret_key,
            endpoint=endpoint,
            region=region,
            session_token=session_token,
            retry=retry,
            validate=validate,
            clock=clock,
        )
        self._http = httpx.Client(timeout=timeout, transport=transport, follow_redirects=False)

    @property
    def endpoint(self) -> str:
        return self._core.endpoint.url

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- The wire ---------------------------------------------------------------------------

    def call(self, action: str, /, **params: Any) -> Any:
        """Send any action with wire-named parameters (``Type=0``); returns the raw ``Result``."""
        call = self._core.prepare(action, params)
        retry = self._core.retry
        attempt = 0
        while True:
            attempt += 1
            request = self._core.build(self._http, call)
            try:
                response = self._http.send(request)
            except httpx.HTTPError as error:
                delay = retry.after_exception(error, attempt, call.mutating)
                if delay is None:
                    kind = RequestTimeout if isinstance(error, httpx.TimeoutException) else TransportError
                    raise kind(f"{action}: {error!r}") from error
                time.sleep(delay)
                continue
            try:
                return self._core.decode(response)
            except (VmsError, ProtocolError) as error:
                delay = retry.after_answer(error, attempt)
                if delay is None:
                    raise
                time.sleep(delay)

    def run(self, op: ops.Operation[R]) -> R:
        return op.decode(self.call(op.action, **op.params))

    # --- One typed method per action (signatures: vmsres.client.operations) -----------------

    query_open_get_resource = _method(ops.query_open_get_resource)
    query_usable_resource = _method(ops.query_usable_resource)
    query_usable_resource_v2 = _method(ops.query_usable_resource_v2)
    open_create_tts = _method(ops.open_create_tts)
    open_update_resource = _method(ops.open_update_resource)
    open_delete_resource = _method(ops.open_delete_resource)
    get_resource_upload_url = _method(ops.get_resource_upload_url)
    commit_resource_upload = _method(ops.commit_resource_upload)
    fetch_resource = _method(ops.fetch_resource)
    get_resource_download_url = _method(ops.get_resource_download_url)

    # --- Helpers ----------------------------------------------------------------------------

    def iter_resources(
        self, type: int, state: int | None = None, keyword: str | None = None, page_size: int = 100
    ) -> Iterator[Resource]:
        """Every matching resource, fetched page by page through Offset/Limit."""
        offset: int | None = 0
        while offset is not None:
            page = self.query_open_get_resource(
                type, keyword=keyword, state=state, limit=page_size, offset=offset
            )
            yield from page.records
            offset = next_offset(page, offset)

    def find_by_name(self, type: int, name: str) -> Resource | None:
        """The resource named exactly ``name`` (Keyword alone also matches longer names)."""
        return next((r for r in self.iter_resources(type, keyword=name) if r.name == name), None)

    def get_resource(self, resource_key: str, type: int | None = None) -> Resource:
        """One resource by key; without ``type`` every type is searched."""
        for candidate in types_to_search(type):
            found = match_key(self.query_open_get_resource(candidate, keyword=resource_key), resource_key)
            if found is not None:
                return found
        raise not_found(resource_key)

    def wait_for_review(
        self,
        resource_key: str,
        timeout: float,
        *,
        type: int | None = None,
        interval: float = 0.5,
        max_interval: float = 5.0,
    ) -> Resource:
        """Poll until the resource leaves review (State != 0); TimeoutError after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            resource = self.get_resource(resource_key, type)
            if resource.state != ResourceState.REVIEWING:
                return resource
            type = resource.type
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{resource_key} is still under review after {timeout:g} s")
            time.sleep(min(interval, remaining))
            interval = min(interval * 2, max_interval)

    def upload(
        self,
        path: str | Path,
        type: int = 0,
        *,
        name: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> StoredResource:
        """GetResourceUploadUrl, PUT the file's bytes there, then CommitResourceUpload.

        ``name`` is the FileName (default: the file's name); it must be unique in the account.
        ``progress(sent, total)`` is called as bytes go out.
        """
        source = UploadSource.read(path, name)
        ticket = self.get_resource_upload_url(source.file_name)
        self._put(ticket.upload_url, source, progress)
        return self.commit_resource_upload(source.file_name, type=type)

    def _put(self, url: str, source: UploadSource, progress: ProgressCallback | None) -> None:
        retry = self._core.retry
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._http.put(url, content=source.chunks(progress), headers=source.headers())
                check_put_response(response)
                return
            except httpx.HTTPError as error:
                # A PUT of the same bytes to the same URL is idempotent: any failure may be retried.
                delay = retry.after_exception(error, attempt, mutating=False)
                if delay is None:
                    raise TransportError(f"upload of {source.file_name}: {error!r}") from error
            except (VmsError, ProtocolError) as error:
                delay = retry.after_answer(error, attempt)
                if delay is None:
                    raise
            time.sleep(delay)
