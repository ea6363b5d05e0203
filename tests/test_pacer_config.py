"""One pacer configuration: ring time-outs from the lines' profiles, the law's values from the
compliance profile, the target from the campaign; learning and mode per segment."""
from __future__ import annotations

import json

import pytest

from cext import linestate_codes as C
from controller.segments import Segment, Strategy
from controller.store import Store
from firmware.errors import UserError
from firmware import profiles
from firmware.clock import Clock
from firmware.driverapi import HwReport
from firmware.e1.profile import spans_from_profile
from firmware.gsm.driver import GsmModule
from firmware.linemanager import LineManager
from tests.test_dialer import at, make, store  # noqa: F401  (the store fixture)

NOON = "2026-11-25T12:00:00+03:00"


def _lines_of_two_kinds() -> LineManager:
    gsm = GsmModule("gsm0", "/dev/null", profiles.load("ec25"), Clock())
    spans = spans_from_profile(profiles.load("e1-4span").raw, simulate=False)
    return LineManager([gsm, *spans], Clock())


def test_each_line_rings_as_long_as_its_own_profile_says():
    lm = _lines_of_two_kinds()
    assert lm.ring_timeout_s("gsm0") == 40.0
    assert lm.ring_timeout_s("e1-0/1") == 60.0
    assert lm.ring_timeout_s("e1-3/1") == 45.0  # the profile's ring_timeout_s is honoured
    assert {ln.details["ring_timeout_s"] for ln in lm.lines()} == {40.0, 45.0, 60.0}


@pytest.mark.parametrize("line, min_ring, expected_s", [
    ("gsm0", 0.0, 40.0), ("e1-0/1", 0.0, 60.0), ("e1-3/2", 0.0, 45.0),
    ("gsm0", 50.0, 50.0),  # a law asking for a longer ring than the line's wins
])
async def test_the_line_core_gives_up_on_a_ringing_call_at_that_lines_time_out(
        line, min_ring, expected_s):
    lm = _lines_of_two_kinds()
    idx = lm._index(line)
    ch = lm.channels[idx]
    base = idx - ch.local
    report = lm._reporter(base)  # what the line's driver calls
    report(HwReport(ch.local, C.EV_HW_IN_SERVICE))
    lm._act = lambda *a: None  # no hardware behind: only the core's timers are looked at
    await lm.dial(line, "+79001234567", call_id="c1", min_ring_s=min_ring)
    t0 = lm._now_ms()
    report(HwReport(ch.local, C.EV_HW_DIALING))
    report(HwReport(ch.local, C.EV_HW_ALERTING))
    deadline = lm.core.timer_deadline(idx, C.TIMER_RING)
    assert deadline - t0 == pytest.approx(expected_s * 1000, abs=50)


async def test_pacer_settings_come_from_lines_law_and_campaign(store):  # noqa: F811
    d, fl, ops = await make(store, at(NOON), profile="ru-230fz")
    c = d.pacer.config
    assert (c.no_answer_timeout_s, c.abandon_target, c.window_s, c.min_ring_s) == \
        (40.0, 0.01, 86400.0, 0.0)
    await ops.stop()
    fl_e1 = type(fl)(fl.names)
    fl_e1.ring_s = 60.0
    from controller import campaigns
    campaigns.update(store, "c", who="t", source="test", compliance="us-regf",
                     abandon_target=0.02)
    from controller.dialer import Dialer
    from controller.operators import OperatorPool
    ops = OperatorPool(2, store.clock)
    d = Dialer(store, fl_e1, ops, store.clock, campaign_id=1, campaign_name="c",
               compliance_profile="us-regf")
    c = d.pacer.config
    assert (c.no_answer_timeout_s, c.abandon_target, c.window_s, c.min_ring_s) == \
        (60.0, 0.02, 30 * 86400.0, 15.0)
    await ops.stop()


async def test_us_regf_calls_ring_at_least_15_s(store):  # noqa: F811
    d, fl, ops = await make(store, at(NOON), profile="us-regf")
    fl.ring_s = 10.0  # a profile with a short ring: the law's minimum still holds
    from controller.dialer import Dialer
    d = Dialer(store, fl, ops, store.clock, campaign_id=1, campaign_name="c",
               compliance_profile="us-regf")
    d.running = True
    assert d.pacer.config.no_answer_timeout_s == 15.0
    await d._cycle()
    assert fl.dials and set(fl.min_ring) == {15.0}
    await ops.stop()


def _more_leads(store, n: int, segment_region: str | None = None) -> None:
    for i in range(n):
        store.upsert_account(1, {"account_id": f"B{i}", "tz": "Europe/Moscow",
                                 "region": segment_region},
                             [(f"+7913{i:07d}", "mobile")])


async def test_calls_still_ringing_near_the_gsm_time_out_are_not_counted_as_answers(store):  # noqa: F811,E501
    """15 free operators, 20 calls ringing 35 s on 40 s GSM lines: the pacer dials more.

    With a 30 s time-out in the model those 20 calls were sure answers and it launched none.
    """
    _more_leads(store, 80)
    d, fl, ops = await make(store, at(NOON), operators=15, lines=80, profile="none")
    d.mode = "predictive"
    d.pacer.config.warmup_outcomes = 0  # a campaign that has learned its floor
    # Twenty calls launched 35 s ago, still ringing.
    for i in range(20):
        lead = store.next_lead(1, store.clock.wall())
        await d._launch(fl.free_lines()[0], lead, reserve=False)
    store.clock.set(at(NOON) + 35)
    assert d.pacer.config.no_answer_timeout_s == 40.0
    decision = d.pacer.decide(d.floor(len(fl.free_lines())), d.clock.now())
    assert decision.mode == "predictive"
    assert decision.n_calls >= 10, decision
    await ops.stop()


async def test_a_predictive_segment_dials_predictively_in_a_progressive_campaign(store):  # noqa: F811,E501
    _more_leads(store, 60, segment_region="SOFT")
    store.set_segments(1, [Segment("soft", {"region": ["SOFT"]},
                                   Strategy(mode="predictive", priority=10)),
                           Segment("rest", {}, Strategy())])
    d, fl, ops = await make(store, at(NOON), operators=8, lines=40, profile="none")
    assert d.mode == "progressive"
    d.pacer.config.warmup_outcomes = 0  # a campaign that has learned its floor
    await d._cycle()
    assert d.last_decision is not None and d.last_decision.mode == "predictive"
    assert len(fl.dials) > 8  # more calls than free operators: predictive
    await ops.stop()


async def test_the_pacer_learns_each_segment_apart(store):  # noqa: F811
    from firmware.lineapi import CallProgress, CallReleased, CallStage, Outcome
    _more_leads(store, 40, segment_region="SOFT")
    store.set_segments(1, [Segment("soft", {"region": ["SOFT"]},
                                   Strategy(mode="predictive", priority=10)),
                           Segment("rest", {}, Strategy(mode="predictive"))])
    d, fl, ops = await make(store, at(NOON), operators=8, lines=40, profile="none")
    await d._cycle()
    soft_before = d.pacer.estimates("soft").answer.value
    rest_before = d.pacer.estimates("rest").answer.value
    store.clock.set(at(NOON) + 5)
    for line, _, call_id in list(fl.dials):  # every soft call answered at once
        fl.emit(CallProgress(line, call_id, CallStage.ANSWERED, d.clock.now()))
        fl.emit(CallReleased(line, call_id, Outcome.ANSWERED, 16, "normal", 5.0, 1.0,
                             d.clock.now()))
    assert d.pacer.estimates("soft").answer.value > soft_before
    assert d.pacer.estimates("rest").answer.value == rest_before
    await ops.stop()
    await d.stop()


# --- the pacing target: the campaign's, and each segment strategy's own ------------------------
async def _soft_segment_dials(tmp_path, target: float | None) -> tuple[int, str]:
    """20 free operators, 60 lines; the campaign abandoned 2 % of 400 live answers (law: 3 %).
    How many calls the soft segment launches, with this pacing target on its strategy."""
    from tests.test_dialer import FakeClock
    s = Store(tmp_path / f"t{target}.sqlite3", FakeClock(at(NOON)))
    try:
        s.campaign("c", create=True)
        _more_leads(s, 60, segment_region="SOFT")
        s.set_segments(1, [Segment("soft", {"region": ["SOFT"]},
                                   Strategy(mode="predictive", priority=10,
                                            abandon_target=target)),
                           Segment("rest", {}, Strategy())])
        d, fl, ops = await make(s, at(NOON), operators=20, lines=60, profile="none")
        d.pacer.config.warmup_outcomes = 0  # a campaign that has learned its floor
        d.pacer.window.record(d.clock.now() - 600, live=400, abandoned=8)
        await d._cycle()
        await ops.stop()
        return len(fl.dials), d.last_decision.reason
    finally:
        s.close()


async def test_a_segments_pacing_target_steers_how_hard_its_leads_are_dialed(tmp_path):
    n_law, why_law = await _soft_segment_dials(tmp_path, None)  # the campaign's: the law's 3 %
    n_soft, why_soft = await _soft_segment_dials(tmp_path, 0.01)  # 1 %: already over it
    n_over, why_over = await _soft_segment_dials(tmp_path, 0.05)  # above the law: the law's
    assert "target=0.0300" in why_law and "target=0.0100" in why_soft, (why_law, why_soft)
    assert n_law >= n_soft + 5, (n_law, n_soft)  # the stricter target dials fewer
    assert (n_over, why_over) == (n_law, why_law)


async def test_the_campaigns_pacing_target_reaches_a_running_dialer_and_keeps_its_learning(
        store):  # noqa: F811
    from controller import campaigns
    d, fl, ops = await make(store, at(NOON), profile="us-regf")
    learnt = d.pacer.estimates("soft")  # what it learnt so far
    learnt.observe_answered(7.0)
    cfg = campaigns.update(store, "c", who="t", source="test", compliance="us-regf",
                           abandon_target=0.015)
    d.reconfigure(mode=cfg.mode, compliance_profile=cfg.compliance,
                  abandon_target=cfg.abandon_target)
    assert d.pacer.config.abandon_target == 0.015
    assert d.pacer.estimates("soft") is learnt
    with pytest.raises(UserError, match="at most 3 %"):
        campaigns.update(store, "c", who="t", source="test", abandon_target=0.04)
    with pytest.raises(UserError, match="at most 1 %"):  # a stricter law: the target is over it
        campaigns.update(store, "c", who="t", source="test", compliance="ru-230fz")
    assert store.campaign_config("c").abandon_target == 0.015
    await ops.stop()


async def test_a_segment_target_over_the_campaigns_law_is_refused(store):  # noqa: F811
    from controller import campaigns
    campaigns.update(store, "c", who="t", source="test", compliance="us-regf")
    seg = campaigns.set_segment_target(store, "c", "dpd 1-30", 0.02, who="t", source="test")
    assert seg.strategy.abandon_target == 0.02
    assert store.strategy(1, "dpd 1-30").abandon_target == 0.02
    with pytest.raises(UserError, match="segment dpd 31-60: the pacing target is at most"):
        campaigns.set_segment_target(store, "c", "dpd 31-60", 0.035, who="t", source="test")
    with pytest.raises(UserError, match="has segments"):
        campaigns.set_segment_target(store, "c", "nope", 0.01, who="t", source="test")
    with pytest.raises(UserError, match="segment dpd 1-30"):  # its target over ru-230fz's 1 %
        campaigns.update(store, "c", who="t", source="test", compliance="ru-230fz")
    from controller import audit
    [entry] = audit.entries(store, obj="campaign", key="c", text="segment_target")
    assert entry["after"] == {"segment": "dpd 1-30", "abandon_target": 0.02}


def test_a_campaign_target_kept_in_the_old_settings_moves_to_its_column(tmp_path):
    from controller.store import MIGRATIONS
    s = Store(tmp_path / "old.sqlite3")
    s.campaign("c", create=True)
    s.db.execute("ALTER TABLE campaigns DROP COLUMN abandon_target")  # as before the migration
    s.db.execute("UPDATE campaigns SET settings='{\"abandon_target\": 0.02}'")
    # That migration alone, run again (later ones may follow it in MIGRATIONS).
    s.db.executescript(next(m for m in MIGRATIONS if "ADD COLUMN abandon_target" in m))
    s.close()
    s = Store(tmp_path / "old.sqlite3")
    assert s.campaign_config("c").abandon_target == 0.02
    s.close()


async def test_a_call_just_dialed_on_a_shorter_ringing_line_counts_as_just_dialed(store):  # noqa: F811,E501
    """E1 lines ring 60 s, the gateway's GSM lines 40 s: a call dialed a second ago on a GSM
    line may be answered as surely as one on an E1 line. Before, it was taken for a call that
    had rung 21 s unanswered (almost sure not to answer), and the pacer over-dialed as soon as
    calls spread over both kinds of lines (the live run: 13 abandons in its third minute)."""
    _more_leads(store, 80)
    d, fl, ops = await make(store, at(NOON), operators=15, lines=40, profile="none")
    d.mode = "predictive"
    d.pacer.config.warmup_outcomes = 0
    gsm = set(fl.names[::2])
    fl.ring_timeout_s = lambda line: 40.0 if line in gsm else 60.0
    for line in fl.names:
        d._read_ring(line)
    assert d.pacer.config.no_answer_timeout_s == 60.0
    for line in sorted(gsm)[:10]:
        await d._launch(line, store.next_lead(1, store.clock.wall()), reserve=False)
    store.clock.set(at(NOON) + 1)
    floor = d.floor(len(fl.free_lines()))
    assert floor.ringing == 10 and max(floor.ring_elapsed) == pytest.approx(1.0, abs=0.01)
    on_gsm = d.pacer.decide(floor, d.clock.now())
    for call in d._out.values():  # the same ten calls, as if on E1 lines
        call.ring_s = 60.0
    assert d.pacer.decide(d.floor(len(fl.free_lines())), d.clock.now()).n_calls == \
        on_gsm.n_calls
    await ops.stop()
