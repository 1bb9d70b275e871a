"""The entry point of the ``vmsres`` command.

``vmsres res ...`` (the client) and ``vmsres --version`` are parsed without importing the server,
so they start fast and need none of the server's dependencies; every other command builds the
server's parser (vmsres.server.commands) and runs there.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from vmsres import __version__
from vmsres.client.cli import add_resource_commands, run_resource_command

DESCRIPTION = (
    "vmsres serves the Volcengine VMS voice-resource OpenAPI (serve), manages a store "
    "(accounts, keys, review, limits, backup, ...) and calls any VMS endpoint (res). "
    "Run 'vmsres COMMAND --help' for a command's options."
)


def build_parser(server_commands: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vmsres", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"vmsres {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    if server_commands:
        from vmsres.server.commands import add_server_commands

        add_server_commands(commands)
    add_resource_commands(commands)
    return parser


def _needs_server(argv: Sequence[str]) -> bool:
    command = next((a for a in argv if not a.startswith("-")), None)
    if command is None:
        # Top-level help lists every command; --version alone needs none of them.
        return list(argv) != ["--version"]
    return command != "res"


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(_needs_server(arguments)).parse_args(arguments)
    if args.command == "res":
        return run_resource_command(args)
    from vmsres.server.commands import run

    return run(args)
