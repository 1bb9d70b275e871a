"""Every ``vmsres`` command but ``res``, as arguments: what ``vmsres --help`` and a parse need.

Only argparse and declarations live here (the settings' defaults, the admin operation table), so
building the parser loads none of the server's dependencies; the module that runs a command
(vmsres.cli.serve, .store, .ops) is imported once that command has been chosen. Each option can
also come from a VMSRES_<OPTION> environment variable; the command line wins.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from vmsres.server.admin.operations import CLI_GROUPS, OPERATIONS, CliArg
from vmsres.server.settings import (
    BODY_TOTAL_PAUSES,
    BULK_CONFIRM_ABOVE,
    MASTER_KEY_ENV,
    REVIEW_POLICIES,
    Settings,
)

ENV_PREFIX = "VMSRES_"


class CommandFailed(Exception):
    """A command that ran but did not fully succeed (e.g. one key of a bulk review)."""


@dataclass(frozen=True)
class BadEnvironmentValue:
    """An option's default from an environment variable that does not parse; reported only if used."""

    env: str
    value: str
    reason: str


def env_name(action: argparse.Action) -> str:
    return ENV_PREFIX + action.dest.upper()


class Bounded:
    """An int or float option's type that refuses a value out of [low, high]: argparse reports it
    on one line, instead of a traceback (a port of 99999) or a silent oddity (0 workers)."""

    def __init__(self, kind: type[int] | type[float], low: float, high: float | None = None) -> None:
        self.kind, self.low, self.high = kind, low, high
        self.__name__ = kind.__name__  # argparse names the type in "invalid int value"

    def __call__(self, raw: str) -> int | float:
        value = self.kind(raw)
        if value != value or value < self.low or (self.high is not None and value > self.high):
            span = f"at least {self.low:g}" if self.high is None else f"from {self.low:g} to {self.high:g}"
            raise argparse.ArgumentTypeError(f"must be {span}, not {raw}")
        return value


PORT = Bounded(int, 0, 65535)
POSITIVE_INT = Bounded(int, 1)
NON_NEGATIVE_INT = Bounded(int, 0)
NON_NEGATIVE = Bounded(float, 0)


def _env_value(action: argparse.Action, raw: str) -> object:
    convert: Callable[[str], object] = action.type if callable(action.type) else str
    if isinstance(action, argparse._AppendAction):
        return [convert(item.strip()) for item in raw.split(",") if item.strip()]
    try:
        value = convert(raw)
    except argparse.ArgumentTypeError as error:
        raise ValueError(str(error)) from None
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
STORE_LOCATION = ("--data-dir", "--database-url", "--blob-url", "--s3-endpoint-url", "--master-key-file")


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
        text = (
            "the admin token or an operator's token, with --endpoint"
            if endpoint
            else "enables the admin API and the console (a strong token: see docs/security.md)"
        )
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
    parser.set_defaults(runner="store")
    return parser


def _serve_parser(commands: Any) -> None:
    serve = commands.add_parser("serve", help="run the server (creates the store on first start)")
    serve.set_defaults(runner="serve")
    store_options = _store_options(serve, endpoint=False, create=False)
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=PORT, default=8080, help="0 picks a free port")
    serve.add_argument("--workers", type=POSITIVE_INT, default=1, help="server processes")
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
    rules.add_argument(
        "--max-tts-chars", type=NON_NEGATIVE_INT, help="longest TTS template content, characters"
    )
    rules.add_argument("--min-audio-seconds", type=NON_NEGATIVE, help="shortest audio accepted")
    rules.add_argument("--max-audio-seconds", type=NON_NEGATIVE, help="longest audio accepted")
    rules.add_argument("--name-pattern", help="a regular expression every name must match")
    serve.add_argument("--fixtures", help="a JSON fixtures file to load at startup")
    console = serve.add_argument_group("console (docs/console.md)")
    console.add_argument(
        "--reject-reasons",
        metavar="FILE",
        help="the console's preset reject reasons, one a line (# starts a comment; default: "
        "the list in docs/console.md)",
    )
    console.add_argument(
        "--bulk-confirm-above",
        type=NON_NEGATIVE_INT,
        default=BULK_CONFIRM_ABOVE,
        metavar="N",
        help="a console decision on more than N resources at once asks for a confirmation "
        "(0: every bulk decision does)",
    )
    hooks = serve.add_argument_group("webhooks")
    hooks.add_argument(
        "--webhook-retry-base", type=NON_NEGATIVE, default=2.0, help="first retry delay, seconds"
    )
    hooks.add_argument(
        "--webhook-retry-max", type=NON_NEGATIVE, default=600.0, help="longest retry delay, seconds"
    )
    hooks.add_argument(
        "--webhook-max-age", type=NON_NEGATIVE, default=24 * 3600.0, help="give up after, seconds"
    )
    hooks.add_argument(
        "--webhook-poll", type=NON_NEGATIVE, default=1.0, help="how often to look for due deliveries"
    )
    serve.add_argument(
        "--redis-url",
        help="Redis for state shared by all processes, e.g. redis://127.0.0.1:6379/0",
    )
    limits = serve.add_argument_group("limits (docs/security.md; accounts can override them)")
    limits.add_argument("--rate-per-key", metavar="RATE", help="N/s, N/m or N/h with optional :BURST")
    limits.add_argument("--rate-per-account", metavar="RATE", help="N/s, N/m or N/h with optional :BURST")
    limits.add_argument(
        "--max-resources", type=NON_NEGATIVE_INT, help="resources per account (default unlimited)"
    )
    limits.add_argument(
        "--max-storage-bytes", type=NON_NEGATIVE_INT, help="audio bytes per account (default unlimited)"
    )
    limits.add_argument(
        "--max-audio-duration",
        type=NON_NEGATIVE,
        default=Settings.max_audio_duration_seconds,
        metavar="SECONDS",
        help="longest audio accepted, checked before any conversion (default %(default)g)",
    )
    limits.add_argument(
        "--max-header-bytes",
        type=NON_NEGATIVE_INT,
        default=Settings.max_header_bytes,
        help="request head size cap",
    )
    limits.add_argument(
        "--max-header-count",
        type=NON_NEGATIVE_INT,
        default=Settings.max_header_count,
        help="request header fields cap",
    )
    limits.add_argument(
        "--header-timeout",
        type=NON_NEGATIVE,
        default=Settings.header_timeout_seconds,
        help="seconds a client has to send a request head",
    )
    limits.add_argument(
        "--body-timeout",
        type=NON_NEGATIVE,
        default=Settings.body_timeout_seconds,
        help=f"seconds a request body may pause between two pieces; the whole body gets {BODY_TOTAL_PAUSES} times this",
    )
    limits.add_argument(
        "--idempotency-hours", type=NON_NEGATIVE, default=24.0, help="how long ClientToken answers are kept"
    )
    serve.add_argument(
        "--search-cache-mb",
        type=NON_NEGATIVE,
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
        "--forwarded-allow-ips",
        metavar="ADDRESSES",
        help="comma-separated addresses or networks of proxies whose X-Forwarded-For and "
        "X-Forwarded-Proto are believed ('*': any; default: FORWARDED_ALLOW_IPS, else "
        "127.0.0.1,::1); see docs/deploy.md",
    )
    serve.add_argument(
        "--gc-interval",
        type=NON_NEGATIVE_INT,
        default=300,
        metavar="SECONDS",
        help="how often to collect expired uploads and orphaned blobs (0: never)",
    )
    _env_backed([a for a in serve._actions if a not in store_options])


def add_server_commands(commands: Any) -> None:
    """Register every command but ``res`` on the top-level parser (vmsres.cli builds it).

    Each command's ``runner`` names the module of vmsres.cli that runs it: serve, store or ops.
    """
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
    master.set_defaults(runner="ops")
    snapshot = _sub(
        commands,
        "backup",
        "an online, consistent snapshot of the store (database and audio)",
        remote=False,
        create=False,
    )
    snapshot.add_argument("file")
    snapshot.set_defaults(runner="ops")
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
    restore.set_defaults(runner="ops")


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
