"""SMS templates that say who sends them (230-FZ art. 7 part 5): the creditor and a contact phone.

A template is refused when saved without ``{creditor}`` and ``{contact_phone}``; a message whose
creditor or contact phone would render empty, or that is longer than the campaign allows, is
refused before sending and recorded with its reason, never sent cut or anonymous.
"""
from __future__ import annotations

import json
import string

from controller import audit
from controller.phones import normalize_phone
from firmware.errors import UserError
from firmware.gsm.pdu import count_parts

REQUIRED = ("creditor", "contact_phone")
FIELDS = ("name", "amount", "currency", "date", "account_id", *REQUIRED)
MAX_PARTS_LIMIT = 10  # a campaign may allow up to this many SMS parts per message
DEFAULT_MAX_PARTS = 3  # 201 Cyrillic characters (UCS2) or 459 Latin ones (GSM 7-bit)


class Refused(Exception):
    """A message that may not be sent as rendered; the text says why and what to do."""


def placeholders(text: str) -> list[str]:
    """The ``{field}`` names in ``text``; UserError when braces do not pair."""
    try:
        return [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]
    except ValueError as exc:
        raise UserError("the template's braces do not pair ({why}); write fields as {example}",
                        why=str(exc), example="{name}") from None


def check(text: str) -> None:
    """UserError saying what is wrong with a template, or nothing when it may be saved."""
    if not text or not text.strip():
        raise UserError("the template is empty")
    fields = placeholders(text)
    unknown = sorted({f for f in fields if f not in FIELDS})
    if unknown:
        raise UserError("unknown field(s) {unknown}; use {known}",
                        unknown=", ".join("{" + f + "}" for f in unknown),
                        known=", ".join("{" + f + "}" for f in FIELDS))
    missing = [f for f in REQUIRED if f not in fields]
    if missing:
        raise UserError("the law wants every message to name the creditor and give a contact "
                        "phone: add {fields} to the template",
                        fields=" and ".join("{" + f + "}" for f in missing))


def render(text: str, fields: dict, *, max_parts: int) -> str:
    """The message to send; Refused when the creditor or contact phone renders empty or the
    message takes more than ``max_parts`` SMS."""
    empty = [f for f in REQUIRED if not str(fields.get(f) or "").strip()]
    if empty:
        what = {"creditor": "the creditor's name (the account's creditor or the campaign's)",
                "contact_phone": "the campaign's contact phone"}
        raise Refused(f"not sent: {' and '.join(what[f] for f in empty)} would be empty; set "
                      "it in the campaign's SMS settings")
    message = text.format(**fields)
    parts = count_parts(message)
    if parts > max_parts:
        raise Refused(f"not sent: the message takes {parts} SMS, the campaign allows "
                      f"{max_parts}; shorten the template (it is never cut)")
    return message


def settings(store, campaign_id: int) -> dict:
    """{"creditor_name", "contact_phone", "max_parts", "templates": {rule: text}}."""
    row = store.db.execute("SELECT * FROM sms_settings WHERE campaign_id=?",
                           (campaign_id,)).fetchone()
    if row is None:
        return {"creditor_name": None, "contact_phone": None, "max_parts": DEFAULT_MAX_PARTS,
                "templates": {}}
    return {"creditor_name": row["creditor_name"], "contact_phone": row["contact_phone"],
            "max_parts": row["max_parts"], "templates": json.loads(row["templates"])}


def save(store, campaign_id: int, *, by: str, source: str = "", template: tuple[str, str] |
         None = None, creditor_name: str | None = None, contact_phone: str | None = None,
         max_parts: int | None = None) -> dict:
    """Change a campaign's SMS settings (audited); a template is (rule, text), checked first."""
    before = settings(store, campaign_id)
    after = json.loads(json.dumps(before))
    if template is not None:
        rule, text = template
        check(text)
        after["templates"][rule] = text
    if creditor_name is not None:
        after["creditor_name"] = creditor_name.strip() or None
    if contact_phone is not None:
        try:
            after["contact_phone"] = normalize_phone(contact_phone) if contact_phone.strip() \
                else None
        except ValueError as exc:
            raise UserError("contact phone {phone}: {why}", phone=repr(contact_phone),
                            why=str(exc)) from None
    if max_parts is not None:
        if not 1 <= int(max_parts) <= MAX_PARTS_LIMIT:
            raise UserError("SMS parts per message: 1 to {limit}, got {parts}",
                            limit=MAX_PARTS_LIMIT, parts=max_parts)
        after["max_parts"] = int(max_parts)
    with store.tx():
        store.db.execute(
            "INSERT INTO sms_settings (campaign_id, creditor_name, contact_phone, max_parts, "
            "templates, updated_by, updated_at) VALUES (?,?,?,?,?,?,?) ON CONFLICT (campaign_id) "
            "DO UPDATE SET creditor_name=excluded.creditor_name, "
            "contact_phone=excluded.contact_phone, max_parts=excluded.max_parts, "
            "templates=excluded.templates, updated_by=excluded.updated_by, "
            "updated_at=excluded.updated_at",
            (campaign_id, after["creditor_name"], after["contact_phone"], after["max_parts"],
             json.dumps(after["templates"], ensure_ascii=False), by, store.clock.wall()))
        audit.record(store, who=by, action="sms_settings", obj="campaign", key=str(campaign_id),
                     before=before, after=after, source=source)
    return after
