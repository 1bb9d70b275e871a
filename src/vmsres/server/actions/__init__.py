"""The actions layer: one function per wire action, between the wire and the service.

Each function takes the parameters the wire layer has already validated against the action's
vmsres.protocol.spec.ActionSpec, calls the service (vmsres.server.service) and returns the
action's Result, shaped by the protocol's result declaration; failures are raised as the
vmsres.protocol.errors class of their wire code and turned into a response by the wire envelope.
resources.py holds the actions on the library, audio.py those that move audio bytes, dryrun.py the
checks that DryRun=true makes instead. Actions know neither HTTP nor SQL.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from vmsres.protocol.records import Result
from vmsres.protocol.spec import ACTIONS
from vmsres.server.service.accounts import Principal
from vmsres.server.service.events import AuditContext
from vmsres.server.service.services import Services
from vmsres.server.store.database import Row

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ActionContext:
    principal: Principal
    services: Services
    request_id: str
    # scheme://host[:port] as the client reached us; for URLs we hand back.
    base_url: str
    # The account's (resources, leases) generations as read while verifying the key, or None.
    listing_version: tuple[int, int] | None = None
    # For changes: the service writes the "ok" audit row with the change (docs/reliability.md).
    audit: AuditContext | None = None


# Each action's declared result shape; handlers build their answers with it.
RESULTS: Mapping[str, Result] = {name: spec.result for name, spec in ACTIONS.items()}


def answered_from(ctx: ActionContext, build: Callable[[Row], T]) -> Callable[[Row], T]:
    """Declare how the action answers from the row it changed: the service then stores a
    ClientToken's answer in the changing transaction (AuditContext). Returns ``build``."""
    if ctx.audit is not None:
        ctx.audit.answer = build
    return build


Handler = Callable[[ActionContext, dict[str, Any]], Awaitable[Any]]
HANDLERS: dict[str, Handler] = {}


def action(name: str) -> Callable[[Handler], Handler]:
    if name not in ACTIONS:
        raise KeyError(f"{name} is not declared in vmsres.protocol.spec")

    def register(handler: Handler) -> Handler:
        HANDLERS[name] = handler
        return handler

    return register


def load_handlers() -> dict[str, Handler]:
    from vmsres.server.actions import audio, resources  # noqa: F401  (they register their handlers)

    return HANDLERS
