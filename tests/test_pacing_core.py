"""Pacing math in cext: both implementations, same behaviour, sensible decisions."""
from __future__ import annotations

import math
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import cext_module

TTA = (2.2257, 0.3853)  # log-normal of ~10 s +- 4 s
TALK = (4.4, 0.7)
WRAP = (2.9, 0.35)
FAIL = (1.4, 0.55)


def _plan(core, free=2, talk=(), wrap=(), ring=(), waiting=0, p=0.2, lam=0.03, budget=1e9,
          target=0.03, max_new=100, tta=TTA, grace=2.0):
    return core.plan(free, list(talk), list(wrap), list(ring), waiting, p, tta[0], tta[1],
                     0.4, FAIL[0], FAIL[1], 30.0, TALK[0], TALK[1], WRAP[0], WRAP[1], grace, lam,
                     budget, target, max_new)


def test_normal_tail_is_accurate(cext_impl):
    core = cext_module(cext_impl, "pacing")
    for z in (-3.0, -1.0, 0.0, 0.5, 1.96, 4.0):
        assert core.norm_sf(z) == pytest.approx(0.5 * math.erfc(z / math.sqrt(2)), rel=2e-7)
    mu, sigma = core.lognormal_params(120.0, 60.0)
    assert math.exp(mu + sigma * sigma / 2) == pytest.approx(120.0)


def test_every_call_answered_means_one_call_per_free_operator(cext_impl):
    core = cext_module(cext_impl, "pacing")
    for free in (1, 3, 7):
        n, _, live = _plan(core, free=free, p=0.999, lam=0.01)
        assert n == free
        assert live == pytest.approx(0.999 * free)


def test_low_answer_rate_dials_several_calls_per_free_operator(cext_impl):
    core = cext_module(cext_impl, "pacing")
    n, exp_ab, live = _plan(core, free=4, p=0.1, lam=0.05)
    assert n >= 15  # ~1/p calls per operator, minus what the risk allows
    assert exp_ab <= 0.05 * live


def test_no_free_operator_and_long_talks_means_no_call(cext_impl):
    core = cext_module(cext_impl, "pacing")
    n, _, _ = _plan(core, free=0, talk=[5.0] * 10, p=0.3, lam=0.05)
    assert n == 0


def test_operators_about_to_free_up_attract_calls(cext_impl):
    core = cext_module(cext_impl, "pacing")
    fresh, _, _ = _plan(core, free=0, talk=[1.0] * 10, p=0.2, lam=0.05)
    # Operators in wrap-up for longer than usual free up within the answer time.
    ending, _, _ = _plan(core, free=0, wrap=[30.0] * 10, p=0.2, lam=0.05)
    assert ending > fresh + 5


def test_spent_budget_allows_only_riskless_calls(cext_impl):
    core = cext_module(cext_impl, "pacing")
    busy = dict(free=3, talk=[200.0] * 17, p=0.2, lam=0.2)
    open_, _, _ = _plan(core, **busy)
    _, before, _ = _plan(core, **busy, budget=-5.0, max_new=0)
    spent, after, _ = _plan(core, **busy, budget=-5.0)
    assert 3 <= spent < open_
    # Each call launched on a spent budget adds at most 1e-4 abandons per expected answer.
    assert after - before <= spent * 0.2 * 1e-4 + 1e-12


floors = st.fixed_dictionaries({
    "free": st.integers(0, 12),
    "talk": st.lists(st.floats(0.0, 900.0), max_size=30),
    "wrap": st.lists(st.floats(0.0, 60.0), max_size=8),
    "ring": st.lists(st.floats(0.0, 40.0), max_size=40),
    "waiting": st.integers(0, 3),
    "p": st.floats(0.01, 0.99),
    "lam": st.floats(0.0, 0.5),
    "budget": st.floats(-20.0, 50.0),
    "target": st.sampled_from([0.01, 0.03]),
    "max_new": st.integers(0, 120),
    "tta": st.tuples(st.floats(0.5, 3.0), st.floats(0.05, 1.0)),
    "grace": st.floats(0.0, 3.0),
})


@pytest.fixture(scope="module")
def compiled():
    """The compiled core; the run fails when it did not load (skips when disabled on purpose)."""
    import cext
    if cext.IMPLEMENTATION != "cython":
        if os.environ.get("DIALBOX_NO_EXTENSIONS"):
            pytest.skip("DIALBOX_NO_EXTENSIONS=1: compiled core disabled on purpose")
        pytest.fail("the compiled cext core did not load (build it: pip install -e .)")
    return cext_module("cython", "pacing")


@settings(max_examples=150, deadline=None)
@given(floor=floors)
def test_both_implementations_decide_identically(compiled, floor):
    cy = compiled
    py = cext_module("python", "pacing")
    assert _plan(cy, **floor) == _plan(py, **floor)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(floor=floors, extra=st.floats(0.0, 0.5))
def test_a_higher_threshold_never_launches_fewer_calls(cext_impl, floor, extra):
    core = cext_module(cext_impl, "pacing")
    low = _plan(core, **floor)[0]
    floor = dict(floor, lam=floor["lam"] + extra, budget=1e9)
    assert _plan(core, **floor)[0] >= low
    assert low <= floor["max_new"]


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(floor=floors, elapsed=st.floats(0.0, 5.0))
def test_more_ringing_calls_never_launch_more(cext_impl, floor, elapsed):
    core = cext_module(cext_impl, "pacing")
    floor = dict(floor, budget=1e9, max_new=60)
    base = _plan(core, **floor)[0]
    more = _plan(core, **dict(floor, ring=floor["ring"] + [elapsed] * 3))[0]
    assert more <= base


def test_both_implementations_run_the_same_shift(compiled, monkeypatch):
    """End to end: the simulated floor takes the very same decisions with either core."""
    import controller.pacing.pacer as pacer_module
    from controller.pacing import simulate
    from controller.pacing.scenario import Duration, Scenario
    sc = Scenario(name="twin", operators=12, lines=40, duration_s=900.0, answer_prob=0.2,
                  busy_prob=0.1, unreachable_prob=0.1, time_to_answer_s=Duration(10, 4),
                  no_answer_timeout_s=30.0, talk_s=Duration(90, 60), wrap_s=Duration(15, 5))
    results = []
    for impl in ("cython", "python"):
        monkeypatch.setattr(pacer_module, "core", cext_module(impl, "pacing"))
        results.append(simulate(sc, "predictive", seed=5))
    assert results[0] == results[1]
    assert results[0].calls > 2 * results[0].live_answers > 0
