"""The resource library's rules: listing, TTS templates, renaming, deleting, reviewing."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from vmsres.blobs import BlobStore, delete_quietly
from vmsres.errors import ResourceKeyIsNotExist
from vmsres.service.accounts import Principal
from vmsres.service.review import (
    STATE_APPROVED,
    STATE_REJECTED,
    ReviewPolicy,
    initial_decision,
)
from vmsres.service.tts import template_variables
from vmsres.store.database import Row
from vmsres.store.resources import ListFilter, ResourceStore

TYPE_AUDIO = 0
TYPE_TTS = 1
TYPE_IVR = 2


class ReviewError(Exception):
    """A review request that cannot be done (unknown key, missing reason)."""


def new_resource_key() -> str:
    return uuid.uuid4().hex


class ResourceService:
    def __init__(
        self,
        store: ResourceStore,
        blobs: BlobStore,
        default_policy: ReviewPolicy = "auto",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.blobs = blobs
        self.default_policy = default_policy
        self.clock = clock

    def _now(self) -> int:
        return int(self.clock())

    def policy_for(self, principal: Principal) -> ReviewPolicy:
        return principal.review_policy or self.default_policy

    async def query(
        self, principal: Principal, type_: int, state: int | None, keyword: str, limit: int, offset: int
    ) -> tuple[list[Row], int]:
        where = ListFilter(principal.account_id, type_, state, keyword)
        return await self.store.page(where, limit, offset)

    async def usable(self, principal: Principal, type_: int) -> list[Row]:
        return await self.store.usable(principal.account_id, type_)

    async def create_tts(
        self, principal: Principal, name: str, content: str, options: str | None, remark: str
    ) -> dict[str, Any]:
        template_variables(content)
        decision = initial_decision(self.policy_for(principal), "tts-valid")
        now = self._now()
        values: dict[str, Any] = {
            "resource_key": new_resource_key(),
            "account_id": principal.account_id,
            "type": TYPE_TTS,
            "state": decision.state,
            "name": name,
            "remark": remark,
            "tts_content": content,
            "tts_options": options,
            "reviewed_by": decision.reviewed_by,
            "reviewed_at": now if decision.reviewed_by else None,
            "created_at": now,
        }
        await self.store.insert(values)
        return values

    async def rename(self, principal: Principal, resource_key: str, name: str) -> None:
        if not await self.store.rename(principal.account_id, resource_key, name, self._now()):
            raise ResourceKeyIsNotExist()

    async def delete(self, principal: Principal, resource_key: str) -> None:
        """The row goes first, then its audio: a crash in between leaves only unreferenced blobs."""
        deleted = await self.store.delete(principal.account_id, resource_key)
        if deleted is None:
            raise ResourceKeyIsNotExist()
        for key in (deleted["blob_key"], deleted["rendition_key"]):
            if key:
                await delete_quietly(self.blobs, key)

    async def review(self, resource_key: str, approve: bool, reason: str | None, reviewer: str) -> Row:
        """An operator's decision; works across accounts (it is not reachable from the wire API)."""
        if not approve and not (reason and reason.strip()):
            raise ReviewError("a rejection needs a reason")
        state = STATE_APPROVED if approve else STATE_REJECTED
        changed = await self.store.set_state(
            resource_key, state, None if approve else reason, f"reviewer:{reviewer}", self._now()
        )
        row = await self.store.get_any_account(resource_key) if changed else None
        if row is None:
            raise ReviewError(f"no resource {resource_key}")
        return row
