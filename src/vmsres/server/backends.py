"""The backends settings select, and whether this install can open them.

``pip install vmsres`` serves the embedded store (SQLite and audio on disk); PostgreSQL, S3 and
Redis each need an extra (pyproject.toml). Asking for one whose modules are missing fails with
:class:`MissingExtra`, whose message is the command that fixes it. :func:`check` runs before a
command creates or starts anything, so a wrong setting leaves no half-made store behind.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from vmsres.server.settings import Settings


@dataclass(frozen=True)
class Extra:
    name: str  # as in pip install 'vmsres[name]'
    feature: str
    modules: tuple[str, ...]


POSTGRES = Extra("postgres", "PostgreSQL", ("asyncpg", "psycopg"))
S3 = Extra("s3", "S3", ("boto3",))
REDIS = Extra("redis", "Redis", ("redis",))


class MissingExtra(Exception):
    def __init__(self, extra: Extra) -> None:
        super().__init__(f"{extra.feature} support is not installed: pip install 'vmsres[{extra.name}]'")
        self.extra = extra


def require(extra: Extra) -> None:
    for module in extra.modules:
        try:
            importlib.import_module(module)
        except ImportError:
            raise MissingExtra(extra) from None


class UnusableSettings(Exception):
    """Settings that cannot work whatever is installed (a data dir that is a file, a foreign URL)."""


def check(settings: Settings) -> None:
    """Refuse settings that cannot open their store; raises UnusableSettings or MissingExtra."""
    path = Path(settings.data_dir)
    if path.exists() and not path.is_dir():
        raise UnusableSettings(f"the data dir {settings.data_dir} is not a folder")
    scheme = settings.resolved_database_url().split("://", 1)[0].split("+", 1)[0].lower()
    if scheme in ("postgresql", "postgres"):
        require(POSTGRES)
    elif scheme != "sqlite":
        raise UnusableSettings(
            f"unsupported database URL {scheme}://...: use postgresql://... or sqlite:///PATH"
        )
    if settings.blob_url and settings.blob_url.lower().startswith("s3://"):
        require(S3)
    if settings.redis_url:
        require(REDIS)
