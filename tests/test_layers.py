"""Import contracts: the arrows between vmsres's layers point one way (docs/architecture.md).

Every import statement of src/vmsres counts, at any depth (a lazy import inside a function is
still an arrow), relative ones resolved, and so does importlib.import_module("...") or
__import__("..."). The protocol and the client are also held to their third-party dependencies.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"

# (importer package, forbidden packages, why). A package stands for itself and its submodules.
CONTRACTS: list[tuple[str, tuple[str, ...], str]] = [
    (
        "vmsres.protocol",
        ("vmsres.client", "vmsres.server", "vmsres.ops", "vmsres.cli"),
        "protocol is the bottom: client and server both build on it",
    ),
    (
        "vmsres.client",
        ("vmsres.server", "vmsres.ops", "vmsres.cli", "vmsres.testing"),
        "the client ships without the server",
    ),
    (
        "vmsres.server",
        ("vmsres.client", "vmsres.ops", "vmsres.cli", "vmsres.testing"),
        "ops and the command line build on the server, not the other way",
    ),
    (
        "vmsres.ops",
        ("vmsres.client", "vmsres.cli", "vmsres.testing"),
        "the ops tools work on a store; the command line runs them",
    ),
    (
        "vmsres.cli.arguments",
        (
            "vmsres.cli.serve",
            "vmsres.cli.store",
            "vmsres.cli.ops",
            "vmsres.ops",
            "vmsres.server.store",
            "vmsres.server.service",
            "vmsres.server.wire",
            "vmsres.server.actions",
            "vmsres.server.blobs",
            "vmsres.server.audio",
            "vmsres.server.console",
            "vmsres.server.serve",
            "vmsres.server.admin.app",
            "vmsres.server.masterkey",
        ),
        "building the parser (vmsres --help) needs declarations only, not the runtime",
    ),
    (
        "vmsres.server.settings",
        ("vmsres.server",),
        "settings are read by every layer, so they import none",
    ),
    (
        "vmsres.server.store",
        (
            "vmsres.server.service",
            "vmsres.server.wire",
            "vmsres.server.actions",
            "vmsres.server.admin",
            "vmsres.server.console",
        ),
        "the store is below the service",
    ),
    (
        "vmsres.server.service",
        (
            "vmsres.server.wire",
            "vmsres.server.actions",
            "vmsres.server.admin",
            "vmsres.server.console",
            "vmsres.server.serve",
        ),
        "the service is below the wire API, the admin API and the console",
    ),
    (
        "vmsres.server.admin",
        ("vmsres.server.store", "vmsres.server.wire", "vmsres.server.actions", "vmsres.server.console"),
        "the admin API goes through the service",
    ),
    (
        "vmsres.server.console",
        ("vmsres.server.store", "vmsres.server.wire", "vmsres.server.actions"),
        "the console goes through the service",
    ),
    (
        "vmsres.server.wire",
        ("vmsres.server.admin", "vmsres.server.console", "vmsres.server.serve"),
        "the wire API knows nothing of the operator surfaces",
    ),
    (
        "vmsres.server.actions",
        ("vmsres.server.wire", "vmsres.server.admin", "vmsres.server.console"),
        "actions are below the wire envelope",
    ),
]

# Known exceptions as (importer, target), each with its reason in a comment. None today: keep it
# so; an exception hides the next real violation of its contract.
ALLOWED: set[tuple[str, str]] = set()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _module_exists(name: str) -> bool:
    base = SRC.joinpath(*name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imports_of(path: Path) -> Iterator[str]:
    """Every vmsres module the file imports; ``from pkg import sub`` counts as pkg.sub."""
    module = _module_name(path)
    package = module if _is_package(path) else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                yield submodule if _module_exists(submodule) else base
        elif _is_dynamic_import(node):
            assert isinstance(node, ast.Call)
            name = node.args[0]
            # A name computed at run time cannot be checked: say so rather than miss an arrow.
            yield name.value if isinstance(name, ast.Constant) and isinstance(name.value, str) else "?"


def _is_dynamic_import(node: ast.AST) -> bool:
    """``importlib.import_module(...)``, ``import_module(...)`` or ``__import__(...)``."""
    if not isinstance(node, ast.Call) or not node.args:
        return False
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    return name in ("import_module", "__import__")


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def arrows() -> list[tuple[str, str]]:
    found = []
    for path in sorted((SRC / "vmsres").rglob("*.py")):
        importer = _module_name(path)
        found.extend((importer, target) for target in imports_of(path) if _within(target, "vmsres"))
    return found


def broken(found: list[tuple[str, str]]) -> list[str]:
    problems = []
    for importer, target in found:
        if (importer, target) in ALLOWED:
            continue
        for package, forbidden, why in CONTRACTS:
            # Arrows inside a package are its own business.
            if not _within(importer, package) or _within(target, package):
                continue
            if any(_within(target, f) for f in forbidden):
                problems.append(f"{importer} -> {target}: {why}")
    return problems


def test_the_walk_sees_the_package() -> None:
    found = arrows()
    # A walk that found nothing would pass every contract.
    assert len(found) > 200
    assert ("vmsres.server.wire.app", "vmsres.protocol.errors") in found
    assert ("vmsres.cli", "vmsres.cli.serve") in found  # an import inside a function


@pytest.mark.parametrize(
    ("importer", "target"),
    [
        ("vmsres.server.service.admin", "vmsres.server.wire.envelope"),
        ("vmsres.server.console.ops", "vmsres.server.store.resources"),
        ("vmsres.server.store.database", "vmsres.server.service.review"),
        ("vmsres.server.settings", "vmsres.server.service.review"),
        ("vmsres.client.cli", "vmsres.cli.store"),
        ("vmsres.server.serve", "vmsres.cli.arguments"),
        ("vmsres.ops.backup", "vmsres.cli.store"),
        ("vmsres.cli.arguments", "vmsres.server.service.admin"),
        ("vmsres.cli.arguments", "vmsres.cli.store"),
        ("vmsres.protocol.spec", "vmsres.client"),
        ("vmsres.server.serve", "vmsres.ops.backup"),
    ],
)
def test_a_forbidden_arrow_is_caught(importer: str, target: str) -> None:
    assert broken([(importer, target)]), f"{importer} -> {target} passed"


def test_every_arrow_points_the_right_way() -> None:
    assert broken(arrows()) == []


# Third-party distributions a layer may import, beyond the standard library and vmsres itself:
# the protocol ships with the client, the client runs where only its dependencies are installed.
THIRD_PARTY_ALLOWED: dict[str, frozenset[str]] = {
    "vmsres.protocol": frozenset({"orjson"}),
    "vmsres.client": frozenset({"orjson", "httpx"}),
}
# Modules whose dynamic import names a module chosen at run time, on purpose: backends.require
# imports the optional modules of an extra to tell whether it is installed.
DYNAMIC_ALLOWED = {"vmsres.server.backends"}


def third_party(found: list[tuple[str, str]]) -> list[str]:
    problems = []
    for importer, target in found:
        top = target.split(".")[0]
        if top in ("vmsres", "__future__") or top in sys.stdlib_module_names:
            continue
        for package, allowed in THIRD_PARTY_ALLOWED.items():
            if _within(importer, package) and top not in allowed:
                problems.append(f"{importer} -> {target}: {package} may import only {sorted(allowed)}")
    return problems


def every_import() -> list[tuple[str, str]]:
    return [
        (_module_name(path), target)
        for path in sorted((SRC / "vmsres").rglob("*.py"))
        for target in imports_of(path)
    ]


def test_protocol_and_client_import_only_their_dependencies() -> None:
    found = every_import()
    assert ("vmsres.client.sync", "httpx") in found  # the walk sees third-party imports
    assert third_party(found) == []


@pytest.mark.parametrize(
    ("importer", "target"),
    [
        ("vmsres.protocol.spec", "httpx"),
        ("vmsres.protocol.records", "pydantic"),
        ("vmsres.client.core", "sqlalchemy"),
        ("vmsres.client.cli", "fastapi.routing"),
    ],
)
def test_a_forbidden_dependency_is_caught(importer: str, target: str) -> None:
    assert third_party([(importer, target)]), f"{importer} -> {target} passed"


def test_dynamic_imports_are_seen_and_named() -> None:
    tree = ast.parse('import importlib\nimportlib.import_module("vmsres.server.store")\n__import__(x)')
    calls = [node for node in ast.walk(tree) if _is_dynamic_import(node)]
    assert len(calls) == 2
    unnamed = [
        importer for importer, target in every_import() if target == "?" and importer not in DYNAMIC_ALLOWED
    ]
    assert unnamed == [], f"imports of a name computed at run time escape the contracts: {unnamed}"


def test_known_exceptions_are_still_needed() -> None:
    # An exception nobody needs any more would hide the next real violation.
    found = set(arrows())
    assert found >= ALLOWED, ALLOWED - found
