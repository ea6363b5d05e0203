"""Call recordings: two channels (debtor, what the debtor heard), Ogg/Opus, written as the call goes.

The recorder taps a line leg of the media plane. Every tick gives one stereo frame: left is what
the debtor said, right is what the box sent the debtor (the operator, a supervisor's barge, the
recording notice, the abandon message). Frames are batched (60 ms) and written, once per tick for
all recordings, to ONE writer process (firmware/media/recorder_worker.py), which encodes each
channel as a mono Opus stream of its own (libopus through PyAV; uncoupled, so neither channel
bleeds into the other) and writes Ogg pages to disk as they fill: the event loop never waits for
the encoder or the disk, nor shares its GIL with them.

``kill -9`` of the box leaves every file complete (the worker sees the pipe close and finishes
them); killing both leaves files that play up to about half a second before it: the Ogg muxer
writes a page every ``page_s`` (keeping the last one back) and each page goes straight to the file
(unbuffered, so the kernel keeps it). A power cut loses at most ``fsync_s`` seconds of audio more:
the worker fsyncs each file after every ``fsync_s`` of its audio. When a recording ends the
worker closes, fsyncs and checksums (SHA-256) the file, and the result comes back through the
future ``stop`` returned.
"""
from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import structlog

from firmware.clock import Clock
from firmware.media.plane import FRAME_S, MediaPlane
from firmware.media.recorder_worker import GAP, HEADER
from firmware.media.recorder_worker import file_sha256 as _sha256

log = structlog.get_logger(__name__)

RATE = 8000
FRAME_SAMPLES = int(RATE * FRAME_S)
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
    dropped_s: float = 0.0  # audio the stalled worker could not take: silence in the file


@dataclass
class _Rec:
    call_id: str
    line: str
    path: Path
    started_at: float
    seq: int = 0  # the worker's number for it
    frames: int = 0  # ticks recorded
    dropped: int = 0  # ticks dropped on the way to the worker (it was stalled)
    pending: list = field(default_factory=list)
    untap: Callable[[], None] | None = None


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
    return _sha256(str(path))


class Recorder:
    """Every active recording of the box; the encoding and writing happen in one worker process
    (firmware/media/recorder_worker.py), fed through a pipe once per tick."""

    def __init__(self, plane: MediaPlane, directory: Path, clock: Clock, *,
                 bitrate: int = 24000, complexity: int = 0, batch_frames: int = 3,
                 page_s: float = 0.25, fsync_s: float = 5.0,
                 max_backlog_bytes: int = 8 << 20) -> None:
        self.plane = plane
        self.directory = Path(directory)
        self.clock = clock
        self.bitrate = bitrate
        self.complexity = complexity
        self.batch_frames = batch_frames
        self.page_s = page_s
        self.fsync_s = fsync_s
        self.max_backlog_bytes = max_backlog_bytes
        self.active: dict[str, _Rec] = {}
        self.failed = 0  # recordings that could not be written (disk full, I/O error)
        self.dropped_bytes = 0  # audio the worker could not take in time (it was stalled)
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task | None = None
        self._starting: asyncio.Task | None = None
        self._out: list[tuple[bytes, bytes]] = []  # (op, record) for the worker, once per tick
        self._flush_scheduled = False
        self._seq = 0
        self._closing: dict[int, tuple[_Rec, asyncio.Future]] = {}

    @property
    def worker_pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    async def launch(self) -> None:
        """Start the writer process (the first recording does it too, when needed)."""
        if self._proc is not None and self._proc.returncode is None:
            return
        try:
            await self._spawn()
        except OSError as exc:  # no room for a process, no interpreter: say it, keep the calls
            log.error("recorder_worker_not_started", error=str(exc))

    async def _spawn(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "firmware.media.recorder_worker",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        self._reader = asyncio.get_running_loop().create_task(self._answers(self._proc))

    # --- the loop's side -----------------------------------------------------------------
    def start(self, call_id: str, line: str) -> Path:
        """Start recording the call on ``line`` (a line leg of the plane) from this tick on."""
        if call_id in self.active:
            return self.active[call_id].path
        if self._proc is None and self._starting is None:
            self._starting = asyncio.get_running_loop().create_task(self.launch())
        wall = self.clock.wall()
        day = datetime.fromtimestamp(wall, timezone.utc)
        path = (self.directory.resolve() / f"{day:%Y}" / f"{day:%m}" / f"{day:%d}"
                / f"{_safe(call_id)}{SUFFIX}")
        self._seq += 1
        rec = _Rec(call_id, line, path, wall, seq=self._seq)
        self.active[call_id] = rec
        self._send(b"O", rec.seq, json.dumps({
            "path": str(path), "title": call_id, "bitrate": self.bitrate,
            "complexity": self.complexity, "page_s": self.page_s,
            "fsync_s": self.fsync_s}).encode())
        rec.untap = self.plane.tap(line, lambda st, rec=rec: self._frame(rec, st))
        log.info("recording_started", line=line, call_id=call_id)
        return path

    def _frame(self, rec: _Rec, stereo: bytes) -> None:
        rec.frames += 1
        rec.pending.append(stereo)
        if len(rec.pending) >= self.batch_frames:
            self._send(b"D", rec.seq, b"".join(rec.pending))
            rec.pending = []

    def _send(self, op: bytes, seq: int, payload: bytes = b"") -> None:
        self._out.append((op, HEADER.pack(op, seq, len(payload)) + payload))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        proc = self._proc
        if proc is None or proc.stdin is None:
            if self._starting is not None and not self._starting.done():
                asyncio.get_running_loop().call_later(0.02, self._flush)  # worker starting
                self._flush_scheduled = True
            else:
                self._lost("the recorder worker is not running (it failed or died)")
            return
        records, self._out = self._out, []
        transport = proc.stdin.transport
        if transport.is_closing():
            self._lost("the recorder worker is gone")
            return
        if transport.get_write_buffer_size() > self.max_backlog_bytes:
            # The worker is stalled: audio is dropped rather than memory growing without bound;
            # opening and closing still go through.
            lost = sum(len(r) for op, r in records if op == b"D")
            self.dropped_bytes += lost
            log.error("recorder_backlog_dropped", bytes=lost)
            # Each recording keeps its time: the worker puts silence where its audio was.
            by_seq = {rec.seq: rec for rec in self.active.values()}
            by_seq.update((seq, rec) for seq, (rec, _fut) in self._closing.items())
            kept = []
            for op, r in records:
                if op == b"D":
                    seq, n = HEADER.unpack_from(r)[1:]
                    samples = n // 4
                    if seq in by_seq:
                        by_seq[seq].dropped += samples // FRAME_SAMPLES
                    op, r = b"G", HEADER.pack(b"G", seq, 4) + GAP.pack(samples)
                kept.append((op, r))
            records = kept
        proc.stdin.write(b"".join(r for _op, r in records))

    def _lost(self, why: str) -> None:
        """No worker to write to: nothing is kept, every recording closing now says why."""
        self._out.clear()
        for seq, (rec, fut) in list(self._closing.items()):
            del self._closing[seq]
            if not fut.done():
                self.failed += 1
                fut.set_result(self._result(rec, None, why))

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
            self._send(b"D", rec.seq, b"".join(rec.pending))
            rec.pending = []
        self._closing[rec.seq] = (rec, fut)
        self._send(b"C", rec.seq)
        return fut

    async def close(self) -> list[RecordingResult]:
        """Finish every recording (the box is stopping) and stop the writer process."""
        futs = [self.stop(cid) for cid in list(self.active)]
        if self._starting is not None:
            await asyncio.gather(self._starting, return_exceptions=True)
        # Also the recordings stopped just before (the calls the stopping box hung up): their
        # files are finished by the worker like these, not written off.
        closing = [fut for _rec, fut in self._closing.values()]
        if closing:
            self._flush()  # (with no worker left, this answers them with the reason)
            await asyncio.wait(closing, timeout=30)
        results = [f.result() for f in futs if f.done() and f.result() is not None]
        proc = self._proc
        if proc is not None:
            self._flush()
            self._proc = None
            if proc.stdin is not None and not proc.stdin.transport.is_closing():
                proc.stdin.write(HEADER.pack(b"Q", 0, 0))
                proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
        for rec, fut in self._closing.values():
            if not fut.done():
                fut.set_result(self._result(rec, None, "the recorder stopped before the file "
                                                      "was closed"))
        self._closing.clear()
        return results

    async def _answers(self, proc: asyncio.subprocess.Process) -> None:
        while True:
            line = await proc.stdout.readline()
            if not line:
                break
            msg = json.loads(line)
            rec, fut = self._closing.pop(msg["rec"], (None, None))
            if rec is None:
                continue
            if msg["error"]:
                self.failed += 1
            if not fut.done():
                fut.set_result(self._result(rec, msg["sha256"], msg["error"], msg["bytes"]))
        if self._proc is proc:  # the worker died under us: recordings from now on restart it
            log.error("recorder_worker_exited", code=proc.returncode)
            self._proc = None
            self._starting = None

    def _result(self, rec: _Rec, sha: str | None, error: str = "",
                size: int = 0) -> RecordingResult:
        if rec.dropped:
            log.warning("recording_audio_dropped", call_id=rec.call_id, line=rec.line,
                        seconds=round(rec.dropped * FRAME_S, 2))
        return RecordingResult(rec.call_id, rec.line, rec.path, rec.started_at,
                               round(rec.frames * FRAME_S, 3), len(CHANNELS),
                               sha if not error else None, size, error,
                               round(rec.dropped * FRAME_S, 3))


