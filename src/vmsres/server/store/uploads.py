"""Upload URLs handed out, and the secrets all server processes share."""

from __future__ import annotations

import contextlib

import sqlalchemy as sa

from vmsres.server.store.database import Database, DatabaseUnavailable, Executor, Row, UniqueViolation
from vmsres.server.store.schema import accounts, server_secrets, uploads

STATE_ISSUED = "issued"
STATE_UPLOADED = "uploaded"

_insert = uploads.insert().values(
    {
        c: sa.bindparam(c)
        for c in ("nonce", "account_id", "file_name", "state", "staging_key", "created_at", "expires_at")
    }
)
_by_nonce = sa.select(uploads).where(uploads.c.nonce == sa.bindparam("nonce"))
# Only the first PUT to a URL moves it from issued to uploaded; the rowcount tells which PUT won.
_claim = (
    uploads.update()
    .where(uploads.c.nonce == sa.bindparam("nonce"), uploads.c.state == STATE_ISSUED)
    .values(state="receiving")
)
_finish = (
    uploads.update()
    .where(uploads.c.nonce == sa.bindparam("nonce"))
    .values(state=sa.bindparam("state"), size_bytes=sa.bindparam("size_bytes"))
)
# The newest URL of a FileName whose bytes may be waiting (uploaded; or issued, for S3 where the
# PUT goes straight to the bucket and vmsres never sees it).
_latest_candidate = (
    sa.select(uploads)
    .where(
        uploads.c.account_id == sa.bindparam("account_id"),
        uploads.c.file_name == sa.bindparam("file_name"),
        # Not IN (...): an expanding bind cannot be precompiled.
        sa.or_(uploads.c.state == STATE_ISSUED, uploads.c.state == STATE_UPLOADED),
    )
    .order_by(uploads.c.created_at.desc(), uploads.c.nonce)
)
# RETURNING: exactly the rows this statement removed, so only their staging blobs are deleted
# (an upload URL issued meanwhile keeps its row or loses it together with its key).
_delete_of_file_name = (
    uploads.delete()
    .where(
        uploads.c.account_id == sa.bindparam("account_id"), uploads.c.file_name == sa.bindparam("file_name")
    )
    .returning(uploads.c.staging_key)
)
_delete_of_account = uploads.delete().where(uploads.c.account_id == sa.bindparam("account_id"))
# Issuing a URL holds the account row shared, committing a FileName holds it exclusively: an issue
# either finished before the commit (whose delete above then takes its row) or sees the resource.
_hold_account_shared = (
    sa.select(accounts.c.id).where(accounts.c.id == sa.bindparam("id")).with_for_update(read=True)
)
# FOR NO KEY UPDATE: conflicts with the issue's FOR SHARE, not with the key-share locks that
# concurrent inserts of the account's other resources take.
_hold_account = (
    sa.select(accounts.c.id).where(accounts.c.id == sa.bindparam("id")).with_for_update(key_share=True)
)
_expired = sa.select(uploads).where(uploads.c.expires_at < sa.bindparam("before"))
_delete = uploads.delete().where(uploads.c.nonce == sa.bindparam("nonce"))
_staging_keys = sa.select(uploads.c.staging_key)

_secret = sa.select(server_secrets.c.value).where(server_secrets.c.name == sa.bindparam("name"))
_insert_secret = server_secrets.insert().values(name=sa.bindparam("name"), value=sa.bindparam("value"))


class UploadStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def hold_account(self, account_id: int, executor: Executor, exclusive: bool) -> None:
        """Hold the account row until the transaction ends (PostgreSQL; SQLite writers run alone)."""
        await executor.fetch_value(_hold_account if exclusive else _hold_account_shared, {"id": account_id})

    async def issue(
        self,
        nonce: str,
        account_id: int,
        file_name: str,
        staging_key: str,
        now: int,
        expires_at: int,
        executor: Executor | None = None,
    ) -> None:
        await (executor or self.db).execute(
            _insert,
            {
                "nonce": nonce,
                "account_id": account_id,
                "file_name": file_name,
                "state": STATE_ISSUED,
                "staging_key": staging_key,
                "created_at": now,
                "expires_at": expires_at,
            },
        )

    async def get(self, nonce: str) -> Row | None:
        return await self.db.fetch_one(_by_nonce, {"nonce": nonce})

    async def claim(self, nonce: str) -> bool:
        return await self.db.execute(_claim, {"nonce": nonce}) > 0

    async def finish(self, nonce: str, state: str, size_bytes: int | None) -> None:
        await self.db.execute(_finish, {"nonce": nonce, "state": state, "size_bytes": size_bytes})

    async def candidates(self, account_id: int, file_name: str) -> list[Row]:
        return await self.db.fetch_all(_latest_candidate, {"account_id": account_id, "file_name": file_name})

    async def forget_file_name(
        self, account_id: int, file_name: str, executor: Executor | None = None
    ) -> list[str]:
        """Delete the FileName's upload rows; the staging keys of the rows deleted."""
        params = {"account_id": account_id, "file_name": file_name}
        return [str(key) for key in await (executor or self.db).fetch_column(_delete_of_file_name, params)]

    async def forget_account(self, account_id: int, executor: Executor | None = None) -> None:
        """Drop every upload URL of the account; their staging blobs become garbage."""
        await (executor or self.db).execute(_delete_of_account, {"account_id": account_id})

    async def expired(self, before: int) -> list[Row]:
        return await self.db.fetch_all(_expired, {"before": before})

    async def delete(self, nonce: str) -> None:
        await self.db.execute(_delete, {"nonce": nonce})

    async def staging_keys(self) -> set[str]:
        return {row["staging_key"] for row in await self.db.fetch_all(_staging_keys)}

    async def shared_secret(self, name: str, candidate: str) -> str:
        """The deployment-wide value of ``name``; the first process to ask stores ``candidate``."""
        existing = await self.db.fetch_value(_secret, {"name": name})
        if existing is None:
            # Another process or request may win the race; its value is read back below.
            with contextlib.suppress(UniqueViolation):
                await self.db.execute(_insert_secret, {"name": name, "value": candidate})
            existing = await self.db.fetch_value(_secret, {"name": name})
        if existing is None:
            # Only if the winner's write failed after it had made this one's fail: nobody has
            # a value yet, and none may be made up here (two values would split the deployment).
            raise DatabaseUnavailable(f"the shared secret {name!r} could not be stored; try again")
        return str(existing)
