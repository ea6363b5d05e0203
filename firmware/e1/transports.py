"""How LAPD frames reach the D-channel: DAHDI device, SOCK_SEQPACKET, serial async HDLC, TCP."""
from __future__ import annotations

import abc

import asyncio
import os
import socket
from typing import Callable

import structlog

from firmware.errors import Msg, os_reason

log = structlog.get_logger(__name__)

OnFrame = Callable[[bytes], None]
OnLost = Callable[[str], None]


def fcs16(data: bytes) -> int:
    """HDLC frame check sequence (CRC-16/X.25), as sent: low byte first."""
    crc = 0xFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc ^ 0xFFFF


def with_fcs(frame: bytes) -> bytes:
    return frame + fcs16(frame).to_bytes(2, "little")


class FrameTransport(abc.ABC):
    """One frame in, one frame out; ``on_frame``/``on_lost`` are set by the data link owner."""

    def __init__(self) -> None:
        self.on_frame: OnFrame = lambda frame: None
        self.on_lost: OnLost = lambda reason: None

    async def open(self) -> None: ...

    @abc.abstractmethod
    def send(self, frame: bytes) -> None:
        """Queue one frame for the wire."""

    async def close(self) -> None: ...


class FdFrameTransport(FrameTransport):
    """A descriptor that keeps frame boundaries: a DAHDI D-channel or a SOCK_SEQPACKET socket.

    DAHDI semantics: every read ends with 2 FCS bytes and every write carries 2 more bytes than
    the frame (the hardware fills in the real FCS), so 2 bytes are stripped and added here.
    """

    def __init__(self, fd: int | None = None, *, path: str | None = None, fcs: bool = True,
                 sock: socket.socket | None = None) -> None:
        super().__init__()
        self._sock, self._path, self._fd, self._fcs = sock, path, fd, fcs
        self._owned = False

    async def open(self) -> None:
        if self._sock is not None:
            self._sock.setblocking(False)
            self._fd = self._sock.fileno()
        elif self._path is not None:
            try:
                self._fd = os.open(self._path, os.O_RDWR | os.O_NONBLOCK)
            except OSError as exc:
                raise ConnectionError(f"cannot open D-channel device {self._path}: "
                                      f"{exc.strerror}") from exc
            self._owned = True
        else:
            os.set_blocking(self._fd, False)
        asyncio.get_running_loop().add_reader(self._fd, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self._fd, 4096) if self._sock is None else self._sock.recv(4096)
        except BlockingIOError:
            return
        except OSError as exc:
            self._lost(Msg("read failed: {error}", error=os_reason(exc)))
            return
        if not data:
            self._lost(Msg("peer closed the D-channel"))
            return
        if self._fcs:
            if len(data) < 3:
                return
            data = data[:-2]
        self.on_frame(data)

    def _lost(self, reason: str) -> None:
        if self._fd is not None:
            asyncio.get_running_loop().remove_reader(self._fd)
        self.on_lost(reason)

    def send(self, frame: bytes) -> None:
        data = with_fcs(frame) if self._fcs else frame
        try:
            if self._sock is not None:
                self._sock.send(data)
            else:
                os.write(self._fd, data)
        except OSError as exc:
            log.warning("e1.transport.write_failed", error=str(exc))

    async def close(self) -> None:
        if self._fd is not None:
            try:
                asyncio.get_running_loop().remove_reader(self._fd)
            except (ValueError, OSError):
                pass
        if self._sock is not None:
            self._sock.close()
        elif self._owned and self._fd is not None:
            os.close(self._fd)
        self._fd = None


class HdlcFramer:
    """Async HDLC (RFC 1662 style): 0x7E flags, 0x7D escapes, FCS-16; bad frames are dropped."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._escape = False
        self.bad_frames = 0

    def feed(self, data: bytes) -> list[bytes]:
        frames = []
        for b in data:
            if b == 0x7E:
                if len(self._buf) >= 3 and fcs16(bytes(self._buf[:-2])) == \
                        int.from_bytes(self._buf[-2:], "little"):
                    frames.append(bytes(self._buf[:-2]))
                elif self._buf:
                    self.bad_frames += 1
                self._buf.clear()
                self._escape = False
            elif b == 0x7D:
                self._escape = True
            else:
                self._buf.append(b ^ 0x20 if self._escape else b)
                self._escape = False
        return frames

    @staticmethod
    def encode(frame: bytes) -> bytes:
        out = bytearray([0x7E])
        for b in with_fcs(frame):
            out += bytes([0x7D, b ^ 0x20]) if b in (0x7E, 0x7D) or b < 0x20 else bytes([b])
        out.append(0x7E)
        return bytes(out)


class _StreamProtocol(asyncio.Protocol):
    """Byte stream -> frames through a framer function; never raises in data_received."""

    def __init__(self, owner: "StreamFrameTransport") -> None:
        self.owner = owner

    def connection_made(self, transport) -> None:
        self.owner._transport = transport

    def data_received(self, data: bytes) -> None:
        for frame in self.owner._split(data):
            self.owner.on_frame(frame)

    def connection_lost(self, exc) -> None:
        self.owner._transport = None
        self.owner._closed.set()
        self.owner.on_lost(Msg("connection lost: {error}", error=os_reason(exc)) if exc
                           else Msg("connection closed"))


class StreamFrameTransport(FrameTransport):
    """Frames over a byte stream: TCP with a 2-byte length prefix, or serial async HDLC."""

    def __init__(self, kind: str, *, host: str = "127.0.0.1", port: int = 0,
                 device: str = "", baudrate: int = 115200, sock: socket.socket | None = None):
        super().__init__()
        if kind not in ("tcp", "serial"):
            raise ValueError(f"unknown stream transport {kind!r}")
        self.kind, self.host, self.port, self.device = kind, host, port, device
        self.baudrate, self._sock = baudrate, sock
        self._transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._hdlc = HdlcFramer()
        self._closed = asyncio.Event()

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        if self.kind == "serial":
            import serial_asyncio_fast
            await serial_asyncio_fast.create_serial_connection(
                loop, lambda: _StreamProtocol(self), self.device, baudrate=self.baudrate)
        elif self._sock is not None:
            await loop.create_connection(lambda: _StreamProtocol(self), sock=self._sock)
        else:
            await loop.create_connection(lambda: _StreamProtocol(self), self.host, self.port)

    def protocol(self) -> asyncio.Protocol:
        """The asyncio protocol for a connection accepted by a server."""
        return _StreamProtocol(self)

    def _split(self, data: bytes) -> list[bytes]:
        if self.kind == "serial":
            return self._hdlc.feed(data)
        self._buf += data
        frames = []
        while len(self._buf) >= 2:
            n = int.from_bytes(self._buf[:2], "big")
            if len(self._buf) < 2 + n:
                break
            frames.append(bytes(self._buf[2:2 + n]))
            del self._buf[:2 + n]
        return frames

    def send(self, frame: bytes) -> None:
        if self._transport is None or self._transport.is_closing():
            return
        if self.kind == "serial":
            self._transport.write(HdlcFramer.encode(frame))
        else:
            self._transport.write(len(frame).to_bytes(2, "big") + frame)

    async def close(self) -> None:
        if self._transport is not None:
            self.on_lost = lambda reason: None
            self._transport.close()
            try:  # the transport reports connection_lost from a task of its own
                await asyncio.wait_for(self._closed.wait(), 2.0)
            except asyncio.TimeoutError:
                pass
            self._transport = None
