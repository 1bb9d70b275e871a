"""The ASGI application: the signed OpenAPI endpoint at ``/``, health checks, mounted sub-apps."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import orjson

from vmsres.protocol import API_VERSION, SERVICE
from vmsres.protocol.errors import (
    DryRunOperation,
    InternalError,
    InvalidAction,
    InvalidParameter,
    MethodNotAllowed,
    MissingAction,
    NotFound,
    RequestEntityTooLarge,
    Throttling,
    VmsError,
)
from vmsres.protocol.request_ids import new_request_id
from vmsres.protocol.signing import parse_authorization, parse_query, verify_signature
from vmsres.protocol.spec import ACTIONS
from vmsres.server import metrics
from vmsres.server.actions import ActionContext, Handler, load_handlers
from vmsres.server.actions.dryrun import DRY_RUN_CHECKS
from vmsres.server.service import outages
from vmsres.server.service.accounts import Principal
from vmsres.server.service.events import Actor, AuditContext
from vmsres.server.service.services import Services
from vmsres.server.settings import BODY_IDLE_SECONDS
from vmsres.server.wire.access_log import CLIENT_ABORT_CODE, CLIENT_ABORT_STATUS, log_request
from vmsres.server.wire.asgi import (
    ASGIApp,
    BodyTooLarge,
    ClientDisconnected,
    Receive,
    Scope,
    Send,
    header_map,
    read_body,
    send_response,
)
from vmsres.server.wire.envelope import DEFAULT_REGION, error_body, error_headers, success_body

MAX_BODY_BYTES = 1024 * 1024
error_log = logging.getLogger("vmsres.error")
_RESERVED = ("Action", "Version")


@dataclass
class WireConfig:
    max_body_bytes: int = MAX_BODY_BYTES
    body_timeout_seconds: float = BODY_IDLE_SECONDS
    # Extra ASGI apps by path prefix ("/upload/", "/admin/", ...), tried in order.
    mounts: list[tuple[str, ASGIApp]] = field(default_factory=list)
    # Long-running jobs of the process (garbage collection, ...), started with the server.
    background: list[Callable[[], Coroutine[Any, Any, None]]] = field(default_factory=list)
    # Run at lifespan startup and shutdown (background tasks such as the webhook dispatcher).
    on_startup: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    on_shutdown: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


_V = TypeVar("_V")


def body_parameters(body: bytes, content_type: str) -> Mapping[str, Any]:
    """Parameters carried by the body: JSON object, form data, or nothing (``{}``, ``[]``, empty)."""
    stripped = body.strip()
    if not stripped:
        return {}
    if "application/x-www-form-urlencoded" in content_type and stripped[:1] not in (b"{", b"["):
        try:
            text = stripped.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidParameter("Body", "The form body is not valid UTF-8 form data.") from None
        return first_of_repeated(parse_query(text, strict=True))
    try:
        decoded = orjson.loads(stripped)
    except orjson.JSONDecodeError:
        raise InvalidParameter("Body", "The body is not valid UTF-8 JSON.") from None
    if isinstance(decoded, dict):
        # orjson keeps the last of a repeated key; the rule of the query and form bodies is the
        # first. Every key is followed by one ':', so a body with no more colons than keys has no
        # repeated key and orjson's answer stands (the usual, hot case). Otherwise the body orjson
        # accepted (strict UTF-8, no lone surrogates, no NaN) is read again with its pairs in order.
        if stripped.count(b":") == len(decoded):
            return decoded
        first_wins: dict[str, Any] = json.loads(stripped, object_pairs_hook=first_of_repeated)
        return first_wins
    if decoded == []:
        return {}
    raise InvalidParameter("Body", "The body must be a JSON object.")


def first_of_repeated(pairs: list[tuple[str, _V]]) -> dict[str, _V]:
    """Parameters by name (query, form or JSON body): of a repeated key the first value wins
    (docs/api.md)."""
    params: dict[str, _V] = {}
    for key, value in pairs:
        params.setdefault(key, value)
    return params


class VmsApp:
    def __init__(self, services: Services, config: WireConfig | None = None) -> None:
        self.services = services
        self.config = config or WireConfig()
        self.handlers: dict[str, Handler] = load_handlers()
        self.metrics = metrics.RequestMetrics()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            path = scope["path"]
            if path == "/":
                await self.wire(scope, receive, send)
            elif path == "/healthz":
                await send_response(send, 200, b'{"status":"ok"}')
            elif path == "/readyz":
                await self.readyz(send)
            elif path == "/metrics":
                await send_response(send, 200, metrics.exposition(), content_type=metrics.CONTENT_TYPE)
            else:
                for prefix, app in self.config.mounts:
                    if path.startswith(prefix):
                        await app(scope, receive, send)
                        return
                await self._send_error(send, new_request_id(), "", DEFAULT_REGION, NotFound())
        elif kind == "lifespan":
            await self.lifespan(receive, send)

    async def lifespan(self, receive: Receive, send: Send) -> None:
        tasks: list[asyncio.Task[None]] = []
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                tasks = [asyncio.create_task(job()) for job in self.config.background]
                for hook in self.config.on_startup:
                    await hook()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                for hook in self.config.on_shutdown:
                    await hook()
                await self.services.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def readyz(self, send: Send) -> None:
        report = await self.services.readiness()
        await send_response(send, 200 if report.ready else 503, orjson.dumps(report.as_json()))

    async def wire(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        request_id = new_request_id()
        action_name = ""
        region = DEFAULT_REGION
        status, code = 500, ""
        retry_after: int | None = None
        audit: AuditContext | None = None
        spec = None
        principal: Principal | None = None
        params: dict[str, Any] = {}
        result: Any = None
        try:
            try:
                pairs = parse_query(scope["query_string"].decode("latin-1"), strict=True)
                query = first_of_repeated(pairs)
                action_name = query.get("Action", "")
                method = scope["method"]
                if method not in ("GET", "POST"):
                    raise MethodNotAllowed()
                if not action_name:
                    raise MissingAction()
                spec = ACTIONS.get(action_name)
                handler = self.handlers.get(action_name)
                if spec is None or handler is None or query.get("Version") != API_VERSION:
                    raise InvalidAction()
                if method not in spec.methods:
                    raise InvalidAction(f"{action_name} does not accept {method}.")
                headers = header_map(scope)
                try:
                    body = await read_body(
                        scope, receive, self.config.max_body_bytes, self.config.body_timeout_seconds
                    )
                except BodyTooLarge:
                    raise RequestEntityTooLarge() from None

                authorization = parse_authorization(headers.get("authorization"))
                region = authorization.region
                answered_spec, answered_handler = spec, handler

                async def answer() -> Any:
                    nonlocal principal, params, audit
                    key = await self.services.accounts.key_for_verification(authorization.access_key)
                    raw_path = scope.get("raw_path")
                    verify_signature(
                        authorization,
                        key.secret_key,
                        method=method,
                        path=raw_path.decode("latin-1") if raw_path else scope["path"],
                        query_pairs=pairs,
                        headers=headers,
                        body=body,
                        service=SERVICE,
                    )
                    principal = key.principal
                    # Without a configured rate this is one attribute test: no Redis, no await.
                    rates = self.services.limiter.rates(principal)
                    if rates is not None:
                        await self.services.limiter.take(principal, rates)

                    raw = {k: v for k, v in query.items() if k not in _RESERVED}
                    raw.update(body_parameters(body, headers.get("content-type", "")))
                    params = answered_spec.parse(raw)
                    if answered_spec.mutating:
                        actor = Actor("key", principal.account_name, principal.access_key)
                        audit = AuditContext(actor, request_id, answered_spec.name)
                    context = ActionContext(
                        principal,
                        self.services,
                        request_id,
                        base_url(scope, headers),
                        key.listing_version,
                        audit,
                    )
                    token = params.get("ClientToken")
                    if params["DryRun"]:
                        if token:
                            await self.services.idempotency.check(principal, token, action_name, params)
                        await DRY_RUN_CHECKS[action_name](context, params)
                        raise DryRunOperation()
                    if token:
                        return await self._once(action_name, answered_handler, context, params, token)
                    return await answered_handler(context, params)

                result = await outages.once_more_if_lost(answer, action_name)
                status, payload = 200, success_body(request_id, action_name, region, result)
            except VmsError as error:
                status, code = error.http_status, error.code
                retry_after = error.retry_after_seconds
                payload = error_body(request_id, action_name[:64], region, error)
            except ClientDisconnected:
                # Nobody is left to answer; the access log records the abort.
                status, code = CLIENT_ABORT_STATUS, CLIENT_ABORT_CODE
                return
            except Exception as exc:
                failure = outages.wire_error(exc) or InternalError()
                if isinstance(failure, InternalError):
                    error_log.exception("unexpected failure in %s (RequestId %s)", action_name, request_id)
                else:
                    error_log.warning(
                        "%s in %s (RequestId %s): %s", failure.code, action_name, request_id, exc
                    )
                status, code = failure.http_status, failure.code
                retry_after = failure.retry_after_seconds
                payload = error_body(request_id, action_name[:64], region, failure)
            # Only calls made with a verified key and let past the rate limit are audited: anonymous
            # junk and throttled floods stay in the access log and cannot fill the audit table.
            # Written before the answer goes out, so a client that has its answer finds the entry.
            # A change the service made has its row already, written in the changing transaction.
            written = audit is not None and audit.written
            if (
                spec is not None
                and spec.mutating
                and principal is not None
                and code != Throttling.code
                and not written
            ):
                await self._audit(spec.name, principal, params, result, request_id, code or "ok")
            response_headers = [(b"x-tt-logid", request_id.encode())]
            if retry_after is not None:
                response_headers.append((b"retry-after", str(retry_after).encode()))
            await send_response(send, status, payload, headers=response_headers)
        finally:
            elapsed = time.perf_counter() - started
            self.metrics.observe(action_name, status, elapsed)
            log_request(
                request_id, action_name, principal.account_name if principal else "", status, code, elapsed
            )

    async def _once(
        self, action: str, handler: Handler, context: ActionContext, params: dict[str, Any], token: str
    ) -> Any:
        """Run a mutating action under its ClientToken, or answer the first run's result again."""
        idempotency = self.services.idempotency
        # The claim is released when the action fails, and a leftover claim only answers "still
        # running": neither makes running the request again after a lost connection unsafe.
        with outages.compensated_writes():
            replay, result = await idempotency.begin(context.principal, token, action, params)
        if replay:
            return result
        audit = context.audit
        if audit is not None:
            # Kept in the changing transaction when the action's change is one (AuditContext).
            audit.keep_answer = partial(idempotency.finish, context.principal, token)
        try:
            result = await handler(context, params)
        except BaseException:
            with outages.compensated_writes():
                await idempotency.abandon(context.principal, token)
            raise
        if audit is None or not audit.answered:
            await idempotency.finish(context.principal, token, result)
        return result

    async def _audit(
        self,
        action: str,
        principal: Principal,
        params: Mapping[str, Any],
        result: Any,
        request_id: str,
        outcome: str,
    ) -> None:
        resource = params.get("ResourceKey") or (
            result.get("ResourceKey") if isinstance(result, dict) else None
        )
        actor = Actor("key", principal.account_name, principal.access_key)
        try:
            await self.services.events.audit(actor, action, resource, request_id, outcome)
        except Exception:
            # A lost audit line must not turn a done change into an error the client would retry.
            error_log.exception("audit write failed for %s (RequestId %s)", action, request_id)

    async def _send_error(
        self, send: Send, request_id: str, action: str, region: str, error: VmsError
    ) -> None:
        body = error_body(request_id, action[:64], region, error)
        await send_response(send, error.http_status, body, headers=error_headers(request_id, error))


def base_url(scope: Scope, headers: Mapping[str, str]) -> str:
    host = headers.get("host")
    if not host:
        server = scope.get("server") or ("127.0.0.1", 80)
        host = f"{server[0]}:{server[1]}"
    return f"{scope.get('scheme', 'http')}://{host}"
