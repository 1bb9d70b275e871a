"""What a reviewer judges audio by before playing it: levels, loudness, silence and a waveform.

Measured once, when a resource is stored (docs/audio.md, "Levels, loudness and waveform"):

- peak level, dBFS: the highest sample of any channel;
- integrated loudness, LUFS, and true peak, dBTP: EBU R128, by ffmpeg's ebur128 filter;
- silence share: the fraction of 50 ms windows whose peak is below SILENCE_PEAK_DBFS;
- a waveform: WAVEFORM_BUCKETS peak levels (0-255, linear) over the duration.

With ffmpeg one pass decodes the file: ebur128 measures the original channels, and an 8 kHz copy
of every channel feeds the silence share and the waveform (their peaks are those of the loudest
channel: a mono mix would cancel channels in opposite phase and halve a lone one). Without it only a 16-bit PCM WAV can be read (as
its own samples), and loudness is left unmeasured (None) until ffmpeg is there.
"""

from __future__ import annotations

import io
import math
import re
import sys
import wave
from array import array
from dataclasses import dataclass

from vmsres.server.audio._common import log
from vmsres.server.audio._ffmpeg import ffmpeg_path, run_ffmpeg
from vmsres.server.audio.analysis import AudioInfo
from vmsres.server.audio.silence import SILENCE_PEAK_DBFS

WAVEFORM_BUCKETS = 240
# Long enough to hold a syllable's attack, short enough that a pause between words counts.
SILENCE_WINDOW_SECONDS = 0.05
# The decoded copy the silence share and the waveform are computed from: the telephony rate, so
# that what counts as silence is what a phone line would carry as silence (nothing above 4 kHz).
_ANALYSIS_RATE = 8000
LEVELS_TIMEOUT_SECONDS = 60.0
# True peak oversamples 4x, which triples ebur128's time: measured for prompt-length audio (where
# it costs milliseconds), left NULL for longer files so that a commit of a 10-minute file does
# not spend seconds on it.
TRUE_PEAK_MAX_SECONDS = 120.0
# The gating block of EBU R128's integrated loudness: audio shorter than one has none.
LOUDNESS_BLOCK_SECONDS = 0.4
_FULL_SCALE = 32768
_SILENT_BELOW = int(_FULL_SCALE * 10 ** (SILENCE_PEAK_DBFS / 20))
_SUMMARY = re.compile(
    r"Integrated loudness:\s*I:\s*(?P<i>-?[\d.]+|-inf) LUFS.*?"
    r"Sample peak:\s*Peak:\s*(?P<sp>-?[\d.]+|-inf) dBFS"
    r"(?:\s*True peak:\s*Peak:\s*(?P<tp>-?[\d.]+|-inf) dBFS)?",
    re.S,
)


@dataclass(frozen=True, slots=True)
class AudioLevels:
    """The measured levels; None where the server could not measure (see the module's doc)."""

    peak_dbfs: float | None
    loudness_lufs: float | None
    true_peak_dbtp: float | None
    silence_share: float | None
    waveform: bytes | None
    # Whether ffmpeg measured it (loudness included); False leaves the resource to be measured
    # again once ffmpeg is found.
    complete: bool

    @classmethod
    def unmeasured(cls) -> AudioLevels:
        return cls(None, None, None, None, None, complete=False)


def _db(value: str) -> float | None:
    # ffmpeg prints -inf for digital silence; stored as NULL-free numbers, it is the floor below.
    number = float(value)
    return None if math.isnan(number) else max(number, FLOOR_DB)


# What -inf (digital silence) is stored as: far below anything audible, and still a number that
# every database and JSON encoder accepts.
FLOOR_DB = -200.0


def _pcm16(frames: bytes) -> array[int]:
    samples = array("h")
    samples.frombytes(frames[: len(frames) - len(frames) % 2])
    if sys.byteorder == "big":
        samples.byteswap()
    return samples


def _peak(samples: array[int], start: int, stop: int) -> int:
    part = samples[start:stop]
    return max(max(part), -min(part)) if part else 0


def window_peaks(samples: array[int], rate: int, channels: int = 1) -> list[int]:
    """The peak of each SILENCE_WINDOW_SECONDS window (of interleaved ``channels``); the last
    window may be partial."""
    step = max(1, round(rate * SILENCE_WINDOW_SECONDS)) * channels
    return [_peak(samples, start, start + step) for start in range(0, len(samples), step)]


def silence_share(samples: array[int], rate: int, channels: int = 1) -> float:
    """The fraction of SILENCE_WINDOW_SECONDS windows (interleaved ``channels``) peaking below
    SILENCE_PEAK_DBFS; a last partial window counts by its length."""
    return _silence_share(window_peaks(samples, rate, channels), len(samples), rate, channels)


def _silence_share(peaks: list[int], total: int, rate: int, channels: int) -> float:
    if not total:
        return 1.0
    step = max(1, round(rate * SILENCE_WINDOW_SECONDS)) * channels
    silent = sum(min(step, total - i * step) for i, peak in enumerate(peaks) if peak < _SILENT_BELOW)
    return silent / total


def waveform(samples: array[int], buckets: int = WAVEFORM_BUCKETS) -> bytes:
    """``buckets`` peak levels over the samples, each 0-255 on a linear scale of full scale."""
    return _levels(
        [
            _peak(samples, i * len(samples) // buckets, (i + 1) * len(samples) // buckets)
            for i in range(buckets)
        ]
    )


def _waveform_of_windows(peaks: list[int], buckets: int = WAVEFORM_BUCKETS) -> bytes:
    n = len(peaks)
    return _levels([max(peaks[i * n // buckets : (i + 1) * n // buckets], default=0) for i in range(buckets)])


def _levels(peaks: list[int]) -> bytes:
    return bytes(min(255, round(peak * 255 / (_FULL_SCALE - 1))) for peak in peaks)


def _shape(samples: array[int], rate: int, channels: int) -> tuple[float, bytes]:
    """Silence share and waveform, reading every sample once: the waveform of a file long enough
    is made of its silence windows' peaks (a bucket spans several windows)."""
    peaks = window_peaks(samples, rate, channels)
    share = round(_silence_share(peaks, len(samples), rate, channels), 4)
    if len(peaks) >= 4 * WAVEFORM_BUCKETS:
        return share, _waveform_of_windows(peaks)
    return share, waveform(samples)


def _pure_python(data: bytes, info: AudioInfo) -> AudioLevels:
    if info.codec != "pcm_s16le":
        return AudioLevels.unmeasured()
    try:
        with wave.open(io.BytesIO(data)) as reader:
            frames = reader.readframes(reader.getnframes())
    except (wave.Error, EOFError, ValueError):
        return AudioLevels.unmeasured()
    samples = _pcm16(frames)
    if not samples:
        return AudioLevels.unmeasured()
    peak = _peak(samples, 0, len(samples))
    share, shape = _shape(samples, info.sample_rate, info.channels)
    return AudioLevels(
        peak_dbfs=FLOOR_DB if peak == 0 else round(20 * math.log10(peak / _FULL_SCALE), 2),
        loudness_lufs=None,
        true_peak_dbtp=None,
        silence_share=share,
        waveform=shape,
        complete=False,
    )


def levels_graph(info: AudioInfo, source: str = "[0:a:0]") -> str:
    """The filter graph measuring levels of ``source``: its outputs are ``[e]`` (ebur128, to a
    null output, its summary on stderr at the info level) and ``[w]`` (the 8 kHz copy, s16le)."""
    peaks = "sample+true" if info.duration_seconds <= TRUE_PEAK_MAX_SECONDS else "sample"
    return (
        f"{source}asplit=2[a][b];[a]ebur128=peak={peaks}:framelog=verbose[e];"
        f"[b]aresample={_ANALYSIS_RATE},aformat=sample_fmts=s16[w]"
    )


def measure_levels(data: bytes, info: AudioInfo) -> AudioLevels:
    """The levels of audio that ``analyze_audio`` accepted (``info`` is its answer).

    Never raises: what cannot be measured is None, and ``complete`` says whether ffmpeg did it.
    """
    result = run_ffmpeg(
        [
            "-f",
            info.format,
            "-i",
            "pipe:0",
            # ebur128 writes its summary at the info level (run_ffmpeg asks for errors only).
            "-loglevel",
            "info",
            "-nostats",
            "-filter_complex",
            levels_graph(info),
            "-map",
            "[e]",
            "-f",
            "null",
            "-",
            "-map",
            "[w]",
            "-f",
            "s16le",
            "pipe:1",
        ],
        data,
        LEVELS_TIMEOUT_SECONDS,
    )
    if result is None:
        if ffmpeg_path() is not None:
            return levels_after_failed_run(data, info)
        return _pure_python(data, info)
    return levels_from_ffmpeg(data, info, result.returncode, result.stderr, result.stdout)


def levels_after_failed_run(data: bytes, info: AudioInfo) -> AudioLevels:
    """The levels when ffmpeg is there but timed out or could not start: what Python can read,
    marked complete (trying again would do the same)."""
    return _finished(_pure_python(data, info))


def levels_from_ffmpeg(data: bytes, info: AudioInfo, returncode: int, stderr: str, pcm: bytes) -> AudioLevels:
    """The levels from a run of levels_graph: its exit status, stderr and the ``[w]`` samples."""
    # ffmpeg may configure the filter graph more than once and each ebur128 instance prints a
    # summary when it closes: the one that saw the audio closes last.
    summaries = list(_SUMMARY.finditer(stderr))
    summary = summaries[-1] if summaries else None
    samples = _pcm16(pcm)
    if returncode != 0 or summary is None or not samples:
        log.warning(
            "no levels measured for %s audio (sha256 %s): ffmpeg exited %d: %s",
            info.format,
            info.sha256,
            returncode,
            stderr[-500:],
        )
        # ffmpeg had its chance; what Python can read is all there will be.
        return _finished(_pure_python(data, info))
    share, shape = _shape(samples, _ANALYSIS_RATE, max(1, info.channels))
    # EBU R128 integrates 400 ms blocks; for a shorter clip ebur128 prints its -70 LUFS floor,
    # which is no measurement (a loud beep would read as too quiet).
    measurable = info.duration_seconds >= LOUDNESS_BLOCK_SECONDS
    return AudioLevels(
        peak_dbfs=_db(summary["sp"]),
        loudness_lufs=_db(summary["i"]) if measurable else None,
        true_peak_dbtp=None if summary["tp"] is None else _db(summary["tp"]),
        silence_share=share,
        waveform=shape,
        complete=True,
    )


def _finished(levels: AudioLevels) -> AudioLevels:
    return AudioLevels(
        levels.peak_dbfs,
        levels.loudness_lufs,
        levels.true_peak_dbtp,
        levels.silence_share,
        levels.waveform,
        complete=True,
    )
