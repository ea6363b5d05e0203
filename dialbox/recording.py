"""Recording in the running box: every call whose audio passes through the media plane is recorded
from its answer to its release, indexed in the store, purged after the retention; the disk is
watched so that the box never dials calls it cannot record.

The recording starts at the answer for every call (outbound, inbound, abandoned): the bridge
follows within the 2-second rule, and the talk time the attempt records runs from the answer too,
so a recording lasts as long as the attempt's talk time.
"""
from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable

import structlog

from controller import recordings
from firmware.clock import Clock
from firmware.errors import Msg
from firmware.lineapi import CallProgress, CallReleased, CallStage, LineEvent
from firmware.media.recorder import CHANNELS, Recorder, RecordingResult, probe_duration

log = structlog.get_logger(__name__)

MB = 1024 * 1024
PURGE_HOUR = 3  # local time: the nightly purge runs once a day from this hour on


@dataclass
class DiskPolicy:
    warn_free_mb: float = 2048.0  # below this: a warning on the dashboard and in /healthz
    stop_free_mb: float = 512.0  # below this: automatic dialing pauses
    check_s: float = 30.0


class RecordingService:
    """Glue between line events, the recorder and the recordings index."""

    def __init__(self, store, lines, recorder: Recorder, data: Path, clock: Clock, *,
                 operator_of: Callable[[str], str | None],
                 retention_days: float = recordings.DEFAULT_RETENTION_DAYS,
                 disk: DiskPolicy | None = None,
                 on_disk: Callable[[str | None], None] | None = None) -> None:
        self.store = store
        self.lines = lines
        self.recorder = recorder
        self.data = Path(data)
        self.clock = clock
        self.operator_of = operator_of
        self.retention_days = retention_days  # the compliance profile may set it (law)
        self.policy = disk or DiskPolicy()
        self.on_disk = on_disk  # called with the reason to pause dialing, or None to resume
        self.disk: dict = {"level": "ok", "free_mb": None}
        self._task: asyncio.Task | None = None
        self._pending: set[asyncio.Future] = set()
        self._purged_on: str | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        # The store on its own threads, the files on another: the loop's connection is never
        # shared with a thread (a transaction there would swallow the loop's writes).
        left = await self.store.read(recordings.open_recordings)
        found = await loop.run_in_executor(None, recordings.measure_open, self.data, left,
                                           probe_duration)
        await self.store.run(recordings.mark_interrupted, found, self.clock.wall())
        if found:
            log.warning("recordings_interrupted_by_restart", count=len(found))
        self.check_disk()
        if any(leg.kind == "line" for leg in self.recorder.plane.legs.values()):
            await self.recorder.launch()  # warm before the first call is answered
        self._task = loop.create_task(self._housekeeping())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for result in await self.recorder.close():
            self._finished(result)
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    # --- calls ---------------------------------------------------------------------------
    def on_line_event(self, ev: LineEvent) -> None:
        if isinstance(ev, CallProgress):
            if ev.stage == CallStage.ANSWERED and self.lines.media_leg(ev.line) is not None:
                path = self.recorder.start(ev.call_id, ev.line)
                # On the store's writer thread: the answer's 2-second bridge never waits for it.
                self.store.submit(recordings.started, data=self.data, call_id=ev.call_id,
                                  line=ev.line, path=path, started_at=self.clock.wall(),
                                  channels=len(CHANNELS), operator=self.operator_of(ev.call_id))
            elif ev.stage == CallStage.BRIDGED and ev.call_id in self.recorder.active:
                op = self.operator_of(ev.call_id)
                if op:
                    self.store.submit(recordings.set_operator, ev.call_id, op)
        elif isinstance(ev, CallReleased) and ev.call_id in self.recorder.active:
            fut = self.recorder.stop(ev.call_id)
            self._pending.add(fut)
            fut.add_done_callback(self._done)

    def _done(self, fut: asyncio.Future) -> None:
        self._pending.discard(fut)
        if not fut.cancelled() and fut.result() is not None:
            self._finished(fut.result())

    def _finished(self, r: RecordingResult) -> None:
        try:
            self.store.submit(recordings.finished, call_id=r.call_id, duration_s=r.duration_s,
                              sha256=r.sha256, size=r.bytes, error=r.error,
                              now=self.clock.wall())
        except Exception:  # the store closing under us must not lose the others
            log.exception("recording_index_failed", call_id=r.call_id, line=r.line)
        if r.error:
            log.error("recording_failed", call_id=r.call_id, line=r.line, error=r.error)
        else:
            log.info("recording_finished", call_id=r.call_id, line=r.line,
                     duration_s=r.duration_s)

    # --- housekeeping --------------------------------------------------------------------
    async def _housekeeping(self) -> None:
        while True:
            await self.clock.sleep(self.policy.check_s)
            try:
                self.check_disk()
                await self.purge_if_due()
            except Exception:
                log.exception("recordings_housekeeping_failed")

    async def purge_if_due(self) -> recordings.PurgeResult | None:
        """Once a day, from PURGE_HOUR local time on: delete what the retention expired."""
        local = datetime.fromtimestamp(self.clock.wall())
        day = local.date().isoformat()
        if self._purged_on == day or local.hour < PURGE_HOUR:
            return None
        self._purged_on = day
        return await self.purge()

    async def purge(self) -> recordings.PurgeResult:
        now, days = self.clock.wall(), self.retention_days
        rows = await self.store.read(recordings.expired, now=now, retention_days=days)
        result = await asyncio.get_running_loop().run_in_executor(
            None, recordings.remove_files, self.data, rows)
        await self.store.run(recordings.mark_purged, result, now=now, retention_days=days)
        return result

    def check_disk(self) -> dict:
        """Free space where recordings go: ok, low (warn) or full (dialing pauses)."""
        self.recorder.directory.mkdir(parents=True, exist_ok=True)
        free_mb = shutil.disk_usage(self.recorder.directory).free / MB
        level = ("full" if free_mb < self.policy.stop_free_mb else
                 "low" if free_mb < self.policy.warn_free_mb else "ok")
        before = self.disk["level"]
        self.disk = {"level": level, "free_mb": round(free_mb, 1),
                     "warn_free_mb": self.policy.warn_free_mb,
                     "stop_free_mb": self.policy.stop_free_mb}
        if level != before:
            log.warning("recordings_disk", level=level, free_mb=round(free_mb, 1))
            if self.on_disk is not None:
                self.on_disk(self.pause_reason())
        return self.disk

    def pause_reason(self) -> str | None:
        if self.disk["level"] != "full":
            return None
        return Msg("recordings disk nearly full: {free} MB free, below the {limit} MB limit; free "
                   "space to resume dialing", free=f"{self.disk['free_mb']:.0f}",
                   limit=f"{self.policy.stop_free_mb:.0f}")
