"""Builds the service objects of one process over one database."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vmsres.server.audio import ffmpeg_available
from vmsres.server.blobs import BlobStorageFull, BlobStore, DiskBlobStore, open_blob_store
from vmsres.server.masterkey import Keyring, load_keyring
from vmsres.server.service.accounts import AccountService
from vmsres.server.service.answers import AnswerCache
from vmsres.server.service.events import EventService
from vmsres.server.service.idempotency import IdempotencyService
from vmsres.server.service.ingest import IngestService
from vmsres.server.service.limits import RateLimiter, parse_rate
from vmsres.server.service.operators import OperatorService
from vmsres.server.service.resources import ResourceService
from vmsres.server.service.review import ReviewRules
from vmsres.server.service.shared_secrets import SharedSecrets
from vmsres.server.settings import Settings
from vmsres.server.shared_state import RedisState, SharedState, open_shared
from vmsres.server.store import migrate
from vmsres.server.store.accounts import AccountStore
from vmsres.server.store.database import Database, SqliteDatabase, open_database, sqlite_path
from vmsres.server.store.events import EventStore
from vmsres.server.store.hardening import HardeningStore
from vmsres.server.store.operators import OperatorStore
from vmsres.server.store.resources import KeywordMatchCache, ResourceStore
from vmsres.server.store.uploads import UploadStore

FFMPEG_MISSING_NOTE = "missing: telephony renditions are pending"
OK, DEGRADED, FAILED = "ok", "degraded", "failed"
# Below this much free space a local disk counts as full (a write of even a small row may fail).
FULL_BELOW_BYTES = 1024 * 1024
_FULL = "full: writes fail, reads work"


@dataclass
class Readiness:
    """What /readyz reports: each dependency's status ("ok", "degraded": serving with limits,
    "failed": cannot serve) and, for the others, a detail; and notes on optional parts (ffmpeg)
    that never change the status."""

    dependencies: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, status: str, detail: str | None = None) -> None:
        self.dependencies[name] = (
            {"status": status} if detail is None else {"status": status, "detail": detail}
        )

    @property
    def ready(self) -> bool:
        return all(d["status"] != FAILED for d in self.dependencies.values())

    def as_json(self) -> dict[str, Any]:
        statuses = {d["status"] for d in self.dependencies.values()}
        if FAILED in statuses:
            reason = "; ".join(
                f"{name}: {d['detail']}" for name, d in self.dependencies.items() if d["status"] == FAILED
            )
            return {"status": "not ready", "reason": reason, **self.notes, "dependencies": self.dependencies}
        status = "degraded" if DEGRADED in statuses else "ready"
        return {"status": status, **self.notes, "dependencies": self.dependencies}


@dataclass
class Services:
    db: Database
    blobs: BlobStore
    accounts: AccountService
    resources: ResourceService
    ingest: IngestService
    shared_secrets: SharedSecrets
    events: EventService
    event_store: EventStore
    shared: SharedState
    limiter: RateLimiter
    idempotency: IdempotencyService
    answers: AnswerCache
    operators: OperatorService
    clock: Callable[[], float] = time.time

    def now(self) -> int:
        return int(self.clock())

    async def readiness(self) -> Readiness:
        """Each dependency's state; any failure here means "not ready", never a crash."""
        report = Readiness()
        try:
            await self.db.check()
            revision = await self.db.fetch_value(migrate.select_schema_revision)
        except Exception as exc:
            report.add("database", FAILED, f"unreachable ({type(exc).__name__})")
        else:
            if revision != migrate.head_revision():
                report.add("database", FAILED, f"schema at {revision}, expected {migrate.head_revision()}")
            else:
                report.add("database", OK)
        if isinstance(self.shared, RedisState):
            try:
                await self.shared.check()
            except Exception as exc:
                cause = exc.__cause__ or exc
                report.add("redis", FAILED, f"unreachable ({type(cause).__name__})")
            else:
                report.add("redis", OK)
        free = self._local_free_bytes()
        try:
            await self.blobs.check()
        except BlobStorageFull:
            report.add("storage", DEGRADED, _FULL)
        except Exception as exc:
            report.add("storage", FAILED, f"blob storage unreachable ({type(exc).__name__})")
        else:
            if free is not None and free < FULL_BELOW_BYTES:
                report.add("storage", DEGRADED, _FULL)
            else:
                report.add("storage", OK)
        if free is not None:
            report.dependencies["storage"]["free_bytes"] = free
        report.notes.update(self.readiness_notes())
        return report

    def _local_free_bytes(self) -> int | None:
        """Free bytes on the fullest local disk holding the SQLite file or the blobs, if any."""
        folders = []
        if isinstance(self.db, SqliteDatabase):
            folders.append(Path(self.db.path).parent)
        if isinstance(self.blobs, DiskBlobStore):
            folders.append(self.blobs.root)
        free = []
        for folder in folders:
            while not folder.exists() and folder.parent != folder:
                folder = folder.parent
            try:
                stats = os.statvfs(folder)
            except OSError:
                continue
            free.append(stats.f_bavail * stats.f_frsize)
        return min(free) if free else None

    def readiness_notes(self) -> dict[str, str]:
        """What works in a lesser way without making the server unready (ffmpeg is optional)."""
        if not ffmpeg_available():
            return {"ffmpeg": FFMPEG_MISSING_NOTE}
        return {}

    async def close(self) -> None:
        await self.blobs.close()
        await self.shared.close()
        await self.db.close()


def prepare_store(settings: Settings, *, sqlite_image: bool = False) -> Keyring:
    """The master key (creating the embedded default file if missing) and the schema at head:
    what one process does before any process opens the store.

    ``sqlite_image``: a SQLite store that does not exist yet is written from the migrated schema's
    image (migrate.create_sqlite_at_head), for processes that make many stores.
    """
    keyring = load_keyring(settings.data_dir, settings.master_key_file, create=True)
    url = settings.resolved_database_url()
    if sqlite_image and url.startswith("sqlite:///") and not Path(sqlite_path(url)).exists():
        migrate.create_sqlite_at_head(url, keyring)
    else:
        migrate.upgrade(url, keyring)
    return keyring


def open_services(
    settings: Settings,
    *,
    run_migrations: bool = True,
    clock: Callable[[], float] = time.time,
) -> Services:
    database_url = settings.resolved_database_url()
    # Only the process that migrates may create the embedded key file; workers find it made.
    keyring = (
        prepare_store(settings)
        if run_migrations
        else load_keyring(settings.data_dir, settings.master_key_file, create=False)
    )
    db = open_database(database_url, durable=settings.durable)
    event_store = EventStore(db)
    events = EventService(event_store, keyring, clock=clock, max_age_seconds=settings.webhook_max_age_seconds)
    blobs = open_blob_store(settings.resolved_blob_url(), s3_endpoint_url=settings.s3_endpoint_url)
    # The search cache budget: three quarters for keyword match lists, a quarter for answers.
    resource_store = ResourceStore(db, KeywordMatchCache.of_megabytes(settings.search_cache_mb * 0.75))
    hardening = HardeningStore(db)
    uploads = UploadStore(db)
    shared = open_shared(settings.redis_url)
    rules = ReviewRules.from_dict(settings.review_rules or {})
    resources = ResourceService(
        resource_store,
        blobs,
        settings.review,
        clock=clock,
        rules=rules,
        events=events,
        hardening=hardening,
        max_resources=settings.max_resources,
        max_storage_bytes=settings.max_storage_bytes,
    )
    shared_secrets = SharedSecrets(uploads, keyring)
    ingest = IngestService(
        resources,
        uploads,
        blobs,
        shared_secrets,
        public_url=settings.public_url,
        fetch_allow_hosts=frozenset(h.lower() for h in settings.fetch_allow_hosts),
        max_audio_seconds=settings.max_audio_duration_seconds,
        clock=clock,
    )
    return Services(
        db=db,
        blobs=blobs,
        accounts=AccountService(AccountStore(db), keyring, clock=clock),
        resources=resources,
        ingest=ingest,
        shared_secrets=shared_secrets,
        events=events,
        event_store=event_store,
        shared=shared,
        limiter=RateLimiter(
            shared,
            parse_rate(settings.rate_per_key),
            parse_rate(settings.rate_per_account),
            namespace=lambda: shared_secrets.get("rate_namespace", 8),
        ),
        idempotency=IdempotencyService(hardening, clock=clock, ttl_seconds=settings.idempotency_hours * 3600),
        answers=AnswerCache(int(settings.search_cache_mb * 0.25 * 1024 * 1024)),
        operators=OperatorService(OperatorStore(db), clock=clock),
        clock=clock,
    )
