"""SMS say who sends them: the creditor and a contact phone, never cut, checked when saved and
before sending (230-FZ art. 7 part 5)."""
from __future__ import annotations

from datetime import date, datetime

import pytest

from controller import audit, sms_templates
from controller.segments import Segment, Strategy
from controller.sms import TEMPLATES, SmsReminders
from controller.store import Store
from firmware.errors import UserError
from firmware.lineapi import LineInfo
from tests.test_dialer import FakeClock

FIELDS = {"name": "Иван Иванович", "amount": "5 000.00", "currency": "руб.",
          "date": "01.12.2026", "account_id": "A-1", "creditor": "ООО «Кредит»",
          "contact_phone": "+74950000000"}
LATIN = dict(FIELDS, creditor="OOO Kredit")


@pytest.mark.parametrize("text,message", [
    ("{name}, долг {amount}. {creditor}", "add {contact_phone} to the template"),
    ("{name}, звоните {contact_phone}", "add {creditor} to the template"),
    ("{name}, оплатите долг", "add {creditor} and {contact_phone}"),
    ("{creditor} {contact_phone} {debt}", "unknown field(s) {debt}"),
    ("{creditor} {contact_phone} {", "braces do not pair"),
    ("   ", "the template is empty"),
])
def test_a_template_without_sender_is_refused_with_a_clear_message(text, message):
    with pytest.raises(UserError, match=message.replace("{", r"\{").replace("(", r"\(")
                       .replace(")", r"\)")):
        sms_templates.check(text)


@pytest.mark.parametrize("rule", sorted(TEMPLATES))
def test_the_bundled_templates_say_who_sends_them(rule):
    sms_templates.check(TEMPLATES[rule])
    text = sms_templates.render(TEMPLATES[rule], FIELDS, max_parts=3)
    assert "ООО «Кредит»" in text and "+74950000000" in text


@pytest.mark.parametrize("fields,max_parts,result", [
    (FIELDS, 1, "ок"),
    (dict(FIELDS, creditor=""), 3, "the creditor's name"),
    (dict(FIELDS, contact_phone="  "), 3, "the campaign's contact phone"),
    (dict(FIELDS, name="Я" * 44), 1, "ок"),           # UCS2: 70 characters in one
    (dict(FIELDS, name="Я" * 45), 1, "takes 2 SMS, the campaign allows 1"),
    (dict(FIELDS, name="Я" * 45), 2, "ок"),
    (dict(LATIN, name="I" * 136), 1, "ок"),           # GSM 7-bit: 160 characters in one
    (dict(LATIN, name="I" * 137), 1, "takes 2 SMS"),
])
def test_render_refuses_rather_than_cut_or_hide(fields, max_parts, result):
    template = "{name} {creditor} {contact_phone}"
    if result == "ок":
        text = sms_templates.render(template, fields, max_parts=max_parts)
        assert text == f"{fields['name']} {fields['creditor']} {fields['contact_phone']}"
    else:
        with pytest.raises(sms_templates.Refused, match=result):
            sms_templates.render(template, fields, max_parts=max_parts)


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "d.sqlite3", FakeClock(datetime.fromisoformat(
        "2026-11-25T12:00:00+03:00").timestamp()))
    yield s
    s.close()


def test_saving_is_checked_and_audited(store):
    cid = store.campaign("c", create=True)
    with pytest.raises(UserError, match="add {contact_phone}"):
        sms_templates.save(store, cid, by="anna", template=("not_reached", "{creditor} звоните"))
    assert store.db.execute("SELECT COUNT(*) FROM sms_settings").fetchone()[0] == 0
    with pytest.raises(UserError, match="contact phone '12'"):
        sms_templates.save(store, cid, by="anna", contact_phone="12")
    with pytest.raises(UserError, match="1 to 10"):
        sms_templates.save(store, cid, by="anna", max_parts=0)
    after = sms_templates.save(store, cid, by="anna", template=(
        "not_reached", "{creditor}: перезвоните {contact_phone}"), contact_phone="8 495 000-00-00",
        creditor_name="ООО «Кредит»", max_parts=2)
    assert after == sms_templates.settings(store, cid) == {
        "creditor_name": "ООО «Кредит»", "contact_phone": "+74950000000", "max_parts": 2,
        "templates": {"not_reached": "{creditor}: перезвоните {contact_phone}"}}
    entry = audit.entries(store, obj="campaign", key=str(cid))[0]
    assert entry["who"] == "anna" and entry["after"]["max_parts"] == 2


class SmsLines:
    """Line API stand-in for SMS: one GSM line; records what was sent."""

    def __init__(self):
        self.sent: list[tuple[str, str, str]] = []

    def subscribe(self, sink):
        pass

    def lines(self):
        return [LineInfo("gsm0", "gsm", "idle", True)]

    def free_lines(self):
        return ["gsm0"]

    async def send_sms(self, line, number, text, *, sms_id):
        self.sent.append((line, number, text))


async def _reminders(store, **sender):
    cid = store.campaign("c", create=True, compliance_profile="none")
    store.upsert_account(cid, {"account_id": "A-1", "debtor_name": "Иванов Иван Иванович",
                               "tz": "Europe/Moscow", "debt_amount": 5000.0},
                         [("+79161234567", "mobile")])
    store.set_segments(cid, [Segment("all", {}, Strategy(sms_rules=("promise_confirmation",)))])
    pk = store.db.execute("SELECT id FROM accounts").fetchone()[0]
    store.db.execute("INSERT INTO promises (campaign_id, account_pk, amount, due_date, "
                     "created_at) VALUES (?,?,?,?,?)", (cid, pk, 5000.0,
                                                        date(2026, 12, 1).isoformat(), 0))
    if sender:
        sms_templates.save(store, cid, by="anna", **sender)
    lines = SmsLines()
    return SmsReminders(store, lines, store.clock, campaign_id=cid,  # type: ignore[arg-type]
                        compliance_profile="none"), lines


@pytest.mark.parametrize("sender,sent,detail", [
    ({}, False, "the creditor's name (the account's creditor or the campaign's) and the "
                "campaign's contact phone would be empty"),
    (dict(creditor_name="ООО «Кредит»"), False, "the campaign's contact phone would be empty"),
    (dict(creditor_name="ООО «Кредит»", contact_phone="+74950000000"), True, ""),
    (dict(creditor_name="ООО «Кредит»", contact_phone="+74950000000", max_parts=1), False,
     "the message takes 2 SMS, the campaign allows 1"),
])
async def test_a_message_that_would_not_say_who_sends_it_is_not_sent(store, sender, sent,
                                                                     detail):
    sms, lines = await _reminders(store, **sender)
    assert await sms.run_once() == int(sent)
    state, text, why = store.db.execute("SELECT state, text, detail FROM sms_messages"
                                        ).fetchone()
    if sent:
        assert state == "queued" and lines.sent[0][2] == text
        assert "ООО «Кредит», тел. +74950000000" in text
    else:
        assert state == "skipped" and lines.sent == [] and text is None
        assert detail in why
