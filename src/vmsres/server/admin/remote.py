"""The admin API from the client side: what the CLI uses with ``--endpoint URL --admin-token T``.

Its methods mirror service.admin.AdminOps one for one, so each CLI command is written once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import httpx

from vmsres.server.admin.app import PREFIX


class RemoteError(Exception):
    """The admin API refused a request (the message is its ``detail``)."""


def _drop_none(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


class RemoteOps:
    def __init__(self, endpoint: str, token: str, timeout: float = 30.0) -> None:
        self.client = httpx.AsyncClient(
            base_url=endpoint.rstrip("/") + PREFIX,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
        )

    async def close(self) -> None:
        await self.client.aclose()

    async def _call(
        self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None
    ) -> Any:
        response = await self.client.request(method, path, json=json, params=_drop_none(params or {}))
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise RemoteError(f"HTTP {response.status_code}: {detail}")
        return response.json()

    async def list_accounts(self) -> Any:
        return await self._call("GET", "/accounts")

    async def create_account(self, name: str, review_policy: str | None = None) -> Any:
        return await self._call("POST", "/accounts", json={"Name": name, "ReviewPolicy": review_policy})

    async def set_review_policy(self, name: str, policy: str | None) -> Any:
        return await self._call(
            "PUT", f"/accounts/{quote(name, safe='')}/review-policy", json={"ReviewPolicy": policy}
        )

    async def set_webhook(self, name: str, url: str | None, secret: str | None = None) -> Any:
        path = f"/accounts/{quote(name, safe='')}/webhook"
        if url is None:
            return await self._call("DELETE", path)
        return await self._call("PUT", path, json={"Url": url, "Secret": secret})

    async def reset_account(self, name: str) -> Any:
        return await self._call("POST", f"/accounts/{quote(name, safe='')}/reset")

    async def list_keys(self, account: str | None = None) -> Any:
        return await self._call("GET", "/keys", params={"account": account})

    async def create_key(self, account: str) -> Any:
        return await self._call("POST", "/keys", json={"Account": account})

    async def set_key_enabled(self, access_key: str, enabled: bool) -> Any:
        verb = "enable" if enabled else "disable"
        return await self._call("POST", f"/keys/{quote(access_key, safe='')}/{verb}")

    async def rotate_key(self, access_key: str) -> Any:
        return await self._call("POST", f"/keys/{quote(access_key, safe='')}/rotate")

    async def delete_key(self, access_key: str) -> Any:
        return await self._call("DELETE", f"/keys/{quote(access_key, safe='')}")

    async def review_queue(
        self, account: str | None = None, type_: int | None = None, limit: int = 100
    ) -> Any:
        return await self._call(
            "GET", "/review/queue", params={"account": account, "type": type_, "limit": limit}
        )

    async def review(
        self,
        resource_keys: Sequence[str],
        approve: bool,
        reason: str | None,
        reviewer: str,
        force: bool = False,
    ) -> Any:
        body: dict[str, Any] = {"ResourceKeys": list(resource_keys), "Reviewer": reviewer}
        if force:
            body["Force"] = True
        if approve:
            return await self._call("POST", "/review/approve", json=body)
        return await self._call("POST", "/review/reject", json={**body, "Reason": reason})

    async def force_state(self, resource_key: str, state: int, reason: str | None) -> Any:
        path = f"/resources/{quote(resource_key, safe='')}/force-state"
        return await self._call("POST", path, json={"State": state, "Reason": reason})

    async def get_resource(self, resource_key: str) -> Any:
        return await self._call("GET", f"/resources/{quote(resource_key, safe='')}")

    async def audit(
        self,
        account: str | None = None,
        resource_key: str | None = None,
        action: str | None = None,
        limit: int = 100,
    ) -> Any:
        params = {"account": account, "resource_key": resource_key, "action": action, "limit": limit}
        return await self._call("GET", "/audit", params=params)

    async def deliveries(self, account: str | None = None, state: str | None = None, limit: int = 100) -> Any:
        return await self._call(
            "GET", "/webhook-deliveries", params={"account": account, "state": state, "limit": limit}
        )

    async def get_limits(self, name: str) -> Any:
        return await self._call("GET", f"/accounts/{quote(name, safe='')}/limits")

    async def set_limits(self, name: str, limits: dict[str, Any]) -> Any:
        return await self._call("PUT", f"/accounts/{quote(name, safe='')}/limits", json=limits)

    async def lease(self, resource_key: str, seconds: int, holder: str) -> Any:
        path = f"/resources/{quote(resource_key, safe='')}/lease"
        return await self._call("POST", path, json={"Seconds": seconds, "Holder": holder})

    async def release(self, resource_key: str) -> Any:
        return await self._call("DELETE", f"/resources/{quote(resource_key, safe='')}/lease")

    async def leases(self, account: str | None = None, limit: int = 100) -> Any:
        return await self._call("GET", "/leases", params={"account": account, "limit": limit})

    async def load_fixtures(self, data: Any) -> Any:
        return await self._call("POST", "/fixtures", json=data)
