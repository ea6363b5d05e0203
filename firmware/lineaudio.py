"""A line's audio between its port and its leg in the media plane.

The port is a GSM module's audio serial port (s16le, 320-byte frames, through pyserial or a
``socket://`` bridge like the AT port) or an E1 B-channel's DAHDI channel file (A-law, 160-byte
frames). The port's clock leads: every frame read goes into the leg, and for every frame read
one frame of the leg's output is written back, so the box never writes faster than the line
plays; when the plane has nothing ready, silence goes out (chan_dongle's rule), never a click.
"""
from __future__ import annotations

import asyncio
import os
from collections import deque
from typing import Callable

import structlog

from cext import media as core

log = structlog.get_logger(__name__)

OUT_DEPTH = 4  # frames of the leg's output waiting to be written; older ones are dropped


class LineAudio(asyncio.Protocol):
    """Frames both ways between one port and one leg; ``on_lost(exc)`` when the port goes."""

    def __init__(self, leg, *, law: str = "pcm", on_lost: Callable[[Exception | None], None]
                 = lambda exc: None) -> None:
        self.leg = leg
        self.law = law
        self.frame_bytes = core.FRAME_BYTES // 2 if law == "alaw" else core.FRAME_BYTES
        self.silence = core.alaw_encode(core.SILENCE) if law == "alaw" else core.SILENCE
        self.on_lost = on_lost
        self.frames_in = 0
        self.underruns = 0  # frames written as silence because the plane had none ready
        self.connected = asyncio.Event()
        self.closed = asyncio.Event()
        self.on_closed: Callable[["LineAudio"], None] = lambda audio: None
        self._out: deque[bytes] = deque(maxlen=OUT_DEPTH)
        self._remove_output = leg.on_output(self._out.append)
        self._buf = bytearray()
        self._write: Callable[[bytes], None] | None = None
        self._transport: asyncio.BaseTransport | None = None
        self._closing = False

    # --- asyncio protocol (a serial port or a socket://) -----------------------------------
    def connection_made(self, transport) -> None:
        self._transport = transport
        self._write = transport.write
        self._out.clear()
        self.leg.flush()  # nothing left over from the line's last call reaches this one
        self.connected.set()

    def data_received(self, data: bytes) -> None:
        self._buf += data
        n = self.frame_bytes
        while len(self._buf) >= n:
            frame = bytes(self._buf[:n])
            del self._buf[:n]
            self._frame(frame)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = self._write = None
        self.closed.set()
        self.on_closed(self)
        self._remove_output()
        if not self._closing:
            self.on_lost(exc or ConnectionError("the audio port closed"))

    def close(self) -> None:
        """Stop carrying audio (not a loss); ``closed`` is set when the port is let go."""
        self._closing = True
        self._remove_output()
        self.leg.flush()  # the call is over: what it said last is not played after it
        if self._transport is not None:
            self._transport.close()
        else:
            self.closed.set()

    # --- one frame in, one frame out -------------------------------------------------------
    def _frame(self, frame: bytes) -> None:
        self.frames_in += 1
        try:
            self.leg.push(core.alaw_decode(frame) if self.law == "alaw" else frame)
        except Exception:  # a removed leg: the call is going; the port keeps its pace
            log.debug("line_audio_push_failed", leg=self.leg.name)
        if self._out:
            out = self._out.popleft()
            out = core.alaw_encode(out) if self.law == "alaw" else out
        else:
            self.underruns += 1
            out = self.silence
        if self._write is not None:
            self._write(out)


class FdAudio:
    """A descriptor that keeps frame boundaries (a DAHDI channel file, a SOCK_SEQPACKET end)
    as the transport of a :class:`LineAudio`.

    The channel stays open between calls and keeps receiving while nobody reads it (DAHDI keeps
    the oldest blocks: the last call's final words). What waits in it is thrown away when the
    next call's audio starts, as chan_dahdi flushes a channel at call start."""

    MAX_STALE_READS = 4096  # a source faster than we can drain is not a channel: stop there

    def __init__(self, fd: int, audio: LineAudio) -> None:
        self.fd = fd
        self.audio = audio
        loop = asyncio.get_running_loop()
        os.set_blocking(fd, False)
        self.discarded = self._discard_stale()
        loop.add_reader(fd, self._readable)
        audio.connection_made(self)

    def _discard_stale(self) -> int:
        """Read away what arrived before this call; returns the bytes thrown away."""
        n = 0
        for _ in range(self.MAX_STALE_READS):
            try:
                data = os.read(self.fd, 4096)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break  # a dead channel: the first real read reports it
            if not data:
                break
            n += len(data)
        return n

    def write(self, data: bytes) -> None:
        try:
            os.write(self.fd, data)
        except BlockingIOError:
            pass  # the channel's buffer is full: this frame is lost, the next one goes
        except OSError as exc:
            self._lost(exc)

    def _readable(self) -> None:
        try:
            data = os.read(self.fd, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(exc)
            return
        if not data:
            self._lost(None)
            return
        self.audio.data_received(data)

    def _lost(self, exc: Exception | None) -> None:
        if self.fd < 0:
            return
        self.close(lost=True)
        self.audio.connection_lost(exc)

    def close(self, *, lost: bool = False) -> None:
        if self.fd >= 0:
            try:
                asyncio.get_running_loop().remove_reader(self.fd)
            except (ValueError, OSError, RuntimeError):
                pass
            self.fd = -1
        if not lost:
            self.audio.connection_lost(None)
