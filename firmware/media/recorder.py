"""Call recordings: two channels (debtor, what the debtor heard), Ogg/Opus, written as the call goes.

The recorder taps a line leg of the media plane. Every tick gives one stereo frame: left is what
the debtor said, right is what the box sent the debtor (the operator, a supervisor's barge, the
recording notice, the abandon message). Frames are batched (60 ms) and handed to ONE writer
thread, which encodes them with libopus (through PyAV) and writes Ogg pages to disk as they fill,
so the event loop never waits for the encoder or the disk.

A ``kill -9`` or a power cut leaves a file that plays up to about half a second before it: the
Ogg muxer writes a page every ``page_s`` (it keeps the last one back), each page goes straight to
the file (unbuffered), and the file is fsynced every ``fsync_s``. When a recording ends the file is
closed, fsynced, measured and checksummed (SHA-256) in the thread, and the result comes back to
the loop through the future ``stop`` returned.
"""
from __future__ import annotations

import asyncio
import hashlib
import os
import queue
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import structlog

from firmware.clock import Clock
from firmware.media.plane import FRAME_S, MediaPlane

log = structlog.get_logger(__name__)

RATE = 8000
CHANNELS = ("debtor", "operator")
SUFFIX = ".opus"  # Ogg/Opus (RFC 7845); browsers play it as audio/ogg


@dataclass
class RecordingResult:
    """A finished recording, as the store keeps it."""

    call_id: str
    line: str
    path: Path
    started_at: float  # unix time of the first frame
    duration_s: float
    channels: int
    sha256: str | None  # None when the file could not be finished (the reason in ``error``)
    bytes: int = 0
    error: str = ""


@dataclass
class _Rec:
    call_id: str
    line: str
    path: Path
    started_at: float
    frames: int = 0  # ticks recorded
    pending: list = field(default_factory=list)
    untap: Callable[[], None] | None = None
    # writer thread's state
    container: object = None
    stream: object = None
    file: object = None
    pts: int = 0
    synced_at: float = 0.0
    error: str = ""


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:120] or "call"


def probe_duration(path: Path) -> float:
    """Seconds of audio in an Ogg/Opus file, by decoding it (a file cut short has no index)."""
    import av
    samples = 0
    rate = RATE
    with av.open(str(path)) as c:
        st = c.streams.audio[0]
        for frame in c.decode(st):
            samples += frame.samples
            rate = frame.sample_rate
    return samples / rate


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


class Recorder:
    """Every active recording of the box, and the one thread that encodes and writes them."""

    def __init__(self, plane: MediaPlane, directory: Path, clock: Clock, *,
                 bitrate: int = 24000, complexity: int = 0, batch_frames: int = 3,
                 page_s: float = 0.25, fsync_s: float = 5.0) -> None:
        self.plane = plane
        self.directory = Path(directory)
        self.clock = clock
        self.bitrate = bitrate
        self.complexity = complexity
        self.batch_frames = batch_frames
        self.page_s = page_s
        self.fsync_s = fsync_s
        self.active: dict[str, _Rec] = {}
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.failed = 0  # recordings that could not be written (disk full, I/O error)

    # --- the loop's side -----------------------------------------------------------------
    def start(self, call_id: str, line: str) -> Path:
        """Start recording the call on ``line`` (a line leg of the plane) from this tick on."""
        if call_id in self.active:
            return self.active[call_id].path
        self._ensure_thread()
        wall = self.clock.wall()
        day = datetime.fromtimestamp(wall, timezone.utc)
        path = (self.directory / f"{day:%Y}" / f"{day:%m}" / f"{day:%d}"
                / f"{_safe(call_id)}{SUFFIX}")
        rec = _Rec(call_id, line, path, wall)
        self.active[call_id] = rec
        self._q.put(("open", rec, None))
        rec.untap = self.plane.tap(line, lambda st, rec=rec: self._frame(rec, st))
        log.info("recording_started", line=line, call_id=call_id)
        return path

    def _frame(self, rec: _Rec, stereo: bytes) -> None:
        rec.frames += 1
        rec.pending.append(stereo)
        if len(rec.pending) >= self.batch_frames:
            self._q.put(("data", rec, b"".join(rec.pending)))
            rec.pending = []

    def stop(self, call_id: str) -> asyncio.Future:
        """Stop recording; the future resolves with the :class:`RecordingResult` once the file
        is closed, synced and checksummed (None when nothing was being recorded)."""
        fut = asyncio.get_running_loop().create_future()
        rec = self.active.pop(call_id, None)
        if rec is None:
            fut.set_result(None)
            return fut
        if rec.untap is not None:
            rec.untap()
        if rec.pending:
            self._q.put(("data", rec, b"".join(rec.pending)))
            rec.pending = []
        self._q.put(("close", rec, fut))
        return fut

    async def close(self) -> list[RecordingResult]:
        """Finish every recording (the box is stopping) and stop the writer thread."""
        futs = [self.stop(cid) for cid in list(self.active)]
        results = [r for r in await asyncio.gather(*futs) if r is not None]
        thread, self._thread = self._thread, None
        if thread is not None:
            self._q.put(("quit", None, None))
            await asyncio.get_running_loop().run_in_executor(None, thread.join, 10)
        return results

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._loop = asyncio.get_running_loop()
            self._thread = threading.Thread(target=self._work, name="dialbox-recorder",
                                            daemon=True)
            self._thread.start()

    # --- the writer thread ---------------------------------------------------------------
    def _work(self) -> None:
        while True:
            op, rec, arg = self._q.get()
            if op == "quit":
                return
            try:
                if op == "open":
                    self._open(rec)
                elif op == "data":
                    self._write(rec, arg)
                elif op == "close":
                    result = self._close(rec)
                    self._loop.call_soon_threadsafe(_resolve, arg, result)
            except Exception as exc:  # never let one recording stop the others
                log.exception("recording_write_failed", call_id=rec.call_id if rec else None)
                if rec is not None and not rec.error:
                    rec.error = f"{type(exc).__name__}: {exc}"
                if op == "close":
                    self._loop.call_soon_threadsafe(_resolve, arg, self._result(rec))

    def _open(self, rec: _Rec) -> None:
        import av
        try:
            rec.path.parent.mkdir(parents=True, exist_ok=True)
            rec.file = open(rec.path, "wb", buffering=0)  # each Ogg page straight to the file
            rec.container = av.open(rec.file, "w", format="ogg", container_options={
                "page_duration": str(int(self.page_s * 1e6)), "flush_packets": "1"})
            st = rec.container.add_stream("libopus", rate=RATE, layout="stereo", options={
                "application": "voip", "frame_duration": "60",
                "compression_level": str(self.complexity)})
            st.bit_rate = self.bitrate
            st.codec_context.format = "s16"
            rec.stream = st
            rec.container.metadata["title"] = rec.call_id
            rec.synced_at = self.clock.now()
        except (OSError, av.FFmpegError) as exc:
            rec.error = f"cannot write {rec.path.name}: {exc}"
            self.failed += 1
            log.error("recording_open_failed", call_id=rec.call_id, error=str(exc))
            self._drop(rec)

    def _write(self, rec: _Rec, data: bytes) -> None:
        if rec.container is None:
            return
        import av
        n = len(data) // 4
        frame = av.AudioFrame(format="s16", layout="stereo", samples=n)
        frame.sample_rate = RATE
        frame.planes[0].update(data)
        frame.pts = rec.pts
        rec.pts += n
        try:
            for packet in rec.stream.encode(frame):
                rec.container.mux(packet)
            if self.fsync_s and self.clock.now() - rec.synced_at >= self.fsync_s:
                os.fsync(rec.file.fileno())
                rec.synced_at = self.clock.now()
        except (OSError, av.FFmpegError) as exc:  # disk full: keep what is written, stop here
            rec.error = f"writing stopped: {exc}"
            self.failed += 1
            log.error("recording_write_stopped", call_id=rec.call_id, error=str(exc))
            self._drop(rec)

    def _close(self, rec: _Rec) -> RecordingResult:
        if rec.container is not None:
            for packet in rec.stream.encode(None):
                rec.container.mux(packet)
            rec.container.close()
            os.fsync(rec.file.fileno())
            rec.file.close()
            rec.container = rec.file = None
            return self._result(rec, sha=file_sha256(rec.path))
        return self._result(rec)

    def _drop(self, rec: _Rec) -> None:
        for obj in (rec.container, rec.file):
            try:
                if obj is not None:
                    obj.close()
            except Exception:  # already failing: keep the first error
                pass
        rec.container = rec.file = None

    def _result(self, rec: _Rec, sha: str | None = None) -> RecordingResult:
        size = rec.path.stat().st_size if rec.path.exists() else 0
        return RecordingResult(rec.call_id, rec.line, rec.path, rec.started_at,
                               round(rec.frames * FRAME_S, 3), len(CHANNELS),
                               sha if not rec.error else None, size, rec.error)


def _resolve(fut: asyncio.Future, result) -> None:
    if not fut.done():
        fut.set_result(result)
