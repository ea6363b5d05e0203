"""Benchmark of the line-state core: compiled vs pure-Python twin on the same call flows.

``python3 -m benchmarks.linecore --json`` prints events/s and timer ops/s of both
implementations from one run (median of repeats). The workload is realistic call traffic on
4096 channels: answered and bridged calls, busy, no answer (ring timer), abandoned (bridge
timer), fed in 100 ms batches through ``feed_arrays`` with ``expire_arrays`` before each batch.
"""
from __future__ import annotations

import argparse
import importlib
import json
import random
import statistics
import sys
import time
from array import array
from dataclasses import dataclass

from cext.linestate_codes import (
    EV_CTL_BRIDGE, EV_CTL_DIAL, EV_HW_ALERTING, EV_HW_ANSWER, EV_HW_BRIDGED, EV_HW_DIALING,
    EV_HW_IN_SERVICE, EV_HW_PROCEEDING, EV_HW_RELEASE, EV_HW_RELEASED,
)

RING_MS, BRIDGE_MS = 30000, 2000

# Call flows as (ms after the dial, event, cause); None = the core's own timer ends the call,
# the driver then confirms the release 50 ms after the timer fired.
_FLOWS = (
    (0.50, ((0, EV_CTL_DIAL, 0), (20, EV_HW_DIALING, 0), (200, EV_HW_PROCEEDING, 0),
            (1200, EV_HW_ALERTING, 0), (9000, EV_HW_ANSWER, 0), (9100, EV_CTL_BRIDGE, 0),
            (9400, EV_HW_BRIDGED, 0), (45000, EV_HW_RELEASE, 16), (45100, EV_HW_RELEASED, 0))),
    (0.25, ((0, EV_CTL_DIAL, 0), (20, EV_HW_DIALING, 0), (300, EV_HW_PROCEEDING, 0),
            (2500, EV_HW_RELEASE, 17), (2600, EV_HW_RELEASED, 0))),
    (0.15, ((0, EV_CTL_DIAL, 0), (20, EV_HW_DIALING, 0), (1000, EV_HW_ALERTING, 0),
            (1000 + RING_MS + 50, EV_HW_RELEASED, 0))),  # ring timer runs from alerting
    (0.10, ((0, EV_CTL_DIAL, 0), (20, EV_HW_DIALING, 0), (1000, EV_HW_ALERTING, 0),
            (7000, EV_HW_ANSWER, 0), (7000 + BRIDGE_MS + 50, EV_HW_RELEASED, 0))),
)


def implementation(impl: str):
    """``cext._linestate`` or ``cext.linestate_py`` explicitly, whatever the selector chose."""
    return importlib.import_module("cext._linestate" if impl == "cython" else "cext.linestate_py")


@dataclass
class Workload:
    """Pre-built batches: (now_ms, channels, events, causes) as array('i')."""

    n_channels: int
    batches: list[tuple[int, array, array, array]]
    n_fed: int


def build_workload(n_channels: int = 4096, duration_ms: int = 300_000, batch_ms: int = 100,
                   seed: int = 7) -> Workload:
    """Random but reproducible traffic; events land in the batch of their time."""
    rng = random.Random(seed)
    weights = [w for w, _ in _FLOWS]
    timed: list[tuple[int, int, int, int, int]] = []  # (batch time, seq, ch, event, cause)
    seq = 0
    for ch in range(n_channels):
        timed.append((0, seq, ch, EV_HW_IN_SERVICE, 0))
        seq += 1
        start = batch_ms + rng.randrange(0, 5000)
        while True:
            flow = rng.choices(_FLOWS, weights)[0][1]
            end = start + flow[-1][0]
            if end >= duration_ms:
                break
            for offset, event, cause in flow:
                # Round up to the batch, so a driver's confirmation never overtakes the timer.
                at = -(-(start + offset) // batch_ms) * batch_ms
                timed.append((at, seq, ch, event, cause))
                seq += 1
            start = end + batch_ms + rng.randrange(100, 3000)
    timed.sort()
    batches, i = [], 0
    while i < len(timed):
        j = i
        while j < len(timed) and timed[j][0] == timed[i][0]:
            j += 1
        rows = timed[i:j]
        batches.append((rows[0][0], array("i", [r[2] for r in rows]),
                        array("i", [r[3] for r in rows]), array("i", [r[4] for r in rows])))
        i = j
    return Workload(n_channels, batches, len(timed))


def new_core(module, work: Workload):
    """A fresh core sized and timed for the workload."""
    return module.LineCore(work.n_channels, ring_timeout_ms=RING_MS, bridge_timeout_ms=BRIDGE_MS)


def feed_all(core, work: Workload) -> None:
    """The timed loop: expire due timers, then feed the batch, for every batch."""
    expire, feed = core.expire_arrays, core.feed_arrays
    for now, channels, events, causes in work.batches:
        expire(now)
        feed(channels, events, causes, now)


def feed_each(core, work: Workload) -> None:
    """The same traffic one event per call, as a line manager reacting to each driver report."""
    expire, feed_one = core.expire, core.feed_one
    for now, channels, events, causes in work.batches:
        expire(now)
        for i in range(len(channels)):
            feed_one(channels[i], events[i], causes[i], now)


def run_workload(module, work: Workload, loop=feed_all):
    """Run every batch through a fresh core; returns (seconds, core)."""
    core = new_core(module, work)
    started = time.perf_counter()
    loop(core, work)
    return time.perf_counter() - started, core


@dataclass
class TimerPlan:
    """Deadlines for the timer benchmark: first arm, and the re-arm of every third key."""

    deadlines: list[int]
    later: list[int]


def timer_plan(n_keys: int = 65536, seed: int = 11) -> TimerPlan:
    rng = random.Random(seed)
    deadlines = [rng.randrange(1, 30000) for _ in range(n_keys)]
    return TimerPlan(deadlines, [d + rng.randrange(1, 5000) for d in deadlines])


def churn_timers(wheel, plan: TimerPlan) -> int:
    """Arm every key, cancel and re-arm a third, expire in 10 ms steps; returns the op count."""
    arm, cancel, expire = wheel.arm, wheel.cancel, wheel.expire
    n_keys = len(plan.deadlines)
    third = range(0, n_keys, 3)
    for key, deadline in enumerate(plan.deadlines):
        arm(key, deadline)
    for key in third:
        cancel(key)
    for key in third:
        arm(key, plan.later[key])
    fired = 0
    for now in range(0, 35010, 10):
        fired += len(expire(now))
    if fired != n_keys or wheel.pending():
        raise RuntimeError(f"timer benchmark: {fired} of {n_keys} timers fired")
    return n_keys + 2 * len(third) + fired


def run_timers(module, plan: TimerPlan) -> tuple[float, int]:
    """One timed churn on a fresh wheel; (seconds, ops)."""
    wheel = module.TimerWheel(len(plan.deadlines))
    started = time.perf_counter()
    ops = churn_timers(wheel, plan)
    return time.perf_counter() - started, ops


def measure(repeats: int = 5, n_channels: int = 4096, duration_ms: int = 300_000) -> dict:
    """Both implementations on the same workload; medians of ``repeats`` runs."""
    work = build_workload(n_channels, duration_ms)
    plan = timer_plan()
    result: dict = {}
    finals = {}
    for impl in ("cython", "python"):
        module = implementation(impl)
        times, cores = zip(*(run_workload(module, work) for _ in range(repeats)))
        core = cores[-1]
        if core.total_rejected():
            raise RuntimeError(f"{impl}: workload produced {core.total_rejected()} rejections")
        finals[impl] = (core.states(), core.events_processed(), core.pending_timers())
        result[f"{impl}_events_per_s"] = core.events_processed() / statistics.median(times)
        one_by_one = [run_workload(module, work, feed_each)[0] for _ in range(repeats)]
        result[f"{impl}_feed_one_events_per_s"] = core.events_processed() / statistics.median(
            one_by_one)
        timer_runs = [run_timers(module, plan) for _ in range(repeats)]
        ops = timer_runs[0][1]
        result[f"{impl}_timer_ops_per_s"] = ops / statistics.median(t for t, _ in timer_runs)
    if finals["cython"] != finals["python"]:
        raise RuntimeError("the two implementations ended in different states")
    result["ratio"] = result["cython_events_per_s"] / result["python_events_per_s"]
    result["feed_one_ratio"] = (result["cython_feed_one_events_per_s"]
                                / result["python_feed_one_events_per_s"])
    result["timer_ratio"] = result["cython_timer_ops_per_s"] / result["python_timer_ops_per_s"]
    result["events"] = finals["cython"][1]
    result["events_fed"] = work.n_fed
    result["batches"] = len(work.batches)
    result["channels"] = n_channels
    result["simulated_ms"] = duration_ms
    result["repeats"] = repeats
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--channels", type=int, default=4096)
    parser.add_argument("--duration-ms", type=int, default=300_000)
    args = parser.parse_args(argv)
    result = measure(args.repeats, args.channels, args.duration_ms)
    if args.json:
        print(json.dumps({k: round(v, 2) if isinstance(v, float) else v
                          for k, v in result.items()}))
    else:
        for key, value in result.items():
            print(f"{key:>24}: {value:,.0f}" if key != "ratio" else f"{key:>24}: {value:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
