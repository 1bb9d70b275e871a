"""Is a recording (near) silent? The review rules reject silence as "clearly bad".

Measured as the peak level of 16-bit PCM: the telephony rendition when there is one (any input
format, already decoded by ffmpeg), else the original when it is itself a 16-bit PCM WAV. Other
inputs without ffmpeg cannot be measured and count as not silent.
"""

from __future__ import annotations

import io
import math
import sys
import wave
from array import array

from vmsres.server.audio.analysis import AudioInfo

# Peaks below this are inaudible on a phone line (16-bit dither and line noise sit near -90 dBFS;
# quiet speech peaks around -30 dBFS).
SILENCE_PEAK_DBFS = -50.0


def peak_dbfs(wav_bytes: bytes) -> float | None:
    """The highest absolute sample of a 16-bit PCM WAV in dBFS (-inf for digital silence)."""
    try:
        with wave.open(io.BytesIO(wav_bytes)) as reader:
            if reader.getsampwidth() != 2:
                return None
            frames = reader.readframes(reader.getnframes())
    except (wave.Error, EOFError, ValueError):
        return None
    samples = array("h")
    samples.frombytes(frames[: len(frames) - len(frames) % 2])
    if sys.byteorder == "big":
        samples.byteswap()
    if not samples:
        return None
    peak = max(max(samples), -min(samples))
    return -math.inf if peak == 0 else 20 * math.log10(peak / 32768)


def is_silent(data: bytes, info: AudioInfo, rendition: bytes | None = None) -> bool:
    source = rendition if rendition is not None else (data if info.codec == "pcm_s16le" else None)
    level = peak_dbfs(source) if source is not None else None
    return level is not None and level < SILENCE_PEAK_DBFS
