"""``dialbox sim modem``: a simulated GSM module for people and tools (minicom, gammu, the box)."""
from __future__ import annotations

import argparse
import asyncio
import sys

from firmware.errors import UserError

FATES = ("answer", "busy", "no_answer", "unreachable", "mixed")


def add_parser(subparsers) -> None:
    from firmware.gsm.dialects import DIALECTS
    p = subparsers.add_parser("sim", help="simulated hardware for people and tools",
                              description="Run a simulated device until stopped (Ctrl-C).")
    sub = p.add_subparsers(dest="sim_command", metavar="DEVICE")
    sub.required = True
    m = sub.add_parser(
        "modem", help="a simulated GSM module on a pseudo-terminal (or TCP)",
        description="Serve one simulated GSM module. Prints the AT port's path, and the audio "
                    "port's path on a second line when the module has one, then serves until "
                    "stopped. Point minicom, gammu or `dialbox modem --port` at the AT port.")
    m.add_argument("--dialect", default="sim800", choices=sorted(DIALECTS),
                   help="which family of modules to answer as (default sim800)")
    m.add_argument("--fate", default="answer", choices=FATES,
                   help="what every dialed debtor does; mixed draws a realistic mix "
                        "(default answer)")
    m.add_argument("--tcp", type=int, metavar="PORT",
                   help="serve the AT port on 127.0.0.1:PORT (audio on PORT+1) instead of a pty")
    m.add_argument("--talk", type=float, default=30.0, metavar="S",
                   help="seconds an answering debtor talks before hanging up (default 30)")
    m.add_argument("--seed", type=int, help="seed of the simulated debtors")
    m.set_defaults(func=modem)
    e = sub.add_parser(
        "e1", help="a simulated E1 network: the telco's side of N ISDN PRI spans",
        description="Serve simulated E1 spans as the network side (NT). Prints the path of a "
                    "hardware profile of them (D-channels on SOCK_SEQPACKET sockets, B-channels "
                    "as DAHDI-style channel files), then serves until stopped. Point "
                    "`dialbox run --simulate floor --profile PATH` at it.")
    e.add_argument("--spans", type=int, default=1, help="how many spans (default 1)")
    e.add_argument("--dir", required=True, help="where the sockets, channel files and the "
                   "profile are made")
    e.add_argument("--channels", default="1-15,17-31", help="B-channels of each span")
    e.add_argument("--fate", default="mixed", choices=FATES,
                   help="what every dialed debtor does (default mixed)")
    e.add_argument("--talk", type=float, default=30.0, metavar="S",
                   help="seconds an answering debtor talks before hanging up (default 30)")
    e.add_argument("--out", help="write every call the network saw to this JSON file at the stop")
    e.add_argument("--seed", type=int, default=1, help="seed of the simulated debtors")
    e.set_defaults(func=e1_network)


def population(fate: str, *, talk_s: float, seed: int | None):
    """Every debtor does ``fate``; ``mixed`` is the simulated gateway's population."""
    from firmware import profiles
    from firmware.sim.population import Population
    if fate == "mixed":
        return Population.from_dict(dict(profiles.load("sim-gsm-4").population, seed=seed))
    rates = dict(answer_prob=0.0, busy_prob=0.0, unreachable_prob=0.0, rejected_prob=0.0,
                 invalid_prob=0.0)
    if fate != "no_answer":
        rates[f"{fate}_prob"] = 1.0
    return Population(**rates, ring_mean_s=4.0, ring_sd_s=0.0, talk_mean_s=talk_s, talk_sd_s=0.0,
                      no_answer_timeout_s=30.0, seed=seed)


def modem(args: argparse.Namespace) -> int:
    from firmware.clock import Clock
    from firmware.gsm.dialects import DIALECTS
    from firmware.sim.modem import SimModem
    from firmware.sim import until_signalled
    if args.tcp is not None and not 0 < args.tcp < 65535:
        raise UserError(f"--tcp must be a port from 1 to 65534, got {args.tcp}")
    if args.talk <= 0:
        raise UserError(f"--talk must be positive, got {args.talk}")

    async def serve() -> None:
        sim = SimModem("sim", DIALECTS[args.dialect],
                       population(args.fate, talk_s=args.talk, seed=args.seed), Clock(),
                       seed=args.seed)
        try:
            path = await (sim.start_tcp(port=args.tcp) if args.tcp is not None else sim.start())
        except OSError as exc:
            raise UserError(f"cannot serve the simulated modem: {exc.strerror or exc}") from None
        print(path)
        if sim.audio_path:
            print(sim.audio_path)
        sys.stdout.flush()
        try:
            await until_signalled()
        finally:
            await sim.stop()

    asyncio.run(serve())
    return 0


def e1_network(args: argparse.Namespace) -> int:
    import dataclasses
    import json
    from pathlib import Path

    from firmware.e1.profile import parse_channels
    from firmware.sim.e1_serve import serve
    if args.spans < 1 or args.talk <= 0:
        raise UserError("--spans must be at least 1 and --talk positive")
    try:
        parse_channels(args.channels)
    except ValueError as exc:
        raise UserError(f"--channels: {exc}") from None
    pop = population(args.fate, talk_s=args.talk, seed=None)
    rates = {f.name: getattr(pop, f.name) for f in dataclasses.fields(pop)
             if f.init and f.name != "seed"}
    where = Path(args.dir)

    def ready(_spans: str) -> None:
        print(where / "profile.yaml", flush=True)
    try:
        asyncio.run(serve(args.spans, where, Path(args.out) if args.out else None, ready=ready,
                          channels=args.channels, seed=args.seed, population=rates))
    except OSError as exc:
        raise UserError(f"cannot serve the simulated network: {exc.strerror or exc}") from None
    return 0
