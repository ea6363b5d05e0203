"""The media plane: legs, jitter buffers, full-duplex switching, monitoring, prompts, taps, and
bridge() through the line manager confirmed by the first debtor frame (the 2-second rule).

Most tests drive ``plane.tick()`` by hand (deterministic); the loop tests run at real time, short.
"""
from __future__ import annotations

import asyncio
import struct

import pytest

from cext import linestate_codes as C
from firmware.clock import Clock
from firmware.lineapi import CallProgress, CallReleased, CallStage
from firmware.linemanager import LineManager
from firmware.media.plane import SILENCE, MediaError, MediaPlane
from tests.media_signals import AudioLine


def frame(value: int) -> bytes:
    return struct.pack("<160h", *([value] * 160))


def value(f: bytes) -> int:
    """The constant sample of a frame made by ``frame`` (or a sum of them)."""
    vals = set(struct.unpack("<160h", f))
    assert len(vals) == 1, vals
    return vals.pop()


@pytest.fixture
def plane():
    return MediaPlane(Clock(), jitter_prefill=1)


async def test_connect_is_full_duplex_and_confirms_on_the_first_line_frame(plane):
    line = plane.add_leg("gsm0", "line")
    pos = plane.add_leg("pos1", "position")
    other = plane.add_leg("pos2", "position")
    heard = []
    pos.on_output(heard.append)
    confirmed = plane.connect(line, pos)
    pos.push(frame(-7))
    plane.tick()  # the operator spoke, the debtor did not yet: nothing delivered to the position
    assert not confirmed.done()
    assert value(line.pull()) == -7 and heard == [SILENCE]
    line.push(frame(1000))
    plane.tick()
    await asyncio.sleep(0)
    assert confirmed.done() and confirmed.result() == pytest.approx(plane.clock.now(), abs=0.5)
    assert value(heard[-1]) == 1000 and value(pos.pull()) == 1000
    assert other.pull() == SILENCE  # nobody else hears the call
    assert plane.peer("gsm0") == "pos1" and plane.peer(pos) == "gsm0"
    plane.disconnect(pos)
    line.push(frame(5))
    plane.tick()
    assert pos.pull() == SILENCE and line.pull() == SILENCE


async def test_connect_refuses_wrong_kinds_and_busy_positions(plane):
    plane.add_leg("gsm0", "line")
    plane.add_leg("gsm1", "line")
    plane.add_leg("pos1", "position")
    with pytest.raises(MediaError):
        plane.connect("pos1", "gsm0")
    with pytest.raises(MediaError):
        plane.connect("gsm0", "nowhere")
    plane.connect("gsm0", "pos1")
    assert plane.connect("gsm0", "pos1") is plane.connect("gsm0", "pos1")  # idempotent
    with pytest.raises(MediaError):
        plane.connect("gsm1", "pos1")
    with pytest.raises(MediaError):
        plane.add_leg("gsm0", "line")
    with pytest.raises(MediaError):
        plane.add_leg("x", "speaker")


async def test_disconnect_before_the_first_frame_fails_the_confirmation(plane):
    plane.add_leg("e1s0b1", "line")
    plane.add_leg("pos1", "position")
    confirmed = plane.connect("e1s0b1", "pos1")
    plane.tick()
    plane.disconnect("e1s0b1")
    with pytest.raises(MediaError, match="disconnected"):
        await confirmed


async def test_jitter_buffer_prefills_absorbs_and_drops_oldest():
    plane = MediaPlane(Clock(), jitter_depth=3, jitter_prefill=2)
    line = plane.add_leg("gsm0", "line")
    pos = plane.add_leg("pos1", "position")
    plane.connect(line, pos)
    line.push(frame(1))
    plane.tick()
    assert pos.pull() == SILENCE  # waiting for the prefill
    line.push(frame(2))
    plane.tick()
    assert value(pos.pull()) == 1
    plane.tick()
    assert value(pos.pull()) == 2
    plane.tick()  # empty while playing: an underrun, filled with silence
    assert pos.pull() == SILENCE and line.underruns == 1
    for v in (3, 4, 5, 6):
        line.push(frame(v))
    assert line.dropped == 1 and line.frames_in == 6
    plane.tick()
    assert value(pos.pull()) == 4  # the oldest (3) was dropped to keep the latency bounded
    with pytest.raises(ValueError):
        line.push(b"\x00" * 100)


async def test_a_burst_leaves_no_standing_latency_in_the_jitter_buffer():
    """Frames that piled up in a burst are dropped once they stood in the buffer a whole window
    (1 s): the line's latency comes back to the prefill's instead of staying for the call."""
    plane = MediaPlane(Clock(), jitter_depth=4, jitter_prefill=2)
    line = plane.add_leg("gsm0", "line")
    pos = plane.add_leg("pos1", "position")
    plane.connect(line, pos)
    sent = iter(range(1, 1000))
    for _ in range(5):  # a stalled port delivers five frames at once (the oldest is dropped)
        line.push(frame(next(sent)))
    heard, latency = [], []
    for _ in range(120):  # then one frame a tick, as the port's clock gives them
        last = next(sent)
        line.push(frame(last))
        plane.tick()
        heard.append(value(pos.pull()))
        latency.append(last - heard[-1])  # frames between the newest pushed and the one played
    assert latency[0] == 3  # the burst stands in the buffer...
    assert latency[-1] == 1 and set(latency[60:]) == {1}  # ...until a window shows it unneeded
    assert line.drained == 2 and line.dropped == 2 and line.underruns == 0
    assert heard == sorted(heard)  # in order; only the standing frames were skipped, once
    assert len(set(b - a for a, b in zip(heard, heard[1:]))) == 2
    line.flush()  # a new call on the line: nothing of the last one is left to play
    plane.tick()
    assert pos.pull() == SILENCE


async def test_monitor_listen_whisper_barge(plane):
    line = plane.add_leg("gsm0", "line")
    op = plane.add_leg("pos1", "position")
    sup = plane.add_leg("pos9", "position")
    plane.connect(line, op)

    def tick(debtor=100, operator=20, supervisor=3):
        line.push(frame(debtor))
        op.push(frame(operator))
        sup.push(frame(supervisor))
        plane.tick()
        return value(line.pull()), value(op.pull()), value(sup.pull())

    assert tick() == (20, 100, 0)
    plane.monitor(op, sup, "listen")
    assert tick() == (20, 100, 120)  # the supervisor hears both sides; nobody hears him
    plane.monitor(op, sup, "whisper")
    assert tick() == (20, 103, 120)  # the operator hears him, the debtor does not
    plane.monitor(op, sup, "barge")
    assert tick() == (23, 103, 120)  # both hear him
    plane.unmonitor(sup)
    assert tick() == (20, 100, 0)
    with pytest.raises(MediaError):
        plane.monitor(op, sup, "shout")
    with pytest.raises(MediaError):
        plane.monitor(op, op)
    with pytest.raises(MediaError):
        plane.monitor(sup, op)  # the operator is in a call


async def test_prompt_plays_into_a_leg_then_resolves(plane):
    line = plane.add_leg("gsm0", "line")
    pcm = frame(11) + frame(22) + struct.pack("<10h", *([33] * 10))  # the last frame is padded
    done = plane.play(line, pcm)
    outs = []
    for _ in range(4):
        plane.tick()
        outs.append(line.pull())
    assert done.done() and done.result() is not None
    assert value(outs[0]) == 11 and value(outs[1]) == 22
    assert struct.unpack("<160h", outs[2])[:12] == (33,) * 10 + (0, 0)
    assert outs[3] == SILENCE
    assert [n for n in plane.legs] == ["gsm0"]  # the prompt's leg is gone


async def test_prompt_mixes_with_the_operator_and_stops_when_cut(plane):
    line = plane.add_leg("gsm0", "line")
    op = plane.add_leg("pos1", "position")
    plane.connect(line, op)
    done = plane.play([line, op], frame(1000) * 50)
    op.push(frame(7))
    line.push(frame(5))
    plane.tick()
    assert value(line.pull()) == 1007 and value(op.pull()) == 1005
    plane.stop_prompts(line)
    assert done.done() and done.result() is None
    plane.tick()
    assert line.pull() == SILENCE


async def test_tap_gives_both_directions_of_the_line(plane):
    line = plane.add_leg("gsm0", "line")
    op = plane.add_leg("pos1", "position")
    plane.connect(line, op)
    taps = []
    remove = plane.tap(line, taps.append)
    line.push(frame(300))
    op.push(frame(-40))
    plane.tick()
    st = struct.unpack("<320h", taps[0])
    assert st[0::2] == (300,) * 160 and st[1::2] == (-40,) * 160
    remove()
    plane.tick()
    assert len(taps) == 1


async def test_gain_and_meters_per_leg(plane):
    line = plane.add_leg("gsm0", "line")
    op = plane.add_leg("pos1", "position")
    plane.connect(line, op)
    line.gain_in = 0.5
    op.gain_out = 2.0
    line.push(frame(1000))
    plane.tick()
    assert value(op.pull()) == 1000  # 1000 * 0.5 * 2.0
    assert line.level_in_dbfs == pytest.approx(20 * __import__("math").log10(500 / 32768), abs=0.01)
    assert op.level_out_dbfs == pytest.approx(line.level_in_dbfs + 6.02, abs=0.01)
    assert plane.snapshot()["legs"]["pos1"]["peer"] == "gsm0"


async def test_many_legs_grow_the_switch_and_calls_stay_apart():
    plane = MediaPlane(Clock(), capacity=2, jitter_prefill=1)
    for i in range(40):
        plane.add_leg(f"l{i}", "line")
        plane.add_leg(f"p{i}", "position")
        plane.connect(f"l{i}", f"p{i}")
    assert plane.switch.capacity >= 80
    for i in range(40):
        plane.legs[f"l{i}"].push(frame(i + 1))
        plane.legs[f"p{i}"].push(frame(-(i + 1)))
    plane.tick()
    for i in range(40):
        assert value(plane.legs[f"p{i}"].pull()) == i + 1
        assert value(plane.legs[f"l{i}"].pull()) == -(i + 1)
    plane.remove_leg("l3")
    assert plane.peer("p3") is None and plane.legs["p3"].pull() is not None
    leg = plane.add_leg("l3", "line")  # a freed slot is reused
    assert leg.slot < plane.switch.capacity


async def test_the_loop_ticks_every_20_ms_at_real_time():
    plane = MediaPlane(Clock(), jitter_prefill=1)
    line = plane.add_leg("gsm0", "line")
    pos = plane.add_leg("pos1", "position")
    got = []
    pos.on_output(got.append)
    await plane.start()
    confirmed = plane.connect(line, pos)
    t0 = plane.clock.now()
    for i in range(25):  # half a second of debtor speech at its own pace
        line.push(frame(i + 1))
        await plane.clock.sleep(0.02)
    at = await asyncio.wait_for(confirmed, 1)
    elapsed = plane.clock.now() - t0
    await plane.stop()
    assert 0 <= at - t0 < 0.5  # the first frame's tick (generous: a shared, loaded machine)
    assert abs(plane.ticks + plane.skipped_ticks - elapsed / 0.02) <= 3  # one tick per 20 ms
    assert sum(plane.lateness_hist) == plane.ticks  # how late each tick ran, for a technician
    spoken = [value(f) for f in got if f != SILENCE]
    assert spoken == sorted(spoken) and len(spoken) >= 20  # in order, nothing repeated


# --- bridge() through the line manager -----------------------------------------------------
async def _call(speak_after, bridge_timeout_s=2.0):
    clock = Clock()
    plane = MediaPlane(clock)
    await plane.start()
    drv = AudioLine("gsm0", clock, speak_after)
    mgr = LineManager([drv], clock, bridge_timeout_s=bridge_timeout_s, plane=plane)
    events = []
    mgr.subscribe(events.append)
    pos = plane.add_leg("pos1", "position")
    pos_heard = []
    pos.on_output(pos_heard.append)
    await mgr.start()
    await mgr.dial("gsm0", "+79990000000", call_id="c1")
    await asyncio.sleep(0.01)
    await mgr.bridge("c1", "pos1")
    return clock, plane, drv, mgr, events, pos, pos_heard


async def test_bridge_is_a_switch_confirmed_by_the_first_debtor_frame():
    clock, plane, drv, mgr, events, pos, pos_heard = await _call(speak_after=0.3)
    try:
        answered = next(e.at for e in events if isinstance(e, CallProgress)
                        and e.stage == CallStage.ANSWERED)
        for _ in range(100):
            await asyncio.sleep(0.02)
            if any(isinstance(e, CallProgress) and e.stage == CallStage.BRIDGED for e in events):
                break
        bridged = next(e.at for e in events if isinstance(e, CallProgress)
                       and e.stage == CallStage.BRIDGED)
        # not when asked, but when the debtor's first frame reached the operator
        assert 0.3 <= bridged - answered < 1.0
        assert drv.driver_bridged == 0  # no new call, no driver request: a switch in the plane
        assert any(f != SILENCE for f in pos_heard)
        pos.push(frame(-50))
        pos.push(frame(-50))
        await asyncio.sleep(0.1)
        assert any(f == frame(-50) for f in drv.heard)  # and the debtor hears the operator
        assert mgr.state("gsm0") == "bridged"
        await mgr.hangup("c1")
        await asyncio.sleep(0.05)
        assert plane.peer("gsm0") is None
    finally:
        await mgr.stop()
        await plane.stop()


async def test_a_silent_line_is_never_confirmed_and_the_call_is_abandoned():
    clock, plane, drv, mgr, events, pos, pos_heard = await _call(speak_after=None,
                                                                  bridge_timeout_s=0.4)
    try:
        for _ in range(60):
            await asyncio.sleep(0.02)
            if any(isinstance(e, CallReleased) for e in events):
                break
        rel = next(e for e in events if isinstance(e, CallReleased))
        assert rel.abandoned and rel.q850 == C.CAUSE_ABANDONED
        assert not any(isinstance(e, CallProgress) and e.stage == CallStage.BRIDGED
                       for e in events)
        assert plane.peer("pos1") is None
    finally:
        await mgr.stop()
        await plane.stop()


async def test_without_the_plane_running_the_driver_bridges():
    clock = Clock()
    plane = MediaPlane(clock)  # never started: audio off (scaled time)
    drv = AudioLine("gsm0", clock, None)
    mgr = LineManager([drv], clock, plane=plane)
    await mgr.start()
    try:
        plane.add_leg("pos1", "position")
        await mgr.dial("gsm0", "+79990000000", call_id="c1")
        await asyncio.sleep(0.01)
        await mgr.bridge("c1", "pos1")
        await asyncio.sleep(0.01)
        assert drv.driver_bridged == 1
    finally:
        await mgr.stop()
