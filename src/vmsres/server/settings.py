"""Server settings: one dataclass, filled from the command line, handed to worker processes."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import orjson

SETTINGS_ENV = "VMSRES_SERVE_SETTINGS"
# The master key itself, instead of a key file (server/masterkey.py reads it). Declared here so the
# command line can name it in --help without loading the cryptography behind the key.
MASTER_KEY_ENV = "VMSRES_MASTER_KEY"
# A body that stalls this long between two of its pieces is given up (RequestTimeout, 408).
BODY_IDLE_SECONDS = 30.0
# A whole request body must arrive within this many --body-timeout periods (300 s by default).
BODY_TOTAL_PAUSES = 10
# The longest audio accepted unless the operator says otherwise (docs/audio.md): every second
# becomes 16 kB of telephony rendition, so this bounds what a 5 MB upload can expand into.
MAX_AUDIO_SECONDS = 600.0
# Declared here, at the bottom of the server, so that settings need nothing above them;
# service.review gives the policies their meaning.
ReviewPolicy = Literal["auto", "manual", "auto-then-manual"]
REVIEW_POLICIES: tuple[ReviewPolicy, ...] = ("auto", "manual", "auto-then-manual")
# The console's preset reject reasons unless --reject-reasons names a file of them (docs/console.md).
DEFAULT_REJECT_REASONS: tuple[str, ...] = (
    "Contains banned or offensive words",
    "Name does not describe the content",
    "Audio quality too poor (noise, clipping, silence)",
    "Wrong language or unclear pronunciation",
    "Advertising or marketing without consent",
    "Duplicate of an existing resource",
)
# A reject reason reaches the resource's owner as RejectReason, up to this many characters.
MAX_REASON_CHARS = 2000
# A bulk decision in the console of more resources than this asks for a confirmation first.
BULK_CONFIRM_ABOVE = 20


def database_url_for_dir(data_dir: str | os.PathLike[str]) -> str:
    """The embedded SQLite file of a data folder."""
    return f"sqlite:///{Path(data_dir).resolve() / 'vmsres.db'}"


class UnusableDataDir(OSError):
    """The data dir cannot be made (a read-only or missing parent, no permission)."""


@dataclass
class Settings:
    data_dir: str = "./data"
    database_url: str | None = None
    # Shared counters and cache for all processes (later: throttling); None keeps them in-process.
    redis_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    review: ReviewPolicy = "auto"
    log_level: str = "info"
    max_body_bytes: int = 1024 * 1024
    # Transport limits (docs/security.md): request head size and field count, time to send a head.
    max_header_bytes: int = 16 * 1024
    max_header_count: int = 100
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = BODY_IDLE_SECONDS
    # Longest audio accepted (docs/audio.md): bounds the rendition a small file can expand into.
    max_audio_duration_seconds: float = MAX_AUDIO_SECONDS
    # Where audio lives: a folder (default DATA_DIR/blobs) or s3://bucket/prefix.
    blob_url: str | None = None
    s3_endpoint_url: str | None = None
    # The scheme://host[:port] clients reach us at, for upload and download URLs we hand out.
    public_url: str | None = None
    # Proxies whose X-Forwarded-For/-Proto uvicorn believes (comma-separated addresses or
    # networks, "*" for any): the console's same-origin check and login throttling see the
    # client as the proxy says. None: uvicorn's default (FORWARDED_ALLOW_IPS, else loopback).
    forwarded_allow_ips: str | None = None
    fetch_allow_hosts: list[str] = field(default_factory=list)
    gc_interval_seconds: int = 300
    # ReviewRules.to_dict(): word lists are read once by the CLI, so workers need no files.
    review_rules: dict[str, object] | None = None
    # sha256 hex of the admin token: the plaintext is never kept past the command line, so it
    # is not in the workers' environment either. None disables the admin API (it answers 404).
    admin_token_sha256: str | None = None
    # None: VMSRES_MASTER_KEY, else DATA_DIR/master.key (created on first start).
    master_key_file: str | None = None
    fixtures: str | None = None
    # False: SQLite never syncs, for a store thrown away after the run (vmsres.testing's
    # temporary stores); a machine crash may then lose or corrupt it.
    durable: bool = True
    webhook_poll_seconds: float = 1.0
    webhook_retry_base_seconds: float = 2.0
    webhook_retry_max_seconds: float = 600.0
    webhook_max_age_seconds: float = 24 * 3600.0
    # Limits (docs/security.md): rates "N/s[:burst]" (None: unlimited), quotas (None: unlimited).
    rate_per_key: str | None = None
    rate_per_account: str | None = None
    max_resources: int | None = None
    max_storage_bytes: int | None = None
    idempotency_hours: float = 24.0
    # Per worker: lists of keyword matches kept while their account is unchanged (0: off).
    search_cache_mb: float = 64.0
    # The console: preset reject reasons (read once by the CLI, so workers need no file), and
    # how many resources one bulk decision may take without a confirmation step.
    reject_reasons: list[str] = field(default_factory=lambda: list(DEFAULT_REJECT_REASONS))
    bulk_confirm_above: int = BULK_CONFIRM_ABOVE
    extra: dict[str, object] = field(default_factory=dict)

    def resolved_database_url(self) -> str:
        return self.database_url or database_url_for_dir(self.data_dir)

    def resolved_blob_url(self) -> str:
        return self.blob_url or str(Path(self.data_dir).resolve() / "blobs")

    def to_env(self) -> str:
        return orjson.dumps(dataclasses.asdict(self)).decode()

    @classmethod
    def from_env(cls) -> Settings:
        raw = os.environ.get(SETTINGS_ENV)
        if not raw:
            return cls()
        return cls(**orjson.loads(raw))

    def ensure_data_dir(self) -> Path:
        path = Path(self.data_dir)
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise UnusableDataDir(f"cannot make the data dir {path}: {error.strerror or error}") from None
        return path
