"""Refusals of interaction and withdrawn third-party consent (137-FZ): every call and message
stops at once; an enforcement document suspends a refusal for two months; a representative may
be called. The engine's table, the store, the dialer, the import, the CLI and the audit log."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

import dialbox.cli
from controller import audit, compliance, refusals
from controller.calllist import import_file
from controller.compliance import InMemoryContactHistory, LeadContext, Refusal, check
from controller.compliance.engine import add_months
from controller.store import Lead, Store
from firmware.errors import UserError
from firmware.lineapi import LineError
from tests.test_dialer import at as iso_ts, make, store  # noqa: F401  (the dialer's fixture)

UTC = timezone.utc
MSK = ZoneInfo("Europe/Moscow")
HIS, OTHER, LAWYER = "+79161111111", "+79162222222", "+79163333333"
REFUSED = datetime(2026, 9, 28, 10, 0, tzinfo=MSK)  # a Monday
ENFORCED = datetime(2026, 10, 5, 12, 0, tzinfo=MSK)


def lead(phone=HIS, who="person-1"):
    return LeadContext(who, phone=phone, tz="Europe/Moscow")


def t(days: float, hours: float = 0) -> datetime:
    return REFUSED + timedelta(days=days, hours=hours)


DEBTOR = Refusal("debtor", REFUSED, "desk")
SUSPENDED = Refusal("debtor", REFUSED, "card",
                    suspended=((ENFORCED, add_months(ENFORCED, 2)),))
REPRESENTED = Refusal("debtor", REFUSED, "desk", representatives=(LAWYER,))
WITHDRAWN = Refusal("third_party", REFUSED, "desk", phone=OTHER)

# (case, refusal, lead, instant, channel, profile, refusing code or None)
CASES = [
    ("a second before", DEBTOR, lead(), t(0, -1 / 3600), "voice", "ru-230fz", None),
    ("from that moment", DEBTOR, lead(), t(0), "voice", "ru-230fz", "refusal"),
    ("his other phone too", DEBTOR, lead(OTHER), t(0, 2), "voice", "ru-230fz", "refusal"),
    ("messages too", DEBTOR, lead(), t(0, 2), "sms", "ru-230fz", "refusal"),
    ("years later", DEBTOR, lead(), t(800), "voice", "ru-230fz", "refusal"),
    ("whatever the profile", DEBTOR, lead(), t(1), "voice", "none", "refusal"),
    ("us-regf too", DEBTOR, lead(), t(1), "voice", "us-regf", "refusal"),
    ("another person", DEBTOR, lead(who="person-2"), t(1), "voice", "ru-230fz", None),
    ("before the enforcement document", SUSPENDED, lead(), ENFORCED - timedelta(seconds=1),
     "voice", "ru-230fz", "refusal"),
    ("enforcement document suspends", SUSPENDED, lead(), ENFORCED, "voice", "ru-230fz", None),
    ("suspended, messages too", SUSPENDED, lead(), ENFORCED + timedelta(days=30), "sms",
     "ru-230fz", None),
    ("last second of two months", SUSPENDED, lead(),
     datetime(2026, 12, 5, 11, 59, 59, tzinfo=MSK), "voice", "ru-230fz", None),
    ("two months are over", SUSPENDED, lead(), datetime(2026, 12, 5, 12, 0, tzinfo=MSK),
     "voice", "ru-230fz", "refusal"),
    ("his representative", REPRESENTED, lead(LAWYER), t(1), "voice", "ru-230fz", None),
    ("not him", REPRESENTED, lead(HIS), t(1), "voice", "ru-230fz", "refusal"),
    ("third party's number", WITHDRAWN, lead(OTHER), t(0), "voice", "ru-230fz",
     "consent_withdrawn"),
    ("third party, sms", WITHDRAWN, lead(OTHER, "person-9"), t(3), "sms", "ru-230fz",
     "consent_withdrawn"),
    ("the debtor himself", WITHDRAWN, lead(HIS), t(0), "voice", "ru-230fz", None),
]


@pytest.mark.parametrize("case,refusal,who,instant,channel,profile,code", CASES,
                         ids=[c[0] for c in CASES])
def test_refusals_at_the_edges(case, refusal, who, instant, channel, profile, code):
    history = InMemoryContactHistory()
    history.record_refusal("person-1" if refusal.kind == "debtor" else None, refusal)
    d = check(profile, who, at=instant, history=history, channel=channel)
    assert [r.code for r in d.reasons if r.code in ("refusal", "consent_withdrawn")] == \
        ([code] if code else [])
    if code:
        assert not d.allowed and d.next_allowed_at is None


@pytest.mark.parametrize("start,months,end", [
    ("2026-10-05T09:00:00+00:00", 2, "2026-12-05T09:00:00+00:00"),
    ("2026-12-31T09:00:00+00:00", 2, "2027-02-28T09:00:00+00:00"),   # no 31 February
    ("2027-12-31T00:00:00+00:00", 2, "2028-02-29T00:00:00+00:00"),   # leap year
    ("2026-11-15T00:00:00+00:00", 2, "2027-01-15T00:00:00+00:00"),   # across a year
])
def test_two_months(start, months, end):
    assert add_months(datetime.fromisoformat(start), months) == datetime.fromisoformat(end)


# --- the store: one person across campaigns, audited ----------------------------------------

@pytest.fixture
def db(tmp_path):
    s = Store(tmp_path / "d.sqlite3")
    for camp, aid, phones in (("bank-a", "A-1", [(HIS, "mobile"), (OTHER, "third_party")]),
                              ("mfo-b", "B-1", [(HIS, "mobile")]),
                              ("mfo-b", "B-2", [(OTHER, "mobile")])):
        cid = s.campaign(camp, create=True)
        name = "Иванов Иван" if aid != "B-2" else "Петров Пётр"
        s.upsert_account(cid, {"account_id": aid, "debtor_name": name,
                               "birth_date": "1980-05-01", "tz": "Europe/Moscow"}, phones)
    yield s
    s.close()


def lead_of(store, aid, phone):
    pk, key = store.db.execute("SELECT id, person_key FROM accounts WHERE account_id=?",
                               (aid,)).fetchone()
    return LeadContext(key, phone=phone, tz="Europe/Moscow", debt=str(pk))


def decide(store, ctx, when):
    return check("ru-230fz", ctx, at=when, history=store)


def test_a_refusal_on_one_account_stops_every_account_of_the_person(db):
    a1 = lead_of(db, "A-1", HIS)
    pk = db.db.execute("SELECT id FROM accounts WHERE account_id='A-1'").fetchone()[0]
    rid = refusals.record(db, kind="debtor", channel="card", by="anna", at=t(0).timestamp(),
                          person_key=a1.debtor_id, account_pk=pk, note="по телефону")
    for aid, phone in (("A-1", HIS), ("A-1", OTHER), ("B-1", HIS)):
        assert [r.code for r in decide(db, lead_of(db, aid, phone), t(0, 1)).reasons] == \
            ["refusal"]
    assert decide(db, lead_of(db, "B-2", OTHER), t(0, 1)).allowed  # another person
    assert decide(db, lead_of(db, "B-1", HIS), t(0, -1)).allowed  # before it
    entry = audit.entries(db, obj="refusal")[0]
    assert (entry["who"], entry["action"], entry["key"]) == ("anna", "record", str(rid))
    assert entry["after"]["channel"] == "card" and entry["after"]["note"] == "по телефону"


def test_enforcement_document_and_representative_are_audited_exceptions(db):
    a1 = lead_of(db, "A-1", HIS)
    rid = refusals.record(db, kind="debtor", channel="desk", by="anna", at=t(0).timestamp(),
                          person_key=a1.debtor_id)
    refusals.add_exception(db, rid, kind="enforcement_document", by="boss",
                           reference="ФС № 012345678 от 01.10.2026", at=ENFORCED.timestamp())
    assert decide(db, a1, ENFORCED + timedelta(days=1)).allowed
    assert not decide(db, a1, datetime(2026, 12, 5, 12, 0, tzinfo=MSK)).allowed
    refusals.add_exception(db, rid, kind="representative", by="boss",
                           reference="адвокат Сидоров С.С.", phone="8 916 333-33-33")
    assert decide(db, lead_of(db, "A-1", LAWYER), t(70)).allowed
    assert not decide(db, a1, t(70)).allowed
    actions = [e["action"] for e in audit.entries(db, obj="refusal", key=str(rid))]
    assert actions == ["exception:representative", "exception:enforcement_document", "record"]
    [card] = refusals.of_person(db, a1.debtor_id)
    assert [x["kind"] for x in card["exceptions"]] == ["enforcement_document", "representative"]
    assert card["exceptions"][0]["until"] == add_months(ENFORCED, 2).timestamp()


@pytest.mark.parametrize("kwargs,message", [
    (dict(kind="debtor", channel="fax"), "refusal channel 'fax'"),
    (dict(kind="someone", channel="desk"), "refusal kind 'someone'"),
    (dict(kind="third_party", channel="desk"), "needs the third party's phone"),
    (dict(kind="third_party", channel="desk", phone="12"), "phone '12'"),
    (dict(kind="debtor", channel="desk", person_key=None), "needs the debtor"),
])
def test_bad_refusals_are_refused_with_a_message(db, kwargs, message):
    kwargs.setdefault("person_key", "pk:x")
    with pytest.raises(UserError, match=message):
        refusals.record(db, by="anna", **kwargs)
    assert db.db.execute("SELECT COUNT(*) FROM refusals").fetchone()[0] == 0


def test_bad_exceptions_are_refused(db):
    rid = refusals.record(db, kind="third_party", channel="desk", by="anna", phone=OTHER)
    with pytest.raises(UserError, match="not to a third party"):
        refusals.add_exception(db, rid, kind="representative", reference="x", by="b",
                               phone=LAWYER)
    rid = refusals.record(db, kind="debtor", channel="desk", by="anna", person_key="pk:x")
    with pytest.raises(UserError, match="needs a phone"):
        refusals.add_exception(db, rid, kind="representative", reference="адвокат", by="b")
    with pytest.raises(UserError, match="number and date"):
        refusals.add_exception(db, rid, kind="enforcement_document", reference=" ", by="b")
    with pytest.raises(UserError, match="no refusal #99"):
        refusals.add_exception(db, 99, kind="enforcement_document", reference="x", by="b")


def test_third_partys_withdrawal_stops_that_number_in_every_account(db):
    refusals.record(db, kind="third_party", channel="desk", by="anna", phone=OTHER,
                    at=t(0).timestamp())
    assert [r.code for r in decide(db, lead_of(db, "A-1", OTHER), t(1)).reasons] == \
        ["consent_withdrawn"]
    assert not decide(db, lead_of(db, "B-2", OTHER), t(1)).allowed
    assert decide(db, lead_of(db, "A-1", HIS), t(1)).allowed


# --- the dialer asks before every dial, preview ones too ------------------------------------

async def test_dialer_stops_at_once_and_a_preview_card_is_not_dialed(store):  # noqa: F811
    d, fl, ops = await make(store, iso_ts("2026-11-25T12:00:00+03:00"), operators=1, lines=2)
    pk, key = store.db.execute("SELECT id, person_key FROM accounts WHERE account_id='A0'"
                               ).fetchone()
    refusals.record(store, kind="debtor", channel="desk", by="anna", person_key=key,
                    account_pk=pk)
    await d._cycle()
    assert [n for _, n, _ in fl.dials] == ["+79123456701"]  # A0 skipped, A1 dialed
    assert store.db.execute("SELECT code FROM decisions WHERE account_pk=?", (pk,)
                            ).fetchone()[0] == "refusal"
    # A card shown in preview, then the debtor refuses: the dial is refused, the operator freed.
    lead = Lead(*store.db.execute("SELECT a.id, p.id, p.e164, a.account_id FROM accounts a "
                                  "JOIN phones p ON p.account_pk=a.id WHERE account_id='A2'"
                                  ).fetchone(), tz="Europe/Moscow",
                person_key=store.db.execute("SELECT person_key FROM accounts WHERE "
                                            "account_id='A2'").fetchone()[0])
    op = ops.ops[0]
    ops.release(op, talked=False)
    op = ops.reserve("pv-1")
    d.previews["pv-1"] = (lead, op)
    refusals.record(store, kind="debtor", channel="card", by="anna", person_key=lead.person_key)
    with pytest.raises(LineError, match="no longer allows"):
        await d.preview_dial("pv-1")
    assert "pv-1" not in d.previews and op.call_id is None
    assert len(fl.dials) == 1
    await ops.stop()


# --- import and the command line --------------------------------------------------------------

def test_import_records_refusals_once(tmp_path):
    s = Store(tmp_path / "d.sqlite3")
    f = tmp_path / "list.csv"
    f.write_text("Договор;ФИО;Телефон;Дата отказа\n"
                 "A-1;Иванов Иван;89161111111;15.09.2026\n"
                 "A-2;Петров Пётр;89162222222;\n", encoding="utf-8")
    assert import_file(s, "c", f).refusals == 1
    assert import_file(s, "c", f).refusals == 0  # the same file again: nothing twice
    [row] = s.db.execute("SELECT kind, channel, at, recorded_by FROM refusals").fetchall()
    assert tuple(row) == ("debtor", "import", datetime(2026, 9, 15, tzinfo=ZoneInfo(
        "Asia/Kamchatka")).timestamp(), "import")
    key = s.db.execute("SELECT person_key FROM accounts WHERE account_id='A-1'").fetchone()[0]
    assert not compliance.check("ru-230fz", LeadContext(key, phone=HIS, tz="Europe/Moscow"),
                                at=t(0), history=s).allowed
    s.close()


@pytest.fixture
def run(monkeypatch, capsys):
    monkeypatch.setattr(dialbox.cli, "_COMMAND_MODULES", ("dialbox.cmd_compliance",))

    def _run(*argv: str):
        code = dialbox.cli.main(["compliance", "check", "--phone", HIS, "--tz",
                                 "Europe/Moscow", *argv])
        out, err = capsys.readouterr()
        return code, (json.loads(out) if out else None), err
    return _run


@pytest.mark.parametrize("argv,codes", [
    (["--at", "2026-09-28T10:00:00+03:00", "--refusal", "2026-09-28T09:59:00+03:00"],
     ["refusal"]),
    (["--at", "2026-09-28T10:00:00+03:00", "--refusal", "2026-09-28T10:01:00+03:00"], []),
    (["--at", "2026-10-06T10:00:00+03:00", "--refusal", "2026-09-28T10:00:00+03:00",
      "--enforcement", "2026-10-05T12:00:00+03:00"], []),
    (["--at", "2026-12-07T10:00:00+03:00", "--refusal", "2026-09-28T10:00:00+03:00",
      "--enforcement", "2026-10-05T12:00:00+03:00"], ["refusal"]),
    (["--at", "2026-10-06T10:00:00+03:00", "--refusal", "2026-09-28T10:00:00+03:00",
      "--representative", HIS], []),
])
def test_cli_refusal(run, argv, codes):
    code, doc, _ = run(*argv)
    assert code == 0 and [r["code"] for r in doc["reasons"]] == codes


@pytest.mark.parametrize("argv,message", [
    (["--at", "2026-10-06T10:00:00+03:00", "--refusal", "monday"],
     "--refusal: 'monday' is not an ISO 8601 time"),
    (["--at", "2026-10-06T10:00:00+03:00", "--enforcement", "2026-10-05T12:00:00+03:00"],
     "give --refusal too"),
])
def test_cli_refusal_bad_input(run, argv, message):
    code, doc, err = run(*argv)
    assert code == 1 and doc is None and message in err


async def test_a_withdrawn_third_party_number_is_dropped_not_the_account(store):  # noqa: F811
    d, fl, ops = await make(store, iso_ts("2026-11-25T12:00:00+03:00"), operators=1, lines=2)
    store.db.execute("UPDATE accounts SET status='done' WHERE account_id != 'A0'")
    pk = store.db.execute("SELECT id FROM accounts WHERE account_id='A0'").fetchone()[0]
    store.db.execute("INSERT INTO phones (account_pk, e164, kind, position) VALUES "
                     "(?, '+79165554433', 'home', 1)", (pk,))  # a relative's home phone
    store.db.execute("UPDATE phones SET attempts=5 WHERE e164='+79123456700'")  # his own: tried
    refusals.record(store, kind="third_party", channel="desk", by="anna", phone="+79165554433")
    await d._cycle()
    assert [n for _, n, _ in fl.dials] == ["+79123456700"]  # his own phone, not the withdrawn
    assert store.db.execute("SELECT status FROM phones WHERE e164='+79165554433'"
                            ).fetchone()[0] == "withdrawn"
    assert store.db.execute("SELECT code FROM decisions WHERE account_pk=?", (pk,)
                            ).fetchone()[0] == "consent_withdrawn"
    await ops.stop()


async def test_an_exception_brings_a_held_account_back(store):  # noqa: F811
    d, fl, ops = await make(store, iso_ts("2026-11-25T12:00:00+03:00"), operators=1, lines=2)
    store.db.execute("UPDATE accounts SET status='done' WHERE account_id != 'A0'")
    pk, key = store.db.execute("SELECT id, person_key FROM accounts WHERE account_id='A0'"
                               ).fetchone()
    rid = refusals.record(store, kind="debtor", channel="card", by="anna", person_key=key,
                          account_pk=pk)
    await d._cycle()
    assert fl.dials == [] and store.db.execute("SELECT status FROM accounts WHERE id=?", (pk,)
                                               ).fetchone()[0] == "held"
    refusals.add_exception(store, rid, kind="enforcement_document", reference="ФС № 7",
                           by="boss")
    await d._cycle()
    assert [n for _, n, _ in fl.dials] == ["+79123456700"]
    await ops.stop()
