"""TTS template content rules."""

from __future__ import annotations

import re

from vmsres.protocol.errors import InvalidParameter

_VARIABLE = re.compile(r"[A-Za-z0-9]+")
PARAM = "TtsTemplateContent"


def template_variables(content: str) -> list[str]:
    """The ``#name#`` variables of a template, in order; raises InvalidParameter when malformed.

    ``#`` is reserved for variables, so the pieces between ``#`` marks alternate text, name,
    text, ...: an odd count of marks or a name that is not letters and digits is refused.
    """
    if not content.strip():
        raise InvalidParameter(PARAM, "It must not be blank.")
    if "${" in content:
        raise InvalidParameter(PARAM, "Variables are written #name#; ${...} is not allowed.")
    pieces = content.split("#")
    if len(pieces) % 2 == 0:
        raise InvalidParameter(PARAM, "A # has no closing #; variables are written #name#.")
    names = pieces[1::2]
    for name in names:
        if not _VARIABLE.fullmatch(name):
            raise InvalidParameter(PARAM, f"The variable #{name}# must be letters and digits only.")
    return names
