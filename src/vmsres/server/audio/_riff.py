"""Reading a RIFF/WAVE file's chunks, in pure Python.

The stdlib ``wave`` module only reads integer PCM (Python 3.11 rejects mu-law, A-law, float and
WAVE_FORMAT_EXTENSIBLE), so the header is parsed here. For the codecs accepted, every byte
pattern is a valid sample, so a file whose chunks are sound and whose data chunk is all there is
decodable: this check is complete without ffmpeg.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from vmsres.server.audio._common import MalformedAudio

_PCM = 0x0001
_FLOAT = 0x0003
_ALAW = 0x0006
_MULAW = 0x0007
_EXTENSIBLE = 0xFFFE
# Every KSDATAFORMAT_SUBTYPE_* GUID for a plain wave format is that format's tag followed by this.
_GUID_TAIL = bytes.fromhex("000000001000800000aa00389b71")

# (format tag, bits per sample) -> the codec name ffmpeg would report.
_CODECS = {
    (_PCM, 8): "pcm_u8",
    (_PCM, 16): "pcm_s16le",
    (_PCM, 24): "pcm_s24le",
    (_PCM, 32): "pcm_s32le",
    (_FLOAT, 32): "pcm_f32le",
    (_FLOAT, 64): "pcm_f64le",
    (_ALAW, 8): "pcm_alaw",
    (_MULAW, 8): "pcm_mulaw",
}

MIN_SAMPLE_RATE = 1000
MAX_SAMPLE_RATE = 384000
MAX_CHANNELS = 8
# Streaming writers (ffmpeg and sox writing to a pipe) cannot seek back to fill in sizes and leave
# this placeholder. No real chunk under the 5 MB limit can be this long, so it is not a lie about
# the length, it means "up to the end of the file".
_UNKNOWN_SIZE = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class WaveStream:
    codec: str
    sample_rate: int
    channels: int
    frames: int  # sample frames (one sample per channel)


def looks_like_wav(data: bytes) -> bool:
    return data[:4] == b"RIFF" and data[8:12] == b"WAVE"


def _parse_fmt(body: bytes) -> tuple[str, int, int, int]:
    if len(body) < 16:
        raise MalformedAudio("The WAV fmt chunk is too short.")
    tag, channels, sample_rate, _byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", body, 0)
    if tag == _EXTENSIBLE:
        if len(body) < 40 or struct.unpack_from("<H", body, 16)[0] < 22:
            raise MalformedAudio("The WAV fmt chunk says WAVE_FORMAT_EXTENSIBLE but is too short for it.")
        valid_bits = struct.unpack_from("<H", body, 18)[0]
        if valid_bits > bits:
            raise MalformedAudio("The WAV fmt chunk has more valid bits than bits per sample.")
        guid = body[24:40]
        if guid[2:] != _GUID_TAIL:
            raise MalformedAudio("The WAV sub-format is not PCM, float, A-law or mu-law.")
        tag = struct.unpack_from("<H", guid, 0)[0]
    codec = _CODECS.get((tag, bits))
    if codec is None:
        raise MalformedAudio(
            f"The WAV codec (format tag {tag:#06x}, {bits} bits) is not one of PCM 8/16/24/32-bit, "
            "float 32/64-bit, A-law or mu-law."
        )
    if not 1 <= channels <= MAX_CHANNELS:
        raise MalformedAudio(f"The WAV file says it has {channels} channels.")
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise MalformedAudio(f"The WAV sample rate {sample_rate} Hz is out of range.")
    if block_align != channels * bits // 8:
        raise MalformedAudio("The WAV block alignment does not match the channels and sample size.")
    return codec, channels, sample_rate, block_align


def parse(data: bytes) -> WaveStream:
    """Find the fmt and data chunks and check that the data chunk is all there."""
    if not looks_like_wav(data):
        raise MalformedAudio("The file is not a RIFF/WAVE file.")
    n = len(data)
    # The RIFF size is not checked: writers disagree about it, and what matters is the data chunk.
    pos = 12
    fmt: tuple[str, int, int, int] | None = None
    while pos + 8 <= n:
        chunk_id = data[pos : pos + 4]
        size = struct.unpack_from("<I", data, pos + 4)[0]
        body = pos + 8
        if chunk_id == b"data":
            if fmt is None:
                raise MalformedAudio("The WAV data chunk comes before its fmt chunk.")
            if size == _UNKNOWN_SIZE:
                size = n - body
                # With no length to check against, a file cut short can only show itself by ending
                # inside a sample frame; a whole upload never does (its writer wrote whole frames).
                if size % fmt[3]:
                    raise MalformedAudio(
                        "The WAV header gives no data length and the file ends inside a sample "
                        "frame: it is truncated."
                    )
            elif body + size > n:
                raise MalformedAudio(
                    f"The WAV header says the audio data is {size} bytes, but only {n - body} are present."
                )
            codec, channels, sample_rate, block_align = fmt
            # A trailing partial sample frame is left out, as every decoder does.
            frames = size // block_align
            if frames == 0:
                raise MalformedAudio("The WAV file has no audio samples.")
            return WaveStream(codec, sample_rate, channels, frames)
        if body + size > n:
            raise MalformedAudio(f"The WAV chunk {chunk_id!r} runs past the end of the file.")
        if chunk_id == b"fmt ":
            if fmt is not None:
                raise MalformedAudio("The WAV file has two fmt chunks.")
            fmt = _parse_fmt(data[body : body + size])
        # Chunks are padded to an even length.
        pos = body + size + (size & 1)
    if fmt is None:
        raise MalformedAudio("The WAV file has no fmt chunk.")
    raise MalformedAudio("The WAV file has no data chunk.")
