"""How the predictive pacer spends its abandon budget, minute by minute, on the live run's floor.

Usage: python3 benchmarks/pacing_budget.py [--minutes 60] [--seeds 8] [--handoff 0 1]
       [--scenario NAME] [--json FILE]

The floor is the one of ``benchmarks/live_run.py`` (60 operators, 151 lines, the simulated
debtors' rates and durations, E1 lines that say "busy" in a tenth of a second and ring 60 s,
ru-230fz's 1 % target over a day), simulated by ``controller.pacing.floor`` with the real pacer.
``--handoff S``: seconds of the 2-second bridge deadline the box itself takes to hand an answer
to an operator (its loop, the media bridge), which the pacer's model does not know: 0 is the
model's own world, 1 a loaded box (the live run at load 8-12 stalled its loop for 340 ms).

Per run: occupancy, the shift's abandon rate, the worst minute's cumulative abandons over the
target's share (in calls: ``abandoned - target x live answers``, minutes after the first), and
the most abandons in one minute and in five. ``--scenario NAME``: a shipped scenario of
``benchmarks/scenarios`` (its own floor and target) instead of the live run's floor. Run it from the repository root as a script (not
``-m``) so that ``PYTHONPATH`` can point it at another checkout's ``controller`` to compare.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
from pathlib import Path

from controller.pacing import Pacer, PacerConfig
from controller.pacing.floor import FloorSimulation
from controller.pacing.scenario import Duration, Scenario, load_scenario
from firmware.sim.population import Population

TARGET = 0.01
SCENARIOS = Path(__file__).resolve().parent / "scenarios"


def live_run_floor(minutes: float) -> Scenario:
    """The live run's floor (see ``benchmarks/live_run.py``), E1's quick failures included."""
    pop = Population()
    return Scenario(
        name="live-run", operators=60, lines=151, duration_s=minutes * 60.0,
        answer_prob=pop.answer_prob, busy_prob=pop.busy_prob,
        unreachable_prob=pop.unreachable_prob + pop.rejected_prob + pop.invalid_prob,
        time_to_answer_s=Duration(pop.ring_mean_s, pop.ring_sd_s),
        no_answer_timeout_s=pop.no_answer_timeout_s,
        talk_s=Duration(pop.talk_mean_s, pop.talk_sd_s), wrap_s=Duration(10.0, 4.0),
        abandon_target=TARGET, compliance="ru-230fz",
        busy_s=Duration(0.1, 0.02), unreachable_s=Duration(0.1, 0.02))


def run(minutes: float, seed: int, handoff_s: float = 0.0, scenario: str | None = None) -> dict:
    """One shift: the figures above, and the cumulative (live, abandoned) at each minute."""
    if scenario is None:
        sc = live_run_floor(minutes)
        ring_s = 60.0  # the E1 profile's: longer than the network's own no-answer time-out
    else:
        sc = dataclasses.replace(load_scenario(SCENARIOS / f"{scenario}.yaml"),
                                 duration_s=minutes * 60.0)
        ring_s = sc.no_answer_timeout_s
    target = sc.abandon_target
    config = PacerConfig(compliance=sc.compliance, abandon_target=target,
                         no_answer_timeout_s=ring_s)
    sim = FloorSimulation(sc, Pacer(config), seed=seed, grace_s=2.0 - handoff_s)
    minutes_seen: list = []
    decide = sim._decide

    def watch() -> None:
        while len(minutes_seen) < int(sim.now // 60.0):
            minutes_seen.append((sim.live, sim.abandoned))
        decide()

    sim._decide = watch
    result = sim.run()
    while len(minutes_seen) < int(minutes):
        minutes_seen.append((sim.live, sim.abandoned))
    per_minute = [a - (minutes_seen[m - 1][1] if m else 0) for m, (_, a) in enumerate(minutes_seen)]
    over = [a - target * live for live, a in minutes_seen[1:]]
    return {"seed": seed, "handoff_s": handoff_s, "occupancy": round(result.agent_occupancy, 4),
            "abandon_rate": round(result.abandon_rate, 5), "live_answers": result.live_answers,
            "abandoned": result.abandoned,
            "worst_excess_calls": round(max(over, default=0.0), 2),
            "max_abandons_1min": max(per_minute, default=0),
            "max_abandons_5min": max((sum(per_minute[m:m + 5]) for m in range(len(per_minute))),
                                     default=0),
            "cumulative": minutes_seen}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--handoff", type=float, nargs="+", default=[0.0, 1.0])
    ap.add_argument("--scenario", help="a shipped scenario instead of the live run's floor")
    ap.add_argument("--json", help="write every run here")
    args = ap.parse_args()
    runs = []
    for handoff in args.handoff:
        rows = [run(args.minutes, seed, handoff, args.scenario)
                for seed in range(1, args.seeds + 1)]
        runs += rows
        print(f"{args.scenario or 'live-run'}, handoff {handoff:.1f} s: occupancy mean "
              f"{statistics.mean(r['occupancy'] for r in rows):.4f}, abandon rate mean "
              f"{100 * statistics.mean(r['abandon_rate'] for r in rows):.3f} %, runs over the "
              f"target by more than one call at some minute "
              f"{sum(r['worst_excess_calls'] > 1 for r in rows)}/{len(rows)}, worst excess "
              f"{max(r['worst_excess_calls'] for r in rows):.2f} calls, most abandons in a "
              f"minute {max(r['max_abandons_1min'] for r in rows)}, in 5 minutes "
              f"{max(r['max_abandons_5min'] for r in rows)}", flush=True)
        for r in rows:
            print("   ", {k: v for k, v in r.items() if k != "cumulative"})
    if args.json:
        with open(args.json, "w") as f:
            json.dump(runs, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
