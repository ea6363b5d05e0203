"""The desk's WebRTC audio against real aiortc peers on loopback: G.711, the plane both ways,
candidates off the media networks dropped, media loss reported at once."""
from __future__ import annotations

import array
import asyncio

import pytest

from firmware.clock import Clock
from firmware.media.plane import MediaPlane
from tests.media_signals import dominant, tone
from web_admin.rtc import SILENT_S, DeskMedia, InlineG711, MediaNetworks
from web_admin.rtc_peer import BrowserPeer, ToneTrack

LOOPBACK = MediaNetworks.parse(["127.0.0.1/8"])
DEBTOR_HZ, OPERATOR_HZ = 450.0, 1050.0


@pytest.fixture
async def plane():
    LOOPBACK.install()
    p = MediaPlane(Clock())
    await p.start()
    yield p
    await p.stop()


async def feed(leg, frames, clock) -> None:
    """A line that says its tone at the pace of real audio."""
    i = 0
    while True:
        leg.push(frames[i % len(frames)])
        i += 1
        await clock.sleep(0.02)


async def connected(desk: DeskMedia, browser: BrowserPeer) -> None:
    offer = await desk.offer()
    await desk.answer(await browser.answer(offer))


def samples(pcm: bytes) -> array.array:
    a = array.array("h")
    a.frombytes(bytes(pcm))
    return a


async def until(predicate, timeout_s: float = 5.0) -> None:
    for _ in range(int(timeout_s / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out")


@pytest.mark.parametrize("codecs, codec", [(None, "PCMA"), (("audio/PCMU",), "PCMU"),
                                           (("audio/opus",), "opus")])
async def test_both_directions_through_the_plane(plane, codecs, codec):
    pos, line = plane.add_leg("desk-olga", "position"), plane.add_leg("gsm0", "line")
    events: list[tuple[bool, str]] = []
    desk = DeskMedia("olga", pos, LOOPBACK, notify=lambda up, why: events.append((up, why)))
    browser = BrowserPeer(ToneTrack(OPERATOR_HZ), codecs=codecs)
    debtor_heard = bytearray()
    line.on_output(debtor_heard.extend)
    talk = asyncio.get_running_loop().create_task(feed(line, tone(DEBTOR_HZ), plane.clock))
    try:
        await connected(desk, browser)
        await until(lambda: events == [(True, "")])
        assert desk.codec == codec  # G.711 first (E1 audio passes untranscoded); Opus allowed
        # Not connected yet: the operator hears silence, the debtor hears nothing of him.
        await asyncio.sleep(0.3)
        assert max(map(abs, samples(browser.heard[-3200:])), default=0) < 50  # G.711 silence
        # The call: a switch in the plane, no renegotiation (the same peer connection).
        pc = desk.pc
        await plane.connect(line, pos)
        debtor_heard.clear()
        await asyncio.sleep(1.0)
        heard = samples(browser.heard[-3200:])
        assert max(heard) > 2000 and dominant(heard, (DEBTOR_HZ, OPERATOR_HZ)) == DEBTOR_HZ
        said = samples(debtor_heard[-3200:])
        assert max(said) > 2000 and dominant(said, (DEBTOR_HZ, OPERATOR_HZ)) == OPERATOR_HZ
        assert desk.pc is pc and pc.connectionState == "connected"
        # G.711 from the browser is decoded on the loop by the media core, not on a thread
        inline = pc.getTransceivers()[0].receiver._RTCRtpReceiver__decoder_queue
        assert isinstance(inline, InlineG711) == (codec != "opus")
        # The browser goes away (closed tab, cable out): down at once, with the reason.
        await browser.close()
        t0 = plane.clock.now()
        await until(lambda: len(events) == 2, timeout_s=6.0)
        # the 1 s silence watchdog, plus the scheduling of a loaded machine
        assert events[1] == (False, "network") and plane.clock.now() - t0 < SILENT_S + 2.0
    finally:
        talk.cancel()
        await asyncio.gather(talk, return_exceptions=True)
        await browser.close()
        await desk.close()


async def test_a_new_connection_replaces_the_shifts_old_one(plane):
    pos = plane.add_leg("desk-olga", "position")
    events: list[tuple[bool, str]] = []
    desk = DeskMedia("olga", pos, LOOPBACK, notify=lambda up, why: events.append((up, why)))
    first, second = BrowserPeer(ToneTrack(OPERATOR_HZ)), BrowserPeer(ToneTrack(OPERATOR_HZ))
    try:
        await connected(desk, first)
        await until(lambda: desk.up)
        old = desk.pc
        await connected(desk, second)  # the page reconnected by itself
        assert old.connectionState == "closed" and desk.pc is not old
        await until(lambda: second.frames > 10)
        await asyncio.sleep(1.5)
        assert desk.up and events[-1] == (True, "")
    finally:
        for b in (first, second):
            await b.close()
        await desk.close("tab_closed")
    assert events[-1] == (False, "tab_closed")


def test_candidates_off_the_media_networks_are_dropped():
    nets = MediaNetworks.parse(["192.168.7.10/24"])
    sdp = "\r\n".join([
        "v=0", "m=audio 9 UDP/TLS/RTP/SAVPF 8",
        "a=candidate:1 1 udp 2122260223 192.168.7.31 50000 typ host generation 0",
        "a=candidate:2 1 udp 2122194687 10.8.0.5 50001 typ host generation 0",
        "a=candidate:3 1 udp 2122129151 4a1c7a2e-3f0b.local 50002 typ host generation 0",
        "a=candidate:4 1 udp 1686052607 203.0.113.9 50003 typ srflx raddr 192.168.7.31 rport 50000",
        "a=end-of-candidates"]) + "\r\n"
    kept, dropped = nets.filter_sdp(sdp)
    assert dropped == 3
    assert "192.168.7.31 50000" in kept and "10.8.0.5" not in kept and ".local" not in kept
    assert "203.0.113.9" not in kept and "a=end-of-candidates" in kept
    with pytest.raises(ValueError, match="ADDRESS/PREFIX"):
        MediaNetworks.parse(["192.168.7.10/99"])


async def test_headset_check_plays_a_tone_then_the_microphone_back_through_the_box(plane):
    pos = plane.add_leg("desk-olga", "position")
    desk = DeskMedia("olga", pos, LOOPBACK, notify=lambda up, why: None)
    told: list[dict] = []

    async def send(msg: dict) -> None:
        told.append(msg["rtc"])
    desk.send = send
    browser = BrowserPeer(ToneTrack(OPERATOR_HZ), keep_s=6.0)
    try:
        await connected(desk, browser)
        await until(lambda: desk.up)
        heard_from = len(browser.heard)
        await desk.check_headset(speak_s=1.5)
        steps = [m["step"] for m in told if m["type"] == "check"]
        assert steps == ["tone", "speak", "playback", "done"] and told[-1]["heard_mic"] is True
        heard = samples(browser.heard[heard_from - len(browser.heard):])
        # tone (1 s), then silence while the operator speaks (1.5 s), then the playback (1.5 s)
        assert dominant(heard[:8000], (440.0, OPERATOR_HZ)) == 440.0
        assert max(map(abs, heard[8000 + 2000:8000 + 10000])) < 200  # quiet while you speak
        back = heard[-12000:-2000]
        assert max(back) > 1000 and dominant(back, (440.0, OPERATOR_HZ)) == OPERATOR_HZ
    finally:
        await browser.close()
        await desk.close()


@pytest.mark.slow
async def test_the_webrtc_benchmark_measures_the_box_apart_from_its_browsers():
    """``python -m benchmarks.webrtc`` in small: desks in two browser processes that decode
    nothing, every desk connected and heard, the box's CPU (with its recorder process) and the
    browsers' counted apart."""
    from benchmarks.webrtc import box
    r = await box(3, 1.0, per_process=2)
    assert (r["operators"], r["connected"], r["desk_processes"], r["codec"]) == (3, 3, 2, "PCMA")
    assert r["desks_decode"] is False and r["packets_received"] > 3 * 40
    assert 0 < r["cpu_cores"] < 2 and 0 < r["desks_cpu_cores"] < 2
    assert r["added_latency_p99_ms"] is not None and set(r["lost_where"]) == {
        "jitter_dropped", "jitter_underruns", "jitter_drained", "ticks_skipped",
        "track_dropped", "rtp_gaps"}
    assert set(r["by_buffer"]) == {"fixed"} and r["by_buffer"]["fixed"]["lines"] == 3


@pytest.mark.slow
async def test_the_webrtc_benchmark_compares_fixed_and_adaptive_lines_fed_as_usb_ports():
    """``--line-jitter pairs --lines both``: every other line adaptive, each kind measured
    apart, the frames reaching the lines two at a time from modules at their own phases."""
    from benchmarks.webrtc import box
    r = await box(4, 1.0, per_process=2, line_prefill=2, line_jitter="pairs", kinds="both")
    assert r["connected"] == 4 and r["line_jitter"] == "pairs"
    fixed, adaptive = r["by_buffer"]["fixed"], r["by_buffer"]["adaptive"]
    assert fixed["lines"] == adaptive["lines"] == 2
    assert set(fixed["targets"]) == {"2"} and fixed["grown"] == 0
    assert set(adaptive["targets"]) <= {"1", "2", "3"}
    assert adaptive["added_latency_p99_ms"] is not None and fixed["added_latency_p99_ms"]
    assert adaptive["jitter_ms_p50"] >= 19.9  # a pair: one frame on time, one 20 ms early
