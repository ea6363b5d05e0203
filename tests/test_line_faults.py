"""Our faults are never the debtor's: through the real drivers, their simulators and the line
manager, a line failing under a call is a line fault, and a release without a cause after a
short ring is a failed call, not "no answer"."""
from __future__ import annotations

import asyncio

import pytest

from firmware.clock import Clock, run_virtual
from firmware.e1.profile import spans_from_profile
from firmware.gsm.dialects import DIALECTS
from firmware.gsm.driver import GsmModule
from firmware.lineapi import (CallProgress, CallReleased, CallStage, InboundCall, LineStatus,
                              Outcome)
from firmware.linemanager import LineManager
from firmware.sim.modem import SimModem
from firmware.sim.population import Population
from tests.gsmsim import population, profile_for

WALL0 = 1_764_000_000.0


class Events:
    def __init__(self) -> None:
        self.items: list = []

    def __call__(self, ev) -> None:
        self.items.append(ev)

    async def wait(self, pred, within_s: float = 120.0):
        for _ in range(int(within_s / 0.05)):
            for ev in self.items:
                if pred(ev):
                    return ev
            await asyncio.sleep(0.05)
        raise AssertionError(f"no such event in {within_s} s: {self.items[-5:]}")


def _alerting(ev) -> bool:
    return isinstance(ev, CallProgress) and ev.stage == CallStage.ALERTING


def _released(ev) -> bool:
    return isinstance(ev, CallReleased)


async def _ringing(drivers, clock, line: str) -> tuple[LineManager, Events]:
    """The line manager over real drivers, a call placed on ``line`` and ringing."""
    lines = LineManager(drivers, clock)
    events = Events()
    lines.subscribe(events)
    await lines.start()
    for _ in range(600):
        if lines.free_lines():
            break
        await asyncio.sleep(0.1)
    await lines.dial(line, "+79001234567", call_id="c1")
    await events.wait(_alerting)
    return lines, events


async def _gsm_call(clock, kind: str, action, *, ceer: bool = True, **pop) -> CallReleased:
    sim = SimModem("m0", DIALECTS["sim800"], population(kind, **pop), clock, seed=3)
    sim.ceer_supported = ceer
    path = await sim.start_tcp()
    drv = GsmModule("gsm0", path, profile_for("sim800", health_interval_s=5), clock)
    lines, events = await _ringing([drv], clock, "gsm0")
    try:
        action(sim)
        return await events.wait(_released)
    finally:
        await lines.stop()
        await sim.stop()


def test_a_gsm_module_rebooting_under_a_ringing_call_is_a_line_fault():
    ev = run_virtual(lambda c: _gsm_call(c, "no_answer", lambda sim: sim.inject("reboot"),
                                         ring_mean_s=1.0, no_answer_timeout_s=30.0),
                     wall0=WALL0)
    assert ev.line_fault, ev
    assert ev.outcome not in (Outcome.NO_ANSWER, Outcome.UNREACHABLE, Outcome.CONGESTION)


def test_no_carrier_without_a_cause_after_a_short_ring_is_a_failed_call():
    # The debtor rejects after 3 s of ringing: NO CARRIER, and the module cannot say why
    # (no AT+CEER). Before, this was recorded as "no answer" against the debtor.
    ev = run_virtual(lambda c: _gsm_call(c, "rejected", lambda sim: None, ceer=False,
                                         ring_mean_s=3.0),
                     wall0=WALL0)
    assert ev.outcome == Outcome.FAILED and ev.q850 is None and not ev.line_fault, ev


def test_the_same_release_with_the_cause_from_ceer_is_the_debtors_rejection():
    ev = run_virtual(lambda c: _gsm_call(c, "rejected", lambda sim: None, ceer=True,
                                         ring_mean_s=3.0),
                     wall0=WALL0)
    assert ev.outcome == Outcome.REJECTED and ev.q850 == 21, ev


async def _e1_link_lost_under_a_call(clock) -> CallReleased:
    doc = {"driver": "e1", "spans": [{"name": "e1-0", "transport": "tcp",
                                      "address": "127.0.0.1:1"}]}
    ringing = Population(answer_prob=0.0, busy_prob=0, unreachable_prob=0, rejected_prob=0,
                         invalid_prob=0, ring_mean_s=1.0, ring_sd_s=0.1,
                         no_answer_timeout_s=50.0, seed=5)
    [span] = spans_from_profile(doc, simulate=True, clock=clock, population=ringing,
                                sim_transport="socketpair")
    lines, events = await _ringing([span], clock, "e1-0/1")
    try:
        span.simulator.fault_link_down(15)
        released = await events.wait(_released)
        # The span comes back by itself once the D-channel answers again.
        n = len(events.items)
        for _ in range(1200):
            if any(isinstance(ev, LineStatus) and ev.in_service for ev in events.items[n:]):
                break
            await asyncio.sleep(0.05)
        assert lines.free_lines(), "the span did not come back"
        return released
    finally:
        await lines.stop()


def test_an_e1_d_channel_loss_under_a_call_is_a_line_fault():
    ev = run_virtual(_e1_link_lost_under_a_call, wall0=WALL0)
    assert ev.line_fault, ev
    assert ev.outcome not in (Outcome.NO_ANSWER, Outcome.UNREACHABLE, Outcome.CONGESTION)


async def _sim_removed_under_a_ringing_call(clock, dialect: str, transport: str):
    """The real driver on the simulator: the SIM is pulled while the debtor's phone rings.

    As real modules do, ``NO CARRIER`` (or Huawei's ``^CEND``) comes first, with a stale or
    meaningless cause from ``AT+CEER``; the SIM-state report follows seconds later (Sierra's
    notes: ``+CREG: 0`` up to 15 s after), while ``AT+CPIN?`` already answers ``+CME ERROR: 10``.
    """
    sim = SimModem("m0", DIALECTS[dialect], population("no_answer", ring_mean_s=1.0,
                                                       no_answer_timeout_s=30.0), clock, seed=3)
    sim.sim_urc_delay_s = 5.0
    path = await (sim.start() if transport == "pty" else sim.start_tcp())
    drv = GsmModule("gsm0", path, profile_for(dialect, health_interval_s=5,
                                              command_timeout_s=3.0), clock)
    lines, events = await _ringing([drv], clock, "gsm0")
    try:
        sim.inject("sim_removed")
        released = await events.wait(_released)
        status = await events.wait(lambda ev: isinstance(ev, LineStatus) and not ev.in_service)
        return released, status
    finally:
        await lines.stop()
        await sim.stop()


def _assert_a_line_fault(released, status) -> None:
    assert released.line_fault, released
    assert released.outcome == Outcome.FAILED, released
    assert "SIM" in released.reason, released
    assert "SIM" in status.reason, status


@pytest.mark.parametrize("dialect", ["sim800", "sim7600", "huawei"])
def test_a_sim_removed_under_a_ringing_call_is_a_line_fault_not_the_debtors(dialect):
    # A ser2net-style TCP port: delivered at once, so virtual time is exact.
    _assert_a_line_fault(*run_virtual(
        lambda c: _sim_removed_under_a_ringing_call(c, dialect, "tcp"), wall0=WALL0))


async def test_the_same_on_a_pty_as_a_usb_modem_in_scaled_time():
    # A pty's line discipline delivers on a kernel work queue, not at once: scaled real time.
    _assert_a_line_fault(*await _sim_removed_under_a_ringing_call(Clock(2.0), "sim800", "pty"))


def test_a_failing_event_sink_is_logged_and_the_others_still_hear_the_event():
    """One subscriber's bug (a recorder whose database is busy, say) must not take the call
    event from the dialer, nor break the line manager's own bookkeeping."""
    from structlog.testing import capture_logs

    lm = LineManager([], Clock())
    heard = Events()

    def broken(ev) -> None:
        raise RuntimeError("database is locked")

    lm.subscribe(broken)
    lm.subscribe(heard)
    ev = CallProgress("e1-0/1", "c1", CallStage.BRIDGED, 0.0)
    with capture_logs() as logs:
        lm._emit(ev)
    assert heard.items == [ev]
    failed = [e for e in logs if e["event"] == "line_event_sink_failed"]
    assert failed and failed[0]["kind"] == "CallProgress" and failed[0]["log_level"] == "error"


async def _a_caller_waits_behind_our_call(clock):
    sim = SimModem("m0", DIALECTS["sim800"], population("no_answer", ring_mean_s=1.0,
                                                       no_answer_timeout_s=60.0), clock, seed=3)
    path = await sim.start_tcp()
    drv = GsmModule("gsm0", path, profile_for("sim800", health_interval_s=5,
                                              command_timeout_s=3.0), clock)
    lines, events = await _ringing([drv], clock, "gsm0")
    try:
        sim.ring_inbound("89161234567")  # a debtor calls the SIM while it rings out
        released = await events.wait(_released)
        return released, [ev for ev in events.items if isinstance(ev, InboundCall)], sim
    finally:
        await lines.stop()
        await sim.stop()


def test_a_caller_waiting_behind_our_call_is_not_offered_and_our_call_goes_on():
    released, offered, sim = run_virtual(_a_caller_waits_behind_our_call, wall0=WALL0)
    assert offered == []  # not offered on a line that is busy with our own call
    assert released.call_id == "c1" and released.outcome == Outcome.NO_ANSWER, released
    assert not released.line_fault and [r.fate for r in sim.inbound_records] == ["waiting"]
