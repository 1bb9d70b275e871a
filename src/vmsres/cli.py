"""The ``vmsres`` command's entry point."""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from vmsres.server.commands import main as server_main

    return server_main(argv)
