"""The ``vmsres`` command: run the server and manage accounts, keys and reviews on a store."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson

from vmsres.client.cli import add_resource_commands, run_resource_command
from vmsres.service.accounts import AccountError
from vmsres.service.resources import ReviewError
from vmsres.service.review import REVIEW_POLICIES
from vmsres.service.services import Services, open_services
from vmsres.settings import Settings

DATABASE_URL_ENV = "VMSRES_DATABASE_URL"


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


def _json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vmsres", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

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
    serve.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))

    accounts = commands.add_parser("accounts", help="manage accounts").add_subparsers(
        dest="subcommand", required=True
    )
    create = accounts.add_parser("create", help="create an account")
    create.add_argument("name")
    _store_options(create)
    _json_option(create)
    listing = accounts.add_parser("list", help="list accounts")
    _store_options(listing)
    _json_option(listing)

    keys = commands.add_parser("keys", help="manage access keys").add_subparsers(
        dest="subcommand", required=True
    )
    create = keys.add_parser("create", help="create a key (prints AccessKey and SecretKey)")
    create.add_argument("--account", required=True)
    _store_options(create)
    _json_option(create)
    listing = keys.add_parser("list", help="list keys (never their secrets)")
    listing.add_argument("--account")
    _store_options(listing)
    _json_option(listing)
    for name, text in (("disable", "disable a key"), ("enable", "enable a key"), ("delete", "delete a key")):
        sub = keys.add_parser(name, help=text)
        sub.add_argument("access_key")
        _store_options(sub)

    review = commands.add_parser("review", help="decide reviews").add_subparsers(
        dest="subcommand", required=True
    )
    approve = review.add_parser("approve", help="approve a resource (State 1)")
    approve.add_argument("resource_key")
    reject = review.add_parser("reject", help="reject a resource (State 2)")
    reject.add_argument("resource_key")
    reject.add_argument("--reason", required=True)
    for sub in (approve, reject):
        sub.add_argument("--reviewer", default=os.environ.get("USER", "cli"))
        _store_options(sub)
        _json_option(sub)
    add_resource_commands(commands)
    return parser


def _open(args: argparse.Namespace) -> Services:
    settings = Settings(data_dir=args.data_dir, database_url=args.database_url)
    if settings.database_url is None:
        settings.ensure_data_dir()
    return open_services(settings.resolved_database_url())


def _print(args: argparse.Namespace, data: Any, human: str) -> None:
    if getattr(args, "json", False):
        print(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
    else:
        print(human)


def _table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> str:
    cells = [list(map(str, header)), *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells)


async def _accounts(args: argparse.Namespace, services: Services) -> None:
    if args.subcommand == "create":
        row = await services.accounts.create_account(args.name)
        _print(args, {"Name": row["name"]}, f"created account {row['name']}")
    else:
        rows = await services.accounts.list_accounts()
        data = [
            {"Name": r["name"], "Enabled": bool(r["enabled"]), "ReviewPolicy": r["review_policy"]}
            for r in rows
        ]
        _print(
            args,
            data,
            _table(
                [(d["Name"], d["Enabled"], d["ReviewPolicy"] or "-") for d in data],
                ("NAME", "ENABLED", "REVIEW"),
            ),
        )


async def _keys(args: argparse.Namespace, services: Services) -> None:
    if args.subcommand == "create":
        access_key, secret_key = await services.accounts.create_key(args.account)
        _print(
            args,
            {"AccessKey": access_key, "SecretKey": secret_key},
            f"AccessKey: {access_key}\nSecretKey: {secret_key}",
        )
    elif args.subcommand == "list":
        rows = await services.accounts.list_keys(args.account)
        data = [
            {"AccessKey": r["access_key"], "Account": r["account_name"], "Enabled": bool(r["enabled"])}
            for r in rows
        ]
        _print(
            args,
            data,
            _table(
                [(d["AccessKey"], d["Account"], d["Enabled"]) for d in data],
                ("ACCESS KEY", "ACCOUNT", "ENABLED"),
            ),
        )
    elif args.subcommand == "delete":
        await services.accounts.delete_key(args.access_key)
        print(f"deleted {args.access_key}")
    else:
        enabled = args.subcommand == "enable"
        await services.accounts.set_key_enabled(args.access_key, enabled)
        print(f"{args.subcommand}d {args.access_key}")


async def _review(args: argparse.Namespace, services: Services) -> None:
    approve = args.subcommand == "approve"
    row = await services.resources.review(
        args.resource_key, approve, None if approve else args.reason, args.reviewer
    )
    _print(
        args,
        {"ResourceKey": row["resource_key"], "State": row["state"]},
        f"{row['resource_key']}: State {row['state']}",
    )


_COMMANDS: dict[str, Callable[[argparse.Namespace, Services], Awaitable[None]]] = {
    "accounts": _accounts,
    "keys": _keys,
    "review": _review,
}


async def _run_store_command(args: argparse.Namespace) -> None:
    services = _open(args)
    try:
        await _COMMANDS[args.command](args, services)
    finally:
        await services.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        from vmsres.server import serve

        serve(
            Settings(
                data_dir=args.data_dir,
                database_url=args.database_url,
                host=args.host,
                port=args.port,
                workers=args.workers,
                review=args.review,
                log_level=args.log_level,
            )
        )
        return 0
    if args.command == "res":
        return run_resource_command(args)
    try:
        asyncio.run(_run_store_command(args))
    except (AccountError, ReviewError) as error:
        print(f"vmsres: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
