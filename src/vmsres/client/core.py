"""What Client and AsyncClient share: configuration, request signing, paging and upload pieces."""

from __future__ import annotations

import inspect
import mimetypes
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from vmsres.client.credentials import Credentials, resolve_credentials
from vmsres.client.errors import ProtocolError, error_from_envelope
from vmsres.client.models import Resource, ResourcePage
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

DEFAULT_TIMEOUT_SECONDS = 30.0
ALL_TYPES = (0, 1, 2)
# Bytes per progress report while uploading.
UPLOAD_CHUNK = 64 * 1024
ProgressCallback = Callable[[int, int], None]
_REGION = re.compile(r"[A-Za-z0-9._-]+")


def check_location(endpoint: str | None, region: str | None) -> tuple[Endpoint, str]:
    """The parsed endpoint and the region; ValueError if either cannot be used."""
    region = region or DEFAULT_REGION
    # It travels in the Authorization header's "/"-separated credential scope.
    if not _REGION.fullmatch(region):
        raise ValueError(f"region must be letters, digits, '.', '_' or '-', got {region!r}")
    return Endpoint.parse(endpoint or DEFAULT_ENDPOINT), region


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

    def prepare(self, action: str, params: Mapping[str, Any]) -> PreparedCall:
        return prepare_call(action, params, validate=self.validate)

    def build(self, http: httpx.Client | httpx.AsyncClient, call: PreparedCall) -> httpx.Request:
        url, headers = signed_request(call, self.endpoint, self.credentials, self.region, self.clock())
        return http.build_request(call.method, url, headers=headers, content=call.body)

    @staticmethod
    def decode(response: httpx.Response) -> Any:
        return decode_response(response.status_code, response.content, response.headers)


def bound_signature(function: Callable[..., Any], owner: str) -> inspect.Signature:
    """The operation's signature with ``self`` in front, so help() and IDEs show real parameters."""
    signature = inspect.signature(function)
    self_param = inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY, annotation=owner)
    returns = signature.return_annotation
    # The method returns what the Operation decodes to, not the Operation.
    if isinstance(returns, str) and returns.startswith("Operation[") and returns.endswith("]"):
        returns = returns[len("Operation[") : -1]
    return signature.replace(
        parameters=[self_param, *signature.parameters.values()], return_annotation=returns
    )


def next_offset(page: ResourcePage, offset: int) -> int | None:
    """Where the next page starts, or None after the last one.

    Stops on an empty page as well as on Total, so a listing that shrinks while we page cannot
    loop forever.
    """
    offset += len(page.records)
    if not page.records or offset >= page.total:
        return None
    return offset


def match_key(page: ResourcePage, resource_key: str) -> Resource | None:
    # Keyword also matches names containing the text; only the key itself counts here.
    return next((r for r in page.records if r.resource_key == resource_key), None)


def not_found(resource_key: str) -> ResourceKeyIsNotExist:
    return ResourceKeyIsNotExist(f"No resource has the key {resource_key}.")


def types_to_search(type: int | None) -> tuple[int, ...]:
    return ALL_TYPES if type is None else (type,)


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
