"""The media plane: every audio leg of the box, switched by one 20 ms tick on the injected clock.

Audio inside the plane is 8 kHz mono s16le, 20 ms frames of 160 samples (320 bytes). A leg is one
end of the box's audio: a line (``gsm0``, ``e1s0b1``: the Line API's line names), an operator
position (controller/operators.py's positions), or a prompt (an audio file played into legs).

- ``Leg.push(frame)`` queues a frame that came from outside into the leg's small jitter buffer.
  Each tick the plane takes at most one frame per leg (silence if none: an underrun never clicks).
- ``Leg.flush()`` forgets what waits in the jitter buffer: a line's next call starts clean.
- ``Leg.on_output(cb)`` is called each tick with the frame to send outside; ``Leg.pull()`` gives
  the same frame. Silence when nothing is connected. Writers write at the pace of the tick.
- ``connect(line, position)`` joins them full duplex and returns a future that resolves (with the
  clock time) when the first frame from the line has been delivered to the position: the bridge
  confirmation the 2-second rule is measured with.
- ``monitor(position, supervisor, mode)``: "listen" hears both sides, "whisper" also speaks to the
  operator only, "barge" speaks to both.
- ``play(targets, pcm)`` plays a prompt into legs (mixed with what they hear); ``tap(line, sink)``
  gives a recorder the line's two directions each tick, interleaved: (debtor, what the debtor hears).

The per-frame work happens in ``cext.media.FrameSwitch`` (Cython, or its pure-Python twin).
"""
from __future__ import annotations

import asyncio
from bisect import bisect_left
from typing import Callable, Iterable

import structlog

from cext import media as core
from firmware.clock import Clock

log = structlog.get_logger(__name__)

FRAME_S = 0.02
FRAME_BYTES = core.FRAME_BYTES
SILENCE = core.SILENCE
KINDS = ("line", "position", "prompt")
MODES = ("listen", "whisper", "barge")
MAX_CATCH_UP_TICKS = 5  # further behind than this, the plane skips ahead instead of bursting
# A leg's jitter buffer (cext.media.JitterBuffer) is fed and emptied at the same 50 frames a
# second, so frames that piled up in a burst (a stalled port, a stalled loop) would stay as
# latency for the rest of the call. What stayed in the buffer for a whole window (its minimum
# fill above the target's) is latency no jitter needed: it is dropped at the window's end.
# A leg given ``max_prefill`` above its ``prefill`` adapts its target to the jitter it meets.
DRAIN_WINDOW_TICKS = core.JB_WINDOW
LATENESS_MS = (1, 2, 5, 10, 20, 50, 100)  # upper bounds of the tick lateness histogram


def lateness_table(hist: list[int]) -> dict[str, int]:
    """A tick lateness histogram with its buckets named: {"<=1": n, ..., ">100": n}."""
    return dict(zip([f"<={b}" for b in LATENESS_MS] + [f">{LATENESS_MS[-1]}"], hist))


class MediaError(Exception):
    """A media request that cannot be carried out (unknown leg, wrong kind, busy position)."""


Sink = Callable[[bytes], None]


def _from_jitter(name: str, doc: str) -> property:
    """A leg's read-only view of its jitter buffer's ``name``."""
    return property(lambda leg: getattr(leg.jitter, name), doc=doc)


class Leg:
    """One end of the box's audio, with a jitter buffer in and the tick's frame out."""

    def __init__(self, plane: "MediaPlane", name: str, kind: str, slot: int, *,
                 depth: int, prefill: int, max_prefill: int = 0) -> None:
        self.plane = plane
        self.name = name
        self.kind = kind
        self.slot = slot
        self.jitter = core.JitterBuffer(depth, prefill, max_prefill)
        self._outputs: list[Sink] = []
        self._gain_in = 1.0
        self._gain_out = 1.0
        self.frames_in = 0  # frames pushed
        self.live = False  # this tick's input was a real frame, not silence filled in
        self.removed = False

    def __repr__(self) -> str:
        return f"Leg({self.name!r}, {self.kind!r})"

    # --- the jitter buffer's state ------------------------------------------------------
    depth = _from_jitter("depth", "Frames the jitter buffer holds at most.")
    prefill = _from_jitter("target", "Frames playout waits for now: the target (adaptive or "
                           "fixed).")
    dropped = _from_jitter("dropped", "Frames dropped because the jitter buffer was full.")
    underruns = _from_jitter("underruns", "Ticks that found the jitter buffer empty while "
                             "playing.")
    drained = _from_jitter("drained", "Frames dropped because they stood in the buffer a whole "
                           "window.")

    def jitter_stats(self) -> dict:
        """What a technician reads of this leg's jitter buffer."""
        jb = self.jitter
        return {"buffered": len(jb), "target": jb.target, "adaptive": jb.adaptive,
                "max_target": jb.max_prefill, "jitter_ms": round(jb.jitter_ms, 1),
                "grown": jb.grown, "shrunk": jb.shrunk, "dropped": jb.dropped,
                "drained": jb.drained, "underruns": jb.underruns}

    # --- the outside pushes and takes ----------------------------------------------------
    def push(self, frame: bytes) -> None:
        """A frame that arrived from outside (line audio port, browser)."""
        if len(frame) != FRAME_BYTES:
            raise ValueError(f"{self.name}: a frame is {FRAME_BYTES} bytes, got {len(frame)}")
        self.frames_in += 1
        self.jitter.push(frame, self.plane.clock.now())

    def flush(self) -> None:
        """Forget the frames waiting in the jitter buffer (a new call starts on this leg)."""
        self.jitter.flush()

    def on_output(self, callback: Sink) -> Callable[[], None]:
        """Call ``callback(frame)`` every tick with the frame to send; returns a remover."""
        self._outputs.append(callback)

        def remove() -> None:
            if callback in self._outputs:
                self._outputs.remove(callback)
        return remove

    def pull(self) -> bytes:
        """The frame to send outside this tick (silence when nothing is connected)."""
        if self.removed:
            return SILENCE
        return self.plane.switch.output(self.slot)

    # --- gain and meters -----------------------------------------------------------------
    @property
    def gain_in(self) -> float:
        return self._gain_in

    @gain_in.setter
    def gain_in(self, gain: float) -> None:
        self.plane.switch.set_gain(self.slot, gain, self._gain_out)
        self._gain_in = float(gain)

    @property
    def gain_out(self) -> float:
        return self._gain_out

    @gain_out.setter
    def gain_out(self, gain: float) -> None:
        self.plane.switch.set_gain(self.slot, self._gain_in, gain)
        self._gain_out = float(gain)

    @property
    def level_in_dbfs(self) -> float:
        """Level of the frame this leg received this tick (after its input gain)."""
        return core.DBFS_FLOOR if self.removed else self.plane.switch.level_in(self.slot)

    @property
    def level_out_dbfs(self) -> float:
        """Level of the frame this leg sends this tick."""
        return core.DBFS_FLOOR if self.removed else self.plane.switch.level_out(self.slot)


class _Prompt:
    def __init__(self, leg: Leg, pcm: bytes, targets: tuple[str, ...], done: asyncio.Future):
        self.leg = leg
        self.pcm = pcm
        self.pos = 0
        self.targets = targets
        self.done = done

    def next_frame(self) -> bytes | None:
        if self.pos >= len(self.pcm):
            return None
        chunk = self.pcm[self.pos:self.pos + FRAME_BYTES]
        self.pos += FRAME_BYTES
        return chunk if len(chunk) == FRAME_BYTES else chunk + bytes(FRAME_BYTES - len(chunk))


class MediaPlane:
    """All legs, one tick. Start it once; legs come and go with lines, positions and prompts."""

    def __init__(self, clock: Clock, *, capacity: int = 64, jitter_depth: int = 4,
                 jitter_prefill: int = 2) -> None:
        self.clock = clock
        self.switch = core.FrameSwitch(max(1, capacity))
        self.implementation = core.IMPLEMENTATION
        self.jitter_depth = jitter_depth
        self.jitter_prefill = jitter_prefill
        self.legs: dict[str, Leg] = {}
        self._slots: list[Leg | None] = [None] * self.switch.capacity
        self._free: list[int] = list(range(self.switch.capacity - 1, -1, -1))
        self._peer: dict[str, str] = {}  # line <-> position, both directions
        self._monitors: dict[str, tuple[str, str]] = {}  # supervisor -> (position, mode)
        self._prompts: dict[str, _Prompt] = {}  # prompt leg name -> prompt
        self._prompt_seq = 0
        self._confirm: dict[str, asyncio.Future] = {}  # line name -> bridge confirmation
        self._taps: dict[str, list[Sink]] = {}  # line name -> recorder sinks
        self._task: asyncio.Task | None = None
        self.ticks = 0
        self.late_ticks = 0  # ticks that ran more than one frame (20 ms) after their time
        self.late_frames = 0  # the legs' frames of those ticks (and of ticks skipped)
        self.skipped_ticks = 0  # ticks given up to catch up after a long stall
        self.max_lateness_s = 0.0
        # How late each tick ran, counted per bucket: up to 1, 2, 5, ... 100 ms, then over 100.
        self.lateness_hist = [0] * (len(LATENESS_MS) + 1)

    # --- life cycle ----------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        for name in list(self._prompts):
            self._end_prompt(name, completed=False)
        for line in list(self._confirm):
            self._fail_confirm(line, "the media plane stopped")

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        clock = self.clock
        due = clock.now() + FRAME_S
        while True:
            await clock.sleep(due - clock.now())
            now = clock.now()
            late = now - due
            if late > FRAME_S:
                self.late_ticks += 1
                self.late_frames += len(self.legs)
            if late > self.max_lateness_s:
                self.max_lateness_s = late
            self.lateness_hist[bisect_left(LATENESS_MS, late * 1000.0)] += 1
            try:
                self.tick()
            except Exception:  # one bad frame or sink must not stop every call's audio
                log.exception("media_tick_failed")
            due += FRAME_S
            behind = clock.now() - due
            if behind > MAX_CATCH_UP_TICKS * FRAME_S:
                skip = int(behind / FRAME_S)
                self.skipped_ticks += skip
                self.late_frames += skip * len(self.legs)
                due += skip * FRAME_S
                self._silence_taps(skip)
                log.warning("media_plane_stalled", skipped_ticks=skip)

    # --- legs ----------------------------------------------------------------------------
    def add_leg(self, name: str, kind: str, *, depth: int | None = None,
                prefill: int | None = None, max_prefill: int | None = None) -> Leg:
        """A new leg. Its jitter buffer waits for ``prefill`` frames (the plane's default) and
        holds ``depth``; with ``max_prefill`` above ``prefill`` its target adapts between them
        to the jitter the leg's frames arrive with (cext/media_py.py says how)."""
        if kind not in KINDS:
            raise MediaError(f"leg kind must be one of {', '.join(KINDS)}, got {kind!r}")
        if name in self.legs:
            raise MediaError(f"a leg named {name!r} exists already")
        prefill = self.jitter_prefill if prefill is None else prefill
        max_prefill = prefill if max_prefill is None else max_prefill
        if depth is None:  # an adaptive buffer keeps room for a burst on top of its largest
            depth = self.jitter_depth if max_prefill <= prefill else max(
                self.jitter_depth, max_prefill + 2)
        if not 1 <= prefill <= max(prefill, max_prefill) <= depth:
            raise MediaError(f"jitter buffer: need 1 <= prefill <= max_prefill <= depth, got "
                             f"{prefill}, {max_prefill}, {depth}")
        if not self._free:
            self._grow()
        slot = self._free.pop()
        leg = Leg(self, name, kind, slot, depth=depth, prefill=prefill, max_prefill=max_prefill)
        self.switch.reset(slot)
        self.legs[name] = leg
        self._slots[slot] = leg
        return leg

    def remove_leg(self, leg: Leg | str) -> None:
        leg = self._leg(leg)
        self.disconnect(leg)
        self.unmonitor(leg)
        for sup, (pos, _mode) in list(self._monitors.items()):
            if pos == leg.name:
                del self._monitors[sup]
        for name, prompt in list(self._prompts.items()):
            if leg.name in prompt.targets or name == leg.name:
                self._end_prompt(name, completed=False)
        self._taps.pop(leg.name, None)
        del self.legs[leg.name]
        self._slots[leg.slot] = None
        self.switch.reset(leg.slot)
        self._free.append(leg.slot)
        leg.removed = True
        leg._outputs.clear()
        self._route()

    def leg(self, name: str) -> Leg:
        return self._leg(name)

    def _leg(self, leg: Leg | str) -> Leg:
        name = leg.name if isinstance(leg, Leg) else leg
        try:
            found = self.legs[name]
        except KeyError:
            raise MediaError(f"no media leg named {name!r}") from None
        if isinstance(leg, Leg) and found is not leg:
            raise MediaError(f"leg {name!r} was removed")
        return found

    def _grow(self) -> None:
        old = self.switch
        new = core.FrameSwitch(old.capacity * 2)
        for slot, leg in enumerate(self._slots):
            if leg is not None:
                new.set_gain(slot, leg.gain_in, leg.gain_out)
        self._free = list(range(new.capacity - 1, old.capacity - 1, -1)) + self._free
        self._slots += [None] * (new.capacity - old.capacity)
        self.switch = new
        self._route()

    # --- switching -----------------------------------------------------------------------
    def connect(self, line: Leg | str, position: Leg | str) -> asyncio.Future:
        """Join a line and a position full duplex; the future resolves (with the clock time)
        when the first frame from the line has been delivered to the position."""
        ln, pos = self._leg(line), self._leg(position)
        if ln.kind != "line" or pos.kind != "position":
            raise MediaError(f"connect joins a line to a position, got {ln.kind} {ln.name!r} "
                             f"and {pos.kind} {pos.name!r}")
        if self._peer.get(ln.name) == pos.name and ln.name in self._confirm:
            return self._confirm[ln.name]
        if pos.name in self._peer:
            raise MediaError(f"position {pos.name!r} is already connected to "
                             f"{self._peer[pos.name]!r}")
        self.disconnect(ln)
        self._peer[ln.name] = pos.name
        self._peer[pos.name] = ln.name
        fut = asyncio.get_running_loop().create_future()
        self._confirm[ln.name] = fut
        self._route()
        return fut

    def disconnect(self, leg: Leg | str) -> None:
        """Break the connection this line or position is in (nothing if it is in none)."""
        leg = self._leg(leg)
        peer = self._peer.pop(leg.name, None)
        if peer is None:
            return
        self._peer.pop(peer, None)
        line = leg.name if leg.kind == "line" else peer
        self._fail_confirm(line, "disconnected before the first frame reached the position")
        self._route()

    def peer(self, leg: Leg | str) -> str | None:
        return self._peer.get(self._leg(leg).name)

    def monitor(self, position: Leg | str, supervisor: Leg | str, mode: str = "listen") -> None:
        pos, sup = self._leg(position), self._leg(supervisor)
        if mode not in MODES:
            raise MediaError(f"monitor mode must be one of {', '.join(MODES)}, got {mode!r}")
        if pos.kind != "position" or sup.kind != "position":
            raise MediaError("a supervisor monitors an operator position from a position")
        if pos is sup:
            raise MediaError("a position cannot monitor itself")
        if sup.name in self._peer:
            raise MediaError(f"position {sup.name!r} is in a call and cannot monitor")
        self._monitors[sup.name] = (pos.name, mode)
        self._route()

    def unmonitor(self, supervisor: Leg | str) -> None:
        if self._monitors.pop(self._leg(supervisor).name, None) is not None:
            self._route()

    def play(self, targets: Leg | str | Iterable[Leg | str], pcm: bytes) -> asyncio.Future:
        """Play 8 kHz s16le PCM into the targets' outputs; resolves (clock time) when played.
        It is mixed with whatever the targets hear; removing a target cuts it short."""
        if isinstance(targets, (Leg, str)):
            targets = [targets]
        names = tuple(self._leg(t).name for t in targets)
        if not names:
            raise MediaError("a prompt needs at least one leg to play into")
        self._prompt_seq += 1
        leg = self.add_leg(f"prompt:{self._prompt_seq}:{names[0]}", "prompt", depth=1, prefill=1)
        fut = asyncio.get_running_loop().create_future()
        self._prompts[leg.name] = _Prompt(leg, bytes(pcm), names, fut)
        self._route()
        return fut

    def stop_prompts(self, target: Leg | str) -> None:
        """Cut short every prompt playing into ``target``."""
        name = self._leg(target).name
        for pname, prompt in list(self._prompts.items()):
            if name in prompt.targets:
                self._end_prompt(pname, completed=False)

    def tap(self, line: Leg | str, sink: Sink) -> Callable[[], None]:
        """Every tick, ``sink`` gets the line's two directions interleaved (640 bytes: what the
        debtor said, what the debtor heard). Returns a remover."""
        name = self._leg(line).name
        self._taps.setdefault(name, []).append(sink)

        def remove() -> None:
            sinks = self._taps.get(name)
            if sinks and sink in sinks:
                sinks.remove(sink)
                if not sinks:
                    del self._taps[name]
        return remove

    def _route(self) -> None:
        """Recompute every leg's sources from connections, monitors and prompts."""
        srcs: dict[str, list[str]] = {name: [] for name in self.legs}
        for a, b in self._peer.items():
            srcs[a].append(b)
        for sup, (pos, mode) in self._monitors.items():
            line = self._peer.get(pos)
            srcs[sup] += [pos] + ([line] if line else [])
            if mode in ("whisper", "barge"):
                srcs[pos].append(sup)
            if mode == "barge" and line:
                srcs[line].append(sup)
        for pname, prompt in self._prompts.items():
            for t in prompt.targets:
                srcs[t].append(pname)
        for name, leg in self.legs.items():
            slots = [self.legs[s].slot for s in srcs[name]][:core.MAX_SOURCES]
            self.switch.set_sources(leg.slot, slots)

    # --- the tick ------------------------------------------------------------------------
    def tick(self) -> None:
        """One 20 ms frame for every leg (the loop calls it; tests may call it directly)."""
        sw = self.switch
        ended: list[str] = []
        for leg in self.legs.values():
            if leg.kind == "prompt":
                prompt = self._prompts.get(leg.name)
                frame = prompt.next_frame() if prompt else None
                if frame is None and prompt is not None:
                    ended.append(leg.name)
            else:
                frame = leg.jitter.take()
            leg.live = frame is not None
            sw.set_input(leg.slot, frame)
        sw.tick()
        self.ticks += 1
        for leg in list(self.legs.values()):
            if leg._outputs:
                out = sw.output(leg.slot)
                for cb in list(leg._outputs):
                    try:
                        cb(out)
                    except Exception:
                        log.exception("media_output_failed", leg=leg.name)
        if self._confirm:
            now = self.clock.now()
            for line, fut in list(self._confirm.items()):
                if self.legs[line].live:  # it is routed to its position: delivered this tick
                    del self._confirm[line]
                    if not fut.done():
                        fut.set_result(now)
        for line, sinks in list(self._taps.items()):
            st = sw.stereo(self.legs[line].slot)
            for sink in list(sinks):
                try:
                    sink(st)
                except Exception:
                    log.exception("media_tap_failed", leg=line)
        for name in ended:
            self._end_prompt(name, completed=True)

    def _silence_taps(self, n: int) -> None:
        """Ticks given up: recorders get silence for them, so recordings stay in step with time."""
        gap = bytes(2 * FRAME_BYTES)
        for line, sinks in list(self._taps.items()):
            for sink in list(sinks):
                for _ in range(n):
                    try:
                        sink(gap)
                    except Exception:
                        log.exception("media_tap_failed", leg=line)
                        break

    def _end_prompt(self, name: str, *, completed: bool) -> None:
        prompt = self._prompts.pop(name, None)
        if prompt is None:
            return
        if not prompt.done.done():
            prompt.done.set_result(self.clock.now() if completed else None)
        if name in self.legs:
            self.remove_leg(name)

    def _fail_confirm(self, line: str, why: str) -> None:
        fut = self._confirm.pop(line, None)
        if fut is not None and not fut.done():
            fut.set_exception(MediaError(f"{line}: {why}"))
            fut.exception()  # retrieved here: nobody waiting is not an error

    # --- what a technician sees ----------------------------------------------------------
    def snapshot(self) -> dict:
        return {
            "implementation": self.implementation,
            "ticks": self.ticks, "late_ticks": self.late_ticks,
            "skipped_ticks": self.skipped_ticks,
            "lateness_ms": lateness_table(self.lateness_hist),
            "legs": {name: {"kind": leg.kind, "peer": self._peer.get(name),
                            "level_in_dbfs": round(leg.level_in_dbfs, 1),
                            "level_out_dbfs": round(leg.level_out_dbfs, 1),
                            **leg.jitter_stats()}
                     for name, leg in self.legs.items() if leg.kind != "prompt"},
            "monitors": {sup: {"position": pos, "mode": mode}
                         for sup, (pos, mode) in self._monitors.items()},
        }
