"""pytest-benchmark view of the line-state core (not in the normal run: benchmarks/ is apart).

Run: python3 -m pytest benchmarks/test_bench_linecore.py -p no:cacheprovider --benchmark-only
"""
from __future__ import annotations

import logging

import pytest

from benchmarks.linecore import (
    build_workload, churn_timers, feed_all, implementation, new_core, timer_plan,
)

logging.getLogger().setLevel(logging.WARNING)  # logging must not skew the timings

WORK = build_workload(4096, 120_000)
PLAN = timer_plan(16384)


@pytest.mark.parametrize("impl", ["cython", "python"])
def test_bench_call_flows(benchmark, impl):
    module = implementation(impl)
    cores = []

    def setup():
        cores.append(new_core(module, WORK))
        return (cores[-1], WORK), {}

    benchmark.pedantic(feed_all, setup=setup, rounds=3, iterations=1)
    assert cores[-1].total_rejected() == 0
    assert cores[-1].events_processed() > WORK.n_fed  # the core's timers fired too
    benchmark.extra_info["events"] = cores[-1].events_processed()


@pytest.mark.parametrize("impl", ["cython", "python"])
def test_bench_timer_wheel(benchmark, impl):
    module = implementation(impl)

    def setup():
        return (module.TimerWheel(len(PLAN.deadlines)), PLAN), {}

    ops = benchmark.pedantic(churn_timers, setup=setup, rounds=3, iterations=1)
    benchmark.extra_info["ops"] = ops
