"""The Python examples of docs/client.md, as code blocks to run in order."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

DOC = Path(__file__).parent.parent / "docs" / "client.md"
_BLOCK = re.compile(r"^```(python[^\n]*)\n(.*?)^```", re.M | re.S)


def blocks(*tags: str) -> list[tuple[int, str, str]]:
    """(line, info string, code) of every fenced block whose info string is one of ``tags``."""
    text = DOC.read_text()
    found = []
    for match in _BLOCK.finditer(text):
        if match.group(1).strip() in tags:
            found.append((text.count("\n", 0, match.start()) + 2, match.group(1).strip(), match.group(2)))
    return found


def run(tags: tuple[str, ...], replace: dict[str, str] | None = None) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "docs_example"}
    for line, _, code in blocks(*tags):
        for old, new in (replace or {}).items():
            code = code.replace(old, new)
        exec(compile(code, f"{DOC}:{line}", "exec"), namespace)
    return namespace
