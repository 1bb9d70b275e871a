"""prepare_audio: what a commit needs from its audio, from one ffmpeg run.

Its answers must be those of analyze_audio, make_telephony_rendition and measure_levels run one
after the other (the separate runs are the reference), it must refuse what analyze_audio refuses,
and an accepted file must cost one ffmpeg process, counted by a wrapper that ffmpeg is run through.
"""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.audio_factory import make_mp3, make_silence, make_wav, require_ffmpeg
from tests.test_audio import BAD_FILES, ENV
from vmsres.server.audio import analyze_audio, make_telephony_rendition, measure_levels, prepare_audio

GOOD_FILES: dict[str, Callable[[], bytes]] = {
    "mono MP3, 25 s": lambda: make_mp3(25.0, bitrate="32k"),
    "stereo MP3 at 48 kHz, noise": lambda: make_mp3(3.0, sample_rate=48000, channels=2, signal="noise"),
    "MP3 shorter than a loudness block": lambda: make_mp3(0.3, sample_rate=22050),
    "MP3 past the true-peak limit": lambda: make_mp3(125.0, sample_rate=8000, bitrate="8k"),
    "16-bit WAV, three channels": lambda: make_wav(2.0, 32000, 3),
    "mu-law WAV": lambda: make_wav(1.5, 8000, codec="pcm_mulaw"),
    "digital silence": lambda: make_silence(2.0),
}


@pytest.fixture
def ffmpeg_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """Run ffmpeg through a wrapper that leaves a line per process; returns the counter."""
    real = require_ffmpeg()
    log = tmp_path / "runs.log"
    wrapper = tmp_path / "ffmpeg-counted"
    wrapper.write_text(f'#!/bin/sh\necho run >> "{log}"\nexec "{real}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv(ENV, str(wrapper))

    def count() -> int:
        runs = len(log.read_text().splitlines()) if log.exists() else 0
        log.unlink(missing_ok=True)
        return runs

    return count


@pytest.mark.parametrize("name", list(GOOD_FILES))
def test_one_run_gives_what_the_separate_runs_give(name: str, ffmpeg_runs: Callable[[], int]) -> None:
    data = GOOD_FILES[name]()
    info = analyze_audio(data)
    rendition = make_telephony_rendition(data, info)
    levels = measure_levels(data, info)
    assert ffmpeg_runs() == (3 if info.format == "mp3" else 2)

    prepared = prepare_audio(data)

    assert ffmpeg_runs() == 1
    assert prepared.info == info
    assert rendition is not None and prepared.rendition == rendition
    assert levels.complete and prepared.levels == levels
    assert not prepared.rendition_pending


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_refuses_what_analysis_refuses(name: str, ffmpeg_runs: Callable[[], int]) -> None:
    # ffmpeg_runs: through the counting wrapper, so ffmpeg is there (the decode check runs).
    make, error = BAD_FILES[name]
    data = make()
    with pytest.raises(error) as expected:
        analyze_audio(data)
    with pytest.raises(error) as caught:
        prepare_audio(data)
    assert type(caught.value) is error
    assert caught.value.message == expected.value.message


def test_without_ffmpeg_the_rendition_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "")
    data = make_wav(1.0, 16000)
    prepared = prepare_audio(data)
    assert prepared.info == analyze_audio(data)
    assert prepared.rendition is None and prepared.rendition_pending
    assert prepared.levels == measure_levels(data, prepared.info)
    assert not prepared.levels.complete
