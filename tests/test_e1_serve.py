"""The simulated E1 network in a process of its own (``python -m firmware.sim.e1_serve``), reached
by the box's real E1 driver through a plain profile: the D-channel on a SOCK_SEQPACKET socket and
the B-channels as DAHDI-style channel files. What the network saw comes back as JSON at SIGTERM.
"""
from __future__ import annotations

import asyncio
import base64
import json
import signal
import sys
from contextlib import asynccontextmanager

from cext import linestate_codes as C
from firmware.clock import Clock
from firmware.e1.profile import spans_from_profile
from firmware.media.plane import MediaPlane
from firmware.sim.voice import BOOK, Ear, Signal, SignalBook
from tests.test_line_audio import running_span


@asynccontextmanager
async def network(tmp_path, *, channels: str = "1-2", population: dict | None = None):
    """The network process; yields its profile spans and a list that gets its calls at exit."""
    out = tmp_path / "calls.json"
    pop = population or {"answer_prob": 1.0, "busy_prob": 0, "unreachable_prob": 0,
                         "rejected_prob": 0, "invalid_prob": 0, "ring_mean_s": 0.3,
                         "ring_sd_s": 0, "talk_mean_s": 60, "talk_sd_s": 0}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "firmware.sim.e1_serve", "--spans", "1", "--dir",
        str(tmp_path / "net"), "--out", str(out), "--channels", channels, "--heard",
        "--population", json.dumps(pop), stdout=asyncio.subprocess.PIPE)
    calls: list[dict] = []
    try:
        spans = json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))
        yield spans, calls
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
        calls.extend(json.loads(out.read_text(encoding="utf-8")))


def box_span(spans: list[dict], clock: Clock):
    [span] = spans_from_profile({"driver": "e1", "spans": spans}, simulate=False, clock=clock)
    return span


def heard(call: dict) -> Ear:
    """What the network's debtor heard on this call, as his ear kept it."""
    ear = Ear(law="alaw", every=call["heard_every"])
    data = base64.b64decode(call["heard_alaw"])
    ear.kept = [data[i:i + 160] for i in range(0, len(data), 160)]
    return ear


@asynccontextmanager
async def voices_apart():
    """The network process hands out its debtors' voices in a fresh book's order: keep the first
    of them from this process's operators, so that nobody can seem to hear his own voice."""
    theirs = SignalBook()
    held = [s for s in (theirs.take("debtor") for _ in range(4)) if s not in BOOK.owners]
    for s in held:
        BOOK.owners[s] = "the network's debtors"
    try:
        yield
    finally:
        for s in held:
            BOOK.release(s)


async def test_a_call_through_the_network_process_carries_audio_both_ways(tmp_path):
    clock = Clock()
    plane = MediaPlane(clock)
    await plane.start()
    try:
        async with voices_apart(), network(tmp_path) as (spans, calls):
            assert spans[0]["transport"] == "seqpacket" and "{ts:03d}" in spans[0]["audio"]
            span = box_span(spans, clock)
            async with running_span(plane, span, 2) as (rec, (op1, _op2)):
                await span.dial(0, "+79161234567")
                await rec.wait_for(C.EV_HW_ANSWER, timeout=10)
                await asyncio.wait_for(plane.connect("e1-0/1", op1.leg), 3)
                await asyncio.sleep(2.0)
                await span.hangup(0)
                await rec.wait_for(C.EV_HW_RELEASED, timeout=5)
        [call] = calls
        assert call["number"] == "+79161234567" and call["timeslot"] == 1
        assert call["fate"] == "answer" and call["ended_by"] == "box" and call["cause"] == 16
        assert call["at"] <= call["answered_at"] <= call["ended_at"]
        debtor = Signal(*call["signal"])
        assert debtor != op1.signal
        assert op1.ears["call1"].presence(debtor) > 0.5  # the debtor reached the operator
        ear = heard(call)
        assert ear.presence(op1.signal) > 0.5 and ear.presence(debtor) == 0  # and back
        assert 75 <= call["heard_frames"] <= call["sent_frames"] + 1  # a block for a block
    finally:
        await plane.stop()


async def test_the_network_keeps_a_call_while_the_box_is_gone_until_it_restarts_it(tmp_path):
    """A box that dies mid-call leaves the debtor talking; the next one resets the link and
    RESTARTs every channel (class 7), which ends the call at the network, then dials again."""
    clock = Clock()
    async with network(tmp_path) as (spans, calls):
        async with box(spans, clock) as (span, rec):
            await span.dial(0, "+79161234567")
            await rec.wait_for(C.EV_HW_ANSWER, timeout=10)
        gone = clock.wall()  # the box let go of its D-channel and channel files at once
        await asyncio.sleep(1.5)
        back = clock.wall()
        async with box(spans, clock) as (span, rec):
            assert span.stats["restarts_sent"] == 1
            await span.dial(0, "+79161234568")  # the same channel, free again
            await rec.wait_for(C.EV_HW_ANSWER, timeout=10)
    first, second = calls
    assert first["number"] == "+79161234567" and first["ended_by"] == "restart"
    assert first["ended_at"] >= back > gone + 1.4  # it went on while nobody was there
    assert first["sent_frames"] * 0.02 >= back - first["answered_at"] - 0.3  # talking
    assert second["timeslot"] == 1 and second["fate"] == "answer"
    assert second["ended_by"] is None  # still up at the network when it stopped


@asynccontextmanager
async def box(spans: list[dict], clock: Clock):
    """One life of a box: its own media plane and the real driver on the profile's span."""
    plane = MediaPlane(clock)
    await plane.start()
    try:
        span = box_span(spans, clock)
        async with running_span(plane, span, 2) as (rec, _ops):
            yield span, rec
    finally:
        await plane.stop()


async def test_dialbox_sim_e1_serves_spans_through_a_profile_the_box_loads_as_it_is(tmp_path):
    """``dialbox sim e1`` prints the path of a hardware profile; the box's own loader takes it."""
    from firmware import profiles
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dialbox.cli", "sim", "e1", "--spans", "2", "--channels", "1-2",
        "--fate", "busy", "--dir", str(tmp_path / "net"), "--out", str(tmp_path / "calls.json"),
        stdout=asyncio.subprocess.PIPE)
    try:
        path = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().strip()
        profile = profiles.load(path)
        clock = Clock()
        spans = spans_from_profile(profile.raw, simulate=False, clock=clock)
        assert [s.name for s in spans] == ["e1-0", "e1-1"]
        async with box([dict(profile.raw["spans"][1])], clock) as (span, rec):
            await span.dial(1, "+79161234567")
            release = await rec.wait_for(C.EV_HW_RELEASE, timeout=10)
            assert release.cause == 17
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    [call] = json.loads((tmp_path / "calls.json").read_text(encoding="utf-8"))
    assert (call["span"], call["timeslot"], call["fate"]) == ("e1-1", 2, "busy")
