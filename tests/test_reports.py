"""Reports: the funnel with names, contacts by hour and weekday, ASR/ACD per line, abandons
against the law's limit over 30 days, operators' talk and wrap-up; charts as SVG."""
from __future__ import annotations

from datetime import datetime, timezone
from xml.etree import ElementTree

import pytest

from controller import reports
from controller.store import AccountWriter, Lead, Store
from web_admin import charts

MON_10 = datetime(2026, 11, 23, 7, 0, tzinfo=timezone.utc).timestamp()  # Mon 10:00 in Moscow


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "db.sqlite3")
    yield s
    s.close()


def _calls(store, campaign: str, profile: str, plan: list[tuple]) -> None:
    """plan: (offset_s, line, operator position, outcome, talk_s, wrap_s, abandoned)."""
    cid = store.campaign(campaign, create=True, compliance_profile=profile)
    w = AccountWriter(store, cid)
    for i in range(len(plan)):
        w.add({"account_id": f"{campaign}-{i}"}, [(f"+7912000{i:04d}", "mobile")])
    w.finish()
    for i, (off, line, op, outcome, talk, wrap, ab) in enumerate(plan):
        pk, ph = store.db.execute("SELECT a.id, p.id FROM accounts a JOIN phones p ON "
                                  "p.account_pk=a.id WHERE a.account_id=?",
                                  (f"{campaign}-{i}",)).fetchone()
        call_id = f"{campaign}-c{i}"
        store.begin_attempt(cid, Lead(pk, ph, "+7", f"{campaign}-{i}"), line, call_id, op,
                            now=MON_10 + off)
        store.finish_attempt(call_id, outcome=outcome, q850=16, reason="", ring_s=5.0,
                             talk_s=talk, abandoned=ab, now=MON_10 + off + 60)
        if wrap:
            store.record_wrap(call_id, wrap)


@pytest.fixture
def floor(store):
    _calls(store, "Банк", "ru-230fz", [
        (0, "gsm0", "desk-olga", "answered", 100.0, 20.0, False),
        (60, "gsm0", "desk-olga", "answered", 50.0, 10.0, False),
        (120, "gsm1", None, "no_answer", 0.0, 0, False),
        (3600, "e1s0b1", "pos1", "answered", 30.0, 0, False),
        (3660, "e1s0b1", None, "answered", 0.0, 0, True),
    ])
    _calls(store, "МФО", "us-regf", [(86400, "gsm1", "desk-ivan", "busy", 0.0, 0, False)])
    return store


def test_funnel_by_campaign_and_operator_shows_names(floor):
    rows = reports.funnel(floor, by="campaign", since=MON_10 - 1, until=MON_10 + 7 * 86400)
    by = {r["key"]: r for r in rows}
    assert set(by) == {"Банк", "МФО"}
    assert (by["Банк"]["attempts"], by["Банк"]["contacts"], by["Банк"]["abandoned"]) == (5, 3, 1)
    ops = reports.funnel(floor, by="operator", since=MON_10 - 1, until=MON_10 + 7 * 86400)
    assert {r["key"] for r in ops} >= {"olga", "ivan", "pos1"}


def test_heatmap_counts_by_local_hour_and_weekday(floor):
    cells = {(c["weekday"], c["hour"]): c for c in reports.heatmap(
        floor, since=MON_10 - 1, until=MON_10 + 7 * 86400)}
    assert cells[(0, 10)]["attempts"] == 3 and cells[(0, 10)]["contacts"] == 2
    assert cells[(0, 11)]["attempts"] == 2 and cells[(0, 11)]["contacts"] == 1
    assert cells[(1, 10)]["attempts"] == 1  # Tuesday


def test_asr_and_acd_per_line(floor):
    by = {r["line"]: r for r in reports.lines(floor, since=MON_10 - 1, until=MON_10 + 9e5)}
    assert by["gsm0"]["asr"] == 1.0 and by["gsm0"]["acd_s"] == 75.0
    assert by["gsm1"]["asr"] == 0.0 and by["gsm1"]["acd_s"] is None
    assert by["e1s0b1"]["asr"] == 1.0 and by["e1s0b1"]["acd_s"] == 30.0


def test_abandons_against_the_limit_of_each_campaigns_law(floor):
    by = {r["campaign"]: r for r in reports.abandons(floor, until=MON_10 + 86400)}
    assert by["Банк"]["abandon_rate"] == 0.25 and by["Банк"]["live_answers"] == 4
    assert by["МФО"]["abandon_rate"] is None
    assert by["МФО"]["limit"] == pytest.approx(0.03)
    assert by["Банк"]["over_limit"] is (by["Банк"]["limit"] is not None)
    later = {r["campaign"]: r for r in reports.abandons(floor, until=MON_10 + 40 * 86400)}
    assert later["Банк"]["live_answers"] == 0  # 30 days on, the window is empty


def test_operators_talk_and_wrap(floor):
    by = {r["operator"]: r for r in reports.operators(floor, since=MON_10 - 1,
                                                     until=MON_10 + 9e5)}
    assert (by["olga"]["calls"], by["olga"]["talk_s"], by["olga"]["wrap_s"]) == (2, 150.0, 30.0)
    assert by["olga"]["talk_share"] == pytest.approx(150 / 180, abs=1e-4)
    assert by["olga"]["no_outcome"] == 0


def test_operators_report_counts_calls_left_with_no_outcome(floor):
    assert floor.record_no_outcome("Банк-c1", 45.0, who="olga")  # her wrap-up limit passed
    by = {r["operator"]: r for r in reports.operators(floor, since=MON_10 - 1,
                                                     until=MON_10 + 9e5)}
    assert (by["olga"]["no_outcome"], by["olga"]["wrap_s"]) == (1, 65.0)
    assert by["pos1"]["no_outcome"] == 0


def test_charts_are_well_formed_svg_with_escaped_text():
    svg = charts.bars([("Попытки <script>", 10, "10"), ("Контакты", 4, "4")], limit=5,
                      limit_label="3 %", title="t & t")
    root = ElementTree.fromstring(svg)
    assert root.tag.endswith("svg") and "<script>" not in svg
    assert len(root.findall(".//{http://www.w3.org/2000/svg}rect")) == 2
    grid = charts.heatmap({(0, 10): 0.5}, rows=["Пн", "Вт"], title="x")
    assert len(ElementTree.fromstring(grid).findall(".//{http://www.w3.org/2000/svg}rect")) == 48


def test_operators_report_shows_logged_in_time_on_the_floor_and_occupancy(tmp_path):
    from controller import occupancy
    from controller.operators import OperatorPool
    from tests.test_dialer import FakeClock
    clock = FakeClock(MON_10)
    store = Store(tmp_path / "occ.sqlite3", clock)
    pool = OperatorPool(0, clock)  # type: ignore[arg-type]
    olga, anna = pool.login("olga"), pool.login("anna")
    pool.set_ready(anna, True)
    clock.set(MON_10 + 60)  # olga: 60 s at the desk, not ready
    pool.set_ready(olga, True)
    clock.set(MON_10 + 100)  # free 40 s; anna free 100 s
    pool.take_break(anna, "lunch")
    assert pool.reserve("c1") is olga
    pool.talking(olga)
    clock.set(MON_10 + 250)  # talking 150 s
    pool.release(olga, talked=True)
    clock.set(MON_10 + 280)  # wrap-up 30 s
    pool.finish_wrap(olga)
    clock.set(MON_10 + 300)  # free 20 s, then her desk closes and she goes home
    pool.desk_gone(olga)
    pool.set_ready(anna, True)
    clock.set(MON_10 + 350)  # anna: 200 s of lunch, then 50 s free again, and home too
    pool.desk_gone(anna)
    occupancy.flush(store, pool)
    clock.set(MON_10 + 300 + 3 * 3600)  # three hours with olga's desk closed
    occupancy.flush(store, pool)
    _calls(store, "Банк", "ru-230fz", [(100, "gsm0", "desk-olga", "answered", 150.0, 30.0,
                                        False)])
    by = {r["operator"]: r for r in reports.operators(store, since=MON_10 - 1,
                                                     until=MON_10 + 86400)}
    olga_row, anna_row = by["olga"], by["anna"]
    assert olga_row["calls"] == 1 and olga_row["logged_in_s"] == 300.0  # not the 3 h gone
    assert (olga_row["floor_s"], olga_row["occupancy"]) == (240.0, 0.75)
    assert anna_row["calls"] == 0 and anna_row["break_s"] == 200.0  # logged in, took no call
    assert (anna_row["logged_in_s"], anna_row["floor_s"], anna_row["occupancy"]) == (
        350.0, 150.0, 0.0)
    assert occupancy.seconds_by_state(store, None)["desk-olga"]["desk_gone"] == 3 * 3600
    later = reports.operators(store, since=MON_10 + 2 * 86400, until=MON_10 + 3 * 86400)
    assert later == []  # another day: no time, no calls
    store.close()
