"""Simulated hardware: GSM modules, the E1 network side, the debtors and their voices."""
from __future__ import annotations

import asyncio
import signal


async def until_signalled() -> None:
    """Serve until SIGINT or SIGTERM: how a simulator in its own process is stopped."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
