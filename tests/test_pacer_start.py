"""No burst at start or resume; the campaign's abandon rate survives a restart."""
from __future__ import annotations

import pytest

from controller.pacing import FloorSnapshot, Pacer, PacerConfig
from controller.pacing.floor import FloorSimulation
from controller.pacing.scenario import Duration, Scenario
from firmware.lineapi import CallProgress, CallReleased, CallStage, Outcome
from tests.test_dialer import at, make, store  # noqa: F401  (the store fixture)

NOON = "2026-11-25T12:00:00+03:00"


def _cold_floor() -> FloorSnapshot:
    return FloorSnapshot(operators=60, free=60, lines_free=152)


def test_a_cold_pacer_dials_one_call_per_free_operator_then_grows():
    pacer = Pacer(PacerConfig())
    first = pacer.decide(_cold_floor(), 0.0)
    assert first.mode == "predictive" and first.n_calls == 60, first
    for i in range(200):  # a quarter of the calls answered
        if i % 4 == 0:
            pacer.observe_answered(8.0, float(i))
        else:
            pacer.observe_not_answered(20.0)
    grown = pacer.decide(_cold_floor(), 200.0)
    assert grown.n_calls > 100, grown


def _busy_floor(seed: int) -> Scenario:
    # 152 lines, 60 operators, debtors who answer quickly and often: the run of the issue.
    return Scenario(name="start", operators=60, lines=152, duration_s=120.0, answer_prob=0.6,
                    busy_prob=0.1, unreachable_prob=0.1, time_to_answer_s=Duration(5.0, 2.0),
                    no_answer_timeout_s=40.0, talk_s=Duration(120.0, 60.0),
                    wrap_s=Duration(15.0, 5.0), abandon_target=0.03, compliance="us-regf",
                    seed=seed)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_no_abandon_burst_in_the_first_two_minutes(seed):
    warm = FloorSimulation(_busy_floor(seed), Pacer(PacerConfig())).run()
    cold = FloorSimulation(_busy_floor(seed),
                           Pacer(PacerConfig(warmup_outcomes=0))).run()
    assert cold.abandoned >= 20  # what the box did before: ~30 abandons in two minutes
    assert warm.abandoned <= 3, warm
    assert warm.live_answers >= 55  # the floor is still put to work at once


async def test_a_predictive_campaign_starts_at_the_safe_rate(store):  # noqa: F811
    for i in range(200):
        store.upsert_account(1, {"account_id": f"B{i}", "tz": "Europe/Moscow"},
                             [(f"+7913{i:07d}", "mobile")])
    d, fl, ops = await make(store, at(NOON), operators=60, lines=152, profile="none")
    d.mode = "predictive"
    await d._cycle()
    assert len(fl.dials) == 60  # one call per free operator before any outcome is known
    await ops.stop()


async def test_the_abandon_rate_window_is_replayed_after_a_restart(store):  # noqa: F811
    """Abandons stored 10 days ago still count under us-regf's 30-day window."""
    for i in range(40):
        store.upsert_account(1, {"account_id": f"B{i}", "tz": "America/New_York"},
                             [(f"+1212555{i:04d}", "mobile")])
    ten_days_ago = at(NOON) - 10 * 86400
    d, fl, ops = await make(store, ten_days_ago, operators=20, lines=40, profile="none")
    await d._cycle()
    for n, (line, _, call_id) in enumerate(list(fl.dials)):
        fl.emit(CallProgress(line, call_id, CallStage.ANSWERED, d.clock.now()))
        fl.emit(CallReleased(line, call_id, Outcome.ANSWERED, 16, "normal", 3.0,
                             0.0 if n < 2 else 30.0, d.clock.now(), abandoned=n < 2))
    await ops.stop()
    await d.stop()
    stored = store.abandon_rate(1, now=at(NOON), window_s=30 * 86400)
    assert stored == pytest.approx(2 / len(fl.dials))

    # The box restarts ten days later: a new dialer, the same campaign.
    d2, fl2, ops2 = await make(store, at(NOON), operators=20, lines=40, profile="us-regf")
    d2._replay_abandon_window()
    assert d2.pacer.window.rate(d2.clock.now()) == pytest.approx(stored)
    await ops2.stop()


def _fast_failures_floor(seed: int) -> Scenario:
    # The simulated E1 network and real switches answer "busy" or "unreachable" within a
    # tenth of a second, long before anybody picks up: the first outcomes a cold pacer sees
    # are all failures (the live run with four spans and a 32-port gateway).
    return Scenario(name="fast-failures", operators=60, lines=152, duration_s=120.0,
                    answer_prob=0.35, busy_prob=0.15, unreachable_prob=0.12,
                    time_to_answer_s=Duration(8.0, 4.0), no_answer_timeout_s=30.0,
                    talk_s=Duration(60.0, 30.0), wrap_s=Duration(10.0, 4.0),
                    abandon_target=0.01, compliance="ru-230fz", seed=seed,
                    busy_s=Duration(0.1, 0.02), unreachable_s=Duration(0.1, 0.02))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_quick_failures_at_start_do_not_pass_for_a_low_answer_rate(seed):
    """Calls still ringing may all be answered: the warm-up counts them as possible answers."""
    run = FloorSimulation(_fast_failures_floor(seed), Pacer(PacerConfig())).run()
    assert run.abandoned <= 2, run
    assert run.live_answers >= 40  # and the floor still works at once
