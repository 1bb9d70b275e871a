"""The admin API (FastAPI). A thin HTTP skin over service.admin.AdminOps, which the CLI shares."""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from vmsres.server.service.accounts import ConflictError, NotFoundError
from vmsres.server.service.admin import ADMIN_ERRORS, AdminOps
from vmsres.server.service.events import Actor
from vmsres.server.service.services import Services

PREFIX = "/admin/v1"
ADMIN_TOKEN_ENV = "VMSRES_ADMIN_TOKEN"

TypeQuery = Annotated[int | None, Query(ge=0, le=2, description="0 audio, 1 TTS, 2 IVR")]
StateQuery = Annotated[int | None, Query(ge=0, le=2, description="0 under review, 1 approved, 2 rejected")]
LimitQuery = Annotated[int, Query(ge=1, le=1000)]
NameQuery = Annotated[str | None, Query(max_length=128)]


class AccountCreate(BaseModel):
    Name: str = Field(max_length=64)
    ReviewPolicy: str | None = Field(default=None, description="auto, manual or auto-then-manual")


class PolicyUpdate(BaseModel):
    ReviewPolicy: str | None = Field(description="null: the server's --review applies")


class WebhookUpdate(BaseModel):
    Url: str = Field(max_length=2048)
    Secret: str | None = Field(default=None, max_length=256, description="generated when absent")


class KeyCreate(BaseModel):
    Account: str = Field(max_length=64)


class Approve(BaseModel):
    ResourceKeys: list[str] = Field(min_length=1, max_length=1000)
    Reviewer: str = Field(default="admin", min_length=1, max_length=64)
    Force: bool = Field(
        default=False, description="re-decide resources already decided (the audit says forced)"
    )


class Reject(Approve):
    Reason: str = Field(min_length=1, max_length=2000)


class ForceState(BaseModel):
    State: int = Field(ge=0, le=2)
    Reason: str | None = Field(default=None, max_length=2000)


class LimitsUpdate(BaseModel):
    """A field left out stays as it is; null returns it to the server default."""

    RatePerKey: str | None = Field(
        default=None, max_length=32, description='"N/s[:burst]", N/m, N/h or "off"'
    )
    RatePerAccount: str | None = Field(default=None, max_length=32, description='"N/s[:burst]" or "off"')
    MaxResources: int | None = Field(default=None, ge=-1, description="-1: unlimited")
    MaxStorageBytes: int | None = Field(default=None, ge=-1, description="-1: unlimited")


class LeaseCreate(BaseModel):
    Seconds: int = Field(ge=1, le=7 * 24 * 3600)
    Holder: str = Field(default="dialer", min_length=1, max_length=128)


_bearer = HTTPBearer(auto_error=False)


async def admin_ops(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> AdminOps:
    if not admin_token_matches(
        credentials.credentials if credentials else "", request.app.state.token_sha256
    ):
        raise HTTPException(401, "a valid admin token is needed", headers={"WWW-Authenticate": "Bearer"})
    return AdminOps(request.app.state.services, Actor("admin"))


# Module level: routes annotate with it, and postponed annotations resolve in module globals.
Ops = Annotated[AdminOps, Depends(admin_ops)]


def admin_token_digest(token: str) -> str:
    """What a server keeps of its admin token (a high-entropy token needs no slow hash)."""
    return hashlib.sha256(token.encode()).hexdigest()


def admin_token_matches(token: str, token_sha256: bytes) -> bool:
    return hmac.compare_digest(admin_token_digest(token).encode(), token_sha256)


def create_admin_app(services: Services, token_sha256: str) -> FastAPI:
    app = FastAPI(
        title="vmsres admin API",
        version="1",
        description="Accounts, keys, review queue, test controls, audit trail and webhook deliveries. "
        "Every call needs `Authorization: Bearer <admin token>`.",
        openapi_url=f"{PREFIX}/openapi.json",
        docs_url=f"{PREFIX}/docs",
        redoc_url=None,
    )
    app.state.services = services
    app.state.token_sha256 = token_sha256.encode()

    async def bad_request(_: Request, error: Exception) -> JSONResponse:
        status = 404 if isinstance(error, NotFoundError) else 409 if isinstance(error, ConflictError) else 400
        return JSONResponse({"detail": str(error)}, status_code=status)

    # One handler for the whole family: Starlette picks it by the error's class hierarchy.
    for error_type in ADMIN_ERRORS:
        app.add_exception_handler(error_type, bad_request)

    p = PREFIX

    @app.get(f"{p}/accounts", tags=["accounts"])
    async def list_accounts(ops: Ops) -> list[dict[str, Any]]:
        return await ops.list_accounts()

    @app.post(f"{p}/accounts", tags=["accounts"], status_code=201)
    async def create_account(ops: Ops, body: AccountCreate) -> dict[str, Any]:
        return await ops.create_account(body.Name, body.ReviewPolicy)

    @app.put(f"{p}/accounts/{{name}}/review-policy", tags=["accounts"])
    async def set_policy(ops: Ops, name: str, body: PolicyUpdate) -> dict[str, Any]:
        return await ops.set_review_policy(name, body.ReviewPolicy)

    @app.get(f"{p}/accounts/{{name}}/webhook", tags=["webhooks"])
    async def get_webhook(ops: Ops, name: str) -> dict[str, Any]:
        return await ops.get_webhook(name)

    @app.put(f"{p}/accounts/{{name}}/webhook", tags=["webhooks"])
    async def set_webhook(ops: Ops, name: str, body: WebhookUpdate) -> dict[str, Any]:
        """The secret is in this response only (generated when the request has none)."""
        return await ops.set_webhook(name, body.Url, body.Secret)

    @app.delete(f"{p}/accounts/{{name}}/webhook", tags=["webhooks"])
    async def delete_webhook(ops: Ops, name: str) -> dict[str, Any]:
        return await ops.set_webhook(name, None)

    @app.post(f"{p}/accounts/{{name}}/reset", tags=["test controls"])
    async def reset_account(ops: Ops, name: str) -> dict[str, Any]:
        """Delete every resource of the account (keys, policy and webhook stay)."""
        return await ops.reset_account(name)

    @app.get(f"{p}/accounts/{{name}}/limits", tags=["limits"])
    async def get_limits(ops: Ops, name: str) -> dict[str, Any]:
        return await ops.get_limits(name)

    @app.put(f"{p}/accounts/{{name}}/limits", tags=["limits"])
    async def set_limits(ops: Ops, name: str, body: LimitsUpdate) -> dict[str, Any]:
        return await ops.set_limits(name, body.model_dump(exclude_unset=True))

    @app.post(f"{p}/resources/{{resource_key}}/lease", tags=["leases"])
    async def lease(ops: Ops, resource_key: str, body: LeaseCreate) -> dict[str, Any]:
        """Mark the resource in use until now + Seconds (a new lease replaces the old one)."""
        return await ops.lease(resource_key, body.Seconds, body.Holder)

    @app.delete(f"{p}/resources/{{resource_key}}/lease", tags=["leases"])
    async def release(ops: Ops, resource_key: str) -> dict[str, Any]:
        return await ops.release(resource_key)

    @app.get(f"{p}/leases", tags=["leases"])
    async def leases(ops: Ops, account: NameQuery = None, limit: LimitQuery = 100) -> list[dict[str, Any]]:
        """Leases that have not expired, soonest expiry first."""
        return await ops.leases(account, limit)

    @app.get(f"{p}/keys", tags=["keys"])
    async def list_keys(ops: Ops, account: NameQuery = None) -> list[dict[str, Any]]:
        return await ops.list_keys(account)

    @app.post(f"{p}/keys", tags=["keys"], status_code=201)
    async def create_key(ops: Ops, body: KeyCreate) -> dict[str, Any]:
        """The SecretKey is in this response only."""
        return await ops.create_key(body.Account)

    @app.post(f"{p}/keys/{{access_key}}/disable", tags=["keys"])
    async def disable_key(ops: Ops, access_key: str) -> dict[str, Any]:
        return await ops.set_key_enabled(access_key, False)

    @app.post(f"{p}/keys/{{access_key}}/enable", tags=["keys"])
    async def enable_key(ops: Ops, access_key: str) -> dict[str, Any]:
        return await ops.set_key_enabled(access_key, True)

    @app.post(f"{p}/keys/{{access_key}}/rotate", tags=["keys"])
    async def rotate_key(ops: Ops, access_key: str) -> dict[str, Any]:
        """A new SecretKey, shown once; the old one stops working at once."""
        return await ops.rotate_key(access_key)

    @app.delete(f"{p}/keys/{{access_key}}", tags=["keys"])
    async def delete_key(ops: Ops, access_key: str) -> dict[str, Any]:
        return await ops.delete_key(access_key)

    @app.get(f"{p}/review/queue", tags=["review"])
    async def review_queue(
        ops: Ops, account: NameQuery = None, type: TypeQuery = None, limit: LimitQuery = 100
    ) -> list[dict[str, Any]]:
        """Resources at State 0, oldest first."""
        return await ops.review_queue(account, type, limit)

    @app.post(f"{p}/review/approve", tags=["review"])
    async def approve(ops: Ops, body: Approve) -> list[dict[str, Any]]:
        """Resources under review only; an already decided one answers Ok false with its State,
        ReviewedBy and ReviewedAt, unless Force is true."""
        return await ops.review(body.ResourceKeys, True, None, body.Reviewer, body.Force)

    @app.post(f"{p}/review/reject", tags=["review"])
    async def reject(ops: Ops, body: Reject) -> list[dict[str, Any]]:
        """The reason reaches the owner as RejectReason."""
        return await ops.review(body.ResourceKeys, False, body.Reason, body.Reviewer, body.Force)

    @app.get(f"{p}/resources", tags=["resources"])
    async def list_resources(
        ops: Ops,
        account: NameQuery = None,
        type: TypeQuery = None,
        state: StateQuery = None,
        limit: LimitQuery = 100,
    ) -> list[dict[str, Any]]:
        return await ops.list_resources(account, type, state, limit)

    @app.get(f"{p}/resources/{{resource_key}}", tags=["resources"])
    async def get_resource(ops: Ops, resource_key: str) -> dict[str, Any]:
        return await ops.get_resource(resource_key)

    @app.post(f"{p}/resources/{{resource_key}}/force-state", tags=["test controls"])
    async def force_state(ops: Ops, resource_key: str, body: ForceState) -> dict[str, Any]:
        return await ops.force_state(resource_key, body.State, body.Reason)

    @app.post(f"{p}/fixtures", tags=["test controls"])
    async def load_fixtures(ops: Ops, body: dict[str, Any] | list[dict[str, Any]]) -> dict[str, Any]:
        """The fixtures format of `serve --fixtures` (see docs/admin.md)."""
        return await ops.load_fixtures(body)

    @app.get(f"{p}/audit", tags=["audit"])
    async def audit(
        ops: Ops,
        account: NameQuery = None,
        resource_key: NameQuery = None,
        action: NameQuery = None,
        limit: LimitQuery = 100,
    ) -> list[dict[str, Any]]:
        """Newest first."""
        return await ops.audit(account, resource_key, action, limit)

    @app.get(f"{p}/webhook-deliveries", tags=["webhooks"])
    async def deliveries(
        ops: Ops,
        account: NameQuery = None,
        state: Annotated[str | None, Query(pattern="^(pending|delivered|failed)$")] = None,
        limit: LimitQuery = 100,
    ) -> list[dict[str, Any]]:
        return await ops.deliveries(account, state, limit)

    return app
