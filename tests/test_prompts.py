"""Prompts: uploads converted to 8 kHz PCM; the abandoned call hears the abandon message within 2 s
of its answer, then the line hangs up, and it is recorded; the recording notice at bridge time;
a us-regf campaign refuses predictive mode without an abandon message."""
from __future__ import annotations

import asyncio
import io
import json
import struct
import subprocess
import sys
import wave
from pathlib import Path

import pytest

from controller import prompts, recordings
from controller.store import Store
from dialbox.recording import RecordingService
from firmware.clock import Clock
from firmware.errors import UserError
from firmware.lineapi import CallReleased
from firmware.linemanager import LineManager
from firmware.media import prompts as media_prompts
from firmware.media.plane import SILENCE, MediaPlane
from firmware.media.recorder import Recorder
from tests.media_signals import (AudioLine, decode_stereo, dominant, need_ffmpeg, power, tone)

ROOT = Path(__file__).resolve().parent.parent
TONES = (400, 700, 1000, 1300, 1600, 2200)


def _samples(pcm: bytes) -> list[int]:
    return list(struct.unpack(f"<{len(pcm) // 2}h", pcm))


def _wav(hz: float, seconds: float, rate: int = 16000, channels: int = 2) -> bytes:
    import math
    n = int(rate * seconds)
    frames = struct.pack(f"<{n * channels}h", *(int(9000 * math.sin(2 * math.pi * hz * i / rate))
                                                for i in range(n) for _ in range(channels)))
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)
    return buf.getvalue()


def _encode(pcm16k: bytes, fmt: str, codec: str) -> bytes:
    """An MP3 or OGG file as a shop would upload it, made with PyAV."""
    import av
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as c:
        st = c.add_stream(codec, rate=16000, layout="mono")
        frame = av.AudioFrame(format="s16", layout="mono", samples=len(pcm16k) // 2)
        frame.sample_rate = 16000
        frame.planes[0].update(pcm16k)
        frame.pts = 0
        for p in st.encode(frame):
            c.mux(p)
        for p in st.encode(None):
            c.mux(p)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["wav", "mp3", "ogg"])
def test_uploads_are_converted_to_8khz_mono(fmt):
    wav = _wav(1000, 1.5)
    if fmt == "wav":
        data = wav
    else:
        mono16k = wave.open(io.BytesIO(_wav(1000, 1.5, channels=1))).readframes(10 ** 6)
        data = _encode(mono16k, "mp3" if fmt == "mp3" else "ogg",
                       "libmp3lame" if fmt == "mp3" else "libopus")
    pcm = media_prompts.convert(data, name=f"msg.{fmt}")
    assert abs(len(pcm) / 16000 - 1.5) < 0.1  # 8 kHz, 2 bytes a sample
    mid = _samples(pcm)[4000:4800]
    assert dominant(mid, TONES) == 1000


def test_bad_uploads_say_what_is_wrong():
    with pytest.raises(UserError, match="not an audio file"):
        media_prompts.convert(b"this is a spreadsheet" * 50, name="list.xlsx")
    with pytest.raises(UserError, match="longer than 2 s"):
        media_prompts.convert(_wav(500, 3.0), name="long.wav", max_s=2.0)
    with pytest.raises(UserError, match="shorter"):
        media_prompts.convert(_wav(500, 0.05), name="click.wav")


def test_campaign_prompts_upload_audit_and_the_us_regf_predictive_rule(tmp_path):
    store = Store(tmp_path / "dialbox.sqlite3")
    try:
        cid = store.campaign("US", create=True, mode="predictive", compliance_profile="us-regf")
        with pytest.raises(UserError, match="refuses predictive mode until it has an abandon"):
            prompts.require_abandon_message(store, tmp_path, cid, mode="predictive",
                                            compliance_profile="us-regf")
        prompts.require_abandon_message(store, tmp_path, cid, mode="progressive",
                                        compliance_profile="us-regf")
        prompts.require_abandon_message(store, tmp_path, cid, mode="predictive",
                                        compliance_profile="ru-230fz")
        out = prompts.upload(store, tmp_path, cid, "abandon", _wav(700, 2.0), filename="a.wav",
                             who="admin")
        assert out["seconds"] == pytest.approx(2.0, abs=0.05)
        prompts.require_abandon_message(store, tmp_path, cid, mode="predictive",
                                        compliance_profile="us-regf")
        assert dominant(_samples(prompts.load(store, tmp_path, cid, "abandon"))[:800],
                        TONES) == 700
        audit = store.db.execute("SELECT who, action FROM audit_log").fetchall()
        assert [tuple(r) for r in audit] == [("admin", "prompt_abandon_uploaded")]
        with pytest.raises(UserError, match="switch it to progressive first"):
            prompts.remove(store, cid, "abandon", who="admin")
        assert prompts.load(store, tmp_path, cid, "notice") is None
    finally:
        store.close()


def test_prompts_cli_uploads_for_a_campaign(tmp_path):
    store = Store(tmp_path / "dialbox.sqlite3")
    store.campaign("Soft", create=True)
    store.close()
    src = tmp_path / "notice.wav"
    src.write_bytes(_wav(1300, 1.0))
    run = [sys.executable, "-m", "dialbox.cli", "prompts"]
    done = subprocess.run(run + ["upload", "--data", str(tmp_path), "--campaign", "Soft",
                                 "--kind", "notice", str(src)], cwd=ROOT, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["kind"] == "notice" and (tmp_path / out["path"]).exists()
    bad = subprocess.run(run + ["upload", "--data", str(tmp_path), "--campaign", "Nope",
                                "--kind", "notice", str(src)], cwd=ROOT, capture_output=True,
                         text=True)
    assert bad.returncode == 1 and "no campaign named" in bad.stderr


async def _line(tmp_path, prompts_by_kind, *, bridge_timeout_s=2.0):
    clock = Clock()
    plane = MediaPlane(clock)
    await plane.start()
    store = Store(tmp_path / "dialbox.sqlite3")
    drv = AudioLine("gsm0", clock, speak_after=0.0)
    drv.voice = tone(400)
    mgr = LineManager([drv], clock, plane=plane, bridge_timeout_s=bridge_timeout_s)
    mgr.prompt_for = lambda call_id, kind: prompts_by_kind.get(kind)
    svc = RecordingService(store, mgr, Recorder(plane, tmp_path / "recordings", clock), tmp_path,
                           clock, operator_of=lambda call_id: None)
    mgr.subscribe(svc.on_line_event)
    events = []
    mgr.subscribe(events.append)
    await mgr.start()
    await svc.start()
    return clock, plane, store, drv, mgr, svc, events


async def _close(plane, store, mgr, svc):
    await mgr.stop()
    await svc.stop()
    await plane.stop()
    store.close()


async def test_an_abandoned_call_hears_the_message_within_2_s_then_the_release(tmp_path):
    need_ffmpeg()
    message = b"".join(tone(1000, seconds=1.0))
    clock, plane, store, drv, mgr, svc, events = await _line(tmp_path, {"abandon": message})
    try:
        await mgr.dial("gsm0", "+15550000001", call_id="ab-1")  # nobody bridges it
        for _ in range(250):
            await asyncio.sleep(0.02)
            rows = recordings.listing(store, tmp_path, "ab-1")
            if rows and rows[0]["state"] == "done":
                break
        rel = next(e for e in events if isinstance(e, CallReleased))
        assert rel.abandoned
        heard = [(t, f) for t, f in zip(drv.heard_at, drv.heard) if f != SILENCE]
        first = heard[0][0] - drv.answered_at
        assert 1.5 <= first <= 2.0  # the message, not silence, within 2 s of the answer
        assert all(power(_samples(f), 1000) > power(_samples(f), 700) * 10 for _, f in heard)
        assert len(heard) * 0.02 == pytest.approx(1.0, abs=0.06)  # all of it...
        assert rel.at - drv.answered_at >= first + 0.95  # ...then the line is released
        (row,) = recordings.listing(store, tmp_path, "ab-1")  # recorded like any call
        left, right = decode_stereo(row["path"])
        assert abs(row["duration_s"] - rel.talk_s) <= 0.1
        k = int((first + 0.5) * 8000)
        assert dominant(right[k:k + 800], TONES) == 1000
        assert dominant(left[k:k + 800], TONES) == 400
    finally:
        await _close(plane, store, mgr, svc)


async def test_without_a_message_the_abandoned_call_is_released_at_once(tmp_path):
    clock, plane, store, drv, mgr, svc, events = await _line(tmp_path, {},
                                                             bridge_timeout_s=0.6)
    try:
        await mgr.dial("gsm0", "+79990000002", call_id="ab-2")
        for _ in range(100):
            await asyncio.sleep(0.02)
            if any(isinstance(e, CallReleased) for e in events):
                break
        rel = next(e for e in events if isinstance(e, CallReleased))
        assert rel.abandoned and rel.at - drv.answered_at < 0.9
    finally:
        await _close(plane, store, mgr, svc)


async def test_the_recording_notice_plays_to_both_sides_at_bridge_time(tmp_path):
    notice = b"".join(tone(1600, seconds=0.6))
    clock, plane, store, drv, mgr, svc, events = await _line(tmp_path, {"notice": notice})
    pos = plane.add_leg("pos1", "position")
    op_heard = []
    pos.on_output(op_heard.append)
    try:
        await mgr.dial("gsm0", "+79990000003", call_id="n-1")
        await asyncio.sleep(0.01)
        await mgr.bridge("n-1", "pos1")
        await clock.sleep(1.2)
        assert mgr.state("gsm0") == "bridged"
        debtor = [f for f in drv.heard if f != SILENCE]
        assert 0.5 <= len(debtor) * 0.02 <= 0.7  # the notice, once, to the debtor
        assert dominant(_samples(debtor[len(debtor) // 2]), TONES) == 1600
        both = [f for f in op_heard if power(_samples(f), 1600) > 1e5]
        assert len(both) >= 25  # the operator hears it too (over the debtor's voice)
        await mgr.hangup("n-1")
    finally:
        await _close(plane, store, mgr, svc)
