"""A small program using the client, checked with ``mypy --strict`` by test_client_typing.py.

``assert_type`` fails the check if a method's result degrades to ``Any`` or changes type.
"""

from __future__ import annotations

import asyncio
from typing import assert_type

from vmsres.client import (
    AsyncClient,
    Client,
    DeletedResource,
    Resource,
    ResourcePage,
    ResourceRef,
    ResourceState,
    ResourceType,
    StoredResource,
    UploadUrl,
    VmsError,
)
from vmsres.protocol.errors import ResourceKeyIsNotExist


def report(client: Client) -> list[str]:
    page = client.query_open_get_resource(ResourceType.TTS, keyword="greeting", limit=20)
    assert_type(page, ResourcePage)
    assert_type(page.records, tuple[Resource, ...])
    assert_type(client.query_usable_resource(ResourceType.AUDIO), tuple[Resource, ...])
    assert_type(client.query_usable_resource_v2(ResourceType.AUDIO), tuple[Resource, ...])
    created = client.open_create_tts("greeting", "Hello #name#", tts_option={"Speed": 1}, remark="r")
    assert_type(created, ResourceRef)
    assert_type(client.open_update_resource(created.resource_key, "hello"), ResourceRef)
    assert_type(client.get_resource_upload_url("a.wav"), UploadUrl)
    assert_type(client.commit_resource_upload("a.wav", type=0), StoredResource)
    assert_type(client.fetch_resource("https://example.com/a.mp3", "a"), StoredResource)
    assert_type(client.upload("a.wav", progress=lambda sent, total: None), StoredResource)
    decided = client.wait_for_review(created.resource_key, timeout=30.0)
    approved: bool = decided.state == ResourceState.APPROVED
    try:
        assert_type(client.open_delete_resource(created.resource_key), DeletedResource)
    except ResourceKeyIsNotExist as error:
        request_id: str = error.request_id
        status: int = error.http_status
        print(request_id, status, approved)
    except VmsError as error:
        code: str = error.code
        print(code)
    return [r.name for r in client.iter_resources(ResourceType.TTS, state=ResourceState.APPROVED)]


async def report_async(client: AsyncClient) -> list[str]:
    page = await client.query_open_get_resource(ResourceType.TTS)
    assert_type(page, ResourcePage)
    assert_type(await client.open_delete_resource("k"), DeletedResource)
    assert_type(await client.upload("a.wav"), StoredResource)
    found = await client.find_by_name(ResourceType.TTS, "greeting")
    assert_type(found, Resource | None)
    return [r.resource_key async for r in client.iter_resources(ResourceType.IVR, page_size=50)]


def main() -> None:
    with Client("AK", "SK", endpoint="http://127.0.0.1:8080") as client:
        print(report(client))

    async def run() -> None:
        async with AsyncClient(endpoint="https://cloud-vms.volcengineapi.com") as client:
            print(await report_async(client))

    asyncio.run(run())
