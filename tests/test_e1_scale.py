"""Scale: full spans of simultaneous calls, four spans over TCP, and a link loss under load."""
from __future__ import annotations

import asyncio
from collections import Counter

from cext import linestate_codes as codes
from firmware.clock import run_virtual
from firmware.e1.profile import spans_from_profile
from firmware.sim.e1_network import drive_calls
from firmware.sim.population import Population


def talkers(seed: int) -> Population:
    """Everybody answers within a second or two and talks for a long time."""
    return Population(answer_prob=1.0, busy_prob=0, unreachable_prob=0, rejected_prob=0,
                      invalid_prob=0, ring_mean_s=1.0, ring_sd_s=0.3, talk_mean_s=3000,
                      talk_sd_s=10, seed=seed)


class Board:
    """Per (span, channel) event lists, and how many calls were up at once."""

    def __init__(self) -> None:
        self.events: dict[tuple[str, int], list[tuple[int, int]]] = {}
        self.active = 0
        self.peak = 0

    def reporter(self, span):
        def report(r) -> None:
            self.events.setdefault((span.name, r.channel), []).append((r.event, r.cause))
            if r.event == codes.EV_HW_ANSWER:
                self.active += 1
                self.peak = max(self.peak, self.active)
            elif r.event == codes.EV_HW_RELEASED and (codes.EV_HW_ANSWER, 0) in \
                    self.events[(span.name, r.channel)][-6:]:
                self.active -= 1
        return report

    def count(self, event: int) -> int:
        return sum(1 for evs in self.events.values() for e, _ in evs if e == event)


async def until(cond, within_s: float = 20.0) -> None:
    for _ in range(int(within_s / 0.01)):
        if cond():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached in time")


def profile(n: int) -> dict:
    return {"driver": "e1", "spans": [{"name": f"e1-{i}", "transport": "tcp",
                                       "address": "127.0.0.1:1"} for i in range(n)]}


async def start(spans, board: Board) -> None:
    for span in spans:
        await span.start(board.reporter(span))
    await until(lambda: board.count(codes.EV_HW_IN_SERVICE) == 30 * len(spans))


WALL0 = 1_764_000_000.0


def test_thirty_simultaneous_calls_on_one_span():
    # Virtual time: Q.921 and Q.931 timers run as specified, whatever the machine's load.
    run_virtual(_thirty_simultaneous_calls_on_one_span, wall0=WALL0)


async def _thirty_simultaneous_calls_on_one_span(clock):
    spans = spans_from_profile(profile(1), simulate=True, clock=clock, population=talkers(1),
                               sim_transport="socketpair")
    board = Board()
    try:
        await start(spans, board)
        [span] = spans
        for ch in range(30):
            await span.dial(ch, f"8495{ch:07d}")
        await until(lambda: board.active == 30)
        assert span.simulator.active_calls() == 30 and len(span.calls) == 30
        for ch in range(30):
            await span.hangup(ch)
        await until(lambda: board.count(codes.EV_HW_RELEASED) == 30)
        await until(lambda: span.simulator.active_calls() == 0)
        assert board.peak == 30 and not span.calls
        assert Counter(r.cleared_by for r in span.simulator.records) == {"user": 30}
    finally:
        for span in spans:
            await span.stop()


def test_one_hundred_twenty_calls_on_four_spans_over_tcp():
    run_virtual(_one_hundred_twenty_calls_on_four_spans_over_tcp, wall0=WALL0)


async def _one_hundred_twenty_calls_on_four_spans_over_tcp(clock):
    spans = spans_from_profile(profile(4), simulate=True, clock=clock, population=talkers,
                               sim_transport="tcp")
    board = Board()
    try:
        await start(spans, board)
        for span in spans:
            for ch in range(30):
                await span.dial(ch, f"8{span.name[-1]}95{ch:07d}")
        await until(lambda: board.active == 120, 40)
        for span in spans:
            for ch in range(30):
                await span.hangup(ch)
        await until(lambda: board.count(codes.EV_HW_RELEASED) == 120, 40)
        # The network forgets each call when our RELEASE COMPLETE reaches it.
        await until(lambda: all(s.simulator.active_calls() == 0 for s in spans))
        assert board.peak == 120
        for span in spans:
            assert not span.calls
            assert len(span.simulator.records) == 30
            assert all(r.connected for r in span.simulator.records)
    finally:
        for span in spans:
            await span.stop()


def test_link_loss_under_load_releases_all_and_the_span_recovers():
    # Q.921 timers run in virtual time: a busy CPU can never look like a dead link.
    run_virtual(_link_loss_under_load_releases_all_and_the_span_recovers, wall0=WALL0)


async def _link_loss_under_load_releases_all_and_the_span_recovers(clock):
    spans = spans_from_profile(profile(1), simulate=True, clock=clock, population=talkers(3),
                               sim_transport="socketpair")
    board = Board()
    try:
        await start(spans, board)
        [span] = spans
        for ch in range(30):
            await span.dial(ch, f"8495{ch:07d}")
        await until(lambda: board.active == 30)
        span.simulator.fault_link_down(15)
        await until(lambda: board.count(codes.EV_HW_RELEASED) == 30, 20)
        released = [evs for evs in board.events.values()]
        assert all((codes.EV_HW_RELEASE, 41) in evs for evs in released)  # recorded cause
        assert board.count(codes.EV_HW_OUT_OF_SERVICE) == 60
        assert span.stats["link_losses"] == 1
        # Back in service by itself once the D-channel answers again, and usable at once.
        await until(lambda: board.count(codes.EV_HW_IN_SERVICE) == 60, 20)
        for ch in range(30):
            await span.dial(ch, f"8496{ch:07d}")
        await until(lambda: board.active == 30)
        assert span.simulator.active_calls() == 30
    finally:
        for span in spans:
            await span.stop()


def test_many_short_calls_through_four_spans_all_accounted_for():
    run_virtual(_many_short_calls_through_four_spans_all_accounted_for, wall0=WALL0)


async def _many_short_calls_through_four_spans_all_accounted_for(clock):
    spans = spans_from_profile(profile(4), simulate=True, clock=clock,
                               population=lambda i: Population(seed=40 + i, ring_mean_s=3,
                                                               talk_mean_s=8, talk_sd_s=3),
                               sim_transport="tcp")
    try:
        results = await drive_calls(spans, 400, clock=clock, timeout_s=20000)
    finally:
        for span in spans:
            await span.stop()
    assert len(results) == 400
    records = [r for span in spans for r in span.simulator.records]
    assert len(records) == 400 and all(r.ended is not None for r in records)
    assert sum(r.outcome == "answered" for r in results) == sum(r.connected for r in records)
