"""The admin API from the client side: what the CLI uses with ``--endpoint URL --admin-token T``.

Requests are built from the operation table (admin/operations.py), so a call here takes the same
keywords as the AdminOps method the server runs for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from vmsres.server.admin.operations import PREFIX, AdminOperation, In, call_keywords


class RemoteError(Exception):
    """The admin API refused a request (the message is its ``detail``)."""


class RemoteOps:
    def __init__(self, endpoint: str, token: str, timeout: float = 30.0) -> None:
        self.client = httpx.AsyncClient(
            base_url=endpoint.rstrip("/") + PREFIX,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
        )

    async def close(self) -> None:
        await self.client.aclose()

    async def call(self, operation: AdminOperation, given: Mapping[str, Any]) -> Any:
        """Run one operation; ``given`` holds the AdminOps keywords (fixed ones need not be)."""
        values = {**call_keywords(operation, given)}
        path = operation.path.format(
            **{p.name: quote(str(values[p.keyword]), safe="") for p in operation.params_in(In.PATH)}
        )
        params = {
            p.name: values[p.keyword]
            for p in operation.params_in(In.QUERY)
            if values.get(p.keyword) is not None
        }
        body: Any = None
        if operation.body != "fields":
            body = values.get(operation.body_arg or "")
        elif operation.params_in(In.BODY):
            body = {
                p.name: values.get(p.keyword, None if p.required else p.default)
                for p in operation.params_in(In.BODY)
            }
        response = await self.client.request(operation.method, path, json=body, params=params)
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise RemoteError(f"HTTP {response.status_code}: {detail}")
        return response.json()
