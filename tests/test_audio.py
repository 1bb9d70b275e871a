"""The audio layer against real files made on the fly (see audio_factory.py).

Most tests run twice, through the ``decoder`` fixture: once with ffmpeg (the full decode check)
and once with it turned off by VMSRES_FFMPEG="" (the pure-Python check), since a deployment may
have either and must give the same answers for these files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import random
import struct
import time
from collections.abc import Callable, Iterator
from io import BytesIO

import mutagen.mp3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.audio_factory import (
    WAV_CODECS,
    frame_count,
    make_mp3,
    make_ogg,
    make_silence,
    make_wav,
    make_wav_ffmpeg,
    read_pcm16_wav,
    require_ffmpeg,
    riff_wav,
    run_ffmpeg,
)
from vmsres.protocol.errors import EmptyResourceBody, FileAnalyseError, ResourceSizeOverLimit
from vmsres.server.audio import (
    MAX_AUDIO_BYTES,
    AudioInfo,
    analyze_audio,
    ffmpeg_available,
    make_telephony_rendition,
    whole_seconds,
)

ENV = "VMSRES_FFMPEG"
ALLOWED_ERRORS = (EmptyResourceBody, ResourceSizeOverLimit, FileAnalyseError)


@pytest.fixture(params=["ffmpeg", "pure-python"])
def decoder(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if request.param == "ffmpeg":
        require_ffmpeg()
        monkeypatch.delenv(ENV, raising=False)
        assert ffmpeg_available()
    else:
        monkeypatch.setenv(ENV, "")
        assert not ffmpeg_available()
    yield request.param


def mpeg1_frame_offsets(mp3: bytes) -> list[int]:
    """Frame offsets of an MPEG-1 Layer III file, by a parser independent of the one under test."""
    kbps = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
    rates = (44100, 48000, 32000)
    pos = 0
    if mp3[:3] == b"ID3":
        size = mp3[6] << 21 | mp3[7] << 14 | mp3[8] << 7 | mp3[9]
        pos = 10 + size
    offsets = []
    while pos + 4 <= len(mp3) and mp3[pos] == 0xFF and mp3[pos + 1] & 0xFE == 0xFA:
        offsets.append(pos)
        pos += 144000 * kbps[mp3[pos + 2] >> 4] // rates[(mp3[pos + 2] >> 2) & 3] + ((mp3[pos + 2] >> 1) & 1)
    return offsets


def ape_tag(items: dict[str, str]) -> bytes:
    """An APEv2 tag with header and footer, as taggers append it after the audio."""
    body = b"".join(
        struct.pack("<II", len(v.encode()), 0) + k.encode() + b"\x00" + v.encode() for k, v in items.items()
    )
    size = len(body) + 32

    def frame(flags: int) -> bytes:
        return b"APETAGEX" + struct.pack("<IIII", 2000, size, len(items), flags) + bytes(8)

    return frame(0xA0000000) + body + frame(0x80000000)


# --- Bad files -----------------------------------------------------------------------------


def _truncated_mp3_mid_frame() -> bytes:
    mp3 = make_mp3(3.0)
    return mp3[: len(mp3) * 6 // 10 + 7]


def _truncated_mp3_at_frame_boundary() -> bytes:
    # Cut exactly between two frames: every frame left is whole, only the Info header's frame
    # count tells that the file is short.
    mp3 = make_mp3(3.0)
    offsets = mpeg1_frame_offsets(mp3)
    assert len(offsets) > 100, "the oracle parser should see the whole file"
    return mp3[: offsets[len(offsets) // 2]]


def _mp3_with_garbage_inside() -> bytes:
    mp3 = make_mp3(2.0, xing=False)
    middle = len(mp3) // 2
    return mp3[:middle] + random.Random(5).randbytes(3000) + mp3[middle:]


def _wav_with_codec_tag(tag: int) -> bytes:
    wav = bytearray(make_wav(0.5, 8000))
    struct.pack_into("<H", wav, 20, tag)
    return bytes(wav)


def _wav_data_before_fmt() -> bytes:
    good = make_wav(0.2, 8000)
    fmt = good[12:36]
    data = good[36:]
    body = b"WAVE" + data + fmt
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _mp2() -> bytes:
    wav = make_wav(1.0, 44100)
    return run_ffmpeg(["-f", "wav", "-i", "pipe:0", "-c:a", "mp2", "-f", "mp2", "{out}"], wav, ".mp2")


def _flac() -> bytes:
    wav = make_wav(1.0, 16000)
    return run_ffmpeg(["-f", "wav", "-i", "pipe:0", "-c:a", "flac", "-f", "flac", "{out}"], wav, ".flac")


def _over_limit_wav() -> bytes:
    # A well-formed WAV one byte over the limit: the size alone must reject it.
    wav = riff_wav(bytes(MAX_AUDIO_BYTES + 1 - 44), sample_rate=8000)
    assert len(wav) == MAX_AUDIO_BYTES + 1
    return wav


BAD_FILES: dict[str, tuple[Callable[[], bytes], type[Exception]]] = {
    "zero bytes": (lambda: b"", EmptyResourceBody),
    "5 MB plus one byte": (_over_limit_wav, ResourceSizeOverLimit),
    "5 MB plus one byte of junk": (lambda: bytes(MAX_AUDIO_BYTES + 1), ResourceSizeOverLimit),
    "text named .mp3": (lambda: b"This is a voice prompt, honest.\n" * 200, FileAnalyseError),
    "random bytes": (lambda: random.Random(0).randbytes(60000), FileAnalyseError),
    "a single NUL byte": (lambda: b"\x00", FileAnalyseError),
    "truncated MP3 (mid-frame)": (_truncated_mp3_mid_frame, FileAnalyseError),
    "truncated MP3 (at a frame boundary, Info header)": (_truncated_mp3_at_frame_boundary, FileAnalyseError),
    "MP3 with garbage in the middle": (_mp3_with_garbage_inside, FileAnalyseError),
    "ID3 tag and no frames": (lambda: make_mp3(1.0)[:45] + b"no audio here" * 50, FileAnalyseError),
    "ID3 tag alone": (lambda: b"ID3\x04\x00\x00\x00\x00\x00\x0a" + bytes(10), FileAnalyseError),
    "MPEG Layer II": (_mp2, FileAnalyseError),
    "OGG Vorbis": (lambda: make_ogg(1.0), FileAnalyseError),
    "OGG Opus": (lambda: make_ogg(1.0, 48000, codec="libopus"), FileAnalyseError),
    "FLAC": (_flac, FileAnalyseError),
    "truncated WAV": (lambda: make_wav(1.0, 16000)[:-1000], FileAnalyseError),
    "WAV whose header lies about its data length": (
        lambda: riff_wav(bytes(16000), data_size=160000),
        FileAnalyseError,
    ),
    "WAV header and no samples": (lambda: riff_wav(b""), FileAnalyseError),
    "WAV with ADPCM": (lambda: _wav_with_codec_tag(0x0002), FileAnalyseError),
    "WAV holding MP3": (lambda: _wav_with_codec_tag(0x0055), FileAnalyseError),
    "WAV with the data chunk before fmt": (_wav_data_before_fmt, FileAnalyseError),
    "WAV without fmt chunk": (lambda: b"RIFF\x0c\x00\x00\x00WAVEdata\x00\x00\x00\x00", FileAnalyseError),
    "RIFF that is AVI": (lambda: b"RIFF\x10\x00\x00\x00AVI LIST\x04\x00\x00\x00hdrl", FileAnalyseError),
    "RIFF header only": (lambda: b"RIFF\x04\x00\x00\x00WAVE", FileAnalyseError),
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_bad_files_are_refused(name: str, decoder: str) -> None:
    make, error = BAD_FILES[name]
    data = make()
    with pytest.raises(error) as caught:
        analyze_audio(data)
    assert type(caught.value) is error
    if isinstance(caught.value, FileAnalyseError):
        assert caught.value.code == "FILE_ANALYSE_ERROR"
        assert caught.value.message.startswith(FileAnalyseError.default_message)


def test_size_limit_is_inclusive(decoder: str) -> None:
    wav = riff_wav(bytes(MAX_AUDIO_BYTES - 44), sample_rate=8000)
    assert len(wav) == MAX_AUDIO_BYTES == 5_242_880
    info = analyze_audio(wav)
    assert info.size == MAX_AUDIO_BYTES
    assert info.duration_seconds == pytest.approx((MAX_AUDIO_BYTES - 44) / 2 / 8000)


# --- Good WAV files ------------------------------------------------------------------------


@pytest.mark.parametrize("sample_rate", [8000, 16000, 44100])
@pytest.mark.parametrize("channels", [1, 2])
def test_wav(sample_rate: int, channels: int, decoder: str) -> None:
    wav = make_wav(1.7, sample_rate, channels)
    info = analyze_audio(wav)
    assert (info.format, info.suffix, info.codec) == ("wav", ".wav", "pcm_s16le")
    assert (info.sample_rate, info.channels) == (sample_rate, channels)
    assert info.duration_seconds == frame_count(1.7, sample_rate) / sample_rate
    assert info.duration == 2
    assert info.size == len(wav)


@pytest.mark.parametrize("codec", list(WAV_CODECS))
@pytest.mark.parametrize("extensible", [False, True], ids=["plain", "extensible"])
def test_wav_codecs(codec: str, extensible: bool, decoder: str) -> None:
    wav = make_wav(0.75, 8000, 1, codec=codec, extensible=extensible)
    info = analyze_audio(wav)
    assert (info.format, info.codec, info.sample_rate, info.channels) == ("wav", codec, 8000, 1)
    assert info.duration_seconds == 0.75


def test_wav_written_by_ffmpeg_with_list_chunk(decoder: str) -> None:
    wav = make_wav_ffmpeg(2.0, 22050, 2, codec="pcm_mulaw")
    assert b"LIST" in wav[:200]
    info = analyze_audio(wav)
    assert (info.codec, info.sample_rate, info.channels, info.duration_seconds) == (
        "pcm_mulaw",
        22050,
        2,
        2.0,
    )


def test_streamed_wav_with_unknown_sizes(decoder: str) -> None:
    # What ffmpeg or sox write to a pipe: both sizes 0xFFFFFFFF, the data running to the end.
    wav = bytearray(make_wav(1.0, 8000))
    struct.pack_into("<I", wav, 4, 0xFFFFFFFF)
    struct.pack_into("<I", wav, 40, 0xFFFFFFFF)
    info = analyze_audio(bytes(wav))
    assert info.duration_seconds == 1.0


def test_wav_odd_chunk_padding_and_partial_frame(decoder: str) -> None:
    payload = bytes(8000 * 2 * 2) + b"\x01"  # a stray byte: half a sample frame
    wav = riff_wav(payload, sample_rate=8000, channels=2, extra_chunks=[(b"junk", b"odd")])
    info = analyze_audio(wav)
    assert info.duration_seconds == 1.0


# --- Good MP3 files ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sample_rate", "channels", "bitrate"),
    [(44100, 1, "128k"), (44100, 2, "192k"), (48000, 2, "320k"), (16000, 1, "32k"), (8000, 1, "16k")],
    ids=["mpeg1-mono", "mpeg1-stereo", "mpeg1-48k", "mpeg2-16k", "mpeg2.5-8k"],
)
def test_cbr_mp3(sample_rate: int, channels: int, bitrate: str, decoder: str) -> None:
    mp3 = make_mp3(2.5, sample_rate=sample_rate, channels=channels, bitrate=bitrate)
    info = analyze_audio(mp3)
    assert (info.format, info.suffix, info.codec) == ("mp3", ".mp3", "mp3")
    assert (info.sample_rate, info.channels) == (sample_rate, channels)
    # The LAME tag's encoder delay and padding are taken off, so this is the source's length.
    assert info.duration_seconds == pytest.approx(2.5, abs=1e-6)
    assert info.duration == 3


def test_vbr_mp3_with_xing(decoder: str) -> None:
    info = analyze_audio(make_mp3(4.0, vbr=True, signal="noise"))
    assert info.duration_seconds == pytest.approx(4.0, abs=1e-6)


def test_vbr_mp3_without_xing_is_measured_not_estimated(decoder: str) -> None:
    seconds = 12.0
    mp3 = make_mp3(seconds, vbr=True, xing=False, quality=0, signal="silence_then_noise", silence_seconds=2.0)
    assert b"Xing" not in mp3 and b"Info" not in mp3
    # The trap: the first frame is silence at the lowest bitrate, so size/bitrate is far off.
    estimate = mutagen.mp3.MPEGInfo(BytesIO(mp3)).length
    assert abs(estimate - seconds) > 5.0, f"the file no longer sets the trap (estimate {estimate})"
    info = analyze_audio(mp3)
    # Without a LAME tag the encoder delay and padding stay in: under two frames at 44.1 kHz.
    assert seconds <= info.duration_seconds < seconds + 0.1
    assert info.duration == 12


def test_mp3_with_big_id3v2_tag_and_trailing_tags(decoder: str) -> None:
    mp3 = make_mp3(2.0, title="a long title " * 800, id3v1=True)
    assert mp3[:3] == b"ID3" and mp3[-128:-125] == b"TAG"
    assert (mp3[6] << 21 | mp3[7] << 14 | mp3[8] << 7 | mp3[9]) > 10000
    info = analyze_audio(mp3)
    assert info.format == "mp3"
    assert info.duration_seconds == pytest.approx(2.0, abs=1e-6)
    with_ape = mp3[:-128] + ape_tag({"Title": "prompt", "Artist": "vmsres"}) + mp3[-128:]
    assert analyze_audio(with_ape).duration_seconds == info.duration_seconds


def test_mp3_with_cover_art(decoder: str) -> None:
    mp3 = make_mp3(2.0, cover_art=True)
    assert b"APIC" in mp3[:100] and b"\x89PNG" in mp3[:2000]
    info = analyze_audio(mp3)
    assert info.format == "mp3"
    assert info.duration_seconds == pytest.approx(2.0, abs=1e-6)


def test_mp3_without_any_tag(decoder: str) -> None:
    mp3 = make_mp3(1.0, id3v2=False, xing=False)
    assert mp3[0] == 0xFF
    info = analyze_audio(mp3)
    assert info.format == "mp3"
    # Whole frames of 1152 samples, delay and padding included.
    assert round(info.duration_seconds * 44100) % 1152 == 0
    assert 1.0 <= info.duration_seconds < 1.1


def test_mp3_from_another_encoder(decoder: str) -> None:
    info = analyze_audio(make_mp3(2.0, sample_rate=48000, channels=2, encoder="libshine"))
    assert (info.format, info.sample_rate, info.channels) == ("mp3", 48000, 2)
    assert 2.0 <= info.duration_seconds < 2.1


def test_mp3_cut_at_a_frame_boundary_without_header_is_accepted(decoder: str) -> None:
    # A stream cut where a frame starts is still playable (decoders skip the first frame's
    # missing bit reservoir), and without an Info header nothing says it was longer.
    mp3 = make_mp3(3.0, id3v2=False, xing=False)
    offsets = mpeg1_frame_offsets(mp3)
    cut = mp3[offsets[20] :]
    info = analyze_audio(cut)
    assert info.duration_seconds == pytest.approx((len(offsets) - 20) * 1152 / 44100)


def test_format_comes_from_content_not_name(decoder: str) -> None:
    # Callers pass bytes only; an MP3 "named .wav" and a WAV "named .mp3" are what they are.
    assert analyze_audio(make_mp3(1.0)).suffix == ".mp3"
    assert analyze_audio(make_wav(1.0)).suffix == ".wav"


# --- Duration, size, digest ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("frames", "expected"),
    [(1, 1), (3999, 1), (4000, 1), (11999, 1), (12000, 2), (19999, 2), (20000, 3), (24000, 3), (27999, 3)],
)
def test_duration_rounds_half_up_with_a_minimum_of_one(frames: int, expected: int) -> None:
    info = analyze_audio(riff_wav(bytes(2 * frames), sample_rate=8000))
    assert info.duration_seconds == frames / 8000
    assert info.duration == expected
    assert whole_seconds(frames, 8000) == expected


def test_whole_seconds_is_exact_at_half() -> None:
    # n half-seconds at rates where float arithmetic could land either side of .5.
    for rate in (11025 * 2, 22050, 44100, 48000, 7998):
        for n in range(1, 40):
            assert whole_seconds(n * rate // 2, rate) == max(1, (n + 1) // 2), (rate, n)
            assert whole_seconds(n * rate // 2 - 1, rate) == max(1, n // 2), (rate, n)


def test_size_and_sha256(decoder: str) -> None:
    for data in (make_wav(1.0), make_mp3(1.0)):
        info = analyze_audio(data)
        assert info.size == len(data)
        assert info.sha256 == hashlib.sha256(data).hexdigest()
        assert len(info.sha256) == 64


def test_audio_info_is_frozen() -> None:
    info = analyze_audio(make_wav(1.0))
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.duration = 5  # type: ignore[misc]
    assert not hasattr(info, "__dict__")


def test_accepts_bytearray_and_memoryview() -> None:
    wav = make_wav(1.0)
    assert analyze_audio(bytearray(wav)) == analyze_audio(wav)  # type: ignore[arg-type]
    assert analyze_audio(memoryview(wav)) == analyze_audio(wav)  # type: ignore[arg-type]


# --- Telephony rendition -------------------------------------------------------------------


def _dominant_frequency(samples: list[int], rate: int) -> float:
    crossings = sum(1 for a, b in itertools.pairwise(samples) if (a < 0) != (b < 0))
    return crossings / 2 / (len(samples) / rate)


RENDITION_INPUTS: dict[str, Callable[[], bytes]] = {
    "wav 44.1k stereo": lambda: make_wav(3.0, 44100, 2),
    "wav 16k mono": lambda: make_wav(2.0, 16000, 1),
    "wav 8k mu-law": lambda: make_wav(2.0, 8000, 1, codec="pcm_mulaw"),
    "wav float extensible": lambda: make_wav(2.0, 48000, 2, codec="pcm_f32le", extensible=True),
    "mp3 cbr": lambda: make_mp3(3.0),
    "mp3 vbr without xing": lambda: make_mp3(3.0, vbr=True, xing=False),
    "mp3 8k": lambda: make_mp3(2.0, sample_rate=8000, bitrate="16k"),
    "mp3 with cover art": lambda: make_mp3(2.0, cover_art=True),
}


@pytest.mark.parametrize("name", list(RENDITION_INPUTS))
def test_telephony_rendition(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    require_ffmpeg()
    monkeypatch.delenv(ENV, raising=False)
    data = RENDITION_INPUTS[name]()
    info = analyze_audio(data)
    out = make_telephony_rendition(data, info)
    assert out is not None
    rate, channels, width, samples = read_pcm16_wav(out)
    assert (rate, channels, width) == (8000, 1, 2)  # 8 kHz mono 16-bit linear PCM
    assert abs(len(samples) / 8000 - info.duration_seconds) < 0.1
    # The sound survived: loud enough and still a 440 Hz tone.
    rms = (sum(s * s for s in samples) / len(samples)) ** 0.5
    assert rms > 3000
    assert _dominant_frequency(samples, 8000) == pytest.approx(440, rel=0.05)
    again = analyze_audio(out)
    assert (again.format, again.codec, again.sample_rate, again.channels) == ("wav", "pcm_s16le", 8000, 1)


def test_no_rendition_without_ffmpeg(monkeypatch: pytest.MonkeyPatch) -> None:
    data = make_wav(1.0)
    info = analyze_audio(data)
    monkeypatch.setenv(ENV, "")
    assert not ffmpeg_available()
    assert make_telephony_rendition(data, info) is None
    monkeypatch.setenv(ENV, "/nonexistent/bin/ffmpeg")
    assert not ffmpeg_available()
    assert make_telephony_rendition(data, info) is None


def test_ffmpeg_can_be_named_by_path(monkeypatch: pytest.MonkeyPatch) -> None:
    exe = require_ffmpeg()
    monkeypatch.setenv(ENV, exe)
    assert ffmpeg_available()
    data = make_wav(1.0)
    assert make_telephony_rendition(data, analyze_audio(data)) is not None


def test_rendition_of_bytes_ffmpeg_refuses_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    # The contract is to be handed what analyze_audio accepted; a lying AudioInfo must still end
    # in None rather than an exception or a hang.
    require_ffmpeg()
    monkeypatch.delenv(ENV, raising=False)
    info = analyze_audio(make_wav(1.0))
    assert make_telephony_rendition(b"not audio at all" * 100, info) is None


# --- Speed ---------------------------------------------------------------------------------


def _best_of(runs: int, data: bytes) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        analyze_audio(data)
        best = min(best, time.perf_counter() - start)
    return best


def _five_megabytes_of(mp3: bytes) -> bytes:
    return mp3 * (MAX_AUDIO_BYTES // len(mp3))


@pytest.mark.parametrize(
    "make",
    [
        lambda: make_silence(MAX_AUDIO_BYTES // 2 // 16000 - 1, 16000),
        lambda: _five_megabytes_of(make_mp3(10.0, id3v2=False, xing=False)),
        # The most frames per megabyte: MPEG-2.5 at 8 kbit/s, 72-byte frames.
        lambda: _five_megabytes_of(make_mp3(10.0, sample_rate=8000, bitrate="8k", id3v2=False, xing=False)),
    ],
    ids=["wav", "mp3-128k", "mp3-8k"],
)
def test_five_megabytes_analyse_quickly(make: Callable[[], bytes], decoder: str) -> None:
    data = make()
    assert len(data) > 4_900_000
    analyze_audio(data)
    elapsed = _best_of(2, data)
    # The pure-Python walk takes tens of milliseconds; ffmpeg's decode of ~90 minutes of 8 kbit/s
    # MP3 a few hundred. The bound leaves room for a busy machine.
    assert elapsed < (1.0 if decoder == "pure-python" else 3.0), f"{elapsed:.3f} s"


# --- Fuzzing -------------------------------------------------------------------------------


def _check_contract(data: bytes) -> None:
    try:
        info = analyze_audio(data)
    except ALLOWED_ERRORS as exc:
        # A chained cause means an internal error was converted by the last-resort handler: the
        # contract held, but a parser has a bug.
        assert exc.__cause__ is None, f"internal error on these bytes: {exc.__cause__!r}"
        return
    assert isinstance(info, AudioInfo)
    assert info.format in ("mp3", "wav") and info.suffix == f".{info.format}"
    assert info.sample_rate > 0 and info.channels >= 1
    assert info.duration >= 1 and info.duration_seconds > 0
    assert info.size == len(data)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_fuzz_arbitrary_bytes(data: bytes) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(ENV, "")
        _check_contract(data)


_PREFIXES = [
    b"RIFF",
    b"RIFF\xff\xff\xff\xffWAVE",
    b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00",
    b"RIFF\x24\x00\x00\x00WAVEfmt \x28\x00\x00\x00\xfe\xff",
    b"ID3\x04\x00\x00\x00\x00\x00\x00",
    b"ID3\x03\x00\x10\x00\x00\x00\x05",
    b"\xff\xfb\x90\x64",
    b"\xff\xf3\x28\xc4",
    b"\xff\xe3\x18\xc4",
    b"OggS",
]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_PREFIXES), st.binary(max_size=4096))
def test_fuzz_plausible_headers(prefix: bytes, rest: bytes) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(ENV, "")
        _check_contract(prefix + rest)


@st.composite
def _mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "set", "cut", "insert", "delete"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 64))]
    return bytes(data)


def test_fuzz_mutated_real_files(decoder: str) -> None:
    # Seeds are made first (ffmpeg is needed for the MP3s even in the pure-Python run).
    require_ffmpeg()
    seeds = [
        make_wav(0.3, 8000),
        make_wav(0.2, 44100, 2, codec="pcm_f32le", extensible=True),
        make_wav(0.3, 8000, codec="pcm_mulaw"),
        make_mp3(0.5),
        make_mp3(0.5, vbr=True, xing=False, id3v2=False),
        make_mp3(0.5, sample_rate=8000, bitrate="16k", id3v1=True),
    ]
    for seed in seeds:
        analyze_audio(seed)  # the seeds themselves are good

    @settings(
        max_examples=150,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(_mutated(seeds))
    def run(data: bytes) -> None:
        _check_contract(data)

    run()


# --- The factory's ffmpeg guard ------------------------------------------------------------


def test_require_ffmpeg_skips_locally_and_fails_in_ci(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no ffmpeg on PATH
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="ffmpeg is not installed"):
        require_ffmpeg()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is set, so ffmpeg tests may not be skipped"):
        require_ffmpeg()
