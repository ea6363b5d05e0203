"""What operators record about calls: dispositions, promises, callbacks, complaint/dispute flags."""
from __future__ import annotations

import json
from datetime import date, datetime

from firmware.errors import UserError

NO_OUTCOME = "no_outcome"  # the wrap-up time limit passed before the operator chose one
CALLBACK_GRACE_S = 300  # a callback waits this long for its own operator before anyone takes it
DISPOSITIONS = ("rpc", "third_party", "wrong_number", "promise", "refusal", "dispute",
                "callback", "complaint", "no_contact", NO_OUTCOME)
RPC_KINDS = ("rpc", "promise", "refusal", "dispute")  # the debtor himself was on the line
FLAG_KINDS = ("complaint", "dispute")
# A reply SMS that reads like a refusal holds the debtor's automatic dialing until a person
# decides what it is (controller/sms_inbox.py); it is not an outcome an operator records.
HOLD_KINDS = FLAG_KINDS + ("sms_reply",)
_ALIASES = {"ptp": "promise", "promise_to_pay": "promise", "right_party": "rpc"}
# Kinds that reschedule the account; recorded during a call they wait until it ends.
_DEFERRED = ("wrong_number", "third_party", "refusal")


class OutcomesMixin:
    """Store methods over dispositions, promises, callbacks and flags."""

    def flag_account(self, account_pk: int, kind: str, text: str | None, by: str | None, *,
                     now: float | None = None) -> int:
        """A complaint or dispute: no automatic dialing until a supervisor clears it."""
        if kind not in HOLD_KINDS:
            raise UserError("flag {kind}: one of {kinds}", kind=kind, kinds=", ".join(HOLD_KINDS))
        now = self.clock.wall() if now is None else now
        with self.tx():
            acc = self.db.execute("SELECT status, campaign_id FROM accounts WHERE id=?",
                                  (account_pk,)).fetchone()
            if acc is None:
                raise UserError("no account #{account}", account=account_pk)
            prev = acc["status"]
            if prev == "flagged":
                prev = self.db.execute("SELECT prev_status FROM flags WHERE account_pk=? AND "
                                       "cleared_at IS NULL ORDER BY id LIMIT 1",
                                       (account_pk,)).fetchone()[0]
            cur = self.db.execute(
                "INSERT INTO flags (account_pk, kind, text, prev_status, flagged_by, flagged_at) "
                "VALUES (?,?,?,?,?,?)", (account_pk, kind, text, prev, by, now))
            self.db.execute("UPDATE accounts SET status='flagged', hold_reason=?, updated_at=? "
                            "WHERE id=?", (f"{kind} flag: dialing stopped until a supervisor "
                                           "clears it", now, account_pk))
            self._decide(now, acc["campaign_id"], account_pk, kind, text or kind)
        return int(cur.lastrowid)

    def clear_flag(self, account_pk: int, by: str, *, kind: str | None = None,
                   now: float | None = None) -> int:
        """A supervisor clears the account's open flags (of one kind, or all); how many."""
        now = self.clock.wall() if now is None else now
        with self.tx():
            sql = "FROM flags WHERE account_pk=? AND cleared_at IS NULL"
            args: tuple = (account_pk,)
            if kind is not None:
                sql, args = sql + " AND kind=?", (account_pk, kind)
            rows = self.db.execute(f"SELECT id, prev_status {sql} ORDER BY id", args).fetchall()
            if not rows:
                return 0
            self.db.execute(f"UPDATE flags SET cleared_by=?, cleared_at=? WHERE id IN "
                            f"({','.join(str(r['id']) for r in rows)})", (by, now))
            still = self.db.execute("SELECT COUNT(*) FROM flags WHERE account_pk=? AND "
                                    "cleared_at IS NULL", (account_pk,)).fetchone()[0]
            if not still:
                prev = rows[0]["prev_status"]
                status = "active" if prev in ("dialing", "flagged") else prev
                self.db.execute("UPDATE accounts SET status=?, hold_reason=NULL, updated_at=? "
                                "WHERE id=? AND status='flagged'", (status, now, account_pk))
        return len(rows)

    def open_flags(self, account_pk: int) -> list[dict]:
        return [dict(r) for r in self.db.execute(
            "SELECT id, kind, text, flagged_by, flagged_at FROM flags WHERE account_pk=? AND "
            "cleared_at IS NULL ORDER BY id", (account_pk,))]

    def schedule_callback(self, account_pk: int, at: float | datetime, operator: str | None, *,
                          now: float | None = None) -> int:
        """'Call me at 18:00': the account waits for then, kept for this operator if possible."""
        ts = at.timestamp() if isinstance(at, datetime) else float(at)
        now = self.clock.wall() if now is None else now
        with self.tx():
            acc = self.db.execute("SELECT status, campaign_id FROM accounts WHERE id=?",
                                  (account_pk,)).fetchone()
            if acc is None:
                raise UserError("no account #{account}", account=account_pk)
            self.db.execute("UPDATE callbacks SET state='cancelled' WHERE account_pk=? AND "
                            "state='pending'", (account_pk,))
            cur = self.db.execute(
                "INSERT INTO callbacks (campaign_id, account_pk, at, operator, created_at) "
                "VALUES (?,?,?,?,?)", (acc["campaign_id"], account_pk, ts, operator, now))
            self._set_status(account_pk, acc["status"], "callback", now)
        return int(cur.lastrowid)

    def note_call(self, call_id: str, note: str) -> None:
        """The operator's note on this call (replaces an earlier one; empty clears it)."""
        with self.tx():
            self.db.execute("UPDATE attempts SET note=? WHERE call_id=?",
                            (note.strip()[:2000] or None, call_id))

    def record_disposition(self, call_id: str, kind: str, *, now: float | None = None,
                           **details) -> int:
        """What the operator learnt on this call; its effects on the account and phone."""
        now = self.clock.wall() if now is None else now
        kind = _ALIASES.get(kind, kind)
        if kind not in DISPOSITIONS:
            raise UserError("disposition {kind}: one of {kinds}", kind=kind,
                            kinds=", ".join(DISPOSITIONS))
        with self.tx():
            att = self.db.execute("SELECT campaign_id, account_pk, phone_pk, operator, state "
                                  "FROM attempts WHERE call_id=?", (call_id,)).fetchone()
            if att is None:
                raise UserError("no call {call_id} to record a disposition for", call_id=call_id)
            details = _check_details(kind, details)
            if self._has_outcome(call_id):
                raise UserError("the outcome of this call is saved already: one outcome per call")
            by = details.get("by") or att["operator"]
            cur = self.db.execute(
                "INSERT INTO dispositions (call_id, campaign_id, account_pk, kind, details, "
                "operator, at) VALUES (?,?,?,?,?,?,?)",
                (call_id, att["campaign_id"], att["account_pk"], kind,
                 json.dumps(details, ensure_ascii=False), att["operator"], now))
            pk = att["account_pk"]
            if kind == "wrong_number":
                self.db.execute("UPDATE phones SET status='bad' WHERE id=?", (att["phone_pk"],))
            elif kind == "promise":
                self.db.execute(
                    "INSERT INTO promises (campaign_id, account_pk, call_id, operator, amount, "
                    "due_date, created_at) VALUES (?,?,?,?,?,?,?)",
                    (att["campaign_id"], pk, call_id, att["operator"], details["amount"],
                     details["date"], now))
                status = self.db.execute("SELECT status FROM accounts WHERE id=?",
                                         (pk,)).fetchone()[0]
                self._set_status(pk, status, "promise", now)
            elif kind in FLAG_KINDS:
                self.flag_account(pk, kind, details.get("text"), by, now=now)
            elif kind == "callback":
                self.schedule_callback(pk, details["at"], details.get("operator", att["operator"]),
                                       now=now)
            if kind in _DEFERRED and att["state"] != "dialing":
                self._apply_to_account(kind, pk, att["campaign_id"], now)
        return int(cur.lastrowid)

    def record_no_outcome(self, call_id: str, wrap_s: float, *, who: str,
                          now: float | None = None) -> bool:
        """The wrap-up time limit passed with no outcome chosen: "no outcome" is the call's one
        outcome (audited). False when the call has its outcome already."""
        from controller import audit
        now = self.clock.wall() if now is None else now
        with self.tx():
            att = self.db.execute("SELECT campaign_id, account_pk, operator FROM attempts WHERE "
                                  "call_id=?", (call_id,)).fetchone()
            if att is None or self._has_outcome(call_id):
                return False
            self.db.execute(
                "INSERT INTO dispositions (call_id, campaign_id, account_pk, kind, details, "
                "operator, at) VALUES (?,?,?,?,?,?,?)",
                (call_id, att["campaign_id"], att["account_pk"], NO_OUTCOME,
                 json.dumps({"wrap_s": round(wrap_s, 1)}), att["operator"], now))
            self.db.execute("UPDATE attempts SET wrap_s=? WHERE call_id=?", (wrap_s, call_id))
            audit.record(self, who=who, action=NO_OUTCOME, obj="call", key=call_id,
                         after={"outcome": NO_OUTCOME, "operator": att["operator"],
                                "wrap_s": round(wrap_s, 1)}, source="wrap_limit", at=now)
        return True

    def close_outcomes_after_restart(self, before: float, *, days: float = 2.0) -> int:
        """At start: every call a person talked on in the ``days`` before ``before`` (the start)
        and left with no outcome (the box stopped during the call or its wrap-up) gets "no
        outcome chosen", audited; how many."""
        from controller import audit
        now = self.clock.wall()
        with self.tx():
            rows = self.db.execute(
                "SELECT a.call_id, a.campaign_id, a.account_pk, a.operator FROM attempts a "
                "WHERE a.created_at >= ? AND a.created_at < ? AND a.operator LIKE 'desk-%' "
                "AND a.state != 'dialing' AND a.abandoned = 0 "
                "AND (a.answered_at IS NOT NULL OR a.outcome = 'answered') AND NOT EXISTS "
                "(SELECT 1 FROM dispositions d WHERE d.call_id = a.call_id)",
                (before - days * 86400, before)).fetchall()
            for r in rows:
                self.db.execute(
                    "INSERT INTO dispositions (call_id, campaign_id, account_pk, kind, details, "
                    "operator, at) VALUES (?,?,?,?,?,?,?)",
                    (r["call_id"], r["campaign_id"], r["account_pk"], NO_OUTCOME,
                     json.dumps({"why": "restart"}), r["operator"], now))
                audit.record(self, who="dialbox", action=NO_OUTCOME, obj="call",
                             key=r["call_id"], after={"outcome": NO_OUTCOME,
                                                      "operator": r["operator"]},
                             source="restart", at=now)
        return len(rows)

    def _has_outcome(self, call_id: str) -> bool:
        return self.db.execute("SELECT 1 FROM dispositions WHERE call_id=? LIMIT 1",
                               (call_id,)).fetchone() is not None

    def record_wrap(self, call_id: str, wrap_s: float) -> None:
        """The operator's wrap-up time after the call, for the average handle time."""
        with self.tx():
            self.db.execute("UPDATE attempts SET wrap_s=? WHERE call_id=?", (wrap_s, call_id))

    def dispositions(self, call_id: str) -> list[dict]:
        return [dict(r, details=json.loads(r["details"])) for r in self.db.execute(
            "SELECT kind, details, operator, at FROM dispositions WHERE call_id=? ORDER BY id",
            (call_id,))]

    def _apply_deferred(self, call_id: str, now: float) -> None:
        for r in self.db.execute("SELECT kind, account_pk, campaign_id FROM dispositions WHERE "
                                 "call_id=? ORDER BY id", (call_id,)).fetchall():
            if r["kind"] in _DEFERRED:
                self._apply_to_account(r["kind"], r["account_pk"], r["campaign_id"], now)

    def _apply_to_account(self, kind: str, account_pk: int, campaign_id: int, now: float) -> None:
        acc = self.db.execute(
            "SELECT a.status, a.attempts, a.segment, c.max_attempts FROM accounts a JOIN "
            "campaigns c ON c.id=a.campaign_id WHERE a.id=?", (account_pk,)).fetchone()
        strategy = self.strategy(campaign_id, acc["segment"])
        if acc["status"] not in ("active", "done") or \
                acc["attempts"] >= (strategy.max_attempts or acc["max_attempts"]):
            return
        if kind == "wrong_number":
            left = self.db.execute("SELECT COUNT(*) FROM phones WHERE account_pk=? AND "
                                   "status='ok'", (account_pk,)).fetchone()[0]
            status, due, why = ("active", now, None) if left else \
                ("done", now, "no valid phone left")
        else:  # third party or refusal: try again later, by the segment's strategy
            status, due, why = "active", now + strategy.retry_delay(kind), None
        self.db.execute("UPDATE accounts SET status=?, next_due_at=?, hold_reason=? WHERE id=?",
                        (status, due, why, account_pk))

    def _set_status(self, account_pk: int, current: str, status: str, now: float) -> None:
        if current == "flagged":  # the flag stays; clearing it restores this status
            self.db.execute("UPDATE flags SET prev_status=? WHERE account_pk=? AND "
                            "cleared_at IS NULL", (status, account_pk))
        else:
            self.db.execute("UPDATE accounts SET status=?, updated_at=? WHERE id=?",
                            (status, now, account_pk))


def _check_details(kind: str, details: dict) -> dict:
    out = dict(details)
    if kind == "promise":
        try:
            out["amount"] = float(details["amount"])
            d = details["date"]
            out["date"] = (d if isinstance(d, date) else _parse_date(str(d))).isoformat()
        except (KeyError, ValueError, TypeError):
            raise UserError("a promise to pay needs amount (a number > 0) and date "
                            "(YYYY-MM-DD)") from None
        if out["amount"] <= 0:
            raise UserError("a promise to pay needs a positive amount, got {amount}",
                            amount=out["amount"])
    elif kind == "complaint" and not str(details.get("text") or "").strip():
        raise UserError("a complaint needs its text: what the debtor complained about")
    elif kind == "callback":
        at = details.get("at")
        if not isinstance(at, (int, float, datetime)):
            raise UserError("a callback needs at: when to call back (a time)")
        out["at"] = at.timestamp() if isinstance(at, datetime) else float(at)
    return out


def _parse_date(text: str) -> date:
    for fmt in ("%Y-%m-%d", "%d.%m.%Y"):
        try:
            return datetime.strptime(text.strip(), fmt).date()
        except ValueError:
            continue
    raise ValueError(text)
