"""Small, valid audio files for upload tests, written with the standard library."""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path


def write_wav(path: Path, seconds: float = 1.0, rate: int = 16000, pitch: float = 440.0) -> Path:
    """A mono 16-bit sine tone; 1 s at 16 kHz is 32 kB, so a few seconds span several chunks."""
    frames = int(seconds * rate)
    samples = (int(12000 * math.sin(2 * math.pi * pitch * n / rate)) for n in range(frames))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"".join(struct.pack("<h", s) for s in samples))
    return path
