"""SMS the box receives: kept, matched to the debtor's account by number, shown, and only then
let go by the line (the SIM deletes it once the store has committed it).

A message is kept once however often the line hands it up (its ``uid``), matched through the
phones' E.164 index (controller.callers), and a reply that reads like a refusal ("СТОП",
"STOP", "отказ") is flagged for a person to decide: it is never taken as a refusal by itself.
"""
from __future__ import annotations

import asyncio
import re

import structlog

from controller import audit
from controller.callers import accounts_of_caller, caller_e164
from firmware.errors import UserError
from firmware.lineapi import InboundSms, LineEvent

log = structlog.get_logger(__name__)

# Words (lower case, ё as е) that make a reply look like a refusal of contact.
STOP_WORDS = ("стоп", "stop", "отказ", "отказываюсь", "отписаться", "отписка", "unsubscribe",
              "хватит")
STOP_PHRASES = ("не звоните", "не звонить", "не пишите", "не писать", "больше не")
DECISIONS = ("refusal_recorded", "not_a_refusal")  # what the person decided about a flag


def stop_word(text: str) -> str | None:
    """The word or phrase that makes ``text`` look like a refusal of contact, or None."""
    low = text.lower().replace("ё", "е")
    words = set(re.findall(r"\w+", low))
    for w in STOP_WORDS:
        if w in words:
            return w
    flat = " ".join(re.findall(r"\w+", low))
    return next((p for p in STOP_PHRASES if p in flat), None)


def keep(store, ev: InboundSms) -> tuple[int, bool, bool]:
    """Store one received message (once per uid); (its id, whether it is new, whether it was
    matched to an account)."""
    now = store.clock.wall()
    e164 = caller_e164(ev.sender)
    found = accounts_of_caller(store, ev.sender)
    account_pk, campaign_id = found[0] if found else (None, None)
    flag = stop_word(ev.text)
    with store.tx():
        cur = store.db.execute(
            "INSERT INTO sms_inbox (uid, line, sender, e164, account_pk, campaign_id, text, "
            "sent_at, received_at, stop_word) VALUES (?,?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT (uid) DO NOTHING",
            (ev.uid or None, ev.line, ev.sender, e164, account_pk, campaign_id, ev.text,
             ev.sent_at, now, flag))
        if cur.rowcount:
            message_id = int(cur.lastrowid)
            if flag is not None:
                # Until a person decides, nobody dials or messages the debtor automatically:
                # what he wrote may be his refusal of interaction.
                for pk, _ in found:
                    store.flag_account(pk, "sms_reply", f"reply SMS #{message_id}", None,
                                       now=now)
            return message_id, True, account_pk is not None
        row = store.db.execute("SELECT id, account_pk FROM sms_inbox WHERE uid=?",
                               (ev.uid,)).fetchone()
        return int(row[0]), False, row[1] is not None


def received(store, *, since: float | None = None, flagged: bool = False,
             limit: int = 200) -> list[dict]:
    """The newest received messages first, with the debtor they were matched to."""
    where, args = ["1=1"], []
    if since is not None:
        where.append("m.received_at >= ?")
        args.append(since)
    if flagged:
        where.append("m.stop_word IS NOT NULL AND m.decision IS NULL")
    rows = store.db.execute(
        "SELECT m.id, m.line, m.sender, m.e164, m.text, m.sent_at, m.received_at, m.stop_word, "
        "m.decision, m.decided_by, m.decided_at, m.account_pk, a.account_id, a.debtor_name, "
        "c.name AS campaign FROM sms_inbox m LEFT JOIN accounts a ON a.id = m.account_pk "
        "LEFT JOIN campaigns c ON c.id = m.campaign_id WHERE " + " AND ".join(where) +
        " ORDER BY m.received_at DESC, m.id DESC LIMIT ?", (*args, limit)).fetchall()
    return [dict(r) for r in rows]


def waiting(store) -> int:
    """Received replies that read like a refusal and nobody decided yet."""
    return store.db.execute("SELECT COUNT(*) FROM sms_inbox WHERE stop_word IS NOT NULL AND "
                            "decision IS NULL").fetchone()[0]


def of_account(store, account_pk: int) -> list[dict]:
    """What this debtor wrote to the box (the card), newest first."""
    return [dict(r) for r in store.db.execute(
        "SELECT id, line, sender, text, sent_at, received_at, stop_word, decision, decided_by "
        "FROM sms_inbox WHERE account_pk=? ORDER BY received_at DESC, id DESC",
        (account_pk,))]


def decide(store, message_id: int, decision: str, *, who: str, source: str) -> dict:
    """A person's word on a flagged reply, audited: a refusal of interaction recorded from it
    (in force from when the SMS came: every call and message to the debtor stops; the card
    takes the law's exceptions), or "not a refusal"."""
    from controller import refusals
    if decision not in DECISIONS:
        raise UserError("decision {decision}: one of {decisions}", decision=decision,
                        decisions=", ".join(DECISIONS))
    now = store.clock.wall()
    with store.tx():
        row = store.db.execute(
            "SELECT m.stop_word, m.decision, m.account_pk, m.text, m.received_at, a.person_key "
            "FROM sms_inbox m LEFT JOIN accounts a ON a.id = m.account_pk WHERE m.id=?",
            (message_id,)).fetchone()
        if row is None:
            raise UserError("no received SMS #{id}", id=message_id)
        if row["stop_word"] is None:
            raise UserError("received SMS #{id} is not flagged: there is nothing to decide",
                            id=message_id)
        if row["decision"] is not None:
            raise UserError("received SMS #{id} is decided already", id=message_id)
        refusal = None
        if decision == "refusal_recorded":
            if row["person_key"] is None:
                raise UserError("received SMS #{id} came from a number on no account: find the "
                                "debtor and record the refusal on the card", id=message_id)
            refusal = refusals.record(store, kind="debtor", channel="sms", by=who,
                                      at=row["received_at"], person_key=row["person_key"],
                                      account_pk=row["account_pk"],
                                      note=f"SMS: {row['text'][:200]}", source=source)
        store.db.execute("UPDATE sms_inbox SET decision=?, decided_by=?, decided_at=?, "
                         "refusal_id=? WHERE id=?", (decision, who, now, refusal, message_id))
        _release_hold(store, message_id, who, now)
        audit.record(store, who=who, action="sms_decided", obj="refusal", key=f"sms:{message_id}",
                     after={"decision": decision, "account": row["account_pk"],
                            "refusal": refusal}, source=source)
    return {"id": message_id, "decision": decision, "decided_by": who, "decided_at": now,
            "refusal": refusal}


def _release_hold(store, message_id: int, who: str, now: float) -> None:
    """The hold a flagged reply put on its debtor's accounts ends once no reply from that
    number waits for a decision (a refusal recorded from it holds them by itself)."""
    e164 = store.db.execute("SELECT e164 FROM sms_inbox WHERE id=?", (message_id,)).fetchone()[0]
    if e164 and store.db.execute(
            "SELECT 1 FROM sms_inbox WHERE e164=? AND stop_word IS NOT NULL AND decision IS NULL",
            (e164,)).fetchone():
        return
    for (pk,) in store.db.execute(
            "SELECT DISTINCT account_pk FROM flags WHERE kind='sms_reply' AND cleared_at IS NULL "
            "AND text IN (SELECT 'reply SMS #' || id FROM sms_inbox WHERE e164 IS ? AND "
            "decision IS NOT NULL)", (e164,)).fetchall():
        store.clear_flag(pk, who, kind="sms_reply", now=now)


class SmsInbox:
    """Listens to the lines: keeps each received SMS, then lets the line delete it."""

    def __init__(self, store, lines) -> None:
        self.store, self.lines = store, lines
        self.kept = 0  # messages new to the store, this run
        self._tasks: set[asyncio.Task] = set()

    def on_line_event(self, ev: LineEvent) -> None:
        if isinstance(ev, InboundSms):
            task = asyncio.get_running_loop().create_task(self.take(ev))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def take(self, ev: InboundSms) -> None:
        """Committed first (on the store's writer), deleted from the SIM after."""
        try:
            msg_id, new, matched = await self.store.run(keep, ev)
        except Exception:
            log.exception("sms_inbox_store_failed", line=ev.line)
            return  # still on the SIM: handed up again after the line's next start
        if new:
            self.kept += 1
            log.info("sms_received", line=ev.line, sms=msg_id, matched=matched,
                     flagged=stop_word(ev.text) is not None)
        if ev.uid:
            await self.lines.sms_stored(ev.line, ev.uid)

    async def stop(self) -> None:
        """Stop at once: a message cut off here is still on its SIM, handed up again after the
        next start, and kept once."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
