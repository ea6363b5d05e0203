"""Why was this debtor called (or messaged, or not): the stored answers, per call and per person.

Each attempt keeps the compliance decision that allowed it (profile and version, the zones and
the local time in each, every limit's count before the call, exceptions applied) and the line
with its number; each decision not to call or not to send keeps the same evidence.
"""
from __future__ import annotations

import json

from firmware.errors import UserError

_CALL = ("SELECT a.call_id, c.name AS campaign, acc.account_id, a.number, a.line, a.created_at, "
         "a.state, a.outcome, a.talk_s, a.evidence FROM attempts a JOIN campaigns c ON "
         "c.id = a.campaign_id JOIN accounts acc ON acc.id = a.account_pk")
_SMS = ("SELECT m.sms_id, c.name AS campaign, acc.account_id, m.rule, m.number, m.line, "
        "m.created_at, m.state, m.detail, m.evidence FROM sms_messages m JOIN campaigns c ON "
        "c.id = m.campaign_id JOIN accounts acc ON acc.id = m.account_pk")
_NOT = ("SELECT d.at, c.name AS campaign, acc.account_id, d.channel, d.code, d.detail, "
        "d.evidence FROM decisions d LEFT JOIN campaigns c ON c.id = d.campaign_id "
        "JOIN accounts acc ON acc.id = d.account_pk")


def explain(store, ident: str) -> dict:
    """{"call": ..., "why": ...} for a call id, {"sms": ..., "why": ...} for an SMS id."""
    row = store.db.execute(_CALL + " WHERE a.call_id = ?", (ident,)).fetchone()
    if row is not None:
        call = _plain(row)
        return {"call": call, "why": call.pop("evidence")}
    row = store.db.execute(_SMS + " WHERE m.sms_id = ?", (ident,)).fetchone()
    if row is not None:
        sms = _plain(row)
        return {"sms": sms, "why": sms.pop("evidence")}
    raise UserError("no call or SMS with id {ident} (call ids are in the attempts; SMS ids "
                    "start with sms-)", ident=repr(ident))


def of_person(store, person_key: str, *, limit: int = 50) -> dict:
    """Everything the box decided about this person, newest first: calls placed and why,
    refusals to call, SMS sent and why, refusals to send."""
    mine = "IN (SELECT id FROM accounts WHERE person_key = ?)"
    calls = store.db.execute(_CALL + f" WHERE a.account_pk {mine} ORDER BY a.created_at DESC "
                             "LIMIT ?", (person_key, limit)).fetchall()
    sms = store.db.execute(_SMS + f" WHERE m.account_pk {mine} AND m.state != 'skipped' "
                           "ORDER BY m.created_at DESC LIMIT ?", (person_key, limit)).fetchall()
    nots = {channel: store.db.execute(
        _NOT + f" WHERE d.account_pk {mine} AND d.channel = ? ORDER BY d.at DESC, d.id DESC "
        "LIMIT ?", (person_key, channel, limit)).fetchall() for channel in ("voice", "sms")}
    return {"calls": [_plain(r) for r in calls], "not_called": [_plain(r) for r in nots["voice"]],
            "sms": [_plain(r) for r in sms], "not_sent": [_plain(r) for r in nots["sms"]]}


def _plain(row) -> dict:
    out = dict(row)
    if "evidence" in out:
        out["evidence"] = json.loads(out["evidence"]) if out["evidence"] else None
    return out
