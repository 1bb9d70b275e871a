"""Volcengine "V4" request signing (HMAC-SHA256), shared by the server's verifier and the client.

The canonical form follows what the official SDKs send: the query is decoded and re-encoded
(never signed raw), header values are trimmed, ``host`` loses a default port, and the payload
hash is always computed from the body bytes as received.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote, unquote_plus

from vmsres.protocol.errors import (
    InvalidAuthorization,
    InvalidParameter,
    InvalidTimestamp,
    MissingAuthenticationToken,
    MissingRequestInfo,
    MissingSignature,
    SignatureNotMatch,
)

ALGORITHM = "HMAC-SHA256"
SCOPE_TERMINATOR = "request"
EMPTY_BODY_SHA256 = hashlib.sha256(b"").hexdigest()
MAX_CLOCK_SKEW_SECONDS = 15 * 60
# The official Python SDK signs exactly these; a client of ours does the same.
DEFAULT_SIGNED_HEADERS = ("content-type", "host", "x-content-sha256", "x-date")

_UNRESERVED = "-_.~"
# Values made only of unreserved characters encode to themselves (Action=..., Version=...).
_ENCODES_TO_ITSELF = re.compile(r"[A-Za-z0-9_.~-]*").fullmatch


def _encode(value: str) -> str:
    if _ENCODES_TO_ITSELF(value):
        return value
    return quote(value, safe=_UNRESERVED)


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    """Sort decoded pairs by key (a stable sort keeps repeated keys in order) and re-encode."""
    ordered = sorted(pairs, key=lambda kv: kv[0])
    return "&".join(f"{_encode(k)}={_encode(v)}" for k, v in ordered)


def parse_query(raw: str, *, strict: bool = False) -> list[tuple[str, str]]:
    """Decode a raw query string the way signers see it: ``+`` is a space, blanks are kept.

    With ``strict``, a key or value whose percent-escapes are not UTF-8 raises InvalidParameter
    naming the key, instead of decoding to U+FFFD.
    """
    pairs: list[tuple[str, str]] = []
    if not raw:
        return pairs
    errors = "strict" if strict else "replace"
    for part in raw.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        if "%" in part or "+" in part:  # otherwise decoding would change nothing
            try:
                key, value = unquote_plus(key, errors=errors), unquote_plus(value, errors=errors)
            except UnicodeDecodeError:
                raise InvalidParameter(
                    unquote_plus(key)[:64], "Its percent-escapes do not decode as UTF-8."
                ) from None
        pairs.append((key, value))
    return pairs


def _canonical_header_value(name: str, value: str) -> str:
    value = value.strip()
    if name == "host":
        if value.endswith(":80"):
            value = value[:-3]
        elif value.endswith(":443"):
            value = value[:-4]
    return value


def canonical_request(
    method: str,
    path: str,
    query_pairs: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    signed_headers: Sequence[str],
    body_sha256: str,
) -> str:
    """``headers`` must be keyed by lowercase names; every name in ``signed_headers`` must be in it."""
    header_block = "".join(
        f"{name}:{_canonical_header_value(name, headers[name])}\n" for name in signed_headers
    )
    return "\n".join(
        (
            method.upper(),
            path or "/",
            canonical_query(query_pairs),
            header_block,
            ";".join(signed_headers),
            body_sha256,
        )
    )


@lru_cache(maxsize=4096)
def signing_key(secret_key: str, date: str, region: str, service: str) -> bytes:
    """Derived per day, region and service; cached because every request of a key needs it."""
    k_date = hmac.new(secret_key.encode(), date.encode(), hashlib.sha256).digest()
    k_region = hmac.new(k_date, region.encode(), hashlib.sha256).digest()
    k_service = hmac.new(k_region, service.encode(), hashlib.sha256).digest()
    return hmac.new(k_service, SCOPE_TERMINATOR.encode(), hashlib.sha256).digest()


def compute_signature(secret_key: str, x_date: str, region: str, service: str, canonical: str) -> str:
    date = x_date[:8]
    scope = f"{date}/{region}/{service}/{SCOPE_TERMINATOR}"
    string_to_sign = "\n".join((ALGORITHM, x_date, scope, hashlib.sha256(canonical.encode()).hexdigest()))
    key = signing_key(secret_key, date, region, service)
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def format_x_date(epoch_seconds: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(epoch_seconds))


# Every request signed within the same second carries the same X-Date; strptime is the
# slowest step of verification, so parsed values are kept (bad ones raise and are not kept).
@lru_cache(maxsize=256)
def parse_x_date(x_date: str) -> int:
    """``YYYYMMDDTHHMMSSZ`` to epoch seconds; MissingRequestInfo when it is not that shape."""
    if len(x_date) != 16 or x_date[8] != "T" or x_date[15] != "Z":
        raise MissingRequestInfo("X-Date")
    digits = x_date[:8] + x_date[9:15]
    if not digits.isascii() or not digits.isdigit():
        raise MissingRequestInfo("X-Date")
    try:
        parts = time.strptime(x_date, "%Y%m%dT%H%M%SZ")
    except ValueError:
        raise MissingRequestInfo("X-Date") from None
    return calendar.timegm(parts)


# --- Client side ---------------------------------------------------------------------------


def sign_request(
    *,
    method: str,
    host: str,
    path: str,
    query_pairs: Sequence[tuple[str, str]],
    body: bytes,
    content_type: str,
    access_key: str,
    secret_key: str,
    region: str,
    service: str,
    now: float | None = None,
    session_token: str | None = None,
) -> dict[str, str]:
    """Return the headers that sign this request, the way the official Python SDK builds them."""
    x_date = format_x_date(time.time() if now is None else now)
    body_sha256 = hashlib.sha256(body).hexdigest()
    headers = {
        "content-type": content_type,
        "host": host,
        "x-content-sha256": body_sha256,
        "x-date": x_date,
    }
    if session_token:
        headers["x-security-token"] = session_token
    signed = sorted(headers)
    canonical = canonical_request(method, path, query_pairs, headers, signed, body_sha256)
    signature = compute_signature(secret_key, x_date, region, service, canonical)
    scope = f"{x_date[:8]}/{region}/{service}/{SCOPE_TERMINATOR}"
    authorization = (
        f"{ALGORITHM} Credential={access_key}/{scope}, "
        f"SignedHeaders={';'.join(signed)}, Signature={signature}"
    )
    return {
        "Content-Type": content_type,
        "Host": host,
        "X-Content-Sha256": body_sha256,
        "X-Date": x_date,
        "Authorization": authorization,
        **({"X-Security-Token": session_token} if session_token else {}),
    }


# --- Server side ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Authorization:
    access_key: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str


# The form every official SDK sends. A header of exactly this form parses to the same fields
# as through the general reading below, in one C-level match instead of a dozen string calls.
_SDK_AUTHORIZATION = re.compile(
    ALGORITHM
    + r" Credential=([^/,\s=]+)/([^/,\s=]+)/([^/,\s=]+)/([^/,\s=]+)/"
    + SCOPE_TERMINATOR
    + r", SignedHeaders=([^,\s=]+), Signature=([^,\s=]+)"
).fullmatch


def parse_authorization(header: str | None) -> Authorization:
    if header is not None:
        sdk_form = _SDK_AUTHORIZATION(header)
        if sdk_form is not None:
            access_key, date, region, service, signed, signature = sdk_form.groups()
            signed_headers = tuple(signed.lower().split(";"))
            if "x-date" in signed_headers:
                return Authorization(access_key, date, region, service, signed_headers, signature.lower())
    return read_authorization(header)


def read_authorization(header: str | None) -> Authorization:
    """The general reading of an Authorization header (any spacing, any order of its fields)."""
    if header is None or not header.strip():
        raise MissingAuthenticationToken()
    algorithm, _, rest = header.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise InvalidAuthorization()
    fields: dict[str, str] = {}
    for item in rest.split(","):
        name, sep, value = item.strip().partition("=")
        if sep:
            fields[name] = value.strip()
    if "Signature" not in fields or not fields["Signature"]:
        raise MissingSignature()
    credential = fields.get("Credential", "").split("/")
    signed = fields.get("SignedHeaders", "")
    if len(credential) != 5 or credential[4] != SCOPE_TERMINATOR or not all(credential) or not signed:
        raise InvalidAuthorization()
    signed_headers = tuple(signed.lower().split(";"))
    if "x-date" not in signed_headers:
        raise InvalidAuthorization("SignedHeaders must include x-date.")
    return Authorization(
        access_key=credential[0],
        date=credential[1],
        region=credential[2],
        service=credential[3],
        signed_headers=signed_headers,
        signature=fields["Signature"].lower(),
    )


def check_timestamp(auth: Authorization, x_date: str | None, now: float) -> None:
    if not x_date:
        raise MissingRequestInfo("X-Date")
    signed_at = parse_x_date(x_date)
    if abs(now - signed_at) > MAX_CLOCK_SKEW_SECONDS or auth.date != x_date[:8]:
        raise InvalidTimestamp()


def verify_signature(
    auth: Authorization,
    secret_key: str,
    *,
    method: str,
    path: str,
    query_pairs: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    body: bytes,
    now: float | None = None,
    service: str | None = None,
) -> None:
    """Raise unless the request carries a valid, fresh signature made with ``secret_key``.

    ``headers`` is keyed by lowercase names. ``service``, when given, must equal the scope's.
    """
    x_date = headers.get("x-date")
    check_timestamp(auth, x_date, time.time() if now is None else now)
    assert x_date is not None
    if service is not None and auth.service != service:
        raise SignatureNotMatch(f"The credential scope's service must be {service}.")
    for name in auth.signed_headers:
        if name not in headers:
            raise InvalidAuthorization(f"The signed header {name} is missing from the request.")
    body_sha256 = hashlib.sha256(body).hexdigest() if body else EMPTY_BODY_SHA256
    canonical = canonical_request(method, path, query_pairs, headers, auth.signed_headers, body_sha256)
    expected = compute_signature(secret_key, x_date, auth.region, auth.service, canonical)
    if not hmac.compare_digest(expected, auth.signature):
        raise SignatureNotMatch()
