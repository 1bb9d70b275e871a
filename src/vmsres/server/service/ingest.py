"""Audio ingestion: upload URLs, commits, fetches, downloads and collecting what is left over.

Order of writes, so that nothing is half made: bytes land in the blob store first (atomically),
then one INSERT makes the resource visible. A delete removes the row, then the blobs. Whatever a
crash leaves between those steps is unreferenced blobs, which `collect_garbage` removes.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from vmsres.protocol.errors import (
    InsufficientStorage,
    InvalidParameter,
    NotRepeatInvoke,
    QuotaExceeded,
    ResourceIsNone,
    ResourceKeyIsNotExist,
    ResourceSizeOverLimit,
    UploadFileFail,
    VmsError,
    VolcTosServerError,
)
from vmsres.server.audio import (
    MAX_AUDIO_BYTES,
    AudioLevels,
    analyze_audio,
    ffmpeg_available,
    is_silent,
    make_telephony_rendition,
    measure_levels,
    prepare_audio,
)
from vmsres.server.blobs import (
    BlobNotFound,
    BlobReader,
    BlobStorageError,
    BlobStorageFull,
    BlobStore,
    delete_quietly,
)
from vmsres.server.fetch import FetchLimits, check_fetch_url, fetch_audio
from vmsres.server.service.accounts import Principal
from vmsres.server.service.events import AuditContext
from vmsres.server.service.resources import ResourceService
from vmsres.server.service.review import MeasuredLevels
from vmsres.server.service.shared_secrets import SharedSecrets
from vmsres.server.service.tokens import make_token, read_token
from vmsres.server.settings import MAX_AUDIO_SECONDS
from vmsres.server.store.database import Executor, Row, UniqueViolation
from vmsres.server.store.uploads import STATE_ISSUED, STATE_UPLOADED, UploadStore

UPLOAD_URL_SECONDS = 10 * 60
DOWNLOAD_URL_SECONDS = 10 * 60
# Bytes PUT to an upload URL stay committable this long after the URL expires, then are collected.
STAGING_GRACE_SECONDS = 60 * 60
# A resource blob with no row is only collected once older than this (a commit may be in flight).
ORPHAN_MIN_AGE_SECONDS = 60 * 60
TOKEN_SECRET_NAME = "url_token_key"
# Pending renditions are read this many rows at a time (each is converted before the next read).
RENDITION_BATCH = 50
RENDITION_PENDING_MESSAGE = (
    "The telephony rendition is pending: ffmpeg is not installed on the server. It is made once "
    "ffmpeg is installed (the server looks for it at start and every --gc-interval, or run "
    "`vmsres renditions rebuild`); Rendition=original is available meanwhile."
)
RENDITION_FAILED_MESSAGE = "ffmpeg could not convert this file, so it has no telephony rendition."


@dataclass(frozen=True, slots=True)
class Download:
    reader: BlobReader
    content_type: str
    file_name: str


@dataclass
class GarbageReport:
    expired_uploads: int = 0
    staging_blobs: int = 0
    orphan_blobs: int = 0
    # A backup was copying blobs: nothing was collected this time.
    held_by_backup: bool = False


@dataclass
class RenditionReport:
    made: int = 0
    # ffmpeg ran but could not convert the file: the resource stays without a rendition.
    failed: int = 0
    # Left pending: the original could not be read or the rendition not stored (tried again later).
    storage_errors: int = 0
    # Still waiting (for ffmpeg, or after a storage error) when the pass ended.
    pending: int = 0
    # Audio levels measured for resources that waited for ffmpeg (migration 0012_audio_levels).
    levels_measured: int = 0
    levels_pending: int = 0
    ffmpeg_missing: bool = False


def level_values(levels: AudioLevels) -> dict[str, Any]:
    """The resources columns of measured levels (store LEVEL_COLUMNS)."""
    return {
        "peak_dbfs": levels.peak_dbfs,
        "loudness_lufs": levels.loudness_lufs,
        "true_peak_dbtp": levels.true_peak_dbtp,
        "silence_share": levels.silence_share,
        "waveform": None if levels.waveform is None else levels.waveform.hex(),
    }


def _content_type(key: str) -> str:
    return "audio/mpeg" if key.endswith(".mp3") else "audio/wav"


class IngestService:
    def __init__(
        self,
        library: ResourceService,
        uploads: UploadStore,
        blobs: BlobStore,
        shared_secrets: SharedSecrets,
        *,
        public_url: str | None = None,
        fetch_allow_hosts: frozenset[str] = frozenset(),
        fetch_limits: FetchLimits | None = None,
        max_audio_seconds: float = MAX_AUDIO_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        # The library's rules decide the review and announce the new resource; its store is ours too.
        self.library = library
        self.resources = library.store
        self.uploads = uploads
        self.blobs = blobs
        self.shared_secrets = shared_secrets
        self.public_url = public_url.rstrip("/") if public_url else None
        self.fetch_allow_hosts = fetch_allow_hosts
        self.fetch_limits = fetch_limits or FetchLimits()
        self.max_audio_seconds = max_audio_seconds
        self.clock = clock
        self._token_key: bytes | None = None

    def _now(self) -> int:
        return int(self.clock())

    async def _key(self) -> bytes:
        if self._token_key is None:
            value = await self.shared_secrets.get(TOKEN_SECRET_NAME)
            self._token_key = bytes.fromhex(value)
        return self._token_key

    # --- Upload -------------------------------------------------------------------------

    async def upload_url(self, principal: Principal, file_name: str, base_url: str) -> str:
        now = self._now()
        nonce = secrets.token_hex(16)
        staging_key = f"staging/{principal.account_id}/{nonce}"
        expires_at = now + UPLOAD_URL_SECONDS
        # Serialized with commits of the account (they hold its row exclusively): a URL is either
        # issued before a commit of its FileName, which then consumes it, or refused after it.
        async with self.uploads.db.transaction() as tx:
            await self.uploads.hold_account(principal.account_id, tx, exclusive=False)
            await self.check_upload_url(principal, file_name, tx)
            await self.uploads.issue(nonce, principal.account_id, file_name, staging_key, now, expires_at, tx)
        presigned = self.blobs.presign_put(staging_key, UPLOAD_URL_SECONDS)
        if presigned is not None:
            return presigned
        token = make_token(await self._key(), "up", {"n": nonce, "a": principal.account_id}, expires_at)
        return f"{self.public_url or base_url}/upload/{token}"

    async def authorize_upload(self, token: str) -> str:
        """Check an upload URL before its bytes are read; returns the upload's nonce."""
        claims = read_token(await self._key(), "up", token, self.clock())
        row = await self.uploads.get(str(claims.get("n")))
        if row is None or row["account_id"] != claims.get("a"):
            raise ResourceIsNone("The upload URL is unknown or was collected.")
        if row["state"] != STATE_ISSUED:
            raise NotRepeatInvoke("This upload URL was already used.")
        return str(row["nonce"])

    async def store_upload(self, nonce: str, data: bytes) -> int:
        if not await self.uploads.claim(nonce):
            raise NotRepeatInvoke("This upload URL was already used.")
        row = await self.uploads.get(nonce)
        assert row is not None
        try:
            await self.blobs.put(row["staging_key"], data)
        except BlobStorageError as exc:
            await self.uploads.finish(nonce, STATE_ISSUED, None)  # let the client PUT again
            raise _storage_failure(exc) from None
        await self.uploads.finish(nonce, STATE_UPLOADED, len(data))
        return len(data)

    async def commit(
        self, principal: Principal, file_name: str, type_: int, audit: AuditContext | None = None
    ) -> Row:
        existing = await self.resources.get_by_file_name(principal.account_id, file_name)
        if existing is not None:
            return existing
        data: bytes | None = None
        for upload in await self.uploads.candidates(principal.account_id, file_name):
            try:
                data = await self.blobs.get(upload["staging_key"])
            except BlobNotFound:
                continue
            except BlobStorageError:
                raise VolcTosServerError() from None
            # The PUT recorded how many bytes it stored; anything else is not that upload.
            if upload["size_bytes"] is not None and len(data) != upload["size_bytes"]:
                raise UploadFileFail("The uploaded file is incomplete; upload it again.")
            break
        if data is None:
            # A concurrent commit of this FileName may have made the resource and collected the
            # upload after the first look: that commit's resource is the answer.
            existing = await self.resources.get_by_file_name(principal.account_id, file_name)
            if existing is not None:
                return existing
            raise ResourceIsNone("Nothing was uploaded for this FileName (or its upload expired).")
        await self.library.check_quota(principal, len(data))
        consumed: list[str] = []

        async def consume_uploads(tx: Executor) -> None:
            # In the resource's transaction, holding the account row against new URLs of this
            # FileName (upload_url): every URL issued before is consumed here.
            await self.uploads.hold_account(principal.account_id, tx, exclusive=True)
            consumed.extend(await self.uploads.forget_file_name(principal.account_id, file_name, tx))

        row = await self._create(
            principal, data, name=file_name, type_=type_, source_url=None, audit=audit, also=consume_uploads
        )
        await self._delete_staging(consumed)
        return row

    async def check_commit(self, principal: Principal, file_name: str) -> None:
        """What commit would refuse, without reading the audio or creating anything (dry runs)."""
        if await self.resources.get_by_file_name(principal.account_id, file_name) is not None:
            return  # the commit would answer the existing resource
        uploads = await self.uploads.candidates(principal.account_id, file_name)
        if not uploads:
            raise ResourceIsNone("Nothing was uploaded for this FileName (or its upload expired).")
        await self.library.check_quota(principal, int(uploads[0]["size_bytes"] or 0))

    async def check_fetch(self, principal: Principal, url: str, name: str) -> None:
        existing = await self.resources.get_by_file_name(principal.account_id, name)
        if existing is not None:
            if existing["source_url"] == url:
                return
            raise NotRepeatInvoke(f"The Name is already taken by resource {existing['resource_key']}.")
        check_fetch_url(url)
        await self.library.check_quota(principal, 0)

    async def check_upload_url(
        self, principal: Principal, file_name: str, tx: Executor | None = None
    ) -> None:
        existing = await self.resources.get_by_file_name(principal.account_id, file_name, tx)
        if existing is not None:
            raise NotRepeatInvoke(
                f"The FileName is already committed as resource {existing['resource_key']}."
            )

    async def _delete_staging(self, staging_keys: list[str]) -> None:
        # Rows before blobs, as for resources: a crash in between leaves only unreferenced
        # staging blobs (collected), and a running backup's hold is checked after the rows went.
        if staging_keys and not await self.library.blobs_held():
            for key in staging_keys:
                await self._delete_blob(key)

    # --- Fetch --------------------------------------------------------------------------

    async def fetch(
        self, principal: Principal, url: str, name: str, type_: int, audit: AuditContext | None = None
    ) -> Row:
        existing = await self.resources.get_by_file_name(principal.account_id, name)
        if existing is not None:
            if existing["source_url"] == url:
                return existing
            raise NotRepeatInvoke(f"The Name is already taken by resource {existing['resource_key']}.")
        # Before the download: an account at its resource quota should not cost us one.
        await self.library.check_quota(principal, 0)
        data = await fetch_audio(url, allow_hosts=self.fetch_allow_hosts, limits=self.fetch_limits)
        await self.library.check_quota(principal, len(data))
        return await self._create(principal, data, name=name, type_=type_, source_url=url, audit=audit)

    # --- Creating the resource ----------------------------------------------------------

    async def _create(
        self,
        principal: Principal,
        data: bytes,
        *,
        name: str,
        type_: int,
        source_url: str | None,
        audit: AuditContext | None = None,
        also: Callable[[Executor], Awaitable[None]] | None = None,
    ) -> Row:
        if len(data) > MAX_AUDIO_BYTES:
            raise ResourceSizeOverLimit()
        # Decoding and transcoding are CPU work and may run ffmpeg: keep them off the event loop.
        # One ffmpeg run checks, converts and measures (prepare_audio). Without ffmpeg the
        # rendition waits (rendition_pending), and loudness at least (levels_pending), and both
        # are made once ffmpeg is there.
        prepared = await asyncio.to_thread(prepare_audio, data, self.max_audio_seconds)
        info, rendition, levels = prepared.info, prepared.rendition, prepared.levels
        rendition_pending = prepared.rendition_pending
        now = self._now()
        resource_key = uuid.uuid4().hex
        prefix = f"accounts/{principal.account_id}/{now}-{resource_key}"
        blob_key = f"{prefix}/original{info.suffix}"
        rendition_key = f"{prefix}/telephony.wav" if rendition is not None else None
        try:
            await self.blobs.put(blob_key, data)
            if rendition_key is not None and rendition is not None:
                await self.blobs.put(rendition_key, rendition)
        except BlobStorageError as exc:
            await self._delete_blob(blob_key)
            raise _storage_failure(exc) from None
        silent = await asyncio.to_thread(is_silent, data, info, rendition)
        decision = self.library.audio_decision(
            principal,
            name,
            info.duration_seconds,
            silent,
            MeasuredLevels(levels.peak_dbfs, levels.loudness_lufs, levels.silence_share),
        )
        values: dict[str, Any] = {
            "resource_key": resource_key,
            "account_id": principal.account_id,
            "type": type_,
            "state": decision.state,
            "name": name,
            "file_name": name,
            "source_url": source_url,
            "suffix": info.suffix,
            "duration": info.duration,
            "duration_ms": round(info.duration_seconds * 1000),
            "audio_format": info.format,
            "codec": info.codec,
            "sample_rate": info.sample_rate,
            "channels": info.channels,
            "size_bytes": info.size,
            "sha256": info.sha256,
            "blob_key": blob_key,
            "rendition_key": rendition_key,
            "rendition_pending": rendition_pending,
            **level_values(levels),
            "levels_pending": not levels.complete,
            "reject_reason": decision.reason,
            "reviewed_by": decision.reviewed_by,
            "reviewed_at": now if decision.reviewed_by else None,
            "created_at": now,
        }
        try:
            await self.library.insert_and_announce(
                principal.account_id, principal.account_name, values, principal, audit, also=also
            )
        except QuotaExceeded:
            await self._delete_blob(blob_key)
            if rendition_key:
                await self._delete_blob(rendition_key)
            raise
        except UniqueViolation:
            # The unique (account, file_name) index decided: a concurrent commit or fetch of the
            # same name won, ours is the duplicate. The winner is the answer, as it would have
            # been had it come first (a fetch of another URL is refused).
            await self._delete_blob(blob_key)
            if rendition_key:
                await self._delete_blob(rendition_key)
            winner = await self.resources.get_by_file_name(principal.account_id, name)
            if winner is None:
                raise
            if source_url is not None and winner["source_url"] != source_url:
                raise NotRepeatInvoke(
                    f"The Name is already taken by resource {winner['resource_key']}."
                ) from None
            return winner
        row = await self.resources.get(principal.account_id, resource_key)
        assert row is not None
        return row

    async def _delete_blob(self, key: str) -> None:
        await delete_quietly(self.blobs, key)

    # --- Renditions that waited for ffmpeg ----------------------------------------------

    async def make_pending_renditions(self) -> RenditionReport:
        """Make the telephony renditions that wait for ffmpeg (none while it is still missing).

        Safe to run in several processes at once: a rendition is recorded only if the resource is
        still pending, and the loser removes its copy. The blob is named with the time it is
        written, so that garbage collection leaves it alone while its row is being updated.
        """
        report = RenditionReport()
        if not ffmpeg_available():
            report.ffmpeg_missing = True
            report.pending = await self.resources.count_pending_renditions()
            report.levels_pending = await self.resources.count_pending_levels()
            return report
        await self._measure_pending_levels(report)
        after_id = 0
        while rows := await self.resources.pending_renditions(after_id, RENDITION_BATCH):
            after_id = rows[-1]["id"]
            # Every worker runs this pass: in a shuffled order, and skipping what another made
            # meanwhile, they seldom convert the same file twice.
            random.shuffle(rows)
            for row in rows:
                if not await self.resources.rendition_still_pending(row["id"]):
                    continue
                if not await self._make_rendition(row, report):
                    report.ffmpeg_missing = True
                    report.pending = await self.resources.count_pending_renditions()
                    return report
        report.pending = await self.resources.count_pending_renditions()
        return report

    async def _measure_pending_levels(self, report: RenditionReport) -> None:
        after_id = 0
        while rows := await self.resources.pending_levels(after_id, RENDITION_BATCH):
            after_id = rows[-1]["id"]
            random.shuffle(rows)
            for row in rows:
                outcome = await self.measure_levels_of(row)
                if outcome is None:
                    report.storage_errors += 1
                elif outcome:
                    report.levels_measured += 1
        report.levels_pending = await self.resources.count_pending_levels()

    async def measure_levels_of(self, row: Row) -> bool | None:
        """Measure a resource's levels now (a pending one, or one the console shows first).

        True when recorded, False when there was nothing to record (another measurer was first,
        or the resource is gone), None when its audio could not be read (tried again later).
        """
        try:
            data = await self.blobs.get(row["blob_key"])
        except BlobNotFound:
            return await self.resources.finish_levels(row["id"], {}, still_pending=False)
        except BlobStorageError:
            return None
        try:
            info = await asyncio.to_thread(analyze_audio, data)
        except VmsError:
            return await self.resources.finish_levels(row["id"], {}, still_pending=False)
        levels = await asyncio.to_thread(measure_levels, data, info)
        return await self.resources.finish_levels(
            row["id"], level_values(levels), still_pending=not levels.complete
        )

    async def waveform(self, row: Row) -> bytes | None:
        """The resource's stored waveform (bucket levels), measured now if it never was.

        Measured once: a resource stored with levels has them from its commit, one stored before
        (or without ffmpeg) is measured here the first time it is asked for, and what that
        records is read by every later request.
        """
        stored = await self.resources.waveform(row["resource_key"])
        # Without ffmpeg only a 16-bit PCM WAV can be measured: others are not read in vain.
        measurable = ffmpeg_available() or row.get("codec") == "pcm_s16le"
        if stored is None and row.get("levels_pending") and row.get("blob_key") and measurable:
            await self.measure_levels_of(row)
            stored = await self.resources.waveform(row["resource_key"])
        return None if stored is None else bytes.fromhex(stored)

    async def _make_rendition(self, row: Row, report: RenditionReport) -> bool:
        """One pending rendition; False when ffmpeg went away meanwhile (the pass stops)."""
        try:
            data = await self.blobs.get(row["blob_key"])
        except BlobNotFound:
            # The resource was deleted since it was listed, or its original is lost: either way
            # there is nothing to convert, ever.
            if await self.resources.finish_rendition(row["id"], None):
                report.failed += 1
            return True
        except BlobStorageError:
            report.storage_errors += 1
            return True
        try:
            info = await asyncio.to_thread(analyze_audio, data)
        except VmsError:
            rendition = None
        else:
            rendition = await asyncio.to_thread(make_telephony_rendition, data, info)
        if rendition is None:
            if not ffmpeg_available():
                return False
            if await self.resources.finish_rendition(row["id"], None):
                report.failed += 1
            return True
        key = f"accounts/{row['account_id']}/{self._now()}-{row['resource_key']}/telephony.wav"
        try:
            await self.blobs.put(key, rendition)
        except BlobStorageError:
            report.storage_errors += 1
            return True
        if await self.resources.finish_rendition(row["id"], key):
            report.made += 1
            return True
        current = await self.resources.get(row["account_id"], row["resource_key"])
        if current is None or current["rendition_key"] != key:
            await self._delete_blob(key)
        return True

    # --- Downloads ----------------------------------------------------------------------

    async def download_url(
        self, principal: Principal, resource_key: str, rendition: str, base_url: str
    ) -> tuple[str, int]:
        row = await self.resources.get(principal.account_id, resource_key)
        if row is None:
            raise ResourceKeyIsNotExist()
        key = row["blob_key"] if rendition == "original" else row["rendition_key"]
        if not key:
            if rendition != "original" and row["rendition_pending"]:
                raise InvalidParameter("Rendition", RENDITION_PENDING_MESSAGE)
            if rendition != "original" and row["blob_key"]:
                raise InvalidParameter("Rendition", RENDITION_FAILED_MESSAGE)
            raise InvalidParameter("Rendition", f"The resource has no {rendition} audio.")
        expires_at = self._now() + DOWNLOAD_URL_SECONDS
        presigned = self.blobs.presign_get(key, DOWNLOAD_URL_SECONDS)
        if presigned is not None:
            return presigned, expires_at
        claims = {"a": principal.account_id, "r": resource_key, "v": rendition}
        token = make_token(await self._key(), "down", claims, expires_at)
        return f"{self.public_url or base_url}/download/{token}", expires_at

    async def open_download(self, token: str) -> Download:
        claims = read_token(await self._key(), "down", token, self.clock())
        row = await self.resources.get(int(claims["a"]), str(claims["r"]))
        key = (
            None if row is None else (row["blob_key"] if claims["v"] == "original" else row["rendition_key"])
        )
        if row is None or not key:
            raise ResourceKeyIsNotExist()
        try:
            reader = await self.blobs.open_reader(key)
        except (BlobNotFound, BlobStorageError):
            raise VolcTosServerError() from None
        suffix = ".wav" if claims["v"] == "telephony" else row["suffix"]
        return Download(reader, _content_type(key), f"{row['resource_key']}{suffix}")

    # --- Collection ---------------------------------------------------------------------

    async def forget_account_uploads(self, account_id: int, tx: Executor | None = None) -> None:
        """Test control (an account reset): its upload URLs stop working; staged bytes are garbage."""
        await self.uploads.forget_account(account_id, tx)

    async def collect_garbage(self) -> GarbageReport:
        now = self._now()
        report = GarbageReport()
        # Blobs are listed before the rows are read. An upload row is written before its staging
        # blob, so a staging blob listed here without a row below really has none (read the
        # other way round, a blob PUT in between would be taken for garbage). Resource blobs
        # come before their rows, which the minimum age covers.
        staged = await self.blobs.list_keys("staging/")
        stored = await self.blobs.list_keys("accounts/")
        expired = await self.uploads.expired(now - STAGING_GRACE_SECONDS)
        live_staging = await self.uploads.staging_keys()
        referenced = await self.resources.referenced_blob_keys()
        # After reading the rows: a backup whose snapshot may reference a blob these rows no
        # longer do took its hold before that snapshot, so it shows here (see blobs_held).
        if await self.library.blobs_held():
            report.held_by_backup = True
            return report
        for upload in expired:
            await self._delete_blob(upload["staging_key"])
            await self.uploads.delete(upload["nonce"])
            report.expired_uploads += 1
        for key in staged:
            if key not in live_staging:
                await self._delete_blob(key)
                report.staging_blobs += 1
        for key in stored:
            if key in referenced:
                continue
            stamp = key.split("/")[2].split("-", 1)[0] if key.count("/") >= 3 else ""
            if stamp.isdigit() and int(stamp) < now - ORPHAN_MIN_AGE_SECONDS:
                await self._delete_blob(key)
                report.orphan_blobs += 1
        return report


def _storage_failure(exc: BlobStorageError) -> VmsError:
    return InsufficientStorage() if isinstance(exc, BlobStorageFull) else VolcTosServerError()
