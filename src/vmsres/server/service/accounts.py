"""Accounts, access keys and authentication of a request's key."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from vmsres.protocol.errors import AccessDenied, InvalidAccessKeyId
from vmsres.server.masterkey import Keyring, access_key_context
from vmsres.server.service.review import parse_policy
from vmsres.server.settings import ReviewPolicy
from vmsres.server.store.accounts import AccountStore
from vmsres.server.store.database import Executor, Row

ACCOUNT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
BOOTSTRAP_ACCOUNT = "default"


class AccountError(Exception):
    """A management request that cannot be done (unknown account, duplicate name, ...)."""


class NotFoundError(AccountError):
    """The named account, key or resource does not exist."""


class ConflictError(AccountError):
    """The name or key is taken already."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a verified request acts for."""

    account_id: int
    account_name: str
    access_key: str
    review_policy: ReviewPolicy | None
    # Per-account overrides of the serve defaults (docs/security.md); None: the default applies.
    rate_per_key: str | None = None
    rate_per_account: str | None = None
    max_resources: int | None = None
    max_storage_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class KeyForVerification:
    principal: Principal
    secret_key: str
    # The account's (resources, leases) generations, read with the key's own check when the key
    # was verified before (service/answers.py); None when they were not read.
    listing_version: tuple[int, int] | None = None


def new_access_key() -> str:
    return "AKLT" + secrets.token_urlsafe(33).replace("-", "A").replace("_", "B")


def new_secret_key() -> str:
    return secrets.token_urlsafe(30)


# Verified keys kept per process; past this many keys the cache starts over.
KEY_CACHE_SIZE = 100_000


class AccountService:
    def __init__(self, store: AccountStore, keyring: Keyring, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.keyring = keyring
        self.clock = clock
        # access key -> its principal and plaintext secret, valid while credential_generation
        # (changed by triggers with every write to accounts or access_keys, in the writing
        # transaction) is unchanged: a disabled, deleted or rotated key, or a changed account
        # limit, takes effect at once in every worker, and a request costs one tiny lookup
        # instead of a join and an AES decryption.
        self._verified: dict[str, KeyForVerification] = {}
        self._verified_generation: int | None = None

    def _seal(self, access_key: str, secret_key: str) -> str:
        return self.keyring.encrypt(secret_key, access_key_context(access_key))

    def _now(self) -> int:
        return int(self.clock())

    async def create_account(self, name: str, tx: Executor | None = None) -> Row:
        if not ACCOUNT_NAME.fullmatch(name):
            raise AccountError(
                "an account name is 1-64 letters, digits, '_', '.' or '-', starting alphanumeric"
            )
        # The unique name decides between concurrent creations: exactly one inserts.
        if not await self.store.create_account(name, self._now(), tx):
            raise ConflictError(f"account {name!r} already exists")
        return await self._account(name, tx)

    async def ensure_account(self, name: str, tx: Executor | None = None) -> tuple[Row, bool]:
        """The account, created unless it exists; True when this call created it."""
        row = await self.store.account_by_name(name, tx)
        if row is not None:
            return row, False
        try:
            return await self.create_account(name, tx), True
        except ConflictError:
            return await self._account(name, tx), False  # there already, or created concurrently

    async def rotate_key(self, access_key: str, tx: Executor | None = None) -> str:
        """A new SecretKey for the key, effective at once; the old secret stops working."""
        secret_key = new_secret_key()
        if not await self.store.set_secret(access_key, self._seal(access_key, secret_key), tx):
            raise NotFoundError(f"no access key {access_key}")
        return secret_key

    async def exists(self, name: str) -> bool:
        return await self.store.account_by_name(name) is not None

    async def account(self, name: str, tx: Executor | None = None) -> Row:
        return await self._account(name, tx)

    async def _account(self, name: str, tx: Executor | None = None) -> Row:
        row = await self.store.account_by_name(name, tx)
        if row is None:
            raise NotFoundError(f"no account named {name!r}")
        return row

    async def list_accounts(self) -> list[Row]:
        return await self.store.list_accounts()

    async def set_review_policy(self, name: str, policy: str | None, tx: Executor | None = None) -> None:
        parsed = None if policy is None else parse_policy(policy)
        if not await self.store.set_review_policy(name, parsed, tx):
            raise NotFoundError(f"no account named {name!r}")

    async def create_key(
        self,
        account_name: str,
        access_key: str | None = None,
        secret_key: str | None = None,
        tx: Executor | None = None,
    ) -> tuple[str, str]:
        # Accounts are never deleted, so the one read here still exists when the key goes in.
        account = await self._account(account_name, tx)
        access_key = access_key or new_access_key()
        secret_key = secret_key or new_secret_key()
        sealed = self._seal(access_key, secret_key)
        if not await self.store.create_key(account["id"], access_key, sealed, self._now(), tx):
            raise ConflictError(f"access key {access_key} already exists")
        return access_key, secret_key

    async def ensure_key(
        self, account_name: str, access_key: str, secret_key: str, tx: Executor | None = None
    ) -> bool:
        """Create the key unless it exists; True when it was created. An existing key is left as is."""
        if await self.store.lookup_key(access_key, tx) is not None:
            return False
        await self.ensure_account(account_name, tx)
        try:
            await self.create_key(account_name, access_key, secret_key, tx)
        except ConflictError:
            return False  # there already, or created concurrently
        return True

    async def list_keys(self, account_name: str | None = None) -> list[Row]:
        if account_name is not None:
            await self._account(account_name)
        return await self.store.list_keys(account_name)

    async def set_key_enabled(self, access_key: str, enabled: bool, tx: Executor | None = None) -> None:
        if not await self.store.set_key_enabled(access_key, enabled, tx):
            raise NotFoundError(f"no access key {access_key}")

    async def delete_key(self, access_key: str, tx: Executor | None = None) -> None:
        if not await self.store.delete_key(access_key, tx):
            raise NotFoundError(f"no access key {access_key}")

    async def key_for_verification(self, access_key: str) -> KeyForVerification:
        """The secret to verify a request with; raises for unknown or disabled keys and accounts."""
        cached = self._verified.get(access_key)
        if cached is not None:
            generation, listing_version = await self.store.generations(cached.principal.account_id)
            if generation == self._verified_generation:
                return KeyForVerification(cached.principal, cached.secret_key, listing_version)
        else:
            generation = await self.store.credential_generation()
        if generation != self._verified_generation:
            self._verified.clear()
            self._verified_generation = generation
        row = await self.store.lookup_key(access_key)
        if row is None or not row["enabled"]:
            raise InvalidAccessKeyId()
        if not row["account_enabled"]:
            raise AccessDenied()
        policy = row["review_policy"]
        principal = Principal(
            account_id=row["account_id"],
            account_name=row["account_name"],
            access_key=row["access_key"],
            review_policy=parse_policy(policy) if policy else None,
            rate_per_key=row["rate_per_key"],
            rate_per_account=row["rate_per_account"],
            max_resources=row["max_resources"],
            max_storage_bytes=row["max_storage_bytes"],
        )
        secret = self.keyring.decrypt(row["secret_key"], access_key_context(row["access_key"]))
        verified = KeyForVerification(principal, secret)
        # Only keys that exist are kept, so requests with made-up keys cannot fill the cache.
        if len(self._verified) >= KEY_CACHE_SIZE:
            self._verified.clear()
        self._verified[access_key] = verified
        return verified
