"""Test signals for audio: tones as 20 ms frames, and a Goertzel detector to tell them apart."""
from __future__ import annotations

import asyncio
import math
import shutil
import os
import struct
import subprocess

import pytest

from cext import linestate_codes as C
from firmware.clock import Clock
from firmware.driverapi import HwReport

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


class AudioLine:
    """A test driver for the layers above drivers (line manager, recording, prompts): its one
    channel answers at once, and its debtor speaks ``voice`` after ``speak_after`` seconds (None:
    never: a line whose audio path is dead), one frame per 20 ms at real time; what the line
    hears is kept with its clock time."""

    kind = "gsm"

    def __init__(self, name: str, clock: Clock, speak_after: float | None) -> None:
        self.name = name
        self.clock = clock
        self.speak_after = speak_after
        self.report = None
        self.leg = None
        self.heard: list[bytes] = []
        self.heard_at: list[float] = []  # clock time of each frame heard
        self.answered_at: float | None = None
        self._talk: asyncio.Task | None = None
        self.driver_bridged = 0
        self.voice = [struct.pack("<160h", *([1234] * 160))]  # what the debtor says, looped

    def channel_names(self):
        return [self.name]

    def attach_media(self, plane) -> None:
        self.leg = plane.add_leg(self.name, "line", prefill=1)
        self.leg.on_output(self._hear)

    def _hear(self, frame: bytes) -> None:
        self.heard.append(frame)
        self.heard_at.append(self.clock.now())

    async def start(self, report):
        self.report = report
        report(HwReport(0, C.EV_HW_IN_SERVICE))

    async def stop(self):
        if self._talk:
            self._talk.cancel()
            await asyncio.gather(self._talk, return_exceptions=True)

    async def dial(self, channel, number):
        self.report(HwReport(0, C.EV_HW_DIALING))
        self.answered_at = self.clock.now()
        self.report(HwReport(0, C.EV_HW_ANSWER))
        if self.speak_after is not None:
            self._talk = asyncio.get_running_loop().create_task(self._speak())

    async def _speak(self):
        await self.clock.sleep(self.speak_after)
        k = 0
        while True:
            self.leg.push(self.voice[k % len(self.voice)])
            k += 1
            await self.clock.sleep(0.02)

    async def hangup(self, channel, cause=16):
        if self._talk:
            self._talk.cancel()
        self.report(HwReport(0, C.EV_HW_RELEASED))

    async def answer(self, channel):
        pass

    async def bridge(self, channel, position):
        self.driver_bridged += 1

    def health(self, channel):
        return {}
