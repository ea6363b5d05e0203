"""WebRTC desks at scale: ``python -m benchmarks.webrtc --json``.

N operator sessions as real WebRTC peers (aiortc, DTLS-SRTP over loopback, in child processes
that play the browsers, ``--desks-per-process`` each) against the box's media plane in this
process, each with a call bridged (a debtor line saying a tone) and recorded (Ogg/Opus). The
browsers are made cheap (G.711 frames counted, not decoded; the microphone a precomputed tone)
so that they do not starve the box they measure. Measured:

- cpu_cores: the box's CPU seconds per wall second over the window: this process and its
  recorder worker process; desks_cpu_cores: the browsers' processes (they stand for the office
  PCs: not the box's cost, shown so a run can be judged);
- added_latency_p99_ms: from a debtor frame pushed into its line leg to the RTP packet carrying it
  leaving the box for the operator (each frame's first sample carries its sequence number);
  with ``--lines both``, per kind of line buffer in ``by_buffer``;
- lost_frames: debtor frames that did not reach the operator's browser: jitter-buffer drops,
  drains (standing frames, and an adaptive buffer's shrinks) and underruns (a frame's gap),
  frames the outgoing track had to drop, ticks the plane skipped, and packets the browsers
  found missing (RTP sequence gaps).

The debtors' frames reach their lines (``--line-jitter``) on the box's clock grid ("none": as
an E1 span clocks its B-channels), or as a GSM module's USB audio port may hand them over, each
module at a phase of its own (eight phases over the period; no clock drift): "usb", one frame
every 20 ms, each 0-4 ms late (the host's scheduling of the port's reads); "pairs", two frames
together every 40 ms, each pair 0-2 ms late (a module or driver that batches two frames).
The line legs' jitter buffers (``--lines``) are fixed at ``--line-prefill`` frames, adaptive
as a GSM module's line (firmware.gsm.driver: one frame, up to GSM_MAX_PREFILL_FRAMES), or
"both", every other line.

The last line printed is one JSON object (with --json).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import random
import struct
import sys
import tempfile
from pathlib import Path

import structlog

RATE = 8000
WARMUP_S = 3.0
DESKS_PER_PROCESS = 15
PHASES = 8  # "usb", "pairs": the modules' phases, spread over the period of their deliveries
# --line-jitter: frames per delivery, the period (s), and how late a delivery may be (s)
USB_JITTER = {"usb": (1, 0.02, 0.004), "pairs": (2, 0.04, 0.002)}


def _quiet() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
                        logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    logging.getLogger().setLevel(logging.WARNING)


# --- the browsers (child process) ---------------------------------------------------------------
async def browsers(n: int) -> None:
    """Answer the box's offers read from stdin (one JSON line each); report stats at "end"."""
    from web_admin.rtc import MediaNetworks
    from web_admin.rtc_peer import BrowserPeer, ToneTrack
    MediaNetworks.parse(["127.0.0.1/8"]).install()  # the office PCs are on the box's network
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    peers: dict[int, BrowserPeer] = {}

    def out(msg: dict) -> None:
        sys.stdout.write(json.dumps(msg) + "\n")
        sys.stdout.flush()

    while True:
        line = await reader.readline()
        if not line:
            break
        msg = json.loads(line)
        if msg.get("end"):
            lost = received = 0
            for p in peers.values():
                for rec in p.pc.getReceivers():
                    for s in (await rec.getStats()).values():
                        if s.type == "inbound-rtp":
                            lost += max(0, s.packetsLost)
                            received += s.packetsReceived
            out({"lost": lost, "received": received,
                 "undecoded": all(p.counted is not None for p in peers.values())})
            break
        peer = peers[msg["i"]] = BrowserPeer(ToneTrack(1050.0), listen=False)
        sdp = await peer.answer(msg)
        codecs = peer.pc.getTransceivers()[0]._codecs
        if codecs and codecs[0].mimeType == "audio/PCMA":
            from cext import media
            peer.mic.g711 = media.alaw_encode  # a cheap microphone: the box is measured
        out({"i": msg["i"], "sdp": sdp})
    for p in peers.values():
        await p.close()


# --- the box ------------------------------------------------------------------------------------
async def box(n: int, seconds: float, per_process: int = DESKS_PER_PROCESS,
              line_prefill: int | None = None, line_jitter: str = "none",
              kinds: str = "fixed") -> dict:
    import av  # noqa: F401 (fail early when PyAV is missing)

    from firmware.clock import Clock
    from firmware.gsm.driver import GSM_MAX_PREFILL_FRAMES, GSM_PREFILL_FRAMES
    from firmware.media.plane import MediaPlane
    from firmware.media.recorder import Recorder
    from web_admin.rtc import DeskMedia, MediaNetworks

    MediaNetworks.parse(["127.0.0.1/8"]).install()
    clock = Clock()
    plane = MediaPlane(clock, capacity=2 * n + 8)
    await plane.start()
    tmp = tempfile.TemporaryDirectory(prefix="dialbox-bench-")
    recorder = Recorder(plane, Path(tmp.name), clock)
    push_at: list[list[float]] = [[0.0] * 32768 for _ in range(n)]  # per line, per frame
    latencies: dict[str, list[float]] = {"fixed": [], "adaptive": []}
    rtc_latencies: list[float] = []
    measuring = False

    children = [await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.webrtc", "--browsers", str(n),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=1 << 22)
        for _ in range(max(1, math.ceil(n / per_process)))]
    desks, lines = [], []
    load0 = os.getloadavg()[0]
    try:
        for i in range(n):
            child = children[i % len(children)]
            pos = plane.add_leg(f"op{i}", "position")
            adaptive = kinds == "adaptive" or (kinds == "both" and i % 2 == 1)
            if adaptive:  # as the GSM driver makes a module's line
                line = plane.add_leg(f"b{i}", "line", prefill=GSM_PREFILL_FRAMES,
                                     max_prefill=GSM_MAX_PREFILL_FRAMES)
            else:
                line = plane.add_leg(f"b{i}", "line", prefill=line_prefill)
            desk = DeskMedia(f"op{i}", pos, MediaNetworks.parse(["127.0.0.1/8"]),
                             notify=lambda up, why: None)
            offer = await desk.offer()
            track = desk._track
            child.stdin.write((json.dumps({"i": i, **offer}) + "\n").encode())
            await child.stdin.drain()
            answer = json.loads(await child.stdout.readline())
            await desk.answer(answer["sdp"])
            sender = desk.pc.getTransceivers()[0].sender
            _measure(sender, track, pos, push_at[i],
                     latencies["adaptive" if adaptive else "fixed"], rtc_latencies,
                     lambda: measuring)
            desks.append(desk)
            lines.append(line)
        for _ in range(1200):  # a loaded machine takes its time over 60 DTLS handshakes
            if all(d.up for d in desks):
                break
            await asyncio.sleep(0.05)
        for i, (line, desk) in enumerate(zip(lines, desks)):
            plane.connect(line, desk.leg)  # confirmed once the debtors speak
            recorder.start(f"bench-{i}", line.name)
        loop = asyncio.get_running_loop()
        if line_jitter in USB_JITTER:
            per, period, late = USB_JITTER[line_jitter]
            feeders = [loop.create_task(_debtors_on_usb(
                [(ln, push_at[i]) for i, ln in enumerate(lines) if (i // 2) % PHASES == g],
                clock, g * period / PHASES, per, late, random.Random(g))) for g in range(PHASES)]
        else:
            feeders = [loop.create_task(_debtors(lines, clock, push_at))]
        await asyncio.sleep(WARMUP_S)
        base = _losses(plane, lines, desks)
        per_kind0 = {k: _line_losses([ln for ln in lines if _kind(ln) == k]) for k in latencies}
        buffers0 = {k: _buffers([ln for ln in lines if _kind(ln) == k]) for k in latencies}
        rec0 = _proc_cpu(recorder.worker_pid)
        t0, cpu0 = clock.now(), _cpu() + rec0
        desks0 = sum(_proc_cpu(c.pid) for c in children)
        measuring = True
        await asyncio.sleep(seconds)
        measuring = False
        wall = clock.now() - t0
        rec = _proc_cpu(recorder.worker_pid) - rec0
        cpu = _cpu() + rec + rec0 - cpu0
        desks_cpu = sum(_proc_cpu(c.pid) for c in children) - desks0
        box_lost = {k: v - base[k] for k, v in _losses(plane, lines, desks).items()}
        per_kind = {k: {w: v - per_kind0[k][w] for w, v in
                        _line_losses([ln for ln in lines if _kind(ln) == k]).items()}
                    for k in latencies}
        buffers = {k: _buffers([ln for ln in lines if _kind(ln) == k], buffers0[k])
                   for k in latencies}  # at the window's end: the call's end is no underrun
        connected = sum(1 for d in desks if d.up)  # before the browsers are told to end
        seen = {"lost": 0, "received": 0, "undecoded": True}
        for child in children:
            child.stdin.write(b'{"end": true}\n')
            await child.stdin.drain()
            got = json.loads(await child.stdout.readline())
            seen = {"lost": seen["lost"] + got["lost"],
                    "received": seen["received"] + got["received"],
                    "undecoded": seen["undecoded"] and got["undecoded"]}
        for feeder in feeders:
            feeder.cancel()
        await asyncio.gather(*feeders, return_exceptions=True)
    finally:
        for d in desks:
            await d.close()
        await recorder.close()
        await plane.stop()
        for child in children:
            if child.returncode is None:
                child.stdin.close()
                try:
                    await asyncio.wait_for(child.wait(), 10)
                except asyncio.TimeoutError:
                    child.kill()
                    await child.wait()
        tmp.cleanup()
    by_buffer = {}
    for kind, lat in latencies.items():
        group = [ln for ln in lines if _kind(ln) == kind]
        if not group:
            continue
        lat.sort()
        by_buffer[kind] = {
            "lines": len(group), "added_latency_p50_ms": _pct(lat, 0.5),
            "added_latency_p99_ms": _pct(lat, 0.99), "lost_frames": sum(per_kind[kind].values()),
            "lost_where": per_kind[kind], **buffers[kind]}
    latencies = sorted(latencies["fixed"] + latencies["adaptive"])
    rtc_latencies.sort()
    p99 = latencies[int(0.99 * (len(latencies) - 1))] * 1000 if latencies else None
    rtc_p99 = (rtc_latencies[int(0.99 * (len(rtc_latencies) - 1))] * 1000
               if rtc_latencies else None)
    return {"operators": n, "connected": connected, "seconds": round(wall, 1),
            "codec": desks[0].codec if desks else None,
            "cpu_cores": round(cpu / wall, 3), "recorder_cpu_cores": round(rec / wall, 3),
            "desks_cpu_cores": round(desks_cpu / wall, 3), "desk_processes": len(children),
            "desks_decode": not seen["undecoded"],
            "added_latency_p50_ms": round(latencies[len(latencies) // 2] * 1000, 2)
            if latencies else None,
            "added_latency_p99_ms": round(p99, 2) if p99 is not None else None,
            "tick_to_packet_p99_ms": round(rtc_p99, 2) if rtc_p99 is not None else None,
            "load_average_before": round(load0, 1),
            "load_average": round(os.getloadavg()[0], 1), "machine_cores": os.cpu_count(),
            "lost_frames": sum(box_lost.values()) + seen["lost"],
            "lost_where": dict(box_lost, rtp_gaps=seen["lost"]),
            "packets_received": seen["received"],
            "line_prefill_frames": line_prefill, "line_jitter": line_jitter, "lines": kinds,
            "by_buffer": by_buffer,
            "core": plane.implementation}


def _kind(line) -> str:
    return "adaptive" if line.jitter.adaptive else "fixed"


def _pct(sorted_s: list[float], q: float) -> float | None:
    return round(sorted_s[int(q * (len(sorted_s) - 1))] * 1000, 2) if sorted_s else None


def _measure(sender, track, leg, push_at, latencies, rtc_latencies, measuring) -> None:
    """Stamp each RTP packet as it leaves for the browser with the debtor frame it carries
    (from its push into the line), and with the tick that made it (the WebRTC part alone)."""
    transport = sender.transport
    send = transport._send_rtp
    loop = asyncio.get_running_loop()
    made_at: dict[int, float] = {}
    queue = track._frame

    def stamped(pcm: bytes) -> None:
        made_at[struct.unpack_from("<h", pcm)[0]] = loop.time()
        queue(pcm)
    track._frame = stamped
    track._remove()
    track._remove = leg.on_output(stamped)

    async def timed(data: bytes) -> None:
        await send(data)
        seq = struct.unpack_from("<h", track.last)[0] if track.last else -1
        if measuring() and seq >= 0:
            now = loop.time()
            latencies.append(now - push_at[seq])
            if seq in made_at:
                rtc_latencies.append(now - made_at.pop(seq))
    transport._send_rtp = timed


_TONE = [int(5000 * math.sin(2 * math.pi * 450 * i / RATE)) for i in range(RATE)]


def _said(seq: int) -> bytes:
    """The debtor's frame number ``seq``: a tone whose sample 0 is the sequence number."""
    k = (seq * 160) % RATE
    return struct.pack("<h159h", seq, *_TONE[k + 1:k + 160])


async def _debtors(lines, clock, push_at) -> None:
    """Every line's debtor says a tone, 20 ms a frame on the clock's grid (an E1 span's)."""
    loop = asyncio.get_running_loop()
    due, seq = clock.now(), 0
    while True:
        pcm = _said(seq)
        now = loop.time()
        for i, line in enumerate(lines):
            push_at[i][seq] = now
            line.push(pcm)
        seq = (seq + 1) % 32768
        due += 0.02
        await clock.sleep(due - clock.now())


async def _debtors_on_usb(lines, clock, phase: float, per: int, late: float,
                          rnd: random.Random) -> None:
    """These lines' modules hand over ``per`` frames at a time every ``per`` * 20 ms, at
    ``phase``, each delivery 0-``late`` s late (a USB audio port read by a busy host)."""
    loop = asyncio.get_running_loop()
    due, seq = clock.now() + phase, 0
    while True:
        await clock.sleep(due + rnd.uniform(0.0, late) - clock.now())
        frames = [_said((seq + k) % 32768) for k in range(per)]
        now = loop.time()
        for line, at in lines:
            for k, pcm in enumerate(frames):
                at[(seq + k) % 32768] = now
                line.push(pcm)
        seq = (seq + per) % 32768
        due += 0.02 * per


def _buffers(lines, before: dict | None = None) -> dict:
    """These lines' jitter buffers now: their targets, growths and shrinks (since ``before``),
    and the median of their arrival jitter."""
    if not lines:
        return {}
    grown = sum(ln.jitter.grown for ln in lines)
    shrunk = sum(ln.jitter.shrunk for ln in lines)
    return {"targets": {str(t): sum(1 for ln in lines if ln.prefill == t)
                        for t in sorted({ln.prefill for ln in lines})},
            "grown": grown - (before or {}).get("grown", 0),
            "shrunk": shrunk - (before or {}).get("shrunk", 0),
            "jitter_ms_p50": round(sorted(ln.jitter.jitter_ms for ln in lines)[
                len(lines) // 2], 1)}


def _line_losses(lines) -> dict[str, int]:
    """Frames these lines' jitter buffers lost so far, by how."""
    return {"jitter_dropped": sum(ln.dropped for ln in lines),
            "jitter_underruns": sum(ln.underruns for ln in lines),
            "jitter_drained": sum(ln.drained + ln.jitter.shrunk for ln in lines)}


def _losses(plane, lines, desks) -> dict[str, int]:
    """Frames lost in the box so far, by where."""
    return {**_line_losses(lines),
            "ticks_skipped": plane.skipped_ticks,
            "track_dropped": sum(d._track.dropped for d in desks if d._track is not None)}


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def _proc_cpu(pid: int | None) -> float:
    """CPU seconds (user + system) of another process so far (Linux /proc); 0 when gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.webrtc", description=__doc__.split(
        "\n")[0])
    from firmware.e1.span import E1_PREFILL_FRAMES
    p.add_argument("--operators", type=int, default=60)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--desks-per-process", type=int, default=DESKS_PER_PROCESS,
                   help="browsers (aiortc peers) per child process (default %(default)s)")
    p.add_argument("--line-prefill", type=int, metavar="FRAMES", default=E1_PREFILL_FRAMES,
                   help="the debtor lines' jitter-buffer prefill (default %(default)s, an E1 "
                        "B-channel's, clocked by its span; 2 for a GSM module's USB audio)")
    p.add_argument("--line-jitter", choices=("none", *USB_JITTER), default="none",
                   help="how the debtors' frames reach their lines: on the box's clock grid "
                        "(none, an E1 span's), or from a GSM module's USB audio port at its "
                        "own phase, one frame every 20 ms 0-4 ms late (usb) or two every 40 ms "
                        "0-2 ms late (pairs)")
    p.add_argument("--lines", choices=("fixed", "adaptive", "both"), default="fixed",
                   help="the line legs' jitter buffers: fixed at --line-prefill, adaptive as "
                        "a GSM module's line, or both (every other line)")
    p.add_argument("--json", action="store_true", help="print the result as one JSON line")
    p.add_argument("--browsers", type=int, help=argparse.SUPPRESS)  # the child process
    args = p.parse_args(argv)
    _quiet()
    if args.browsers is not None:
        asyncio.run(browsers(args.browsers))
        return 0
    result = asyncio.run(box(args.operators, args.seconds, args.desks_per_process,
                             args.line_prefill, args.line_jitter, args.lines))
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:24} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
