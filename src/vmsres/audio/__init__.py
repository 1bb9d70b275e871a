"""The audio layer: checking and measuring uploaded MP3/WAV files, and making their telephony
renditions. It knows nothing of HTTP or SQL; see docs/audio.md for the user-facing rules."""

from vmsres.audio._ffmpeg import ffmpeg_available
from vmsres.audio.analysis import MAX_AUDIO_BYTES, AudioInfo, analyze_audio, whole_seconds
from vmsres.audio.rendition import (
    TELEPHONY_CODEC,
    TELEPHONY_SAMPLE_RATE,
    make_telephony_rendition,
)

__all__ = [
    "MAX_AUDIO_BYTES",
    "TELEPHONY_CODEC",
    "TELEPHONY_SAMPLE_RATE",
    "AudioInfo",
    "analyze_audio",
    "ffmpeg_available",
    "make_telephony_rendition",
    "whole_seconds",
]
