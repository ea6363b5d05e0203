"""Limits per person across accounts, creditors' files and campaigns, and per phone number,
counted from what the store recorded (the real SQLite store, the real compliance engine)."""
from __future__ import annotations

import sqlite3
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from controller import compliance
from controller.calllist import import_file
from controller.persons import normalize_name, person_key
from controller.store import MIGRATIONS, Lead, Store

MSK = ZoneInfo("Europe/Moscow")
T0 = datetime(2026, 9, 28, 10, 0, tzinfo=MSK)  # a Monday
LATER = datetime(2026, 9, 28, 15, 0, tzinfo=MSK)


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "d.sqlite3")
    yield s
    s.close()


def account(store, campaign, aid, name, phone, *, born=None, creditor=None):
    cid = store.campaign(campaign, create=True)
    store.upsert_account(cid, {"account_id": aid, "debtor_name": name, "birth_date": born,
                               "creditor": creditor, "tz": "Europe/Moscow"},
                         [(phone, "mobile")])
    pk, key = store.db.execute("SELECT id, person_key FROM accounts WHERE campaign_id=? AND "
                               "account_id=?", (cid, aid)).fetchone()
    phone_pk = store.db.execute("SELECT id FROM phones WHERE account_pk=?", (pk,)).fetchone()[0]
    return cid, Lead(pk, phone_pk, phone, aid, tz="Europe/Moscow", person_key=key)


def call(store, cid, lead, call_id, *, outcome="answered", talk_s=30.0, abandoned=False,
         at=T0, state_only=False):
    store.begin_attempt(cid, lead, "gsm0", call_id, None, now=at.timestamp())
    if not state_only:
        store.finish_attempt(call_id, outcome=outcome, q850=16, reason="", ring_s=5.0,
                             talk_s=talk_s, abandoned=abandoned, now=at.timestamp() + 60)


def decide(store, lead, at=LATER):
    ctx = compliance.LeadContext(lead.person_key, phone=lead.number, tz="Europe/Moscow",
                                 debt=str(lead.account_pk))
    return compliance.check("ru-230fz", ctx, at=at, history=store)


@pytest.mark.parametrize("a,b,same_person", [
    (("Иванов Иван Иванович", "1980-05-01", "+79161111111"),
     ("ИВАНОВ  иван иванович", "1980-05-01", "+79162222222"), True),   # DOB: phones may differ
    (("Иванов Иван Иванович", "1980-05-01", "+79161111111"),
     ("Иван Иванович Иванов", "1980-05-01", "+79161111111"), True),    # word order
    (("Королёв Пётр", None, "+79161111111"), ("Королев Петр", None, "+79161111111"), True),
    (("Иванов Иван", None, "+79161111111"), ("Иванов Иван", None, "+79162222222"), False),
    (("Иванов Иван", "1980-05-01", "+79161111111"),
     ("Иванов Иван", "1981-05-01", "+79161111111"), False),            # namesakes
    (("Иванов Иван", None, "+79161111111"), ("Петров Пётр", None, "+79161111111"), False),
])
def test_person_key(a, b, same_person):
    assert (person_key(*a) == person_key(*b)) is same_person
    assert person_key(*a).startswith("pk:") and "Иван" not in person_key(*a)


def test_normalize_name():
    assert normalize_name(" Сидорова-Петрова  Анна, ") == "анна петрова сидорова"
    assert normalize_name(None) == normalize_name("") == ""


def test_two_accounts_of_one_person_share_one_budget(store):
    # Two creditors' files in two campaigns; his phones differ, name and birth date match.
    c1, l1 = account(store, "bank-a", "A-1", "Иванов Иван Иванович", "+79161111111",
                     born="1980-05-01", creditor="Bank A")
    c2, l2 = account(store, "mfo-b", "B-77", "ИВАНОВ Иван Иванович", "+79162222222",
                     born="1980-05-01", creditor="MFO B")
    assert l1.person_key == l2.person_key and l1.account_pk != l2.account_pk
    assert decide(store, l2).allowed
    call(store, c1, l1, "c-1")
    d = decide(store, l2)
    assert not d.allowed and {r.code for r in d.reasons} == {"daily_limit"}
    assert d.reasons[0].window["scope"] == "person"
    assert d.next_allowed_at == datetime(2026, 9, 29, 10, 0, tzinfo=MSK)
    # a different person in the same files is untouched
    _, other = account(store, "mfo-b", "B-78", "Петров Пётр", "+79163333333")
    assert decide(store, other).allowed


def test_one_number_of_two_people_is_limited_too(store):
    # Husband and wife on one home number: the number's own budget is used by either.
    c1, husband = account(store, "bank-a", "A-1", "Сидоров Олег", "+79161111111")
    _, wife = account(store, "bank-a", "A-2", "Сидорова Анна", "+79161111111")
    assert husband.person_key != wife.person_key
    call(store, c1, husband, "c-1")
    d = decide(store, wife)
    assert {(r.code, r.window["scope"]) for r in d.reasons} == {("daily_limit", "phone")}
    assert "on this phone number" in d.reasons[0].text


@pytest.mark.parametrize("case,outcome,talk_s,abandoned,disposition,conversation", [
    ("operator talked", "answered", 40.0, False, None, True),
    ("debtor hung up at once", "answered", 0.0, False, None, True),
    ("we hung up: abandon message played", "answered", 0.0, True, None, True),
    ("robot message, no operator", "answered", 25.0, False, None, True),
    ("third party answered", "answered", 40.0, False, "third_party", False),
    ("wrong number", "answered", 10.0, False, "wrong_number", False),
    ("no answer", "no_answer", 0.0, False, None, False),
    ("busy", "busy", 0.0, False, None, False),
])
def test_what_is_a_conversation(store, case, outcome, talk_s, abandoned, disposition,
                                conversation):
    cid, lead = account(store, "c", "A-1", "Иванов Иван", "+79161111111")
    store.begin_attempt(cid, lead, "gsm0", "c-1", "pos1", now=T0.timestamp())
    if disposition:
        store.record_disposition("c-1", disposition, now=T0.timestamp() + 30)
    store.finish_attempt("c-1", outcome=outcome, q850=16, reason="", ring_s=5.0, talk_s=talk_s,
                         abandoned=abandoned, now=T0.timestamp() + 60)
    assert decide(store, lead).allowed is not conversation
    attempts = store.contacts(lead.person_key, "attempt", T0, LATER)
    assert attempts == [T0]  # every placed call is an attempt


def test_line_fault_is_neither_attempt_nor_conversation(store):
    cid, lead = account(store, "c", "A-1", "Иванов Иван", "+79161111111")
    store.begin_attempt(cid, lead, "gsm0", "c-1", None, now=T0.timestamp())
    store.requeue_attempt("c-1", "module did not answer ATD")
    for subject in (lead.person_key, f"tel:{lead.number}", f"debt:{lead.account_pk}"):
        assert store.contacts(subject, "attempt", T0, LATER) == []
    assert decide(store, lead).allowed


def test_a_call_in_progress_blocks_the_same_person_elsewhere(store):
    c1, l1 = account(store, "bank-a", "A-1", "Иванов Иван", "+79161111111", born="1980-05-01")
    _, l2 = account(store, "mfo-b", "B-1", "Иванов Иван", "+79162222222", born="1980-05-01")
    call(store, c1, l1, "c-1", state_only=True)  # still ringing or talking
    assert not decide(store, l2, at=T0).allowed


def test_import_reads_birth_dates_and_keys_people(store, tmp_path):
    csv = tmp_path / "list.csv"
    csv.write_text("Договор;ФИО;Дата рождения;Телефон;Сумма\n"
                   "A-1;Иванов Иван;01.05.1980;89161111111;1000\n"
                   "A-2;иванов иван;1980-05-01;89162222222;2000\n"
                   "A-3;Петров Пётр;32.01.1980;89163333333;3000\n", encoding="cp1251")
    result = import_file(store, "c", csv)
    assert (result.rejected, result.rejects[0].field) == (1, "birth_date")
    rows = store.db.execute("SELECT account_id, birth_date, person_key FROM accounts "
                            "ORDER BY account_id").fetchall()
    assert [(r[0], r[1]) for r in rows] == [("A-1", "1980-05-01"), ("A-2", "1980-05-01")]
    assert rows[0][2] == rows[1][2] == person_key("Иванов Иван", "1980-05-01", None)


def test_accounts_stored_before_person_keys_get_them_at_open(tmp_path):
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    for sql in MIGRATIONS[:4]:
        db.executescript(sql)
    db.execute("PRAGMA user_version=4")
    db.execute("INSERT INTO campaigns (id, name, created_at) VALUES (1, 'c', 0)")
    for pk, aid in ((1, "A-1"), (2, "A-2")):
        db.execute("INSERT INTO accounts (id, campaign_id, account_id, debtor_name, updated_at) "
                   "VALUES (?, 1, ?, 'Иванов Иван', 0)", (pk, aid))
        db.execute("INSERT INTO phones (account_pk, e164) VALUES (?, '+79161111111')", (pk,))
    db.commit()
    db.close()
    s = Store(path)
    keys = [r[0] for r in s.db.execute("SELECT person_key FROM accounts ORDER BY id")]
    assert keys == [person_key("Иванов Иван", None, "+79161111111")] * 2
    s.close()


def test_the_api_pushes_birth_dates_and_refusals(store):
    from controller.crm import import_debts
    store.campaign("api", create=True)
    out = import_debts(store, "api", [
        {"account_id": "X-1", "debtor_name": "Иванов Иван", "birth_date": "1980-05-01",
         "phones": ["+79161111111"]},
        {"account_id": "X-2", "debtor_name": "иванов  иван", "birth_date": "1980-05-01",
         "refusal_date": "2026-09-01", "phones": ["+79162222222"]},
        {"account_id": "X-3", "debtor_name": "Пётр", "birth_date": "2999-01-01",
         "phones": ["+79163333333"]}])
    assert out["imported"] == 2 and [r["field"] for r in out["rejected"]] == ["birth_date"]
    keys = {r[0] for r in store.db.execute("SELECT person_key FROM accounts")}
    assert keys == {person_key("Иванов Иван", "1980-05-01", None)}
    assert [tuple(r) for r in store.db.execute("SELECT kind, channel FROM refusals")] == [
        ("debtor", "import")]


def test_a_lead_without_its_person_key_is_still_counted_per_person(store):
    _, lead = account(store, "c", "A-1", "Иванов Иван", "+79161111111")
    assert store.person_of(lead.account_pk) == lead.person_key
    assert store.person_of(999) == "account:999"
