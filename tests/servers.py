"""Starting real vmsres servers on loopback for tests."""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

import pytest
import sqlalchemy as sa
from alembic import command

from vmsres.server.masterkey import Keyring, generate_key_text, load_keyring
from vmsres.server.settings import database_url_for_dir
from vmsres.server.store import migrate
from vmsres.server.store.migrate import sync_url
from vmsres.testing import VmsServer

BACKENDS = ("sqlite", "postgresql")
# The PostgreSQL the suite uses: a fresh database per server is created through this one.
PG_ADMIN_URL = os.environ.get("VMSRES_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("VMSRES_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
T = TypeVar("T")
TEST_ACCESS_KEY = "AKLTtestak"
TEST_SECRET_KEY = "testsk"
START_TIMEOUT_SECONDS = 60


@dataclass
class RunningServer:
    url: str
    data_dir: Path
    # The `vmsres serve` process; None for a server in this process (``embedded``).
    process: subprocess.Popen[str] | None
    access_key: str = TEST_ACCESS_KEY
    secret_key: str = TEST_SECRET_KEY
    stdout_lines: list[str] = field(default_factory=list)
    log_path: Path | None = None
    database_url: str | None = None
    embedded: VmsServer | None = None

    @property
    def store_url(self) -> str:
        return self.database_url or database_url_for_dir(self.data_dir)

    def store_args(self) -> list[str]:
        args = ["--data-dir", str(self.data_dir)]
        return [*args, "--database-url", self.database_url] if self.database_url else args

    def sql(self, statement: str, params: dict[str, Any] | None = None) -> list[Any]:
        """Run SQL on whichever database this server uses, outside the server (a test's backdoor)."""
        return run_sql(self.store_url, statement, params)

    @property
    def host_port(self) -> str:
        return self.url.split("://", 1)[1]

    def stop(self) -> None:
        if self.embedded is not None:
            self.embedded.stop()
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15 * load_factor())
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15 * load_factor())

    def log_lines(self) -> list[str]:
        return self.log_path.read_text().splitlines() if self.log_path else []

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a ``vmsres`` command against this server's store."""
        return run_cli(*args, *self.store_args(), check=check)


def run_cli(
    *args: str, check: bool = True, env: dict[str, str] | None = None, subprocess_run: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run ``vmsres ARGS``: in this process (vmsres.cli.main with its output captured), or with
    ``subprocess_run`` as a real ``python -m vmsres`` (tests/test_cli_smoke.py does so once per
    command; starting an interpreter that imports the server costs a second or more each)."""
    if subprocess_run:
        return subprocess.run(
            [sys.executable, "-m", "vmsres", *args],
            capture_output=True,
            text=True,
            timeout=60 * load_factor(),
            check=check,
            env=env,
        )
    from vmsres.cli import main

    stdout, stderr = io.StringIO(), io.StringIO()
    with _environment(env), contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            returncode = main(list(args))
        except SystemExit as done:  # argparse's usage errors and --help
            returncode = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    result = subprocess.CompletedProcess(["vmsres", *args], returncode, stdout.getvalue(), stderr.getvalue())
    if check:
        result.check_returncode()
    return result


@contextlib.contextmanager
def _environment(env: dict[str, str] | None) -> Iterator[None]:
    """``env`` as the whole environment while the block runs (as a child process would get it)."""
    if env is None:
        yield
        return
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def load_factor() -> float:
    """How much longer than on an idle machine a wall-clock budget of a test may take.

    VMSRES_TEST_TIME_FACTOR when set; otherwise from the load: runnable tasks per core (the suite
    shares two cores with other work), never below 1.
    """
    given = os.environ.get("VMSRES_TEST_TIME_FACTOR")
    if given:
        return max(1.0, float(given))
    try:
        load = os.getloadavg()[0]
    except OSError:
        return 1.0
    return max(1.0, load / (os.cpu_count() or 1))


def _read_until_listening(stream: IO[str], seen: list[str]) -> str:
    for line in stream:
        seen.append(line)
        if line.startswith("{") and '"listening"' in line:
            return str(json.loads(line)["url"])
    raise RuntimeError("server exited before listening:\n" + "".join(seen))


def start_server(
    data_dir: Path,
    extra_args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    bootstrap: bool = True,
    database_url: str | None = None,
) -> RunningServer:
    """Start ``vmsres serve --port 0`` and return once its socket listens (it says so on stdout)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    full_env = dict(os.environ)
    if bootstrap:
        full_env["VMSRES_BOOTSTRAP_ACCESS_KEY"] = TEST_ACCESS_KEY
        full_env["VMSRES_BOOTSTRAP_SECRET_KEY"] = TEST_SECRET_KEY
    full_env.update(env or {})
    log_path = data_dir / f"server-{len(list(data_dir.glob('server-*.log')))}.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vmsres",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--data-dir",
            str(data_dir),
            *(["--database-url", database_url] if database_url else []),
            *extra_args,
        ],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env=full_env,
    )
    assert process.stdout is not None
    seen: list[str] = []
    try:
        url = _read_until_listening(process.stdout, seen)
    except Exception:
        process.kill()
        process.wait()
        raise RuntimeError("".join(seen) + log_path.read_text()) from None
    return RunningServer(
        url=url,
        data_dir=data_dir,
        process=process,
        stdout_lines=seen,
        log_path=log_path,
        database_url=database_url,
    )


def start_embedded_server(
    data_dir: Path, database_url: str | None = None, serve_args: Sequence[str] = ()
) -> RunningServer:
    """The real server in a thread of this process (vmsres.testing.VmsServer) with the test key:
    for tests that need no process of their own (no logs, signals or workers)."""
    embedded = VmsServer(data_dir=data_dir, database_url=database_url, serve_args=serve_args).start()
    try:
        embedded.call(_ensure_test_key)
    except BaseException:
        embedded.stop()
        raise
    return RunningServer(
        url=embedded.endpoint,
        data_dir=data_dir,
        process=None,
        database_url=database_url,
        embedded=embedded,
    )


async def _ensure_test_key(ops: Any) -> None:
    await ops.services.accounts.ensure_key("default", TEST_ACCESS_KEY, TEST_SECRET_KEY)


def run_sql(url: str, statement: str, params: dict[str, Any] | None = None) -> list[Any]:
    engine = sa.create_engine(sync_url(url))
    try:
        with engine.begin() as conn:
            result = conn.execute(sa.text(statement), params or {})
            return list(result.all()) if result.returns_rows else []
    finally:
        engine.dispose()


def migrate_to(url: str, revision: str, keyring: Keyring | None, downgrade: bool = False) -> None:
    """Move a store's schema to ``revision`` (up or down), as an older or newer vmsres would."""
    engine = sa.create_engine(sync_url(url))
    try:
        with engine.begin() as conn:
            config = migrate.alembic_config()
            config.attributes["connection"] = conn
            config.attributes["keyring"] = keyring
            (command.downgrade if downgrade else command.upgrade)(config, revision)
    finally:
        engine.dispose()


def keyed_store(data_dir: Path, database_url: str | None) -> tuple[Keyring, str]:
    """A new data dir holding a fresh master key and no schema yet, for migration tests.

    Returns the keyring and the store's URL (the given PostgreSQL one, else the dir's SQLite file).
    """
    data_dir.mkdir(parents=True)
    (data_dir / "master.key").write_text(generate_key_text())
    return load_keyring(data_dir, None, create=False), database_url or database_url_for_dir(data_dir)


def insert_account(url: str, name: str) -> int:
    """Add an account row straight into an old schema, as the vmsres of that day would have; its id."""
    run_sql(url, "INSERT INTO accounts (name, enabled, created_at) VALUES (:n, true, 1)", {"n": name})
    [(account_id,)] = run_sql(url, "SELECT id FROM accounts WHERE name = :n", {"n": name})
    return int(account_id)


def postgres_problem() -> str | None:
    """Why the test PostgreSQL cannot be used, or None when it answers."""
    import psycopg

    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        return f"no PostgreSQL at {PG_ADMIN_URL}: {type(exc).__name__}: {exc}".strip()
    return None


def skip_unless_ci(problem: str | None, what: str) -> None:
    """Skip the calling test over ``problem`` (a missing backend or tool), but fail it when CI is set.

    Every test that may skip for want of something outside Python goes through here, so none can
    quietly skip in CI.
    """
    if problem is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{problem} (CI is set, so {what} tests may not be skipped)", pytrace=False)
    pytest.skip(problem)


def require_backend(backend: str) -> None:
    """Skip a PostgreSQL test when none answers, but fail under CI where it must be there."""
    if backend == "postgresql":
        skip_unless_ci(postgres_problem(), "PostgreSQL")


def redis_problem() -> str | None:
    """Why the test Redis cannot be used, or None when it answers."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except Exception as exc:
        return f"no Redis at {REDIS_URL}: {type(exc).__name__}"
    return None


def require_redis() -> None:
    """Skip a Redis test when none answers, but fail under CI where it must be there."""
    skip_unless_ci(redis_problem(), "Redis")


@contextlib.contextmanager
def provision_database(backend: str) -> Iterator[str | None]:
    """A fresh, empty database for one server: None for SQLite (the data dir holds it)."""
    require_backend(backend)
    if backend == "sqlite":
        yield None
        return
    import psycopg

    name = f"vmsres_t_{secrets.token_hex(6)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def wait_for(condition: Callable[[], T | None], timeout: float = 15.0, what: str = "condition") -> T:
    """Poll ``condition`` until it returns something truthy, or fail after ``timeout`` seconds.

    For state another process writes after an event the test can observe (e.g. a delivery marked
    delivered after the receiver answered): the test waits for the state itself, never a fixed time.
    """
    timeout *= load_factor()
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)
