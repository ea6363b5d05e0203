"""After a restart of the box, its spans RESTART every interface when the D-channel comes up: a
switch still holding calls from before (T309) clears them, and the channels work at once."""
from __future__ import annotations

import asyncio
import socket

from cext import linestate_codes as codes
from firmware.clock import run_virtual
from firmware.e1.span import E1Span, SpanConfig
from firmware.e1.transports import FdFrameTransport
from firmware.sim.e1_network import NetworkSide
from firmware.sim.population import Population
from tests.test_e1_span import Events, until

TALKING = dict(answer_prob=1.0, busy_prob=0, unreachable_prob=0, rejected_prob=0,
               invalid_prob=0, ring_mean_s=1.0, ring_sd_s=0.1, talk_mean_s=600.0,
               talk_sd_s=1.0, seed=7)


def _box_span(sim: NetworkSide, clock) -> E1Span:
    async def factory():
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        await sim.attach(FdFrameTransport(sock=theirs))
        return FdFrameTransport(sock=ours)
    return E1Span(SpanConfig(name="e1-0"), factory, clock=clock)


async def _in_service(span: E1Span, ev: Events) -> None:
    await until(lambda: ev.count(codes.EV_HW_IN_SERVICE) >= 30, 60)


async def _restart_with_calls_up(clock, *, restart: bool, refuse_all: bool = False):
    sim = NetworkSide(Population(**TALKING), clock=clock, name="switch")
    sim.refuse_restart_all = refuse_all
    sim.t309_s = 90.0  # ETSI's T309: the switch holds active calls 90 s over a D-channel loss
    before = _box_span(sim, clock)
    ev = Events()
    await before.start(ev)
    await _in_service(before, ev)
    for ch in (0, 1):
        await before.dial(ch, f"8495000000{ch}")
    await until(lambda: sum(r.connected for r in sim.records) == 2, 30)
    await before.stop()  # the box dies (power, watchdog): nothing is cleared on the wire
    await asyncio.sleep(5)  # and is back within T309
    held = sim.active_calls()
    after = _box_span(sim, clock)
    if not restart:
        after.link.on_up = after._restarted  # the old behaviour: channels up, no RESTART
    ev = Events()
    await after.start(ev)
    try:
        await _in_service(after, ev)
        await after.dial(0, "84950000009")  # timeslot 1, where the old call was
        await until(lambda: any(r.channel == 0 and r.event in (codes.EV_HW_ANSWER,
                                                                codes.EV_HW_RELEASED)
                                for r in ev.all), 30)
        got = [(codes.EVENT_NAMES[r.event], r.cause) for r in ev.all if r.channel == 0 and
               r.event not in (codes.EV_HW_IN_SERVICE, codes.EV_HW_OUT_OF_SERVICE)]
        return held, got, list(sim.restarts_received), sim.records
    finally:
        await after.stop()
        await sim.close()


def test_after_a_restart_the_span_restarts_all_interfaces_and_the_old_calls_are_cleared():
    held, got, restarts, records = run_virtual(
        lambda c: _restart_with_calls_up(c, restart=True), wall0=1_764_000_000.0)
    assert held == 2  # the switch still held both calls of the box that died
    assert restarts == [7, 7]  # one RESTART of all interfaces at each start
    old = [r for r in records if r.number in ("84950000000", "84950000001")]
    assert all(r.cleared_by == "restart" for r in old), old
    assert ("hw_answer", 0) in got, got  # the channel works at once


def test_a_switch_that_refuses_to_restart_all_interfaces_has_each_channel_restarted():
    """Class 7 refused (STATUS, cause 100): the span RESTARTs its channels one by one (class 0),
    as chan_dahdi does, so the calls the dead box left are cleared there too."""
    held, got, restarts, records = run_virtual(
        lambda c: _restart_with_calls_up(c, restart=True, refuse_all=True),
        wall0=1_764_000_000.0)
    assert held == 2
    assert restarts == ([7] + [0] * 30) * 2  # at each start: all refused, then each channel
    old = [r for r in records if r.number in ("84950000000", "84950000001")]
    assert all(r.cleared_by == "restart" for r in old), old
    assert ("hw_answer", 0) in got, got


def test_without_the_restart_the_first_call_on_a_held_channel_is_lost():
    """What the RESTART prevents (the behaviour before it): the switch still holds the channel
    and the old call reference, so the new SETUP is refused or never answered (T303)."""
    held, got, restarts, _ = run_virtual(
        lambda c: _restart_with_calls_up(c, restart=False), wall0=1_764_000_000.0)
    assert held == 2 and restarts == [7]
    assert ("hw_answer", 0) not in got and got[-1][0] == "hw_released", got


async def _box_gone_for_good(clock):
    sim = NetworkSide(Population(**TALKING), clock=clock, name="switch")
    sim.keeps_line = True  # the card or relay keeps the E1 up: a dead box is silence on layer 2
    sim.t309_s = 90.0
    box = _box_span(sim, clock)
    ev = Events()
    await box.start(ev)
    await _in_service(box, ev)
    await box.dial(0, "84950000000")
    await until(lambda: sim.records and sim.records[0].connected, 30)
    await box.stop()  # killed: nothing said on the wire
    gone = clock.now()
    await asyncio.sleep(9)
    talking = sim.active_calls(), sim.link.is_up
    await until(lambda: not sim.link.is_up, 30)
    link_down = clock.now() - gone
    await until(lambda: sim.active_calls() == 0, 200)
    cleared = clock.now() - gone
    await sim.close()
    return talking, link_down, cleared, sim.records[0]


def test_a_box_that_never_comes_back_is_found_gone_by_the_network_s_own_timers():
    """The network of e1_serve: the call goes on; Q.921 finds the box gone (T203, then T200 x
    N200: 13 s) and Q.931 holds the active call for T309 before clearing it."""
    talking, link_down, cleared, rec = run_virtual(_box_gone_for_good, wall0=1_764_000_000.0)
    assert talking == (1, True)
    assert 12.5 <= link_down <= 14.0, link_down
    assert abs(cleared - link_down - 90) < 0.5 and rec.cleared_by == "link", (cleared, rec)
