"""The asyncio client: the same core as Client (vmsres.client.core), carried out over
httpx.AsyncClient; every method is awaitable."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
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
from vmsres.client.operations import AsyncOperations
from vmsres.client.retry import RetryPolicy
from vmsres.client.wire import DEFAULT_ENDPOINT, DEFAULT_REGION

R = TypeVar("R")


async def _achunks(source: UploadSource, progress: ProgressCallback | None) -> AsyncIterator[bytes]:
    for chunk in source.chunks(progress):
        yield chunk


class AsyncClient(AsyncOperations):
    """The asyncio twin of :class:`vmsres.client.Client`; see there."""

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
        transport: httpx.AsyncBaseTransport | None = None,
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
        self._http = httpx.AsyncClient(timeout=timeout, transport=transport, follow_redirects=False)

    @property
    def endpoint(self) -> str:
        return self._core.endpoint.url

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # --- The transport ----------------------------------------------------------------------

    async def _effect(self, effect: Effect) -> Any:
        if isinstance(effect, Send):
            request = self._http.build_request(
                effect.method, effect.url, headers=effect.headers, content=effect.content
            )
            try:
                return await self._http.send(request)
            except httpx.HTTPError as error:
                return error
        if isinstance(effect, Put):
            try:
                return await self._http.put(
                    effect.url,
                    content=_achunks(effect.source, effect.progress),
                    headers=effect.source.headers(),
                )
            except httpx.HTTPError as error:
                return error
        if isinstance(effect, Sleep):
            await asyncio.sleep(effect.seconds)
            return None
        if isinstance(effect, ReadFile):
            return await asyncio.to_thread(UploadSource.read, effect.path, effect.name)
        raise TypeError(f"{effect!r} is not carried out here")

    async def _run(self, flow: Flow[R]) -> R:
        outcome: Any = None
        while True:
            try:
                effect = flow.send(outcome)
            except StopIteration as done:
                result: R = done.value
                return result
            outcome = await self._effect(effect)

    async def _iterate(self, flow: Flow[None]) -> AsyncIterator[Resource]:
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
                outcome = await self._effect(effect)

    async def _perform(self, operation: Operation[R]) -> R:
        return await self._run(self._core.perform(operation))

    async def call(self, action: str, /, **params: Any) -> Any:
        """Send any action with wire-named parameters (``Type=0``); returns the raw ``Result``."""
        return await self._run(self._core.call(action, params))

    # --- Helpers (the typed method per action comes from AsyncOperations) --------------------

    def iter_resources(
        self, type: int, state: int | None = None, keyword: str | None = None, page_size: int = 100
    ) -> AsyncIterator[Resource]:
        """Every matching resource, fetched page by page through Offset/Limit."""
        return self._iterate(self._core.iter_resources(type, state, keyword, page_size))

    async def find_by_name(self, type: int, name: str) -> Resource | None:
        """The resource named exactly ``name`` (Keyword alone also matches longer names)."""
        return await self._run(self._core.find_by_name(type, name))

    async def get_resource(self, resource_key: str, type: int | None = None) -> Resource:
        """One resource by key; without ``type`` every type is searched."""
        return await self._run(self._core.get_resource(resource_key, type))

    async def wait_for_review(
        self,
        resource_key: str,
        timeout: float,
        *,
        type: int | None = None,
        interval: float = 0.5,
        max_interval: float = 5.0,
    ) -> Resource:
        """Poll until the resource leaves review (State != 0); TimeoutError after ``timeout`` s."""
        return await self._run(
            self._core.wait_for_review(resource_key, timeout, type, interval, max_interval)
        )

    async def upload(
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
        return await self._run(self._core.upload(path, type, name, progress))
