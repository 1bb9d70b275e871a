"""The examples in docs/client.md run as written against a real server."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import docs_examples
from tests.servers import RunningServer


def test_every_action_has_an_example() -> None:
    from vmsres.client.models import python_name
    from vmsres.protocol.spec import ACTIONS

    code = "\n".join(c for _, _, c in docs_examples.blocks("python", "python upload"))
    for action in ACTIONS:
        assert f".{python_name(action)}(" in code, action


def test_python_examples_run(
    fresh_server: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("VMSRES_ENDPOINT", fresh_server.url)
    monkeypatch.setenv("VOLC_ACCESSKEY", fresh_server.access_key)
    monkeypatch.setenv("VOLC_SECRETKEY", fresh_server.secret_key)
    namespace = docs_examples.run(("python",))
    assert namespace["renamed"].name == "appointment reminder v2"
    assert namespace["deleted"].resource_key == namespace["created"].resource_key
    assert namespace["decided"].state == 1
