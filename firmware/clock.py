"""Injected time: everything that waits or timestamps takes a clock."""
from __future__ import annotations

import asyncio
import time


class Clock:
    """Monotonic clock, optionally scaled: simulated seconds run ``scale`` times faster."""

    def __init__(self, scale: float = 1.0) -> None:
        if scale <= 0:
            raise ValueError(f"clock scale must be positive, got {scale}")
        self.scale = scale
        self._t0 = time.monotonic()

    def now(self) -> float:
        """Simulated seconds since the clock started."""
        return (time.monotonic() - self._t0) * self.scale

    def wall(self) -> float:
        """Unix time for records (not scaled)."""
        return time.time()

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of simulated time."""
        await asyncio.sleep(max(0.0, seconds) / self.scale)

    def real(self, seconds: float) -> float:
        """Real seconds that ``seconds`` of simulated time take."""
        return seconds / self.scale
