"""Every decision provable: why each call was placed (profile and version, zones and local time,
counts before the call, line and its number), why a call or an SMS was not, and
``dialbox compliance explain CALL_ID``."""
from __future__ import annotations

import json
from datetime import datetime

import pytest

import dialbox.cli
from controller import evidence, refusals, sms_templates
from controller.operators import OperatorPool
from controller.segments import Segment, Strategy
from controller.sms import SmsReminders
from controller.store import Store
from firmware.errors import UserError
from firmware.lineapi import CallReleased, Outcome
from tests.test_dialer import FakeClock, FakeLines, at
from tests.test_sms_templates import SmsLines

NOON = at("2026-11-25T12:00:00+03:00")  # a Wednesday


@pytest.fixture
def data(tmp_path):
    """A data directory with one campaign, one person on two accounts (one a day old)."""
    s = Store(tmp_path / "data" / "dialbox.sqlite3", FakeClock(NOON))
    cid = s.campaign("c", create=True)
    for aid in ("A0", "A1"):
        s.upsert_account(cid, {"account_id": aid, "debtor_name": "Иванов Иван",
                               "birth_date": "1980-05-01", "tz": "Europe/Moscow"},
                         [(f"+7912345670{aid[1]}", "mobile")])
    s.db.execute("UPDATE accounts SET status='done' WHERE account_id='A1'")
    yield tmp_path / "data", s
    s.close()


async def dialer(store, when):
    from controller.dialer import Dialer
    store.clock.set(when)
    fl = FakeLines(["l0", "l1"])
    ops = OperatorPool(1, store.clock)  # type: ignore[arg-type]
    d = Dialer(store, fl, ops, store.clock, campaign_id=1, campaign_name="c",  # type: ignore
               compliance_profile="ru-230fz")
    d.running = True
    return d, fl, ops


async def test_each_call_keeps_why_it_was_allowed(data):
    _, store = data
    # The same person talked to the box 25 hours ago about his other account.
    a1 = store.db.execute("SELECT id FROM accounts WHERE account_id='A1'").fetchone()[0]
    store.db.execute("INSERT INTO attempts (call_id, campaign_id, account_pk, phone_pk, number, "
                     "line, state, created_at, outcome, talk_s) VALUES ('old', 1, ?, 2, "
                     "'+79123456701', 'l1', 'done', ?, 'answered', 60)", (a1, NOON - 25 * 3600))
    d, fl, ops = await dialer(store, NOON)
    await d._cycle()
    [(line, number, call_id)] = fl.dials
    why = evidence.explain(store, call_id)
    assert why["call"]["number"] == number and why["call"]["line"] == line == "l0"
    ev = why["why"]
    assert (ev["profile"], ev["version"], ev["allowed"]) == ("ru-230fz", "2025-09-01", True)
    assert ev["zones"] == ["Europe/Moscow"]
    assert ev["local_times"] == {"Europe/Moscow": "2026-11-25T12:00:00+03:00"}
    counts = {(c["limit"], c["scope"]): (c["count"], c["maximum"]) for c in ev["counters"]}
    assert counts == {("daily_limit", "person"): (0, 1), ("weekly_limit", "person"): (1, 2),
                      ("monthly_limit", "person"): (1, 8), ("daily_limit", "phone"): (0, 1),
                      ("weekly_limit", "phone"): (0, 2), ("monthly_limit", "phone"): (0, 8)}
    assert ev["line"] == {"name": "l0", "number": "+79990000000", "number_source": None,
                          "caller_id": None}
    await ops.stop()


async def test_a_refusal_to_call_keeps_its_evidence_and_the_card_shows_both(data, capsys,
                                                                             monkeypatch):
    path, store = data
    d, fl, ops = await dialer(store, NOON)
    await d._cycle()
    line, _, call_id = fl.dials[0]
    fl.emit(CallReleased(line, call_id, Outcome.ANSWERED, 16, "normal", 3.0, 40.0, 0))
    store.db.execute("UPDATE accounts SET status='active', next_due_at=0")
    ops.release(ops.ops[0], talked=False)
    store.clock.set(NOON + 3600)
    await d._cycle()
    assert len(fl.dials) == 1  # 1 conversation in any 24 hours
    key = store.db.execute("SELECT person_key FROM accounts LIMIT 1").fetchone()[0]
    card = evidence.of_person(store, key)
    assert [c["call_id"] for c in card["calls"]] == [call_id]
    refused = card["not_called"][0]
    assert refused["code"] == "daily_limit" and refused["channel"] == "voice"
    assert refused["evidence"]["allowed"] is False
    assert refused["evidence"]["reasons"][0]["window"]["window"] == "any 24 hours"
    monkeypatch.setattr(dialbox.cli, "_COMMAND_MODULES", ("dialbox.cmd_compliance",))
    capsys.readouterr()
    assert dialbox.cli.main(["compliance", "explain", call_id, "--data", str(path)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["call"]["call_id"] == call_id and doc["call"]["outcome"] == "answered"
    assert doc["why"]["profile"] == "ru-230fz" and doc["why"]["line"]["name"] == line
    await ops.stop()


def test_explain_unknown_id_and_missing_database(data, tmp_path, monkeypatch, capsys):
    path, store = data
    with pytest.raises(UserError, match="no call or SMS with id 'nope'"):
        evidence.explain(store, "nope")
    monkeypatch.setattr(dialbox.cli, "_COMMAND_MODULES", ("dialbox.cmd_compliance",))
    assert dialbox.cli.main(["compliance", "explain", "x", "--data", str(tmp_path / "no")]) == 1
    assert "no database here" in capsys.readouterr().err


async def test_sms_sent_and_not_sent_are_explained(data):
    _, store = data
    cid = 1
    sms_templates.save(store, cid, by="anna", creditor_name="ООО «Кредит»",
                       contact_phone="+74950000000")
    store.set_compliance(cid, "ru-230fz")
    store.upsert_account(cid, {"account_id": "B0", "debtor_name": "Петров Пётр",
                               "tz": "Europe/Moscow"}, [("+79161112233", "mobile")])
    store.set_segments(cid, [Segment("all", {}, Strategy(sms_rules=("promise_confirmation",)))])
    for pk in (1, 2, 3):
        store.db.execute("INSERT INTO promises (campaign_id, account_pk, amount, due_date, "
                         "created_at) VALUES (1, ?, 100, '2026-12-01', 0)", (pk,))
    lines = SmsLines()
    sms = SmsReminders(store, lines, store.clock, campaign_id=cid,  # type: ignore[arg-type]
                       compliance_profile="ru-230fz")
    store.clock.set(at("2026-11-25T23:00:00+03:00"))  # too late for messages
    assert await sms.run_once() == 0
    assert await sms.run_once() == 0  # a hold that will pass is recorded once, not each round
    rows = store.db.execute("SELECT channel, code, evidence FROM decisions").fetchall()
    assert [(r[0], r[1]) for r in rows] == [("sms", "outside_hours")] * 3  # one per message
    assert json.loads(rows[0][2])["local_times"]["Europe/Moscow"].startswith("2026-11-25T23:00")
    # Ivanov refuses before the next morning: his two messages are refused for good.
    ivanov = store.db.execute("SELECT person_key FROM accounts WHERE id=1").fetchone()[0]
    refusals.record(store, kind="debtor", channel="card", by="anna", person_key=ivanov,
                    at=NOON + 86400 - 60)
    store.clock.set(NOON + 86400)
    assert await sms.run_once() == 1 and lines.sent[0][1] == "+79161112233"
    card = evidence.of_person(store, ivanov)
    assert card["sms"] == [] and [n["code"] for n in card["not_sent"]] == \
        ["refusal", "refusal", "outside_hours", "outside_hours"]
    assert card["not_sent"][0]["evidence"]["reasons"][0]["code"] == "refusal"
    sms_id = store.db.execute("SELECT sms_id FROM sms_messages WHERE state='queued'"
                              ).fetchone()[0]
    why = evidence.explain(store, sms_id)
    assert why["sms"]["number"] == "+79161112233" and why["why"]["allowed"] is True
    assert why["why"]["line"] == {"name": "gsm0", "number": None}
    assert {c["limit"] for c in why["why"]["counters"]} == {
        "daily_limit", "weekly_limit", "monthly_limit"}
