"""VmsServer: a real vmsres server in a background thread of the calling process, for test suites.

Importing this module imports no part of the server: the pytest plugin is loaded in every project
that has vmsres installed, so the server stack is imported only when a server starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import os
import secrets
import shutil
import socket
import tempfile
import threading
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, NoReturn, TypeVar

if TYPE_CHECKING:
    import uvicorn

    from vmsres.server.service.admin import AdminOps
    from vmsres.server.settings import ReviewPolicy, Settings
    from vmsres.server.wire.app import VmsApp

T = TypeVar("T")
ReviewMode = Literal["auto", "manual"]
HOST = "127.0.0.1"
# Generous: a loaded CI machine may take seconds to import the stack; a healthy start takes ms.
START_TIMEOUT_SECONDS = 60.0
CALL_TIMEOUT_SECONDS = 60.0
_account_numbers = itertools.count(1)


class VmsServerError(RuntimeError):
    """The in-process server failed to start, or a test control it was asked for failed."""


@dataclass(frozen=True)
class Account:
    """One account of a VmsServer with its own key: its library is seen by no other account."""

    name: str
    access_key: str
    secret_key: str


class VmsServer:
    """vmsres on 127.0.0.1 (a free port) with a temporary embedded store, in this process.

    ``with VmsServer() as server:`` or ``server.start()`` ... ``server.stop()``. The server is the
    real one (the same app ``vmsres serve`` runs, SQLite store, blobs on disk), so the official
    SDKs and ``vmsres.client`` talk to it over HTTP exactly as to a deployed one.

    - ``review``: "auto" (a new resource is decided by the review rules at once) or "manual"
      (it stays at State 0 until ``approve``/``reject``).
    - ``data_dir``: keep the store there (created if missing, reused if present) instead of a
      temporary folder removed by ``stop()``.
    - ``fixtures``: a fixtures file (docs/admin.md) loaded at start.
    - ``database_url``: another database for the store (e.g. a PostgreSQL URL) instead of SQLite.
    - ``serve_args``: options as ``vmsres serve`` takes them, e.g. ``["--max-resources", "10"]``
      (where to listen and the store are this object's to choose).
    - ``settings``: any other server setting by its Settings field name, e.g.
      ``{"max_resources": 10}``; applied last.
    """

    def __init__(
        self,
        *,
        review: ReviewMode = "auto",
        data_dir: str | os.PathLike[str] | None = None,
        fixtures: str | os.PathLike[str] | None = None,
        database_url: str | None = None,
        serve_args: Sequence[str] = (),
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        if review not in ("auto", "manual"):
            raise ValueError(f"review is 'auto' or 'manual', not {review!r}")
        # What the server was started with: "auto", "manual", or another policy of serve_args.
        self.review: ReviewPolicy = review
        self._given_data_dir = Path(data_dir) if data_dir is not None else None
        self.fixtures = Path(fixtures) if fixtures is not None else None
        self.database_url = database_url
        self._serve_args = list(serve_args)
        self._settings = dict(settings or {})
        self.data_dir: Path | None = None
        self.port = 0
        self.access_key = ""
        self.secret_key = ""
        self.admin_token = ""
        self.default_account = ""
        self._temporary_dir: Path | None = None
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._uvicorn: uvicorn.Server | None = None
        self._app: VmsApp | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None

    # --- where it is ---------------------------------------------------------------------

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``: what the `volcengine` SDK's ``set_host`` takes."""
        return f"{HOST}:{self.port}"

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT``: what ``vmsres.client.Client(endpoint=...)`` takes."""
        return f"http://{self.host}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # --- life ------------------------------------------------------------------------------

    def __enter__(self) -> VmsServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> VmsServer:
        """Start and return once the server answers; migrations and the first key are done."""
        if self._thread is not None:
            raise VmsServerError("this VmsServer is already started")
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        import uvicorn

        from vmsres.server import backends
        from vmsres.server.admin.tokens import admin_token_digest
        from vmsres.server.masterkey import default_key_file
        from vmsres.server.serve import bind_socket, create_app
        from vmsres.server.service.services import prepare_store
        from vmsres.testing.thread_server import ThreadServer

        if self._given_data_dir is None:
            self._temporary_dir = Path(tempfile.mkdtemp(prefix="vmsres-test-"))
            self.data_dir = self._temporary_dir
            # The process's one key for throwaway stores, without the sync a real store's key
            # file gets (this store dies with the run); one key lets every such store be written
            # from the same image (migrate.create_sqlite_at_head).
            default_key_file(self.data_dir).write_text(_throwaway_key_text())
        else:
            self.data_dir = self._given_data_dir
            if self.data_dir.exists() and not self.data_dir.is_dir():
                raise VmsServerError(f"data_dir {self.data_dir} is not a folder")
            self.data_dir.mkdir(parents=True, exist_ok=True)
        self._socket = bind_socket(HOST, 0)
        self.port = self._socket.getsockname()[1]
        settings, given_admin_token = self._serve_settings()
        self.admin_token = given_admin_token or secrets.token_urlsafe(32)
        settings.data_dir = str(self.data_dir)
        settings.database_url = self.database_url or settings.database_url
        settings.host, settings.port = HOST, self.port
        settings.public_url = settings.public_url or self.endpoint
        settings.admin_token_sha256 = admin_token_digest(self.admin_token)
        settings.durable = self._temporary_dir is None
        if settings.fixtures:
            self.fixtures = Path(settings.fixtures)
        for name, value in self._settings.items():
            if not hasattr(settings, name):
                raise ValueError(f"no server setting {name!r}")
            setattr(settings, name, value)
        # The checks `vmsres serve` makes, as this class's own error rather than a library's.
        try:
            backends.check(settings)
        except (backends.UnusableSettings, backends.MissingExtra) as error:
            raise VmsServerError(str(error)) from None
        if self.fixtures is not None and not self.fixtures.is_file():
            raise VmsServerError(f"no fixtures file {self.fixtures}")
        prepare_store(settings, sqlite_image=True)
        self._app = create_app(settings)
        # log_config None: the host process's logging stays as its test runner set it up.
        config = uvicorn.Config(
            self._app,
            lifespan="on",
            ws="none",  # vmsres serves no websockets: nothing to import or set up for them
            access_log=False,
            log_config=None,
            log_level="warning",
            server_header=False,
            date_header=False,
        )
        self._uvicorn = ThreadServer(config, self._ready)
        # Not a daemon: stop() joins it, and an interpreter exiting mid-request must not kill it.
        self._thread = threading.Thread(target=self._run, name=f"vmsres-{self.port}", daemon=False)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_SECONDS) or not self._uvicorn.started:
            raise VmsServerError(f"vmsres did not start: {self._failure!r}")
        self.default_account, self.access_key, self.secret_key = self._call(self._bootstrap())

    def _serve_settings(self) -> tuple[Settings, str | None]:
        """Settings from ``serve_args`` and ``review``, and the admin token the args name."""
        import argparse

        from vmsres.cli.arguments import add_server_commands
        from vmsres.cli.serve import serve_settings
        from vmsres.server.settings import Settings

        if not self._serve_args:
            return Settings(review=self.review), None

        class Parser(argparse.ArgumentParser):
            # A wrong option is this call's error, not a SystemExit that ends the test run.
            def error(self, message: str) -> NoReturn:
                raise VmsServerError(f"serve_args: {message}")

        parser = Parser(prog="vmsres")
        add_server_commands(parser.add_subparsers(dest="command", required=True))
        args = parser.parse_args(["serve", *self._serve_args])
        settings = serve_settings(args)
        if "--review" not in self._serve_args:
            settings.review = self.review
        else:
            self.review = settings.review
        return settings, args.admin_token

    def _run(self) -> None:
        assert self._uvicorn is not None and self._socket is not None
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._uvicorn.serve(sockets=[self._socket]))
        except BaseException as error:
            self._failure = error
        finally:
            self._ready.set()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _bootstrap(self) -> tuple[str, str, str]:
        from vmsres.server.service.accounts import BOOTSTRAP_ACCOUNT

        ops = self._ops()
        if self.fixtures is not None:
            from vmsres.server.service.admin import load_fixtures

            await load_fixtures(ops.services, _read_json(self.fixtures))
        await ops.services.accounts.ensure_account(BOOTSTRAP_ACCOUNT)
        key = await ops.create_key(BOOTSTRAP_ACCOUNT)
        return BOOTSTRAP_ACCOUNT, key["AccessKey"], key["SecretKey"]

    def stop(self) -> None:
        """Stop serving, join the server thread and remove the temporary store. Idempotent."""
        thread, self._thread = self._thread, None
        if thread is not None and self._uvicorn is not None and self._loop is not None:
            server = self._uvicorn
            # RuntimeError: the loop already closed, so the thread is ending by itself.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(setattr, server, "should_exit", True)
            thread.join()
        self._uvicorn = None
        self._loop = None
        self._app = None
        self._ready.clear()
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        if self._temporary_dir is not None:
            shutil.rmtree(self._temporary_dir, ignore_errors=True)
            self._temporary_dir = None

    # --- test controls ------------------------------------------------------------------------

    def new_account(self, name: str | None = None, *, review: ReviewMode | None = None) -> Account:
        """A new account with one key; ``review`` overrides the server's mode for it alone."""
        account_name = name if name is not None else f"test-{next(_account_numbers)}-{secrets.token_hex(3)}"

        async def create() -> Account:
            ops = self._ops()
            await ops.create_account(account_name, review)
            key = await ops.create_key(account_name)
            return Account(account_name, key["AccessKey"], key["SecretKey"])

        return self._call(create())

    def approve(self, resource_key: str) -> None:
        """An operator's approval of a resource under review (State 0 -> 1)."""
        self._review(resource_key, True, None)

    def reject(self, resource_key: str, reason: str) -> None:
        """An operator's rejection (State 0 -> 2); ``reason`` is the RejectReason callers read."""
        self._review(resource_key, False, reason)

    def _review(self, resource_key: str, approve: bool, reason: str | None) -> None:
        [outcome] = self._call(self._ops().review([resource_key], approve, reason, "vmsres.testing"))
        if not outcome["Ok"]:
            raise VmsServerError(outcome["Error"])

    def reset(self) -> None:
        """Every account's library emptied (resources, leases, ClientToken answers, upload URLs);
        accounts and keys stay."""
        self._call(self._ops().reset_every_account())

    def call(self, coroutine_function: Any, *args: Any) -> Any:
        """Run ``coroutine_function(admin_ops, *args)`` on the server's loop: any operator action
        of vmsres.server.service.admin.AdminOps (force_state, set_limits, load_fixtures, ...)."""
        return self._call(coroutine_function(self._ops(), *args))

    def _ops(self) -> AdminOps:
        from vmsres.server.service.admin import AdminOps
        from vmsres.server.service.events import Actor

        if self._app is None:
            raise VmsServerError("the VmsServer is not started")
        return AdminOps(self._app.services, Actor("admin", name="vmsres.testing"))

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run a service operation on the server's own loop (its database connection lives there)."""
        loop = self._loop
        if loop is None or not self.running:
            coroutine.close()
            raise VmsServerError("the VmsServer is not running")
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(CALL_TIMEOUT_SECONDS)


@functools.cache
def _throwaway_key_text() -> str:
    from vmsres.server.masterkey import generate_key_text

    return generate_key_text()


def _read_json(path: Path) -> Any:
    import orjson

    return orjson.loads(path.read_bytes())
