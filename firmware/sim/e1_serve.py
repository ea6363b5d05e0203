"""The simulated E1 network (NT) in a process of its own: its calls outlive a box killed under it.

``python -m firmware.sim.e1_serve --spans N --dir DIR --out FILE`` serves N spans. Each has its
D-channel on ``DIR/e1-K.sock`` (SOCK_SEQPACKET, a DAHDI D-channel's semantics; ``--transport
tcp``: 127.0.0.1, a port of its own) and its B-channels as character devices named as DAHDI
names them, ``DIR/chan/SSS/TTT`` (raw pseudo-terminals: the box opens them as DAHDI channel
files, A-law both ways). The box's real E1 driver reaches both unchanged: the first line printed
is JSON, one profile span (name, transport, device or address, audio, channels) per span, and
``DIR/profile.yaml`` is a hardware profile of them (``dialbox sim e1`` prints its path).

A lost D-channel connection is taken as silence on a line that stays up: the network notices the
box is gone by its Q.921 timers and holds active calls for T309, until the box, back, resets
the link and RESTARTs its channels. On SIGTERM (or SIGINT) it writes every call it saw to FILE
as JSON: span, timeslot, number, fate, cause, who ended it, wall-clock times, and the debtor's
voice (the signal he spoke; with ``--heard``, the A-law he heard, base64).
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import sys
from pathlib import Path

from firmware.clock import Clock
from firmware.e1.lapd import LinkTimers
from firmware.sim import until_signalled
from firmware.sim.e1_network import CallRecord, NetworkSide
from firmware.sim.population import Population

ENDED_BY = {"network": "network", "user": "box", "link": "link", "restart": "restart"}


def parse_slots(text: str) -> list[int]:
    from firmware.e1.profile import parse_channels
    return list(parse_channels(text))


async def start_spans(spans: int, where: Path, *, transport: str = "seqpacket",
                      channels: str = "1-15,17-31", population: dict | None = None,
                      seed: int = 1, clock: Clock | None = None,
                      timers: LinkTimers | None = None) -> tuple[list[NetworkSide], list[dict]]:
    """Start ``spans`` network sides; returns them and the profile span of each."""
    clock = clock or Clock()
    nets, out = [], []
    slots = parse_slots(channels)
    for i in range(spans):
        name = f"e1-{i}"
        pop = Population.from_dict(dict(population or {}, seed=seed + i))
        net = NetworkSide(pop, clock=clock, timers=timers, name=f"sim-{name}", seed=seed + i,
                          audio=True)
        net.keeps_line = True
        net.t309_s = 90.0  # ETSI EN 300 403's T309, as a telco's switch holds active calls
        nets.append(net)
        span = {"name": name, "transport": transport, "channels": channels}
        if transport == "tcp":
            span["address"] = f"127.0.0.1:{await net.serve_tcp('127.0.0.1', 0)}"
        else:
            span["device"] = await net.serve_seqpacket(str(where / f"{name}.sock"))
        chan = where / "chan" / f"{i + 1:03d}"  # DAHDI numbers spans from 1
        chan.mkdir(parents=True, exist_ok=True)
        for ts in slots:
            link = chan / f"{ts:03d}"
            if link.is_symlink():
                link.unlink()
            os.symlink(await net.bchannel_device(ts), link)
        span["audio"] = str(chan / "{ts:03d}")
        out.append(span)
    return nets, out


def call_dicts(nets: list[NetworkSide], clock: Clock, *, heard: bool = False) -> list[dict]:
    """Every call the spans saw, with wall-clock times (``clock.wall()`` of its instants)."""
    shift = clock.wall() - clock.now()
    calls = []
    for i, net in enumerate(nets):
        for r in net.records:
            calls.append(_call_dict(f"e1-{i}", r, shift, heard))
    return calls


def _call_dict(span: str, r: CallRecord, shift: float, heard: bool) -> dict:
    d = {"span": span, "modem": f"{span}/{r.timeslot}", "timeslot": r.timeslot,
         "direction": r.direction, "number": r.number, "fate": r.fate, "cause": r.cause,
         "ended_by": ENDED_BY.get(r.cleared_by, r.cleared_by or None),
         "at": r.started + shift, "ended_at": None if r.ended is None else r.ended + shift,
         "answered_at": r.started + r.ring_s + shift if r.connected else None,
         "talk_s": r.talk_s, "alerted": r.alerted}
    if r.voice is not None:
        d["signal"] = [r.voice.signal.f1, r.voice.signal.f2]
        d["sent_frames"] = r.voice.sent
        d["heard_frames"] = r.voice.ear.frames
        if heard:
            d["heard_every"] = r.voice.ear.every
            d["heard_alaw"] = base64.b64encode(b"".join(r.voice.ear.kept)).decode("ascii")
    return d


PROFILE = """# Written by firmware.sim.e1_serve: its spans, for dialbox run --profile.
name: sim-e1-network
description: E1 spans whose network side is simulated in another process
driver: e1
spans: {spans}
"""


async def serve(spans: int, where: Path, out: Path | None, *, ready=print, heard: bool = False,
                **options) -> None:
    """Serve until SIGTERM or SIGINT; ``ready(line)`` gets the spans as JSON once they are up.

    ``where/profile.yaml`` is a hardware profile of the spans for the box; at the stop, ``out``
    (when given) gets every call the spans saw."""
    clock = Clock()
    where.mkdir(parents=True, exist_ok=True)
    nets, made = await start_spans(spans, where, clock=clock, **options)
    (where / "profile.yaml").write_text(PROFILE.format(spans=json.dumps(made)), encoding="utf-8")
    ready(json.dumps(made))
    try:
        await until_signalled()
    finally:
        calls = call_dicts(nets, clock, heard=heard)
        for net in nets:
            await net.close()
    if out is not None:
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(json.dumps(calls), encoding="utf-8")
        tmp.replace(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m firmware.sim.e1_serve",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--spans", type=int, default=1, help="E1 spans to serve (default 1)")
    p.add_argument("--dir", required=True, help="where the D-channel sockets and the B-channel "
                   "files (chan/SSS/TTT) are made")
    p.add_argument("--out", required=True, help="the JSON file of calls written at SIGTERM")
    p.add_argument("--transport", choices=("seqpacket", "tcp"), default="seqpacket")
    p.add_argument("--channels", default="1-15,17-31", help="B-channels served per span")
    p.add_argument("--population", help="the debtors as JSON (Population fields, e.g. "
                   '\'{"answer_prob": 1, "talk_mean_s": 5}\')')
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--heard", action="store_true",
                   help="keep what each debtor heard (sampled A-law) in FILE")
    args = p.parse_args(argv)
    if args.spans < 1:
        p.error("--spans must be at least 1")
    try:
        parse_slots(args.channels)
    except ValueError as exc:
        p.error(f"--channels: {exc}")
    ready = lambda line: print(line, flush=True)  # noqa: E731
    asyncio.run(serve(args.spans, Path(args.dir), Path(args.out), ready=ready, heard=args.heard,
                      transport=args.transport, channels=args.channels, seed=args.seed,
                      population=json.loads(args.population) if args.population else None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
