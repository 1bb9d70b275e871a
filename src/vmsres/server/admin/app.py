"""The admin API (FastAPI): one route per entry of admin/operations.py, over service.admin.AdminOps.

Request models, parameter checks and the OpenAPI document (every status a route answers) all
come from the table; this module only turns a request into an AdminOps call.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field, create_model

from vmsres.protocol.records import Shape
from vmsres.server.admin.nul import RefuseNul, json_refusal
from vmsres.server.admin.operations import (
    ADMIN_RESOURCE,
    ADMIN_RESOURCE_NULLABLE,
    ERROR_STATUSES,
    OPERATIONS,
    PREFIX,
    AdminOperation,
    In,
    Param,
    call_keywords,
)
from vmsres.server.admin.tokens import admin_token_matches, client_address
from vmsres.server.service import outages
from vmsres.server.service.accounts import ConflictError, NotFoundError
from vmsres.server.service.admin import ADMIN_ERRORS, AdminOps
from vmsres.server.service.events import Actor
from vmsres.server.service.logins import ADMIN_API_DOOR, WINDOW_SECONDS, LoginGuard, Verdict
from vmsres.server.service.services import Services

_bearer = HTTPBearer(auto_error=False)
_NO_TOKEN = "a valid admin or operator token is needed"
_THROTTLED = "too many wrong tokens from this address or with this token; try again after Retry-After seconds"


class ErrorDetail(BaseModel):
    detail: Any = Field(description="why (a list of schema failures for 422)")


def admin_ops_for(operation: AdminOperation) -> Callable[..., Awaitable[AdminOps]]:
    """The dependency that checks the caller's token: the admin token may do everything; an
    operator's token may do what the operation's role allows (403 otherwise). A wrong token
    counts as a failed login (service/logins.py, shared with the console's login form): past
    the limit the address or token gets 429 until the window ends. No token at all is not a
    guess and is not counted."""

    async def admin_ops(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> AdminOps:
        token = credentials.credentials if credentials else ""
        if not token:
            raise HTTPException(401, _NO_TOKEN, headers={"WWW-Authenticate": "Bearer"})
        services: Services = request.app.state.services
        logins: LoginGuard = request.app.state.logins
        operator = None
        admin = admin_token_matches(token, request.app.state.token_sha256)
        if not admin:
            operator = await services.operators.authenticate(token)
        address = client_address(request)
        verdict = await logins.judge(address, token, admin or operator is not None)
        if verdict is not Verdict.ALLOWED:
            await logins.record(verdict, address, f" ({request.method} {request.url.path})")
        if verdict is Verdict.THROTTLED:
            raise HTTPException(429, _THROTTLED, headers={"Retry-After": str(WINDOW_SECONDS)})
        if verdict is Verdict.FAILED:
            raise HTTPException(401, _NO_TOKEN, headers={"WWW-Authenticate": "Bearer"})
        if operator is None:
            return AdminOps(services, Actor("admin"))
        if not operator.may(operation.role):
            raise HTTPException(
                403, f"operator {operator.name} is a {operator.role}: only admins may do this"
            )
        return AdminOps(services, Actor("operator", name=operator.name))

    return admin_ops


async def refused(_: Request, error: Exception) -> JSONResponse:
    status = 404 if isinstance(error, NotFoundError) else 409 if isinstance(error, ConflictError) else 400
    return JSONResponse({"detail": str(error)}, status_code=status)


async def dependency_failed(_: Request, error: Exception) -> JSONResponse:
    answer = outages.wire_error(error)
    assert answer is not None  # registered for outages.OUTAGES only
    retry = answer.retry_after_seconds
    headers = {"Retry-After": str(retry)} if retry is not None else None
    return JSONResponse({"detail": answer.message}, status_code=answer.http_status, headers=headers)


def _field(param: Param) -> Any:
    default = ... if param.required else param.default
    return (param.annotation, Field(default, description=param.doc or None, **param.bounds))


def _signature_part(param: Param) -> inspect.Parameter:
    if param.where is In.PATH:
        annotation: Any = Annotated[param.annotation, Path(description=param.doc or None)]
    else:
        annotation = Annotated[param.annotation, Query(description=param.doc or None, **param.bounds)]
    default = inspect.Parameter.empty if param.required else param.default
    return inspect.Parameter(
        param.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
    )


def endpoint_for(operation: AdminOperation) -> Callable[..., Awaitable[Any]]:
    """An endpoint whose signature FastAPI reads: the caller's AdminOps, path and query
    parameters, and the body (a generated model, or free JSON for a "raw" body)."""
    ops = Annotated[AdminOps, Depends(admin_ops_for(operation))]
    parts = [inspect.Parameter("ops", inspect.Parameter.KEYWORD_ONLY, annotation=ops)]
    parts += [_signature_part(p) for p in operation.params if p.where is not In.BODY]
    body_params = operation.params_in(In.BODY)
    model: type[BaseModel] | None = None
    if operation.body == "raw":
        (raw,) = body_params
        parts.append(
            inspect.Parameter(
                "body",
                inspect.Parameter.KEYWORD_ONLY,
                annotation=Annotated[raw.annotation, Body(description=raw.doc)],
            )
        )
    elif body_params:
        model = create_model(
            operation.body_model or operation.name,
            __doc__=operation.description or None,
            **{p.name: _field(p) for p in body_params},
        )
        parts.append(inspect.Parameter("body", inspect.Parameter.KEYWORD_ONLY, annotation=model))

    async def endpoint(ops: AdminOps, **values: Any) -> Any:
        given = {p.keyword: values[p.name] for p in operation.params if p.where is not In.BODY}
        body = values.get("body")
        if operation.body == "raw":
            given[operation.body_arg or "body"] = body
        elif isinstance(body, BaseModel):
            if operation.body == "partial":
                given[operation.body_arg or "body"] = body.model_dump(exclude_unset=True)
            else:
                given.update({p.keyword: getattr(body, p.name) for p in body_params})
        return await getattr(ops, operation.call)(**call_keywords(operation, given))

    endpoint.__signature__ = inspect.Signature(parts)  # type: ignore[attr-defined]
    endpoint.__name__ = operation.name
    endpoint.__doc__ = operation.description or None
    return endpoint


_KINDS: dict[str, type] = {"str": str, "int": int, "bool": bool, "float": float}


def shape_model(shape: Shape, nullable: frozenset[str] = frozenset()) -> type[BaseModel]:
    """The OpenAPI schema of a declared Shape: a field present only on some Types is optional."""
    fields: dict[str, Any] = {}
    for declared in shape.fields:
        assert isinstance(declared.kind, str), "nested shapes are not used by the admin API"
        kind: Any = _KINDS[declared.kind]
        if declared.name in nullable:
            kind = kind | None
        default = ... if declared.only_for is None else None
        fields[declared.name] = (kind, Field(default, description=declared.doc or None))
    return create_model(shape.name, __doc__=shape.doc, **fields)


AdminResource = shape_model(ADMIN_RESOURCE, ADMIN_RESOURCE_NULLABLE)


def _responses(operation: AdminOperation) -> dict[int | str, dict[str, Any]]:
    responses: dict[int | str, dict[str, Any]] = {
        status: {"model": ErrorDetail, "description": ERROR_STATUSES[status]} for status in operation.statuses
    }
    if operation.answers_resources:
        # Documented only: the answer is sent as AdminOps built it, not re-serialized by a model.
        model = list[AdminResource] if operation.result is list else AdminResource  # type: ignore[valid-type]
        responses[operation.status] = {"model": model, "description": "Successful Response"}
    return responses


router = APIRouter(prefix=PREFIX)
for _operation in OPERATIONS:
    router.add_api_route(
        _operation.path,
        endpoint_for(_operation),
        methods=[_operation.method],
        name=_operation.name,
        operation_id=_operation.name,
        summary=_operation.summary,
        tags=[_operation.tag],
        status_code=_operation.status,
        response_model=None
        if _operation.answers_resources
        else list[dict[str, Any]]
        if _operation.result is list
        else dict[str, Any],
        responses=_responses(_operation),
    )


def create_admin_app(services: Services, token_sha256: str) -> FastAPI:
    app = FastAPI(
        title="vmsres admin API",
        version="1",
        description="Accounts, keys, review queue, test controls, audit trail and webhook deliveries. "
        "Every call needs `Authorization: Bearer <token>`: the admin token, or an operator's "
        "personal token (a reviewer's is refused admin-only operations with 403).",
        openapi_url=f"{PREFIX}/openapi.json",
        docs_url=f"{PREFIX}/docs",
        redoc_url=None,
    )
    app.state.services = services
    app.state.token_sha256 = token_sha256.encode()
    app.state.logins = LoginGuard(services, ADMIN_API_DOOR)
    # One handler for the whole family: Starlette picks it by the error's class hierarchy.
    for error_type in ADMIN_ERRORS:
        app.add_exception_handler(error_type, refused)
    app.include_router(router)

    for outage in outages.OUTAGES:
        app.add_exception_handler(outage, dependency_failed)
    app.add_middleware(RefuseNul, refusal=json_refusal)
    return app
