"""The ``vmsres`` command: run the server and manage accounts, keys and reviews on a store."""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
import tarfile
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import sqlalchemy as sa

from vmsres.client.output import format_table, iso_time, label
from vmsres.ops.backup import BackupError, backup, restore
from vmsres.ops.rotation import rotate_master_key
from vmsres.protocol.records import ResourceType
from vmsres.server import backends
from vmsres.server.admin.operations import (
    BY_NAME,
    CLI_GROUPS,
    OPERATIONS,
    AdminOperation,
    CliArg,
    In,
    call_keywords,
    os_user,
)
from vmsres.server.admin.remote import RemoteError, RemoteOps
from vmsres.server.admin.tokens import ADMIN_TOKEN_ENV, admin_token_digest
from vmsres.server.audio import FFMPEG_ENV
from vmsres.server.blobs import BlobStorageError
from vmsres.server.masterkey import MASTER_KEY_ENV, MasterKeyError
from vmsres.server.service.admin import ADMIN_ERRORS, AdminOps
from vmsres.server.service.events import Actor
from vmsres.server.service.limits import LimitError, parse_rate
from vmsres.server.service.review import ReviewRules, load_rules_file, load_word_list
from vmsres.server.service.services import Services, open_services
from vmsres.server.settings import REVIEW_POLICIES, Settings
from vmsres.server.store import migrate
from vmsres.server.store.database import sqlite_path

DATABASE_URL_ENV = "VMSRES_DATABASE_URL"
ENDPOINT_ENV = "VMSRES_ENDPOINT"
ENV_PREFIX = "VMSRES_"


@dataclass(frozen=True)
class BadEnvironmentValue:
    """An option's default from an environment variable that does not parse; reported only if used."""

    env: str
    value: str
    reason: str


def env_name(action: argparse.Action) -> str:
    return ENV_PREFIX + action.dest.upper()


def _env_value(action: argparse.Action, raw: str) -> object:
    convert: Callable[[str], object] = action.type if callable(action.type) else str
    if isinstance(action, argparse._AppendAction):
        return [convert(item.strip()) for item in raw.split(",") if item.strip()]
    try:
        value = convert(raw)
    except ValueError:
        raise ValueError(f"not a valid {getattr(convert, '__name__', 'value')}") from None
    if action.choices is not None and value not in action.choices:
        raise ValueError(f"not one of {', '.join(map(str, action.choices))}")
    return value


class _ReplaceDefaultList(argparse._AppendAction):
    """A repeatable option whose command-line values replace its environment default, not extend it."""

    def __call__(
        self, parser: Any, namespace: argparse.Namespace, values: Any, option: str | None = None
    ) -> None:
        if getattr(namespace, self.dest, None) is self.default:
            setattr(namespace, self.dest, [])
        super().__call__(parser, namespace, values, option)


def _env_backed(actions: Sequence[argparse.Action]) -> None:
    """Let each option come from VMSRES_<OPTION> too (the command line wins), and say so in --help."""
    for action in actions:
        if not action.option_strings or isinstance(action, argparse._HelpAction):
            continue
        env = env_name(action)
        action.help = f"{action.help} [env {env}]" if action.help else f"[env {env}]"
        raw = os.environ.get(env)
        if raw is None:
            continue
        try:
            action.default = _env_value(action, raw)
        except (TypeError, ValueError) as error:
            action.default = BadEnvironmentValue(env, raw, str(error) or "not a valid value")


def check_environment(args: argparse.Namespace) -> None:
    """Refuse an environment default the command would use but that does not parse."""
    for value in vars(args).values():
        if isinstance(value, BadEnvironmentValue):
            raise CommandFailed(f"{value.env}={value.value!r}: {value.reason}")


class _StoreGiven(argparse._StoreAction):
    """An option that notes it was on the command line (an environment default is not)."""

    def __call__(
        self, parser: Any, namespace: argparse.Namespace, values: Any, option: str | None = None
    ) -> None:
        super().__call__(parser, namespace, values, option)
        namespace.given = {*getattr(namespace, "given", ()), self.option_strings[-1]}


# The options that say where a store is: meaningless for a command working through --endpoint.
_STORE_LOCATION = ("--data-dir", "--database-url", "--blob-url", "--s3-endpoint-url", "--master-key-file")


def _store_options(
    parser: argparse.ArgumentParser, *, endpoint: bool = True, admin_token: bool = True, create: bool = True
) -> list[argparse.Action]:
    """Where the store is; ``endpoint``: may work through a server's admin API instead."""
    given: Any = _StoreGiven
    options = [
        parser.add_argument(
            "--data-dir", action=given, default="./data", help="folder of the embedded store (default ./data)"
        ),
        parser.add_argument(
            "--database-url", action=given, help="a database URL instead of the embedded SQLite file"
        ),
        parser.add_argument(
            "--blob-url",
            action=given,
            help="where audio lives: a folder (default DATA_DIR/blobs) or s3://bucket/prefix",
        ),
        parser.add_argument(
            "--s3-endpoint-url",
            action=given,
            default=os.environ.get("AWS_ENDPOINT_URL"),
            help="endpoint of an S3-compatible server (default: AWS_ENDPOINT_URL)",
        ),
        parser.add_argument(
            "--master-key-file",
            action=given,
            help=f"the master key that encrypts SecretKeys (default: {MASTER_KEY_ENV}, else DATA_DIR/master.key)",
        ),
    ]
    parser.set_defaults(given=frozenset())
    if endpoint:
        options.append(
            parser.add_argument(
                "--endpoint",
                action=given,
                help="a running server's URL: work through its admin API instead of on a store",
            )
        )
    if admin_token:
        text = "the admin token, with --endpoint" if endpoint else "enables the admin API and the console"
        options.append(parser.add_argument("--admin-token", action=given, help=text))
    _env_backed(options)
    if create:
        parser.add_argument(
            "--create", action="store_true", help="make an empty store if there is none (default: refuse)"
        )
    return options


def _json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")


def _sub(
    group: Any, name: str, text: str, *, remote: bool = True, create: bool = True
) -> argparse.ArgumentParser:
    """A store command; ``remote``: it can also work through --endpoint."""
    parser: argparse.ArgumentParser = group.add_parser(name, help=text)
    _store_options(parser, endpoint=remote, admin_token=remote, create=create)
    _json_option(parser)
    return parser


def _serve_parser(commands: Any) -> None:
    serve = commands.add_parser("serve", help="run the server (creates the store on first start)")
    store_options = _store_options(serve, endpoint=False, create=False)
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    serve.add_argument("--workers", type=int, default=1, help="server processes")
    serve.add_argument(
        "--review",
        choices=REVIEW_POLICIES,
        default="auto",
        help="review policy for new resources (default auto)",
    )
    rules = serve.add_argument_group("review rules (override the rules file)")
    rules.add_argument("--review-rules", help="a JSON or TOML file of review rules")
    rules.add_argument("--banned-words", help="a file of banned words for TTS content, one a line")
    rules.add_argument("--banned-name-words", help="a file of banned words for names, one a line")
    rules.add_argument("--max-tts-chars", type=int, help="longest TTS template content, characters")
    rules.add_argument("--min-audio-seconds", type=float, help="shortest audio accepted")
    rules.add_argument("--max-audio-seconds", type=float, help="longest audio accepted")
    rules.add_argument("--name-pattern", help="a regular expression every name must match")
    serve.add_argument("--fixtures", help="a JSON fixtures file to load at startup")
    hooks = serve.add_argument_group("webhooks")
    hooks.add_argument("--webhook-retry-base", type=float, default=2.0, help="first retry delay, seconds")
    hooks.add_argument("--webhook-retry-max", type=float, default=600.0, help="longest retry delay, seconds")
    hooks.add_argument("--webhook-max-age", type=float, default=24 * 3600.0, help="give up after, seconds")
    hooks.add_argument("--webhook-poll", type=float, default=1.0, help="how often to look for due deliveries")
    serve.add_argument(
        "--redis-url",
        help="Redis for state shared by all processes, e.g. redis://127.0.0.1:6379/0",
    )
    limits = serve.add_argument_group("limits (docs/security.md; accounts can override them)")
    limits.add_argument("--rate-per-key", metavar="RATE", help="N/s, N/m or N/h with optional :BURST")
    limits.add_argument("--rate-per-account", metavar="RATE", help="N/s, N/m or N/h with optional :BURST")
    limits.add_argument("--max-resources", type=int, help="resources per account (default unlimited)")
    limits.add_argument("--max-storage-bytes", type=int, help="audio bytes per account (default unlimited)")
    limits.add_argument(
        "--max-audio-duration",
        type=float,
        default=Settings.max_audio_duration_seconds,
        metavar="SECONDS",
        help="longest audio accepted, checked before any conversion (default %(default)g)",
    )
    limits.add_argument(
        "--max-header-bytes", type=int, default=Settings.max_header_bytes, help="request head size cap"
    )
    limits.add_argument(
        "--max-header-count", type=int, default=Settings.max_header_count, help="request header fields cap"
    )
    limits.add_argument(
        "--header-timeout",
        type=float,
        default=Settings.header_timeout_seconds,
        help="seconds a client has to send a request head",
    )
    limits.add_argument(
        "--body-timeout",
        type=float,
        default=Settings.body_timeout_seconds,
        help="seconds a request body may pause between two pieces",
    )
    limits.add_argument(
        "--idempotency-hours", type=float, default=24.0, help="how long ClientToken answers are kept"
    )
    serve.add_argument(
        "--search-cache-mb",
        type=float,
        default=64.0,
        help="per worker: memory for keyword match lists, kept while the account is unchanged (0: off)",
    )
    serve.add_argument(
        "--log-level",
        default="info",
        choices=("debug", "info", "warning", "error"),
        help="what the log shows",
    )
    serve.add_argument(
        "--public-url",
        help="scheme://host[:port] clients reach this server at, for upload/download URLs "
        "(default: the host the client used)",
    )
    serve.add_argument(
        "--fetch-allow-host",
        action=_ReplaceDefaultList,
        default=[],
        metavar="HOST",
        help="a host FetchResource may download from even if it resolves to a private "
        "or loopback address (repeatable)",
    )
    serve.add_argument(
        "--gc-interval",
        type=int,
        default=300,
        metavar="SECONDS",
        help="how often to collect expired uploads and orphaned blobs (0: never)",
    )
    _env_backed([a for a in serve._actions if a not in store_options])


def add_server_commands(commands: Any) -> None:
    """Register every command but ``res`` on the top-level parser (vmsres.cli builds it)."""
    _serve_parser(commands)
    _sub(commands, "gc", "collect expired uploads and orphaned blobs now", remote=False)
    renditions = commands.add_parser("renditions", help="telephony renditions").add_subparsers(
        dest="subcommand", required=True
    )
    _sub(renditions, "rebuild", "make the telephony renditions that wait for ffmpeg, now", remote=False)

    groups = _admin_commands(commands)
    master = _sub(
        groups["keys"],
        "rotate-master-key",
        "re-encrypt every SecretKey under a new master key",
        remote=False,
        create=False,
    )
    master.add_argument(
        "--new-key-file", required=True, help="the new master key (created 0600 when it does not exist)"
    )
    snapshot = _sub(
        commands,
        "backup",
        "an online, consistent snapshot of the store (database and audio)",
        remote=False,
        create=False,
    )
    snapshot.add_argument("file")
    restore = _sub(
        commands,
        "restore",
        "restore a backup into an empty store (any database and blob storage)",
        remote=False,
        create=False,
    )
    restore.add_argument("file")
    restore.add_argument(
        "--force", action="store_true", help="replace what the target database and blob storage hold"
    )


def _settings(args: argparse.Namespace) -> Settings:
    return Settings(
        data_dir=args.data_dir,
        database_url=args.database_url,
        blob_url=args.blob_url,
        s3_endpoint_url=args.s3_endpoint_url,
        master_key_file=args.master_key_file,
    )


def _require_store(settings: Settings, create: bool) -> None:
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
    settings = _settings(args)
    _require_store(settings, args.create)
    if settings.database_url is None:
        settings.ensure_data_dir()
    return open_services(settings)


def _print(args: argparse.Namespace, data: Any, human: str) -> None:
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
}


class CommandFailed(Exception):
    """A command that ran but did not fully succeed (e.g. one key of a bulk review)."""


def _admin_commands(commands: Any) -> dict[str, Any]:
    """One subcommand per operation of the admin table that has a CLI; the groups, by name."""
    groups: dict[str, Any] = {}
    for operation in OPERATIONS:
        cli = operation.cli
        if cli is None:
            continue
        if cli.subcommand is None:
            parser = _sub(commands, cli.command, cli.help)
        else:
            if cli.command not in groups:
                groups[cli.command] = commands.add_parser(
                    cli.command, help=CLI_GROUPS[cli.command]
                ).add_subparsers(dest="subcommand", required=True)
            parser = _sub(groups[cli.command], cli.subcommand, cli.help)
        for param in operation.params:
            if param.cli is not None:
                _add_argument(parser, param.keyword, param.cli)
        parser.set_defaults(operation=operation.name)
    return groups


def _add_argument(parser: argparse.ArgumentParser, keyword: str, arg: CliArg) -> None:
    options: dict[str, Any] = {}
    if arg.help is not None:
        options["help"] = arg.help
    if arg.choices is not None:
        options["choices"] = arg.choices
    if arg.type is not None:
        options["type"] = arg.type
    if arg.nargs is not None:
        options["nargs"] = arg.nargs
    if arg.switch:
        assert arg.flag is not None
        parser.add_argument(arg.flag, dest=keyword, action="store_true", help=arg.help)
        return
    if arg.flag is None:
        if arg.metavar is not None:
            options["metavar"] = arg.metavar
        parser.add_argument(keyword, **options)
        return
    if arg.choices is None:
        options["metavar"] = arg.metavar or arg.flag.lstrip("-").replace("-", "_").upper()
    if arg.required:
        options["required"] = True
    default = arg.default() if callable(arg.default) else arg.default
    parser.add_argument(arg.flag, dest=keyword, default=default, **options)


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
        _print(args, shown.data, shown.human)
    if shown.failure is not None:
        raise CommandFailed(shown.failure)


async def _gc(args: argparse.Namespace, ops: Ops) -> None:
    if not isinstance(ops, AdminOps):
        raise CommandFailed("gc works on a store (--data-dir / --database-url), not through --endpoint")
    report = vars(await ops.services.ingest.collect_garbage())
    _print(args, report, ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in report.items()))


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
    _print(args, done, ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in done.items()))
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
        ignored = [option for option in _STORE_LOCATION if option in args.given]
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


def _rules(args: argparse.Namespace) -> dict[str, object]:
    rules = load_rules_file(Path(args.review_rules)) if args.review_rules else ReviewRules()
    data = rules.to_dict()
    if args.banned_words:
        data["banned_words"] = [*data["banned_words"], *load_word_list(Path(args.banned_words))]
    if args.banned_name_words:
        data["banned_name_words"] = [
            *data["banned_name_words"],
            *load_word_list(Path(args.banned_name_words)),
        ]
    for option in ("max_tts_chars", "min_audio_seconds", "max_audio_seconds", "name_pattern"):
        value = getattr(args, option)
        if value is not None:
            data[option] = value
    ReviewRules.from_dict(data)  # refuse a bad rule now, not in every worker
    return data


# What a store command may fail with: one line on stderr, exit 1, no traceback.
_FAILURES: tuple[type[Exception], ...] = (
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


_BACKUP_FAILURES: tuple[type[Exception], ...] = (
    *_FAILURES,
    BackupError,
    BlobStorageError,
    tarfile.TarError,
    sqlite3.Error,
    ValueError,
)


def _describe_failure(error: Exception) -> str:
    # SQLAlchemy's message carries the SQL and a link to its docs; the driver's own says enough.
    text = str(error)
    if isinstance(error, sa.exc.DBAPIError) and error.orig is not None:
        text = f"database: {error.orig}"
    elif isinstance(error, migrate.DatabaseUnreachable):
        text = f"database: {error}"
    # Drivers add hints on further lines; the report stays one line.
    return " ".join(text.split())


def _fail(error: Exception) -> int:
    print(f"vmsres: {_describe_failure(error)}", file=sys.stderr)
    return 1


class ServeArgumentError(ValueError):
    """A `vmsres serve` option that cannot be used (an unreadable rules file, a bad rate)."""


def serve_settings(args: argparse.Namespace) -> Settings:
    """The Settings that `vmsres serve` ARGS stand for (also vmsres.testing's ``serve_args``)."""
    try:
        rules = _rules(args)
    except (OSError, ValueError) as error:
        raise ServeArgumentError(f"review rules: {error}") from None
    try:
        parse_rate(args.rate_per_key)
        parse_rate(args.rate_per_account)
    except LimitError as error:
        raise ServeArgumentError(str(error)) from None
    settings = _settings(args)
    settings.host, settings.port, settings.workers = args.host, args.port, args.workers
    settings.review, settings.log_level = args.review, args.log_level
    settings.public_url, settings.fetch_allow_hosts = args.public_url, args.fetch_allow_host
    settings.gc_interval_seconds, settings.redis_url = args.gc_interval, args.redis_url
    settings.review_rules = rules
    settings.admin_token_sha256 = admin_token_digest(args.admin_token) if args.admin_token else None
    settings.fixtures, settings.webhook_poll_seconds = args.fixtures, args.webhook_poll
    settings.webhook_retry_base_seconds = args.webhook_retry_base
    settings.webhook_retry_max_seconds = args.webhook_retry_max
    settings.webhook_max_age_seconds = args.webhook_max_age
    settings.rate_per_key, settings.rate_per_account = args.rate_per_key, args.rate_per_account
    settings.max_resources, settings.max_storage_bytes = args.max_resources, args.max_storage_bytes
    settings.idempotency_hours = args.idempotency_hours
    settings.search_cache_mb = args.search_cache_mb
    settings.max_audio_duration_seconds = args.max_audio_duration
    settings.max_header_bytes, settings.max_header_count = args.max_header_bytes, args.max_header_count
    settings.header_timeout_seconds, settings.body_timeout_seconds = args.header_timeout, args.body_timeout
    return settings


def _serve(args: argparse.Namespace) -> int:
    from vmsres.server.serve import CannotListen, serve

    serve_failures: tuple[type[Exception], ...] = (*_FAILURES, CannotListen, ValueError)

    try:
        settings = serve_settings(args)
    except ServeArgumentError as error:
        print(f"vmsres: {error}", file=sys.stderr)
        return 2
    try:
        backends.check(settings)
        serve(settings)
    except MasterKeyError as error:
        print(f"vmsres: refusing to start: {error}", file=sys.stderr)
        return 2
    except serve_failures as error:
        # Everything here fails before the server listens (a wrong setting, an unreachable
        # database, a taken port): one line, not a traceback.
        return _fail(error)
    return 0


def _backup_or_restore(args: argparse.Namespace) -> int:
    settings = _settings(args)
    try:
        if args.command == "backup":
            _require_store(settings, create=False)
            done = backup(settings, Path(args.file))
            human = (
                f"backed up {done['Resources']} resources and {done['Blobs']} blobs "
                f"({done['BlobBytes']} bytes) to {done['File']}"
            )
            if done["DroppedMissingBlobs"]:
                print(
                    f"vmsres: warning: {done['DroppedMissingBlobs']} resources were left out: "
                    "their audio vanished before it was copied",
                    file=sys.stderr,
                )
        else:
            backends.check(settings)
            done = restore(settings, Path(args.file), force=args.force)
            human = (
                f"restored {done['Resources']} resources and {done['BlobCount']} blobs into "
                f"{done['Database']} (audio in {done['Blobs']})"
            )
    except _BACKUP_FAILURES as error:
        return _fail(error)
    _print(args, done, human)
    return 0


def _rotate_master_key(args: argparse.Namespace) -> int:
    settings = _settings(args)
    try:
        _require_store(settings, create=False)
        report = rotate_master_key(settings, Path(args.new_key_file))
    except _FAILURES as error:
        return _fail(error)
    _print(
        args,
        report,
        f"re-encrypted {report['Secrets']} secrets and {report['WebhookSecrets']} webhook secrets "
        f"under master key {report['KeyId']}"
        + (f"; installed it as {report['InstalledAs']}" if report["InstalledAs"] else ""),
    )
    return 0


def run(args: argparse.Namespace) -> int:
    """Run a parsed command other than ``res`` (vmsres.cli parses the command line)."""
    try:
        check_environment(args)
    except CommandFailed as error:
        print(f"vmsres: {error}", file=sys.stderr)
        return 2
    if args.command == "serve":
        return _serve(args)
    if args.command in ("backup", "restore"):
        return _backup_or_restore(args)
    if args.command == "keys" and args.subcommand == "rotate-master-key":
        return _rotate_master_key(args)
    try:
        asyncio.run(_run_store_command(args))
    except _FAILURES as error:
        return _fail(error)
    return 0
