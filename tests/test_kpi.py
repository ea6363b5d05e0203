"""Dispositions, promises and payments, and the KPI funnel over a constructed history."""
from __future__ import annotations

import json
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from controller import kpi
from controller.payments import import_payments, settle_promises
from controller.store import Lead, Store
from firmware.errors import UserError

MSK = ZoneInfo("Europe/Moscow")
DAY1 = datetime(2026, 11, 24, 12, 0, tzinfo=MSK).timestamp()
DAY2 = datetime(2026, 11, 25, 12, 0, tzinfo=MSK).timestamp()


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "db.sqlite3")
    yield s
    s.close()


def lead_of(store, aid):
    r = store.db.execute("SELECT a.id, p.id, p.e164, a.segment FROM accounts a JOIN phones p "
                         "ON p.account_pk=a.id WHERE a.account_id=?", (aid,)).fetchone()
    return Lead(r[0], r[1], r[2], aid, segment=r[3])


def call(store, cid, aid, *, at, line, op, outcome="answered", talk=0.0, wrap=None,
         abandoned=False, dispositions=()):
    call_id = f"call-{aid}"
    store.begin_attempt(cid, lead_of(store, aid), line, call_id, op, now=at)
    store.finish_attempt(call_id, outcome=outcome, q850=None, reason="", ring_s=5.0,
                         talk_s=talk, abandoned=abandoned, now=at + 10 + talk)
    if wrap is not None:
        store.record_wrap(call_id, wrap)
    for kind, details in dispositions:
        store.record_disposition(call_id, kind, now=at + 20 + talk, **details)
    return call_id


@pytest.fixture
def history(store):
    """Eight calls over two days, two lines, two operators, two segments; two promises."""
    cid = store.campaign("c", create=True)
    for i, dpd in enumerate([10, 10, 45, 45, 45, 10, 10, 45, 10], 1):
        store.upsert_account(cid, {"account_id": f"A{i}", "dpd": dpd},
                             [(f"+7912000000{i}", "mobile")])
    call(store, cid, "A1", at=DAY1, line="gsm0", op="pos1", talk=60, wrap=20,
         dispositions=[("promise", {"amount": 1000, "date": "2026-11-30"})])
    call(store, cid, "A2", at=DAY1 + 100, line="gsm0", op="pos1", outcome="no_answer")
    call(store, cid, "A3", at=DAY1 + 200, line="gsm1", op="pos2", talk=30, wrap=10,
         dispositions=[("third_party", {})])
    call(store, cid, "A4", at=DAY1 + 300, line="gsm1", op="pos2", abandoned=True)
    call(store, cid, "A5", at=DAY2, line="gsm0", op="pos2", talk=120,
         dispositions=[("ptp", {"amount": "500", "date": date(2026, 11, 26)})])
    call(store, cid, "A6", at=DAY2 + 100, line="gsm1", op="pos1", outcome="busy")
    call(store, cid, "A7", at=DAY2 + 200, line="gsm1", op="pos1", talk=40,
         dispositions=[("refusal", {})])
    call(store, cid, "A8", at=DAY2 + 300, line="gsm0", op="pos2", talk=50,
         dispositions=[("wrong_number", {})])
    return cid


def pay(tmp_path, store, text, today):
    f = tmp_path / "payments.csv"
    f.write_text(text, encoding="utf-8")
    return import_payments(store, f, today=today, report_dir=tmp_path / "rep")


def test_payments_close_promises_kept_or_broken_when_the_date_passes(store, history, tmp_path):
    res = pay(tmp_path, store, "Номер договора;Сумма платежа;Дата платежа\n"
                               "A1;600;27.11.2026\nA5;200;26.11.2026\n", date(2026, 11, 26))
    assert (res.imported, res.kept, res.broken) == (2, 0, 0)  # A5 still has today to pay
    res = pay(tmp_path, store, "account_id,amount,date\nA1,400,2026-11-28\nA1,600,2026-11-27\n"
                               "NOBODY,5,2026-11-28\nA2,-3,2026-11-28\n", date(2026, 11, 28))
    assert (res.imported, res.duplicates, res.unknown_accounts, res.rejected) == (1, 1, 1, 2)
    assert (res.kept, res.broken) == (1, 1)
    rows = {r[0]: r[1:] for r in store.db.execute(
        "SELECT a.account_id, p.state, p.paid, a.status FROM promises p JOIN accounts a "
        "ON a.id=p.account_pk")}
    assert rows == {"A1": ("kept", 1000.0, "done"), "A5": ("broken", 200.0, "active")}
    assert "no such account" in (tmp_path / "rep" / "payments.rejects.csv").read_text("utf-8")


def test_a_payment_before_the_promise_does_not_keep_it(store, history):
    store.db.execute("INSERT INTO payments (account_id, amount, paid_on, imported_at) "
                     "VALUES ('A1', 1000, '2026-11-01', 0)")
    assert settle_promises(store, date(2026, 12, 1)) == (0, 2)


def test_dispositions_change_the_account_and_phone(store, history):
    st = dict(store.db.execute("SELECT account_id, status FROM accounts").fetchall())
    assert st["A1"] == "promise" and st["A7"] == "active" and st["A8"] == "done"
    assert store.db.execute("SELECT p.status FROM phones p JOIN accounts a ON a.id=p.account_pk "
                            "WHERE a.account_id='A8'").fetchone()[0] == "bad"
    due = dict(store.db.execute("SELECT account_id, next_due_at FROM accounts").fetchall())
    assert due["A7"] == DAY2 + 200 + 20 + 40 + 24 * 3600  # refusal: a day later
    assert due["A3"] == DAY1 + 200 + 20 + 30 + 4 * 3600  # third party: four hours
    assert [d["kind"] for d in store.dispositions("call-A1")] == ["promise"]


def test_a_call_has_one_outcome_the_store_refuses_a_second(store, history):
    with pytest.raises(UserError, match="saved already"):
        store.record_disposition("call-A1", "refusal")
    import sqlite3  # the schema refuses it too, whoever writes
    with pytest.raises(sqlite3.IntegrityError, match="one outcome per call"):
        store.db.execute("INSERT INTO dispositions (call_id, campaign_id, account_pk, kind, "
                         "details, operator, at) SELECT call_id, campaign_id, account_pk, "
                         "'rpc', '{}', operator, 0 FROM dispositions WHERE call_id='call-A1'")
    assert [d["kind"] for d in store.dispositions("call-A1")] == ["promise"]
    # The wrap-up limit's "no outcome" is recorded only on a call without one, and audited.
    assert not store.record_no_outcome("call-A1", 30.0, who="pos1")
    assert store.record_no_outcome("call-A2", 30.0, who="pos1")
    assert not store.record_no_outcome("call-A2", 31.0, who="pos1")
    assert [d["kind"] for d in store.dispositions("call-A2")] == ["no_outcome"]
    from controller import audit
    [entry] = audit.entries(store, obj="call", key="call-A2")
    assert (entry["action"], entry["who"], entry["after"]["outcome"]) == \
        ("no_outcome", "pos1", "no_outcome")


def test_a_callback_and_a_complaint_recorded_as_dispositions(store, history):
    cid = history
    store.record_disposition("call-A2", "callback", at=DAY2 + 7200, operator="pos1")
    assert store.db.execute("SELECT operator, at FROM callbacks").fetchone()[:] == \
        ("pos1", DAY2 + 7200)
    store.record_disposition("call-A6", "complaint", text="жалоба на частоту звонков")
    a6 = store.db.execute("SELECT id, status FROM accounts WHERE account_id='A6'").fetchone()
    assert a6["status"] == "flagged"
    assert store.open_flags(a6["id"])[0]["flagged_by"] == "pos1"  # the call's operator
    assert store.next_lead(cid, DAY2 + 7200, "pos1").account_id == "A2"


@pytest.mark.parametrize("kind,details,words", [
    ("promise", {"amount": 0, "date": "2026-12-01"}, "positive amount"),
    ("promise", {"amount": 10}, "needs amount"),
    ("promise", {"amount": 10, "date": "tomorrow"}, "needs amount"),
    ("complaint", {}, "needs its text"),
    ("callback", {}, "needs at"),
    ("praise", {}, "one of"),
])
def test_bad_dispositions_are_refused(store, history, kind, details, words):
    with pytest.raises(UserError, match=words):
        store.record_disposition("call-A1", kind, **details)
    with pytest.raises(UserError, match="no call"):
        store.record_disposition("nope", "rpc")


def test_kpi_funnel_per_campaign(store, history, tmp_path):
    pay(tmp_path, store, "account_id;amount;date\nA1;1000;2026-11-28\nA5;200;2026-11-26\n"
                         "A9;50;2026-11-29\n", date(2026, 11, 27))
    (row,) = kpi.funnel(store, history, now=DAY2 + 10 * 86400)
    assert (row["attempts"], row["answered"], row["contacts"], row["rpc"], row["ptp"],
            row["kept"], row["broken"], row["abandoned"]) == (8, 6, 5, 3, 2, 1, 1, 1)
    assert (row["amount_promised"], row["amount_collected"]) == (1500.0, 1200.0)
    assert (row["contact_rate"], row["rpc_rate"], row["ptp_rate"], row["kept_rate"],
            row["abandon_rate"], row["asr"]) == (0.625, 0.6, 0.6667, 0.5, 0.1667, 0.75)
    assert (row["avg_call_s"], row["aht_s"]) == (60.0, 66.0)
    assert (row["accounts"], row["penetration"], row["backlog"]) == (9, 0.8889, 7)
    assert row["amount_paid"] == 1250.0  # A9 paid without being called: not "collected"
    (early,) = kpi.funnel(store, history, until=DAY2 + 86400, now=DAY2 + 10 * 86400)
    assert (early["amount_collected"], early["amount_paid"]) == (1200.0, 200.0)


def test_kpi_per_line_operator_segment_and_day(store, history):
    lines = {r["key"]: r for r in kpi.funnel(store, history, by="line", now=DAY2 + 86400)}
    assert (lines["gsm0"]["asr"], round(lines["gsm0"]["avg_call_s"], 2)) == (0.75, 76.67)
    assert (lines["gsm1"]["asr"], lines["gsm1"]["avg_call_s"], lines["gsm1"]["abandoned"]) == \
        (0.75, 35.0, 1)
    ops = {r["key"]: r for r in kpi.funnel(store, history, by="operator", now=DAY2 + 86400)}
    assert (ops["pos1"]["contacts"], ops["pos1"]["aht_s"]) == (2, 60.0)
    assert (ops["pos2"]["contacts"], ops["pos2"]["aht_s"]) == (3, 70.0)
    segs = {r["key"]: r for r in kpi.funnel(store, history, by="segment",
                                            now=DAY2 + 10 * 86400)}
    assert (segs["dpd 1-30"]["attempts"], segs["dpd 1-30"]["penetration"],
            segs["dpd 1-30"]["backlog"]) == (4, 0.8, 4)
    # A3 and A4 are due again; A5's promise is still open, so A5 is not.
    assert (segs["dpd 31-60"]["ptp"], segs["dpd 31-60"]["backlog"]) == (1, 2)
    days = {r["key"]: r["attempts"] for r in kpi.funnel(store, history, by="day",
                                                         now=DAY2 + 86400)}
    assert days == {"2026-11-24": 4, "2026-11-25": 4}
    window = kpi.funnel(store, history, since=DAY2, until=DAY2 + 86400, now=DAY2 + 86400)
    assert window[0]["attempts"] == 4
    with pytest.raises(UserError, match="one of"):
        kpi.funnel(store, history, by="weather")


def test_an_operator_whose_only_call_is_going_on_has_a_kpi_row(store, history):
    # A call in progress has no outcome yet: its group's sums are NULL, not a crash (/kpi 500).
    store.begin_attempt(history, lead_of(store, "A9"), "gsm0", "call-A9", "pos3",
                        now=DAY2 + 400)
    ops = {r["key"]: r for r in kpi.funnel(store, history, by="operator", now=DAY2 + 500)}
    assert (ops["pos3"]["attempts"], ops["pos3"]["contact_rate"], ops["pos3"]["asr"]) == \
        (1, 0.0, 0.0)


def test_abandon_rate_for_pacing_over_30_days_or_a_window(store, history):
    assert store.abandon_rate(history, now=DAY2 + 86400) == pytest.approx(1 / 6)
    assert store.abandon_rate(history, now=DAY1 + 31 * 86400) == 0.0  # DAY1 left the window
    assert store.abandon_rate(history, since=DAY2, until=DAY2 + 86400) == 0.0
    assert store.abandon_rate(history, since=DAY1, until=DAY2) == pytest.approx(1 / 3)


def test_payments_cli_and_a_file_that_is_not_payments(tmp_path, monkeypatch, capsys):
    from tests.test_import import _cli
    data = tmp_path / "d"
    s = Store(data / "dialbox.sqlite3")
    cid = s.campaign("c", create=True)
    s.upsert_account(cid, {"account_id": "A1"}, [("+79120000001", "mobile")])
    s.close()
    f = tmp_path / "p.csv"
    f.write_text("Договор;Сумма;Дата\nA1;100,50;01.12.2026\n", encoding="cp1251")
    capsys.readouterr()
    assert _cli(monkeypatch, ["payments", "import", "--data", str(data), str(f)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["imported"], out["rejected"]) == (1, 0)
    f.write_text("name;phone\nIvan;+79120000001\n", encoding="utf-8")
    assert _cli(monkeypatch, ["payments", "import", "--data", str(data), str(f)]) == 1
    assert "not a payments file" in capsys.readouterr().err


def test_calls_a_person_left_without_outcome_get_no_outcome_at_the_next_start(store, history):
    cid = history
    for i, aid in enumerate(("A2", "A4", "A6", "A9", "B1")):
        store.upsert_account(cid, {"account_id": f"P{aid}"}, [(f"+7913000000{i}", "mobile")])
    talked = call(store, cid, "PA2", at=DAY2, line="gsm0", op="desk-olga", talk=30)
    chosen = call(store, cid, "PA4", at=DAY2, line="gsm0", op="desk-olga", talk=30,
                  dispositions=[("rpc", {})])
    call(store, cid, "PA6", at=DAY2, line="gsm0", op="desk-olga", outcome="no_answer")
    lead = lead_of(store, "PA9")  # the box stopped in the middle of this conversation
    store.begin_attempt(cid, lead, "gsm1", "call-PA9", "desk-ivan", now=DAY2)
    store.db.execute("UPDATE attempts SET answered_at=? WHERE call_id='call-PA9'", (DAY2 + 5,))
    assert store.recover_interrupted() == 1
    started = DAY2 + 3600
    assert store.close_outcomes_after_restart(started) == 2  # not simulated operators' calls
    assert [d["kind"] for d in store.dispositions(talked)] == ["no_outcome"]
    assert [d["kind"] for d in store.dispositions("call-PA9")] == ["no_outcome"]
    assert [d["kind"] for d in store.dispositions(chosen)] == ["rpc"]
    assert store.dispositions("call-PA6") == [] and store.dispositions("call-A2") == []
    assert store.close_outcomes_after_restart(started) == 0
    late = call(store, cid, "PB1", at=started + 5, line="gsm0", op="desk-olga", talk=30)
    assert store.close_outcomes_after_restart(started) == 0  # a call since the start is live
    assert store.dispositions(late) == []
    from controller import audit
    assert {e["key"] for e in audit.entries(store, obj="call", text="no_outcome")} == \
        {talked, "call-PA9"}
