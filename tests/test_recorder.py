"""Recordings: two channels (debtor, operator) of Ogg/Opus written while the call goes on, decoded
by Debian's ffmpeg; a SIGKILLed box leaves files that play to the last second, linked in the store;
checksums, export and the retention purge. Real time, a few seconds each."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from controller import recordings
from controller.store import Store
from firmware.clock import Clock
from firmware.errors import UserError
from firmware.media.plane import MediaPlane
from firmware.media.recorder import Recorder, file_sha256, probe_duration
from firmware.sim.voice import (FRAME_S, RATE, Signal, Speaker, alignment, goertzel, has_signal,
                                key_edges)
from tests.media_signals import decode_stereo, dominant, need_ffmpeg, probe, tone

ROOT = Path(__file__).resolve().parent.parent
TONES = (500, 900, 1300, 1700, 2100, 2500)


async def _talk(plane, legs, seconds):
    clock = plane.clock
    k = 0
    t_end = clock.now() + seconds
    while clock.now() < t_end:
        for leg, frames in legs:
            leg.push(frames[k % len(frames)])
        k += 1
        await clock.sleep(0.02)


async def _started(tmp_path) -> tuple[MediaPlane, Recorder]:
    """A running plane (real time) and a recorder writing under ``tmp_path``."""
    need_ffmpeg()
    clock = Clock()
    plane = MediaPlane(clock, jitter_prefill=1)
    await plane.start()
    return plane, Recorder(plane, tmp_path / "recordings", clock)


async def test_a_call_is_recorded_in_two_channels_while_it_goes_on(tmp_path):
    plane, rec = await _started(tmp_path)
    await rec.launch()  # the box starts its worker before the first call (RecordingService)
    try:
        lines = [plane.add_leg(f"gsm{i}", "line") for i in range(2)]
        ops = [plane.add_leg(f"pos{i}", "position") for i in range(2)]
        for ln, op in zip(lines, ops):
            plane.connect(ln, op)
        paths = [rec.start(f"c{i}", ln.name) for i, ln in enumerate(lines)]
        # debtor 0: 500 Hz, operator 0: 1300 Hz; debtor 1: 900 Hz, operator 1: 1700 Hz
        await _talk(plane, [(lines[0], tone(500)), (ops[0], tone(1300)),
                            (lines[1], tone(900)), (ops[1], tone(1700))], 1.0)
        grew = paths[0].stat().st_size
        await _talk(plane, [(lines[0], tone(500)), (ops[0], tone(1300)),
                            (lines[1], tone(900)), (ops[1], tone(1700))], 0.6)
        assert paths[0].stat().st_size > grew > 0  # written while the call goes on
        results = [await rec.stop(f"c{i}") for i in range(2)]
    finally:
        await rec.close()
        await plane.stop()
    for i, res in enumerate(results):
        assert res.path == paths[i] and res.channels == 2 and not res.error
        assert res.sha256 == file_sha256(res.path)
        assert 1.5 <= res.duration_s <= 1.8
        info = probe(res.path)
        st = info["streams"][0]
        assert (info["format"]["format_name"], st["codec_name"], st["channels"]) == ("ogg", "opus", 2)
        assert abs(float(info["format"]["duration"]) - res.duration_s) < 0.15
        left, right = decode_stereo(res.path)
        mid = len(left) // 2
        block = slice(mid, mid + 800)
        debtor, operator = (500, 1300) if i == 0 else (900, 1700)
        assert dominant(left[block], TONES) == debtor  # this debtor on the debtor channel
        assert dominant(right[block], TONES) == operator  # this operator on the operator's
    assert probe_duration(results[0].path) == pytest.approx(results[0].duration_s, abs=0.1)


async def test_each_channel_holds_its_speaker_alone_and_in_step(tmp_path):
    """The debtor's channel is encoded from the debtor alone: it decodes bit for bit the same
    whether the operator spoke or not, and the operator's channel is silent when he was. Each
    voice is in its channel, the other's absent, and their syllables stay within 20 ms. (A coupled
    stereo stream bled each side into the other and smeared this pair of voices by 140 ms.)"""
    plane, rec = await _started(tmp_path)
    clock = plane.clock
    debtor, operator = Speaker(Signal(1800, 2700)), Speaker(Signal(400, 1100))
    await rec.launch()
    try:
        lines = [plane.add_leg(f"gsm{i}", "line") for i in range(2)]
        op = plane.add_leg("pos0", "position")  # only the first call has an operator talking
        plane.connect(lines[0], op)
        for i, ln in enumerate(lines):
            rec.start(f"c{i}", ln.name)
        t = clock.now()
        for _ in range(150):  # 3 s: both speak on one clock grid, into both calls
            for ln in lines:
                ln.push(debtor.frame(t))
            op.push(operator.frame(t))
            t += FRAME_S
            await clock.sleep(t - clock.now())
        results = await asyncio.gather(*[rec.stop(f"c{i}") for i in range(2)])  # one tick
    finally:
        await rec.close()
        await plane.stop()
    (left, right), (left_alone, right_alone) = (decode_stereo(r.path) for r in results)
    assert left == left_alone  # not one sample of the debtor's channel depends on the operator
    assert not any(right_alone)  # and nothing of the debtor reaches the operator's
    windows = lambda s: [s[i:i + 160] for i in range(0, len(s) - 160, 160)]  # noqa: E731
    for channel, own, other in ((left, debtor.signal, operator.signal),
                                (right, operator.signal, debtor.signal)):
        voiced = [w for w in windows(channel) if sum(x * x for x in w) > 160 * 100 ** 2]
        assert sum(has_signal(w, RATE, own) for w in voiced) / len(voiced) > 0.85
        assert not any(has_signal(w, RATE, other) for w in voiced)
        bleed = sum(_share(w, other) for w in voiced) / len(voiced)
        # Codec noise, and the click of a frame the loaded machine delivered late, spread a
        # little power over every frequency. Two tones no one speaks, each near one of the other
        # voice's, measure that floor in the same windows: the other voice's tones must be at it,
        # not above it.
        floor = sum(_share(w, Signal(other.f1 + 150, other.f2 + 150)) for w in voiced) / len(voiced)
        assert bleed < max(1e-3, 3 * floor), (bleed, floor)
    gap = alignment(key_edges(left, RATE, debtor.signal), key_edges(right, RATE, operator.signal))
    assert gap is not None and gap <= 0.020, gap


def _share(samples, signal) -> float:
    """The share of a window's power held by the tones of ``signal``."""
    total = sum(x * x for x in samples)
    return sum(2 * goertzel(samples, RATE, f) / (len(samples) * total)
               for f in (signal.f1, signal.f2))


async def test_sigkill_leaves_every_recording_playable_and_linked(tmp_path):
    """The box and its recorder process are killed mid-call (as by a power cut): each file plays
    up to (at most) a second before the kill, and the store links it to its call."""
    need_ffmpeg()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.recorder_child", str(tmp_path), "3", cwd=str(ROOT), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True)
    last = None
    try:
        while True:
            line = await asyncio.wait_for(child.stdout.readline(), 20)
            assert line, (await child.stderr.read()).decode()[-2000:]
            last = json.loads(line)["frames"]
            if min(last.values()) >= 150:  # three seconds recorded by each call
                break
        os.killpg(child.pid, signal.SIGKILL)  # the box and its recorder worker at once
    finally:
        if child.returncode is None:
            child.kill()
        await child.wait()
    assert child.returncode == -signal.SIGKILL
    store = Store(tmp_path / "dialbox.sqlite3")
    try:
        rows = {r["call_id"]: r for r in recordings.listing(store, tmp_path)}
        assert set(rows) == {"call-0", "call-1", "call-2"}
        assert all(r["state"] == "recording" and r["sha256"] is None for r in rows.values())
        for i, (call_id, row) in enumerate(sorted(rows.items())):
            recorded = last[call_id] * 0.02
            path = Path(row["path"])
            info = probe(path)
            assert info["streams"][0]["channels"] == 2
            left, right = decode_stereo(path)
            plays = len(left) / 8000
            assert recorded - 1.0 <= plays <= recorded + 0.2, (call_id, recorded, plays, last)
            # up to the last second: the voices are intact 0.8 to 0.6 s before the end (the page
            # being written when both processes died may decode as noise)
            tail = slice(len(left) - 6400, len(left) - 4800)
            assert dominant(left[tail], TONES + (700, 1100, 1900, 2300)) == 500 + 200 * i
            assert dominant(right[tail], TONES + (700, 1100, 1900, 2300)) == 1700 + 200 * i
        # the next start closes the books: measured, checksummed, marked interrupted
        assert recordings.recover(store, tmp_path, probe_duration, now=time.time()) == 3
        for row in recordings.listing(store, tmp_path):
            assert row["state"] == "interrupted"
            assert row["sha256"] == file_sha256(Path(row["path"]))
            assert row["duration_s"] > 2.0
    finally:
        store.close()


def _store_with(tmp_path, n=3, age_days=(0, 10, 2000)):
    store = Store(tmp_path / "dialbox.sqlite3")
    now = time.time()
    for i in range(n):
        path = tmp_path / "recordings" / f"r{i}.opus"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"OggS" + bytes([i]) * 100)
        recordings.started(store, data=tmp_path, call_id=f"c{i}", line="gsm0", path=path,
                           started_at=now - age_days[i] * 86400, channels=2, operator="pos1")
        recordings.finished(store, call_id=f"c{i}", duration_s=1.0 + i,
                            sha256=file_sha256(path), size=104, now=now)
    return store, now


def test_export_is_verified_against_the_checksum(tmp_path):
    store, _ = _store_with(tmp_path)
    try:
        out = recordings.export(store, tmp_path, "c1", tmp_path / "out.opus")
        assert (tmp_path / "out.opus").read_bytes() == (tmp_path / "recordings/r1.opus").read_bytes()
        assert out["sha256"] == file_sha256(tmp_path / "out.opus")
        (tmp_path / "recordings/r2.opus").write_bytes(b"tampered")
        with pytest.raises(UserError, match="does not match its checksum"):
            recordings.export(store, tmp_path, "c2", tmp_path / "bad.opus")
        assert not (tmp_path / "bad.opus").exists()
        with pytest.raises(UserError, match="no recording"):
            recordings.export(store, tmp_path, "nope", tmp_path / "x.opus")
    finally:
        store.close()


def test_purge_removes_what_the_retention_expired_and_keeps_the_rest(tmp_path):
    store, now = _store_with(tmp_path)
    try:
        result = recordings.purge(store, tmp_path, now=now,
                                  retention_days=recordings.DEFAULT_RETENTION_DAYS)
        assert result.removed == ["c2"] and result.freed_bytes == 104
        assert not (tmp_path / "recordings/r2.opus").exists()
        assert (tmp_path / "recordings/r1.opus").exists()
        assert [r["call_id"] for r in recordings.listing(store, tmp_path)] == ["c1", "c0"]  # oldest first
        assert recordings.purge(store, tmp_path, now=now, retention_days=5).removed == ["c1"]
        state = store.db.execute("SELECT state, purged_at FROM recordings WHERE call_id='c2'"
                                 ).fetchone()
        assert state["state"] == "purged" and state["purged_at"] == now  # the row stays
    finally:
        store.close()


def test_recordings_cli_lists_and_exports(tmp_path):
    store, _ = _store_with(tmp_path, age_days=(0, 1, 2))
    store.close()
    run = [sys.executable, "-m", "dialbox.cli", "recordings"]
    out = subprocess.run(run + ["list", "--data", str(tmp_path), "--json"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    rows = json.loads(out.strip().splitlines()[-1])
    assert [r["call_id"] for r in rows] == ["c2", "c1", "c0"]  # oldest first
    assert set(rows[0]) >= {"call_id", "path", "duration_s", "channels", "started_at", "sha256"}
    assert rows[1]["duration_s"] == 2.0 and rows[1]["channels"] == 2
    assert Path(rows[1]["path"]).exists()
    one = subprocess.run(run + ["list", "--data", str(tmp_path), "--call", "c1", "--json"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert [r["call_id"] for r in json.loads(one.strip().splitlines()[-1])] == ["c1"]
    dest = tmp_path / "exported.opus"
    done = subprocess.run(run + ["export", "--data", str(tmp_path), "c1", str(dest)], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert dest.read_bytes() == (tmp_path / "recordings/r1.opus").read_bytes()
    bad = subprocess.run(run + ["export", "--data", str(tmp_path), "zzz", str(dest)], cwd=ROOT,
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "no recording" in bad.stderr and "Traceback" not in bad.stderr


async def test_a_killed_box_leaves_the_worker_to_finish_every_file(tmp_path):
    """Only the box is killed: the recorder worker sees the pipe close and finishes the files
    whole (an end-of-stream page, nothing lost)."""
    need_ffmpeg()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.recorder_child", str(tmp_path), "2", cwd=str(ROOT), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        while True:
            line = await asyncio.wait_for(child.stdout.readline(), 20)
            assert line, (await child.stderr.read()).decode()[-2000:]
            msg = json.loads(line)
            last = msg["frames"]
            if min(last.values()) >= 100 and msg["worker"]:
                break
        os.kill(child.pid, signal.SIGKILL)
    finally:
        if child.returncode is None:
            child.kill()
        await child.wait()
    for _ in range(200):  # the worker finishes on its own, just after
        if not Path(f"/proc/{msg['worker']}").exists():
            break
        await asyncio.sleep(0.05)
    for i in range(2):
        path = next((tmp_path / "recordings").rglob(f"call-{i}.opus"))
        info = probe(path)
        assert info["streams"][0]["channels"] == 2
        left, _right = decode_stereo(path)
        assert len(left) / 8000 >= last[f"call-{i}"] * 0.02 - 0.1


async def test_a_dead_worker_fails_its_recordings_and_the_next_call_gets_a_new_one(tmp_path):
    plane, rec = await _started(tmp_path)
    try:
        line = plane.add_leg("gsm0", "line")
        rec.start("c1", "gsm0")
        await _talk(plane, [(line, tone(500))], 0.5)
        os.kill(rec.worker_pid, signal.SIGKILL)
        await _talk(plane, [(line, tone(500))], 0.3)
        lost = await asyncio.wait_for(rec.stop("c1"), 5)
        assert lost.sha256 is None and "worker" in lost.error
        rec.start("c2", "gsm0")  # a new call: a new worker
        await _talk(plane, [(line, tone(900))], 0.8)
        ok = await asyncio.wait_for(rec.stop("c2"), 10)
        assert ok.sha256 == file_sha256(ok.path) and not ok.error
        left, _ = decode_stereo(ok.path)
        assert dominant(left[2000:2800], TONES) == 900
    finally:
        await rec.close()
        await plane.stop()


async def test_calls_released_as_the_box_stops_are_finished_not_failed(tmp_path):
    """The box stops: the lines hang up (each recording is stopped) and then the recorder closes.
    Every file is finished, checksummed and reported, not written off as a dead worker."""
    plane, rec = await _started(tmp_path)
    try:
        lines = [plane.add_leg(f"gsm{i}", "line") for i in range(3)]
        for i, ln in enumerate(lines):
            rec.start(f"c{i}", ln.name)
        await _talk(plane, [(ln, tone(500 + 400 * i)) for i, ln in enumerate(lines)], 0.6)
        released = [rec.stop(f"c{i}") for i in range(3)]  # the line manager hung up all...
        assert await rec.close() == []  # ...and the box closes the recorder at once
    finally:
        await plane.stop()
    results = [f.result() for f in released]
    for r in results:
        assert not r.error and r.sha256 == file_sha256(r.path), r
        assert probe(r.path)["streams"][0]["channels"] == 2


def test_a_recording_cut_before_its_first_page_says_so_without_a_server_path(tmp_path):
    store = Store(tmp_path / "dialbox.sqlite3")
    try:
        path = tmp_path / "recordings" / "c0.opus"
        path.parent.mkdir(parents=True)
        path.write_bytes(b"OggS\x00\x02" + bytes(20))  # the power went before any audio page
        recordings.started(store, data=tmp_path, call_id="c0", line="gsm0", path=path,
                           started_at=time.time(), channels=2, operator=None)
        assert recordings.recover(store, tmp_path, probe_duration, now=time.time()) == 1
        row = store.db.execute("SELECT * FROM recordings WHERE call_id='c0'").fetchone()
        assert row["state"] == "interrupted" and row["sha256"] is None
        assert row["error"] == "interrupted: nothing was written before the box stopped"
    finally:
        store.close()


async def test_audio_a_stalled_worker_could_not_take_is_counted_per_recording(tmp_path):
    """The worker stops (no CPU for it): once its backlog passes the cap the box drops audio
    rather than grow without bound. Each recording says how much it lost, and keeps its time:
    silence stands where the dropped audio was, so the file lasts as long as the call."""
    plane, rec = await _started(tmp_path)
    rec.max_backlog_bytes = 64 << 10
    await rec.launch()
    try:
        lines = [plane.add_leg(f"gsm{i}", "line") for i in range(20)]
        for i, ln in enumerate(lines):
            rec.start(f"c{i}", ln.name)
        voices = [(ln, tone(500 + 100 * (i % 10))) for i, ln in enumerate(lines)]
        os.kill(rec.worker_pid, signal.SIGSTOP)
        try:
            for _ in range(100):  # until the pipe is full and the box has dropped a second
                await _talk(plane, voices, 0.2)
                if rec.dropped_bytes >= 20 * 640 * 50:
                    break
        finally:
            os.kill(rec.worker_pid, signal.SIGCONT)
        await _talk(plane, voices, 0.4)
        results = await asyncio.gather(*[rec.stop(f"c{i}") for i in range(20)])
    finally:
        await rec.close()
        await plane.stop()
    assert rec.dropped_bytes >= 20 * 640 * 50
    # (the byte count includes the records' 9-byte headers: one per 3 frames)
    assert sum(r.dropped_s for r in results) == pytest.approx(rec.dropped_bytes / 640 * 0.02,
                                                              rel=0.01)
    for r in results:
        assert not r.error and r.dropped_s > 0, r
        assert probe_duration(r.path) == pytest.approx(r.duration_s, abs=0.1), r
        left, _right = decode_stereo(r.path)
        quiet = "".join("q" if sum(x * x for x in left[i:i + 160]) < 160 * 100 ** 2 else "v"
                        for i in range(0, len(left) - 160, 160))
        gap = max(quiet.split("v"), key=len)  # the longest silence: where the audio was lost
        assert abs(len(gap) * 0.02 - r.dropped_s) <= 0.1, (r, quiet)
        assert quiet.rstrip("q").endswith("v" * 5), quiet  # the call's voice after the gap


def test_the_worker_fsyncs_after_every_fsync_s_of_audio_however_fast_it_comes(tmp_path,
                                                                             monkeypatch):
    """The audio paces the fsync, not a clock: 21 s of a call (6 s of it a gap the box could not
    send), handed to the worker in one burst, are fsynced once 5 s of audio went in (5.04 s and
    10.08 s: whole 60 ms batches), after the gap (18 s), and at close; what each fsync made
    durable plays to within 0.56 s (two pages and a packet) of the audio handed over. So a power
    cut loses at most fsync_s of audio plus 0.56 s. (A wall-clock pace fsyncs nothing until close
    here: the burst takes well under a second.)"""
    import io

    from firmware.media import recorder_worker as worker
    from firmware.media.recorder_worker import GAP, HEADER
    path = tmp_path / "c0.opus"
    spec = {"path": str(path), "title": "c0", "bitrate": 24000, "complexity": 0,
            "page_s": 0.25, "fsync_s": 5.0}
    chunks = [HEADER.pack(b"O", 1, len(json.dumps(spec))) + json.dumps(spec).encode()]
    fed: list[tuple[int, int]] = []  # (input offset after a record, samples of audio so far)
    samples = 0
    mono = b"".join(tone(500, seconds=0.06))  # 60 ms, as the box batches it
    stereo = b"".join(mono[i:i + 2] * 2 for i in range(0, len(mono), 2))  # left and right
    offset = len(chunks[0])

    def add(record: bytes, n: int) -> None:
        nonlocal samples, offset
        chunks.append(record)
        samples, offset = samples + n, offset + len(record)
        fed.append((offset, samples))
    for _ in range(200):  # 12 s of voice
        add(HEADER.pack(b"D", 1, len(stereo)) + stereo, len(stereo) // 4)
    add(HEADER.pack(b"G", 1, GAP.size) + GAP.pack(6 * RATE), 6 * RATE)  # 6 s the box dropped
    for _ in range(50):  # 3 s more
        add(HEADER.pack(b"D", 1, len(stereo)) + stereo, len(stereo) // 4)
    inp = io.BytesIO(b"".join(chunks) + HEADER.pack(b"C", 1, 0) + HEADER.pack(b"Q", 0, 0))
    synced: list[tuple[float, bytes]] = []  # (seconds of audio handed over, bytes made durable)
    real_fsync = os.fsync

    def fsync(fd: int) -> None:  # watch what each fsync makes durable, then do it
        done = next((n for end, n in fed if end >= inp.tell()), samples)
        synced.append((done / RATE, path.read_bytes()))
        real_fsync(fd)
    monkeypatch.setattr(worker.os, "fsync", fsync)
    out = io.StringIO()
    worker.serve(inp, out)
    answer = json.loads(out.getvalue())
    assert answer["error"] == "" and answer["sha256"] == file_sha256(path)
    assert [round(s, 2) for s, _ in synced] == [5.04, 10.08, 18.0, 21.0]
    assert probe_duration(path) == pytest.approx(21.0, abs=0.07)
    for k, (fed_s, durable) in enumerate(synced[:-1]):
        cut = tmp_path / f"cut{k}.opus"
        cut.write_bytes(durable)  # the file as a power cut right after this fsync leaves it
        # what the muxer still held: the page being filled and the one it keeps back (page_s
        # each), and the encoder's packet (60 ms)
        assert fed_s - (2 * 0.25 + 0.06) <= probe_duration(cut) <= fed_s, (fed_s, k)
