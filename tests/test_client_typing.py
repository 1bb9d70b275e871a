"""The client's types hold up under ``mypy --strict`` in a caller's program."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parent


def _mypy(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", *map(str, paths)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_example_program_passes_mypy_strict() -> None:
    done = _mypy(HERE / "typing_example.py")
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_catches_misuse(tmp_path: Path) -> None:
    """The check above can fail: wrong argument types and unknown parameters are reported."""
    wrong = tmp_path / "wrong.py"
    wrong.write_text(
        "from vmsres.client import Client\n"
        "def f(client: Client) -> None:\n"
        '    client.query_open_get_resource("0")\n'
        "    client.open_update_resource(resource_key='k', nmae='x')\n"
        "    page: int = client.query_open_get_resource(0)\n"
    )
    done = _mypy(wrong)
    assert done.returncode == 1
    assert (
        'wrong.py:3: error: Argument 1 to "query_open_get_resource" of "Operations" has incompatible '
        'type "str"; expected "int"' in done.stdout
    )
    assert 'Unexpected keyword argument "nmae"' in done.stdout
    assert 'Incompatible types in assignment (expression has type "ResourcePage"' in done.stdout
