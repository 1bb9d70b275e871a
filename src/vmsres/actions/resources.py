"""Actions that read and change the resource library without moving audio bytes."""

from __future__ import annotations

from typing import Any

from vmsres.actions import ActionContext, action
from vmsres.actions.records import resource_record


@action("QueryOpenGetResource")
async def query_open_get_resource(ctx: ActionContext, p: dict[str, Any]) -> dict[str, Any]:
    rows, total = await ctx.services.resources.query(
        ctx.principal, p["Type"], p["State"], p["Keyword"], p["Limit"], p["Offset"]
    )
    return {
        "Records": [resource_record(r) for r in rows],
        "Total": total,
        "Limit": p["Limit"],
        "Offset": p["Offset"],
    }


@action("QueryUsableResource")
async def query_usable_resource(ctx: ActionContext, p: dict[str, Any]) -> list[dict[str, Any]]:
    rows = await ctx.services.resources.usable(ctx.principal, p["Type"])
    return [resource_record(r) for r in rows]


@action("QueryUsableResourceV2")
async def query_usable_resource_v2(ctx: ActionContext, p: dict[str, Any]) -> dict[str, Any]:
    return {"Records": await query_usable_resource(ctx, p)}


@action("OpenCreateTts")
async def open_create_tts(ctx: ActionContext, p: dict[str, Any]) -> dict[str, Any]:
    created = await ctx.services.resources.create_tts(
        ctx.principal, p["Name"], p["TtsTemplateContent"], p["TtsOption"], p["Remark"]
    )
    return {"ResourceKey": created["resource_key"], "Name": created["name"]}


@action("OpenUpdateResource")
async def open_update_resource(ctx: ActionContext, p: dict[str, Any]) -> dict[str, Any]:
    await ctx.services.resources.rename(ctx.principal, p["ResourceKey"], p["Name"])
    return {"ResourceKey": p["ResourceKey"], "Name": p["Name"]}


@action("OpenDeleteResource")
async def open_delete_resource(ctx: ActionContext, p: dict[str, Any]) -> dict[str, Any]:
    await ctx.services.resources.delete(ctx.principal, p["ResourceKey"])
    return {"ResourceKey": p["ResourceKey"]}
