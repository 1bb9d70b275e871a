"""Building requests from the service description and reading responses; no I/O here.

Both clients share this, so the sync and async paths cannot disagree about what goes on the wire.
Requests are shaped like the official Python SDK's (``spec.ActionSpec.transport``): its JSON
bodies come from ``json.dumps`` with default separators and its query strings from ``urlencode``,
which is what makes our signatures byte-identical to its on the same parameters.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from vmsres import __version__
from vmsres.client.credentials import Credentials
from vmsres.client.errors import ProtocolError, error_from_envelope
from vmsres.protocol import API_VERSION, SERVICE
from vmsres.protocol.errors import VmsError
from vmsres.protocol.records import Result, Shape
from vmsres.protocol.signing import sign_request
from vmsres.protocol.spec import ACTIONS, ActionSpec, Transport

DEFAULT_ENDPOINT = "http://127.0.0.1:8080"
PRODUCTION_ENDPOINT = "https://cloud-vms.volcengineapi.com"
DEFAULT_REGION = "cn-north-1"
USER_AGENT = f"vmsres-client/{__version__}"

_CONTENT_TYPES: Mapping[Transport, str] = {
    "json": "application/json",
    "query": "application/x-www-form-urlencoded",
    "query_json": "application/json",
    # What the generated SDK declares for its GET action.
    "get": "text/plain",
}


# The result of an action the description does not have: whatever the service answers.
UNDESCRIBED = Result(Shape("Any", "", ()))


@dataclass(frozen=True, slots=True)
class PreparedCall:
    action: str
    method: str
    query: tuple[tuple[str, str], ...]
    body: bytes
    content_type: str
    mutating: bool


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping | list):
        return json.dumps(value)
    return str(value)


def _checked(spec: ActionSpec, params: Mapping[str, Any]) -> dict[str, Any]:
    """Validate with the server's own rules so bad input fails before a round trip.

    Returns the values to send: only those the caller gave, coerced the way the server reads them
    (``"5"`` becomes 5, a TtsOption mapping becomes its JSON text).
    """
    unknown = [name for name in params if name not in spec.by_name]
    if unknown:
        raise TypeError(f"{spec.name} has no parameter {', '.join(sorted(unknown))}")
    out: dict[str, Any] = {}
    for param in spec.params:
        raw = params.get(param.name)
        value = param.parse(raw)
        if raw is not None:
            out[param.name] = value
    return out


def prepare_call(action: str, params: Mapping[str, Any], *, validate: bool = True) -> PreparedCall:
    spec = ACTIONS.get(action)
    if spec is None:
        if validate:
            raise ValueError(f"unknown action {action!r}; pass validate=False to send it anyway")
        # An action we do not describe: send it the way most Volcengine actions travel, and treat
        # it as one that may change things so an uncertain failure is never retried.
        spec = ActionSpec(action, "", (), UNDESCRIBED, mutating=True)
    if validate:
        values = _checked(spec, params)
    else:
        given = {k: v for k, v in params.items() if v is not None}
        # Declared parameters in declared order, then anything else as given.
        values = {p.name: given.pop(p.name) for p in spec.params if p.name in given}
        values.update(given)

    query: list[tuple[str, str]] = [("Action", action), ("Version", API_VERSION)]
    body = b""
    if spec.transport == "json":
        body = json.dumps(values).encode()
    else:
        query.extend((name, _query_value(value)) for name, value in values.items())
        if spec.transport == "query_json":
            body = b"{}"
    return PreparedCall(
        action=action,
        method="GET" if spec.transport == "get" else "POST",
        query=tuple(query),
        body=body,
        content_type=_CONTENT_TYPES[spec.transport],
        # With a ClientToken the server answers a repeat with the first result, so a request that
        # may have been processed is safe to send again.
        mutating=spec.mutating and not values.get("ClientToken"),
    )


@dataclass(frozen=True, slots=True)
class Endpoint:
    """scheme://host[:port][/path] of the service; the path is signed as sent."""

    url: str
    host: str
    path: str

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"endpoint must be an http or https URL, got {url!r}")
        path = parts.path or "/"
        return cls(f"{parts.scheme}://{parts.netloc}{path}", parts.netloc, path)


def signed_request(
    call: PreparedCall,
    endpoint: Endpoint,
    credentials: Credentials,
    region: str,
    now: float,
) -> tuple[str, dict[str, str]]:
    """The URL and headers of one attempt; signed afresh each time, as X-Date moves."""
    headers = sign_request(
        method=call.method,
        host=endpoint.host,
        path=endpoint.path,
        query_pairs=call.query,
        body=call.body,
        content_type=call.content_type,
        access_key=credentials.access_key,
        secret_key=credentials.secret_key,
        region=region,
        service=SERVICE,
        now=now,
        session_token=credentials.session_token,
    )
    headers["Accept"] = "application/json"
    headers["User-Agent"] = USER_AGENT
    return f"{endpoint.url}?{urlencode(call.query)}", headers


def retry_after_seconds(value: str | None) -> int | None:
    """A Retry-After header in its seconds form; None when absent or an HTTP date (not honoured)."""
    if value is None or not value.strip().isdigit():
        return None
    return int(value.strip())


def decode_response(status: int, content: bytes, headers: Mapping[str, str]) -> Any:
    """The ``Result`` of a successful answer; raises the answer's error otherwise."""
    request_id = headers.get("x-tt-logid", "")
    try:
        payload = json.loads(content) if content.strip() else None
    except ValueError:
        payload = None
    error: VmsError | None = error_from_envelope(payload, status, request_id)
    if error is not None:
        retry_after = retry_after_seconds(headers.get("retry-after"))
        if retry_after is not None:
            error.retry_after_seconds = retry_after
        raise error
    if not isinstance(payload, dict) or not isinstance(payload.get("ResponseMetadata"), dict):
        raise ProtocolError(
            f"HTTP {status} without a Volcengine response envelope", http_status=status, body=content[:2048]
        )
    if not 200 <= status < 300:
        raise ProtocolError(f"HTTP {status} with no error in the envelope", http_status=status, body=content)
    return payload.get("Result")
