"""Injected time: everything that waits or timestamps takes a clock."""
from __future__ import annotations

import asyncio
import time


class Clock:
    """Monotonic clock, optionally scaled: simulated seconds run ``scale`` times faster."""

    virtual = False  # True on a VirtualTimeLoop: no real-time work (audio) may be tied to it

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


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose time jumps to the next timer when nothing is ready to run.

    Simulated minutes and hours of a campaign run as fast as the work in them, and the same
    way on a loaded machine as on an idle one. Local sockets and socketpairs deliver at once,
    so an idle loop never skips over data in flight. A pty does not (its line discipline
    delivers on a kernel work queue): simulated modems go over TCP here. Work handed to a thread
    (``run_in_executor``) is waited for in real time before the clock moves on.
    """

    def __init__(self, start: float = 0.0) -> None:
        super().__init__()
        self._virtual = start
        self._in_threads = 0
        real = self._selector
        loop = self

        class _Selector:
            def __getattr__(self, name):
                return getattr(real, name)

            def select(self, timeout=None):
                events = real.select(0)
                if events or timeout == 0:
                    return events
                if loop._in_threads or timeout is None:
                    # A thread's result or outside I/O is awaited: really wait (bounded).
                    events = real.select(0.05 if timeout is None else min(timeout, 0.05))
                    if events or loop._in_threads or timeout is None:
                        return events
                loop._virtual += timeout
                return []

        self._selector = _Selector()

    def time(self) -> float:
        return self._virtual

    def run_in_executor(self, executor, func, *args):
        self.begin_thread_work()
        fut = super().run_in_executor(executor, func, *args)
        fut.add_done_callback(lambda _: self.end_thread_work())
        return fut

    def begin_thread_work(self) -> None:
        """Work handed to a thread of one's own (the store's writer): time waits for it."""
        self._in_threads += 1

    def end_thread_work(self) -> None:
        self._in_threads -= 1


class VirtualClock(Clock):
    """The clock of a :class:`VirtualTimeLoop`: loop seconds, and a wall time that follows."""

    virtual = True

    def __init__(self, loop: asyncio.AbstractEventLoop, wall0: float) -> None:
        self.scale = 1.0
        self._loop = loop
        self._t0 = loop.time()
        self._wall0 = wall0

    def now(self) -> float:
        return self._loop.time() - self._t0

    def wall(self) -> float:
        return self._wall0 + self.now()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def real(self, seconds: float) -> float:
        return seconds


def run_virtual(main, *, wall0: float):
    """Run ``main(clock)`` (a coroutine function) on a fresh virtual-time loop; its result."""
    loop = VirtualTimeLoop()
    try:
        clock = VirtualClock(loop, wall0)
        return loop.run_until_complete(main(clock))
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()
