"""The blocking client: the shared core (vmsres.client.core) carried out over httpx.Client."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import httpx

from vmsres.client.base import Operation
from vmsres.client.core import (
    DEFAULT_TIMEOUT_SECONDS,
    ClientCore,
    Effect,
    Emit,
    Flow,
    ProgressCallback,
    Put,
    ReadFile,
    Send,
    Sleep,
    UploadSource,
)
from vmsres.client.models import Resource, StoredResource
from vmsres.client.operations import Operations
from vmsres.client.retry import RetryPolicy
from vmsres.client.wire import DEFAULT_ENDPOINT, DEFAULT_REGION

R = TypeVar("R")


class Client(Operations):
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

    # --- The transport ----------------------------------------------------------------------

    def _effect(self, effect: Effect) -> Any:
        if isinstance(effect, Send):
            request = self._http.build_request(
                effect.method, effect.url, headers=effect.headers, content=effect.content
            )
            try:
                return self._http.send(request)
            except httpx.HTTPError as error:
                return error
        if isinstance(effect, Put):
            try:
                return self._http.put(
                    effect.url, content=effect.source.chunks(effect.progress), headers=effect.source.headers()
                )
            except httpx.HTTPError as error:
                return error
        if isinstance(effect, Sleep):
            time.sleep(effect.seconds)
            return None
        if isinstance(effect, ReadFile):
            return UploadSource.read(effect.path, effect.name)
        raise TypeError(f"{effect!r} is not carried out here")

    def _run(self, flow: Flow[R]) -> R:
        outcome: Any = None
        while True:
            try:
                effect = flow.send(outcome)
            except StopIteration as done:
                result: R = done.value
                return result
            outcome = self._effect(effect)

    def _iterate(self, flow: Flow[None]) -> Iterator[Resource]:
        outcome: Any = None
        while True:
            try:
                effect = flow.send(outcome)
            except StopIteration:
                return
            if isinstance(effect, Emit):
                outcome = None
                yield effect.item
            else:
                outcome = self._effect(effect)

    def _perform(self, operation: Operation[R]) -> R:
        return self._run(self._core.perform(operation))

    def call(self, action: str, /, **params: Any) -> Any:
        """Send any action with wire-named parameters (``Type=0``); returns the raw ``Result``."""
        return self._run(self._core.call(action, params))

    # --- Helpers (the typed method per action comes from Operations) -------------------------

    def iter_resources(
        self, type: int, state: int | None = None, keyword: str | None = None, page_size: int = 100
    ) -> Iterator[Resource]:
        """Every matching resource, fetched page by page through Offset/Limit."""
        return self._iterate(self._core.iter_resources(type, state, keyword, page_size))

    def find_by_name(self, type: int, name: str) -> Resource | None:
        """The resource named exactly ``name`` (Keyword alone also matches longer names)."""
        return self._run(self._core.find_by_name(type, name))

    def get_resource(self, resource_key: str, type: int | None = None) -> Resource:
        """One resource by key; without ``type`` every type is searched."""
        return self._run(self._core.get_resource(resource_key, type))

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
        return self._run(self._core.wait_for_review(resource_key, timeout, type, interval, max_interval))

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
        return self._run(self._core.upload(path, type, name, progress))
