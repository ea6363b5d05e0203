"""Pacers on the simulated floor: the abandon cap, fallbacks, baselines, oracle, estimates."""
from __future__ import annotations

import dataclasses
import importlib
import math
from pathlib import Path

import pytest

from controller.pacing import PACER_NAMES, Decision, FloorSnapshot, Pacer, PacerConfig, simulate
from controller.pacing.baselines import (FixedRatioPacer, IssabelPacer, ProgressivePacer,
                                         VicidialAdaptivePacer)
from controller.pacing.estimators import AbandonWindow, SegmentEstimates, Priors
from controller.pacing.floor import FloorSimulation
from controller.pacing.scenario import Duration, Scenario, load_scenario

SCENARIOS = Path(__file__).resolve().parent.parent / "benchmarks" / "scenarios"


def _scenario(**over) -> Scenario:
    base = dict(name="t", operators=20, lines=60, duration_s=3600.0, answer_prob=0.2,
                busy_prob=0.1, unreachable_prob=0.1, time_to_answer_s=Duration(10, 4),
                no_answer_timeout_s=30.0, talk_s=Duration(120, 100), wrap_s=Duration(20, 8),
                abandon_target=0.03, seed=3)
    base.update(over)
    return Scenario(**base)


@pytest.fixture(autouse=True)
def _cext(cext_impl, monkeypatch):
    """Run the pacer on each cext implementation (the Python twin on shorter shifts)."""
    import controller.pacing.pacer as pacer_module
    core = importlib.import_module("cext._pacing" if cext_impl == "cython" else "cext.pacing_py")
    monkeypatch.setattr(pacer_module, "core", core)
    return cext_impl


def _hours(cext_impl: str, cython: float, python: float) -> float:
    return 3600.0 * (cython if cext_impl == "cython" else python)


@pytest.mark.parametrize("target,compliance", [(0.03, "us-regf"), (0.01, "ru-230fz")])
def test_predictive_keeps_abandons_under_target_and_beats_progressive(cext_impl, target,
                                                                      compliance):
    sc = _scenario(abandon_target=target, compliance=compliance,
                   duration_s=_hours(cext_impl, 1.5, 0.5))
    for seed in (1, 2):
        ours = simulate(sc, "predictive", seed=seed)
        base = simulate(sc, "progressive", seed=seed)
        assert ours.live_answers > 100
        assert ours.abandon_rate <= target
        assert ours.agent_occupancy > base.agent_occupancy + 0.10


def test_tiny_floor_falls_back_to_progressive_and_says_so():
    pacer = Pacer(PacerConfig())
    floor = FloorSnapshot(operators=3, free=2, talk_elapsed=[30.0], ring_elapsed=[1.0],
                          lines_free=10)
    decision = pacer.decide(floor, 0.0)
    assert decision == Decision(1, "progressive", decision.reason, fallback=True)
    assert "fallback" in decision.reason and ">= 4" in decision.reason
    result = simulate(_scenario(operators=3, lines=10, duration_s=1800.0), "predictive")
    assert result.abandoned == 0 and result.live_answers > 20


def test_stricter_target_needs_a_bigger_floor_for_predictive():
    assert Pacer(PacerConfig(compliance="ru-230fz")).min_operators == 10
    floor = FloorSnapshot(operators=8, free=8, lines_free=40)
    decision = Pacer(PacerConfig(compliance="ru-230fz")).decide(floor, 0.0)
    assert decision.fallback and decision.n_calls == 8
    assert not Pacer(PacerConfig()).decide(floor, 0.0).fallback


def test_modes_share_the_machinery():
    floor = FloorSnapshot(operators=10, free=5, talk_elapsed=[60.0] * 5, ring_elapsed=[2.0],
                          lines_free=30, previewing=1)
    assert Pacer(PacerConfig(mode="preview")).decide(floor, 0.0).n_calls == 3
    assert Pacer(PacerConfig(mode="progressive")).decide(floor, 0.0).n_calls == 4
    blended = Pacer(PacerConfig(mode="progressive", reserve_inbound=2)).decide(floor, 0.0)
    assert blended.n_calls == 2
    # A pacer that has learned the floor (no cold-start cap: see test_pacer_config).
    predictive = Pacer(PacerConfig(warmup_outcomes=0)).decide(floor, 0.0)
    reserved = Pacer(PacerConfig(reserve_inbound=3, warmup_outcomes=0)).decide(floor, 0.0)
    assert predictive.mode == "predictive" and predictive.n_calls > 4
    assert reserved.n_calls < predictive.n_calls
    with pytest.raises(ValueError, match="pacing mode"):
        PacerConfig(mode="turbo")
    with pytest.raises(ValueError, match="abandon target"):
        PacerConfig(compliance="ru-230fz", abandon_target=0.03)


def test_blended_reserve_keeps_operators_free_in_simulation():
    sc = _scenario(duration_s=1800.0, operators=10, lines=40)
    config = PacerConfig(reserve_inbound=3)
    sim = FloorSimulation(sc, Pacer(config))
    idle = []
    original = sim._decide

    def watch() -> None:
        if sim.now > 300:
            idle.append(len(sim.free_ops) - len(sim.waiting))
        original()

    sim._decide = watch
    sim.run()
    assert sum(1 for x in idle if x >= 3) / len(idle) > 0.8


def test_progressive_and_fixed_ratio_follow_their_definitions():
    floor = FloorSnapshot(operators=10, free=4, ring_elapsed=[1.0, 2.0], waiting=1,
                          lines_free=20)
    assert ProgressivePacer().decide(floor, 0.0).n_calls == 1
    assert FixedRatioPacer(ratio=2.5).decide(floor, 0.0).n_calls == 10 - 3
    assert FixedRatioPacer(ratio=9).decide(floor, 0.0).n_calls == 20  # lines cap
    sim = simulate(_scenario(duration_s=1800.0), "progressive")
    assert sim.abandoned == 0


def test_vicidial_level_rises_with_ready_agents_and_hard_limit_resets_it():
    pacer = VicidialAdaptivePacer()
    idle = FloorSnapshot(operators=10, free=5, talk_elapsed=[10.0] * 5, lines_free=50)
    d = pacer.decide(idle, 0.0)
    assert d.n_calls == 10 - 5  # round(1.0 x 10) - 5 with agents
    for t in range(1, 31):
        d = pacer.decide(idle, float(t))
    # Two adjustments with m = 5/10: level 1.0 -> 1.5 -> 2.25.
    assert pacer.level == pytest.approx(2.25)
    assert d.n_calls == round(2.25 * 10) - 5
    for t in range(31, 200):
        pacer.decide(idle, float(t))
    assert pacer.level == 3.0  # max level
    pacer.observe_launched(200.0, 60)
    for _ in range(20):
        pacer.observe_answered(8.0, 200.0)
    pacer.observe_abandon(200.0)
    assert pacer.hard_limited()  # 1/20 = 5 % > 3 % after 60 calls
    pacer.decide(idle, 211.0)
    assert pacer.level == 1.0
    fresh = VicidialAdaptivePacer()
    fresh.observe_launched(0.0, 40)
    fresh.observe_answered(8.0, 0.0)
    fresh.observe_abandon(0.0)
    assert not fresh.hard_limited()  # not yet 50 calls today
    fresh.observe_launched(86400.0 + 1, 100)
    assert fresh.drops_today == 0  # a new day


def test_issabel_counts_agents_about_to_finish_and_divides_by_answer_rate():
    pacer = IssabelPacer(overcommit=False)
    est = pacer.estimates()
    mean = est.talk.mean
    tta = est.time_to_answer.mean
    # 1 - exp(-(t + tta) / mean) >= 0.97  <=>  t >= mean * ln(1 / 0.03) - tta
    edge = mean * 3.506557897319982 - tta
    floor = FloorSnapshot(operators=5, free=1, talk_elapsed=[edge + 1, edge - 1, 5.0],
                          ring_elapsed=[1.0], lines_free=20)
    assert pacer.decide(floor, 0.0).n_calls == 1 + 1 - 1
    over = IssabelPacer(overcommit=True)
    for _ in range(200):
        over.observe_not_answered(30.0)
    p = over.estimates().answer.value
    wide = dataclasses.replace(floor, lines_free=500)
    assert over.decide(wide, 0.0).n_calls == math.ceil(2 / p) - 1
    assert over.decide(floor, 0.0).n_calls == 20  # lines cap


def test_oracle_never_abandons_and_bounds_everyone():
    sc = _scenario(duration_s=1800.0)
    oracle = simulate(sc, "oracle")
    ours = simulate(sc, "predictive")
    assert oracle.abandoned == 0
    assert oracle.agent_occupancy > ours.agent_occupancy
    assert oracle.agent_occupancy > 0.9


def test_same_seed_same_shift_and_metrics_are_consistent():
    sc = _scenario(duration_s=1200.0)
    a = simulate(sc, "fixed-ratio", seed=7)
    b = simulate(sc, "fixed-ratio", seed=7)
    assert a == b
    assert a.abandon_rate == pytest.approx(a.abandoned / a.live_answers)
    assert 0.0 < a.agent_occupancy <= 1.0
    assert a.connects_per_agent_hour == pytest.approx(
        (a.live_answers - a.abandoned - _waiting_at_end(sc, 7)) / (20 * 1200 / 3600), abs=0.2)
    assert set(a.to_dict()) == {"pacing", "calls", "live_answers", "abandoned", "abandon_rate",
                                "agent_occupancy", "talk_min_per_agent_hour",
                                "connects_per_agent_hour", "mean_agent_wait_s",
                                "worst_day_abandon_rate"}


def _waiting_at_end(sc, seed) -> int:
    from controller.pacing import make_pacer
    sim = FloorSimulation(sc, make_pacer("fixed-ratio"), seed=seed)
    sim.run()
    return len(sim.waiting)


def test_time_of_day_answer_rates_change_the_fates():
    sc = _scenario(start_hour=9, answer_prob_by_hour={9: 0.05, 10: 0.6}, duration_s=7200.0)
    assert sc.answer_prob_at(100.0) == 0.05 and sc.answer_prob_at(3700.0) == 0.6
    sim = FloorSimulation(sc, ProgressivePacer())
    morning = [sim.fate(k, 0.0)[0] for k in range(400)]
    late = [sim.fate(k, 3700.0)[0] for k in range(400)]
    assert morning.count(0) < 40 < late.count(0)


def test_abandon_window_forgets_old_minutes_in_real_time():
    window = AbandonWindow(86400.0)
    window.record(0.0, live=10, abandoned=1)
    window.record(50_000.0, live=20)
    assert window.counts(60_000.0) == (30, 1)
    assert window.counts(86400.0 + 120.0) == (20, 0)
    assert window.rate(86400.0 + 120.0) == 0.0


def test_estimates_learn_from_outcomes():
    est = SegmentEstimates(Priors(), no_answer_timeout_s=30.0, half_life=200.0)
    for i in range(2000):
        if i % 10 == 0:
            est.observe_answered(12.0)
        else:
            est.observe_not_answered(30.0 if i % 2 else 3.0)
        est.talk.observe(60.0)
    assert est.answer.value == pytest.approx(0.1, abs=0.02)
    assert est.time_to_answer.mean == pytest.approx(12.0, rel=0.05)
    assert est.talk.mean == pytest.approx(60.0, rel=0.05)
    assert est.early_failure.value == pytest.approx(4 / 9, abs=0.05)  # even i of 1..9 fail early


def test_pacer_learns_per_segment():
    pacer = Pacer(PacerConfig())
    for _ in range(500):
        pacer.observe_answered(5.0, 0.0, segment="soft")
    assert pacer.estimates("soft").answer.value > 0.9
    assert pacer.estimates("hard").answer.value == pytest.approx(0.3)


def test_every_pacer_name_runs():
    sc = _scenario(duration_s=600.0, operators=6, lines=20)
    for name in PACER_NAMES:
        assert simulate(sc, name).pacing == name


@pytest.mark.parametrize("name", ["small", "medium", "large", "low-answer", "high-answer",
                                  "reference-5-20", "reference-20-20", "reference-20-10",
                                  "reference-50-20",
                                  "shift", "medium-ru"])
def test_shipped_scenarios_load(name):
    sc = load_scenario(SCENARIOS / f"{name}.yaml")
    assert sc.name == name and sc.operators >= 5 and sc.abandon_target <= 0.03
    short = dataclasses.replace(sc, duration_s=120.0)
    assert simulate(short, "progressive").calls > 0
