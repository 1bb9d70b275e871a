"""Actions that move audio: upload URLs and commits, fetches, download URLs."""

from __future__ import annotations

from typing import Any

from vmsres.server.actions import RESULTS, ActionContext, action, answered_from
from vmsres.server.store.database import Row


@action("GetResourceUploadUrl")
async def get_resource_upload_url(ctx: ActionContext, p: dict[str, Any]) -> dict[str, Any]:
    url = await ctx.services.ingest.upload_url(ctx.principal, p["FileName"], ctx.base_url)
    return RESULTS["GetResourceUploadUrl"].build(UploadUrl=url)


@action("CommitResourceUpload")
async def commit_resource_upload(ctx: ActionContext, p: dict[str, Any]) -> dict[str, Any]:
    answer = answered_from(ctx, lambda row: _stored("CommitResourceUpload", row))
    return answer(await ctx.services.ingest.commit(ctx.principal, p["FileName"], p["Type"], ctx.audit))


@action("FetchResource")
async def fetch_resource(ctx: ActionContext, p: dict[str, Any]) -> dict[str, Any]:
    answer = answered_from(ctx, lambda row: _stored("FetchResource", row))
    return answer(await ctx.services.ingest.fetch(ctx.principal, p["Url"], p["Name"], p["Type"], ctx.audit))


@action("GetResourceDownloadUrl")
async def get_resource_download_url(ctx: ActionContext, p: dict[str, Any]) -> dict[str, Any]:
    url, expires_at = await ctx.services.ingest.download_url(
        ctx.principal, p["ResourceKey"], p["Rendition"], ctx.base_url
    )
    return RESULTS["GetResourceDownloadUrl"].build(Url=url, ExpiresAt=expires_at)


def _stored(action: str, row: Row) -> dict[str, Any]:
    return RESULTS[action].build(ResourceKey=row["resource_key"], Name=row["name"], Suffix=row["suffix"])
