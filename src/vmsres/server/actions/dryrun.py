"""DryRun=true: per action, the checks the real call would make before changing anything.

Signature, key, rate and parameters are already checked by the wire layer when these run; each
check here raises the error the real call would raise, and the wire layer answers
DryRunOperation when none does. Review rules are not errors (they decide State), so no check.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from vmsres.protocol.errors import ResourceKeyIsNotExist
from vmsres.protocol.spec import ACTIONS
from vmsres.server.actions import ActionContext
from vmsres.server.service.tts import template_variables

Check = Callable[[ActionContext, dict[str, Any]], Awaitable[None]]


async def _nothing(ctx: ActionContext, p: dict[str, Any]) -> None:
    return None


async def _exists(ctx: ActionContext, p: dict[str, Any]) -> None:
    if await ctx.services.resources.owned(ctx.principal, p["ResourceKey"]) is None:
        raise ResourceKeyIsNotExist()


async def _exists_not_leased(ctx: ActionContext, p: dict[str, Any]) -> None:
    await _exists(ctx, p)
    await ctx.services.resources.check_not_leased(p["ResourceKey"])


async def _create_tts(ctx: ActionContext, p: dict[str, Any]) -> None:
    template_variables(p["TtsTemplateContent"])
    await ctx.services.resources.check_quota(ctx.principal, 0)


async def _upload_url(ctx: ActionContext, p: dict[str, Any]) -> None:
    await ctx.services.ingest.check_upload_url(ctx.principal, p["FileName"])


async def _commit(ctx: ActionContext, p: dict[str, Any]) -> None:
    await ctx.services.ingest.check_commit(ctx.principal, p["FileName"])


async def _fetch(ctx: ActionContext, p: dict[str, Any]) -> None:
    await ctx.services.ingest.check_fetch(ctx.principal, p["Url"], p["Name"])


DRY_RUN_CHECKS: dict[str, Check] = {
    "QueryOpenGetResource": _nothing,
    "QueryUsableResource": _nothing,
    "QueryUsableResourceV2": _nothing,
    "OpenCreateTts": _create_tts,
    "OpenUpdateResource": _exists_not_leased,
    "OpenDeleteResource": _exists_not_leased,
    "GetResourceUploadUrl": _upload_url,
    "CommitResourceUpload": _commit,
    "FetchResource": _fetch,
    "GetResourceDownloadUrl": _exists,
}

# Every action takes DryRun (spec._with_common): one without a check would answer InternalError,
# so a missing entry fails at import instead.
if DRY_RUN_CHECKS.keys() != ACTIONS.keys():
    raise RuntimeError(f"dry-run checks do not match the actions: {DRY_RUN_CHECKS.keys() ^ ACTIONS.keys()}")
