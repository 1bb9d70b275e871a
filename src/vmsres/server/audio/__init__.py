"""The audio layer: checking and measuring uploaded MP3/WAV files, and making their telephony
renditions. It knows nothing of HTTP or SQL; see docs/audio.md for the user-facing rules."""

from vmsres.server.audio._ffmpeg import ENV_VAR as FFMPEG_ENV
from vmsres.server.audio._ffmpeg import ffmpeg_available
from vmsres.server.audio.analysis import MAX_AUDIO_BYTES, AudioInfo, analyze_audio, whole_seconds
from vmsres.server.audio.levels import WAVEFORM_BUCKETS, AudioLevels, measure_levels
from vmsres.server.audio.prepare import PreparedAudio, prepare_audio
from vmsres.server.audio.rendition import (
    TELEPHONY_BYTES_PER_MS,
    TELEPHONY_CODEC,
    TELEPHONY_HEADER_BYTES,
    TELEPHONY_SAMPLE_RATE,
    make_telephony_rendition,
    telephony_rendition_bytes,
)
from vmsres.server.audio.silence import SILENCE_PEAK_DBFS, is_silent, peak_dbfs

__all__ = [
    "FFMPEG_ENV",
    "MAX_AUDIO_BYTES",
    "SILENCE_PEAK_DBFS",
    "TELEPHONY_BYTES_PER_MS",
    "TELEPHONY_CODEC",
    "TELEPHONY_HEADER_BYTES",
    "TELEPHONY_SAMPLE_RATE",
    "WAVEFORM_BUCKETS",
    "AudioInfo",
    "AudioLevels",
    "PreparedAudio",
    "analyze_audio",
    "ffmpeg_available",
    "is_silent",
    "make_telephony_rendition",
    "measure_levels",
    "peak_dbfs",
    "prepare_audio",
    "telephony_rendition_bytes",
    "whole_seconds",
]
