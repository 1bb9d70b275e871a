"""The telephony rendition: the same audio as an 8 kHz, mono, 16-bit linear PCM WAV.

Why 16-bit linear PCM rather than G.711 mu-law: every dialer and PBX reads it (it is Asterisk's
and FreeSWITCH's native "slin" .wav), the dialer then companding to whichever G.711 law the call
negotiated without stacking two lossy steps, and Python's own ``wave`` module can read it back.
It costs twice the bytes of mu-law, 16 kB per second, which is small next to the source.
"""

from __future__ import annotations

import io
import wave

from vmsres.server.audio._common import log
from vmsres.server.audio._ffmpeg import run_ffmpeg
from vmsres.server.audio.analysis import AudioInfo

TELEPHONY_SAMPLE_RATE = 8000
TELEPHONY_CHANNELS = 1
TELEPHONY_SAMPLE_WIDTH = 2  # bytes: signed 16-bit little-endian
TELEPHONY_CODEC = "pcm_s16le"
# The rendition holds exactly 8 sample frames per millisecond of the original's duration (rounded
# to the millisecond), after a 44-byte WAV header: its size follows from the stored duration,
# which is how the quotas count it without storing it (docs/audio.md).
TELEPHONY_HEADER_BYTES = 44
TELEPHONY_BYTES_PER_MS = TELEPHONY_SAMPLE_RATE // 1000 * TELEPHONY_CHANNELS * TELEPHONY_SAMPLE_WIDTH

# Generous: the worst case under the 5 MB limit (about 20 minutes of low-bitrate MP3) converts in
# about a second; a stuck ffmpeg is killed at this point instead of holding the request.
RENDITION_TIMEOUT_SECONDS = 60.0


# The output options that make the rendition's samples of a decoded stream (the output's name
# follows them).
RENDITION_OUTPUT = (
    "-map_metadata",
    "-1",
    "-ac",
    str(TELEPHONY_CHANNELS),
    "-ar",
    str(TELEPHONY_SAMPLE_RATE),
    "-c:a",
    TELEPHONY_CODEC,
    # Raw samples, framed in a WAV by frame_telephony: ffmpeg writing WAV to a pipe cannot go
    # back to fill in the chunk sizes and leaves placeholders that strict readers refuse.
    "-f",
    "s16le",
)


def telephony_rendition_bytes(duration_ms: int) -> int:
    """The size of the rendition of audio lasting ``duration_ms`` milliseconds."""
    return TELEPHONY_HEADER_BYTES + TELEPHONY_BYTES_PER_MS * duration_ms


def make_telephony_rendition(data: bytes, info: AudioInfo) -> bytes | None:
    """Convert audio that ``analyze_audio`` accepted (``info`` is its answer) for dialers.

    Returns the WAV file's bytes, or None when there is no rendition: ffmpeg is absent, or it
    failed or timed out on this input (logged). The resource stays valid either way.
    """
    result = run_ffmpeg(
        ["-f", info.format, "-i", "pipe:0", "-map", "0:a:0", *RENDITION_OUTPUT, "pipe:1"],
        data,
        RENDITION_TIMEOUT_SECONDS,
    )
    if result is None:
        return None
    if result.returncode != 0 or not result.stdout:
        log.warning(
            "no telephony rendition for %s audio (sha256 %s): ffmpeg exited %d: %s",
            info.format,
            info.sha256,
            result.returncode,
            result.stderr[-500:],
        )
        return None
    return frame_telephony(result.stdout, info)


def frame_telephony(pcm: bytes, info: AudioInfo) -> bytes:
    """The rendition's WAV file from what ffmpeg wrote for RENDITION_OUTPUT."""
    # Resampling gives or takes a few samples; trimming or padding with silence to the exact
    # length makes the size a function of the duration (see TELEPHONY_BYTES_PER_MS).
    length = telephony_rendition_bytes(round(info.duration_seconds * 1000)) - TELEPHONY_HEADER_BYTES
    pcm = pcm[:length].ljust(length, b"\0")
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(TELEPHONY_CHANNELS)
        wav.setsampwidth(TELEPHONY_SAMPLE_WIDTH)
        wav.setframerate(TELEPHONY_SAMPLE_RATE)
        wav.writeframes(pcm)
    return out.getvalue()
