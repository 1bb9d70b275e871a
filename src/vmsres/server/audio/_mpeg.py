"""Walking an MPEG audio Layer III ("MP3") stream frame by frame, in pure Python.

This is the structural half of the MP3 check, and the only half when ffmpeg is absent. It does not
decode the Huffman-coded samples, but it reads every frame header and every frame's side
information, which is where a decoder first notices that the bytes are not MP3. The rules are
listed in docs/audio.md ("What is checked").

Why count frames at all: the duration a VBR file declares lives in an optional Xing/Info or VBRI
frame. Without one, the usual estimate (file size over the first frame's bitrate) can be off by
a factor of ten, and with one, a truncated file still claims its original length.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from vmsres.server.audio._common import MalformedAudio, id3v2_length, syncsafe

# Indexed by the 4-bit bitrate index; 0 ("free format") and 15 (reserved) are rejected.
_KBPS_MPEG1 = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0)
_KBPS_MPEG2 = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 0)
# Keyed by the 2-bit version field: 3 = MPEG-1, 2 = MPEG-2, 0 = MPEG-2.5 (1 is reserved).
_SAMPLE_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}

# A decoder can only address 576 spectral lines per granule, i.e. 288 pairs.
_MAX_BIG_VALUES = 288


@dataclass(frozen=True, slots=True)
class _Shape:
    """What one 32-bit frame header says about its frame."""

    version: int
    sample_rate: int
    channels: int
    length: int  # bytes, header included
    samples: int  # PCM samples per channel
    side_offset: int  # where the side information starts: after the header and the optional CRC
    side_bytes: int
    main_bytes: int  # the frame's slot for main data (what follows the side information)
    # Bit offsets, within the side information, of each granule/channel's
    # (part2_3_length, big_values, window_switching) fields; block_type follows window_switching.
    fields: tuple[tuple[int, int, int], ...]
    main_data_begin_bits: int


def _parse_header(header: int) -> _Shape | None:
    if header >> 21 != 0x7FF:
        return None
    version = (header >> 19) & 3
    layer = (header >> 17) & 3
    if version == 1 or layer != 1:  # 1 is "Layer III" in the two-bit layer field
        return None
    bitrate_index = (header >> 12) & 0xF
    rate_index = (header >> 10) & 3
    if bitrate_index in (0, 15) or rate_index == 3:
        return None
    protected = not (header >> 16) & 1
    padding = (header >> 9) & 1
    channels = 1 if (header >> 6) & 3 == 3 else 2
    sample_rate = _SAMPLE_RATES[version][rate_index]
    side_offset = 6 if protected else 4
    if version == 3:
        length = 144000 * _KBPS_MPEG1[bitrate_index] // sample_rate + padding
        samples = 1152
        side_bytes = 17 if channels == 1 else 32
        granules = 2
        mdb_bits = 9
        head_bits = 9 + (5 if channels == 1 else 3) + 4 * channels  # + private bits + scfsi
        scalefac_compress_bits = 4
        granule_bits = 59
    else:
        length = 72000 * _KBPS_MPEG2[bitrate_index] // sample_rate + padding
        samples = 576
        side_bytes = 9 if channels == 1 else 17
        granules = 1
        mdb_bits = 8
        head_bits = 8 + (1 if channels == 1 else 2)
        scalefac_compress_bits = 9
        granule_bits = 63
    main_bytes = length - side_offset - side_bytes
    if main_bytes < 0:
        return None
    fields = []
    for i in range(granules * channels):
        start = head_bits + i * granule_bits
        fields.append((start, start + 12, start + 12 + 9 + 8 + scalefac_compress_bits))
    return _Shape(
        version=version,
        sample_rate=sample_rate,
        channels=channels,
        length=length,
        samples=samples,
        side_offset=side_offset,
        side_bytes=side_bytes,
        main_bytes=main_bytes,
        fields=tuple(fields),
        main_data_begin_bits=mdb_bits,
    )


@dataclass(frozen=True, slots=True)
class MpegStream:
    """The measured facts of a walked MP3 stream."""

    sample_rate: int
    channels: int
    samples: int  # per channel, after removing the LAME encoder delay and padding when declared


@dataclass(frozen=True, slots=True)
class _VbrHeader:
    frames: int | None
    delay: int  # LAME tag: samples the encoder added at the start
    padding: int  # ... and at the end
    is_vbri: bool


def looks_like_mp3(data: bytes) -> bool:
    """A cheap sniff: an ID3v2 tag or a Layer III frame header where the audio should start."""
    if data[:3] == b"ID3":
        return True
    return len(data) >= 4 and _parse_header(struct.unpack_from(">I", data, 0)[0]) is not None


def audio_start(data: bytes) -> int:
    """Offset of the first byte after leading ID3v2 tags (some writers stack several) and the zero
    padding that some taggers leave outside the tag's declared size."""
    pos = 0
    while (tag := id3v2_length(data, pos)) is not None:
        if pos + tag > len(data):
            raise MalformedAudio("The ID3v2 tag at the start is longer than the file.")
        pos += tag
    while pos < len(data) and data[pos] == 0:
        pos += 1
    return pos


def _vbr_header(data: bytes, pos: int, shape: _Shape) -> _VbrHeader | None:
    frame = data[pos : pos + shape.length]
    xing = shape.side_offset + shape.side_bytes
    tag = frame[xing : xing + 4]
    if tag in (b"Xing", b"Info") and len(frame) >= xing + 8:
        flags = struct.unpack_from(">I", frame, xing + 4)[0]
        p = xing + 8
        frames = None
        if flags & 1:
            if len(frame) < p + 4:
                return _VbrHeader(None, 0, 0, is_vbri=False)
            frames = struct.unpack_from(">I", frame, p)[0]
            p += 4
        p += (4 if flags & 2 else 0) + (100 if flags & 4 else 0) + (4 if flags & 8 else 0)
        delay = padding = 0
        # The LAME extension follows the Xing fields; ffmpeg's encoder writes it too, under its own
        # name. Bytes 21..23 of it hold the encoder delay and padding, 12 bits each.
        if len(frame) >= p + 24 and frame[p : p + 4] in (b"LAME", b"Lavc", b"Lavf"):
            packed = int.from_bytes(frame[p + 21 : p + 24], "big")
            delay, padding = packed >> 12, packed & 0xFFF
        return _VbrHeader(frames, delay, padding, is_vbri=False)
    # Fraunhofer's VBRI header sits at a fixed offset whatever the channel mode.
    if frame[36:40] == b"VBRI" and len(frame) >= 54:
        return _VbrHeader(struct.unpack_from(">I", frame, 50)[0], 0, 0, is_vbri=True)
    return None


def _trailer_only(data: bytes, pos: int) -> bool:
    """Whether everything from ``pos`` on is metadata that may follow the audio: ID3v2, APEv2,
    Lyrics3v2 and ID3v1 tags, in any order, and zero bytes."""
    end = len(data)
    while (tag := id3v2_length(data, pos)) is not None and pos + tag <= end:
        pos += tag
    while end > pos:
        if end - pos >= 128 and data[end - 128 : end - 125] == b"TAG":
            end -= 128
            continue
        if end - pos >= 32 and data[end - 32 : end - 24] == b"APETAGEX":
            size, _items, flags = struct.unpack_from("<III", data, end - 20)
            total = size + (32 if flags & 0x80000000 else 0)
            if size < 32 or total > end - pos:
                return False
            end -= total
            continue
        if end - pos >= 15 and data[end - 9 : end] == b"LYRICS200" and data[end - 15 : end - 9].isdigit():
            total = int(data[end - 15 : end - 9]) + 15
            if total > end - pos or data[end - total : end - total + 11] != b"LYRICSBEGIN":
                return False
            end -= total
            continue
        if end - pos >= 10 and data[end - 10 : end - 7] == b"3DI":
            size = syncsafe(data[end - 4 : end])
            if size is None or size + 20 > end - pos:
                return False
            end -= size + 20
            continue
        break
    return not data[pos:end].strip(b"\x00")


def walk(data: bytes) -> MpegStream:
    """Check every frame of an MP3 and measure it; raise MalformedAudio at the first fault."""
    start = audio_start(data)
    n = len(data)
    if n - start < 4:
        raise MalformedAudio("There is no MPEG audio frame after the ID3 tag.")
    first = _parse_header(struct.unpack_from(">I", data, start)[0])
    if first is None:
        raise MalformedAudio("No MPEG audio Layer III frame header where the audio should start.")
    if start + first.length > n:
        raise MalformedAudio("The first MPEG audio frame is cut short.")

    vbr = _vbr_header(data, start, first)
    pos = start + first.length if vbr else start
    shapes: dict[int, _Shape | None] = {}
    unpack = struct.Struct(">I").unpack_from
    from_bytes = int.from_bytes
    audio_frames = 0
    samples = 0
    # Main data positions in bits, counted over the concatenated main-data slots of the frames
    # walked so far. ``main_end`` is where the previous frame's main data ended.
    slots = 0
    main_end: int | None = None
    while pos + 4 <= n:
        header = unpack(data, pos)[0]
        shape = shapes.get(header)
        if shape is None:
            if header in shapes:
                break
            shape = shapes[header] = _parse_header(header)
            if shape is None:
                break
        if pos + shape.length > n:
            break
        if (shape.version, shape.sample_rate, shape.channels) != (
            first.version,
            first.sample_rate,
            first.channels,
        ):
            raise MalformedAudio(
                f"The MPEG audio frame at byte {pos} changes the version, sample rate or channel count."
            )
        side_at = pos + shape.side_offset
        side = from_bytes(data[side_at : side_at + shape.side_bytes], "big")
        side_bits = shape.side_bytes * 8
        main_data_begin = side >> (side_bits - shape.main_data_begin_bits)
        used = 0
        for p23_at, big_at, ws_at in shape.fields:
            used += (side >> (side_bits - p23_at - 12)) & 0xFFF
            if (side >> (side_bits - big_at - 9)) & 0x1FF > _MAX_BIG_VALUES:
                raise MalformedAudio(f"The MPEG audio frame at byte {pos} has impossible side information.")
            # With window switching on, block type 0 ("normal") is forbidden.
            if (side >> (side_bits - ws_at - 3)) & 0b111 == 0b100:
                raise MalformedAudio(f"The MPEG audio frame at byte {pos} has an invalid block type.")
        begin = (slots - main_data_begin) * 8
        # The first frame of a stream cut at a frame boundary may point back into data that is
        # gone; decoders skip that frame, so only frames after it must fit the bit reservoir.
        if main_end is not None and begin < main_end:
            raise MalformedAudio(f"The MPEG audio frame at byte {pos} points to main data that is not there.")
        slots += shape.main_bytes
        main_end = begin + used
        if main_end > slots * 8:
            raise MalformedAudio(f"The MPEG audio frame at byte {pos} holds more data than fits in it.")
        audio_frames += 1
        samples += shape.samples
        pos += shape.length

    if pos < n and not _trailer_only(data, pos):
        if pos + 4 <= n and _parse_header(unpack(data, pos)[0]) is not None:
            raise MalformedAudio(f"The MPEG audio stream is truncated: its last frame (byte {pos}) is cut.")
        raise MalformedAudio(f"The bytes from {pos} on are neither MPEG audio frames nor a known tag.")
    if audio_frames == 0:
        raise MalformedAudio("The file has no MPEG audio frame with sound in it.")

    declared = vbr.frames if vbr else None
    if declared is not None:
        # A VBRI count may or may not include its own frame, depending on the encoder.
        allowance = 1 if vbr and vbr.is_vbri else 0
        if audio_frames + allowance < declared:
            raise MalformedAudio(
                f"The MPEG audio stream is truncated: its header declares {declared} frames, "
                f"only {audio_frames} are present."
            )
    if vbr and declared == audio_frames and vbr.delay + vbr.padding < samples:
        samples -= vbr.delay + vbr.padding
    return MpegStream(sample_rate=first.sample_rate, channels=first.channels, samples=samples)
