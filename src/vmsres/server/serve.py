"""Running the server: migrations and bootstrap once, then uvicorn with one or more workers."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from vmsres.server.admin.app import create_admin_app
from vmsres.server.audio import FFMPEG_ENV, ffmpeg_available
from vmsres.server.console.app import PREFIX as CONSOLE_PREFIX
from vmsres.server.console.app import create_console_app
from vmsres.server.service.accounts import BOOTSTRAP_ACCOUNT
from vmsres.server.service.admin import AdminOps
from vmsres.server.service.events import Actor
from vmsres.server.service.services import open_services
from vmsres.server.service.webhooks import DispatchConfig, Dispatcher
from vmsres.server.settings import SETTINGS_ENV, Settings
from vmsres.server.store import migrate
from vmsres.server.transport import PROTOCOL_IMPORT_PATH
from vmsres.server.wire.app import VmsApp, WireConfig
from vmsres.server.wire.asgi import ASGIApp, Receive, Scope, Send
from vmsres.server.wire.transfer import transfer_mounts

BOOTSTRAP_ACCESS_KEY_ENV = "VMSRES_BOOTSTRAP_ACCESS_KEY"
BOOTSTRAP_SECRET_KEY_ENV = "VMSRES_BOOTSTRAP_SECRET_KEY"
# An idle keep-alive connection is closed after this long.
KEEP_ALIVE_SECONDS = 5


class CannotListen(Exception):
    """The server's socket could not be bound (the port is taken, the address is not ours)."""


class BuiltOnFirstRequest:
    """An ASGI app made by ``factory`` when its first request comes.

    Building the admin API and the console (FastAPI routes and their models) takes about 0.1 s,
    which a start should not pay for parts that most servers, and every test server, never use.
    The build has no await, so two first requests on one loop cannot both build.
    """

    def __init__(self, factory: Callable[[], ASGIApp]) -> None:
        self._factory = factory
        self._app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._app is None:
            self._app = self._factory()
        await self._app(scope, receive, send)


def create_app(settings: Settings) -> VmsApp:
    services = open_services(settings, run_migrations=False)

    async def collect_garbage_forever() -> None:
        while True:
            await asyncio.sleep(settings.gc_interval_seconds)
            try:
                report = await services.ingest.collect_garbage()
                await services.idempotency.collect()
                if report.expired_uploads or report.staging_blobs or report.orphan_blobs:
                    logging.getLogger("vmsres").info(orjson.dumps({"event": "gc", **vars(report)}).decode())
            except Exception:
                logging.getLogger("vmsres.error").exception("garbage collection failed")

    async def make_pending_renditions_forever() -> None:
        # At start, then with every collection: renditions wait until ffmpeg is found.
        while True:
            try:
                report = await services.ingest.make_pending_renditions()
                if report.made or report.failed or report.storage_errors or report.levels_measured:
                    logging.getLogger("vmsres").info(
                        orjson.dumps({"event": "renditions", **vars(report)}).decode()
                    )
            except Exception:
                logging.getLogger("vmsres.error").exception("making pending renditions failed")
            if settings.gc_interval_seconds <= 0:
                return
            await asyncio.sleep(settings.gc_interval_seconds)

    background = [make_pending_renditions_forever]
    if settings.gc_interval_seconds > 0:
        background.append(collect_garbage_forever)
    config = WireConfig(
        max_body_bytes=settings.max_body_bytes,
        body_timeout_seconds=settings.body_timeout_seconds,
        mounts=[*transfer_mounts(services.ingest, settings.body_timeout_seconds)],
        background=background,
    )
    if settings.admin_token_sha256:
        token_sha256 = settings.admin_token_sha256
        config.mounts.append(
            ("/admin/", BuiltOnFirstRequest(lambda: create_admin_app(services, token_sha256)))
        )
        config.mounts.append(
            (
                CONSOLE_PREFIX,
                BuiltOnFirstRequest(
                    lambda: create_console_app(
                        services, token_sha256, settings.reject_reasons, settings.bulk_confirm_above
                    )
                ),
            )
        )
    dispatcher = Dispatcher(
        services.event_store,
        services.events.keyring,
        DispatchConfig(
            poll_seconds=settings.webhook_poll_seconds,
            retry_base_seconds=settings.webhook_retry_base_seconds,
            retry_max_seconds=settings.webhook_retry_max_seconds,
        ),
    )

    async def start_dispatcher() -> None:
        services.events.wakeup = dispatcher.wake
        dispatcher.start()

    config.on_startup.append(start_dispatcher)
    config.on_shutdown.append(dispatcher.stop)
    return VmsApp(services, config)


def create_app_from_env() -> VmsApp:
    """The uvicorn factory each worker process calls."""
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    return create_app(settings)


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    for name in ("vmsres.access", "vmsres.error", "vmsres"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False


def warn_if_ffmpeg_missing() -> None:
    """One line on stderr: without ffmpeg, uploads work but their telephony renditions wait."""
    if ffmpeg_available():
        return
    logging.getLogger("vmsres").warning(
        "vmsres: warning: ffmpeg not found (on PATH, or as %s names it): audio is accepted, but its "
        "telephony renditions stay pending until ffmpeg is installed (scripts/install-debian-deps.sh"
        " or your package manager); they are then made by the running server within --gc-interval,"
        " or at once by `vmsres renditions rebuild`. See docs/audio.md.",
        FFMPEG_ENV,
    )


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


async def bootstrap(settings: Settings) -> dict[str, Any] | None:
    """Create the bootstrap key from the environment, or a first key on a store that has none.

    Returns the credentials to print when a new key was made on first start.
    """
    services = open_services(settings)
    try:
        if settings.fixtures:
            # Once, in the parent process: workers would each load it and race.
            data = orjson.loads(Path(settings.fixtures).read_bytes())
            await AdminOps(services, Actor("system", name="fixtures")).load_fixtures(data)
        access_key = os.environ.get(BOOTSTRAP_ACCESS_KEY_ENV)
        secret_key = os.environ.get(BOOTSTRAP_SECRET_KEY_ENV)
        if access_key and secret_key:
            await services.accounts.ensure_key(BOOTSTRAP_ACCOUNT, access_key, secret_key)
            return None
        if await services.accounts.list_keys():
            return None
        await services.accounts.ensure_account(BOOTSTRAP_ACCOUNT)
        access_key, secret_key = await services.accounts.create_key(BOOTSTRAP_ACCOUNT)
        return {"AccessKey": access_key, "SecretKey": secret_key, "Account": BOOTSTRAP_ACCOUNT}
    finally:
        await services.close()


def prepare_multiprocess_metrics(settings: Settings) -> None:
    """Give the workers an empty PROMETHEUS_MULTIPROC_DIR (inherited through the environment).

    Files left by an earlier run would be summed into the new counts, so the folder is emptied;
    an operator's own PROMETHEUS_MULTIPROC_DIR is used as is, only cleaned.
    """
    import shutil

    from vmsres.server.metrics import MULTIPROC_ENV

    path = Path(os.environ.get(MULTIPROC_ENV) or Path(settings.data_dir) / "metrics")
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(path.resolve())


def serve(settings: Settings) -> None:
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    settings.ensure_data_dir()
    configure_logging(settings.log_level)
    warn_if_ffmpeg_missing()
    with migrate.startup_lock(settings.resolved_database_url()):
        created = asyncio.run(bootstrap(settings))
    for warning in migrate.maintenance_warnings(settings.resolved_database_url()):
        logging.getLogger("vmsres").warning("vmsres: warning: %s", warning)
    try:
        sock = bind_socket(settings.host, settings.port)
    except OSError as error:
        raise CannotListen(
            f"cannot listen on {settings.host}:{settings.port}: {error.strerror or error}"
        ) from None
    host, port = sock.getsockname()[:2]
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
    if created is not None:
        print(
            "vmsres: first start, created a key for account 'default' (shown once; store it now):\n"
            f"  AccessKey: {created['AccessKey']}\n  SecretKey: {created['SecretKey']}",
            flush=True,
        )
    # One machine-readable line that says the socket is listening (tests and scripts wait for it).
    print(orjson.dumps({"event": "listening", "url": url, "workers": settings.workers}).decode(), flush=True)

    os.environ[SETTINGS_ENV] = settings.to_env()
    if settings.workers > 1:
        prepare_multiprocess_metrics(settings)
    config = uvicorn.Config(
        "vmsres.server.serve:create_app_from_env",
        factory=True,
        workers=settings.workers,
        access_log=False,
        log_level="warning",
        lifespan="on",
        server_header=False,
        date_header=False,
        http=PROTOCOL_IMPORT_PATH,
        ws="none",  # no websockets: an Upgrade header is served as the plain request it also is
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )
    server = uvicorn.Server(config)
    if settings.workers > 1:
        Multiprocess(config, sockets=[sock]).run()
    else:
        server.run(sockets=[sock])
