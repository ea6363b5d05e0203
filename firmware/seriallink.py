"""Open a byte link to a device: a serial port, or a ``socket://``/``tcp://`` bridge (ser2net)."""
from __future__ import annotations

import asyncio
from typing import Callable
from urllib.parse import urlsplit

import serial
import serial_asyncio_fast

from firmware.errors import UserError


async def open_link(url: str, protocol_factory: Callable[[], asyncio.Protocol], *,
                    baud: int = 115200, rtscts: bool = False
                    ) -> tuple[asyncio.Transport, asyncio.Protocol]:
    """Connect ``protocol_factory()`` to ``url``; raise UserError saying what failed."""
    loop = asyncio.get_running_loop()
    if url.startswith(("socket://", "tcp://")):
        parts = urlsplit(url)
        if not parts.hostname or not parts.port:
            raise UserError(f"{url}: expected socket://HOST:PORT")
        try:
            return await loop.create_connection(protocol_factory, parts.hostname, parts.port)
        except OSError as exc:
            raise UserError(f"{url}: cannot connect: {exc.strerror or exc}") from None
    try:
        return await serial_asyncio_fast.create_serial_connection(
            loop, protocol_factory, url, baudrate=baud, rtscts=rtscts)
    except (serial.SerialException, OSError) as exc:
        raise UserError(f"{url}: cannot open serial port: {exc}") from None
