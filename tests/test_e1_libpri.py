"""Interop: our user side against libpri (Debian libpri1.4) as the network, over SOCK_SEQPACKET."""
from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

import pytest

from cext import linestate_codes as codes
from firmware.clock import Clock
from firmware.e1.span import E1Span, SpanConfig
from firmware.e1.transports import FdFrameTransport
from firmware.lineapi import Outcome, classify_cause

sys.path.insert(0, str(Path(__file__).parent))
import libpri_peer  # noqa: E402  (test tooling beside this file)
from libpri_peer import (EV_ANSWER, EV_HANGUP_REQ, EV_RESTART, EV_RESTART_ACK,  # noqa: E402
                         EV_RING, LibpriNetwork)


class Events(list):
    def of(self, ch: int) -> list[tuple[str, int]]:
        return [(codes.EVENT_NAMES[r.event][3:], r.cause) for r in self
                if r.channel == ch and r.event not in (codes.EV_HW_IN_SERVICE,
                                                       codes.EV_HW_OUT_OF_SERVICE)]


async def until(cond, real_s: float = 10.0) -> None:
    for _ in range(int(real_s / 0.01)):
        if cond():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached in time")


@pytest.fixture
async def libpri():
    if libpri_peer.find_libpri() is None:
        if os.environ.get("CI"):
            pytest.fail("libpri is missing in CI (apt-get install -y libpri1.4)")
        pytest.skip("libpri not installed (apt-get install -y libpri1.4)")
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    peer = LibpriNetwork(theirs.fileno(), plan={
        "84950000017": ("reject", 17),
        "84950000111": ("answer", 0.2, 0.3),  # answers, then the callee hangs up
    })
    peer.start()

    async def factory():
        return FdFrameTransport(sock=ours)

    span = E1Span(SpanConfig(name="e1-0"), factory, clock=Clock())
    ev = Events()
    await span.start(ev.append)
    await until(lambda: sum(r.event == codes.EV_HW_IN_SERVICE for r in ev) == 30)
    await asyncio.wait_for(peer.up.wait(), 5)
    yield span, peer, ev
    await span.stop()
    peer.stop()
    theirs.close()


async def test_link_comes_up_against_libpri(libpri):
    span, peer, ev = libpri
    assert span.link.is_up and span.link.counters["establishments"] == 1
    assert span.stats["bad_messages"] == 0
    # Our RESTART of all interfaces at link up: libpri took it (EV_RESTART) and acknowledged
    # it at once, and only then did the channels go into service (the fixture waited for it).
    assert EV_RESTART in peer.kinds() and span.stats["restarts_sent"] == 1


async def test_call_answered_by_libpri_then_released_by_the_callee(libpri):
    span, peer, ev = libpri
    await span.dial(0, "84950000111")
    await until(lambda: ev.of(0)[-1:] == [("released", 16)])
    assert ev.of(0) == [("dialing", 0), ("proceeding", 0), ("alerting", 0), ("answer", 0),
                        ("release", 16), ("released", 16)]
    ring = [e for e in peer.events if e.kind == EV_RING][0]
    assert (ring.called, ring.channel & 0xFF) == ("84950000111", 1)


async def test_call_answered_by_libpri_and_cleared_by_us(libpri):
    span, peer, ev = libpri
    await span.dial(4, "84950000222")
    await until(lambda: ("answer", 0) in ev.of(4))
    await span.hangup(4, 16)
    await until(lambda: ev.of(4)[-1:] == [("released", 16)])
    assert ("release", 16) not in ev.of(4)  # we cleared: no far-end release reported
    assert any(e.kind == EV_HANGUP_REQ and e.cause == 16 for e in peer.events)


async def test_busy_from_libpri_is_cause_17(libpri):
    span, peer, ev = libpri
    await span.dial(1, "84950000017")
    await until(lambda: ev.of(1)[-1:] == [("released", 17)])
    assert ("release", 17) in ev.of(1) and ("answer", 0) not in ev.of(1)
    assert classify_cause(17, alerted=False, answered=False) is Outcome.BUSY
    assert not span.calls


async def test_call_originated_by_libpri_is_offered_and_answered(libpri):
    span, peer, ev = libpri
    peer.originate(31, "5551234", "100")
    await until(lambda: ev.of(29))
    [inbound] = [r for r in ev if r.event == codes.EV_HW_INBOUND]
    assert (inbound.channel, inbound.caller, inbound.info["called"]) == (29, "5551234", "100")
    await span.answer(29)
    await until(lambda: ("answer", 0) in ev.of(29))
    assert EV_ANSWER in peer.kinds()
    await span.hangup(29, 16)
    await until(lambda: ev.of(29)[-1:] == [("released", 16)])
    assert any(e.kind == EV_HANGUP_REQ and (e.channel & 0xFF) == 31 for e in peer.events)


async def test_ten_simultaneous_calls_through_libpri(libpri):
    span, peer, ev = libpri
    for ch in range(10, 20):
        await span.dial(ch, f"849500003{ch:02d}")
    await until(lambda: all(("answer", 0) in ev.of(ch) for ch in range(10, 20)))
    assert len(span.calls) == 10
    for ch in range(10, 20):
        await span.hangup(ch)
    await until(lambda: all(ev.of(ch)[-1][0] == "released" for ch in range(10, 20)))
    assert not span.calls and span.stats["protocol_errors"] == 0


async def test_restart_of_a_channel_from_libpri_is_acknowledged(libpri):
    span, peer, ev = libpri
    await span.dial(2, "84950000333")
    await until(lambda: ("answer", 0) in ev.of(2))
    peer.lib.pri_reset(peer.pri, 3)  # RESTART, indicated channel 3 (our channel 2)
    peer._reschedule()
    await until(lambda: EV_RESTART_ACK in peer.kinds())
    await until(lambda: ev.of(2)[-1:] == [("released", 41)])
    assert span.stats["restarts"] == 1
