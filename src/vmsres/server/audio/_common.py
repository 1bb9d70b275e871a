"""Pieces shared by the format parsers of the audio layer."""

from __future__ import annotations

import logging

log = logging.getLogger("vmsres.audio")


class MalformedAudio(Exception):
    """The bytes are not a decodable file of the format being parsed; the message says why.

    Internal to the audio layer: ``analyze_audio`` turns it into ``FileAnalyseError`` so that the
    parsers stay free of wire concerns.
    """


def syncsafe(b: bytes) -> int | None:
    """An ID3v2 28-bit 'syncsafe' integer, or None when a byte has its top bit set (so not ID3)."""
    if len(b) != 4 or any(x & 0x80 for x in b):
        return None
    return (b[0] << 21) | (b[1] << 14) | (b[2] << 7) | b[3]


def id3v2_length(data: bytes, pos: int) -> int | None:
    """Total length of an ID3v2 tag starting at ``pos`` (header, body and footer), or None."""
    head = data[pos : pos + 10]
    if len(head) < 10 or head[:3] != b"ID3" or head[3] == 0xFF or head[4] == 0xFF:
        return None
    size = syncsafe(head[6:10])
    if size is None:
        return None
    footer = 10 if head[5] & 0x10 else 0
    return 10 + size + footer
