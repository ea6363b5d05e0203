"""E1 glare resolved as the line core says: the inbound call wins the channel, our outbound
call ends as a line fault (not the debtor's doing) and the controller dials again elsewhere."""
from __future__ import annotations

import asyncio

from cext import linestate_codes as C
from firmware.clock import run_virtual
from firmware.driverapi import HwReport
from firmware.e1.profile import spans_from_profile
from firmware.lineapi import CallProgress, CallReleased, CallStage, InboundCall, Outcome
from firmware.linemanager import LineManager
from firmware.sim.population import Population
from tests.test_line_faults import WALL0, Events

ANSWERING = dict(answer_prob=1.0, busy_prob=0, unreachable_prob=0, rejected_prob=0,
                 invalid_prob=0, ring_mean_s=2.0, ring_sd_s=0.1, talk_mean_s=20.0,
                 talk_sd_s=1.0, seed=5)


async def _glare_through_the_line_manager(clock):
    doc = {"driver": "e1", "spans": [{"name": "e1-0", "transport": "tcp",
                                      "address": "127.0.0.1:1"}]}
    [span] = spans_from_profile(doc, simulate=True, clock=clock,
                                population=Population(**ANSWERING), sim_transport="socketpair")
    lines = LineManager([span], clock)
    events = Events()
    lines.subscribe(events)
    await lines.start()
    try:
        for _ in range(600):
            if len(lines.free_lines()) == 30:
                break
            await asyncio.sleep(0.1)
        sim = span.simulator
        theirs = sim.originate("89161234567", timeslot=1, talk_s=30)
        await lines.dial("e1-0/1", "+79001234567", call_id="ours")  # crosses it
        ours = await events.wait(lambda ev: isinstance(ev, CallReleased) and
                                 ev.call_id == "ours")
        offered = await events.wait(lambda ev: isinstance(ev, InboundCall))
        await lines.answer(offered.call_id)
        await events.wait(lambda ev: isinstance(ev, CallProgress) and
                          ev.call_id == offered.call_id and ev.stage == CallStage.ANSWERED)
        # The controller dials the lead again on another channel: it goes through.
        await lines.dial("e1-0/2", "+79001234567", call_id="again")
        await events.wait(lambda ev: isinstance(ev, CallProgress) and ev.call_id == "again"
                          and ev.stage == CallStage.ANSWERED)
        return ours, offered, theirs, [r for r in sim.records if r.direction == "outbound"]
    finally:
        await lines.stop()


def test_glare_on_e1_the_inbound_call_wins_and_ours_is_a_line_fault():
    ours, offered, theirs, outbound = run_virtual(_glare_through_the_line_manager, wall0=WALL0)
    assert ours.line == "e1-0/1" and ours.q850 == 44, ours
    assert ours.line_fault and ours.outcome == Outcome.FAILED and "glare" in ours.reason, ours
    assert offered.line == "e1-0/1" and offered.caller == "89161234567", offered
    assert theirs.connected, theirs  # the debtor calling in was not lost
    # what the network saw: our crossing SETUP refused (44), the retry answered
    assert [(r.timeslot, r.fate, r.cause) for r in outbound][0] == (1, "channel_unavailable", 44)
    assert outbound[1].timeslot == 2 and outbound[1].connected


class _OneChannel:
    """A driver stand-in for the line manager's own unit test: it records what it is asked."""

    kind, name, ring_timeout_s = "test", "t0", 30.0

    def __init__(self) -> None:
        self.report = None
        self.dialed: list[str] = []
        self.answered = 0

    def channel_names(self) -> list[str]:
        return ["t0"]

    async def start(self, report) -> None:
        self.report = report
        report(HwReport(0, C.EV_HW_IN_SERVICE))

    async def stop(self) -> None:
        pass

    async def dial(self, channel, number, *, ring_timeout_s=None) -> None:
        self.dialed.append(number)

    async def hangup(self, channel, cause=16) -> None:
        self.report(HwReport(0, C.EV_HW_RELEASED))

    async def answer(self, channel) -> None:
        self.answered += 1
        self.report(HwReport(0, C.EV_HW_ANSWER))

    async def bridge(self, channel, position) -> None:
        pass

    def health(self, channel) -> dict:
        return {}


async def _glare_before_the_dial_reaches_the_hardware(clock):
    drv = _OneChannel()
    lines = LineManager([drv], clock)
    events = Events()
    lines.subscribe(events)
    await lines.start()
    try:
        await lines.dial("t0", "+79001234567", call_id="ours")  # seized; dial not yet sent
        drv.report(HwReport(0, C.EV_HW_INBOUND, caller="+79161234567"))
        await asyncio.sleep(0.1)
        offered = next(ev for ev in events.items if isinstance(ev, InboundCall))
        await lines.answer(offered.call_id)
        await asyncio.sleep(0.1)
        return drv, events.items, offered, lines.state("t0")
    finally:
        await lines.stop()


def test_glare_while_seized_hands_the_line_to_the_inbound_call():
    drv, items, offered, state = run_virtual(_glare_before_the_dial_reaches_the_hardware,
                                             wall0=WALL0)
    [ours] = [ev for ev in items if isinstance(ev, CallReleased) and ev.call_id == "ours"]
    assert ours.q850 == 44 and ours.line_fault, ours
    assert ours.outcome == Outcome.FAILED
    assert offered.caller == "+79161234567" and offered.call_id != "ours"
    assert drv.dialed == []  # the hardware was never asked to dial over the inbound call
    assert drv.answered == 1 and state == "answered"
