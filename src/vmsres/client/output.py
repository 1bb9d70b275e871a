"""Plain-text output shared by the ``vmsres`` commands: tables, labels and times for people.

Columns are aligned by display width, not by character count: a Chinese character takes two
terminal cells, a combining mark none, so ``len`` would misalign every row holding one.
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Sequence
from enum import IntEnum

_WIDE = frozenset({"W", "F"})  # East Asian Wide and Fullwidth: two cells
_ZERO_WIDTH = frozenset({"Mn", "Me", "Cf"})  # combining marks and format characters: none


def display_width(text: str) -> int:
    """How many terminal cells ``text`` takes."""
    width = 0
    for char in text:
        if unicodedata.category(char) in _ZERO_WIDTH:
            continue
        width += 2 if unicodedata.east_asian_width(char) in _WIDE else 1
    return width


def format_table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> str:
    cells = [list(map(str, header)), *[[str(c) for c in row] for row in rows]]
    widths = [max(display_width(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join(
        "  ".join(c + " " * (w - display_width(c)) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in cells
    )


def label(enum: type[IntEnum], value: int) -> str:
    """``audio`` for ResourceType 0 and the like; the number itself when it has no name."""
    try:
        return enum(value).name.lower()
    except ValueError:
        return str(value)


def iso_time(epoch_seconds: int | float) -> str:
    """An epoch time as ISO 8601 in UTC, e.g. ``2026-11-30T15:04:05Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_seconds))
