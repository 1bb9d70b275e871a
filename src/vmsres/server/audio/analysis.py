"""What an uploaded audio file is: format, codec, rate, channels, duration, size and digest.

``analyze_audio`` accepts MP3 and WAV only, decided by the bytes (a file's name is never
consulted), and refuses anything it cannot vouch a decoder will play. The checks, and how they
differ with and without ffmpeg, are described for users in docs/audio.md.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

import mutagen
import mutagen.mp3

from vmsres.protocol.errors import (
    AudioDurationOverLimit,
    EmptyResourceBody,
    FileAnalyseError,
    ResourceSizeOverLimit,
)
from vmsres.server.audio import _mpeg, _riff
from vmsres.server.audio._common import MalformedAudio, log
from vmsres.server.audio._ffmpeg import run_ffmpeg

MAX_AUDIO_BYTES = 5 * 1024 * 1024

# Decoding 5 MB of low-bitrate MP3 (the slowest case) takes ffmpeg well under a second on an idle
# core; the margin is for a busy machine. Past it the check counts as not done, not as failed.
DECODE_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class AudioInfo:
    """What ``analyze_audio`` found. Everything is decided by the bytes, never by a file name."""

    format: str  # "mp3" or "wav"
    suffix: str  # ".mp3" or ".wav"
    codec: str  # ffmpeg's name: "mp3", "pcm_s16le", "pcm_mulaw", ...
    sample_rate: int  # Hz
    channels: int
    duration_seconds: float  # measured from the samples, not taken from a header
    duration: int  # whole seconds for the wire: see whole_seconds
    size: int  # bytes
    sha256: str  # lowercase hex digest of the bytes


def whole_seconds(samples: int, sample_rate: int) -> int:
    """The Duration shown to users: seconds rounded half up, and never 0 for audio that has sound.

    Integer arithmetic so that exactly 1.5 s rounds to 2 whatever floating point would make of it.
    """
    return max(1, (2 * samples + sample_rate) // (2 * sample_rate))


def _reject(detail: str) -> FileAnalyseError:
    return FileAnalyseError(f"{FileAnalyseError.default_message} {detail}")


def _info(data: bytes, fmt: str, codec: str, sample_rate: int, channels: int, samples: int) -> AudioInfo:
    return AudioInfo(
        format=fmt,
        suffix=f".{fmt}",
        codec=codec,
        sample_rate=sample_rate,
        channels=channels,
        duration_seconds=samples / sample_rate,
        duration=whole_seconds(samples, sample_rate),
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )


def _ffmpeg_decodes(data: bytes, demuxer: str) -> bool | None:
    """Decode every frame with ffmpeg, stopping at the first error.

    True or False when ffmpeg gave a verdict; None when it could not (absent, failed to start,
    timed out, or killed by a signal), in which case the pure-Python verdict stands.
    """
    result = run_ffmpeg(
        ["-xerror", "-f", demuxer, "-i", "pipe:0", "-map", "0:a:0", "-f", "null", "-"],
        data,
        DECODE_TIMEOUT_SECONDS,
    )
    if result is None:
        return None
    if result.returncode < 0:
        log.warning("ffmpeg died of signal %d during a decode check", -result.returncode)
        return None
    if result.returncode != 0:
        log.info("ffmpeg refused the audio: %s", result.stderr[-500:])
        return False
    return True


_UNDECODABLE = "The MPEG audio frames do not decode."


def _check_duration(samples: int, sample_rate: int, max_seconds: float | None) -> None:
    if max_seconds is not None and samples > max_seconds * sample_rate:
        raise AudioDurationOverLimit(
            f"The audio plays {samples / sample_rate:.1f} seconds; the limit is {max_seconds:g} seconds."
        )


def _analyze_mp3(data: bytes, max_seconds: float | None, decode: bool) -> AudioInfo:
    stream = _mpeg.walk(data)
    # Before the decode pass: a long file is refused without spending a decoder's time on it.
    _check_duration(stream.samples, stream.sample_rate, max_seconds)
    # mutagen is a second, independent reader of the stream header; if it cannot find the same
    # stream the walk did, one of the two has been fooled and the file is not trusted.
    try:
        header = mutagen.mp3.MPEGInfo(io.BytesIO(data))
    except mutagen.MutagenError as exc:
        raise MalformedAudio("No MPEG stream header could be read.") from exc
    if (header.sample_rate, header.channels, header.layer) != (stream.sample_rate, stream.channels, 3):
        raise MalformedAudio("The MPEG stream header does not match its frames.")
    if decode and _ffmpeg_decodes(data, "mp3") is False:
        raise MalformedAudio(_UNDECODABLE)
    return _info(data, "mp3", "mp3", stream.sample_rate, stream.channels, stream.samples)


def _analyze_wav(data: bytes, max_seconds: float | None) -> AudioInfo:
    # No ffmpeg pass: for the codecs _riff accepts, sound chunks and a complete data chunk are all
    # that decoding needs, so ffmpeg could not refuse anything the parse lets through.
    stream = _riff.parse(data)
    _check_duration(stream.frames, stream.sample_rate, max_seconds)
    return _info(data, "wav", stream.codec, stream.sample_rate, stream.channels, stream.frames)


def analyze_audio(data: bytes, max_seconds: float | None = None) -> AudioInfo:
    """Describe an MP3 or WAV file from its bytes alone.

    Raises EmptyResourceBody for no bytes, ResourceSizeOverLimit above MAX_AUDIO_BYTES (before
    looking inside), FileAnalyseError for anything that is not a decodable MP3 or WAV file, and
    AudioDurationOverLimit for audio longer than ``max_seconds`` (measured from the frames,
    before any decoding). No other exception escapes, whatever the input.
    """
    return analyze_undecoded(data, max_seconds, decode=True)


def decode_check_needed(info: AudioInfo) -> bool:
    """Whether analyze_audio would have run ffmpeg's decode check on this audio (MP3 only)."""
    return info.format == "mp3"


def refuse_undecodable() -> FileAnalyseError:
    """What analyze_audio raises for audio whose frames ffmpeg could not decode."""
    return _reject(_UNDECODABLE)


def analyze_undecoded(data: bytes, max_seconds: float | None = None, *, decode: bool = False) -> AudioInfo:
    """analyze_audio without (by default) ffmpeg's decode check, for a caller whose own ffmpeg run
    decodes every frame and stands in for it (see prepare.py)."""
    if not data:
        raise EmptyResourceBody()
    if len(data) > MAX_AUDIO_BYTES:
        raise ResourceSizeOverLimit()
    data = bytes(data)
    try:
        if _riff.looks_like_wav(data):
            return _analyze_wav(data, max_seconds)
        if _mpeg.looks_like_mp3(data):
            return _analyze_mp3(data, max_seconds, decode)
    except MalformedAudio as exc:
        raise _reject(str(exc)) from None
    except AudioDurationOverLimit:
        raise
    except Exception as exc:
        # Not expected (the fuzz tests look for it by the chained cause), but whatever went wrong,
        # these bytes are not something we can vouch for and the contract is three error types.
        log.warning("audio analysis failed unexpectedly", exc_info=True)
        raise _reject("The file could not be read as audio.") from exc
    if data[:4] == b"OggS":
        raise _reject("This is an Ogg file.")
    raise _reject("The file is neither MP3 nor WAV.")
