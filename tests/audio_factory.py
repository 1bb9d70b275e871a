"""Real audio made on the fly, for tests: WAV in pure Python, MP3 and Ogg through ffmpeg.

Import it from any test module (``from tests.audio_factory import make_wav, make_mp3``).
Everything returns the file's bytes. The makers are cached by argument, so asking twice for the
same file is free; bytes are immutable, so sharing them is safe.

Signals (``signal=``):
  "sine"               a sine wave at ``freq`` Hz, the default
  "silence"            digital silence
  "noise"              white noise from a fixed seed (so files are reproducible)
  "silence_then_noise" the first ``silence_seconds`` silent, the rest noise; a VBR encoder gives
                       the silent start its lowest bitrate, which is what makes a size/bitrate
                       duration estimate of a VBR file without Xing header badly wrong

Tests that need ffmpeg call ``require_ffmpeg()`` first (the makers that need it call it too): it
skips the test with a clear reason where ffmpeg is absent, but fails it when the CI environment
variable is set, since CI must run every test.
"""

from __future__ import annotations

import functools
import io
import math
import random
import shutil
import struct
import subprocess
import tempfile
import wave
from array import array
from pathlib import Path
from typing import Literal

from tests.servers import skip_unless_ci

Signal = Literal["sine", "silence", "noise", "silence_then_noise"]
WavCodec = Literal[
    "pcm_u8", "pcm_s16le", "pcm_s24le", "pcm_s32le", "pcm_f32le", "pcm_f64le", "pcm_alaw", "pcm_mulaw"
]

# (format tag, bits per sample) of each WAV codec, as a RIFF fmt chunk spells it.
WAV_CODECS: dict[str, tuple[int, int]] = {
    "pcm_u8": (1, 8),
    "pcm_s16le": (1, 16),
    "pcm_s24le": (1, 24),
    "pcm_s32le": (1, 32),
    "pcm_f32le": (3, 32),
    "pcm_f64le": (3, 64),
    "pcm_alaw": (6, 8),
    "pcm_mulaw": (7, 8),
}
_GUID_TAIL = bytes.fromhex("000000001000800000aa00389b71")
FFMPEG_TIMEOUT = 120


# --- ffmpeg --------------------------------------------------------------------------------


def ffmpeg_binary() -> str | None:
    """The ffmpeg the factory itself uses to make files.

    Deliberately not vmsres's own lookup: tests turn vmsres's ffmpeg off (VMSRES_FFMPEG="") to
    exercise its pure-Python paths and still need ffmpeg here to make their MP3s.
    """
    return shutil.which("ffmpeg")


def require_ffmpeg() -> str:
    """Return ffmpeg's path; skip the calling test without it, or fail it when CI is set."""
    exe = ffmpeg_binary()
    if exe is None:
        skip_unless_ci(
            "ffmpeg is not installed (run scripts/install-debian-deps.sh); this test needs it", "ffmpeg"
        )
        raise AssertionError("unreachable: skip_unless_ci skips or fails on a problem")
    return exe


def run_ffmpeg(args: list[str], stdin: bytes = b"", output_suffix: str = ".out") -> bytes:
    """Run ffmpeg with ``stdin`` as ``pipe:0`` and return what it wrote to its output file.

    The output goes to a real file rather than a pipe so that muxers can seek back and write
    correct headers (WAV chunk sizes, the Xing/LAME frame of an MP3). Put ``{out}`` in ``args``
    where the output path belongs.
    """
    exe = require_ffmpeg()
    with tempfile.TemporaryDirectory(prefix="vmsres-audio-") as tmp:
        out = Path(tmp) / f"out{output_suffix}"
        command = [exe, "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
        command += [str(out) if a == "{out}" else a for a in args]
        done = subprocess.run(command, input=stdin, capture_output=True, timeout=FFMPEG_TIMEOUT, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"ffmpeg failed ({done.returncode}): {done.stderr.decode(errors='replace')}")
        return out.read_bytes()


# --- PCM signals ---------------------------------------------------------------------------


def frame_count(seconds: float, sample_rate: int) -> int:
    """How many sample frames the makers produce for ``seconds``: rounded to the nearest."""
    return round(seconds * sample_rate)


def signal_samples(
    seconds: float,
    sample_rate: int = 16000,
    channels: int = 1,
    *,
    signal: Signal = "sine",
    freq: float = 440.0,
    amplitude: float = 0.5,
    silence_seconds: float = 1.0,
    seed: int = 1,
) -> list[float]:
    """Interleaved samples in [-1, 1] (every channel the same), ``frame_count`` frames long."""
    frames = frame_count(seconds, sample_rate)
    if signal == "silence":
        mono = [0.0] * frames
    elif signal == "sine":
        step = 2 * math.pi * freq / sample_rate
        mono = [amplitude * math.sin(step * i) for i in range(frames)]
    elif signal in ("noise", "silence_then_noise"):
        rng = random.Random(seed)
        quiet = frame_count(silence_seconds, sample_rate) if signal == "silence_then_noise" else 0
        quiet = min(quiet, frames)
        mono = [0.0] * quiet + [amplitude * rng.uniform(-1.0, 1.0) for _ in range(frames - quiet)]
    else:
        raise ValueError(f"unknown signal {signal!r}")
    if channels == 1:
        return mono
    return [s for s in mono for _ in range(channels)]


def _mulaw(x: float) -> int:
    # G.711 mu-law, from a 14-bit linear value, segment by segment.
    sample = max(-8159, min(8159, int(x * 8159)))
    sign = 0x80 if sample < 0 else 0
    magnitude = min(abs(sample) + 33, 0x1FFF)
    exponent = max(0, magnitude.bit_length() - 6)
    mantissa = (magnitude >> (exponent + 1)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def _alaw(x: float) -> int:
    # G.711 A-law, from a 13-bit linear value; even bits are inverted on the wire.
    sample = max(-4095, min(4095, int(x * 4095)))
    sign = 0x80 if sample >= 0 else 0
    magnitude = abs(sample)
    if magnitude < 32:
        code = magnitude >> 1
    else:
        exponent = magnitude.bit_length() - 5
        code = (exponent << 4) | ((magnitude >> exponent) & 0x0F)
    return (sign | code) ^ 0x55


def encode_samples(samples: list[float], codec: WavCodec) -> bytes:
    """Samples in [-1, 1] as the little-endian bytes of ``codec``."""
    if codec == "pcm_u8":
        return bytes(max(0, min(255, round(128 + 127 * s))) for s in samples)
    if codec == "pcm_s16le":
        return array("h", (round(32767 * s) for s in samples)).tobytes()
    if codec == "pcm_s24le":
        return b"".join(round(8388607 * s).to_bytes(3, "little", signed=True) for s in samples)
    if codec == "pcm_s32le":
        return array("i", (round(2147483647 * s) for s in samples)).tobytes()
    if codec == "pcm_f32le":
        return array("f", samples).tobytes()
    if codec == "pcm_f64le":
        return array("d", samples).tobytes()
    if codec == "pcm_mulaw":
        return bytes(_mulaw(s) for s in samples)
    if codec == "pcm_alaw":
        return bytes(_alaw(s) for s in samples)
    raise ValueError(f"unknown codec {codec!r}")


# --- WAV -----------------------------------------------------------------------------------


def riff_wav(
    payload: bytes,
    *,
    codec: WavCodec = "pcm_s16le",
    sample_rate: int = 16000,
    channels: int = 1,
    extensible: bool = False,
    data_size: int | None = None,
    extra_chunks: list[tuple[bytes, bytes]] | None = None,
) -> bytes:
    """A RIFF/WAVE file around ``payload``, written by hand so that any field can be set.

    ``data_size`` overrides the data chunk's declared size (to make a header that lies);
    ``extensible`` writes WAVE_FORMAT_EXTENSIBLE; ``extra_chunks`` are (id, body) pairs placed
    between the fmt and data chunks.
    """
    tag, bits = WAV_CODECS[codec]
    block_align = channels * bits // 8
    fmt = struct.pack(
        "<HHIIHH",
        0xFFFE if extensible else tag,
        channels,
        sample_rate,
        sample_rate * block_align,
        block_align,
        bits,
    )
    if extensible:
        fmt += struct.pack("<HHI", 22, bits, 0) + struct.pack("<H", tag) + _GUID_TAIL
    chunks = [(b"fmt ", fmt), *(extra_chunks or [])]
    body = b"WAVE"
    for chunk_id, chunk in chunks:
        body += chunk_id + struct.pack("<I", len(chunk)) + chunk + (b"\x00" if len(chunk) % 2 else b"")
    declared = len(payload) if data_size is None else data_size
    body += b"data" + struct.pack("<I", declared) + payload
    return b"RIFF" + struct.pack("<I", len(body)) + body


@functools.lru_cache(maxsize=128)
def make_wav(
    seconds: float,
    sample_rate: int = 16000,
    channels: int = 1,
    freq: float = 440.0,
    *,
    codec: WavCodec = "pcm_s16le",
    signal: Signal = "sine",
    amplitude: float = 0.5,
    silence_seconds: float = 1.0,
    extensible: bool = False,
) -> bytes:
    """A WAV file of ``frame_count(seconds, sample_rate)`` frames, in pure Python.

    16-bit PCM goes through the stdlib ``wave`` writer; the other codecs (which ``wave`` cannot
    write) through ``riff_wav``.
    """
    samples = signal_samples(
        seconds,
        sample_rate,
        channels,
        signal=signal,
        freq=freq,
        amplitude=amplitude,
        silence_seconds=silence_seconds,
    )
    payload = encode_samples(samples, codec)
    if codec != "pcm_s16le" or extensible:
        return riff_wav(
            payload, codec=codec, sample_rate=sample_rate, channels=channels, extensible=extensible
        )
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(payload)
    return out.getvalue()


def make_silence(seconds: float, sample_rate: int = 16000, channels: int = 1) -> bytes:
    """A 16-bit PCM WAV of digital silence, fast at any length (no per-sample work)."""
    payload = bytes(frame_count(seconds, sample_rate) * channels * 2)
    return riff_wav(payload, sample_rate=sample_rate, channels=channels)


# --- ffmpeg-made formats -------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def make_mp3(
    seconds: float,
    vbr: bool = False,
    xing: bool = True,
    *,
    sample_rate: int = 44100,
    channels: int = 1,
    bitrate: str = "128k",
    quality: int = 4,
    signal: Signal = "sine",
    freq: float = 440.0,
    silence_seconds: float = 1.0,
    id3v2: bool = True,
    id3v1: bool = False,
    title: str | None = None,
    cover_art: bool = False,
    encoder: Literal["libmp3lame", "libshine"] = "libmp3lame",
) -> bytes:
    """An MP3 encoded by ffmpeg from a pure-Python signal (see the module doc for ``signal``).

    ``vbr`` uses LAME's ``-q:a quality`` (0 best .. 9 smallest) instead of CBR ``bitrate``;
    ``xing=False`` leaves out the Xing/Info frame (and with it the LAME tag), so a reader must
    count frames for the duration. ``id3v2`` keeps ffmpeg's ID3v2.4 tag at the start (``title``
    adds a frame to it); ``id3v1`` appends a 128-byte ID3v1 tag. ``cover_art`` embeds a small
    PNG as an ID3v2.3 APIC frame, which ffmpeg then shows as a second (video) stream.
    """
    require_ffmpeg()
    source = make_wav(seconds, sample_rate, channels, freq, signal=signal, silence_seconds=silence_seconds)
    args = ["-f", "wav", "-i", "pipe:0"]
    if cover_art:
        args += ["-f", "lavfi", "-i", "color=c=red:s=32x32:d=1", "-map", "0:a", "-map", "1:v"]
        args += ["-frames:v", "1", "-c:v", "png", "-disposition:v", "attached_pic"]
    args += ["-c:a", encoder]
    if encoder == "libmp3lame":
        args += ["-q:a", str(quality)] if vbr else ["-b:a", bitrate]
        args += ["-write_xing", "1" if xing else "0"]
    else:
        args += ["-b:a", bitrate]
    # ID3v2.3 for pictures: the mp3 muxer only writes attached pictures into v2.3 and v2.4 tags,
    # and v2.3 is what most taggers produce.
    id3_version = "3" if cover_art else "4" if id3v2 else "0"
    args += ["-id3v2_version", id3_version, "-write_id3v1", "1" if id3v1 else "0"]
    if title is not None:
        args += ["-metadata", f"title={title}"]
    else:
        args += ["-map_metadata", "-1"]
    return run_ffmpeg([*args, "-f", "mp3", "{out}"], source, ".mp3")


@functools.lru_cache(maxsize=16)
def make_ogg(
    seconds: float,
    sample_rate: int = 44100,
    channels: int = 1,
    *,
    codec: Literal["libvorbis", "libopus"] = "libvorbis",
) -> bytes:
    """An Ogg file (Vorbis by default) of a sine wave."""
    require_ffmpeg()
    source = make_wav(seconds, sample_rate, channels)
    return run_ffmpeg(["-f", "wav", "-i", "pipe:0", "-c:a", codec, "-f", "ogg", "{out}"], source, ".ogg")


@functools.lru_cache(maxsize=16)
def make_wav_ffmpeg(
    seconds: float, sample_rate: int = 16000, channels: int = 1, *, codec: str = "pcm_s16le"
) -> bytes:
    """A WAV written by ffmpeg's own muxer (with its LIST chunk), for any codec ffmpeg writes."""
    require_ffmpeg()
    source = make_wav(seconds, sample_rate, channels)
    return run_ffmpeg(["-f", "wav", "-i", "pipe:0", "-c:a", codec, "-f", "wav", "{out}"], source, ".wav")


# --- Reading back --------------------------------------------------------------------------


def read_pcm16_wav(data: bytes) -> tuple[int, int, int, list[int]]:
    """(sample rate, channels, sample width, samples) of a PCM WAV, via the stdlib ``wave``."""
    with wave.open(io.BytesIO(data), "rb") as w:
        rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
        frames = w.readframes(w.getnframes())
    samples = array("h", frames).tolist() if width == 2 else list(frames)
    return rate, channels, width, samples
