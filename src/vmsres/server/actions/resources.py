"""Actions that read and change the resource library without moving audio bytes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from vmsres.server.actions import RESULTS, ActionContext, action, answered_from
from vmsres.server.service.records import resource_record


@action("QueryOpenGetResource")
async def query_open_get_resource(ctx: ActionContext, p: dict[str, Any]) -> Any:
    key = ("page", ctx.principal.account_id, p["Type"], p["State"], p["Keyword"], p["Limit"], p["Offset"])

    async def answer() -> dict[str, Any]:
        rows, total = await ctx.services.resources.query(
            ctx.principal,
            p["Type"],
            p["State"],
            p["Keyword"],
            p["Limit"],
            p["Offset"],
            None if ctx.listing_version is None else ctx.listing_version[0],
        )
        return RESULTS["QueryOpenGetResource"].build(
            Records=[resource_record(r) for r in rows], Total=total, Limit=p["Limit"], Offset=p["Offset"]
        )

    return await _kept(ctx, key, answer, lambda result: result["Records"])


@action("QueryUsableResource")
async def query_usable_resource(ctx: ActionContext, p: dict[str, Any]) -> Any:
    key = ("usable", ctx.principal.account_id, p["Type"])

    async def answer() -> Any:
        return RESULTS["QueryUsableResource"].of_records(await _usable(ctx, p))

    return await _kept(ctx, key, answer, list)


@action("QueryUsableResourceV2")
async def query_usable_resource_v2(ctx: ActionContext, p: dict[str, Any]) -> Any:
    key = ("usable-v2", ctx.principal.account_id, p["Type"])

    async def answer() -> Any:
        return RESULTS["QueryUsableResourceV2"].of_records(await _usable(ctx, p))

    return await _kept(ctx, key, answer, lambda result: result["Records"])


async def _usable(ctx: ActionContext, p: dict[str, Any]) -> list[dict[str, Any]]:
    return [resource_record(r) for r in await ctx.services.resources.usable(ctx.principal, p["Type"])]


async def _kept(
    ctx: ActionContext,
    key: tuple[Any, ...],
    answer: Callable[[], Awaitable[Any]],
    records_of: Callable[[Any], list[dict[str, Any]]],
) -> Any:
    """The answer from the worker's cache while the account is unchanged (service/answers.py),
    else computed, and kept unless it shows a resource in use (a lease can run out unwritten)."""
    cache = ctx.services.answers
    if not cache.enabled:
        return await answer()
    # Read before answering (with the key's check, or now): a write landing in between leaves
    # the answer under the old version.
    version = ctx.listing_version
    if version is None:
        version = await ctx.services.resources.listing_version(ctx.principal)
    kept = cache.get(key, version)
    if kept is not None:
        return orjson.Fragment(kept)
    result = await answer()
    if not any(record["InUse"] for record in records_of(result)):
        # Serialized once: the bytes kept are the bytes answered now.
        dumped = orjson.dumps(result)
        cache.put(key, version, dumped)
        return orjson.Fragment(dumped)
    return result


@action("OpenCreateTts")
async def open_create_tts(ctx: ActionContext, p: dict[str, Any]) -> dict[str, Any]:
    answer = answered_from(
        ctx, lambda row: RESULTS["OpenCreateTts"].build(ResourceKey=row["resource_key"], Name=row["name"])
    )
    created = await ctx.services.resources.create_tts(
        ctx.principal, p["Name"], p["TtsTemplateContent"], p["TtsOption"], p["Remark"], ctx.audit
    )
    return answer(created)


@action("OpenUpdateResource")
async def open_update_resource(ctx: ActionContext, p: dict[str, Any]) -> dict[str, Any]:
    result = RESULTS["OpenUpdateResource"].build(ResourceKey=p["ResourceKey"], Name=p["Name"])
    answered_from(ctx, lambda _: result)
    await ctx.services.resources.rename(ctx.principal, p["ResourceKey"], p["Name"], ctx.audit)
    return result


@action("OpenDeleteResource")
async def open_delete_resource(ctx: ActionContext, p: dict[str, Any]) -> dict[str, Any]:
    result = RESULTS["OpenDeleteResource"].build(ResourceKey=p["ResourceKey"])
    answered_from(ctx, lambda _: result)
    await ctx.services.resources.delete(ctx.principal, p["ResourceKey"], ctx.audit)
    return result
