"""What `pip install vmsres` (no extras) gives, what the client loads, and how the command fails.

The extras' modules are hidden from a fresh interpreter by a sys.meta_path finder that answers
"no such module" for them, exactly what Python answers when a package is not installed; then the
real `vmsres` entry point runs.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest

from tests.servers import TEST_ACCESS_KEY, TEST_SECRET_KEY, run_cli
from vmsres import __version__

# The modules the optional extras bring (pyproject.toml [project.optional-dependencies]).
EXTRA_MODULES = ("asyncpg", "psycopg", "boto3", "botocore", "redis")
SERVER_ONLY_MODULES = (
    "sqlalchemy",
    "alembic",
    "fastapi",
    "starlette",
    "uvicorn",
    "vmsres.server",
    *EXTRA_MODULES,
)

# Packages only the server needs: the client must run with none of them installed.
SERVER_PACKAGES = (
    "sqlalchemy",
    "alembic",
    "fastapi",
    "starlette",
    "uvicorn",
    "jinja2",
    "prometheus_client",
    "mutagen",
    "cryptography",
)


def hiding(packages: Sequence[str]) -> str:
    """A ``python -c`` program: the ``vmsres`` command, as if ``packages`` were not installed."""
    return f"""
import sys


class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {tuple(packages)!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, NotInstalled())
from vmsres.cli import main

sys.exit(main(sys.argv[1:]))
"""


WITHOUT_EXTRAS = hiding(EXTRA_MODULES)
CLIENT_ONLY = hiding((*EXTRA_MODULES, *SERVER_PACKAGES))


def without_extras(
    *args: str, env: dict[str, str] | None = None, program: str = WITHOUT_EXTRAS
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", program, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def loaded_modules(code: str) -> list[str]:
    """The server-only modules a fresh interpreter has loaded after running ``code``."""
    probe = (
        "import json, sys\n"
        f"{code}\n"
        f"print(json.dumps(sorted(m for m in {SERVER_ONLY_MODULES!r} if m in sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout.splitlines()[-1]))


def one_line_failure(done: subprocess.CompletedProcess[str], *needles: str, code: int = 1) -> str:
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith("vmsres: "), done.stderr
    for needle in needles:
        assert needle in done.stderr, done.stderr
    return done.stderr


def test_the_client_loads_no_server_dependency() -> None:
    assert loaded_modules("import vmsres.client, vmsres.client.cli") == []


def test_client_help_and_version_do_not_import_the_server() -> None:
    run_main = "from vmsres.cli import main\ntry:\n    main({})\nexcept SystemExit:\n    pass"
    assert loaded_modules(run_main.format(["res", "--help"])) == []
    assert loaded_modules(run_main.format(["res", "list", "--help"])) == []
    assert loaded_modules(run_main.format(["--version"])) == []
    version = run_cli("--version")
    assert version.stdout == f"vmsres {__version__}\n"


def test_help_loads_declarations_not_the_server() -> None:
    # The parser is built from the settings' defaults and the admin operation table only; the
    # module that runs a command (and SQLAlchemy, FastAPI, ...) loads once the command runs.
    run_main = "from vmsres.cli import main\ntry:\n    main({})\nexcept SystemExit:\n    pass"
    declarations = "import sys\nprint(sorted(m for m in sys.modules if m.startswith('vmsres.server.')))"
    for argv in (["--help"], ["serve", "--help"], ["accounts", "list", "--help"], ["backup", "--help"]):
        assert loaded_modules(run_main.format(argv)) == ["vmsres.server"], argv
        probe = subprocess.run(
            [sys.executable, "-c", f"{run_main.format(argv)}\n{declarations}"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert probe.stdout.splitlines()[-1] == str(
            ["vmsres.server.admin", "vmsres.server.admin.operations", "vmsres.server.settings"]
        ), argv


def test_top_level_help_lists_every_command_in_plain_text() -> None:
    text = run_cli("--help").stdout
    assert "``" not in text and ":class:" not in text
    for command in ("serve", "accounts", "keys", "review", "backup", "restore", "res", "--version"):
        assert command in text


def test_every_serve_option_names_its_environment_variable() -> None:
    from vmsres.cli import build_parser

    text = " ".join(run_cli("serve", "--help").stdout.split())
    serve = build_parser()._subparsers._group_actions[0].choices["serve"]  # type: ignore[union-attr]
    options = [a for a in serve._actions if a.option_strings and a.dest != "help"]
    assert len(options) > 25
    for action in options:
        assert f"[env VMSRES_{action.dest.upper()}]" in text, action.option_strings


@pytest.fixture
def free_port() -> Iterator[int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    yield port


def _start(command: Sequence[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("{") and '"listening"' in line:
            return process, str(json.loads(line)["url"])
    process.wait(timeout=30)
    raise AssertionError(f"server exited before listening: {process.stderr.read() if process.stderr else ''}")


def _stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)


def _bootstrap_env() -> dict[str, str]:
    return {
        **os.environ,
        "VMSRES_BOOTSTRAP_ACCESS_KEY": TEST_ACCESS_KEY,
        "VMSRES_BOOTSTRAP_SECRET_KEY": TEST_SECRET_KEY,
    }


def test_without_extras_the_embedded_server_serves_and_the_client_works(tmp_path: Path) -> None:
    data = tmp_path / "data"
    process, url = _start(
        [sys.executable, "-c", WITHOUT_EXTRAS, "serve", "--port", "0", "--data-dir", str(data)],
        _bootstrap_env(),
    )
    try:
        assert httpx.get(f"{url}/readyz", timeout=10).json()["status"] == "ready"
        client = ["--endpoint", url, "--access-key", TEST_ACCESS_KEY, "--secret-key", TEST_SECRET_KEY]
        created = without_extras(
            "res", "create-tts", "--name", "hello", "--tts-template-content", "hi", *client
        )
        assert created.returncode == 0, created.stderr
        listed = without_extras("res", "list", "--type", "1", "--json", *client)
        assert listed.returncode == 0, listed.stderr
        assert [r["Name"] for r in json.loads(listed.stdout)["Records"]] == ["hello"]
        # The client needs none of the server's packages.
        alone = without_extras("res", "list", "--type", "1", "--json", *client, program=CLIENT_ONLY)
        assert alone.returncode == 0 and json.loads(alone.stdout) == json.loads(listed.stdout), alone.stderr
        assert without_extras("--version", program=CLIENT_ONLY).stdout == f"vmsres {__version__}\n"
        accounts = without_extras("accounts", "list", "--json", "--data-dir", str(data))
        assert accounts.returncode == 0, accounts.stderr
        assert [a["Name"] for a in json.loads(accounts.stdout)] == ["default"]
    finally:
        _stop(process)


@pytest.mark.parametrize(
    ("option", "feature", "extra"),
    [
        (["--database-url", "postgresql://postgres@127.0.0.1:5432/postgres"], "PostgreSQL", "postgres"),
        (["--blob-url", "s3://bucket/prefix"], "S3", "s3"),
        (["--redis-url", "redis://127.0.0.1:6379/0"], "Redis", "redis"),
    ],
)
def test_a_backend_without_its_extra_is_one_line_naming_the_extra(
    tmp_path: Path, option: list[str], feature: str, extra: str
) -> None:
    expected = f"vmsres: {feature} support is not installed: pip install 'vmsres[{extra}]'\n"
    served = without_extras("serve", "--port", "0", "--data-dir", str(tmp_path / "data"), *option)
    assert one_line_failure(served) == expected
    assert not (tmp_path / "data").exists()
    if extra != "redis":  # store commands take no --redis-url
        listed = without_extras("accounts", "list", "--data-dir", str(tmp_path / "data"), *option)
        assert one_line_failure(listed) == expected


def test_a_taken_port_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_cli("serve", "--port", str(port), "--data-dir", str(tmp_path / "data"), check=False)
    one_line_failure(done, f"cannot listen on 127.0.0.1:{port}")


def test_a_data_dir_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    for command in (["serve", "--port", "0"], ["accounts", "list"], ["backup", str(tmp_path / "b.tar")]):
        done = run_cli(*command, "--data-dir", str(not_a_folder), check=False)
        one_line_failure(done, f"the data dir {not_a_folder} is not a folder")


def test_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    nobody = "postgresql://postgres@127.0.0.1:1/none"
    for command in (["serve", "--port", "0"], ["accounts", "list"], ["keys", "list"]):
        done = run_cli(*command, "--data-dir", str(tmp_path / "d"), "--database-url", nobody, check=False)
        one_line_failure(done, "vmsres: database: ", "127.0.0.1")
    wrong = run_cli("accounts", "list", "--database-url", "mysql://x/y", check=False)
    one_line_failure(wrong, "unsupported database URL mysql://")


def test_store_commands_refuse_a_store_that_does_not_exist(tmp_path: Path) -> None:
    missing = tmp_path / "typo"
    for command in (
        ["accounts", "list"],
        ["keys", "create", "--account", "default"],
        ["gc"],
        ["backup", str(tmp_path / "b.tar")],
        ["keys", "rotate-master-key", "--new-key-file", str(tmp_path / "new.key")],
    ):
        done = run_cli(*command, "--data-dir", str(missing), check=False)
        one_line_failure(done, f"no vmsres store at {missing / 'vmsres.db'}")
    assert not missing.exists() and not (tmp_path / "new.key").exists()
    made = run_cli("accounts", "create", "acme", "--create", "--json", "--data-dir", str(missing))
    assert json.loads(made.stdout)["Name"] == "acme"
    assert (missing / "master.key").is_file()
    listed = run_cli("accounts", "list", "--json", "--data-dir", str(missing))
    assert [a["Name"] for a in json.loads(listed.stdout)] == ["acme"]


def test_options_a_command_would_ignore_are_refused(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path / "data")]
    for command in (
        ["serve", "--endpoint", "http://127.0.0.1:9"],
        ["backup", "b.tar", "--endpoint", "http://127.0.0.1:9"],
        ["backup", "b.tar", "--admin-token", "t"],
        ["restore", "b.tar", "--admin-token", "t"],
        ["gc", "--endpoint", "http://127.0.0.1:9"],
        ["serve", "--create"],
    ):
        done = run_cli(*command, *data, check=False)
        assert done.returncode == 2 and "unrecognized arguments" in done.stderr, (command, done.stderr)
    token_alone = run_cli("accounts", "list", "--admin-token", "t", "--create", *data, check=False)
    one_line_failure(token_alone, "--admin-token goes with --endpoint")
    remote = ["--endpoint", "http://127.0.0.1:9", "--admin-token", "t"]
    remote_create = run_cli("accounts", "list", *remote, "--create", check=False)
    one_line_failure(remote_create, "--create works on a store")
    remote_store = run_cli("accounts", "list", *remote, *data, check=False)
    one_line_failure(remote_store, "works on that server's own store: drop --data-dir")
    from_env = run_cli(
        "keys",
        "list",
        "--admin-token",
        "t",
        "--database-url",
        "postgresql://x/y",
        check=False,
        env={**os.environ, "VMSRES_ENDPOINT": "http://127.0.0.1:9"},
    )
    one_line_failure(from_env, "--endpoint (or VMSRES_ENDPOINT)", "drop --database-url")
    assert not (tmp_path / "data").exists()


def test_serve_options_come_from_the_environment_and_the_command_line_wins(
    tmp_path: Path, free_port: int
) -> None:
    env = {
        **_bootstrap_env(),
        "VMSRES_DATA_DIR": str(tmp_path / "from-env"),
        "VMSRES_PORT": str(free_port),
        "VMSRES_REVIEW": "manual",
        "VMSRES_FETCH_ALLOW_HOST": "a.example, b.example",
    }
    process, url = _start(
        [sys.executable, "-m", "vmsres", "serve", "--data-dir", str(tmp_path / "from-line")], env
    )
    try:
        assert url == f"http://127.0.0.1:{free_port}"
        assert (tmp_path / "from-line" / "vmsres.db").is_file() and not (tmp_path / "from-env").exists()
        from vmsres.client import Client, ResourceState

        with Client(TEST_ACCESS_KEY, TEST_SECRET_KEY, endpoint=url) as client:
            ref = client.open_create_tts("waits", "hello")
            assert client.get_resource(ref.resource_key, 1).state == ResourceState.REVIEWING
    finally:
        _stop(process)
    bad = run_cli("serve", env={**os.environ, "VMSRES_PORT": "eighty"}, check=False)
    one_line_failure(bad, "VMSRES_PORT='eighty': not a valid int", code=2)
    bad_choice = run_cli("serve", env={**os.environ, "VMSRES_REVIEW": "sometimes"}, check=False)
    one_line_failure(bad_choice, "VMSRES_REVIEW='sometimes': not one of auto, manual", code=2)
    # An unusable variable is only an error where it is used.
    listed = run_cli(
        "accounts",
        "list",
        "--data-dir",
        str(tmp_path / "from-line"),
        env={**os.environ, "VMSRES_PORT": "eighty"},
    )
    assert "default" in listed.stdout


def test_the_wheel_carries_every_file_the_package_needs() -> None:
    """Every file under src/vmsres reaches the wheel: a .py file through a package setuptools finds
    (a folder with an __init__.py: packages.find takes no namespace packages), any other file
    through a pattern of [tool.setuptools.package-data]. Migrations, templates, static files and
    py.typed are data a forgotten pattern would silently leave out of ``pip install vmsres``."""
    import tomllib

    root = Path(__file__).resolve().parent.parent
    package = root / "src" / "vmsres"
    config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    assert config["packages"]["find"]["where"] == ["src"]
    shipped = {path for pattern in config["package-data"]["vmsres"] for path in package.glob(pattern)}
    files = [p for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert len(files) > 100
    for path in files:
        if path.suffix == ".py":
            folders = path.relative_to(package).parents
            missing = [f for f in folders if not (package / f / "__init__.py").is_file()]
            assert not missing, f"{path} is in a folder without __init__.py: not packaged"
        else:
            assert path in shipped, f"{path} matches no package-data pattern: not packaged"
    # The data the server cannot start or serve without.
    names = {str(p.relative_to(package)) for p in shipped}
    assert {
        "py.typed",
        "server/store/migrations/script.py.mako",
        "server/console/static/console.css",
    } <= names
    assert any(n.startswith("server/console/templates/") for n in names)
    # Nothing outside src/ is a package: tools/, tests/ and scripts/ stay out of the wheel.
    assert not (root / "src" / "tools").exists() and not (root / "src" / "tests").exists()


def test_serve_refuses_numbers_out_of_range_on_one_line(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path / "data")]
    for option, value, needle in (
        ("--port", "99999", "argument --port: must be from 0 to 65535, not 99999"),
        ("--port", "-1", "argument --port: must be from 0 to 65535, not -1"),
        ("--workers", "0", "argument --workers: must be at least 1, not 0"),
        ("--max-resources", "-5", "argument --max-resources: must be at least 0, not -5"),
        ("--webhook-poll", "nan", "argument --webhook-poll: must be at least 0, not nan"),
    ):
        done = run_cli("serve", *data, option, value, check=False)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert done.stderr.splitlines()[-1] == f"vmsres serve: error: {needle}", done.stderr
    from_env = run_cli("serve", *data, env={**os.environ, "VMSRES_PORT": "70000"}, check=False)
    one_line_failure(from_env, "VMSRES_PORT='70000': must be from 0 to 65535, not 70000", code=2)
    workers_env = run_cli("serve", *data, env={**os.environ, "VMSRES_WORKERS": "0"}, check=False)
    one_line_failure(workers_env, "VMSRES_WORKERS='0': must be at least 1, not 0", code=2)
    assert not (tmp_path / "data").exists()


def test_a_data_dir_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    # Under a file: no user (root included) can make a folder there.
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    where = blocker / "data"
    for command in (["serve", "--port", "0"], ["accounts", "list", "--create"]):
        done = run_cli(*command, "--data-dir", str(where), check=False)
        one_line_failure(done, f"vmsres: cannot make the data dir {where}: Not a directory")


def test_an_unreachable_endpoint_is_named(free_port: int) -> None:
    token = ["--admin-token", "t"]
    down = run_cli("accounts", "list", "--endpoint", f"http://127.0.0.1:{free_port}/", *token, check=False)
    one_line_failure(down, f"vmsres: cannot reach http://127.0.0.1:{free_port}: ")
    for endpoint in ("127.0.0.1:8080", "ftp://127.0.0.1"):
        bad = run_cli("accounts", "list", "--endpoint", endpoint, *token, check=False)
        one_line_failure(bad, "--endpoint (or VMSRES_ENDPOINT) is a URL starting http:// or https://")
