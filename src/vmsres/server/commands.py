"""The ``vmsres`` command: run the server and manage accounts, keys and reviews on a store."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sqlite3
import sys
import tarfile
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import orjson
import sqlalchemy as sa

from vmsres.client.cli import add_resource_commands, run_resource_command
from vmsres.client.models import ResourceType
from vmsres.client.output import format_table, iso_time, label
from vmsres.ops.backup import BackupError, backup, restore
from vmsres.ops.rotation import rotate_master_key
from vmsres.server.admin.app import ADMIN_TOKEN_ENV, admin_token_digest
from vmsres.server.admin.remote import RemoteError, RemoteOps
from vmsres.server.audio import FFMPEG_ENV
from vmsres.server.blobs import BlobStorageError
from vmsres.server.masterkey import MASTER_KEY_ENV, MasterKeyError
from vmsres.server.service.admin import ADMIN_ERRORS, AdminOps
from vmsres.server.service.events import Actor
from vmsres.server.service.limits import LimitError, parse_rate
from vmsres.server.service.review import REVIEW_POLICIES, ReviewRules, load_rules_file, load_word_list
from vmsres.server.service.services import Services, open_services
from vmsres.server.settings import Settings

DATABASE_URL_ENV = "VMSRES_DATABASE_URL"
ENDPOINT_ENV = "VMSRES_ENDPOINT"


def _store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        default=os.environ.get("VMSRES_DATA_DIR", "./data"),
        help="folder of the embedded store (default ./data)",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get(DATABASE_URL_ENV),
        help="a database URL instead of the embedded SQLite file",
    )
    parser.add_argument(
        "--blob-url",
        default=os.environ.get("VMSRES_BLOB_URL"),
        help="where audio lives: a folder (default DATA_DIR/blobs) or s3://bucket/prefix",
    )
    parser.add_argument(
        "--s3-endpoint-url",
        default=os.environ.get("AWS_ENDPOINT_URL"),
        help="endpoint of an S3-compatible server (default: AWS_ENDPOINT_URL)",
    )
    parser.add_argument(
        "--master-key-file",
        default=os.environ.get("VMSRES_MASTER_KEY_FILE"),
        help=f"the master key that encrypts SecretKeys (default: {MASTER_KEY_ENV}, else DATA_DIR/master.key)",
    )
    parser.add_argument(
        "--endpoint",
        default=os.environ.get(ENDPOINT_ENV),
        help="a running server's URL: work through its admin API instead of on a store",
    )
    parser.add_argument(
        "--admin-token", default=os.environ.get(ADMIN_TOKEN_ENV), help="the admin token, with --endpoint"
    )


def os_user() -> str:
    """Who runs the command, as the audit trail's ``cli:<user>`` names them.

    getpass looks at LOGNAME, USER, LNAME and USERNAME, then the password database; a container
    may have none of those for its uid, which is then named by number.
    """
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return f"uid{os.getuid()}"


def _json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")


def _sub(group: Any, name: str, text: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = group.add_parser(name, help=text)
    _store_options(parser)
    _json_option(parser)
    return parser


def _serve_parser(commands: Any) -> None:
    serve = commands.add_parser("serve", help="run the server")
    _store_options(serve)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    serve.add_argument("--workers", type=int, default=1)
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
    rules.add_argument("--max-tts-chars", type=int)
    rules.add_argument("--min-audio-seconds", type=float)
    rules.add_argument("--max-audio-seconds", type=float)
    rules.add_argument("--name-pattern", help="a regular expression every name must match")
    serve.add_argument("--fixtures", help="a JSON fixtures file to load at startup")
    hooks = serve.add_argument_group("webhooks")
    hooks.add_argument("--webhook-retry-base", type=float, default=2.0, help="first retry delay, seconds")
    hooks.add_argument("--webhook-retry-max", type=float, default=600.0, help="longest retry delay, seconds")
    hooks.add_argument("--webhook-max-age", type=float, default=24 * 3600.0, help="give up after, seconds")
    hooks.add_argument("--webhook-poll", type=float, default=1.0, help="how often to look for due deliveries")
    serve.add_argument(
        "--redis-url",
        default=os.environ.get("VMSRES_REDIS_URL"),
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
    serve.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    serve.add_argument(
        "--public-url",
        default=os.environ.get("VMSRES_PUBLIC_URL"),
        help="scheme://host[:port] clients reach this server at, for upload/download URLs "
        "(default: the host the client used)",
    )
    serve.add_argument(
        "--fetch-allow-host",
        action="append",
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vmsres", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    _serve_parser(commands)
    _sub(commands, "gc", "collect expired uploads and orphaned blobs now")
    renditions = commands.add_parser("renditions", help="telephony renditions").add_subparsers(
        dest="subcommand", required=True
    )
    _sub(renditions, "rebuild", "make the telephony renditions that wait for ffmpeg, now")

    accounts = commands.add_parser("accounts", help="manage accounts").add_subparsers(
        dest="subcommand", required=True
    )
    create = _sub(accounts, "create", "create an account")
    create.add_argument("name")
    create.add_argument("--review-policy", choices=REVIEW_POLICIES)
    _sub(accounts, "list", "list accounts")
    policy = _sub(accounts, "set-policy", "set an account's review policy ('default': the server's)")
    policy.add_argument("name")
    policy.add_argument("policy", choices=(*REVIEW_POLICIES, "default"))
    hook = _sub(accounts, "set-webhook", "set an account's webhook URL (prints the secret once)")
    hook.add_argument("name")
    hook.add_argument("--url", help="absent: remove the webhook")
    hook.add_argument("--secret", help="absent: one is generated")
    reset = _sub(accounts, "reset", "test control: delete every resource of an account")
    reset.add_argument("name")

    keys = commands.add_parser("keys", help="manage access keys").add_subparsers(
        dest="subcommand", required=True
    )
    create = _sub(keys, "create", "create a key (prints AccessKey and SecretKey)")
    create.add_argument("--account", required=True)
    listing = _sub(keys, "list", "list keys (never their secrets)")
    listing.add_argument("--account")
    for name, text in (
        ("disable", "disable a key"),
        ("enable", "enable a key"),
        ("delete", "delete a key"),
        ("rotate", "give a key a new SecretKey (printed once)"),
    ):
        _sub(keys, name, text).add_argument("access_key")
    master = _sub(keys, "rotate-master-key", "re-encrypt every SecretKey under a new master key")
    master.add_argument(
        "--new-key-file", required=True, help="the new master key (created 0600 when it does not exist)"
    )

    review = commands.add_parser("review", help="decide reviews").add_subparsers(
        dest="subcommand", required=True
    )
    approve = _sub(review, "approve", "approve resources (State 1)")
    approve.add_argument("resource_keys", nargs="+", metavar="resource_key")
    reject = _sub(review, "reject", "reject resources (State 2)")
    reject.add_argument("resource_keys", nargs="+", metavar="resource_key")
    reject.add_argument("--reason", required=True)
    for sub in (approve, reject):
        sub.add_argument("--reviewer", default=os_user(), help="who decided (default: your OS user)")
        sub.add_argument(
            "--force", action="store_true", help="re-decide resources already decided (audited as forced)"
        )
    queue = _sub(review, "queue", "resources waiting for review, oldest first")
    queue.add_argument("--account")
    queue.add_argument("--type", type=int, choices=(0, 1, 2))
    queue.add_argument("--limit", type=int, default=100)
    force = _sub(review, "force", "test control: put a resource in any State")
    force.add_argument("resource_key")
    force.add_argument("--state", type=int, choices=(0, 1, 2), required=True)
    force.add_argument("--reason")

    audit = _sub(commands, "audit", "the audit trail, newest first")
    audit.add_argument("--account")
    audit.add_argument("--resource")
    audit.add_argument("--action")
    audit.add_argument("--limit", type=int, default=100)
    deliveries = _sub(commands, "deliveries", "webhook deliveries, newest first")
    deliveries.add_argument("--account")
    deliveries.add_argument("--state", choices=("pending", "delivered", "failed"))
    deliveries.add_argument("--limit", type=int, default=100)
    limits = commands.add_parser("limits", help="per-account rates and quotas").add_subparsers(
        dest="subcommand", required=True
    )
    _sub(limits, "show", "show an account's overrides (null: the server default)").add_argument("name")
    limit_set = _sub(limits, "set", "set overrides; 'default' returns one to the server default")
    limit_set.add_argument("name")
    limit_set.add_argument("--rate-per-key", help="N/s[:burst], N/m, N/h, off or default")
    limit_set.add_argument("--rate-per-account", help="N/s[:burst], N/m, N/h, off or default")
    limit_set.add_argument("--max-resources", help="a count, -1 (unlimited) or default")
    limit_set.add_argument("--max-storage-bytes", help="bytes, -1 (unlimited) or default")
    leases = commands.add_parser("leases", help="mark resources in use for a dialer").add_subparsers(
        dest="subcommand", required=True
    )
    lease = _sub(leases, "lease", "lease a resource as in use")
    lease.add_argument("resource_key")
    lease.add_argument("--seconds", type=int, required=True)
    lease.add_argument("--holder", default="dialer")
    _sub(leases, "release", "end a lease").add_argument("resource_key")
    lease_list = _sub(leases, "list", "leases that have not expired")
    lease_list.add_argument("--account")
    lease_list.add_argument("--limit", type=int, default=100)
    fixtures = commands.add_parser("fixtures", help="test fixtures").add_subparsers(
        dest="subcommand", required=True
    )
    load = _sub(fixtures, "load", "load a JSON fixtures file")
    load.add_argument("file")
    snapshot = _sub(commands, "backup", "an online, consistent snapshot of the store (database and audio)")
    snapshot.add_argument("file")
    restore = _sub(
        commands, "restore", "restore a backup into an empty store (any database and blob storage)"
    )
    restore.add_argument("file")
    restore.add_argument(
        "--force", action="store_true", help="replace what the target database and blob storage hold"
    )
    add_resource_commands(commands)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    return Settings(
        data_dir=args.data_dir,
        database_url=args.database_url,
        blob_url=args.blob_url,
        s3_endpoint_url=args.s3_endpoint_url,
        master_key_file=args.master_key_file,
    )


def _open(args: argparse.Namespace) -> Services:
    settings = _settings(args)
    if settings.database_url is None:
        settings.ensure_data_dir()
    return open_services(settings)


def _print(args: argparse.Namespace, data: Any, human: str) -> None:
    if getattr(args, "json", False):
        print(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
    else:
        print(human)


Ops = AdminOps | RemoteOps


async def _accounts(args: argparse.Namespace, ops: Ops) -> None:
    sub = args.subcommand
    if sub == "create":
        row = await ops.create_account(args.name, args.review_policy)
        _print(args, row, f"created account {row['Name']}")
    elif sub == "list":
        data = await ops.list_accounts()
        rows = [(d["Name"], d["Enabled"], d["ReviewPolicy"] or "-") for d in data]
        _print(args, data, format_table(rows, ("NAME", "ENABLED", "REVIEW")))
    elif sub == "set-policy":
        row = await ops.set_review_policy(args.name, None if args.policy == "default" else args.policy)
        _print(args, row, f"{row['Name']}: review {row['ReviewPolicy'] or 'server default'}")
    elif sub == "set-webhook":
        hook = await ops.set_webhook(args.name, args.url, args.secret)
        human = f"webhook of {args.name} removed"
        if hook["Url"]:
            human = f"Url: {hook['Url']}\nSecret: {hook['Secret']}"
        _print(args, hook, human)
    else:
        done = await ops.reset_account(args.name)
        _print(args, done, f"deleted {len(done['DeletedResourceKeys'])} resources of {args.name}")


async def _keys(args: argparse.Namespace, ops: Ops) -> None:
    sub = args.subcommand
    if sub == "create":
        key = await ops.create_key(args.account)
        _print(args, key, f"AccessKey: {key['AccessKey']}\nSecretKey: {key['SecretKey']}")
    elif sub == "list":
        data = await ops.list_keys(args.account)
        rows = [(d["AccessKey"], d["Account"], d["Enabled"]) for d in data]
        _print(args, data, format_table(rows, ("ACCESS KEY", "ACCOUNT", "ENABLED")))
    elif sub == "rotate":
        key = await ops.rotate_key(args.access_key)
        _print(args, key, f"AccessKey: {key['AccessKey']}\nSecretKey: {key['SecretKey']}")
    elif sub == "delete":
        _print(args, await ops.delete_key(args.access_key), f"deleted {args.access_key}")
    else:
        done = await ops.set_key_enabled(args.access_key, sub == "enable")
        _print(args, done, f"{sub}d {args.access_key}")


class CommandFailed(Exception):
    """A command that ran but did not fully succeed (e.g. one key of a bulk review)."""


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


async def _review(args: argparse.Namespace, ops: Ops) -> None:
    sub = args.subcommand
    if sub == "queue":
        data = await ops.review_queue(args.account, args.type, args.limit)
        rows = [(d["ResourceKey"], d["Account"], label(ResourceType, d["Type"]), d["Name"]) for d in data]
        _print(args, data, format_table(rows, ("RESOURCE KEY", "ACCOUNT", "TYPE", "NAME")))
        return
    if sub == "force":
        row = await ops.force_state(args.resource_key, args.state, args.reason)
        _print(args, row, f"{row['ResourceKey']}: State {row['State']}")
        return
    approve = sub == "approve"
    results = await ops.review(
        args.resource_keys, approve, None if approve else args.reason, args.reviewer, args.force
    )
    done = [{"ResourceKey": r["ResourceKey"], "State": r["State"]} for r in results if r["Ok"]]
    if done:
        # One key prints one object, as before bulk review existed.
        _print(
            args,
            done[0] if len(args.resource_keys) == 1 else done,
            "\n".join(f"{d['ResourceKey']}: State {d['State']}" for d in done),
        )
    failed = [r for r in results if not r["Ok"]]
    if failed:
        raise CommandFailed("; ".join(f"{r['ResourceKey']}: {r['Error']}" for r in failed))


async def _audit(args: argparse.Namespace, ops: Ops) -> None:
    data = await ops.audit(args.account, args.resource, args.action, args.limit)
    rows = [
        (d["Id"], d["Actor"], d["Account"] or "-", d["Action"], d["ResourceKey"] or "-", d["Outcome"])
        for d in data
    ]
    _print(args, data, format_table(rows, ("ID", "ACTOR", "ACCOUNT", "ACTION", "RESOURCE", "OUTCOME")))


async def _deliveries(args: argparse.Namespace, ops: Ops) -> None:
    data = await ops.deliveries(args.account, args.state, args.limit)
    rows = [
        (d["Id"], d["EventType"], d["Account"], d["State"], d["Attempts"], d["LastError"] or "-")
        for d in data
    ]
    _print(args, data, format_table(rows, ("ID", "EVENT", "ACCOUNT", "STATE", "ATTEMPTS", "LAST ERROR")))


async def _fixtures(args: argparse.Namespace, ops: Ops) -> None:
    data = orjson.loads(Path(args.file).read_bytes())
    done = await ops.load_fixtures(data)
    _print(args, done, f"loaded {len(done['LoadedResourceKeys'])} resources")


def _limit_value(text: str, integer: bool) -> Any:
    if text == "default":
        return None
    if not integer:
        return text
    try:
        return int(text)
    except ValueError:
        raise CommandFailed(f"not a count: {text!r}") from None


async def _limits(args: argparse.Namespace, ops: Ops) -> None:
    if args.subcommand == "show":
        row = await ops.get_limits(args.name)
    else:
        given = {
            "RatePerKey": (args.rate_per_key, False),
            "RatePerAccount": (args.rate_per_account, False),
            "MaxResources": (args.max_resources, True),
            "MaxStorageBytes": (args.max_storage_bytes, True),
        }
        changes = {k: _limit_value(v, i) for k, (v, i) in given.items() if v is not None}
        row = await ops.set_limits(args.name, changes)
    human = "\n".join(f"{k}: {'server default' if v is None else v}" for k, v in row.items())
    _print(args, row, human)


async def _leases(args: argparse.Namespace, ops: Ops) -> None:
    if args.subcommand == "lease":
        done = await ops.lease(args.resource_key, args.seconds, args.holder)
        _print(args, done, f"{args.resource_key}: in use until {iso_time(done['ExpiresAt'])}")
    elif args.subcommand == "release":
        done = await ops.release(args.resource_key)
        _print(args, done, f"{args.resource_key}: {'released' if done['Released'] else 'was not leased'}")
    else:
        data = await ops.leases(args.account, args.limit)
        rows = [(d["ResourceKey"], d["Account"], d["Holder"], iso_time(d["ExpiresAt"])) for d in data]
        _print(args, data, format_table(rows, ("RESOURCE KEY", "ACCOUNT", "HOLDER", "EXPIRES AT")))


_COMMANDS: dict[str, Callable[[argparse.Namespace, Ops], Awaitable[None]]] = {
    "gc": _gc,
    "renditions": _renditions,
    "accounts": _accounts,
    "keys": _keys,
    "review": _review,
    "audit": _audit,
    "deliveries": _deliveries,
    "fixtures": _fixtures,
    "limits": _limits,
    "leases": _leases,
}


async def _run_store_command(args: argparse.Namespace) -> None:
    if args.endpoint:
        if not args.admin_token:
            raise CommandFailed(f"--endpoint needs --admin-token (or {ADMIN_TOKEN_ENV})")
        remote = RemoteOps(args.endpoint, args.admin_token)
        try:
            await _COMMANDS[args.command](args, remote)
        finally:
            await remote.close()
        return
    services = _open(args)
    try:
        await _COMMANDS[args.command](args, AdminOps(services, Actor("cli", name=os_user())))
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


_FAILURES: tuple[type[Exception], ...] = (
    *ADMIN_ERRORS,
    RemoteError,
    CommandFailed,
    MasterKeyError,
    httpx.HTTPError,
    OSError,
)


_BACKUP_FAILURES: tuple[type[Exception], ...] = (
    BackupError,
    MasterKeyError,
    BlobStorageError,
    OSError,
    tarfile.TarError,
    sqlite3.Error,
    sa.exc.SQLAlchemyError,
    ValueError,
)


def _describe_failure(error: Exception) -> str:
    # SQLAlchemy's message carries the SQL and a link to its docs; the driver's own says enough.
    if isinstance(error, sa.exc.DBAPIError) and error.orig is not None:
        return f"database: {str(error.orig).strip()}"
    return str(error)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "res":
        return run_resource_command(args)
    if args.command == "serve":
        from vmsres.server.serve import serve

        try:
            rules = _rules(args)
        except (OSError, ValueError) as error:
            print(f"vmsres: review rules: {error}", file=sys.stderr)
            return 2

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
        try:
            parse_rate(args.rate_per_key)
            parse_rate(args.rate_per_account)
        except LimitError as error:
            print(f"vmsres: {error}", file=sys.stderr)
            return 2
        settings.rate_per_key, settings.rate_per_account = args.rate_per_key, args.rate_per_account
        settings.max_resources, settings.max_storage_bytes = args.max_resources, args.max_storage_bytes
        settings.idempotency_hours = args.idempotency_hours
        settings.search_cache_mb = args.search_cache_mb
        settings.max_audio_duration_seconds = args.max_audio_duration
        settings.max_header_bytes, settings.max_header_count = args.max_header_bytes, args.max_header_count
        settings.header_timeout_seconds, settings.body_timeout_seconds = (
            args.header_timeout,
            args.body_timeout,
        )
        try:
            serve(settings)
        except MasterKeyError as error:
            print(f"vmsres: refusing to start: {error}", file=sys.stderr)
            return 2
        return 0
    if args.command in ("backup", "restore"):
        try:
            if args.command == "backup":
                done = backup(_settings(args), Path(args.file))
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
                done = restore(_settings(args), Path(args.file), force=args.force)
                human = (
                    f"restored {done['Resources']} resources and {done['BlobCount']} blobs into "
                    f"{done['Database']} (audio in {done['Blobs']})"
                )
        except _BACKUP_FAILURES as error:
            print(f"vmsres: {_describe_failure(error)}", file=sys.stderr)
            return 1
        _print(args, done, human)
        return 0
    if args.command == "keys" and args.subcommand == "rotate-master-key":
        try:
            report = rotate_master_key(_settings(args), Path(args.new_key_file))
        except (MasterKeyError, OSError) as error:
            print(f"vmsres: {error}", file=sys.stderr)
            return 1
        _print(
            args,
            report,
            f"re-encrypted {report['Secrets']} secrets and {report['WebhookSecrets']} webhook secrets "
            f"under master key {report['KeyId']}"
            + (f"; installed it as {report['InstalledAs']}" if report["InstalledAs"] else ""),
        )
        return 0
    try:
        asyncio.run(_run_store_command(args))
    except _FAILURES as error:
        print(f"vmsres: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
