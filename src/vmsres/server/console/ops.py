"""What the console needs beyond AdminOps: search across accounts, audio bytes, spoken previews."""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import io
import json
import math
import re
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vmsres.protocol.records import ResourceType
from vmsres.server.blobs import BlobNotFound, BlobStorageError
from vmsres.server.service.records import resource_record
from vmsres.server.service.services import Services

# Merging every account's newest rows costs offset + limit rows per account, so deep pages
# across all accounts are capped; one account's search pages as deep as the wire API does.
MAX_MERGED_ROWS = 2000
PREVIEW_PREFIX = "console/tts-preview/"
ESPEAK_TIMEOUT_SECONDS = 30
# espeak-ng's own defaults: words per minute and amplitude. A template's Speed and Volume options
# (multipliers, 1 = normal, as Volcengine's voices take them) scale them within espeak-ng's range.
ESPEAK_RATE = 175
ESPEAK_RATE_RANGE = (80, 450)
ESPEAK_AMPLITUDE = 100
ESPEAK_AMPLITUDE_RANGE = (0, 200)
WAVEFORM_HEIGHT = 64
_VARIABLE = re.compile(r"#([A-Za-z0-9]+)#")


@dataclass(frozen=True, slots=True)
class SearchPage:
    records: list[dict[str, Any]]
    total: int
    capped: bool


class NoAudio(LookupError):
    """The resource or the rendition asked for has no bytes to play."""


class PreviewUnavailable(RuntimeError):
    """espeak-ng is not installed, or failed on this text."""


def espeak_binary() -> str | None:
    return shutil.which("espeak-ng")


def template_parts(content: str) -> list[tuple[str, bool]]:
    """Text and ``#variable#`` pieces in order; True marks a variable (for highlighting)."""
    parts: list[tuple[str, bool]] = []
    last = 0
    for match in _VARIABLE.finditer(content):
        if match.start() > last:
            parts.append((content[last : match.start()], False))
        parts.append((match.group(0), True))
        last = match.end()
    if last < len(content):
        parts.append((content[last:], False))
    return parts


class ConsoleOps:
    def __init__(self, services: Services) -> None:
        self.services = services
        self._preview_locks: dict[str, asyncio.Lock] = {}

    async def search(
        self,
        account: str | None,
        type_: int | None,
        state: int | None,
        keyword: str,
        limit: int,
        offset: int,
    ) -> SearchPage:
        """QueryOpenGetResource's filter and order (newest first), one account or all of them,
        one type or (``type_`` None) all of them.

        One account and one type is the wire API's own query; otherwise the pages of each
        (account, type) are merged by (CreateTime, id) newest first, capped at MAX_MERGED_ROWS.
        """
        resources = self.services.resources
        types = [int(t) for t in ResourceType] if type_ is None else [type_]
        if account:
            row = await self.services.accounts.account(account)
            accounts = [(int(row["id"]), account)]
        else:
            accounts = [(int(a["id"]), str(a["name"])) for a in await self.services.accounts.list_accounts()]
        if len(accounts) == 1 and len(types) == 1:
            rows, total = await resources.search(accounts[0][0], types[0], state, keyword, limit, offset)
            return SearchPage([_record(r, accounts[0][1]) for r in rows], total, False)
        wanted = min(offset + limit, MAX_MERGED_ROWS)
        streams: list[list[tuple[tuple[int, int], dict[str, Any]]]] = []
        total = 0
        for account_id, name in accounts:
            for type_number in types:
                rows, count = await resources.search(account_id, type_number, state, keyword, wanted, 0)
                total += count
                streams.append([((-r["created_at"], -r["id"]), _record(r, name)) for r in rows])
        merged = [record for _, record in heapq.merge(*streams, key=lambda item: item[0])]
        return SearchPage(merged[offset : offset + limit], total, offset + limit > MAX_MERGED_ROWS)

    async def resource_row(self, resource_key: str) -> dict[str, Any] | None:
        return await self.services.resources.find(resource_key)

    async def audio(self, resource_key: str, rendition: str) -> tuple[bytes, str]:
        row = await self.resource_row(resource_key)
        key = None if row is None else row["blob_key" if rendition == "original" else "rendition_key"]
        if not key:
            raise NoAudio(resource_key)
        try:
            data = await self.services.blobs.get(key)
        except (BlobNotFound, BlobStorageError):
            raise NoAudio(resource_key) from None
        return data, "audio/mpeg" if key.endswith(".mp3") else "audio/wav"

    async def waveform(self, resource_key: str) -> bytes | None:
        """The resource's waveform levels (measured once, then stored), or None."""
        row = await self.resource_row(resource_key)
        if row is None or row["type"] == ResourceType.TTS:
            return None
        return await self.services.ingest.waveform(row)

    async def tts_preview(self, resource_key: str) -> bytes:
        """A WAV of the template read by espeak-ng at the template's Speed and Volume; rendered
        once per template text and options, then cached in the blob store."""
        row = await self.resource_row(resource_key)
        if row is None or row["type"] != ResourceType.TTS or not row["tts_content"]:
            raise NoAudio(resource_key)
        text = str(row["tts_content"])
        voice = speech_settings(row["tts_options"])
        digest = hashlib.sha256(f"{text}\0{voice.rate}\0{voice.amplitude}".encode()).hexdigest()[:16]
        blob_key = f"{PREVIEW_PREFIX}{resource_key}-{digest}.wav"
        lock = self._preview_locks.setdefault(blob_key, asyncio.Lock())
        async with lock:
            try:
                return await self.services.blobs.get(blob_key)
            except BlobNotFound:
                pass
            data = await asyncio.to_thread(render_speech, _speakable(text), voice)
            await self.services.blobs.put(blob_key, data)
            return data

    async def tts_preview_duration_ms(self, resource_key: str) -> int | None:
        """The spoken preview's duration, rendering it now if it is not cached (the resource page
        shows it before anything is played); None when there is no preview to be had."""
        try:
            data = await self.tts_preview(resource_key)
        except (NoAudio, PreviewUnavailable, BlobStorageError):
            # The page still shows; the player answers for itself when played.
            return None
        try:
            with wave.open(io.BytesIO(data)) as reader:
                frames: int = reader.getnframes()
                rate: int = reader.getframerate()
            return round(frames * 1000 / rate)
        except (wave.Error, EOFError, ZeroDivisionError):
            return None


@dataclass(frozen=True, slots=True)
class SpeechSettings:
    rate: int = ESPEAK_RATE  # espeak-ng -s, words per minute
    amplitude: int = ESPEAK_AMPLITUDE  # espeak-ng -a


def _multiplier(options: dict[str, Any], name: str) -> float | None:
    value = options.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        # OverflowError: an integer past float's range (options stored as given, by a fixture
        # or a restored backup, are not limited to what the wire's JSON parser reads).
        return None
    return number if math.isfinite(number) and number > 0 else None


def speech_settings(tts_options: str | None) -> SpeechSettings:
    """espeak-ng's rate and amplitude for a template's TtsOptions: Speed and Volume multiply the
    defaults (clamped to espeak-ng's range); anything else in the options is not heard."""
    try:
        options = json.loads(tts_options or "{}")
    except ValueError:
        return SpeechSettings()
    if not isinstance(options, dict):
        return SpeechSettings()
    speed = _multiplier(options, "Speed")
    volume = _multiplier(options, "Volume")
    low, high = ESPEAK_RATE_RANGE
    # Clamped before rounding: a huge multiplier times the default is inf, which round() refuses.
    rate = ESPEAK_RATE if speed is None else round(min(high, max(low, ESPEAK_RATE * speed)))
    low, high = ESPEAK_AMPLITUDE_RANGE
    amplitude = ESPEAK_AMPLITUDE if volume is None else round(min(high, max(low, ESPEAK_AMPLITUDE * volume)))
    return SpeechSettings(rate, amplitude)


def waveform_svg(levels: bytes, height: int = WAVEFORM_HEIGHT) -> str:
    """The waveform as an SVG image: one bar per level, mirrored about the middle line.

    Drawn with presentation attributes only (no style), so the console's CSP has nothing to refuse.
    """
    middle = height / 2
    bars = []
    for x, level in enumerate(levels):
        half = max(0.5, level / 255 * middle)
        bars.append(f"M{x + 0.5} {middle - half:.1f}V{middle + half:.1f}")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {len(levels)} {height}" '
        f'width="{len(levels) * 3}" height="{height}" preserveAspectRatio="none" role="img">'
        f'<path d="{"".join(bars)}" stroke="#2b6cb0" stroke-width="0.8" fill="none"/></svg>'
    )


def _record(row: dict[str, Any], account: str) -> dict[str, Any]:
    return {**resource_record(row), "Account": account}


def _speakable(text: str) -> str:
    # A variable is read as its name, so the reviewer hears where it goes.
    return _VARIABLE.sub(lambda m: f" {m.group(1)} ", text)


def _voice_for(text: str) -> str:
    return "cmn" if any("\u4e00" <= ch <= "\u9fff" for ch in text) else "en"


def render_speech(text: str, voice: SpeechSettings | None = None) -> bytes:
    voice = voice or SpeechSettings()
    binary = espeak_binary()
    if binary is None:
        raise PreviewUnavailable("espeak-ng is not installed on the server")
    with tempfile.TemporaryDirectory(prefix="vmsres-tts-") as tmp:
        out = Path(tmp) / "preview.wav"
        # The text goes through stdin so that nothing in it is read as an option.
        command = [binary, "-v", _voice_for(text), "-s", str(voice.rate), "-a", str(voice.amplitude)]
        try:
            result = subprocess.run(
                [*command, "-w", str(out), "--stdin"],
                input=text.encode(),
                capture_output=True,
                timeout=ESPEAK_TIMEOUT_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise PreviewUnavailable(f"espeak-ng took more than {ESPEAK_TIMEOUT_SECONDS} s") from None
        if result.returncode != 0 or not out.exists():
            raise PreviewUnavailable(f"espeak-ng failed: {result.stderr.decode(errors='replace')[:200]}")
        return out.read_bytes()
