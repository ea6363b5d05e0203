"""Helpers for driver tests: a simulated modem on a pty and the real driver on top of it."""
from __future__ import annotations

import asyncio
import os
from contextlib import asynccontextmanager

from firmware.clock import Clock
from firmware.driverapi import HwReport
from firmware.gsm.dialects import DIALECTS
from firmware.gsm.driver import GsmModule
from firmware.profiles import Profile
from firmware.sim.modem import SimModem
from firmware.sim.population import Population


def population(kind: str, **kw) -> Population:
    """A population where every debtor does ``kind``."""
    rates = dict(answer_prob=0.0, busy_prob=0.0, unreachable_prob=0.0, rejected_prob=0.0,
                 invalid_prob=0.0)
    if kind != "no_answer":
        rates[{"answer": "answer_prob", "busy": "busy_prob", "unreachable": "unreachable_prob",
               "rejected": "rejected_prob", "invalid": "invalid_prob"}[kind]] = 1.0
    base = dict(ring_mean_s=2.0, ring_sd_s=0.0, talk_mean_s=3.0, talk_sd_s=0.0,
                no_answer_timeout_s=4.0, seed=1)
    base.update(kw)
    return Population(**rates, **base)


def profile_for(dialect: str, **kw) -> Profile:
    d = DIALECTS[dialect]
    p = Profile(name=f"test-{dialect}", driver="gsm", source="<test>", dialect=dialect,
                init=d.init, hangup=d.hangup, call_progress=d.call_progress,
                health_interval_s=kw.pop("health_interval_s", 0.5),
                command_timeout_s=kw.pop("command_timeout_s", 1.0),
                bridge_delay_s=kw.pop("bridge_delay_s", 0.1),
                limits={"ring_timeout_s": 10})
    for k, v in kw.items():
        setattr(p, k, v)
    return p


class Recorder:
    """Collects HwReports and lets a test wait for one."""

    def __init__(self) -> None:
        self.reports: list[HwReport] = []
        self._changed = asyncio.Event()

    def __call__(self, r: HwReport) -> None:
        self.reports.append(r)
        self._changed.set()

    def events(self) -> list[int]:
        return [r.event for r in self.reports]

    async def wait_for(self, event: int, timeout: float = 10.0, after: int = 0) -> HwReport:
        async def _wait() -> HwReport:
            while True:
                for r in self.reports[after:]:
                    if r.event == event:
                        return r
                self._changed.clear()
                await self._changed.wait()
        return await asyncio.wait_for(_wait(), timeout)


@asynccontextmanager
async def modem_and_driver(dialect: str = "sim800", kind: str = "answer", *, scale: float = 10.0,
                           start_driver: bool = True, network: tuple[str, str] | None = None,
                           clock: Clock | None = None, link=None, **profile_kw):
    """The simulated modem on a pty and the real driver on it, in scaled time; with ``clock``
    (a virtual-time loop's) over a ser2net-style TCP port, which delivers at once as virtual
    time needs (a pty's line discipline does not). With ``link`` (a path) the driver opens the
    pty through that symlink, as a profile names /dev/serial/by-id/...: a test that unplugs
    the module removes it (a freed /dev/pts/N may be handed to another program's pty)."""
    virtual = clock is not None
    clock = clock or Clock(scale)
    sim = SimModem("m0", DIALECTS[dialect], population(kind), clock, seed=3,
                   **({"network": network} if network else {}))
    path = await (sim.start_tcp() if virtual else sim.start())
    if link is not None:
        os.symlink(path, link)
        path = str(link)
    drv = GsmModule("gsm0", path, profile_for(dialect, **profile_kw), clock)
    rec = Recorder()
    try:
        if start_driver:
            await drv.start(rec)
        yield sim, drv, rec
    finally:
        await drv.stop()
        await sim.stop()


async def until(cond, timeout: float = 10.0, step: float = 0.02) -> None:
    """Wait until ``cond()`` is true (a condition on a simulator seen from outside)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(step)
