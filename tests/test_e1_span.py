"""User-side call control against the simulated network and against a scripted raw network side.

Every test runs on a virtual-time loop: Q.931 and Q.921 timers are exact and the tests do not
depend on the machine's load (they flaked on scaled wall time)."""
from __future__ import annotations

import asyncio
import contextlib
import functools
import socket

import pytest

from cext import linestate_codes as codes
from firmware.clock import VirtualClock, run_virtual
from firmware.e1.lapd import DataLink, Role
from firmware.e1.profile import spans_from_profile
from firmware.e1.q931 import (BearerCapability, CalledNumber, CallingNumber, CallState, Cause,
                              ChannelId, Message, MessageType as MT, RawIE, RestartIndicator,
                              decode_message)
from firmware.e1.span import E1Span, SpanConfig
from firmware.e1.transports import FdFrameTransport
from firmware.lineapi import LineError, Outcome, classify_cause
from firmware.sim.population import Population

EXPECTED = {"answer": Outcome.ANSWERED, "busy": Outcome.BUSY, "no_answer": Outcome.NO_ANSWER,
            "unreachable": Outcome.UNREACHABLE, "rejected": Outcome.REJECTED,
            "invalid": Outcome.INVALID_NUMBER}


class Events:
    def __init__(self) -> None:
        self.all = []

    def __call__(self, r) -> None:
        self.all.append(r)

    def of(self, ch: int, *, status: bool = False) -> list[tuple[str, int]]:
        skip = () if status else (codes.EV_HW_IN_SERVICE, codes.EV_HW_OUT_OF_SERVICE)
        return [(codes.EVENT_NAMES[r.event][3:], r.cause) for r in self.all
                if r.channel == ch and r.event not in skip]

    def count(self, event: int) -> int:
        return sum(1 for r in self.all if r.event == event)


WALL0 = 1_764_000_000.0


async def until(cond, within_s: float = 600.0) -> None:
    """Wait until ``cond()`` holds, at most ``within_s`` seconds of the test's (virtual) time."""
    for _ in range(int(within_s / 0.005)):
        if cond():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not reached in time")


def virtual(test):
    """Run an async test on a virtual-time loop; a ``raw`` argument gets the span against a
    hand-played network, made on that loop."""
    @functools.wraps(test)
    def run(*args, **kw):
        async def main(clock):
            if "raw" in kw:
                async with _raw_span(clock) as made:
                    return await test(*args, **dict(kw, raw=made))
            return await test(*args, **kw)
        return run_virtual(main, wall0=WALL0)
    return run


def _clock() -> VirtualClock:
    return VirtualClock(asyncio.get_running_loop(), WALL0)


def only(kind: str, **durations) -> Population:
    rates = dict(answer_prob=0, busy_prob=0, unreachable_prob=0, rejected_prob=0, invalid_prob=0)
    if kind != "no_answer":
        rates[f"{kind}_prob"] = 1.0
    return Population(seed=5, **rates, **durations)


async def simulated(population: Population, **span):
    clock = _clock()
    doc = {"driver": "e1", "spans": [{"name": "e1-0", "transport": "tcp",
                                      "address": "127.0.0.1:1", **span}]}
    [sp] = spans_from_profile(doc, simulate=True, clock=clock, population=population,
                              sim_transport="socketpair")
    ev = Events()
    await sp.start(ev)
    await until(lambda: ev.count(codes.EV_HW_IN_SERVICE) == len(sp.channel_names())
                - len(span.get("blocked", [])))
    return sp, ev


def test_channel_names_skip_the_d_channel():
    span = E1Span(SpanConfig(name="e1-2"), None)
    names = span.channel_names()
    assert len(names) == 30 and names[0] == "e1-2/1" and names[14] == "e1-2/15"
    assert names[15] == "e1-2/17" and "e1-2/16" not in names


@pytest.mark.parametrize("fate, sequence, cause", [
    ("answer", ["dialing", "proceeding", "alerting", "answer", "release", "released"], 16),
    ("busy", ["dialing", "proceeding", "release", "released"], 17),
    ("no_answer", ["dialing", "proceeding", "alerting", "release", "released"], None),
    ("unreachable", ["dialing", "proceeding", "release", "released"], None),
    ("rejected", ["dialing", "proceeding", "alerting", "release", "released"], 21),
    ("invalid", ["dialing", "proceeding", "release", "released"], 1),
])
@virtual
async def test_each_fate_gives_its_events_and_outcome(fate, sequence, cause):
    span, ev = await simulated(only(fate, ring_mean_s=2, talk_mean_s=3, talk_sd_s=1,
                                    no_answer_timeout_s=10))
    try:
        await span.dial(4, "+74951234567")
        await until(lambda: ev.of(4)[-1:] and ev.of(4)[-1][0] == "released")
        got = ev.of(4)
        assert [e for e, _ in got] == sequence
        released_cause = [c for e, c in got if e == "release"][0]
        if cause is not None:
            assert released_cause == cause
        outcome = classify_cause(released_cause, alerted="alerting" in sequence,
                                 answered="answer" in sequence)
        assert outcome is EXPECTED[fate]
        [rec] = span.simulator.records
        assert (rec.fate, rec.timeslot, rec.number, rec.cause) == (fate, 5, "+74951234567",
                                                                   released_cause)
    finally:
        await span.stop()


@virtual
async def test_outcomes_match_the_recorded_fates_over_many_calls():
    from firmware.sim.e1_network import drive_calls
    clock = _clock()
    doc = {"driver": "e1", "spans": [{"name": "e1-0", "transport": "tcp",
                                      "address": "127.0.0.1:1"}]}
    [span] = spans_from_profile(doc, simulate=True, clock=clock, sim_transport="socketpair",
                                population=Population(seed=21, ring_mean_s=4, talk_mean_s=10,
                                                      busy_prob=0.15, invalid_prob=0.05))
    try:
        results = await drive_calls([span], 60, clock=clock, timeout_s=3000)
    finally:
        await span.stop()
    by_number = {r.number: r for r in results}
    assert len(by_number) == 60
    for rec in span.simulator.records:
        assert by_number[rec.number].outcome == EXPECTED[rec.fate].value, rec
    assert len({r.fate for r in span.simulator.records}) >= 4


@virtual
async def test_inbound_call_is_offered_answered_and_released_by_the_caller():
    span, ev = await simulated(only("answer"))
    try:
        rec = span.simulator.originate("84957770011", "100", timeslot=31, talk_s=2.0)
        await until(lambda: ev.of(29))
        [inbound] = [r for r in ev.all if r.event == codes.EV_HW_INBOUND]
        assert inbound.channel == 29 and inbound.caller == "84957770011"
        assert span.health(29)["call_state"] == "call_received"
        await span.answer(29)
        await until(lambda: ("answer", 0) in ev.of(29))
        await until(lambda: ev.of(29)[-1][0] == "released")
        assert ev.of(29) == [("inbound", 0), ("answer", 0), ("release", 16), ("released", 16)]
        assert rec.connected and rec.cleared_by == "network"
        with pytest.raises(LineError):
            await span.answer(29)
    finally:
        await span.stop()


@virtual
async def test_glare_the_network_wins_the_channel_and_our_call_ends_as_a_line_fault():
    """Our SETUP and the network's cross on timeslot 1. The network side wins (Q.931 5.1.2):
    its call is accepted on the channel and can be answered; ours ends with cause 44 flagged
    as a line fault (the controller dials the lead again elsewhere); nothing is left over."""
    span, ev = await simulated(only("answer", ring_mean_s=1))
    try:
        sim = span.simulator
        inbound = sim.originate("84950000001", timeslot=1, talk_s=5)
        await span.dial(0, "84951112233")  # crosses the network's SETUP for timeslot 1
        await until(lambda: any(r.event == codes.EV_HW_INBOUND for r in ev.all))
        assert ev.of(0)[:4] == [("dialing", 0), ("release", 44), ("released", 44),
                                ("inbound", 0)]
        [ours] = [r for r in ev.all if r.event == codes.EV_HW_RELEASE]
        assert ours.info.get("line_fault") and "glare" in ours.reason
        assert span.stats["glare"] == 1
        outbound = next(r for r in sim.records if r.direction == "outbound")
        assert outbound.fate == "channel_unavailable" and outbound.cause == 44
        await span.answer(0)
        await until(lambda: inbound.connected)
        await until(lambda: ev.of(0)[-1][0] == "released")
        assert ev.of(0)[3:] == [("inbound", 0), ("answer", 0), ("release", 16), ("released", 16)]
        assert inbound.cleared_by == "network" and inbound.talk_s == pytest.approx(5, abs=1)
        assert len(span.calls) == 0 and sim.active_calls() == 0
        await span.dial(0, "84951112233")  # the channel is free again
        await until(lambda: ("answer", 0) in ev.of(0)[7:])
    finally:
        await span.stop()


@virtual
async def test_restart_of_one_channel_and_of_the_interface_releases_calls():
    span, ev = await simulated(only("answer", ring_mean_s=1, talk_mean_s=500, talk_sd_s=1))
    try:
        for ch in range(3):
            await span.dial(ch, f"8495000000{ch}")
        await until(lambda: all(("answer", 0) in ev.of(ch) for ch in range(3)))
        span.simulator.fault_restart(2)  # timeslot 2 = channel 1
        await until(lambda: span.simulator.restart_acks == 1)
        assert ev.of(1)[-2:] == [("release", 41), ("released", 41)]
        assert ev.of(0)[-1] == ("answer", 0)
        span.simulator.fault_restart()
        await until(lambda: span.simulator.restart_acks == 2)
        assert ev.of(0)[-1] == ev.of(2)[-1] == ("released", 41)
        assert not span.calls and span.stats["restarts"] == 2
    finally:
        await span.stop()


@virtual
async def test_our_hangup_clears_with_disconnect_and_reports_only_released():
    span, ev = await simulated(only("no_answer", no_answer_timeout_s=60))
    try:
        await span.dial(7, "84950000077")
        await until(lambda: ("alerting", 0) in ev.of(7))
        await span.hangup(7, 16)
        # It returns once the network released the call, as a module's hangup returns after its
        # OK: a box that stops right after it has the call's end to record (it had not, before).
        assert ev.of(7) == [("dialing", 0), ("proceeding", 0), ("alerting", 0), ("released", 16)]
        [rec] = span.simulator.records
        assert (rec.cleared_by, rec.cause) == ("user", 16)
        await span.hangup(7)  # nothing left: reported free at once
        assert ev.of(7)[-1] == ("released", 0)
    finally:
        await span.stop()


@virtual
async def test_ring_timeout_from_the_profile_ends_a_long_ring():
    span, ev = await simulated(only("no_answer", no_answer_timeout_s=60), ring_timeout_s=5)
    try:
        await span.dial(0, "84950000010")
        await until(lambda: ev.of(0)[-1:] and ev.of(0)[-1][0] == "released")
        assert ev.of(0)[-2:] == [("release", 19), ("released", 19)]
        [rec] = span.simulator.records
        assert rec.cleared_by == "user" and rec.ended - rec.started < 10
    finally:
        await span.stop()


@virtual
async def test_congestion_is_cause_34_and_blocked_channels_are_refused():
    span, ev = await simulated(only("answer"), blocked=[3])
    try:
        span.simulator.fault_congestion()
        await span.dial(0, "84950000001")
        await until(lambda: ev.of(0)[-1:] == [("released", 34)])
        assert ("release", 34) in ev.of(0)
        await span.dial(2, "84950000002")  # timeslot 3 is in maintenance
        assert ev.of(2) == [("release", 44), ("released", 44)]
        oos = [r for r in ev.all if r.channel == 2 and r.event == codes.EV_HW_OUT_OF_SERVICE]
        assert "maintenance" in oos[0].reason
        assert span.health(2)["blocked"] is True
    finally:
        await span.stop()


@virtual
async def test_bridge_is_confirmed_after_a_short_delay():
    span, ev = await simulated(only("answer", ring_mean_s=1, talk_mean_s=100, talk_sd_s=1))
    try:
        await span.dial(5, "84950000005")
        await until(lambda: ("answer", 0) in ev.of(5))
        await span.bridge(5, "op-3")
        await until(lambda: ("bridged", 0) in ev.of(5))
        assert [r.info for r in ev.all if r.event == codes.EV_HW_BRIDGED] == [{"position": "op-3"}]
        assert span.health(5)["call_state"] == "active"
        with pytest.raises(LineError):
            await span.bridge(6, "op-4")
    finally:
        await span.stop()


@virtual
async def test_link_loss_releases_every_call_and_the_span_recovers():
    span, ev = await simulated(only("answer", ring_mean_s=1, talk_mean_s=500, talk_sd_s=1))
    try:
        for ch in range(6):
            await span.dial(ch, f"849500000{ch:02d}")
        await until(lambda: all(("answer", 0) in ev.of(ch) for ch in range(6)))
        span.simulator.fault_link_down(20)
        await until(lambda: all(ev.of(ch)[-1] == ("released", 41) for ch in range(6)))
        assert all(("release", 41) in ev.of(ch) for ch in range(6))
        assert ev.count(codes.EV_HW_OUT_OF_SERVICE) >= 60  # 30 at start, 30 on the loss
        assert all(r.cleared_by == "link" for r in span.simulator.records)
        ins = ev.count(codes.EV_HW_IN_SERVICE)
        await until(lambda: ev.count(codes.EV_HW_IN_SERVICE) == ins + 30)
        await span.dial(0, "84950000099")
        await until(lambda: ("answer", 0) in ev.of(0)[-2:])
    finally:
        await span.stop()


class RawNetwork:
    """A bare network-role data link: the test plays Q.931 by hand."""

    def __init__(self, clock) -> None:
        self.ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.tr = FdFrameTransport(sock=theirs)
        self.link = DataLink(Role.NETWORK, self.tr.send, clock=clock, initiate=False)
        self.tr.on_frame = self.link.receive
        self.got: list[Message] = []
        self.link.on_message = lambda info: self.got.append(decode_message(info))

    async def start(self) -> None:
        await self.tr.open()
        self.link.start()

    def send(self, msg: Message) -> None:
        self.link.send_message(msg.encode())

    async def expect(self, mtype: MT, within_s: float = 600.0) -> Message:
        await until(lambda: any(m.type is mtype for m in self.got), within_s)
        msg = next(m for m in self.got if m.type is mtype)
        self.got.remove(msg)
        return msg


@pytest.fixture
def raw():
    """Stands for the span against a hand-played network: @virtual makes it on the test's loop."""
    return None


@contextlib.asynccontextmanager
async def _raw_span(clock):
    net = RawNetwork(clock)
    await net.start()

    async def factory():
        return FdFrameTransport(sock=net.ours)

    span = E1Span(SpanConfig(name="e1-9", blocked=frozenset({9})), factory, clock=clock)
    ev = Events()
    await span.start(ev)
    await until(lambda: span.link.is_up and net.link.is_up)
    restart = await net.expect(MT.RESTART)  # the span restarts every interface at link up
    net.send(Message(MT.RESTART_ACKNOWLEDGE, 0, True, restart.ies))
    await until(lambda: ev.count(codes.EV_HW_IN_SERVICE) == 29)
    try:
        yield span, net, ev
    finally:
        await span.stop()
        net.link.stop()
        await net.tr.close()


@virtual
async def test_t303_retransmits_setup_once_then_gives_up_with_102(raw):
    span, net, ev = raw
    await span.dial(0, "84950000001")
    first = await net.expect(MT.SETUP)
    second = await net.expect(MT.SETUP)  # T303 (4 s) expired once: same call reference
    assert first.cref == second.cref and not first.flag
    done = await net.expect(MT.RELEASE_COMPLETE)
    assert done.get(Cause).value == 102 and done.cref == first.cref
    assert ev.of(0) == [("dialing", 0), ("release", 102), ("released", 102)]
    [rel] = [r for r in ev.all if r.channel == 0 and r.event == codes.EV_HW_RELEASE]
    assert rel.info.get("line_fault")  # the network's silence, not the debtor's doing


@virtual
async def test_t310_and_t305_t308_clear_a_call_the_network_forgets(raw):
    span, net, ev = raw
    await span.dial(1, "84950000002")
    setup = await net.expect(MT.SETUP)
    net.send(Message(MT.CALL_PROCEEDING, setup.cref, True, [ChannelId(2)]))
    disc = await net.expect(MT.DISCONNECT)  # T310 (10 s) expired
    assert disc.get(Cause).value == 102
    rel = await net.expect(MT.RELEASE)  # T305 (30 s) expired
    rel2 = await net.expect(MT.RELEASE)  # T308 once more
    assert rel.cref == rel2.cref == setup.cref
    await until(lambda: ev.of(1)[-1:] == [("released", 102)], 5)
    assert ev.of(1)[:3] == [("dialing", 0), ("proceeding", 0), ("release", 102)]
    [rel] = [r for r in ev.all if r.channel == 1 and r.event == codes.EV_HW_RELEASE]
    assert rel.info.get("line_fault")


@virtual
async def test_status_enquiry_and_ie_errors_are_answered_with_status(raw):
    span, net, ev = raw
    await span.dial(2, "84950000003")
    setup = await net.expect(MT.SETUP)
    net.send(Message(MT.STATUS_ENQUIRY, setup.cref, True))
    st = await net.expect(MT.STATUS)
    assert (st.get(Cause).value, st.get(CallState).value) == (30, 1)
    net.send(Message(MT.ALERTING, setup.cref, True, unknown=[RawIE(0x7E, b"\x01")]))
    st = await net.expect(MT.STATUS)
    assert (st.get(Cause).value, st.get(CallState).value) == (99, 4)
    assert ("alerting", 0) in ev.of(2)  # the message itself was acted on
    bad = Message(MT.PROGRESS, setup.cref, True).encode() + bytes.fromhex("1e 01 80")
    net.link.send_message(bad)
    st = await net.expect(MT.STATUS)
    assert st.get(Cause).value == 100
    net.link.send_message(Message(0x60, setup.cref, True).encode())  # no such message type
    st = await net.expect(MT.STATUS)
    assert st.get(Cause).value == 97


@virtual
async def test_unknown_call_reference_and_bad_setups_are_refused(raw):
    span, net, ev = raw
    net.send(Message(MT.DISCONNECT, 77, True, [Cause(16)]))
    assert (await net.expect(MT.RELEASE_COMPLETE)).get(Cause).value == 81
    net.send(Message(MT.SETUP, 5, False, [ChannelId(3)]))  # no bearer capability
    assert (await net.expect(MT.RELEASE_COMPLETE)).get(Cause).value == 96
    net.send(Message(MT.SETUP, 6, False, [BearerCapability(), ChannelId(9)]))  # blocked
    assert (await net.expect(MT.RELEASE_COMPLETE)).get(Cause).value == 44
    net.send(Message(MT.SETUP, 8, False, [BearerCapability(), ChannelId(None, False, True),
                                          CallingNumber("5551234", 4, 1, 1, 0),
                                          CalledNumber("100")]))
    proc = await net.expect(MT.CALL_PROCEEDING)
    assert proc.get(ChannelId).channel == 31 and proc.flag  # any channel: the top free one
    await net.expect(MT.ALERTING)
    [inbound] = [r for r in ev.all if r.event == codes.EV_HW_INBOUND]
    assert inbound.caller == "5551234" and inbound.info["called"] == "100"
    assert not any(r.event == codes.EV_HW_INBOUND for r in ev.all if r.channel != 29)


@virtual
async def test_network_release_and_status_null_free_the_channel(raw):
    span, net, ev = raw
    await span.dial(3, "84950000004")
    setup = await net.expect(MT.SETUP)
    net.send(Message(MT.CONNECT, setup.cref, True))
    await net.expect(MT.CONNECT_ACKNOWLEDGE)
    net.send(Message(MT.STATUS, setup.cref, True, [Cause(101), CallState(0)]))
    await until(lambda: ev.of(3)[-1:] == [("released", 101)])
    await span.dial(4, "84950000005")
    setup = await net.expect(MT.SETUP)
    net.send(Message(MT.RELEASE, setup.cref, True, [Cause(34)]))
    assert (await net.expect(MT.RELEASE_COMPLETE)).cref == setup.cref
    assert ev.of(4) == [("dialing", 0), ("release", 34), ("released", 34)]


@virtual
async def test_dial_refusals_are_reported_not_raised(raw):
    span, net, ev = raw
    await span.dial(5, "84-95")
    assert ev.of(5) == [("release", 28), ("released", 28)]
    with pytest.raises(LineError):
        await span.dial(30, "123")
    await span.dial(7, "84950000007")
    with pytest.raises(LineError, match="call_initiated"):
        await span.dial(7, "84950000008")
    span.link.stop()
    await span.dial(6, "123")
    assert ev.of(6) == [("release", 38), ("released", 38)]


@virtual
async def test_repeated_network_setup_is_not_offered_twice(raw):
    span, net, ev = raw
    setup = Message(MT.SETUP, 12, False, [BearerCapability(), ChannelId(20),
                                          CalledNumber("100")])
    net.send(setup)
    net.send(setup)
    await net.expect(MT.ALERTING)
    await asyncio.sleep(0.05)
    assert sum(r.event == codes.EV_HW_INBOUND for r in ev.all) == 1
    assert not any(m.type in (MT.STATUS, MT.RELEASE_COMPLETE) for m in net.got)


async def _raw_span_unanswered(clock):
    net = RawNetwork(clock)
    await net.start()

    async def factory():
        return FdFrameTransport(sock=net.ours)

    span = E1Span(SpanConfig(name="e1-9"), factory, clock=clock)
    ev = Events()
    await span.start(ev)
    return span, net, ev


def test_at_start_the_span_restarts_all_interfaces_and_waits_for_the_acknowledgement():
    """A box that restarts may have left calls up at the switch: the span sends RESTART (all
    interfaces, class 7) as soon as the D-channel is up, and uses its channels once the
    network acknowledges (T316: sent twice, then the channels are used anyway)."""
    async def main(clock):
        span, net, ev = await _raw_span_unanswered(clock)
        try:
            first = await net.expect(MT.RESTART)
            assert first.cref == 0 and first.get(RestartIndicator).restart_class == 7
            assert ev.count(codes.EV_HW_IN_SERVICE) == 0
            t0 = clock.now()
            again = await net.expect(MT.RESTART, 200)  # unacknowledged: T316 (120 s), again
            assert clock.now() - t0 == pytest.approx(120, abs=1)
            assert ev.count(codes.EV_HW_IN_SERVICE) == 0
            net.send(Message(MT.RESTART_ACKNOWLEDGE, 0, True, again.ies))
            await until(lambda: ev.count(codes.EV_HW_IN_SERVICE) == 30)
            assert clock.now() - t0 < 121 and span.stats["restarts_sent"] == 2
        finally:
            await span.stop()
            net.link.stop()
            await net.tr.close()

        span, net, ev = await _raw_span_unanswered(clock)  # a network that never answers RESTART
        try:
            await net.expect(MT.RESTART)
            await net.expect(MT.RESTART, 200)
            t0 = clock.now()
            await until(lambda: ev.count(codes.EV_HW_IN_SERVICE) == 30, 200)
            assert clock.now() - t0 == pytest.approx(120, abs=1)
        finally:
            await span.stop()
            net.link.stop()
            await net.tr.close()
    run_virtual(main, wall0=1_764_000_000.0)


@virtual
async def test_our_restart_and_maintenance_blocking(raw):
    span, net, ev = raw
    span.restart(0)
    one = await net.expect(MT.RESTART)
    assert one.cref == 0 and one.get(ChannelId).channel == 1
    assert one.get(RestartIndicator).restart_class == 0
    span.restart()
    assert (await net.expect(MT.RESTART)).get(RestartIndicator).restart_class == 7
    span.block(4)  # timeslot 5
    assert ev.all[-1].event == codes.EV_HW_OUT_OF_SERVICE and "maintenance" in ev.all[-1].reason
    net.send(Message(MT.SETUP, 3, False, [BearerCapability(), ChannelId(5)]))
    assert (await net.expect(MT.RELEASE_COMPLETE)).get(Cause).value == 44
    span.unblock(4)
    assert ev.all[-1].event == codes.EV_HW_IN_SERVICE and ev.all[-1].channel == 4
    net.send(Message(MT.SETUP, 4, False, [BearerCapability(), ChannelId(5)]))
    assert (await net.expect(MT.CALL_PROCEEDING)).get(ChannelId).channel == 5
