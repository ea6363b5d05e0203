"""Benchmark of the media plane at real time: N bridged and recorded calls, both implementations.

``python -m benchmarks.media --json`` holds ``--calls`` calls (default 150: four E1 spans and 30
GSM ports) for ``--seconds`` (default 60) on the wall clock: every call is a line leg and an
operator position connected full duplex, each fed one 20 ms frame per tick by simulated hardware
(a different tone per leg; E1 B-channels carry A-law, decoded on the way in and encoded on the
way out, GSM ports s16 PCM), each output written to a sink, each call recorded in two channels
(Ogg/Opus through PyAV, two mono streams, in the recorder's worker process) into a temporary
directory. It measures CPU seconds per wall second of the box's process and its recorder worker
together (``cpu_cores``; each apart too) and frames delivered more than 20 ms late
(``late_frames``: every leg's frame of a tick that ran over 20 ms late or was skipped), with how
late the ticks ran (``lateness_ms_*``: a histogram, its p50 and p99 as bucket bounds) and the
machine's 1-minute load average before and after (a loaded machine makes ticks late that an idle
one would not). The other implementation runs the same in a child process
(``DIALBOX_NO_EXTENSIONS=1`` selects the twin at import); the last line printed is one JSON
object: ``calls``, ``cpu_cores``, ``late_frames``, ``implementation``, ``other`` (the same for
the other implementation) and ``ratio`` (the twin's plane CPU over the compiled plane's; the
recorder's encoder is the same C code in both). ``recorder_dropped_bytes`` > 0 means the
recorder worker did not get the CPU it needed (audio was dropped rather than queued forever).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RATE = 8000
E1_CALLS = 120  # four E1 spans of 30 B-channels; the rest of the calls are on GSM ports


def _proc_cpu(pid: int | None) -> float:
    """CPU seconds (user + system) of another process of ours, from /proc (Linux)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _quantile(hist: list[int], q: float, worst_ms: float) -> float | None:
    """The upper bound (ms) of the lateness bucket holding quantile ``q`` of the ticks (the
    worst lateness seen, when it is in the open bucket over the last bound)."""
    from firmware.media.plane import LATENESS_MS
    total, seen = sum(hist), 0
    for bound, n in zip(list(LATENESS_MS) + [worst_ms], hist):
        seen += n
        if total and seen >= q * total:
            return bound
    return None


def _tone(hz: float) -> list[bytes]:
    """One second of a tone as 50 frames (whole cycles: it loops without a click)."""
    pcm = struct.pack(f"<{RATE}h", *(int(6000 * math.sin(2 * math.pi * hz * i / RATE))
                                     for i in range(RATE)))
    return [pcm[i:i + 320] for i in range(0, len(pcm), 320)]


async def run(calls: int, seconds: float, record: bool, directory: Path) -> dict:
    from firmware.clock import Clock
    from firmware.media.plane import MediaPlane, lateness_table
    from firmware.media.recorder import Recorder
    from cext.media import alaw_decode, alaw_encode

    clock = Clock()
    plane = MediaPlane(clock, capacity=2 * calls + 8)
    recorder = Recorder(plane, directory, clock) if record else None
    written = [0]

    def sink(frame: bytes) -> None:  # a driver's writer: one frame out per tick
        written[0] += 1

    def e1_sink(frame: bytes) -> None:  # a B-channel carries A-law: encode what is sent
        alaw_encode(frame)
        written[0] += 1

    legs = []  # (leg, its voice as 50 frames, A-law?)
    voices = [_tone(300 + 50 * (i % 60)) for i in range(60)]
    alaw_voices = [[alaw_encode(f) for f in v] for v in voices]
    for i in range(calls):
        e1 = i < E1_CALLS  # four E1 spans first (A-law B-channels), then GSM ports (s16 PCM)
        name = f"e1s{i // 30}b{i % 30 + 1}" if e1 else f"gsm{i - E1_CALLS}"
        line = plane.add_leg(name, "line")
        pos = plane.add_leg(f"pos{i + 1}", "position")
        line.on_output(e1_sink if e1 else sink)
        pos.on_output(sink)
        plane.connect(line, pos)
        if recorder is not None:
            recorder.start(f"bench-{i}", line.name)
        legs.append((line, (alaw_voices if e1 else voices)[(2 * i) % 60], e1))
        legs.append((pos, voices[(2 * i + 1) % 60], False))
    await plane.start()

    async def hardware() -> None:  # simulated audio ports: a frame per leg every 20 ms
        k = 0
        due = clock.now()
        while True:
            for leg, voice, alaw in legs:
                frame = voice[k % 50]
                leg.push(alaw_decode(frame) if alaw else frame)
            k += 1
            due += 0.02
            await clock.sleep(due - clock.now())

    feeder = asyncio.get_running_loop().create_task(hardware())
    await clock.sleep(2.0)  # settle: buffers primed, the recorder's worker process running
    worker = recorder.worker_pid if recorder is not None else None
    late0, ticks0, lticks0, skip0 = (plane.late_frames, plane.ticks, plane.late_ticks,
                                     plane.skipped_ticks)
    hist0 = list(plane.lateness_hist)
    load0 = os.getloadavg()[0]
    cpu0, wcpu0, wall0 = time.process_time(), _proc_cpu(worker), time.perf_counter()
    await clock.sleep(seconds)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    wcpu = _proc_cpu(worker) - wcpu0
    late, ticks = plane.late_frames - late0, plane.ticks - ticks0
    hist = [b - a for a, b in zip(hist0, plane.lateness_hist)]
    worst = round(plane.max_lateness_s * 1000, 1)
    load1 = os.getloadavg()[0]
    feeder.cancel()
    await asyncio.gather(feeder, return_exceptions=True)
    results = await recorder.close() if recorder is not None else []
    await plane.stop()
    return {"implementation": plane.implementation, "calls": calls,
            "cpu_cores": round((cpu + wcpu) / wall, 3), "late_frames": late, "ticks": ticks,
            "plane_cpu_cores": round(cpu / wall, 3), "recorder_cpu_cores": round(wcpu / wall, 3),
            "late_ticks": plane.late_ticks - lticks0, "skipped_ticks": plane.skipped_ticks - skip0,
            "lateness_ms_p50": _quantile(hist, 0.5, worst),
            "lateness_ms_p99": _quantile(hist, 0.99, worst),
            "lateness_ms_hist": lateness_table(hist),
            "max_lateness_ms": worst,
            "load_avg_1m": [round(load0, 2), round(load1, 2)], "cpu_count": os.cpu_count(),
            "seconds": round(wall, 1), "recording": record,
            "recorded_ok": sum(1 for r in results if r.sha256 and not r.error),
            "recorder_dropped_bytes": recorder.dropped_bytes if recorder is not None else 0,
            "frames_out": written[0]}


def measure(calls: int, seconds: float, record: bool) -> dict:
    logging.getLogger().setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="dialbox-bench-media-") as tmp:
        return asyncio.run(run(calls, seconds, record, Path(tmp)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=150)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--no-record", action="store_true", help="switch only, no recorder")
    parser.add_argument("--json", action="store_true", help="print the JSON line only")
    parser.add_argument("--only", action="store_true", help="this implementation only")
    args = parser.parse_args(argv)
    from dialbox import logsetup
    logsetup.configure("WARNING")
    mine = measure(args.calls, args.seconds, not args.no_record)
    if not args.only:
        env = dict(os.environ)
        if mine["implementation"] == "cython":
            env["DIALBOX_NO_EXTENSIONS"] = "1"
        else:
            env.pop("DIALBOX_NO_EXTENSIONS", None)
        cmd = [sys.executable, "-m", "benchmarks.media", "--json", "--only",
               "--calls", str(args.calls), "--seconds", str(args.seconds)]
        if args.no_record:
            cmd.append("--no-record")
        out = subprocess.run(cmd, env=env, capture_output=True, text=True)
        try:
            other = json.loads(out.stdout.strip().splitlines()[-1])
        except (IndexError, ValueError):  # say why, and still print this implementation's line
            other = {"error": f"exit {out.returncode}: {out.stderr.strip()[-500:]}"}
        mine["other"] = other
        cy, py = (mine, other) if mine["implementation"] == "cython" else (other, mine)
        if cy.get("implementation") == "cython" and cy["plane_cpu_cores"] and "error" not in py:
            # the plane is where the two differ (the recorder's libopus is the same C code)
            mine["ratio"] = round(py["plane_cpu_cores"] / cy["plane_cpu_cores"], 2)
    if not args.json:
        for k, v in mine.items():
            print(f"{k:>16}: {v}")
    print(json.dumps(mine))
    return 0


if __name__ == "__main__":
    sys.exit(main())
