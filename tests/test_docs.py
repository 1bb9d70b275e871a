"""The generated parts of docs/ match the code they describe."""

from __future__ import annotations

from pathlib import Path

import pytest
from tools import clientgen, docgen

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("relative", sorted(docgen.SECTIONS))
def test_generated_sections_are_current(relative: str) -> None:
    text = (ROOT / relative).read_text()
    assert docgen.render(text, dict(docgen.SECTIONS[relative])) == text, (
        f"{relative} is stale: run `.venv/bin/python -m tools.docgen`"
    )


@pytest.mark.parametrize("relative", sorted(clientgen.FILES))
def test_generated_client_is_current(relative: str) -> None:
    assert clientgen.render(relative) == (ROOT / relative).read_text(), (
        f"{relative} is stale: run `.venv/bin/python -m tools.clientgen`"
    )


def test_every_error_code_is_documented() -> None:
    text = (ROOT / "docs/errors.md").read_text()
    from vmsres.protocol.errors import ERRORS

    for code in ERRORS:
        assert f"| {code} |" in text
