"""Running the server: migrations and bootstrap once, then uvicorn with one or more workers."""

from __future__ import annotations

import inspect
import logging
import os
import socket
import sys
from typing import Any

import orjson

from vmsres.service.services import open_services
from vmsres.settings import SETTINGS_ENV, Settings
from vmsres.wire.app import VmsApp, WireConfig

BOOTSTRAP_ACCESS_KEY_ENV = "VMSRES_BOOTSTRAP_ACCESS_KEY"
BOOTSTRAP_SECRET_KEY_ENV = "VMSRES_BOOTSTRAP_SECRET_KEY"


def create_app(settings: Settings) -> VmsApp:
    services = open_services(settings.resolved_database_url(), settings.review, run_migrations=False)
    return VmsApp(services, WireConfig(max_body_bytes=settings.max_body_bytes))


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
    services = open_services(settings.resolved_database_url(), settings.review)
    try:
        access_key = os.environ.get(BOOTSTRAP_ACCESS_KEY_ENV)
        secret_key = os.environ.get(BOOTSTRAP_SECRET_KEY_ENV)
        if access_key and secret_key:
            await services.accounts.ensure_key("default", access_key, secret_key)
            return None
        if await services.accounts.list_keys():
            return None
        await services.accounts.ensure_account("default")
        access_key, secret_key = await services.accounts.create_key("default")
        return {"AccessKey": access_key, "SecretKey": secret_key, "Account": "default"}
    finally:
        await services.close()


def serve(settings: Settings) -> None:
    import asyncio

    import uvicorn
    from uvicorn.supervisors import Multiprocess

    settings.ensure_data_dir()
    configure_logging(settings.log_level)
    created = asyncio.run(bootstrap(settings))
    sock = bind_socket(settings.host, settings.port)
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
    config = uvicorn.Config(
        "vmsres.server:create_app_from_env",
        factory=True,
        workers=settings.workers,
        access_log=False,
        log_level="warning",
        lifespan="on",
        server_header=False,
        date_header=False,
    )
    server = uvicorn.Server(config)
    if settings.workers > 1:
        # uvicorn dropped Multiprocess's target argument (each worker now builds its Server from
        # the config); pass it only to the older releases pyproject still allows.
        if "target" in inspect.signature(Multiprocess).parameters:
            supervisor = Multiprocess(config, target=server.run, sockets=[sock])  # type: ignore[call-arg]
        else:
            supervisor = Multiprocess(config, sockets=[sock])
        supervisor.run()
    else:
        server.run(sockets=[sock])
