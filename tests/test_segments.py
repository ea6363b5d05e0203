"""Segments and strategies, the next lead by priority, callbacks, flags, backlog, DNC lists."""
from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from controller.segments import Segment, Strategy
from controller.store import MIGRATIONS, Store
from firmware.errors import UserError

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=ZoneInfo("Europe/Moscow")).timestamp()


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "db.sqlite3")
    yield s
    s.close()


def add(store, cid, aid, *, dpd=None, phones=(("+79123456789", "mobile"),), **rec):
    store.upsert_account(cid, {"account_id": aid, "dpd": dpd, **rec}, list(phones))
    return store.db.execute("SELECT id FROM accounts WHERE account_id=?", (aid,)).fetchone()[0]


def dial(store, cid, call_id, outcome="busy", *, now=T0, operator=None, talk_s=0.0,
         abandoned=False):
    lead = store.next_lead(cid, now, operator)
    assert lead is not None
    store.begin_attempt(cid, lead, "gsm0", call_id, operator, now=now)
    store.finish_attempt(call_id, outcome=outcome, q850=None, reason="", ring_s=1.0,
                         talk_s=talk_s, abandoned=abandoned, now=now + 30)
    return lead


def status(store, pk):
    return store.db.execute("SELECT status, next_due_at FROM accounts WHERE id=?",
                            (pk,)).fetchone()


@pytest.mark.parametrize("dpd,segment", [(1, "dpd 1-30"), (30, "dpd 1-30"), (31, "dpd 31-60"),
                                         (90, "dpd 61-90"), (91, "dpd 90+"), (None, "other"),
                                         (0, "other")])
def test_default_dpd_buckets(store, dpd, segment):
    cid = store.campaign("c", create=True)
    pk = add(store, cid, "A", dpd=dpd)
    assert store.db.execute("SELECT segment FROM accounts WHERE id=?", (pk,)).fetchone()[0] \
        == segment


def test_custom_segments_by_amount_product_region_reassign_every_account(store):
    cid = store.campaign("c", create=True)
    big = add(store, cid, "BIG", dpd=10, debt_amount=500_000.0, product="mortgage")
    card = add(store, cid, "CARD", dpd=10, debt_amount=5_000.0, product="card",
               region="Москва")
    rest = add(store, cid, "REST", dpd=10, debt_amount=5_000.0, product="card", region="Тыва")
    moved = store.set_segments(cid, [
        {"name": "big", "rules": {"amount": [100_000, None]},
         "strategy": {"priority": 50, "mode": "preview", "sms_rules": ["reminder"]}},
        {"name": "moscow cards", "rules": {"product": ["card"], "region": ["Москва"]},
         "strategy": {"priority": 5}},
        {"name": "rest", "rules": {}},
    ])
    assert moved == 3
    seg = dict(store.db.execute("SELECT id, segment FROM accounts").fetchall())
    assert seg == {big: "big", card: "moscow cards", rest: "rest"}
    assert store.strategy(cid, "big").mode == "preview"
    assert store.strategy(cid, "big").sms_rules == ("reminder",)
    # Stored as data: a new Store reads the same segments back.
    s2 = Store(store.path)
    assert [s.name for s in s2.segments(cid)] == ["big", "moscow cards", "rest"]
    s2.close()


@pytest.mark.parametrize("bad,words", [
    ([{"name": "x", "rules": {"colour": ["red"]}}], "unknown rule"),
    ([{"name": "x", "rules": {"dpd": 5}}], r"\[min, max\]"),
    ([{"name": "x", "rules": {"amount": ["1000", None]}}], r"\[min, max\]"),
    ([{"name": "x", "rules": {"region": [["Москва"]]}}], "list of values"),
    ([{"name": "x", "strategy": {"mode": "turbo"}}], "mode"),
    ([{"name": "x", "strategy": {"phone_order": ["fax"]}}], "phone_order"),
    ([{"name": "x", "strategy": {"speed": 1}}], "unknown strategy keys"),
    ([{"name": "x"}, {"name": "x"}], "each name once"),
])
def test_bad_segments_are_refused_and_nothing_changes(store, bad, words):
    cid = store.campaign("c", create=True)
    with pytest.raises(UserError, match=words):
        store.set_segments(cid, bad)
    assert [s.name for s in store.segments(cid)][0] == "dpd 1-30"


def test_next_lead_takes_the_highest_priority_due_now(store):
    cid = store.campaign("c", create=True)
    soft = add(store, cid, "SOFT", dpd=5, phones=[("+79123456781", "mobile")])
    hard = add(store, cid, "HARD", dpd=120, phones=[("+79123456782", "mobile")])
    later = add(store, cid, "LATER", dpd=200, phones=[("+79123456783", "mobile")])
    store.db.execute("UPDATE accounts SET next_due_at=? WHERE id=?", (T0 + 3600, later))
    store.db.execute("UPDATE accounts SET next_due_at=? WHERE id=?", (T0 - 10, hard))
    lead = store.next_lead(cid, T0)
    assert (lead.account_pk, lead.segment) == (hard, "dpd 90+")
    store.begin_attempt(cid, lead, "gsm0", "c1", None, now=T0)
    assert store.next_lead(cid, T0).account_pk == soft  # LATER is not due yet
    assert store.next_lead(cid, T0 + 3600).account_pk == later


def test_retry_delay_comes_from_the_segment_strategy(store):
    cid = store.campaign("c", create=True)
    store.set_segments(cid, [Segment("all", {}, Strategy(retry_s={"busy": 120,
                                                                  "no_answer": 7200}))])
    pk = add(store, cid, "A")
    dial(store, cid, "c1", "busy")
    assert status(store, pk)["next_due_at"] == T0 + 30 + 120
    dial(store, cid, "c2", "no_answer", now=T0 + 200)
    assert status(store, pk)["next_due_at"] == T0 + 230 + 7200


def test_attempts_per_day_push_the_next_one_to_the_debtors_next_day(store):
    cid = store.campaign("c", create=True)
    store.set_segments(cid, [Segment("all", {}, Strategy(attempts_per_day=2, max_attempts=9))])
    pk = add(store, cid, "A", tz="Asia/Vladivostok")
    dial(store, cid, "c1")
    dial(store, cid, "c2", now=T0 + 700)
    midnight = datetime(2026, 11, 26, 0, 0, tzinfo=ZoneInfo("Asia/Vladivostok")).timestamp()
    assert status(store, pk)["next_due_at"] == midnight
    assert store.next_lead(cid, midnight - 1) is None
    dial(store, cid, "c3", now=midnight)  # a new day: the count starts again
    assert status(store, pk)["next_due_at"] == midnight + 30 + 600


def test_max_attempts_of_the_strategy_end_the_account(store):
    cid = store.campaign("c", create=True)
    store.set_segments(cid, [Segment("all", {}, Strategy(max_attempts=2, attempts_per_day=5))])
    pk = add(store, cid, "A")
    dial(store, cid, "c1")
    dial(store, cid, "c2", now=T0 + 1000)
    assert status(store, pk)["status"] == "done"


def test_phone_types_are_dialed_in_the_strategys_order_round_robin(store):
    cid = store.campaign("c", create=True)
    store.set_segments(cid, [Segment("all", {}, Strategy(phone_order=("work", "mobile"),
                                                         max_attempts=9, attempts_per_day=9))])
    add(store, cid, "A", phones=[("+79123456781", "mobile"), ("+74951234567", "work"),
                                 ("+79123456783", "third_party")])
    dialed = [dial(store, cid, f"c{i}", now=T0 + 1000 * i).kind for i in range(4)]
    assert dialed == ["work", "mobile", "work", "mobile"]  # never the third party


def test_a_last_outcome_rule_moves_the_account_after_the_call(store):
    cid = store.campaign("c", create=True)
    store.set_segments(cid, [Segment("busy ones", {"last_outcome": ["busy"]},
                                     Strategy(priority=9)),
                             Segment("all", {}, Strategy())])
    pk = add(store, cid, "A")
    dial(store, cid, "c1", "busy")
    assert store.db.execute("SELECT segment, priority FROM accounts WHERE id=?",
                            (pk,)).fetchone()[:] == ("busy ones", 9)


def test_a_complaint_stops_dialing_until_a_supervisor_clears_it(store):
    cid = store.campaign("c", create=True)
    pk = add(store, cid, "A")
    store.flag_account(pk, "complaint", "грубил оператор", "supervisor1", now=T0)
    assert store.next_lead(cid, T0 + 10 ** 6) is None
    assert store.db.execute("SELECT code, detail FROM decisions").fetchone()[:] == \
        ("complaint", "грубил оператор")
    assert store.open_flags(pk)[0]["flagged_by"] == "supervisor1"
    assert store.clear_flag(pk, "chief", now=T0 + 5) == 1
    assert store.next_lead(cid, T0 + 10).account_pk == pk
    assert store.db.execute("SELECT cleared_by FROM flags").fetchone()[0] == "chief"


def test_a_dispute_flagged_during_the_call_survives_the_end_of_the_call(store):
    cid = store.campaign("c", create=True)
    pk = add(store, cid, "A")
    lead = store.next_lead(cid, T0)
    store.begin_attempt(cid, lead, "gsm0", "c1", "pos1", now=T0)
    store.flag_account(pk, "dispute", "не мой долг", "pos1", now=T0 + 5)
    store.finish_attempt("c1", outcome="no_answer", q850=None, reason="", ring_s=1, talk_s=0,
                         abandoned=False, now=T0 + 10)
    assert status(store, pk)["status"] == "flagged"
    store.clear_flag(pk, "chief", now=T0 + 20)
    st = status(store, pk)
    assert (st["status"], st["next_due_at"]) == ("active", T0 + 10 + 1800)


def test_callbacks_fire_at_their_time_for_their_operator_first(store):
    cid = store.campaign("c", create=True)
    pk = add(store, cid, "CB", dpd=5)
    other = add(store, cid, "OTHER", dpd=200, phones=[("+79123456780", "mobile")])
    store.db.execute("UPDATE accounts SET next_due_at=? WHERE id=?", (T0 + 10 ** 6, other))
    at = T0 + 6 * 3600
    cb = store.schedule_callback(pk, at, "pos2", now=T0)
    assert store.next_lead(cid, at - 1, "pos2") is None  # not before the time asked
    assert store.next_lead(cid, at, "pos1") is None  # kept for pos2 a while
    lead = store.next_lead(cid, at, "pos2")
    assert (lead.account_pk, lead.callback_id, lead.operator) == (pk, cb, "pos2")
    assert store.next_lead(cid, at + 300, "pos1").callback_id == cb  # pos2 never came
    store.begin_attempt(cid, lead, "gsm0", "c1", "pos2", now=at)
    assert store.db.execute("SELECT state, call_id FROM callbacks").fetchone()[:] == \
        ("fired", "c1")


def test_a_callback_the_law_refuses_now_waits_for_the_allowed_time(store):
    cid = store.campaign("c", create=True)
    pk = add(store, cid, "A")
    store.schedule_callback(pk, T0, None, now=T0 - 100)
    lead = store.next_lead(cid, T0)
    store.hold(lead.account_pk, "outside_hours", "22:00 local", campaign_id=cid,
               until=T0 + 3600, now=T0)
    assert store.next_lead(cid, T0 + 10) is None
    assert store.next_lead(cid, T0 + 3600).callback_id is not None


def test_backlog_counts_due_unworked_leads_per_segment(store):
    cid = store.campaign("c", create=True)
    for i, dpd in enumerate([5, 6, 45, 100, 100]):
        add(store, cid, f"A{i}", dpd=dpd, phones=[(f"+7912345678{i}", "mobile")])
    store.db.execute("UPDATE accounts SET next_due_at=? WHERE account_id='A4'", (T0 + 60,))
    lead = store.next_lead(cid, T0)  # A3 (90+) is being dialed: not backlog
    store.begin_attempt(cid, lead, "gsm0", "c1", None, now=T0)
    cb_pk = store.db.execute("SELECT id FROM accounts WHERE account_id='A0'").fetchone()[0]
    store.schedule_callback(cb_pk, T0 - 1, None, now=T0 - 100)
    assert store.backlog(cid, T0) == {"dpd 1-30": 2, "dpd 31-60": 1}
    assert store.backlog(cid, T0 + 60) == {"dpd 1-30": 2, "dpd 31-60": 1, "dpd 90+": 1}
    store.finish_attempt("c1", outcome="busy", q850=None, reason="", ring_s=1, talk_s=0,
                         abandoned=False, now=T0)
    assert store.backlog(cid, T0 + 10 ** 5) == {"dpd 1-30": 2, "dpd 31-60": 1, "dpd 90+": 2}
    assert store.backlog(cid, T0 + 10 ** 5, fresh=True) == {"dpd 1-30": 1, "dpd 31-60": 1,
                                                            "dpd 90+": 1}


def test_dnc_numbers_are_skipped_with_the_decision_recorded_and_audited(store):
    cid = store.campaign("c", create=True)
    pk = add(store, cid, "A", phones=[("+79123456781", "mobile"), ("+74951234567", "home")])
    store.dnc_add("8 (912) 345-67-81", "просил не звонить", "supervisor1", now=T0)
    lead = store.next_lead(cid, T0)
    assert lead.number == "+74951234567"
    store.dnc_add("+7 495 123-45-67", "третье лицо", "supervisor1", now=T0)
    assert store.next_lead(cid, T0) is None
    codes = [r[0] for r in store.db.execute("SELECT code FROM decisions ORDER BY id")]
    assert "no_phone" in codes
    assert status(store, pk)["status"] == "stopped"
    assert store.dnc_remove("+79123456781", "chief", "ошибка", now=T0 + 1)
    assert store.next_lead(cid, T0 + 2).number == "+79123456781"
    audit = store.list_audit("dnc")
    assert [(a["e164"], a["action"], a["by"]) for a in audit] == [
        ("+79123456781", "add", "supervisor1"), ("+74951234567", "add", "supervisor1"),
        ("+79123456781", "remove", "chief")]


def test_a_number_put_on_dnc_after_import_is_never_dialed(store):
    cid = store.campaign("c", create=True)
    add(store, cid, "A")
    store.db.execute("INSERT INTO phone_lists VALUES ('dnc', '+79123456789', 'r', 'x', 0)")
    assert store.next_lead(cid, T0) is None  # checked at dial time, not only when added
    assert store.db.execute("SELECT code FROM decisions").fetchone()[0] == "dnc"


def test_inbound_block_list(store):
    store.block_caller("89161112233", "угрозы операторам", "supervisor1")
    assert store.is_blocked("+79161112233") and store.is_blocked("8 916 111-22-33")
    assert not store.is_blocked("+79161112234")
    assert not store.is_blocked(None) and not store.is_blocked("anonymous")
    assert not store.is_dnc("+79161112233")  # the two lists are apart
    with pytest.raises(UserError, match="say why"):
        store.dnc_add("+79161112233", " ", "x")
    with pytest.raises(UserError, match="not a phone number"):
        store.block_caller("12", "r", "x")


def test_dnc_cli_add_list_remove(tmp_path, monkeypatch, capsys):
    from tests.test_import import _cli
    data = str(tmp_path / "d")
    assert _cli(monkeypatch, ["dnc", "add", "8 912 345-67-89", "--reason", "просил",
                              "--by", "anna", "--data", data]) == 0
    assert _cli(monkeypatch, ["dnc", "add", "+79161112233", "--inbound", "--reason", "abuse",
                              "--by", "anna", "--data", data]) == 0
    capsys.readouterr()
    assert _cli(monkeypatch, ["dnc", "list", "--data", data]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["e164"], r["reason"], r["added_by"]) for r in rows] == \
        [("+79123456789", "просил", "anna")]
    assert _cli(monkeypatch, ["dnc", "remove", "+79123456789", "--by", "boss",
                              "--data", data]) == 0
    assert _cli(monkeypatch, ["dnc", "remove", "+79123456789", "--data", data]) == 1
    capsys.readouterr()
    assert _cli(monkeypatch, ["dnc", "list", "--audit", "--data", data]) == 0
    actions = [json.loads(line)["action"] for line in capsys.readouterr().out.splitlines()]
    assert actions == ["add", "remove"]
    assert _cli(monkeypatch, ["dnc", "add", "12", "--reason", "x", "--data", data]) == 1
    assert "not a phone number" in capsys.readouterr().err


def test_a_v1_database_is_migrated_and_keeps_working(tmp_path):
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(MIGRATIONS[0] + "; PRAGMA user_version=1;")
    db.execute("INSERT INTO campaigns (name, created_at) VALUES ('old', 0)")
    db.execute("INSERT INTO accounts (campaign_id, account_id, dpd, updated_at) "
               "VALUES (1, 'OLD-1', 50, 0)")
    db.execute("INSERT INTO phones (account_pk, e164) VALUES (1, '+79123456789')")
    db.commit()
    db.close()
    s = Store(path)
    assert s.db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert [seg.name for seg in s.segments(1)][:2] == ["dpd 1-30", "dpd 31-60"]
    s.reassign_segments(1)
    lead = s.next_lead(1, T0)
    assert (lead.account_id, lead.segment) == ("OLD-1", "dpd 31-60")
    s.close()


def test_segments_set_by_another_process_are_seen_by_a_running_store(store):
    cid = store.campaign("c", create=True)
    assert store.strategy(cid, "dpd 1-30").priority == 10
    other = Store(store.path)  # the CLI or the web admin, say
    other.set_segments(cid, [Segment("dpd 1-30", {"dpd": [1, 30]}, Strategy(priority=99))])
    other.close()
    assert store.strategy(cid, "dpd 1-30").priority == 99
