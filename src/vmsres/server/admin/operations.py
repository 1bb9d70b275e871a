"""Every admin operation, declared once.

One entry per operation says what service.admin.AdminOps method runs it, its HTTP method and
path, its parameters (where they travel, their types and bounds), the error statuses it can
answer and, when it has one, its ``vmsres`` CLI command (what it prints is vmsres/cli/store.py's
part). From this table come the FastAPI routes and their OpenAPI document (admin/app.py), the
remote client (admin/remote.py), the CLI subcommands (vmsres/cli/arguments.py) and the endpoint
table of docs/admin.md (tools/docgen.py).

Nothing here imports FastAPI: the CLI and the remote client read the table without it.
"""

from __future__ import annotations

import getpass
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import orjson

from vmsres.protocol.records import RESOURCE, Field, ResourceState, ResourceType, Shape, listing, wire_values
from vmsres.server.settings import REVIEW_POLICIES

PREFIX = "/admin/v1"
REQUIRED: Any = object()

# Every route can answer 401; an operation's ``errors`` lists what else it can answer.
UNAUTHORIZED = 401
# An admin-only route answers 403 to a reviewer's token.
FORBIDDEN = 403
# Every route answers 429 to an address or token with too many wrong tokens (service/logins.py).
THROTTLED = 429
# What each error status means (the OpenAPI response descriptions).
ERROR_STATUSES = {
    400: "The request cannot be done; `detail` says why.",
    401: "The admin token is missing or wrong.",
    403: "The token is a reviewer's: only admins may do this.",
    404: "The account, key or resource named does not exist.",
    409: "The name or key is taken already.",
    429: "Too many wrong tokens from this address or with this token; retry after `Retry-After` seconds.",
    503: "The database (or Redis) cannot be reached right now; retry after `Retry-After` seconds.",
    507: "The server's storage is full; nothing was changed.",
}
# Every route reads the database, so every route can meet its outage (docs/reliability.md); every
# route that may write can meet a full disk; every route with a body can be sent one that is not
# UTF-8, which FastAPI refuses with 400 before any validation.
OUTAGE = 503
STORAGE_FULL = 507
UNREADABLE_BODY = 400


class In(StrEnum):
    PATH = "path"
    QUERY = "query"
    BODY = "body"


class CliInputError(ValueError):
    """A command-line value the operation cannot take."""


@dataclass(frozen=True, slots=True)
class CliArg:
    """How a parameter appears on the command line: ``flag`` "--x", or positional when None."""

    flag: str | None = None
    help: str | None = None
    metavar: str | None = None
    nargs: str | None = None
    required: bool = False
    # A callable is called when the parser is built (an environment default).
    default: Any = None
    choices: tuple[Any, ...] | None = None
    type: Callable[[str], Any] | None = None
    # Applied to a given value before the call ("default" -> None, a file -> its JSON).
    convert: Callable[[Any], Any] | None = None
    # A flag that takes no value: present means True.
    switch: bool = False


@dataclass(frozen=True, slots=True)
class Param:
    name: str  # as the API spells it: a path or query name, or a JSON field
    annotation: Any  # the Python type FastAPI and pydantic check it against
    where: In
    default: Any = REQUIRED
    doc: str = ""
    bounds: Mapping[str, Any] = field(default_factory=dict)  # pydantic Field/Query keywords
    arg: str | None = None  # AdminOps keyword, when not the snake_case of name
    cli: CliArg | None = None

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def keyword(self) -> str:
        return self.arg or re.sub(r"(?<!^)(?=[A-Z])", "_", self.name).lower()


@dataclass(frozen=True, slots=True)
class Cli:
    command: str
    subcommand: str | None
    help: str
    # The operation that really runs, from the given keywords (one command, two routes).
    pick: Callable[[Mapping[str, Any]], str] | None = None


# What was measured of an audio resource (service.admin.audio_facts_view; docs/audio.md).
AUDIO_FACTS = Shape(
    "AudioFacts",
    "What the server measured of a resource's audio when it was stored.",
    (
        Field("Codec", "str", "the audio codec (ffmpeg's name: mp3, pcm_s16le, ...)"),
        Field("SampleRate", "int", "samples per second, Hz"),
        Field("Channels", "int", "1 mono, 2 stereo"),
        Field("SizeBytes", "int", "size of the original file"),
        Field("DurationMs", "int", "duration measured from the samples, milliseconds"),
        Field("PeakDbfs", "float", "highest sample level, dBFS (-200 for digital silence)"),
        Field(
            "LoudnessLufs", "float", "integrated loudness (EBU R128), LUFS; needs ffmpeg and 0.4 s of audio"
        ),
        Field("TruePeakDbtp", "float", "true peak (EBU R128), dBTP; needs ffmpeg, audio up to 2 minutes"),
        Field("SilenceShare", "float", "fraction of the duration that is silence, 0 to 1"),
        Field("LevelsPending", "bool", "the levels wait for ffmpeg (loudness is still to come)"),
    ),
)


# What the resource operations answer (service.admin.admin_resource_view): the wire record,
# declared in the protocol, with the account that holds it and where its review stands. The
# OpenAPI document's schema of those answers is made from it.
ADMIN_RESOURCE = Shape(
    "AdminResource",
    "A resource of any account, as the admin API shows it.",
    (
        *RESOURCE.fields,
        Field("Account", "str", "the account that holds it"),
        Field(
            "ReviewedBy",
            "str",
            'who decided it (`reviewer:NAME`, `auto:RULE`, `forced:admin`, `fixture`), `""` while undecided',
        ),
        Field("ReviewedAt", "int", "when it was decided, epoch seconds; null while undecided"),
        *AUDIO_FACTS.fields,
    ),
)
# Fields of ADMIN_RESOURCE that may be null: the audio facts are null for TTS templates, and a
# level the server could not measure (docs/audio.md) is null too.
ADMIN_RESOURCE_NULLABLE = frozenset({"ReviewedAt", *AUDIO_FACTS.by_name})


BodyKind = Literal["fields", "partial", "raw"]


@dataclass(frozen=True, slots=True)
class AdminOperation:
    name: str  # also the OpenAPI operationId
    method: str
    path: str  # below PREFIX
    tag: str
    summary: str
    call: str  # the AdminOps method
    result: type = dict
    # The answer, or each item of a list answer, is an ADMIN_RESOURCE.
    answers_resources: bool = False
    params: tuple[Param, ...] = ()
    # "fields": each body field is a keyword of the method; "partial": the fields sent, as one
    # dict (a field left out stays as it is); "raw": the JSON body itself, unchecked here.
    body: BodyKind = "fields"
    body_model: str | None = None
    body_arg: str | None = None
    fixed: Mapping[str, Any] = field(default_factory=dict)  # further keywords of the method
    status: int = 200
    errors: tuple[int, ...] = ()  # beyond 401, and 422 for a request that fails the schema
    description: str = ""
    cli: Cli | None = None
    # The least role whose operators may call it: "reviewer" (the review queue, decisions,
    # resource lookup, audit reading) or "admin" (everything). The admin token may call all.
    role: Literal["reviewer", "admin"] = "admin"

    def params_in(self, where: In) -> tuple[Param, ...]:
        return tuple(p for p in self.params if p.where is where)

    @property
    def statuses(self) -> tuple[int, ...]:
        refusals = {UNAUTHORIZED, THROTTLED, FORBIDDEN} if self.role == "admin" else {UNAUTHORIZED, THROTTLED}
        faults = {OUTAGE} if self.method == "GET" else {OUTAGE, STORAGE_FULL}
        unreadable = {UNREADABLE_BODY} if self.params_in(In.BODY) else set()
        return tuple(sorted({*self.errors, *refusals, *faults, *unreadable}))


# --- CLI input ------------------------------------------------------------------------------


def _server_default(text: str) -> str | None:
    return None if text == "default" else text


# The store keeps counts and sizes as signed 64-bit integers (BIGINT); more overflows there.
_MAX_STORED_INT = 2**63 - 1


def _count_or_default(text: str) -> int | None:
    if text == "default":
        return None
    try:
        count = int(text)
    except ValueError:
        count = None
    if count is None or not -1 <= count <= _MAX_STORED_INT:
        raise CliInputError(f"not a count: {text!r}")
    return count


def _json_file(path: str) -> Any:
    return orjson.loads(Path(path).read_bytes())


def os_user() -> str:
    """Who runs the command, as the audit trail's ``cli:<user>`` names them.

    getpass looks at LOGNAME, USER, LNAME and USERNAME, then the password database; a container
    may have none of those for its uid, which is then named by number.
    """
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return f"uid{os.getuid()}"


# --- parameters used by several operations ---------------------------------------------------

_ACCOUNT_PATH = Param("name", str, In.PATH, doc="account name", cli=CliArg())
_KEY_PATH = Param("access_key", str, In.PATH, doc="AccessKey", cli=CliArg())
_RESOURCE_PATH = Param("resource_key", str, In.PATH, doc="ResourceKey", cli=CliArg())
_OPERATOR_PATH = Param("name", str, In.PATH, doc="operator name", cli=CliArg())
_NAME_BOUNDS = {"max_length": 128}
_ACCOUNT_QUERY = Param(
    "account", str | None, In.QUERY, None, "only this account", _NAME_BOUNDS, cli=CliArg("--account")
)


def _wire_bounds(members: type[ResourceType] | type[ResourceState]) -> dict[str, Any]:
    values = wire_values(members)
    return {"ge": min(values), "le": max(values)}


_TYPE_QUERY = Param(
    "type",
    int | None,
    In.QUERY,
    None,
    listing(ResourceType, text="label"),
    _wire_bounds(ResourceType),
    arg="type_",
    cli=CliArg("--type", type=int, choices=wire_values(ResourceType)),
)
_STATE_QUERY = Param(
    "state",
    int | None,
    In.QUERY,
    None,
    listing(ResourceState, text="label"),
    _wire_bounds(ResourceState),
)
_LIMIT_QUERY = Param(
    "limit",
    int,
    In.QUERY,
    100,
    "at most this many",
    {"ge": 1, "le": 1000},
    cli=CliArg("--limit", type=int, default=100),
)
_RESOURCE_KEYS = Param(
    "ResourceKeys",
    list[str],
    In.BODY,
    bounds={"min_length": 1, "max_length": 1000},
    cli=CliArg(metavar="resource_key", nargs="+"),
)
_REVIEWER = Param(
    "Reviewer",
    str,
    In.BODY,
    "admin",
    bounds={"min_length": 1, "max_length": 64},
    cli=CliArg("--reviewer", "who decided (default: your OS user)", default=os_user),
)
_FORCE = Param(
    "Force",
    bool,
    In.BODY,
    False,
    "re-decide resources already decided (the audit says forced)",
    cli=CliArg("--force", "re-decide resources already decided (audited as forced)", switch=True),
)
_RATE = '"N/s[:burst]", N/m, N/h or "off"'
_RATE_CLI = "N/s[:burst], N/m, N/h, off or default"


OPERATIONS: tuple[AdminOperation, ...] = (
    # --- accounts ---------------------------------------------------------------------------
    AdminOperation(
        "create_account",
        "POST",
        "/accounts",
        "accounts",
        "create an account",
        "create_account",
        params=(
            Param("Name", str, In.BODY, bounds={"max_length": 64}, cli=CliArg()),
            Param(
                "ReviewPolicy",
                str | None,
                In.BODY,
                None,
                "auto, manual or auto-then-manual",
                cli=CliArg("--review-policy", choices=REVIEW_POLICIES),
            ),
        ),
        body_model="AccountCreate",
        status=201,
        errors=(400, 409),
        cli=Cli("accounts", "create", "create an account"),
    ),
    AdminOperation(
        "list_accounts",
        "GET",
        "/accounts",
        "accounts",
        "list accounts",
        "list_accounts",
        result=list,
        cli=Cli("accounts", "list", "list accounts"),
    ),
    AdminOperation(
        "set_review_policy",
        "PUT",
        "/accounts/{name}/review-policy",
        "accounts",
        "set an account's review policy",
        "set_review_policy",
        params=(
            _ACCOUNT_PATH,
            Param(
                "ReviewPolicy",
                str | None,
                In.BODY,
                doc="null: the server's --review applies",
                arg="policy",
                cli=CliArg(choices=(*REVIEW_POLICIES, "default"), convert=_server_default),
            ),
        ),
        body_model="PolicyUpdate",
        errors=(400, 404),
        cli=Cli("accounts", "set-policy", "set an account's review policy ('default': the server's)"),
    ),
    AdminOperation(
        "set_webhook",
        "PUT",
        "/accounts/{name}/webhook",
        "webhooks",
        "set an account's webhook",
        "set_webhook",
        params=(
            _ACCOUNT_PATH,
            Param(
                "Url",
                str,
                In.BODY,
                bounds={"max_length": 2048},
                cli=CliArg("--url", "absent: remove the webhook"),
            ),
            Param(
                "Secret",
                str | None,
                In.BODY,
                None,
                "generated when absent",
                {"max_length": 256},
                cli=CliArg("--secret", "absent: one is generated"),
            ),
        ),
        body_model="WebhookUpdate",
        errors=(400, 404),
        description="The secret is in this response only (generated when the request has none).",
        cli=Cli(
            "accounts",
            "set-webhook",
            "set an account's webhook URL (prints the secret once)",
            pick=lambda given: "set_webhook" if given.get("url") else "delete_webhook",
        ),
    ),
    AdminOperation(
        "get_webhook",
        "GET",
        "/accounts/{name}/webhook",
        "webhooks",
        "an account's webhook URL (never its secret)",
        "get_webhook",
        params=(_ACCOUNT_PATH,),
        errors=(404,),
    ),
    AdminOperation(
        "delete_webhook",
        "DELETE",
        "/accounts/{name}/webhook",
        "webhooks",
        "remove an account's webhook",
        "set_webhook",
        params=(_ACCOUNT_PATH,),
        fixed={"url": None},
        errors=(404,),
    ),
    AdminOperation(
        "reset_account",
        "POST",
        "/accounts/{name}/reset",
        "test controls",
        "test control: delete every resource of an account",
        "reset_account",
        params=(_ACCOUNT_PATH,),
        errors=(404,),
        description="Keys, review policy and webhook stay.",
        cli=Cli("accounts", "reset", "test control: delete every resource of an account"),
    ),
    # --- keys -------------------------------------------------------------------------------
    AdminOperation(
        "create_key",
        "POST",
        "/keys",
        "keys",
        "create a key",
        "create_key",
        params=(
            Param("Account", str, In.BODY, bounds={"max_length": 64}, cli=CliArg("--account", required=True)),
        ),
        body_model="KeyCreate",
        status=201,
        errors=(404,),
        description="The SecretKey is in this response only.",
        cli=Cli("keys", "create", "create a key (prints AccessKey and SecretKey)"),
    ),
    AdminOperation(
        "list_keys",
        "GET",
        "/keys",
        "keys",
        "list keys (never their secrets)",
        "list_keys",
        result=list,
        params=(_ACCOUNT_QUERY,),
        errors=(404,),
        cli=Cli("keys", "list", "list keys (never their secrets)"),
    ),
    AdminOperation(
        "disable_key",
        "POST",
        "/keys/{access_key}/disable",
        "keys",
        "disable a key",
        "set_key_enabled",
        params=(_KEY_PATH,),
        fixed={"enabled": False},
        errors=(404,),
        cli=Cli("keys", "disable", "disable a key"),
    ),
    AdminOperation(
        "enable_key",
        "POST",
        "/keys/{access_key}/enable",
        "keys",
        "enable a key",
        "set_key_enabled",
        params=(_KEY_PATH,),
        fixed={"enabled": True},
        errors=(404,),
        cli=Cli("keys", "enable", "enable a key"),
    ),
    AdminOperation(
        "delete_key",
        "DELETE",
        "/keys/{access_key}",
        "keys",
        "delete a key",
        "delete_key",
        params=(_KEY_PATH,),
        errors=(404,),
        cli=Cli("keys", "delete", "delete a key"),
    ),
    AdminOperation(
        "rotate_key",
        "POST",
        "/keys/{access_key}/rotate",
        "keys",
        "give a key a new SecretKey",
        "rotate_key",
        params=(_KEY_PATH,),
        errors=(404,),
        description="The new SecretKey is in this response only; the old one stops working at once.",
        cli=Cli("keys", "rotate", "give a key a new SecretKey (printed once)"),
    ),
    # --- review -----------------------------------------------------------------------------
    AdminOperation(
        "approve",
        "POST",
        "/review/approve",
        "review",
        "approve resources (State 1)",
        "review",
        result=list,
        params=(_RESOURCE_KEYS, _REVIEWER, _FORCE),
        body_model="Approve",
        fixed={"approve": True, "reason": None},
        description=(
            "Resources under review only: one result per key; an already decided one answers Ok "
            "false with its State, ReviewedBy and ReviewedAt unless Force is true."
        ),
        cli=Cli("review", "approve", "approve resources (State 1)"),
        role="reviewer",
    ),
    AdminOperation(
        "reject",
        "POST",
        "/review/reject",
        "review",
        "reject resources (State 2)",
        "review",
        result=list,
        params=(
            _RESOURCE_KEYS,
            Param(
                "Reason",
                str,
                In.BODY,
                bounds={"min_length": 1, "max_length": 2000},
                cli=CliArg("--reason", required=True),
            ),
            _REVIEWER,
            _FORCE,
        ),
        body_model="Reject",
        fixed={"approve": False},
        errors=(400,),
        description="The reason reaches the owner as RejectReason; one result per key.",
        cli=Cli("review", "reject", "reject resources (State 2)"),
        role="reviewer",
    ),
    AdminOperation(
        "review_queue",
        "GET",
        "/review/queue",
        "review",
        "resources waiting for review, oldest first",
        "review_queue",
        result=list,
        params=(_ACCOUNT_QUERY, _TYPE_QUERY, _LIMIT_QUERY),
        cli=Cli("review", "queue", "resources waiting for review, oldest first"),
        role="reviewer",
        answers_resources=True,
    ),
    AdminOperation(
        "review_queue_page",
        "GET",
        "/review/queue/page",
        "review",
        "a page of the review queue: exact total, filters, sort, counts per account and Type",
        "review_queue_page",
        params=(
            _ACCOUNT_QUERY,
            Param(
                "type",
                int | None,
                In.QUERY,
                None,
                listing(ResourceType, text="label"),
                arg="type_",
                cli=CliArg("--type", type=int),
            ),
            Param(
                "name",
                str | None,
                In.QUERY,
                None,
                "a case-insensitive substring of the Name",
                cli=CliArg("--name"),
            ),
            Param(
                "older_than",
                str | None,
                In.QUERY,
                None,
                "submitted at least this long ago: N with s, m, h or d (30m, 2h, 7d)",
                cli=CliArg("--older-than", metavar="AGE"),
            ),
            Param(
                "created_after",
                int | None,
                In.QUERY,
                None,
                "submitted at or after this time, epoch seconds",
                cli=CliArg("--created-after", type=int, metavar="EPOCH"),
            ),
            Param(
                "created_before",
                int | None,
                In.QUERY,
                None,
                "submitted at or before this time, epoch seconds",
                cli=CliArg("--created-before", type=int, metavar="EPOCH"),
            ),
            Param(
                "sort",
                str,
                In.QUERY,
                "oldest",
                "oldest (default), newest, name or account",
                cli=CliArg("--sort", default="oldest"),
            ),
            Param(
                "offset",
                int,
                In.QUERY,
                0,
                "skip this many (0 to 1000000)",
                cli=CliArg("--offset", type=int, default=0),
            ),
            Param(
                "limit",
                int,
                In.QUERY,
                50,
                "at most this many (1 to 1000)",
                cli=CliArg("--limit", type=int, default=50),
            ),
        ),
        errors=(400,),
        description=(
            "Resources under review (State 0). Total counts every resource matching the filters "
            "(not only this page); QueueTotal, ByAccount and ByType count the whole queue, whatever "
            "the filters. A value out of bounds (type, sort, offset, limit, older_than, a time out of "
            "range) answers 400 naming it."
        ),
        cli=Cli("review", "page", "a page of the review queue with its exact total and counts"),
        role="reviewer",
    ),
    AdminOperation(
        "force_state",
        "POST",
        "/resources/{resource_key}/force-state",
        "test controls",
        "test control: put a resource in any State",
        "force_state",
        params=(
            _RESOURCE_PATH,
            Param(
                "State",
                int,
                In.BODY,
                bounds=_wire_bounds(ResourceState),
                cli=CliArg("--state", type=int, choices=wire_values(ResourceState), required=True),
            ),
            Param("Reason", str | None, In.BODY, None, bounds={"max_length": 2000}, cli=CliArg("--reason")),
        ),
        body_model="ForceState",
        errors=(400, 404),
        cli=Cli("review", "force", "test control: put a resource in any State"),
        answers_resources=True,
    ),
    # --- resources --------------------------------------------------------------------------
    AdminOperation(
        "list_resources",
        "GET",
        "/resources",
        "resources",
        "resources of any account, newest first",
        "list_resources",
        result=list,
        params=(_ACCOUNT_QUERY, _TYPE_QUERY, _STATE_QUERY, _LIMIT_QUERY),
        role="reviewer",
        answers_resources=True,
    ),
    AdminOperation(
        "get_resource",
        "GET",
        "/resources/{resource_key}",
        "resources",
        "one resource, whichever account holds it",
        "get_resource",
        params=(_RESOURCE_PATH,),
        errors=(404,),
        role="reviewer",
        answers_resources=True,
    ),
    # --- trails -----------------------------------------------------------------------------
    AdminOperation(
        "audit",
        "GET",
        "/audit",
        "audit",
        "the audit trail, newest first",
        "audit",
        result=list,
        params=(
            _ACCOUNT_QUERY,
            Param(
                "resource_key",
                str | None,
                In.QUERY,
                None,
                "only this resource",
                _NAME_BOUNDS,
                cli=CliArg("--resource"),
            ),
            Param(
                "action", str | None, In.QUERY, None, "only this action", _NAME_BOUNDS, cli=CliArg("--action")
            ),
            _LIMIT_QUERY,
        ),
        cli=Cli("audit", None, "the audit trail, newest first"),
        role="reviewer",
    ),
    AdminOperation(
        "deliveries",
        "GET",
        "/webhook-deliveries",
        "webhooks",
        "webhook deliveries, newest first",
        "deliveries",
        result=list,
        params=(
            _ACCOUNT_QUERY,
            Param(
                "state",
                str | None,
                In.QUERY,
                None,
                "pending, delivered or failed",
                {"pattern": "^(pending|delivered|failed)$"},
                cli=CliArg("--state", choices=("pending", "delivered", "failed")),
            ),
            _LIMIT_QUERY,
        ),
        cli=Cli("deliveries", None, "webhook deliveries, newest first"),
    ),
    # --- limits and leases ------------------------------------------------------------------
    AdminOperation(
        "get_limits",
        "GET",
        "/accounts/{name}/limits",
        "limits",
        "an account's rate and quota overrides (null: the server default)",
        "get_limits",
        params=(_ACCOUNT_PATH,),
        errors=(404,),
        cli=Cli("limits", "show", "show an account's overrides (null: the server default)"),
    ),
    AdminOperation(
        "set_limits",
        "PUT",
        "/accounts/{name}/limits",
        "limits",
        "set an account's overrides",
        "set_limits",
        params=(
            _ACCOUNT_PATH,
            Param(
                "RatePerKey",
                str | None,
                In.BODY,
                None,
                _RATE,
                {"max_length": 32},
                cli=CliArg("--rate-per-key", _RATE_CLI, convert=_server_default),
            ),
            Param(
                "RatePerAccount",
                str | None,
                In.BODY,
                None,
                _RATE,
                {"max_length": 32},
                cli=CliArg("--rate-per-account", _RATE_CLI, convert=_server_default),
            ),
            Param(
                "MaxResources",
                int | None,
                In.BODY,
                None,
                "-1: unlimited",
                {"ge": -1, "le": _MAX_STORED_INT},
                cli=CliArg(
                    "--max-resources", "a count, -1 (unlimited) or default", convert=_count_or_default
                ),
            ),
            Param(
                "MaxStorageBytes",
                int | None,
                In.BODY,
                None,
                "-1: unlimited",
                {"ge": -1, "le": _MAX_STORED_INT},
                cli=CliArg(
                    "--max-storage-bytes", "bytes, -1 (unlimited) or default", convert=_count_or_default
                ),
            ),
        ),
        body="partial",
        body_model="LimitsUpdate",
        body_arg="limits",
        errors=(400, 404),
        description="A field left out stays as it is; null returns it to the server default.",
        cli=Cli("limits", "set", "set overrides; 'default' returns one to the server default"),
    ),
    AdminOperation(
        "lease",
        "POST",
        "/resources/{resource_key}/lease",
        "leases",
        "lease a resource as in use",
        "lease",
        params=(
            _RESOURCE_PATH,
            Param(
                "Seconds",
                int,
                In.BODY,
                bounds={"ge": 1, "le": 7 * 24 * 3600},
                cli=CliArg("--seconds", type=int, required=True),
            ),
            Param(
                "Holder",
                str,
                In.BODY,
                "dialer",
                bounds={"min_length": 1, "max_length": 128},
                cli=CliArg("--holder", default="dialer"),
            ),
        ),
        body_model="LeaseCreate",
        errors=(404,),
        description="Mark the resource in use until now + Seconds (a new lease replaces the old one).",
        cli=Cli("leases", "lease", "lease a resource as in use"),
    ),
    AdminOperation(
        "release",
        "DELETE",
        "/resources/{resource_key}/lease",
        "leases",
        "end a lease",
        "release",
        params=(_RESOURCE_PATH,),
        cli=Cli("leases", "release", "end a lease"),
    ),
    AdminOperation(
        "leases",
        "GET",
        "/leases",
        "leases",
        "leases that have not expired, soonest expiry first",
        "leases",
        result=list,
        params=(_ACCOUNT_QUERY, _LIMIT_QUERY),
        cli=Cli("leases", "list", "leases that have not expired"),
    ),
    # --- operators --------------------------------------------------------------------------
    AdminOperation(
        "create_operator",
        "POST",
        "/operators",
        "operators",
        "create an operator (prints their token once)",
        "create_operator",
        params=(
            Param("Name", str, In.BODY, bounds={"min_length": 1, "max_length": 64}, cli=CliArg()),
            Param(
                "Role",
                Literal["reviewer", "admin"],
                In.BODY,
                doc="reviewer: the review queue, decisions, resource lookup, audit reading; admin: everything",
                cli=CliArg("--role", choices=("reviewer", "admin"), required=True),
            ),
        ),
        body_model="CreateOperator",
        status=201,
        errors=(400, 409),
        description="The personal token is in this response only; the server keeps its sha256.",
        cli=Cli("operators", "create", "create an operator (prints their personal token once)"),
    ),
    AdminOperation(
        "list_operators",
        "GET",
        "/operators",
        "operators",
        "list operators (never their tokens)",
        "list_operators",
        result=list,
        cli=Cli("operators", "list", "list operators (never their tokens)"),
    ),
    AdminOperation(
        "disable_operator",
        "POST",
        "/operators/{name}/disable",
        "operators",
        "disable an operator",
        "set_operator_enabled",
        params=(_OPERATOR_PATH,),
        fixed={"enabled": False},
        errors=(404,),
        description="Their token and console sessions stop working at once.",
        cli=Cli("operators", "disable", "disable an operator (their sessions end at once)"),
    ),
    AdminOperation(
        "enable_operator",
        "POST",
        "/operators/{name}/enable",
        "operators",
        "enable an operator",
        "set_operator_enabled",
        params=(_OPERATOR_PATH,),
        fixed={"enabled": True},
        errors=(404,),
        cli=Cli("operators", "enable", "enable an operator"),
    ),
    AdminOperation(
        "rotate_operator",
        "POST",
        "/operators/{name}/rotate",
        "operators",
        "give an operator a new token",
        "rotate_operator",
        params=(_OPERATOR_PATH,),
        errors=(404,),
        description="The new token is in this response only; the old one and its sessions stop working at once.",
        cli=Cli("operators", "rotate", "give an operator a new token (printed once)"),
    ),
    AdminOperation(
        "delete_operator",
        "DELETE",
        "/operators/{name}",
        "operators",
        "delete an operator",
        "delete_operator",
        params=(_OPERATOR_PATH,),
        errors=(404,),
        cli=Cli("operators", "delete", "delete an operator"),
    ),
    # --- fixtures ---------------------------------------------------------------------------
    AdminOperation(
        "load_fixtures",
        "POST",
        "/fixtures",
        "test controls",
        "test control: load fixtures",
        "load_fixtures",
        params=(
            Param(
                "Fixtures",
                dict[str, Any] | list[dict[str, Any]],
                In.BODY,
                doc="the fixtures format of `serve --fixtures` (docs/admin.md)",
                arg="data",
                cli=CliArg(metavar="file", convert=_json_file),
            ),
        ),
        body="raw",
        body_arg="data",
        errors=(400,),
        description="The body is the fixtures format of `serve --fixtures` (docs/admin.md).",
        cli=Cli("fixtures", "load", "load a JSON fixtures file"),
    ),
)

BY_NAME = {operation.name: operation for operation in OPERATIONS}
# Help of the CLI commands that group several operations.
CLI_GROUPS = {
    "accounts": "manage accounts",
    "keys": "manage access keys",
    "review": "decide reviews",
    "limits": "per-account rates and quotas",
    "leases": "mark resources in use for a dialer",
    "fixtures": "test fixtures",
    "operators": "people of the console and the admin API, with a role and a personal token",
}


def call_keywords(operation: AdminOperation, given: Mapping[str, Any]) -> dict[str, Any]:
    """The AdminOps keywords of one call: ``fixed`` and those of ``given`` the operation takes."""
    taken = {p.keyword for p in operation.params if operation.body == "fields" or p.where is not In.BODY}
    if operation.body_arg is not None:
        taken.add(operation.body_arg)
    return {**{k: v for k, v in given.items() if k in taken}, **operation.fixed}
