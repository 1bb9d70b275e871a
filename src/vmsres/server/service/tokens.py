"""Signed, expiring URL tokens (upload and download links that need no request signature)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import orjson

from vmsres.protocol.errors import AccessDenied


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    """The bytes of ``text`` only if it is their one spelling: unpadded URL-safe base64 with no
    stray characters or non-zero spare bits (which the decoder would otherwise let through)."""
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64(data) != text:
        raise ValueError("not the canonical spelling")
    return data


def make_token(key: bytes, kind: str, claims: dict[str, Any], expires_at: int) -> str:
    payload = _b64(orjson.dumps({"k": kind, "e": expires_at, **claims}))
    mac = hmac.new(key, payload.encode(), hashlib.sha256).digest()
    return f"{payload}.{_b64(mac)}"


def read_token(key: bytes, kind: str, token: str, now: float) -> dict[str, Any]:
    """The claims of a valid token; AccessDenied when it is forged, altered, of another kind or expired."""
    payload, _, mac = token.partition(".")
    try:
        expected = hmac.new(key, payload.encode(), hashlib.sha256).digest()
        valid = hmac.compare_digest(expected, _unb64(mac))
        claims = orjson.loads(_unb64(payload)) if valid else None
    except (ValueError, orjson.JSONDecodeError):
        claims = None
    if not isinstance(claims, dict) or claims.get("k") != kind:
        raise AccessDenied("The URL's signature is invalid.")
    if not isinstance(claims.get("e"), int) or claims["e"] < now:
        raise AccessDenied("The URL has expired.")
    return claims
