"""A simulated line's audio port, and the debtor's voice carried over it during a call.

A module's port is a second pseudo-terminal (or a TCP listener, as a gateway would bridge it); an
E1 B-channel's is one end of a SOCK_SEQPACKET pair, read and written like a DAHDI channel. While the
dialect's voice command has put the call's audio on the port, the debtor speaks one frame every
20 ms at real time pace (s16le, 8 kHz, 320 bytes; 16 kHz and 640 bytes after ``AT+CPCMFRM=1``)
and what the box writes is heard, frame by frame. Frames nobody reads are lost, as on a module.
"""
from __future__ import annotations

import asyncio
import os
import termios
import tty
from typing import Callable

from firmware.clock import Clock
from firmware.sim.voice import BOOK, FRAME_S, Ear, Speaker


class AudioPort:
    """Raw bytes both ways on a pty or one TCP connection; ``on_data`` gets what the box wrote."""

    def __init__(self) -> None:
        self.path: str | None = None
        self.on_data: Callable[[bytes], None] = lambda data: None
        self._master: int | None = None
        self._slave: int | None = None
        self._server: asyncio.AbstractServer | None = None
        self._tcp: asyncio.Transport | None = None
        self.dropped = 0  # frames the box did not read in time
        self._sock = None  # kept alive while its descriptor is in use

    async def open_pty(self) -> str:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave, termios.TCSANOW)
        tty.setraw(self._master, termios.TCSANOW)
        os.set_blocking(self._master, False)
        self.path = os.ttyname(self._slave)
        asyncio.get_running_loop().add_reader(self._master, self._readable)
        return self.path

    def open_socket(self, sock) -> None:
        """Carry frames on a connected datagram socket (a B-channel's network end)."""
        sock.setblocking(False)
        self._sock, self._master = sock, sock.fileno()
        asyncio.get_running_loop().add_reader(self._master, self._readable)

    async def open_tcp(self, host: str = "127.0.0.1", port: int = 0) -> str:
        port_obj = self

        class _Conn(asyncio.Protocol):
            def connection_made(self, transport) -> None:
                if port_obj._tcp is not None:
                    port_obj._tcp.close()
                self.transport = port_obj._tcp = transport

            def data_received(self, data: bytes) -> None:
                port_obj.on_data(data)

            def connection_lost(self, exc) -> None:
                if port_obj._tcp is self.transport:
                    port_obj._tcp = None

        self._server = await asyncio.get_running_loop().create_server(_Conn, host, port)
        self.path = f"socket://{host}:{self._server.sockets[0].getsockname()[1]}"
        return self.path

    def write(self, frame: bytes) -> None:
        """One frame out; dropped whole when the box is not reading (a full pty buffer)."""
        if self._tcp is not None:
            if self._tcp.get_write_buffer_size() > 8 * len(frame):
                self.dropped += 1
                return
            self._tcp.write(frame)
            return
        if self._master is None:
            return
        try:
            n = os.write(self._master, frame)
        except BlockingIOError:
            self.dropped += 1
            return
        except OSError:
            return
        if n < len(frame):  # never leave half a frame: the box would lose frame alignment
            try:
                os.write(self._master, bytes(len(frame) - n))
            except OSError:
                pass

    def _readable(self) -> None:
        try:
            data = os.read(self._master, 4096)  # type: ignore[arg-type]
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return
        if data:
            self.on_data(data)

    async def close(self) -> None:
        """Close the port; a box holding it open sees it vanish."""
        if self._master is not None:
            try:
                asyncio.get_running_loop().remove_reader(self._master)
            except (ValueError, OSError):
                pass
            if self._sock is not None:
                self._sock.close()
                self._sock = None
            else:
                os.close(self._master)
            self._master = None
        if self._slave is not None:
            os.close(self._slave)
            self._slave = None
        if self._tcp is not None:
            self._tcp.abort()
            self._tcp = None
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None


KEEP_HEARD = 100  # the last calls whose heard audio a simulator keeps (older: the signal only)
KEEP_RECORDS = 2000  # the last calls a simulator remembers at all (per modem, per span)


def keep_window(records: list, keep: int | None = None) -> None:
    """Bound a simulator's memory of its calls: the record that just fell out of the last
    KEEP_HEARD forgets what its debtor heard, and records beyond the last ``keep`` (KEEP_RECORDS)
    are dropped, a fifth of the window at a time so that appending stays cheap. A simulator that
    runs for days (``dialbox run --simulate``) stays flat; a test sees every call it made."""
    if len(records) > KEEP_HEARD:
        old = records[-KEEP_HEARD - 1].voice
        if old is not None:
            old.ear.kept.clear()
    trim(records, KEEP_RECORDS if keep is None else keep)


def trim(items: list, keep: int) -> None:
    """Drop the oldest items of ``items`` once it holds more than ``keep`` and a fifth."""
    if len(items) > keep + keep // 5:
        del items[:len(items) - keep]


class CallVoice:
    """The debtor's side of one call's audio: speaks a unique signal, keeps what it hears."""

    def __init__(self, port: AudioPort, clock: Clock, owner: str, *, rate: int = 8000,
                 law: str = "pcm", spawn: Callable = asyncio.ensure_future) -> None:
        self.port, self.clock, self.rate, self._spawn = port, clock, rate, spawn
        self.signal = BOOK.take(owner)
        self.speaker = Speaker(self.signal, rate=rate, law=law)
        self.ear = Ear(rate=rate, law=law)
        self.frame_bytes = int(rate * FRAME_S) * (1 if law == "alaw" else 2)
        self.sent = 0
        self.started_at: float | None = None
        self.stopped_at: float | None = None
        self._inbuf = bytearray()
        self._task: asyncio.Task | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self.running:
            return
        self.port.on_data = self._heard
        self._inbuf.clear()
        self._task = self._spawn(self._speak())

    def halt(self) -> None:
        """Stop carrying audio (the signal stays the call's; release it with ``close``)."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
            self.stopped_at = self.clock.now()
        self.port.on_data = lambda data: None

    @property
    def talk_s(self) -> float:
        """Seconds of audio carried."""
        return self.sent * FRAME_S

    def close(self) -> None:
        BOOK.release(self.signal)

    async def _speak(self) -> None:
        if self.started_at is None:
            self.started_at = self.clock.now()
        t = self.clock.now()
        while True:
            self.port.write(self.speaker.frame(t))
            self.sent += 1
            t += FRAME_S
            now = self.clock.now()
            if t < now - 10 * FRAME_S:  # a long stall: what a module's buffer could not hold is lost
                t = now
            await self.clock.sleep(t - now)

    def _heard(self, data: bytes) -> None:
        self._inbuf += data
        n = self.frame_bytes
        while len(self._inbuf) >= n:
            self.ear.hear(bytes(self._inbuf[:n]))
            del self._inbuf[:n]
