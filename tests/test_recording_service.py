"""Recording in the running box: every call whose audio passes through the plane is recorded from
answer to release and indexed; the recordings disk is watched and a full disk pauses dialing."""
from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from controller import recordings
from controller.store import Store
from dialbox.appliance import Appliance, Settings
from dialbox.recording import DiskPolicy, RecordingService
from firmware.clock import Clock
from firmware.lineapi import CallReleased
from firmware.linemanager import LineManager
from firmware.media.plane import MediaPlane
from firmware.media.recorder import Recorder, file_sha256
from tests.media_signals import AudioLine, decode_stereo, dominant, need_ffmpeg, tone

TONES = (500, 700, 1100, 1500, 1900)


async def _speak(leg, frames, clock):
    k = 0
    while True:
        leg.push(frames[k % len(frames)])
        k += 1
        await clock.sleep(0.02)


async def test_a_call_is_recorded_from_answer_to_release_and_indexed(tmp_path):
    need_ffmpeg()
    clock = Clock()
    plane = MediaPlane(clock)
    await plane.start()
    store = Store(tmp_path / "dialbox.sqlite3")
    drv = AudioLine("gsm0", clock, speak_after=0.1)
    drv.voice = tone(700)
    mgr = LineManager([drv], clock, plane=plane)
    svc = RecordingService(store, mgr, Recorder(plane, tmp_path / "recordings", clock), tmp_path,
                           clock, operator_of=lambda call_id: "pos1")
    released = []
    mgr.subscribe(svc.on_line_event)
    mgr.subscribe(lambda ev: isinstance(ev, CallReleased) and released.append(ev))
    pos = plane.add_leg("pos1", "position")
    await mgr.start()
    await svc.start()
    talk = asyncio.get_running_loop().create_task(_speak(pos, tone(1500), clock))
    try:
        await mgr.dial("gsm0", "+79990000001", call_id="att-1")
        await asyncio.sleep(0.01)
        await mgr.bridge("att-1", "pos1")
        await clock.sleep(1.5)
        await mgr.hangup("att-1")
        for _ in range(100):
            await asyncio.sleep(0.02)
            rows = recordings.listing(store, tmp_path, "att-1")
            if rows and rows[0]["state"] == "done":
                break
    finally:
        talk.cancel()
        await asyncio.gather(talk, return_exceptions=True)
        await mgr.stop()
        await svc.stop()
        await plane.stop()
    try:
        (row,) = recordings.listing(store, tmp_path, "att-1")
        assert row["state"] == "done" and row["line"] == "gsm0" and row["operator"] == "pos1"
        assert row["channels"] == 2 and row["sha256"] == file_sha256(Path(row["path"]))
        # the recording lasts the attempt's talk time (answer to release)
        assert abs(row["duration_s"] - released[0].talk_s) <= 0.1
        left, right = decode_stereo(row["path"])
        mid = slice(len(left) // 2, len(left) // 2 + 800)
        assert dominant(left[mid], TONES) == 700 and dominant(right[mid], TONES) == 1500
    finally:
        store.close()


async def test_the_disk_watch_warns_then_pauses_then_resumes(tmp_path):
    clock = Clock()
    plane = MediaPlane(clock)
    store = Store(tmp_path / "dialbox.sqlite3")
    reasons = []
    free_mb = shutil.disk_usage(tmp_path).free / 2**20
    policy = DiskPolicy(warn_free_mb=free_mb + 10_000, stop_free_mb=1.0)
    svc = RecordingService(store, None, Recorder(plane, tmp_path / "rec", clock), tmp_path, clock,
                           operator_of=lambda c: None, disk=policy, on_disk=reasons.append)
    try:
        assert svc.check_disk()["level"] == "low" and reasons == [None]
        assert svc.pause_reason() is None  # a warning only: dialing goes on
        policy.stop_free_mb = free_mb + 5_000
        assert svc.check_disk()["level"] == "full"
        assert "free space to resume dialing" in reasons[-1]
        policy.warn_free_mb = policy.stop_free_mb = 1.0
        assert svc.check_disk()["level"] == "ok" and reasons[-1] is None
    finally:
        store.close()


async def test_a_full_disk_pauses_automatic_dialing_with_the_reason(tmp_path):
    # compliance "none": this is about the disk, and the law's hours would make the test
    # depend on the hour it runs (at 20:30 UTC no demo debtor may be called)
    app = Appliance(Settings(simulate=True, operators=2, data=tmp_path / "d", time_scale=25.0,
                             seed=3, disk_warn_free_mb=1e12, disk_stop_free_mb=1e12,
                             compliance="none"))
    await app.start()
    try:
        await asyncio.sleep(1.0)
        n = app.store.db.execute("SELECT COUNT(*) FROM attempts").fetchone()[0]
        assert n == 0  # no call placed that could not be recorded
        health = app.health()
        assert health["status"] != "ok"
        assert [w["code"] for w in health["warnings"]] == ["recordings_disk_full"]
        assert "disk" in app.status()["campaign"]["hold_reason"]
        app.recording.policy.warn_free_mb = app.recording.policy.stop_free_mb = 1.0
        app.recording.check_disk()  # space freed: dialing resumes
        assert app.runner.hold_reason is None and app.health()["warnings"] == []
        for _ in range(50):
            await asyncio.sleep(0.1)
            if app.store.db.execute("SELECT COUNT(*) FROM attempts").fetchone()[0]:
                break
        assert app.store.db.execute("SELECT COUNT(*) FROM attempts").fetchone()[0] > 0
    finally:
        await app.stop()


class _WallAt(Clock):
    """The real monotonic clock, with the wall clock set by the test (local time)."""

    def __init__(self, wall: float) -> None:
        super().__init__()
        self.at = wall

    def wall(self) -> float:
        return self.at


async def test_the_nightly_purge_runs_once_a_night_and_logs_what_it_removed(tmp_path):
    from datetime import datetime
    night = datetime(2026, 11, 30, 2, 0).timestamp()  # local time: before the purge hour
    clock = _WallAt(night)
    store = Store(tmp_path / "dialbox.sqlite3")
    old = tmp_path / "recordings" / "old.opus"
    old.parent.mkdir(parents=True)
    old.write_bytes(b"OggS old")
    recordings.started(store, data=tmp_path, call_id="old", line="gsm0", path=old,
                       started_at=night - 1200 * 86400, channels=2)
    recordings.finished(store, call_id="old", duration_s=3.0, sha256="x" * 64, size=8, now=night)
    svc = RecordingService(store, None, Recorder(MediaPlane(clock), tmp_path / "recordings",
                                                 clock), tmp_path, clock,
                           operator_of=lambda c: None, retention_days=3 * 365 + 1)
    try:
        assert await svc.purge_if_due() is None and old.exists()  # 02:00: not yet
        clock.at = night + 2 * 3600  # 04:00
        result = await svc.purge_if_due()
        assert result.removed == ["old"] and not old.exists()
        assert await svc.purge_if_due() is None  # once a night
        clock.at += 86400
        assert (await svc.purge_if_due()).removed == []  # the next night runs again
    finally:
        store.close()
