"""Operators: named people with a role ("reviewer" or "admin") and a personal token.

The token is shown once, when made or rotated; the store keeps its sha256 only. A presented token
finds its operator by that digest (one unique-index lookup), and the digest found is compared
again in constant time. Console sessions carry a fingerprint (a generation that grows when the operator
is disabled or given a new token, and a piece of the digest), so rotating, disabling or deleting
an operator ends their sessions at the next request, and enabling them again revives none.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from vmsres.server.service.accounts import AccountError, ConflictError, NotFoundError
from vmsres.server.store.database import Executor, Row, UniqueViolation
from vmsres.server.store.operators import OperatorStore

Role = Literal["reviewer", "admin"]
ROLES: tuple[Role, ...] = ("reviewer", "admin")
# A role's rank: an operation needing rank r is open to every role of rank >= r.
RANK: dict[str, int] = {"reviewer": 1, "admin": 2}
TOKEN_PREFIX = "vmsop_"
# The weakest admin or operator token accepted: long, and not one character repeated.
MIN_TOKEN_CHARS = 24
MIN_TOKEN_DISTINCT = 8
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
# The name the admin token's console sessions and decisions go by (the break-glass admin); no
# operator may take it, in any case, or their decisions would read as the admin token's.
BREAK_GLASS = "admin"
FIXTURE_REVIEWER = "fixture"


class OperatorError(AccountError):
    """An operator request that cannot be done (a bad name or role)."""


def token_digest(token: str) -> str:
    """What is kept of a token (a high-entropy token needs no slow hash)."""
    return hashlib.sha256(token.encode()).hexdigest()


def token_weakness(token: str) -> str | None:
    """Why a token is too weak to guard the admin API and the console; None when it is not."""
    if len(token) < MIN_TOKEN_CHARS:
        return f"a token needs at least {MIN_TOKEN_CHARS} characters (this one has {len(token)})"
    if len(set(token)) < MIN_TOKEN_DISTINCT:
        return f"a token needs at least {MIN_TOKEN_DISTINCT} different characters"
    return None


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def fingerprint(row: Row) -> str:
    """What a console session remembers of the operator it was opened for: the generation
    (which grows when they are disabled or given a new token) and a piece of the token digest."""
    return f"{row['generation']}:{str(row['token_sha256'])[:16]}"


@dataclass(frozen=True, slots=True)
class Operator:
    name: str
    role: Role
    fingerprint: str

    def may(self, role: str) -> bool:
        return RANK[self.role] >= RANK[role]


def _operator(row: Row) -> Operator:
    role: Role = "admin" if row["role"] == "admin" else "reviewer"
    return Operator(str(row["name"]), role, fingerprint(row))


def operator_view(row: Row) -> dict[str, object]:
    return {
        "Name": row["name"],
        "Role": row["role"],
        "Enabled": bool(row["enabled"]),
        "CreatedAt": row["created_at"],
        "UpdatedAt": row["updated_at"],
    }


class OperatorService:
    def __init__(self, store: OperatorStore, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    def _now(self) -> int:
        return int(self.clock())

    async def create(self, name: str, role: str, tx: Executor | None = None) -> tuple[Row, str]:
        """The new operator and their token (shown once)."""
        if not _NAME.fullmatch(name):
            raise OperatorError(
                "an operator name is 1-64 letters, digits and . _ @ - (starting with a letter or digit)"
            )
        if name.lower() == BREAK_GLASS:
            raise OperatorError(f"{name} is the name of the admin token's sessions; pick another")
        if name.lower() == FIXTURE_REVIEWER:
            # A decision's ReviewedBy is the operator's name: this one would read as a fixture's.
            raise OperatorError(f"{name} is what ReviewedBy says of fixtures; pick another")
        if role not in ROLES:
            raise OperatorError(f"a role is one of {', '.join(ROLES)}")
        token = new_token()
        try:
            row = await self.store.create(name, role, token_digest(token), self._now(), tx)
        except UniqueViolation:
            raise ConflictError(f"operator {name} exists already") from None
        return row, token

    async def list(self) -> list[Row]:
        return await self.store.all()

    async def get(self, name: str, tx: Executor | None = None) -> Row:
        row = await self.store.by_name(name, tx)
        if row is None:
            raise NotFoundError(f"no operator {name}")
        return row

    async def set_enabled(self, name: str, enabled: bool, tx: Executor | None = None) -> Row:
        if not await self.store.set_enabled(name, enabled, self._now(), tx):
            raise NotFoundError(f"no operator {name}")
        return await self.get(name, tx)

    async def rotate(self, name: str, tx: Executor | None = None) -> tuple[Row, str]:
        token = new_token()
        if not await self.store.set_token(name, token_digest(token), self._now(), tx):
            raise NotFoundError(f"no operator {name}")
        return await self.get(name, tx), token

    async def delete(self, name: str, tx: Executor | None = None) -> None:
        if not await self.store.delete(name, tx):
            raise NotFoundError(f"no operator {name}")

    async def authenticate(self, token: str) -> Operator | None:
        """The enabled operator whose token this is; None for any other token."""
        if not token.startswith(TOKEN_PREFIX):
            return None
        digest = token_digest(token)
        row = await self.store.by_token(digest)
        if row is None or not row["enabled"] or not hmac.compare_digest(str(row["token_sha256"]), digest):
            return None
        return _operator(row)

    async def current(self, name: str, session_fingerprint: str) -> Operator | None:
        """The operator a console session was opened for, while it still stands: enabled, and
        with the token the session was opened with."""
        row = await self.store.by_name(name)
        if row is None or not row["enabled"]:
            return None
        operator = _operator(row)
        if not hmac.compare_digest(operator.fingerprint, session_fingerprint):
            return None
        return operator
