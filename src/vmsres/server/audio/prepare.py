"""Everything a commit needs from uploaded audio, with (at most) one ffmpeg run.

A commit used to start ffmpeg three times on the same bytes: the decode check, the telephony
rendition and the level measurements. Starting ffmpeg costs more CPU than decoding a prompt, so
``prepare_audio`` decodes once: one filter graph feeds the rendition (standard output), the
levels' 8 kHz copy (a second pipe) and ebur128 (stderr), and for MP3 ``-xerror`` makes that same
run the decode check. The answers are those of analyze_audio, make_telephony_rendition and
measure_levels run one after the other: when the single run fails for any reason other than a
timeout, they are run one after the other to find out what failed and say so as they would.
"""

from __future__ import annotations

from dataclasses import dataclass

from vmsres.server.audio._common import log
from vmsres.server.audio._ffmpeg import SIDE_PIPE, ffmpeg_path, run_ffmpeg
from vmsres.server.audio.analysis import AudioInfo, analyze_audio, analyze_undecoded, decode_check_needed
from vmsres.server.audio.levels import (
    AudioLevels,
    levels_after_failed_run,
    levels_from_ffmpeg,
    levels_graph,
    measure_levels,
)
from vmsres.server.audio.rendition import (
    RENDITION_OUTPUT,
    RENDITION_TIMEOUT_SECONDS,
    frame_telephony,
    make_telephony_rendition,
)


@dataclass(frozen=True, slots=True)
class PreparedAudio:
    info: AudioInfo
    rendition: bytes | None  # the telephony rendition's WAV bytes; None when there is none
    levels: AudioLevels
    # No ffmpeg: the rendition is made later, when there is one.
    rendition_pending: bool


def prepare_audio(data: bytes, max_seconds: float | None = None) -> PreparedAudio:
    """analyze_audio, then make_telephony_rendition and measure_levels of what it accepted.

    Raises what analyze_audio raises, for the same inputs.
    """
    if ffmpeg_path() is None:
        info = analyze_audio(data, max_seconds)
        return PreparedAudio(info, None, measure_levels(data, info), rendition_pending=True)
    info = analyze_undecoded(data, max_seconds)
    result = run_ffmpeg(
        [
            # Stop at the first frame that does not decode: the decode check of analyze_audio.
            # Not for WAV, which has no such check (analysis.py says why).
            *(["-xerror"] if decode_check_needed(info) else []),
            "-f",
            info.format,
            "-i",
            "pipe:0",
            # ebur128 writes its summary at the info level (run_ffmpeg asks for errors only).
            "-loglevel",
            "info",
            "-nostats",
            "-filter_complex",
            "[0:a:0]asplit=2[r][l];" + levels_graph(info, "[l]"),
            "-map",
            "[e]",
            "-f",
            "null",
            "-",
            "-map",
            "[w]",
            "-f",
            "s16le",
            SIDE_PIPE,
            "-map",
            "[r]",
            *RENDITION_OUTPUT,
            "pipe:1",
        ],
        data,
        RENDITION_TIMEOUT_SECONDS,
        side_output=True,
    )
    if result is None:
        # Timed out (or could not start): as when each separate run times out, the decode check
        # is not done (the parse's verdict stands), and there is no rendition.
        log.warning("no rendition or levels for %s audio (sha256 %s)", info.format, info.sha256)
        return PreparedAudio(info, None, levels_after_failed_run(data, info), rendition_pending=False)
    if result.returncode != 0 or not result.stdout:
        # Undecodable audio, or a failure of one of the outputs: the separate runs tell which.
        info = analyze_audio(data, max_seconds)
        rendition = make_telephony_rendition(data, info)
        return PreparedAudio(info, rendition, measure_levels(data, info), rendition_pending=False)
    levels = levels_from_ffmpeg(data, info, result.returncode, result.stderr, result.side)
    return PreparedAudio(info, frame_telephony(result.stdout, info), levels, rendition_pending=False)
