"""Test signals for audio: tones as 20 ms frames, and a Goertzel detector to tell them apart."""
from __future__ import annotations

import math
import shutil
import os
import struct
import subprocess

import pytest

RATE = 8000


def tone(hz: float, amplitude: float = 8000.0, seconds: float = 1.0) -> list[bytes]:
    """A tone as 20 ms frames (whole cycles when ``hz`` is a multiple of 50)."""
    n = int(seconds * RATE)
    pcm = struct.pack(f"<{n}h", *(int(round(amplitude * math.sin(2 * math.pi * hz * i / RATE)))
                                  for i in range(n)))
    return [pcm[i:i + 320] for i in range(0, len(pcm), 320)]


def power(samples, hz: float) -> float:
    """Goertzel power of one frequency in a block of samples, normalised to the block."""
    w = 2 * math.pi * hz / RATE
    c = 2 * math.cos(w)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + c * s1 - s2, s1
    return (s1 * s1 + s2 * s2 - c * s1 * s2) / max(1, len(samples)) ** 2


def dominant(samples, candidates) -> float:
    return max(candidates, key=lambda hz: power(samples, hz))


def need_ffmpeg() -> str:
    """Debian's ffmpeg: the independent decoder of our recordings (fails in CI when missing)."""
    path = shutil.which("ffmpeg")
    if path is None or shutil.which("ffprobe") is None:
        if os.environ.get("CI"):
            pytest.fail("ffmpeg is missing in CI (apt-get install -y ffmpeg)")
        pytest.skip("ffmpeg/ffprobe not installed")
    return path


def decode_stereo(path) -> tuple[list[int], list[int]]:
    """Decode a recording with Debian's ffmpeg (not PyAV) to 8 kHz s16 stereo: (left, right)."""
    need_ffmpeg()
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "s16le", "-ac", "2",
                          "-ar", str(RATE), "-"], check=True, capture_output=True).stdout
    vals = struct.unpack(f"<{len(raw) // 2}h", raw)
    return list(vals[0::2]), list(vals[1::2])


def probe(path) -> dict:
    need_ffmpeg()
    import json
    out = subprocess.run(["ffprobe", "-v", "error", "-print_format", "json", "-show_streams",
                          "-show_format", str(path)], check=True, capture_output=True).stdout
    return json.loads(out)
