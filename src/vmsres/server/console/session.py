"""Console sessions: signed cookies, CSRF tokens and revocation on logout.

A session cookie is ``<payload>.<mac>``; the payload holds a random session id and an absolute
expiry. The signing key is derived from a deployment-wide secret kept in the database and from
the admin token, so every worker accepts the same cookies and changing the admin token logs
everybody out. Logging out records the session id in the deployment's shared state until the
cookie would have expired anyway. A session names who opened it (an operator, or the break-glass
admin of the admin token); an operator's session also carries a fingerprint of their token, so
the console ends it as soon as the operator is disabled, deleted or given a new token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from vmsres.protocol.errors import AccessDenied
from vmsres.server.service.operators import BREAK_GLASS
from vmsres.server.service.tokens import make_token, read_token
from vmsres.server.shared_state import SharedState

COOKIE = "vmsres_console"
LOGIN_COOKIE = "vmsres_console_login"
DEFAULT_SESSION_SECONDS = 8 * 60 * 60
LOGIN_FORM_SECONDS = 30 * 60
SECRET_NAME = "console_session_key"
_REVOKED = "console:revoked:"


@dataclass(frozen=True, slots=True)
class Session:
    sid: str
    expires_at: int
    csrf: str
    # Who logged in: an operator's name, or BREAK_GLASS for the admin token.
    name: str = BREAK_GLASS
    role: str = "admin"
    # The operator's token fingerprint when the session opened; "" for the admin token.
    fingerprint: str = ""

    @property
    def is_operator(self) -> bool:
        return bool(self.fingerprint)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class Sessions:
    def __init__(self, key: bytes, shared: SharedState, lifetime_seconds: int) -> None:
        self._key = key
        self._shared = shared
        self.lifetime_seconds = lifetime_seconds

    @staticmethod
    def derive_key(deployment_secret: str, admin_token_sha256: str) -> bytes:
        return hmac.new(
            deployment_secret.encode(), b"console:" + admin_token_sha256.encode(), hashlib.sha256
        ).digest()

    def _claims(self, kind: str, cookie: str | None, now: float) -> dict[str, Any] | None:
        if not cookie:
            return None
        try:
            return read_token(self._key, kind, cookie, now)
        except AccessDenied:
            return None

    def _csrf(self, purpose: str, value: str) -> str:
        return hmac.new(self._key, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()

    def issue(
        self, now: float, name: str = BREAK_GLASS, role: str = "admin", fingerprint: str = ""
    ) -> tuple[str, Session]:
        sid = secrets.token_urlsafe(24)
        expires_at = int(now) + self.lifetime_seconds
        claims = {"s": sid, "o": name, "r": role, "f": fingerprint}
        cookie = make_token(self._key, "console", claims, expires_at)
        return cookie, Session(sid, expires_at, self._csrf("session", sid), name, role, fingerprint)

    async def read(self, cookie: str | None, now: float) -> Session | None:
        """The session of a valid, unexpired, not logged-out cookie; None otherwise."""
        claims = self._claims("console", cookie, now)
        if claims is None:
            return None
        sid = str(claims.get("s", ""))
        if not sid or await self._shared.get(_REVOKED + sid) is not None:
            return None
        return Session(
            sid,
            int(claims["e"]),
            self._csrf("session", sid),
            str(claims.get("o", BREAK_GLASS)),
            str(claims.get("r", "admin")),
            str(claims.get("f", "")),
        )

    async def revoke(self, session: Session, now: float) -> None:
        ttl = max(1.0, session.expires_at - now + 60)
        await self._shared.set(_REVOKED + session.sid, b"1", ttl=ttl)

    # Login happens before there is a session, so its form is tied to a short-lived random
    # cookie instead (double submit): a cross-site page can neither read it nor set it.
    def login_form(self, now: float) -> tuple[str, str]:
        nonce = secrets.token_urlsafe(16)
        cookie = make_token(self._key, "console-login", {"n": nonce}, int(now) + LOGIN_FORM_SECONDS)
        return cookie, self._csrf("login", nonce)

    def check_login_form(self, cookie: str | None, token: str, now: float) -> bool:
        claims = self._claims("console-login", cookie, now)
        if claims is None:
            return False
        return hmac.compare_digest(self._csrf("login", str(claims.get("n", ""))), token)


def csrf_matches(session: Session, token: str) -> bool:
    return hmac.compare_digest(session.csrf.encode(), token.encode())
