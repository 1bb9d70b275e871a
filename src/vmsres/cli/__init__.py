"""The ``vmsres`` command: the top layer, where the client, the server and the ops tools meet.

``vmsres res ...`` is the client's (vmsres.client.cli); every other command is declared in
vmsres.cli.arguments, from declarations only, and run by the module its parser names: ``serve``
(vmsres.cli.serve), the store commands (vmsres.cli.store), backup, restore and master-key rotation
(vmsres.cli.ops). Building the parser imports none of the server's dependencies and the runner is
imported only once its command is chosen, so help, ``--version`` and ``res`` start fast and
``res`` runs where only the client's dependencies are installed.
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
        from vmsres.cli.arguments import add_server_commands

        add_server_commands(commands)
    add_resource_commands(commands)
    return parser


def _needs_server_commands(argv: Sequence[str]) -> bool:
    # `res` and --version do without the admin operation table: they load no vmsres.server module.
    command = next((a for a in argv if not a.startswith("-")), None)
    if command is None:
        # Top-level help lists every command; --version alone needs none of them.
        return list(argv) != ["--version"]
    return command != "res"


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(_needs_server_commands(arguments)).parse_args(arguments)
    if args.command == "res":
        return run_resource_command(args)
    from vmsres.cli.arguments import CommandFailed, check_environment

    try:
        check_environment(args)
    except CommandFailed as error:
        print(f"vmsres: {error}", file=sys.stderr)
        return 2
    # Imported here, not above: only the command that runs loads the server's runtime.
    if args.runner == "serve":
        from vmsres.cli.serve import run_serve

        return run_serve(args)
    if args.runner == "ops":
        from vmsres.cli.ops import run_ops

        return run_ops(args)
    from vmsres.cli.store import run_store_command

    return run_store_command(args)
