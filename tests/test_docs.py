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


def test_the_webhook_event_example_has_the_fields_events_carry() -> None:
    """docs/review.md shows a resource event by hand; its Data must be what resource_payload
    sends, field for field and in order, so a subscriber reading the page parses the real thing."""
    import json
    import re

    from vmsres.server.service.events import resource_payload

    text = (ROOT / "docs/review.md").read_text()
    block = re.search(r"On every change of a resource.*?```json\n(.*?)```", text, flags=re.DOTALL)
    assert block, "docs/review.md no longer shows the resource event"
    example = json.loads(block.group(1))
    row = {
        "resource_key": "k",
        "name": "n",
        "type": 1,
        "state": 2,
        "reject_reason": "r",
        "reviewed_by": "reviewer:alice",
    }
    assert list(example["Data"]) == list(resource_payload(row))
    assert set(example) == {"EventId", "Type", "Account", "Time", "Data"}
