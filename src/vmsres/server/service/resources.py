"""The resource library's rules: listing, TTS templates, renaming, deleting, reviewing."""

from __future__ import annotations

import contextlib
import math
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from vmsres.protocol.errors import OperationDenied, QuotaExceeded, ResourceKeyIsNotExist
from vmsres.protocol.records import ResourceState, ResourceType, wire_values
from vmsres.server.audio import TELEPHONY_BYTES_PER_MS, TELEPHONY_HEADER_BYTES, telephony_rendition_bytes
from vmsres.server.blobs import BlobStore, delete_quietly
from vmsres.server.service.accounts import NotFoundError, Principal
from vmsres.server.service.events import AuditContext, EventService, resource_payload
from vmsres.server.service.limits import Quota, effective
from vmsres.server.service.review import (
    Decision,
    MeasuredLevels,
    ReviewRules,
    decide_audio,
    decide_tts,
)
from vmsres.server.service.tts import template_variables
from vmsres.server.settings import ReviewPolicy
from vmsres.server.store.database import Executor, Row
from vmsres.server.store.hardening import HardeningStore
from vmsres.server.store.holds import HoldStore
from vmsres.server.store.resources import ListFilter, QueueFilter, ResourceStore


class ReviewError(Exception):
    """A review request that cannot be done (unknown key, missing reason)."""


class AlreadyDecided(ReviewError):
    """A decision on a resource that is no longer under review; ``row`` is the decision that stands."""

    def __init__(self, row: Row) -> None:
        self.row = row
        # A time people read: ISO 8601 in UTC, as the CLI's tables show times.
        when = row["reviewed_at"]
        at = "" if when is None else f" at {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(when))}"
        super().__init__(f"already decided: State {row['state']} by {row['reviewed_by'] or 'nobody'}{at}")


def forced_detail(before: Row) -> str:
    """The audit Detail of a forced decision: what it was forced over."""
    if before["state"] == ResourceState.REVIEWING:
        return "forced; it was under review"
    return (
        f"forced over State {before['state']}"
        f" (decided by {before['reviewed_by'] or 'nobody'} at {before['reviewed_at']})"
    )


class _Given(contextlib.AbstractAsyncContextManager[Executor]):
    """A transaction the caller opened and will commit: entering and leaving it do nothing."""

    __slots__ = ("tx",)

    def __init__(self, tx: Executor) -> None:
        self.tx = tx

    async def __aenter__(self) -> Executor:
        return self.tx

    async def __aexit__(self, *exc: object) -> None:
        return None


def new_resource_key() -> str:
    return uuid.uuid4().hex


def stored_bytes(values: Row) -> int:
    """What a resource counts against StorageBytes: its original and its telephony rendition."""
    size = int(values.get("size_bytes") or 0)
    if values.get("rendition_key"):
        size += telephony_rendition_bytes(int(values.get("duration_ms") or 0))
    return size


class ResourceService:
    def __init__(
        self,
        store: ResourceStore,
        blobs: BlobStore,
        default_policy: ReviewPolicy = "auto",
        clock: Callable[[], float] = time.time,
        rules: ReviewRules | None = None,
        events: EventService | None = None,
        hardening: HardeningStore | None = None,
        max_resources: int | None = None,
        max_storage_bytes: int | None = None,
        holds: HoldStore | None = None,
    ) -> None:
        self.store = store
        self.blobs = blobs
        self.default_policy = default_policy
        self.clock = clock
        self.rules = rules or ReviewRules()
        self.events = events
        self.hardening = hardening or HardeningStore(store.db)
        self.max_resources = max_resources
        self.max_storage_bytes = max_storage_bytes
        self.holds = holds or HoldStore(store.db)

    def quota(self, principal: Principal) -> Quota:
        return Quota(
            effective(principal.max_resources, self.max_resources),
            effective(principal.max_storage_bytes, self.max_storage_bytes),
        )

    async def check_quota(
        self, principal: Principal, add_bytes: int, executor: Executor | None = None, lock: bool = False
    ) -> None:
        """Refuse a new resource of ``add_bytes`` that would take the account past a quota."""
        quota = self.quota(principal)
        if quota.max_resources is None and quota.max_storage_bytes is None:
            return
        count, size = await self.hardening.usage(
            principal.account_id,
            executor,
            lock=lock,
            rendition_size=(TELEPHONY_HEADER_BYTES, TELEPHONY_BYTES_PER_MS),
        )
        if quota.max_resources is not None and count + 1 > quota.max_resources:
            raise QuotaExceeded("ResourceCount", f"The account may hold {quota.max_resources} resources.")
        if quota.max_storage_bytes is not None and size + add_bytes > quota.max_storage_bytes:
            raise QuotaExceeded("StorageBytes", f"The account may store {quota.max_storage_bytes} bytes.")

    async def check_not_leased(self, resource_key: str, executor: Executor | None = None) -> None:
        if await self.hardening.active_lease(resource_key, self._now(), executor) is not None:
            raise OperationDenied()

    def _now(self) -> int:
        return int(self.clock())

    def policy_for(self, principal: Principal) -> ReviewPolicy:
        return principal.review_policy or self.default_policy

    async def query(
        self,
        principal: Principal,
        type_: int,
        state: int | None,
        keyword: str,
        limit: int,
        offset: int,
        generation: int | None = None,
    ) -> tuple[list[Row], int]:
        """``generation``: the account's resources generation as read with the key's check, if it
        was (it was read before this query, so it may tag what the query reads)."""
        where = ListFilter(principal.account_id, type_, state, keyword)
        return await self.store.page(where, limit, offset, self._now(), generation)

    async def search(
        self, account_id: int, type_: int, state: int | None, keyword: str, limit: int, offset: int
    ) -> tuple[list[Row], int]:
        """One account's page in QueryOpenGetResource's filter and order (newest first)."""
        where = ListFilter(account_id, type_, state, keyword)
        return await self.store.page(where, limit, offset, self._now())

    async def listing_version(self, principal: Principal) -> tuple[int, int]:
        """Changes with every write to the account's resources or leases (service/answers.py)."""
        return await self.store.generations(principal.account_id)

    async def owned(self, principal: Principal, resource_key: str) -> Row | None:
        """The caller's own resource, or None (another account's resource is not there for it)."""
        return await self.store.get(principal.account_id, resource_key)

    async def usable(self, principal: Principal, type_: int) -> list[Row]:
        return await self.store.usable(principal.account_id, type_, self._now())

    # --- operator views (admin API, CLI, console): any account's resources -------------------

    async def find(self, resource_key: str) -> Row | None:
        """The resource with its account's name, whichever account holds it."""
        return await self.store.admin_get(resource_key)

    async def exists(self, resource_key: str, tx: Executor | None = None) -> bool:
        return await self.store.get_any_account(resource_key, tx) is not None

    async def list_any(
        self, account: str | None, type_: int | None, state: int | None, limit: int
    ) -> list[Row]:
        return await self.store.admin_list(account, type_, state, limit)

    async def queue(
        self, where: QueueFilter, order: str, offset: int, limit: int
    ) -> tuple[list[Row], int, list[Row]]:
        """A page of the resources under review, their exact total, and the whole queue's counts
        per account and Type (account_name, type, n)."""
        rows = await self.store.queue_page(where, order, offset, limit)
        return rows, await self.store.queue_total(where), await self.store.queue_counts()

    async def set_limits(self, account_id: int, limits: dict[str, Any], tx: Executor | None = None) -> None:
        if not await self.hardening.set_limits(account_id, limits, tx):
            raise NotFoundError(f"no account {account_id}")

    async def release(self, resource_key: str, tx: Executor | None = None) -> bool:
        return await self.hardening.release(resource_key, tx)

    def _within(self, tx: Executor | None) -> contextlib.AbstractAsyncContextManager[Executor]:
        """The caller's transaction when it passes one (the caller commits it and wakes the
        webhook dispatcher), else a transaction of its own."""
        # Not a generator-based context manager around the transaction: that one layer more
        # cost every create a few microseconds of generator and frame work (issue 16).
        return self.store.db.transaction() if tx is None else _Given(tx)

    async def active_leases(self, account: str | None, limit: int) -> list[Row]:
        return await self.hardening.active_leases(account, self._now(), limit)

    async def create_tts(
        self,
        principal: Principal,
        name: str,
        content: str,
        options: str | None,
        remark: str,
        audit: AuditContext | None = None,
    ) -> dict[str, Any]:
        template_variables(content)
        await self.check_quota(principal, 0)
        decision = decide_tts(self.policy_for(principal), self.rules, name, content)
        now = self._now()
        values: dict[str, Any] = {
            "resource_key": new_resource_key(),
            "account_id": principal.account_id,
            "type": ResourceType.TTS,
            "state": decision.state,
            "name": name,
            "remark": remark,
            "tts_content": content,
            "tts_options": options,
            "reject_reason": decision.reason,
            "reviewed_by": decision.reviewed_by,
            "reviewed_at": now if decision.reviewed_by else None,
            "created_at": now,
        }
        await self.insert_and_announce(principal.account_id, principal.account_name, values, principal, audit)
        return values

    def audio_decision(
        self,
        principal: Principal,
        name: str,
        duration_seconds: float,
        silent: bool,
        levels: MeasuredLevels | None = None,
    ) -> Decision:
        """For the audio ingestion code: the rules applied to what it measured."""
        policy = self.policy_for(principal)
        return decide_audio(policy, self.rules, duration_seconds, silent, name, levels)

    async def insert_and_announce(
        self,
        account_id: int,
        account_name: str,
        values: dict[str, Any],
        quota_of: Principal | None = None,
        audit: AuditContext | None = None,
        tx: Executor | None = None,
        unless_present: bool = False,
        also: Callable[[Executor], Awaitable[None]] | None = None,
    ) -> bool:
        """Insert a new resource, its audit row and its "created" event in one transaction.

        With ``quota_of`` the quotas are checked again inside the transaction, holding the account
        row, so concurrent creations cannot together overshoot them. With ``unless_present`` a
        ResourceKey that exists already (or is being inserted concurrently) is left as it is and
        the answer is False. ``also`` makes the caller's part of the change in the transaction, first
        (so a row lock it takes comes before the insert's own key-share lock on the account).
        """
        async with self._within(tx) as tx:
            if quota_of is not None:
                await self.check_quota(quota_of, stored_bytes(values), tx, lock=True)
            if also is not None:
                await also(tx)
            if not await self.store.insert(values, tx, unless_present):
                return False
            await self._audit(tx, audit, values["resource_key"], row=values)
            queued = await self._announce(tx, account_id, account_name, "resource.created", values)
        self._audited(audit)
        self._wake(queued)
        return True

    async def _announce(
        self, tx: Executor, account_id: int, account_name: str, event_type: str, row: Row
    ) -> bool:
        if self.events is None:
            return False
        data = resource_payload(row)
        return await self.events.emit(tx, account_id, account_name, event_type, data, row["resource_key"])

    def _wake(self, queued: bool) -> None:
        if queued and self.events is not None:
            self.events.notify()

    async def rename(
        self, principal: Principal, resource_key: str, name: str, audit: AuditContext | None = None
    ) -> None:
        # The row is held from the ownership and lease checks to the update, so a concurrent
        # delete either went first (this answers RESOURCE_KEY_IS_NOT_EXIST) or waits for this.
        # Ownership before the lease, as delete does: another account's leased resource must
        # look exactly like a missing one, not answer OperationDenied.
        async with self.store.db.transaction() as tx:
            row = await self.store.admin_get(resource_key, tx, lock="update")
            if row is None or row["account_id"] != principal.account_id:
                raise ResourceKeyIsNotExist()
            await self.check_not_leased(resource_key, tx)
            if not await self.store.rename(principal.account_id, resource_key, name, self._now(), tx):
                raise ResourceKeyIsNotExist()
            await self._audit(tx, audit, resource_key)
        self._audited(audit)

    async def delete(
        self, principal: Principal, resource_key: str, audit: AuditContext | None = None
    ) -> None:
        """The row goes first, then its audio: a crash in between leaves only unreferenced blobs.

        Of concurrent deletes of one resource exactly one gets the row back from DELETE ...
        RETURNING; only that one is acknowledged and announces "resource.deleted".
        """
        async with self.store.db.transaction() as tx:
            row = await self.store.admin_get(resource_key, tx, lock="update")
            if row is None or row["account_id"] != principal.account_id:
                raise ResourceKeyIsNotExist()
            await self.check_not_leased(resource_key, tx)
            deleted = await self.store.delete(principal.account_id, resource_key, tx)
            if deleted is None:
                raise ResourceKeyIsNotExist()
            await self._audit(tx, audit, resource_key)
            queued = await self._announce(
                tx, principal.account_id, principal.account_name, "resource.deleted", deleted
            )
        self._audited(audit)
        self._wake(queued)
        keys = [k for k in (deleted["blob_key"], deleted["rendition_key"]) if k]
        if keys and not await self.blobs_held():
            for key in keys:
                await delete_quietly(self.blobs, key)

    async def lease(
        self,
        resource_key: str,
        holder: str,
        seconds: int,
        audit: AuditContext | None = None,
        tx: Executor | None = None,
    ) -> Row:
        """Mark the resource in use for at least ``seconds`` (a new lease replaces the old one).

        The expiry is a whole second, rounded up: a lease counts while the clock's whole second
        is before it, so an expiry rounded down would end a lease up to a second early (a
        one-second lease taken at 12:00:00.9 would end at 12:00:01.0).

        The resource row is held (shared) while the lease is written, so a concurrent delete
        either removed it first (NotFoundError) or waits and then sees the lease.
        """
        taken = self.clock()
        now = int(taken)
        expires_at = math.ceil(taken) + seconds
        async with self._within(tx) as tx:
            row = await self.store.admin_get(resource_key, tx, lock="share")
            if row is None:
                raise NotFoundError(f"no resource {resource_key}")
            await self.hardening.lease(resource_key, row["account_id"], holder, now, expires_at, tx)
            await self._audit(tx, audit, resource_key)
        self._audited(audit)
        return {**row, "expires_at": expires_at}

    async def _audit(
        self,
        tx: Executor,
        audit: AuditContext | None,
        resource_key: str,
        detail: str | None = None,
        row: Row | None = None,
    ) -> None:
        """The "ok" audit row of a change and, with a ClientToken, its answer (AuditContext)."""
        if audit is None:
            return
        if self.events is not None:
            await self.events.audit(
                audit.actor, audit.action, resource_key, audit.request_id, "ok", detail, tx
            )
        await audit.changed(tx, row if row is not None else {"resource_key": resource_key})

    @staticmethod
    def _audited(audit: AuditContext | None) -> None:
        """After the commit: the change and its audit row exist, the caller writes no other."""
        if audit is not None:
            audit.written = True

    async def blobs_held(self) -> bool:
        """Whether a backup is copying blobs, so that none may be deleted now (garbage
        collection deletes them once it is done).

        Callers ask after committing the delete of the rows that referenced the blobs: a backup
        whose snapshot still shows those rows took its hold before that snapshot, hence before
        the commit, so the answer is yes; a backup that takes its hold later sees the rows gone.
        """
        return await self.holds.held(self._now())

    async def review(
        self,
        resource_key: str,
        approve: bool,
        reason: str | None,
        reviewed_by: str,
        force: bool = False,
        audit: AuditContext | None = None,
    ) -> Row:
        """An operator's decision; works across accounts (it is not reachable from the wire API).

        Compare-and-set: only a resource under review (State 0) is decided, so of two reviewers
        deciding at once exactly one wins; the other gets AlreadyDecided with the decision that
        stands. ``force`` re-decides whatever the State, and the audit row says so. The audit row
        (with ``audit``) and the "resource.reviewed" event are written in the deciding
        transaction, only when the row changed.
        """
        if not approve and not (reason and reason.strip()):
            raise ReviewError("a rejection needs a reason")
        state = ResourceState.APPROVED if approve else ResourceState.REJECTED
        reject_reason = None if approve else reason
        now = self._now()
        detail: str | None = None
        async with self.store.db.transaction() as tx:
            if force:
                before = await self.store.admin_get(resource_key, tx, lock="update")
                if before is None:
                    raise ReviewError(f"no resource {resource_key}")
                await self.store.set_state(resource_key, state, reject_reason, reviewed_by, now, tx)
                detail = forced_detail(before)
            elif not await self.store.set_state(
                resource_key, state, reject_reason, reviewed_by, now, tx, only_under_review=True
            ):
                current = await self.store.admin_get(resource_key, tx)
                if current is None:
                    raise ReviewError(f"no resource {resource_key}")
                raise AlreadyDecided(current)
            row = await self.store.admin_get(resource_key, tx)
            assert row is not None  # held by this transaction's update
            await self._audit(tx, audit, resource_key, detail)
            queued = await self._announce(
                tx, row["account_id"], row["account_name"], "resource.reviewed", row
            )
        self._audited(audit)
        self._wake(queued)
        return row

    async def set_state(
        self, resource_key: str, state: int, reason: str | None, reviewed_by: str, tx: Executor | None = None
    ) -> Row:
        """Any State, by anyone the caller names: the test controls (no compare-and-set)."""
        if state not in wire_values(ResourceState):
            raise ReviewError(f"State must be one of {', '.join(map(str, wire_values(ResourceState)))}")
        if state == ResourceState.REJECTED and not (reason and reason.strip()):
            raise ReviewError("a rejection needs a reason")
        async with self._within(tx) as tx:
            changed = await self.store.set_state(
                resource_key,
                state,
                reason if state == ResourceState.REJECTED else None,
                reviewed_by,
                self._now(),
                tx,
            )
            row = await self.store.admin_get(resource_key, tx) if changed else None
            if row is None:
                raise NotFoundError(f"no resource {resource_key}")
            queued = await self._announce(
                tx, row["account_id"], row["account_name"], "resource.reviewed", row
            )
        self._wake(queued)
        return row

    async def reset_account(
        self, account_id: int, account_name: str, tx: Executor | None = None
    ) -> list[str]:
        """Test control: the account's library becomes empty (resources, their leases, its
        ClientToken answers); one "account.reset" event says so.

        The audio of the deleted resources is left to garbage collection (unreferenced blobs).
        """
        async with self._within(tx) as tx:
            keys = await self.store.delete_all(account_id, tx)
            await self.hardening.forget_account_library(account_id, tx)
            queued = False
            if self.events is not None:
                queued = await self.events.emit(
                    tx, account_id, account_name, "account.reset", {"DeletedResourceKeys": keys}
                )
        self._wake(queued)
        return keys
