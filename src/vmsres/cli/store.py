"""The store commands: admin operations on a store or through a server's admin API, gc, renditions.

Also what every command working on a store shares: settings from the command line, refusing a
store that does not exist, and one line on stderr (exit 1) for a failure it can name.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import sqlalchemy as sa

from vmsres.cli.arguments import STORE_LOCATION, CommandFailed
from vmsres.client.cli import ENDPOINT_ENV
from vmsres.client.output import format_table, iso_time, label
from vmsres.protocol.records import ResourceType
from vmsres.server import backends
from vmsres.server.admin.operations import BY_NAME, AdminOperation, In, call_keywords, os_user
from vmsres.server.admin.remote import RemoteError, RemoteOps
from vmsres.server.admin.tokens import ADMIN_TOKEN_ENV
from vmsres.server.audio import FFMPEG_ENV
from vmsres.server.masterkey import MasterKeyError
from vmsres.server.service.admin import ADMIN_ERRORS, AdminOps
from vmsres.server.service.events import Actor
from vmsres.server.service.services import Services, open_services
from vmsres.server.settings import Settings
from vmsres.server.store import migrate
from vmsres.server.store.database import sqlite_path


def settings_from(args: argparse.Namespace) -> Settings:
    return Settings(
        data_dir=args.data_dir,
        database_url=args.database_url,
        blob_url=args.blob_url,
        s3_endpoint_url=args.s3_endpoint_url,
        master_key_file=args.master_key_file,
    )


def require_store(settings: Settings, create: bool) -> None:
    """Refuse a store that does not exist (a wrong folder or URL) unless asked to make one."""
    backends.check(settings)
    url = settings.resolved_database_url()
    if create or migrate.store_revision(url) is not None:
        return
    where = sqlite_path(url) if url.startswith("sqlite:///") else sa.make_url(url).render_as_string()
    raise CommandFailed(
        f"no vmsres store at {where} (check --data-dir / --database-url; "
        "`vmsres serve` or --create makes one)"
    )


def _open(args: argparse.Namespace) -> Services:
    settings = settings_from(args)
    require_store(settings, args.create)
    if settings.database_url is None:
        settings.ensure_data_dir()
    return open_services(settings)


def print_result(args: argparse.Namespace, data: Any, human: str) -> None:
    if getattr(args, "json", False):
        print(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
    else:
        print(human)


# --- what the store commands print ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Shown:
    """What a command prints: ``data`` with --json (None: nothing), else ``human``."""

    data: Any
    human: str
    failure: str | None = None  # printed to stderr; the command exits 1


Show = Callable[[Any, Mapping[str, Any]], "str | Shown"]


def _columns(*pairs: tuple[str, Callable[[dict[str, Any]], object]]) -> Show:
    def show(data: Any, _: Mapping[str, Any]) -> str:
        return format_table([[cell(d) for _, cell in pairs] for d in data], [title for title, _ in pairs])

    return show


def _secret(data: Any, _: Mapping[str, Any]) -> str:
    return f"AccessKey: {data['AccessKey']}\nSecretKey: {data['SecretKey']}"


def _webhook(data: Any, given: Mapping[str, Any]) -> str:
    if data["Url"]:
        return f"Url: {data['Url']}\nSecret: {data['Secret']}"
    return f"webhook of {given['name']} removed"


def _decisions(data: Any, given: Mapping[str, Any]) -> Shown:
    done = [{"ResourceKey": r["ResourceKey"], "State": r["State"]} for r in data if r["Ok"]]
    failed = [r for r in data if not r["Ok"]]
    return Shown(
        # One key prints one object, as before bulk review existed.
        (done[0] if len(given["resource_keys"]) == 1 else done) if done else None,
        "\n".join(f"{d['ResourceKey']}: State {d['State']}" for d in done),
        "; ".join(f"{r['ResourceKey']}: {r['Error']}" for r in failed) or None,
    )


def _queue_page(data: Any, _: Mapping[str, Any]) -> str:
    first, last = data["Offset"] + 1, data["Offset"] + len(data["Items"])
    shown = f"{first}-{last}" if data["Items"] else "none"
    accounts = ", ".join(f"{c['Account']} {c['Count']}" for c in data["ByAccount"]) or "-"
    types = ", ".join(f"{label(ResourceType, c['Type'])} {c['Count']}" for c in data["ByType"]) or "-"
    table = _columns(
        ("RESOURCE KEY", lambda d: d["ResourceKey"]),
        ("ACCOUNT", lambda d: d["Account"]),
        ("TYPE", lambda d: label(ResourceType, d["Type"])),
        ("SUBMITTED", lambda d: d["CreateTime"]),
        ("NAME", lambda d: d["Name"]),
    )(data["Items"], {})
    return (
        f"{data['Total']} waiting match (showing {shown}, sort {data['Sort']}); "
        f"whole queue {data['QueueTotal']}: by account {accounts}; by type {types}\n{table}"
    )


def _operator_token(data: Any, _: Mapping[str, Any]) -> str:
    return f"Operator: {data['Name']} ({data['Role']})\nToken: {data['Token']}"


def _limits(data: Any, _: Mapping[str, Any]) -> str:
    return "\n".join(f"{k}: {'server default' if v is None else v}" for k, v in data.items())


# By operation name: every operation of the table with a CLI command has one.
SHOW: dict[str, Show] = {
    "create_account": lambda d, _: f"created account {d['Name']}",
    "list_accounts": _columns(
        ("NAME", lambda d: d["Name"]),
        ("ENABLED", lambda d: d["Enabled"]),
        ("REVIEW", lambda d: d["ReviewPolicy"] or "-"),
    ),
    "set_review_policy": lambda d, _: f"{d['Name']}: review {d['ReviewPolicy'] or 'server default'}",
    "set_webhook": _webhook,
    "reset_account": lambda d, given: f"deleted {len(d['DeletedResourceKeys'])} resources of {given['name']}",
    "create_key": _secret,
    "list_keys": _columns(
        ("ACCESS KEY", lambda d: d["AccessKey"]),
        ("ACCOUNT", lambda d: d["Account"]),
        ("ENABLED", lambda d: d["Enabled"]),
    ),
    "disable_key": lambda _, given: f"disabled {given['access_key']}",
    "enable_key": lambda _, given: f"enabled {given['access_key']}",
    "delete_key": lambda _, given: f"deleted {given['access_key']}",
    "rotate_key": _secret,
    "approve": _decisions,
    "reject": _decisions,
    "review_queue": _columns(
        ("RESOURCE KEY", lambda d: d["ResourceKey"]),
        ("ACCOUNT", lambda d: d["Account"]),
        ("TYPE", lambda d: label(ResourceType, d["Type"])),
        ("NAME", lambda d: d["Name"]),
    ),
    "review_queue_page": _queue_page,
    "force_state": lambda d, _: f"{d['ResourceKey']}: State {d['State']}",
    "audit": _columns(
        ("ID", lambda d: d["Id"]),
        ("ACTOR", lambda d: d["Actor"]),
        ("ACCOUNT", lambda d: d["Account"] or "-"),
        ("ACTION", lambda d: d["Action"]),
        ("RESOURCE", lambda d: d["ResourceKey"] or "-"),
        ("OUTCOME", lambda d: d["Outcome"]),
    ),
    "deliveries": _columns(
        ("ID", lambda d: d["Id"]),
        ("EVENT", lambda d: d["EventType"]),
        ("ACCOUNT", lambda d: d["Account"]),
        ("STATE", lambda d: d["State"]),
        ("ATTEMPTS", lambda d: d["Attempts"]),
        ("LAST ERROR", lambda d: d["LastError"] or "-"),
    ),
    "get_limits": _limits,
    "set_limits": _limits,
    "lease": lambda d, given: f"{given['resource_key']}: in use until {iso_time(d['ExpiresAt'])}",
    "release": lambda d, given: (
        f"{given['resource_key']}: {'released' if d['Released'] else 'was not leased'}"
    ),
    "leases": _columns(
        ("RESOURCE KEY", lambda d: d["ResourceKey"]),
        ("ACCOUNT", lambda d: d["Account"]),
        ("HOLDER", lambda d: d["Holder"]),
        ("EXPIRES AT", lambda d: iso_time(d["ExpiresAt"])),
    ),
    "load_fixtures": lambda d, _: f"loaded {len(d['LoadedResourceKeys'])} resources",
    "create_operator": _operator_token,
    "list_operators": _columns(
        ("NAME", lambda d: d["Name"]),
        ("ROLE", lambda d: d["Role"]),
        ("ENABLED", lambda d: d["Enabled"]),
    ),
    "disable_operator": lambda d, _: f"disabled operator {d['Name']}",
    "enable_operator": lambda d, _: f"enabled operator {d['Name']}",
    "rotate_operator": _operator_token,
    "delete_operator": lambda d, _: f"deleted operator {d['Name']}",
}


def _given(operation: AdminOperation, args: argparse.Namespace) -> dict[str, Any]:
    """The AdminOps keywords from the command line."""
    given: dict[str, Any] = {}
    fields: dict[str, Any] = {}
    for param in operation.params:
        if param.cli is None:
            continue
        value = getattr(args, param.keyword)
        if value is not None and param.cli.convert is not None:
            value = param.cli.convert(value)
        if param.where is In.BODY and operation.body == "partial":
            if getattr(args, param.keyword) is not None:
                fields[param.name] = value
        elif param.where is In.BODY and operation.body == "raw":
            given[operation.body_arg or param.keyword] = value
        else:
            given[param.keyword] = value
    if operation.body == "partial" and operation.body_arg is not None:
        given[operation.body_arg] = fields
    return given


Ops = AdminOps | RemoteOps


async def _run_operation(args: argparse.Namespace, ops: Ops) -> None:
    operation = BY_NAME[args.operation]
    cli = operation.cli
    assert cli is not None
    given = _given(operation, args)
    runs = BY_NAME[cli.pick(given)] if cli.pick is not None else operation
    if isinstance(ops, RemoteOps):
        data = await ops.call(runs, given)
    else:
        data = await getattr(ops, runs.call)(**call_keywords(runs, given))
    shown = SHOW[operation.name](data, given)
    if isinstance(shown, str):
        shown = Shown(data, shown)
    if shown.data is not None:
        print_result(args, shown.data, shown.human)
    if shown.failure is not None:
        raise CommandFailed(shown.failure)


async def _gc(args: argparse.Namespace, ops: Ops) -> None:
    if not isinstance(ops, AdminOps):
        raise CommandFailed("gc works on a store (--data-dir / --database-url), not through --endpoint")
    report = vars(await ops.services.ingest.collect_garbage())
    print_result(args, report, ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in report.items()))


async def _renditions(args: argparse.Namespace, ops: Ops) -> None:
    if not isinstance(ops, AdminOps):
        raise CommandFailed(
            "renditions rebuild works on a store (--data-dir / --database-url), not through --endpoint"
        )
    report = await ops.services.ingest.make_pending_renditions()
    if report.ffmpeg_missing:
        raise CommandFailed(
            f"ffmpeg not found (on PATH, or as {FFMPEG_ENV} names it): "
            f"telephony renditions still pending: {report.pending}"
        )
    done = {k: v for k, v in vars(report).items() if k != "ffmpeg_missing"}
    print_result(args, done, ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in done.items()))
    if report.storage_errors:
        raise CommandFailed(
            f"{report.storage_errors} renditions wait still: their audio could not be read or the "
            "rendition not stored; run it again"
        )


# Store commands that are not admin operations: they work on a store only.
_STORE_ONLY: dict[str, Callable[[argparse.Namespace, Ops], Awaitable[None]]] = {
    "gc": _gc,
    "renditions": _renditions,
}


def _command_of(args: argparse.Namespace) -> Callable[[argparse.Namespace, Ops], Awaitable[None]]:
    return _STORE_ONLY.get(args.command, _run_operation)


async def _run_store_command(args: argparse.Namespace) -> None:
    endpoint, admin_token = getattr(args, "endpoint", None), getattr(args, "admin_token", None)
    if endpoint:
        if args.create:
            raise CommandFailed("--create works on a store, not through --endpoint")
        ignored = [option for option in STORE_LOCATION if option in args.given]
        if ignored:
            raise CommandFailed(
                f"--endpoint (or {ENDPOINT_ENV}) works on that server's own store: drop {', '.join(ignored)}"
            )
        if not admin_token:
            raise CommandFailed(f"--endpoint needs --admin-token (or {ADMIN_TOKEN_ENV})")
        remote = RemoteOps(endpoint, admin_token)
        try:
            await _command_of(args)(args, remote)
        finally:
            await remote.close()
        return
    if "--admin-token" in args.given:
        raise CommandFailed("--admin-token goes with --endpoint; a store needs none")
    services = _open(args)
    try:
        await _command_of(args)(args, AdminOps(services, Actor("cli", name=os_user())))
    finally:
        await services.close()


# What a store command may fail with: one line on stderr, exit 1, no traceback.
FAILURES: tuple[type[Exception], ...] = (
    *ADMIN_ERRORS,
    RemoteError,
    CommandFailed,
    MasterKeyError,
    backends.UnusableSettings,
    backends.MissingExtra,
    migrate.DatabaseUnreachable,
    sa.exc.SQLAlchemyError,
    httpx.HTTPError,
    OSError,
)


def describe_failure(error: Exception) -> str:
    # SQLAlchemy's message carries the SQL and a link to its docs; the driver's own says enough.
    text = str(error)
    if isinstance(error, sa.exc.DBAPIError) and error.orig is not None:
        text = f"database: {error.orig}"
    elif isinstance(error, migrate.DatabaseUnreachable):
        text = f"database: {error}"
    elif isinstance(error, httpx.UnsupportedProtocol):
        text = f"--endpoint (or {ENDPOINT_ENV}) is a URL starting http:// or https://"
    elif isinstance(error, httpx.TransportError):
        text = f"cannot reach {_request_url(error)}: {text or type(error).__name__}"
    # Drivers add hints on further lines; the report stays one line.
    return " ".join(text.split())


def _request_url(error: httpx.TransportError) -> str:
    try:
        return str(error.request.url.copy_with(path="/", query=None)).rstrip("/")
    except RuntimeError:  # httpx raised it before a request was made
        return "the server"


def fail(error: Exception) -> int:
    print(f"vmsres: {describe_failure(error)}", file=sys.stderr)
    return 1


def run_store_command(args: argparse.Namespace) -> int:
    """Run a parsed store command (vmsres.cli parses the command line)."""
    try:
        asyncio.run(_run_store_command(args))
    except FAILURES as error:
        return fail(error)
    return 0
