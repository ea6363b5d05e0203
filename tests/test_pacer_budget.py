"""The pacer spends the window's abandon budget smoothly: the campaign's cumulative abandon rate
approaches its target from below and goes over it by one call at most, at every minute."""
from __future__ import annotations

import dataclasses
import importlib
import math

import pytest

from benchmarks.pacing_budget import TARGET, run
from controller.pacing import FloorSnapshot, Pacer, PacerConfig
from controller.pacing.estimators import AbandonWindow


@pytest.fixture(autouse=True)
def _cext(cext_impl, monkeypatch):
    """Run the pacer on each cext implementation (the Python twin on a shorter shift)."""
    import controller.pacing.pacer as pacer_module
    core = importlib.import_module("cext._pacing" if cext_impl == "cython" else "cext.pacing_py")
    monkeypatch.setattr(pacer_module, "core", core)
    return cext_impl


# The live run's floor (benchmarks/live_run.py): 60 operators, 151 lines, ru-230fz's 1 %. The
# box hands an answer to an operator in up to a second of the 2-second deadline when loaded
# (the live run's stalls), which the pacer's model does not know. Before, these shifts saved
# their budget for minutes and then lost it in a cluster: seed 5 went over the target by 1.55
# calls in minute 7, seed 14 by 1.3 in minute 10 (benchmarks/RESULTS.md, "abandon budget").
CASES = [(5, 1.0), (14, 1.0), (1, 0.0)]


@pytest.mark.parametrize("seed,handoff_s", CASES)
def test_the_cumulative_abandon_rate_stays_under_its_target_at_every_minute(
        cext_impl, seed, handoff_s):
    minutes = 60 if cext_impl == "cython" else 12  # the twin is slower: the first cluster
    shift = run(minutes, seed, handoff_s)
    for minute, (live, abandoned) in enumerate(shift["cumulative"][1:], start=2):
        # One call over the target's share is what one call's randomness may force.
        assert abandoned <= TARGET * live + 1, (minute, live, abandoned, shift)
    if cext_impl == "cython":
        assert shift["occupancy"] >= 0.90, shift  # before: 0.907, 0.908 and 0.927
        assert shift["abandon_rate"] >= 0.5 * TARGET, shift  # the budget is spent, not hoarded


def test_what_the_window_saved_is_risked_a_little_at_a_time():
    pacer = Pacer(PacerConfig(compliance="ru-230fz"))
    pacer.window.record(0.0, live=470)  # seven quiet minutes: 4.7 abandons saved
    lam, aim, budget, reserve = pacer.feedback(420.0)
    assert budget == 1.0 and reserve == 0.0  # before: the whole 4.7 at once
    spent = Pacer(PacerConfig(compliance="ru-230fz"))
    spent.window.record(0.0, live=470, abandoned=5)
    assert spent.feedback(420.0)[2] == pytest.approx(4.7 - 5)  # overspent: no risk at all


def test_after_a_cluster_the_pacer_keeps_that_much_slack_in_reserve():
    calm = Pacer(PacerConfig(compliance="ru-230fz"))
    calm.window.record(0.0, live=900, abandoned=2)
    calm.window.record(60.0, abandoned=2)
    clustered = Pacer(PacerConfig(compliance="ru-230fz"))
    clustered.window.record(0.0, live=900)
    clustered.window.record(60.0, abandoned=4)  # the same 4 abandons, all in one minute
    lam_calm, _, _, reserve_calm = calm.feedback(600.0)
    lam_clustered, _, _, reserve_clustered = clustered.feedback(600.0)
    assert (reserve_calm, reserve_clustered) == (1.0, 3.0)
    assert lam_clustered < lam_calm  # a floor that clusters takes less risk per call
    assert math.isfinite(lam_clustered) and lam_clustered >= 0.002


def test_the_busiest_minute_is_kept_for_the_window_then_forgotten():
    window = AbandonWindow(86400.0)  # ru-230fz: one day
    window.record(0.0, live=50, abandoned=1)
    for t in (3600.0, 3610.0, 3620.0):  # a cluster of three in one minute
        window.record(t, live=1, abandoned=1)
    window.record(7200.0, live=40, abandoned=2)
    assert window.busiest_minute(7300.0) == 3
    assert window.busiest_minute(86400.0 + 3700.0) == 2  # the cluster's minute left the day
    assert window.busiest_minute(86400.0 + 7300.0) == 0
    assert window.counts(86400.0 + 7300.0) == (0, 0)


def test_while_an_answer_waits_for_an_operator_no_risky_call_goes_out():
    pacer = Pacer(PacerConfig(compliance="ru-230fz", warmup_outcomes=0))
    pacer.window.record(0.0, live=2000)
    for minute in range(5):
        pacer.window.record(60.0 * minute, abandoned=1)  # 15 abandons saved, no cluster
    for i in range(300):  # a floor it knows: a third answer, talks of 30-90 s
        pacer.observe_answered(8.0, 0.0)
        pacer.observe_not_answered(0.1)
        pacer.observe_not_answered(30.0)
        pacer.observe_talk_end(30.0 + (i % 7) * 10)
        pacer.observe_wrap_end(10.0)
    # Every operator busy, some about to finish: a few calls are worth their small risk...
    floor = FloorSnapshot(operators=60, free=0, talk_elapsed=[40.0 + i for i in range(58)],
                          wrap_elapsed=[8.0, 9.0], lines_free=100)
    calm = pacer.decide(floor, 600.0)
    assert calm.n_calls > 0 and calm.expected_abandons > 0, calm
    # ...unless an answered call is already waiting for one of them.
    short = pacer.decide(dataclasses.replace(floor, waiting=1), 600.0)
    assert short.n_calls == 0, short
    assert "lam=0.002" in short.reason and "budget=0.0" in short.reason
