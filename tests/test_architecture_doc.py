"""docs/architecture.md names files, modules and functions: each one must exist, so the page a
newcomer follows does not drift from the code it describes."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")

# A path in the page is relative to the repository, to src/vmsres, src/vmsres/server (the
# request path writes "service/outages.py") or src/vmsres/protocol ("spec.py" in its section).
BASES = (
    ROOT,
    ROOT / "src" / "vmsres",
    ROOT / "src" / "vmsres" / "server",
    ROOT / "src" / "vmsres" / "protocol",
)

# Names the walk-through and the request path use, with the module that holds each.
NAMES: list[tuple[str, str]] = [
    ("vmsres.server.transport", "GuardedHttpToolsProtocol"),
    ("vmsres.server.wire.app", "VmsApp"),
    ("vmsres.server.wire.envelope", "success_body"),
    ("vmsres.server.wire.envelope", "error_body"),
    ("vmsres.server.actions.dryrun", "DRY_RUN_CHECKS"),
    ("vmsres.server.actions.dryrun", "_exists_not_leased"),
    ("vmsres.server.actions.resources", "action"),
    ("vmsres.protocol.spec", "ACTION_SPECS"),
    ("vmsres.protocol.spec", "ACTIONS"),
    ("vmsres.server.actions", "RESULTS"),
    ("vmsres.protocol.spec", "ActionSpec"),
    ("vmsres.protocol.spec", "Param"),
    ("vmsres.protocol.spec", "_resource_key"),
    ("vmsres.protocol.spec", "_name"),
    ("vmsres.protocol.spec", "_any_type"),
    ("vmsres.protocol.records", "SHAPES"),
    ("vmsres.protocol.records", "Shape"),
    ("vmsres.protocol.records", "Field"),
    ("vmsres.protocol.records", "Result"),
    ("vmsres.protocol.records", "RESOURCE_REF"),
    ("vmsres.protocol.errors", "ResourceKeyIsNotExist"),
    ("vmsres.protocol.errors", "OperationDenied"),
    ("vmsres.server.admin.operations", "AdminOperation"),
    ("vmsres.server.service.admin", "AdminOps"),
    ("vmsres.server.service.resources", "ResourceService"),
    ("vmsres.cli.store", "SHOW"),
    ("vmsres.cli", "main"),
    ("vmsres.client.cli", "_spec_arguments"),
    ("vmsres.client", "Client"),
    ("vmsres.client", "AsyncClient"),
]

# Methods the walk-through tells a newcomer to call or copy.
METHODS: list[tuple[str, str, str]] = [
    ("vmsres.server.service.resources", "ResourceService", "rename"),
    ("vmsres.server.service.resources", "ResourceService", "check_not_leased"),
    ("vmsres.server.service.resources", "ResourceService", "delete"),
    ("vmsres.server.service.resources", "ResourceService", "_announce"),
    ("vmsres.server.service.resources", "ResourceService", "_wake"),
    ("vmsres.server.service.resources", "ResourceService", "_audit"),
    ("vmsres.server.service.resources", "ResourceService", "_audited"),
    ("vmsres.server.service.resources", "ResourceService", "_now"),
    ("vmsres.server.wire.app", "VmsApp", "wire"),
]


def _paths() -> set[str]:
    found = set(re.findall(r"(?<![\w/.])((?:[\w-]+/)*[\w-]+\.py)\b", DOC))
    found |= set(re.findall(r"`((?:src|tests|tools|scripts|docs)/[\w/.-]*)`", DOC))
    found |= set(re.findall(r"`((?:[\w]+/)+)`", DOC))  # folders: `tools/`, `store/migrations/versions/`
    return found


def _exists(relative: str) -> bool:
    return any((base / relative).exists() for base in BASES)


def test_the_page_names_paths() -> None:
    # A regex that found nothing would pass every check.
    assert {"tests/test_layers.py", "service/outages.py", "cli/serve.py", "tools/"} <= _paths()


@pytest.mark.parametrize("relative", sorted(_paths()))
def test_every_path_exists(relative: str) -> None:
    assert _exists(relative), f"docs/architecture.md names {relative}, which is not in the tree"


@pytest.mark.parametrize("module", sorted(set(re.findall(r"`(vmsres(?:\.\w+)+)`", DOC))))
def test_every_module_exists(module: str) -> None:
    # `vmsres.client.Client` names an attribute of a module: import the longest module prefix.
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        try:
            target: object = importlib.import_module(".".join(parts[:end]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[end:]:
            assert hasattr(target, attribute), f"{module}: no {attribute}"
            target = getattr(target, attribute)
        return
    pytest.fail(f"docs/architecture.md names {module}, which does not import")


@pytest.mark.parametrize(("module", "name"), NAMES)
def test_every_named_thing_exists(module: str, name: str) -> None:
    assert name in DOC, f"{name} is no longer in docs/architecture.md: drop it from NAMES"
    assert hasattr(importlib.import_module(module), name), f"{module} has no {name}"


@pytest.mark.parametrize(("module", "owner", "method"), METHODS)
def test_every_named_method_exists(module: str, owner: str, method: str) -> None:
    assert method in DOC, f"{method} is no longer in docs/architecture.md: drop it from METHODS"
    assert callable(getattr(getattr(importlib.import_module(module), owner), method, None))


def test_the_layer_table_matches_the_contracts() -> None:
    """Every row of the page's contract table is a contract of tests/test_layers.py."""
    from tests.test_layers import CONTRACTS

    documented = set(re.findall(r"^\| ([\w.]+) \| .* \| .* \|$", DOC, flags=re.MULTILINE)) - {"Package"}
    enforced = {package.removeprefix("vmsres.") for package, _, _ in CONTRACTS}
    assert documented == enforced
