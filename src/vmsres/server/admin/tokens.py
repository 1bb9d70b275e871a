"""The admin token: what the server keeps of it and how a presented token is checked.

Shared by the admin API, the console login and the CLI; nothing here needs FastAPI.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.requests import HTTPConnection

ADMIN_TOKEN_ENV = "VMSRES_ADMIN_TOKEN"


def admin_token_digest(token: str) -> str:
    """What a server keeps of its admin token (a high-entropy token needs no slow hash)."""
    return hashlib.sha256(token.encode()).hexdigest()


def admin_token_matches(token: str, token_sha256: bytes) -> bool:
    return hmac.compare_digest(admin_token_digest(token).encode(), token_sha256)


def client_address(request: HTTPConnection) -> str:
    """Who presents a token, as login throttling and the audit name them: after uvicorn's
    proxy-header handling, the forwarded client for a trusted proxy (serve
    --forwarded-allow-ips), else the peer."""
    return request.client.host if request.client else "unknown"
