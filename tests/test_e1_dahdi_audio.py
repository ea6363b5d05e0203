"""The E1 driver's hardware path for B-channel audio, as a DAHDI box runs it: a span profile
without ``simulate`` whose ``audio:`` names the channel files (``.../chan/001/{ts:03d}``). The
files here are raw pseudo-terminals (character devices, like /dev/dahdi/chan/SPAN/TS), the
D-channel is TCP to the simulated network, and the network's debtor speaks A-law into each file.

What this proves: the driver opens the channel files the profile names, reads A-law however the
device hands it over (a byte stream here, whole blocks on DAHDI) and carries it as 20 ms frames to
the operator, writes one whole 160-byte A-law block for every block read, starts each call clean
of what the file received between calls, and takes a failing file (EIO) as a line fault of that
call.

What only a DAHDI card can prove: that the files exist as /dev/dahdi/chan/SPAN/TS (dahdi-linux's
udev rules); that their block size is 160 and their law A-law (the driver sends no
DAHDI_SET_BLOCKSIZE or DAHDI_SETLINEAR ioctl: it relies on the defaults); that B-channels set up
as ``bchan`` in /etc/dahdi/system.conf carry clear audio; that the span's clock paces reads at
8000 bytes a second; and what DAHDI's buffer policy keeps while nobody reads (here drained by
reading it away at call start, as chan_dahdi flushes).
"""
from __future__ import annotations

import asyncio
import os
from array import array
from contextlib import asynccontextmanager

from cext import linestate_codes as C
from firmware.clock import Clock
from firmware.e1.profile import spans_from_profile
from firmware.media.plane import MediaPlane
from firmware.sim.e1_network import NetworkSide
from firmware.sim.voice import has_signal
from tests.gsmsim import population, until
from tests.test_line_audio import assert_each_heard_only_the_other, running_span

@asynccontextmanager
async def dahdi_span(tmp_path, talk_s: float = 30.0):
    """A non-simulated span: D-channel over TCP to the network, B-channels 1-2 as device files."""
    clock = Clock()
    plane = MediaPlane(clock)
    await plane.start()
    net = NetworkSide(population("answer", ring_mean_s=0.3, talk_mean_s=talk_s), clock=clock,
                      name="nt", audio=True)
    port = await net.serve_tcp("127.0.0.1", 0)
    chan = tmp_path / "dahdi" / "chan" / "001"
    chan.mkdir(parents=True)
    for ts in (1, 2):
        os.symlink(await net.bchannel_device(ts), chan / f"{ts:03d}")
    doc = {"driver": "e1", "spans": [{
        "name": "e1-0", "transport": "tcp", "address": f"127.0.0.1:{port}", "channels": "1-2",
        "audio": str(chan / "{ts:03d}")}]}
    [span] = spans_from_profile(doc, simulate=False, clock=clock)
    try:
        async with running_span(plane, span, 2) as (rec, ops):
            yield plane, span, net, rec, ops
    finally:
        await net.close()
        await plane.stop()


async def _talking(span, plane, rec, ops) -> None:
    for ch, op in zip((0, 1), ops):
        await span.dial(ch, f"8495111000{ch + 1}")
    await until(lambda: rec.events().count(C.EV_HW_ANSWER) == 2, timeout=10)
    for ch, op in zip((0, 1), ops):
        await asyncio.wait_for(plane.connect(f"e1-0/{ch + 1}", op.leg), 3)


async def test_b_channel_files_carry_each_call_both_ways_in_whole_alaw_blocks(tmp_path):
    async with dahdi_span(tmp_path) as (plane, span, net, rec, (op1, op2)):
        await _talking(span, plane, rec, (op1, op2))
        await asyncio.sleep(2.0)
        debtor = {r.timeslot: r.voice for r in net.records}
        a, b = debtor[1], debtor[2]
        assert_each_heard_only_the_other(a, b, op1, op2)
        for voice in (a, b):
            assert voice.ear.frames >= 75  # 2 s, less the bridge
            assert voice.ear.frames <= voice.sent + 1  # a block written for each block read
            assert len(voice._inbuf) == 0  # whole 160-byte blocks only: no torn frame


async def test_a_call_starts_clean_of_what_the_file_received_between_calls(tmp_path):
    async with dahdi_span(tmp_path) as (plane, span, net, rec, (op1, _op2)):
        await span.dial(0, "84951110001")
        await rec.wait_for(C.EV_HW_ANSWER, timeout=10)
        await asyncio.wait_for(plane.connect("e1-0/1", op1.leg), 3)
        await asyncio.sleep(0.3)
        first = net.records[-1].voice
        await span.hangup(0)
        port, _ = net._bports[1]
        for k in range(20):  # 0.4 s of the first debtor's voice waits in the file, unread
            port.write(first.speaker.frame(0.02 * k))
        await until(lambda: any(r.event == C.EV_HW_RELEASED for r in rec.reports), timeout=5)
        said: list[array] = []  # what the plane took from the line, tick by tick
        remove = plane.tap("e1-0/1", lambda st: said.append(array("h", st)[0::2]))
        await span.dial(0, "84951110002")
        await until(lambda: rec.events().count(C.EV_HW_ANSWER) == 2, timeout=10)
        await asyncio.sleep(1.0)
        remove()
        second = net.records[-1].voice
        assert second.signal != first.signal
        voiced = [s for s in said if sum(x * x for x in s) > len(s) * 100 ** 2]
        assert sum(has_signal(s, 8000, second.signal) for s in voiced) > 15
        assert not [s for s in voiced if has_signal(s, 8000, first.signal)]


async def test_a_failing_channel_file_is_a_line_fault_of_its_call_only(tmp_path):
    async with dahdi_span(tmp_path) as (plane, span, net, rec, (op1, op2)):
        await _talking(span, plane, rec, (op1, op2))
        net.fault_bchannel_lost(1)  # the file starts failing reads (EIO), as a dead channel
        release = await rec.wait_for(C.EV_HW_RELEASE, timeout=5)
        assert release.channel == 0 and release.info.get("line_fault")
        assert "B-channel 1" in release.reason
        b = next(r for r in net.records if r.timeslot == 2).voice
        heard = b.ear.frames
        await asyncio.sleep(1.0)
        assert b.ear.frames > heard + 25 and b.ear.presence(op2.signal) > 0.5

