"""systemd's notify protocol (READY, STATUS, WATCHDOG) and the event loop's lag.

The watchdog ping is sent from a task on the event loop: when the loop is stuck the pings stop
and systemd (``WatchdogSec=``) restarts the box. The same task measures how late the loop wakes.
"""
from __future__ import annotations

import asyncio
import os
import socket
from collections import deque

import structlog

log = structlog.get_logger(__name__)


def notify(message: str) -> bool:
    """Send one notification to systemd; False when not run by systemd (no NOTIFY_SOCKET)."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return False
    if path.startswith("@"):
        path = "\0" + path[1:]  # abstract namespace
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.setblocking(False)
            s.sendto(message.encode(), path)
        return True
    except OSError as exc:
        log.warning("sd_notify_failed", error=str(exc))
        return False


def watchdog_interval_s() -> float | None:
    """systemd's watchdog period (``WATCHDOG_USEC``) when it is meant for this process."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or not usec.isdigit() or int(usec) <= 0:
        return None
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return None
    return int(usec) / 1e6


class LoopLag:
    """How late the event loop wakes a sleeper: last, worst and percentiles of recent samples."""

    def __init__(self, samples: int = 1200) -> None:
        self.samples: deque[float] = deque(maxlen=samples)
        self.last = 0.0
        self.worst = 0.0

    def add(self, lag_s: float) -> None:
        lag_s = max(0.0, lag_s)
        self.samples.append(lag_s)
        self.last = lag_s
        self.worst = max(self.worst, lag_s)

    def percentile(self, q: float) -> float:
        if not self.samples:
            return 0.0
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def heartbeat(lag: LoopLag, *, period_s: float = 0.5,
                    watchdog_s: float | None = None) -> None:
    """Measure loop lag every ``period_s``; ping systemd's watchdog at half its period."""
    loop = asyncio.get_running_loop()
    ping_every = watchdog_s / 2 if watchdog_s else None
    if watchdog_s:
        period_s = min(period_s, watchdog_s / 4)
    last_ping = loop.time()
    if ping_every:
        notify("WATCHDOG=1")
    while True:
        due = loop.time() + period_s
        await asyncio.sleep(period_s)
        now = loop.time()
        lag.add(now - due)
        if ping_every and now - last_ping >= ping_every - period_s:
            notify("WATCHDOG=1")
            last_ping = now
