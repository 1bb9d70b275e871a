"""Silence measurement, on real audio made on the fly."""

from __future__ import annotations

import math

import pytest

from tests.audio_factory import make_mp3, make_silence, make_wav, require_ffmpeg
from vmsres.server.audio import analyze_audio, is_silent, make_telephony_rendition, peak_dbfs


def test_peak_of_a_tone_and_of_digital_silence() -> None:
    level = peak_dbfs(make_wav(1.0, amplitude=0.5))
    assert level is not None and -7.0 < level < -5.0  # half scale is -6 dBFS
    assert peak_dbfs(make_silence(1.0)) == -math.inf


def test_quiet_but_audible_is_not_silent() -> None:
    quiet = make_wav(1.0, amplitude=0.01)  # -40 dBFS
    assert not is_silent(quiet, analyze_audio(quiet))


@pytest.mark.parametrize("amplitude", [0.0, 0.001])  # -inf and -60 dBFS
def test_near_silence_is_silent(amplitude: float) -> None:
    data = make_wav(1.0, amplitude=amplitude) if amplitude else make_silence(1.0)
    assert is_silent(data, analyze_audio(data))


def test_mp3_is_measured_through_its_rendition() -> None:
    require_ffmpeg()
    loud, hushed = make_mp3(2.0), make_mp3(2.0, signal="silence")
    for data, expected in ((loud, False), (hushed, True)):
        info = analyze_audio(data)
        assert is_silent(data, info, make_telephony_rendition(data, info)) is expected
    # Without a rendition an MP3 cannot be measured, and unknown never counts as silent.
    assert not is_silent(hushed, analyze_audio(hushed))
