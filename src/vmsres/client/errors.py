"""Errors the client raises.

A response carrying ``ResponseMetadata.Error`` becomes the same exception type the server raised
(vmsres.protocol.errors.ERRORS), so callers catch ``ResourceKeyIsNotExist`` whether the check failed
locally or on the wire. ``ClientError`` covers failures where no usable answer came back.
"""

from __future__ import annotations

import re
from typing import Any

from vmsres.protocol.errors import ERRORS, ParameterError, VmsError


class ClientError(Exception):
    """The client could not get a usable answer from the service."""


class CredentialsNotFound(ClientError):
    pass


class TransportError(ClientError):
    """The connection failed (after the retries the policy allows)."""


class RequestTimeout(TransportError):
    pass


class ProtocolError(ClientError):
    """The peer answered with something that is not the Volcengine response envelope."""

    def __init__(self, message: str, *, http_status: int, body: bytes = b"") -> None:
        super().__init__(message)
        self.http_status = http_status
        self.body = body


class UnknownVmsError(VmsError):
    """A wire error whose code this client has no class for; ``code`` is the wire's."""

    def __init__(self, code: str, message: str, *, request_id: str = "", http_status: int = 400) -> None:
        super().__init__(message, request_id=request_id)
        # Instance attributes shadow the ClassVars: this one class stands for every unknown code.
        vars(self).update(code=code, http_status=http_status)


def _template_pattern(template: str) -> re.Pattern[str]:
    before, _, after = template.partition("%s")
    return re.compile(re.escape(before) + "(.+?)" + re.escape(after))


def error_from_wire(code: str, message: str, *, request_id: str, http_status: int) -> VmsError:
    """Rebuild the exception the service raised from its ``Error`` object."""
    cls = ERRORS.get(code)
    if cls is None:
        return UnknownVmsError(code, message, request_id=request_id, http_status=http_status)
    # The classes' constructors build messages from parameters; the wire already has the final
    # text, so bypass them and keep the service's message verbatim.
    error: VmsError = cls.__new__(cls)
    VmsError.__init__(error, message, request_id=request_id)
    if isinstance(error, ParameterError):
        match = _template_pattern(error.template).match(message)
        error.parameter = match.group(1) if match else ""
    # The status actually seen may differ from the class's (a gateway, the real endpoint).
    vars(error)["http_status"] = http_status
    return error


def error_from_envelope(payload: Any, http_status: int, fallback_request_id: str = "") -> VmsError | None:
    """The error in a decoded response body, or None when it carries none."""
    if not isinstance(payload, dict):
        return None
    metadata = payload.get("ResponseMetadata")
    if not isinstance(metadata, dict):
        return None
    error = metadata.get("Error")
    if not isinstance(error, dict) or not error.get("Code"):
        return None
    return error_from_wire(
        str(error["Code"]),
        str(error.get("Message") or ""),
        request_id=str(metadata.get("RequestId") or fallback_request_id),
        http_status=http_status,
    )
