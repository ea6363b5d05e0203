"""Simulated modems speak audio: on their audio pty, only after the dialect's voice command."""
from __future__ import annotations

import asyncio
import os
from array import array

import pytest

from firmware.clock import Clock
from firmware.gsm.dialects import DIALECTS
from firmware.gsm.engine import ATEngine, ATError
from firmware.seriallink import open_link
from firmware.sim.modem import SimModem
from firmware.sim.voice import (BOOK, FRAME_S, KEY_PERIOD_S, Ear, Speaker, alaw_decode,
                                alaw_encode, alignment, has_signal, key_edges)
from tests.gsmsim import population, until


class AudioClient:
    """The box's end of a simulated audio port, raw: what arrives, and frames written back."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        self.data = bytearray()
        self.lost = False
        asyncio.get_running_loop().add_reader(self.fd, self._readable)

    def _readable(self) -> None:
        try:
            chunk = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self.lost = True
            asyncio.get_running_loop().remove_reader(self.fd)
            return
        self.data += chunk

    def write(self, frame: bytes) -> None:
        os.write(self.fd, frame)

    def close(self) -> None:
        if not self.lost:
            asyncio.get_running_loop().remove_reader(self.fd)
        os.close(self.fd)


@pytest.fixture
async def make_modem():
    made = []

    async def make(dialect: str, kind: str = "answer", talk_s: float = 30.0) -> tuple:
        sim = SimModem("m0", DIALECTS[dialect], population(kind, talk_mean_s=talk_s,
                                                           ring_mean_s=0.2), Clock(), seed=3)
        await sim.start()
        engine = ATEngine(lambda line, payload: None, lambda exc: None, name="t")
        await open_link(sim.path, lambda: engine)
        await asyncio.wait_for(engine.connected.wait(), 5)
        await engine.command("ATE0")
        await engine.command("AT+CMEE=1")
        audio = AudioClient(sim.audio_path) if sim.audio_path else None
        made.append((sim, engine, audio))
        return sim, engine, audio

    yield make
    for sim, engine, audio in made:
        if audio:
            audio.close()
        await engine.aclose()
        await sim.stop()


async def _answered(sim: SimModem) -> None:
    await until(lambda: sim._call is not None and sim._call.stat == 0, timeout=5)


def frames_of(data: bytes, size: int) -> list[bytes]:
    return [bytes(data[i:i + size]) for i in range(0, len(data) - size + 1, size)]


async def _speak_back(audio: AudioClient, speaker: Speaker, seconds: float, clock: Clock,
                      size: int = 320) -> None:
    """The box's side: one frame written for each frame read, as a driver does; the voice is
    continuous (frame after frame on the 20 ms grid), however late a stalled loop writes."""
    sent = 0
    t0 = round(clock.now() / FRAME_S) * FRAME_S + 1e-6  # just past the grid: no float edge
    end = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < end:
        due = len(audio.data) // size
        while sent < due:
            audio.write(speaker.frame(t0 + sent * FRAME_S))
            sent += 1
        await asyncio.sleep(0.005)


def _pcm(data: bytes) -> array:
    a = array("h")
    a.frombytes(bytes(data[:len(data) // 2 * 2]))
    return a


def _voiced_share(data: bytes, size: int, signal) -> float:
    """Share of the sounding frames that carry ``signal`` (frames cut by a key edge left out)."""
    frames = [_pcm(f) for f in frames_of(data, size)]
    whole = [f for f in frames if all(f[i] or f[i + 1] for i in range(0, len(f) - 1, 8))]
    return sum(has_signal(f, size // 40 * 1000, signal) for f in whole) / max(1, len(whole))


async def _carry(sim, audio, seconds: float = 1.0, size: int = 320):
    """Talk back for ``seconds``: the debtor's voice came, ours was heard. The debtor's record
    and the seconds taken."""
    mine = BOOK.take("test-operator")
    try:
        t0 = asyncio.get_running_loop().time()
        await _speak_back(audio, Speaker(mine, rate=size // 40 * 1000), seconds, sim.clock, size)
        rec, elapsed = sim.records[-1], asyncio.get_running_loop().time() - t0
    finally:
        BOOK.release(mine)
    # Real time: never faster; a loaded machine's stalls may lose some (a module's would not).
    assert 0.6 * elapsed / FRAME_S <= len(audio.data) / size <= elapsed / FRAME_S + 2
    assert len(audio.data) % size == 0
    assert _voiced_share(audio.data, size, rec.voice.signal) > 0.95
    assert rec.voice.ear.presence(mine) > 0.75, "the debtor hears what the box writes"
    return rec, elapsed


async def test_huawei_carries_audio_only_after_ddsetex(make_modem):
    sim, at, audio = await make_modem("huawei")
    assert sim.audio_path and sim.audio_path != sim.path
    await at.command("ATD+79001234567;")
    await _answered(sim)
    await asyncio.sleep(0.3)
    assert not audio.data, "the voice must not reach the audio port before AT^DDSETEX=2"
    assert (await at.command("AT^DDSETEX=?")).first("^DDSETEX:") == "(2)"
    await at.command("AT^DDSETEX=2")
    rec, elapsed = await _carry(sim, audio, 1.5)
    assert rec.voice.ear.presence(rec.voice.signal) == 0.0
    # The debtor speaks on the clock grid: a syllable every half second.
    edges = key_edges(_pcm(audio.data), 8000, rec.voice.signal)
    spacing = sorted(b - a for a, b in zip(edges, edges[1:]))
    assert len(edges) >= 2 and abs(spacing[len(spacing) // 2] - KEY_PERIOD_S) < 0.03
    await at.command("AT+CHUP")
    await asyncio.sleep(0.1)
    n = len(audio.data)
    await asyncio.sleep(0.2)
    assert len(audio.data) == n, "audio stops at release"
    assert rec.voice.signal not in BOOK.owners, "the call's signal goes back to the book"


async def test_huawei_ddsetex_without_a_call_is_refused(make_modem):
    sim, at, audio = await make_modem("huawei")
    with pytest.raises(ATError) as err:
        await at.command("AT^DDSETEX=2")
    assert err.value.code == 3


async def test_sim7600_cpcmreg_once_active_and_off_at_release(make_modem):
    sim, at, audio = await make_modem("sim7600")
    assert (await at.command("AT+CPCMFRM=?")).first("+CPCMFRM:") == "(0,1)"
    await at.command("AT+CPCMFRM=0")
    await at.command("AT+CLCC=1")
    await at.command("ATD+79001234567;")
    with pytest.raises(ATError):  # not active yet: the module refuses
        await at.command("AT+CPCMREG=1")
    await _answered(sim)
    await asyncio.sleep(0.2)
    assert not audio.data
    await at.command("AT+CPCMREG=1")
    assert (await at.command("AT+CPCMREG?")).first("+CPCMREG:") == "1"
    await _carry(sim, audio, 1.0)
    await at.command("AT+CPCMREG=0")
    await asyncio.sleep(0.1)
    n = len(audio.data)
    await asyncio.sleep(0.2)
    assert len(audio.data) == n, "AT+CPCMREG=0 takes the voice off the port"
    await at.command("AT+CHUP")


async def test_sim7600_16khz_frames(make_modem):
    sim, at, audio = await make_modem("sim7600")
    await at.command("AT+CPCMFRM=1")
    await at.command("ATD+79001234567;")
    await _answered(sim)
    await at.command("AT+CPCMREG=1")
    await _carry(sim, audio, 1.0, size=640)
    await at.command("AT+CHUP")


async def test_ec25_qpcmv(make_modem):
    sim, at, audio = await make_modem("ec25")
    assert (await at.command("AT+QPCMV=?")).first("+QPCMV:") == "(0,1),(0-2)"
    assert (await at.command("AT+QPCMV?")).first("+QPCMV:") == "0"
    await at.command("ATD+79001234567;")
    await _answered(sim)
    await asyncio.sleep(0.2)
    assert not audio.data
    await at.command("AT+QPCMV=1,0")
    assert (await at.command("AT+QPCMV?")).first("+QPCMV:") == "1,0"
    await _carry(sim, audio, 1.0)
    await at.command("AT+CHUP")


@pytest.mark.parametrize("dialect,command", [("sim800", "AT^DDSETEX=2"),
                                             ("huawei", "AT+CPCMREG=1"),
                                             ("sim7600", "AT+QPCMV=1,0"),
                                             ("ec25", "AT^DDSETEX=2")])
async def test_other_dialects_voice_commands_are_unknown(make_modem, dialect, command):
    sim, at, audio = await make_modem(dialect)
    with pytest.raises(ATError) as err:
        await at.command(command)
    assert err.value.final == "ERROR"
    assert (sim.audio_path is None) == (dialect == "sim800"), "SIM800 has no audio port"


async def test_two_calls_two_signals(make_modem):
    """Each call's debtor speaks a signal of his own, so one call's audio is told from another's."""
    a, at_a, audio_a = await make_modem("huawei")
    b, at_b, audio_b = await make_modem("huawei")
    for at in (at_a, at_b):
        await at.command("ATD+79001234567;")
    await _answered(a)
    await _answered(b)
    for at in (at_a, at_b):
        await at.command("AT^DDSETEX=2")
    await asyncio.sleep(0.5)
    sa, sb = a.records[-1].voice.signal, b.records[-1].voice.signal
    assert sa != sb
    assert _voiced_share(audio_a.data, 320, sa) > 0.95 and _voiced_share(audio_a.data, 320, sb) == 0
    assert _voiced_share(audio_b.data, 320, sb) > 0.95 and _voiced_share(audio_b.data, 320, sa) == 0


async def test_audio_port_vanishes(make_modem):
    sim, at, audio = await make_modem("huawei")
    await at.command("ATD+79001234567;")
    await _answered(sim)
    await at.command("AT^DDSETEX=2")
    await until(lambda: len(audio.data) >= 640, timeout=2)
    sim.inject("audio_vanish")
    await until(lambda: audio.lost, timeout=2)
    await at.command("AT")  # the AT port lives on


def test_speaker_keys_on_the_clock_grid():
    sig = BOOK.take("grid-test")
    try:
        sp = Speaker(sig)
        pcm = array("h")
        t0 = 0.013
        for k in range(150):
            pcm.extend(_pcm(sp.frame(t0 + k * FRAME_S)))
        # The key turns on at 0.5 s, 1.0 s, ... of the clock: 0.487 s, 0.987 s ... into the stream.
        edges = key_edges(pcm, 8000, sig)
        assert len(edges) == 6
        assert alignment(edges, [KEY_PERIOD_S * k - t0 for k in range(1, 7)]) < 0.006
        assert alignment(edges, [KEY_PERIOD_S * k - t0 + 0.1 for k in range(1, 7)]) > 0.09
    finally:
        BOOK.release(sig)


def test_alaw_round_trip_and_a_voice_survives_it():
    for x in (0, 1, -1, 100, -100, 1000, -1000, 12345, -12345, 32767, -32768):
        y = alaw_decode(alaw_encode(array("h", [x]).tobytes()))[0]
        assert abs(y - x) <= max(8, abs(x) // 16), (x, y)
    assert alaw_encode(bytes(2)) == b"\xd5"  # G.711: zero is 0xD5
    sig = BOOK.take("alaw-test")
    try:
        ear = Ear(law="alaw", every=1)
        sp = Speaker(sig, law="alaw")
        for k in range(10):
            ear.hear(sp.frame(0.02 * k))
        assert ear.presence(sig) == 1.0
    finally:
        BOOK.release(sig)


async def test_e1_network_carries_alaw_on_the_b_channel():
    """The simulated span's B-channel: 160-byte A-law frames at real time, only while active."""
    from cext import linestate_codes as codes
    from firmware.e1.profile import spans_from_profile
    doc = {"driver": "e1", "spans": [{"name": "e1-0", "transport": "tcp",
                                      "address": "127.0.0.1:1"}]}
    [span] = spans_from_profile(doc, simulate=True, clock=Clock(),
                                population=population("answer", ring_mean_s=0.3, talk_mean_s=2.0),
                                sim_transport="socketpair", audio=True)
    events = []
    await span.start(events.append)
    try:
        await until(lambda: any(r.event == codes.EV_HW_IN_SERVICE for r in events), timeout=5)
        box = span.simulator.bchannel(5)
        other = span.simulator.bchannel(6)
        box.setblocking(False)
        got: list[bytes] = []
        loop = asyncio.get_running_loop()
        loop.add_reader(box.fileno(), lambda: got.append(box.recv(4096)))
        mine = BOOK.take("test-operator")
        speaker = Speaker(mine, law="alaw")
        try:
            await span.dial(span.config.timeslots.index(5), "84951234567")
            await until(lambda: any(r.event == codes.EV_HW_ANSWER for r in events), timeout=5)
            sent = 0
            t0, n0 = loop.time(), len(got)
            while loop.time() - t0 < 1.0:  # one frame back for each frame read
                while sent < len(got):
                    box.send(speaker.frame(sent * FRAME_S))
                    sent += 1
                await asyncio.sleep(0.005)
            rec = span.simulator.records[-1]
            assert rec.timeslot == 5 and rec.voice is not None
            assert all(len(f) == 160 for f in got)
            assert 0.6 * (loop.time() - t0) / FRAME_S <= len(got) - n0 <= \
                (loop.time() - t0) / FRAME_S + 2
            assert rec.voice.ear.presence(mine) > 0.75
            decoded = [alaw_decode(f) for f in got[1:-1]]
            heard = sum(has_signal(f, 8000, rec.voice.signal) for f in decoded)
            assert heard >= 0.7 * len(decoded)
            other.setblocking(False)
            with pytest.raises(BlockingIOError):  # nothing on an idle channel
                other.recv(4096)
            await until(lambda: rec.ended is not None, timeout=5)
            n = len(got)
            await asyncio.sleep(0.2)
            assert len(got) <= n + 1, "the voice stops when the call is cleared"
        finally:
            loop.remove_reader(box.fileno())
            BOOK.release(mine)
    finally:
        await span.stop()
