"""The GSM driver carries a call's audio between the module's audio port and the media plane.

The real driver against simulated modems that speak each dialect's voice commands byte for byte;
a simulated operator at a position leg; real time (audio always is).
"""
from __future__ import annotations

import asyncio
from array import array
from contextlib import asynccontextmanager

import pytest

from cext import linestate_codes as C
from firmware.clock import Clock
from firmware.gsm.dialects import DIALECTS
from firmware.gsm.driver import GsmModule
from firmware.media.plane import MediaPlane
from firmware.sim.modem import SimModem
from firmware.sim.voice import PositionVoice, has_signal
from tests.gsmsim import Recorder, population, profile_for, until

METHOD = {"huawei": "huawei-ddsetex", "sim7600": "sim7600-cpcmreg", "ec25": "ec25-qpcmv"}


@asynccontextmanager
async def audio_lines(dialects: list[str], *, talk_s: float = 30.0):
    """Simulated modems with the real driver on each, a started plane, one operator each."""
    clock = Clock()
    plane = MediaPlane(clock)
    await plane.start()
    made = []
    try:
        for i, dialect in enumerate(dialects):
            sim = SimModem(f"m{i}", DIALECTS[dialect],
                           population("answer", ring_mean_s=0.3, talk_mean_s=talk_s), clock,
                           seed=20 + i)
            await sim.start()
            drv = GsmModule(f"gsm{i}", sim.path, profile_for(dialect, audio=METHOD[dialect]),
                            clock, audio_port=sim.audio_path)
            drv.attach_media(plane)
            rec = Recorder()
            await drv.start(rec)
            pos = plane.add_leg(f"pos{i + 1}", "position")
            op = PositionVoice(pos, clock, f"operator {i + 1}", call_of=lambda i=i: f"call{i}")
            made.append((sim, drv, rec, op))
        for sim, drv, rec, op in made:
            await rec.wait_for(C.EV_HW_IN_SERVICE, timeout=15)
        yield plane, made
    finally:
        for sim, drv, rec, op in made:
            op.close()
            await drv.stop()
            await sim.stop()
        await plane.stop()


async def _connected(plane, sim, drv, rec, op) -> float:
    """Dial, wait for the answer, switch the line to the operator; the bridge confirmation."""
    await drv.dial(0, "+79161234567")
    await rec.wait_for(C.EV_HW_ANSWER, timeout=10)
    return await asyncio.wait_for(plane.connect(drv.name, op.leg), 3)


@pytest.mark.parametrize("dialect", ["huawei", "sim7600", "ec25"])
async def test_each_dialect_carries_the_conversation_both_ways(dialect):
    async with audio_lines([dialect]) as (plane, [(sim, drv, rec, op)]):
        await _connected(plane, sim, drv, rec, op)
        await asyncio.sleep(2.0)
        voice = sim.records[-1].voice
        assert voice is not None, "the module put the call's voice on its audio port"
        assert voice.ear.presence(op.signal) > 0.5, "the debtor heard the operator"
        assert op.ears["call0"].presence(voice.signal) > 0.5, "the operator heard the debtor"
        # Written at the pace read, never faster: no more frames reached the module than it sent.
        assert voice.ear.frames <= voice.sent + 1
        await drv.hangup(0)
        await rec.wait_for(C.EV_HW_RELEASED, timeout=5)
        cmds = sim.commands
        atd = next(i for i, c in enumerate(cmds) if c.startswith("ATD"))
        if dialect == "huawei":
            assert cmds[atd + 1] == "AT^DDSETEX=2", cmds[atd:]
        elif dialect == "sim7600":
            on = cmds.index("AT+CPCMREG=1")
            assert on > atd and "AT+CPCMFRM=0" in cmds[:atd]
            await until(lambda: "AT+CPCMREG=0" in cmds[on:], timeout=3)
            assert cmds.index(drv.profile.hangup, atd) < len(cmds)
        else:
            assert "AT+QPCMV=1,0" in cmds[atd:]
        n = voice.ear.frames
        await asyncio.sleep(0.3)
        assert voice.ear.frames <= n + 1, "no audio after the release"


async def test_inbound_huawei_call_gets_ddsetex_after_ata():
    async with audio_lines(["huawei"]) as (plane, [(sim, drv, rec, op)]):
        sim.ring_inbound("+79165550000")
        await rec.wait_for(C.EV_HW_INBOUND, timeout=10)
        await drv.answer(0)
        await asyncio.wait_for(plane.connect(drv.name, op.leg), 3)
        await asyncio.sleep(1.0)
        cmds = sim.commands
        assert cmds[cmds.index("ATA") + 1] == "AT^DDSETEX=2"
        voice = sim.inbound_records[-1].voice
        assert voice.ear.presence(op.signal) > 0.5
        assert op.ears["call0"].presence(voice.signal) > 0.5


async def test_no_operator_connected_the_debtor_hears_silence_not_noise():
    async with audio_lines(["ec25"]) as (plane, [(sim, drv, rec, op)]):
        await drv.dial(0, "+79161234567")
        await rec.wait_for(C.EV_HW_ANSWER, timeout=10)
        await asyncio.sleep(1.0)
        voice = sim.records[-1].voice
        assert voice.ear.frames >= 25, "the box writes a frame for each frame read"
        assert voice.ear.voiced() == 0, "unconnected: silence"
        assert plane.legs["gsm0"].frames_in >= 25, "the debtor's frames reach the leg"


async def test_audio_port_vanishing_ends_that_call_as_a_line_fault_only():
    async with audio_lines(["huawei", "sim7600"]) as (plane, lines):
        for line in lines:
            await _connected(plane, *line)
        (sim0, drv0, rec0, op0), (sim1, drv1, rec1, op1) = lines
        await asyncio.sleep(0.5)
        sim0.inject("audio_vanish")
        release = await rec0.wait_for(C.EV_HW_RELEASE, timeout=5)
        assert release.info.get("line_fault") and "audio port" in release.reason
        await rec0.wait_for(C.EV_HW_RELEASED, timeout=5)
        await until(lambda: sim0.records[-1].ended_by == "box", timeout=5)
        # The module stays out of service while its audio port is gone.
        oos = await rec0.wait_for(C.EV_HW_OUT_OF_SERVICE, timeout=10,
                                  after=rec0.reports.index(release))
        assert "audio port" in oos.reason
        # The other line's call goes on, both ways, untouched.
        heard = sim1.records[-1].voice.ear.frames
        await asyncio.sleep(1.0)
        assert sim1.records[-1].voice.ear.frames > heard + 25
        assert C.EV_HW_RELEASE not in rec1.events()
        assert sim1.records[-1].voice.ear.presence(op1.signal) > 0.5


@asynccontextmanager
async def e1_span(talk_s: float = 30.0):
    """A simulated span carrying B-channel audio, a started plane, two operators."""
    from firmware.e1.profile import spans_from_profile
    clock = Clock()
    plane = MediaPlane(clock)
    await plane.start()
    doc = {"driver": "e1", "spans": [{"name": "e1-0", "transport": "tcp",
                                      "address": "127.0.0.1:1"}]}
    [span] = spans_from_profile(doc, simulate=True, clock=clock, sim_transport="socketpair",
                                population=population("answer", ring_mean_s=0.3,
                                                      talk_mean_s=talk_s), audio=True)
    try:
        async with running_span(plane, span, 30) as (rec, ops):
            yield plane, span, rec, ops
    finally:
        await plane.stop()


@asynccontextmanager
async def running_span(plane, span, channels: int):
    """Start ``span`` with its audio in ``plane`` and two simulated operators (call1, call2)."""
    span.attach_media(plane)
    rec = Recorder()
    ops = [PositionVoice(plane.add_leg(f"pos{i}", "position"), plane.clock, f"op{i}",
                         call_of=lambda i=i: f"call{i}") for i in (1, 2)]
    try:
        await span.start(rec)
        await until(lambda: rec.events().count(C.EV_HW_IN_SERVICE) == channels, timeout=10)
        yield rec, ops
    finally:
        for op in ops:
            op.close()
        await span.stop()


def assert_each_heard_only_the_other(a, b, op1, op2) -> None:
    """Debtor ``a`` talked with operator 1 (call1), ``b`` with operator 2 (call2), nobody else."""
    assert a.ear.presence(op1.signal) > 0.5 and a.ear.presence(op2.signal) == 0
    assert b.ear.presence(op2.signal) > 0.5 and b.ear.presence(op1.signal) == 0
    assert op1.ears["call1"].presence(a.signal) > 0.5
    assert op1.ears["call1"].presence(b.signal) == 0
    assert op2.ears["call2"].presence(b.signal) > 0.5
    assert op2.ears["call2"].presence(a.signal) == 0


async def test_e1_b_channels_carry_each_call_to_its_operator_only():
    async with e1_span() as (plane, span, rec, (op1, op2)):
        ch_a, ch_b = span.config.timeslots.index(3), span.config.timeslots.index(20)
        await span.dial(ch_a, "84951110001")
        await span.dial(ch_b, "84951110002")
        await until(lambda: rec.events().count(C.EV_HW_ANSWER) == 2, timeout=10)
        await asyncio.wait_for(plane.connect("e1-0/3", op1.leg), 3)
        await asyncio.wait_for(plane.connect("e1-0/20", op2.leg), 3)
        await asyncio.sleep(2.0)
        debtor = {r.timeslot: r.voice for r in span.simulator.records}
        a, b = debtor[3], debtor[20]
        assert_each_heard_only_the_other(a, b, op1, op2)
        assert a.ear.frames <= a.sent + 1, "written at the pace read"


async def test_e1_b_channel_lost_mid_call_is_a_line_fault_of_that_channel_only():
    async with e1_span() as (plane, span, rec, (op1, op2)):
        ch_a, ch_b = span.config.timeslots.index(3), span.config.timeslots.index(20)
        await span.dial(ch_a, "84951110001")
        await span.dial(ch_b, "84951110002")
        await until(lambda: rec.events().count(C.EV_HW_ANSWER) == 2, timeout=10)
        await asyncio.wait_for(plane.connect("e1-0/3", op1.leg), 3)
        await asyncio.wait_for(plane.connect("e1-0/20", op2.leg), 3)
        span.simulator.fault_bchannel_lost(3)
        release = await rec.wait_for(C.EV_HW_RELEASE, timeout=5)
        assert release.channel == ch_a and release.info.get("line_fault")
        assert "B-channel 3" in release.reason
        await until(lambda: any(r.event == C.EV_HW_RELEASED and r.channel == ch_a
                                for r in rec.reports), timeout=5)
        b = next(r for r in span.simulator.records if r.timeslot == 20).voice
        heard = b.ear.frames
        await asyncio.sleep(1.0)
        assert b.ear.frames > heard + 25 and b.ear.presence(op2.signal) > 0.5
        assert all(r.channel != ch_b for r in rec.reports if r.event == C.EV_HW_RELEASE)


async def test_e1_next_call_on_a_b_channel_starts_clean_of_the_last_ones_audio():
    """A DAHDI channel keeps receiving while no call is carried: what arrived between one call's
    end and the next call's answer (the network still talking after our hangup) is thrown away
    when the next call's audio starts; it never reaches that call's operator or recording."""
    async with e1_span() as (plane, span, rec, (op1, _op2)):
        ch = span.config.timeslots.index(3)
        await span.dial(ch, "84951110001")
        await rec.wait_for(C.EV_HW_ANSWER, timeout=10)
        await asyncio.wait_for(plane.connect("e1-0/3", op1.leg), 3)
        await asyncio.sleep(0.5)
        first = span.simulator.records[-1].voice
        await span.hangup(ch)  # ours: the network's debtor talks on until our DISCONNECT
        port, _box = span.simulator._bports[3]  # ...so his voice waits in the channel, unread
        for k in range(20):  # 0.4 s of his voice (its key is on)
            port.write(first.speaker.frame(0.02 * k))
        await until(lambda: any(r.event == C.EV_HW_RELEASED and r.channel == ch
                                for r in rec.reports), timeout=5)
        said: list[array] = []  # what the plane took from the line, tick by tick

        def take(stereo: bytes) -> None:
            said.append(array("h", stereo)[0::2])
        remove = plane.tap("e1-0/3", take)
        await span.dial(ch, "84951110002")
        await rec.wait_for(C.EV_HW_ANSWER, timeout=10)
        await asyncio.sleep(1.0)
        remove()
        second = span.simulator.records[-1].voice
        assert second.signal != first.signal
        voiced = [s for s in said if sum(x * x for x in s) > len(s) * 100 ** 2]
        assert sum(has_signal(s, 8000, second.signal) for s in voiced) > 15
        assert not [s for s in voiced if has_signal(s, 8000, first.signal)]
