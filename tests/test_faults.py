"""Faults recovered without restarting the box, through the real drivers and simulators.

A GSM module that stops answering AT, a serial port that vanishes and comes back (a USB
re-enumeration behind a /dev/serial/by-id link), and an E1 link that drops: the line goes out of
service, the call it carried is not charged to the debtor, the other lines go on dialing, and the
line comes back in service by itself, in the same process.
"""
from __future__ import annotations

import asyncio
import os

import pytest

from dialbox.appliance import Appliance, Settings
from firmware.clock import Clock
from firmware.gsm.dialects import DIALECTS
from firmware.lineapi import CallReleased, LineStatus
from firmware.sim.modem import SimModem
from firmware.sim.population import Population
from tests.gsmsim import until

# Outcomes that say something about the debtor: a fault of our own line must never be one.
DEBTOR_OUTCOMES = ("busy", "no_answer", "rejected", "unreachable", "invalid_number")


class Events:
    """Every line event of the box, from now on."""

    def __init__(self, app: Appliance) -> None:
        self.items: list = []
        app.lines.subscribe(self.items.append)

    def status(self, line_prefix: str, up: bool) -> list[LineStatus]:
        return [e for e in self.items if isinstance(e, LineStatus)
                and e.line.startswith(line_prefix) and e.in_service is up]

    def released(self, call_id: str) -> CallReleased | None:
        return next((e for e in self.items if isinstance(e, CallReleased)
                     and e.call_id == call_id), None)


async def _box(tmp_path, clock: Clock | None = None, **kw) -> Appliance:
    settings = dict(simulate=True, data=tmp_path / "d", operators=6, compliance="none",
                    mode="predictive", time_scale=4.0, seed=5)
    settings.update(kw)
    app = Appliance(Settings(**settings), clock=clock)
    await app.start()
    return app


def _line(app: Appliance, name: str):
    return next(ln for ln in app.lines.lines() if ln.name == name)


async def _not_the_debtors(app: Appliance, call_id: str) -> None:
    """The call our line failed is not counted against the debtor."""
    def row():
        return app.store.db.execute("SELECT state, outcome, reason FROM attempts WHERE "
                                    "call_id=?", (call_id,)).fetchone()
    await until(lambda: row() is not None and row()["state"] != "dialing", timeout=10)
    row = row()
    assert row["state"] == "line_fault" or row["outcome"] == "answered", tuple(row)
    assert row["outcome"] not in DEBTOR_OUTCOMES, tuple(row)


async def _call_on(app: Appliance, name: str, sim: SimModem, timeout: float = 90) -> str:
    """A call of the box on line ``name`` that its modem still carries (the fault comes in the
    same turn of the loop: nothing about the call's end is on its way to the box)."""
    await until(lambda: _line(app, name).call_id is not None and sim._call is not None
                and not sim._call.ended, timeout=timeout, step=0.05)
    return _line(app, name).call_id


def _dials(sims) -> int:
    return sum(len(s.records) for s in sims)


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_a_modem_that_stops_answering_is_taken_out_and_comes_back(tmp_path):
    app = await _box(tmp_path, profiles=("sim-gsm-4",))
    try:
        events = Events(app)
        await until(lambda: all(ln.in_service for ln in app.lines.lines()), timeout=30)
        sick = next(s for s in app.sims if s.name == "gsm1")
        others = [s for s in app.sims if s is not sick]
        cut = await _call_on(app, "gsm1", sick)
        sick.inject("silent")  # the module hangs: it reads nothing and says nothing
        await until(lambda: events.status("gsm1", False), timeout=60)
        await until(lambda: events.released(cut) is not None, timeout=30)
        assert events.released(cut).line_fault
        await _not_the_debtors(app, cut)
        dialed = _dials(others)
        await until(lambda: _dials(others) > dialed, timeout=60)  # the others dial on
        sick.clear()  # the module answers again: the driver's recovery brings it back
        await until(lambda: events.status("gsm1", True), timeout=60)
        n = len(sick.records)
        await until(lambda: len(sick.records) > n, timeout=90)  # and it dials again
        assert not [e for e in events.items if isinstance(e, LineStatus)
                    and e.line != "gsm1" and not e.in_service], "another line left service"
        assert not _line(app, "gsm1").reason
    finally:
        await app.stop()


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_a_port_that_vanishes_and_comes_back_is_reopened(tmp_path):
    """The profile names the ports by link, as /dev/serial/by-id does; the modem behind one
    drops off the bus (its pty closes, the link goes) and comes back on a new pty."""
    clock = Clock(4.0)
    pop = dict(answer_prob=0.5, busy_prob=0.2, unreachable_prob=0.1, rejected_prob=0.0,
               invalid_prob=0.0, ring_mean_s=6.0, ring_sd_s=1.0, no_answer_timeout_s=20.0,
               talk_mean_s=20.0, talk_sd_s=5.0)
    sims = [SimModem(f"gsm{i}", DIALECTS["sim800"], Population(**pop, seed=i), clock, seed=i)
            for i in range(3)]
    links = [tmp_path / f"usb-SIMCOM_SIM800-if0{i}-port0" for i in range(3)]
    for sim, link in zip(sims, links):
        os.symlink(await sim.start(), link)
    profile = tmp_path / "shop.yaml"
    profile.write_text(
        "name: shop\ndriver: gsm\ndialect: sim800\nbaud: 115200\nmodules:\n" + "".join(
            f"  - {{name: gsm{i}, port: {link}}}\n" for i, link in enumerate(links)) +
        "limits: {ring_timeout_s: 40}\nhealth_interval_s: 2\ncommand_timeout_s: 3\n",
        encoding="utf-8")
    app = await _box(tmp_path, clock, profiles=(str(profile),), simulate_hardware=False,
                     operators=4)
    try:
        events = Events(app)
        await until(lambda: all(ln.in_service for ln in app.lines.lines()), timeout=30)
        cut = await _call_on(app, "gsm2", sims[2])
        sims[2].inject("vanish")
        links[2].unlink()
        await until(lambda: events.status("gsm2", False), timeout=30)
        await until(lambda: events.released(cut) is not None, timeout=30)
        assert events.released(cut).line_fault
        await _not_the_debtors(app, cut)
        dialed = _dials(sims[:2])
        await until(lambda: _dials(sims[:2]) > dialed, timeout=60)
        await asyncio.sleep(3)  # the driver looks for its port meanwhile, without giving up
        assert not app.lines.drivers[2].parked
        os.symlink(await sims[2].start(), links[2])  # plugged back: a new pty behind the link
        await until(lambda: events.status("gsm2", True), timeout=60)
        n = len(sims[2].records)
        await until(lambda: len(sims[2].records) > n, timeout=90)
        assert not [e for e in events.items if isinstance(e, LineStatus)
                    and e.line != "gsm2" and not e.in_service], "another line left service"
    finally:
        await app.stop()
        for sim in sims:
            await sim.stop()


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_an_e1_link_that_drops_takes_its_channels_out_and_back(tmp_path):
    app = await _box(tmp_path, profiles=("sim-gsm-4", "e1-1span"), operators=10)
    try:
        events = Events(app)
        await until(lambda: all(ln.in_service for ln in app.lines.lines()), timeout=30)
        e1 = [ln.name for ln in app.lines.lines() if ln.kind == "e1"]
        span = app.e1_spans[0]
        await until(lambda: span.simulator.active_calls() and
                    any(_line(app, n).call_id for n in e1), timeout=90, step=0.05)
        calls = {n: _line(app, n).call_id for n in e1 if _line(app, n).call_id}
        gsm_dials = _dials(app.sims)
        span.simulator.fault_link_down(20)  # 5 s of real time at this scale
        # The calls the network still carried when the link went (not those it was ending).
        cut = [calls[f"e1-0/{r.timeslot}"] for r in span.simulator.records
               if r.cleared_by == "link" and f"e1-0/{r.timeslot}" in calls]
        assert cut
        await until(lambda: {e.line for e in events.status("e1-0/", False)} == set(e1),
                    timeout=30)
        await until(lambda: all(events.released(c) for c in cut), timeout=30)
        for c in cut:
            assert events.released(c).line_fault
            await _not_the_debtors(app, c)
        await until(lambda: _dials(app.sims) > gsm_dials, timeout=60)  # GSM goes on
        await until(lambda: {e.line for e in events.status("e1-0/", True)} == set(e1),
                    timeout=60)
        before = len(span.simulator.records)
        await until(lambda: len(span.simulator.records) > before, timeout=90)
        assert not [e for e in events.items if isinstance(e, LineStatus)
                    and e.line.startswith("gsm") and not e.in_service], "a GSM line left service"
    finally:
        await app.stop()
