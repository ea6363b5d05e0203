"""Prompts: audio files the shop uploads (WAV, MP3, OGG...) turned into the plane's 8 kHz s16le PCM.

Conversion happens once, on upload, through PyAV (FFmpeg's decoders and resampler); the result is
kept as a WAV file (8 kHz, mono, s16) that both the plane and a browser can play.
"""
from __future__ import annotations

import io
import wave
from pathlib import Path

from firmware.errors import UserError

RATE = 8000
MAX_PROMPT_S = 30.0


def convert(data: bytes, *, name: str = "upload", max_s: float = MAX_PROMPT_S) -> bytes:
    """Any audio file FFmpeg decodes -> 8 kHz mono s16le PCM (UserError when it is not audio)."""
    import av
    pcm = bytearray()
    try:
        with av.open(io.BytesIO(data)) as container:
            if not container.streams.audio:
                raise UserError(f"{name}: no audio in this file; upload a WAV, MP3 or OGG file")
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    pcm += bytes(out.planes[0])[: out.samples * 2]
                if len(pcm) > max_s * RATE * 2:
                    raise UserError(f"{name}: the message is longer than {max_s:g} s; "
                                    "keep it short (the shop's name and a number to call back)")
            for out in resampler.resample(None):
                pcm += bytes(out.planes[0])[: out.samples * 2]
    except av.FFmpegError as exc:
        raise UserError(f"{name}: not an audio file FFmpeg can read ({exc}); upload a WAV, MP3 "
                        "or OGG file") from None
    if len(pcm) < RATE * 2 * 0.2:
        raise UserError(f"{name}: the message is shorter than 0.2 s: is the file empty?")
    if len(pcm) > max_s * RATE * 2:
        raise UserError(f"{name}: the message is longer than {max_s:g} s; keep it short "
                        "(the shop's name and a number to call back)")
    return bytes(pcm)


def write_wav(path: Path, pcm: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm)
    tmp.replace(path)


def read_wav(path: Path) -> bytes:
    """The PCM of a prompt written by :func:`write_wav`."""
    with wave.open(str(path), "rb") as w:
        if (w.getnchannels(), w.getsampwidth(), w.getframerate()) != (1, 2, RATE):
            raise UserError(f"{path}: not an 8 kHz mono 16-bit prompt; upload it again")
        return w.readframes(w.getnframes())
