"""Simulated GSM modules in their own process, so that they outlive a box killed under them.

``python -m tests.crash_sims --modems N --out FILE`` prints one JSON line (the modules' AT and
audio ports) and serves until SIGTERM; then it writes every call each module saw, with wall-clock
times, to FILE: the crash test's count of dials "at the modems", independent of the box's store.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys

from firmware.clock import Clock
from firmware.gsm.dialects import DIALECTS
from firmware.sim import until_signalled
from firmware.sim.modem import SimModem
from firmware.sim.population import Population

DIALECT = "sim7600"  # voice on a second (audio) port, so answered calls are recorded


# Short calls, every fate: a kill often falls inside a call. The E1 network's debtors are the
# same people (firmware.sim.e1_serve --population).
POPULATION = dict(answer_prob=0.5, busy_prob=0.15, unreachable_prob=0.1, rejected_prob=0.05,
                  invalid_prob=0.0, ring_mean_s=2.0, ring_sd_s=1.0, no_answer_timeout_s=6.0,
                  talk_mean_s=5.0, talk_sd_s=2.0)


def population(seed: int) -> Population:
    return Population(**POPULATION, seed=seed)


async def serve(modems: int, seed: int, out: str) -> None:
    clock = Clock()
    sims = [SimModem(f"gsm{i}", DIALECTS[DIALECT], population(seed + i), clock, seed=seed + i)
            for i in range(modems)]
    ports = []
    for sim in sims:
        path = await sim.start()
        ports.append({"name": sim.name, "port": path, "audio": sim.audio_path})
    print(json.dumps(ports), flush=True)
    await until_signalled()
    calls = [{"modem": sim.name, "number": r.number, "fate": r.fate, "at": r.at,
              "ended_at": r.ended_at, "ended_by": r.ended_by, "talk_s": r.talk_s}
             for sim in sims for r in sim.records]
    for sim in sims:
        await sim.stop()
    with open(out, "w", encoding="utf-8") as f:
        json.dump(calls, f)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--modems", type=int, default=4)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    asyncio.run(serve(args.modems, args.seed, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
