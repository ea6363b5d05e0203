"""Finding a debtor and everything the box knows of them (the debtor's card).

Search takes what a supervisor types: a phone in any common format (or 3+ of its digits), an
account or contract number, or words of a name, and answers from indexes (FTS5: word prefixes
for names and account numbers, trigrams for phone digits), fast over millions of accounts.
"""
from __future__ import annotations

import json
import re

from controller import audit
from controller.phones import normalize_phone
from controller.store import index_new_rows
from firmware.errors import UserError

MAX_RESULTS = 50
_DIGITS = re.compile(r"\d")


def index_pending(store) -> None:
    """Accounts and phones written by any path since the last batch become findable."""
    with store.tx():
        index_new_rows(store.db)


def search(store, query: str, *, limit: int = MAX_RESULTS, fresh: bool = True) -> list[dict]:
    """Accounts matching ``query``, best first: [{pk, account_id, debtor_name, campaign, ...}].
    ``fresh=False``: the caller ran :func:`index_pending` already (a running box does it on
    the store's writer, then searches on its reader): this only reads."""
    q = " ".join(query.split())
    if len(q) < 2:
        return []
    if fresh:
        index_pending(store)
    pks: list[int] = []
    digits = "".join(_DIGITS.findall(q))
    looks_like_phone = digits and len(digits) >= 3 and re.fullmatch(r"[\d\s()+\-.]+", q)
    if looks_like_phone:
        e164 = None
        try:
            e164 = normalize_phone(q)
        except ValueError:
            pass
        if e164 is not None:  # a whole number: the exact index answers at once
            pks += [r[0] for r in store.db.execute(
                "SELECT DISTINCT account_pk FROM phones WHERE e164=? LIMIT ?", (e164, limit))]
        else:  # some of its digits, anywhere in the number: the trigram index
            pks += [r[0] for r in store.db.execute(
                "SELECT DISTINCT p.account_pk FROM phones_fts f JOIN phones p ON p.id = f.rowid "
                "WHERE phones_fts MATCH ? LIMIT ?", (_quote(digits), limit))]
    words = [w for w in re.split(r"\s+", q.replace('"', " ")) if w]
    if words:
        match = " ".join(f'"{w}"*' for w in words)
        # No ORDER BY rank: ranking every match of a common surname costs a full scan of its
        # doclist; the first matches come at once and are sorted by name below.
        pks += [r[0] for r in store.db.execute(
            "SELECT rowid FROM accounts_fts WHERE accounts_fts MATCH ? LIMIT ?", (match, limit))]
    seen: dict[int, None] = {}
    for pk in pks:
        seen.setdefault(pk, None)
    found = _summaries(store, list(seen)[:limit])
    found.sort(key=lambda r: (r["debtor_name"] or "", r["account_id"]))
    return found


def _quote(text: str) -> str:
    return '"' + text.replace('"', "") + '"'


def _summaries(store, pks: list[int]) -> list[dict]:
    if not pks:
        return []
    marks = ",".join("?" * len(pks))
    rows = store.db.execute(
        f"SELECT a.id, a.account_id, a.debtor_name, a.debt_amount, a.currency, a.dpd, a.status, "
        f"a.last_outcome, c.name AS campaign, (SELECT GROUP_CONCAT(e164, ' ') FROM phones "
        f"WHERE account_pk = a.id) AS phones FROM accounts a JOIN campaigns c ON "
        f"c.id = a.campaign_id WHERE a.id IN ({marks})", pks).fetchall()
    by_pk = {r["id"]: r for r in rows}
    return [{"pk": pk, "account_id": r["account_id"], "debtor_name": r["debtor_name"],
             "debt_amount": r["debt_amount"], "currency": r["currency"], "dpd": r["dpd"],
             "status": r["status"], "last_outcome": r["last_outcome"],
             "campaign": r["campaign"], "phones": (r["phones"] or "").split()}
            for pk in pks if (r := by_pk.get(pk))]


def card(store, pk: int) -> dict:
    """Everything about one account: phones, history, SMS, promises, payments, flags, decisions."""
    acc = store.db.execute(
        "SELECT a.*, c.name AS campaign FROM accounts a JOIN campaigns c ON c.id = a.campaign_id "
        "WHERE a.id=?", (pk,)).fetchone()
    if acc is None:
        raise UserError("no such debtor")
    db = store.db
    out = {k: acc[k] for k in ("account_id", "debtor_name", "debt_amount", "currency", "dpd",
                               "region", "tz", "segment", "status", "hold_reason",
                               "next_due_at", "attempts", "last_outcome", "campaign")}
    out["pk"] = pk
    out["custom"] = json.loads(acc["custom"] or "{}")
    out["phones"] = [dict(r) for r in db.execute(
        "SELECT id, e164, kind, status, attempts, last_outcome FROM phones WHERE account_pk=? "
        "ORDER BY position, id", (pk,))]
    dnc = {r[0] for r in db.execute(
        "SELECT e164 FROM phone_lists WHERE list='dnc' AND e164 IN (SELECT e164 FROM phones "
        "WHERE account_pk=?)", (pk,))}
    for p in out["phones"]:
        p["dnc"] = p["e164"] in dnc
    out["attempts_history"] = [dict(r) for r in db.execute(
        "SELECT a.call_id, a.created_at, a.ended_at, a.number, a.line, a.outcome, a.state, "
        "a.q850, a.ring_s, a.talk_s, a.operator, a.abandoned, "
        "(SELECT GROUP_CONCAT(d.kind) FROM dispositions d WHERE d.call_id = a.call_id) "
        "AS dispositions FROM attempts a WHERE a.account_pk=? ORDER BY a.created_at DESC "
        "LIMIT 200", (pk,))]
    from controller.reports import operator_name
    for a in out["attempts_history"]:
        a["operator"] = operator_name(a["operator"])
    out["sms"] = [dict(r) for r in db.execute(
        "SELECT created_at, number, rule, text, state, detail FROM sms_messages WHERE "
        "account_pk=? ORDER BY created_at DESC LIMIT 200", (pk,))]
    from controller.sms_inbox import of_account
    out["sms_received"] = of_account(store, pk)  # what the debtor wrote to the box
    out["promises"] = [dict(r) for r in db.execute(
        "SELECT amount, due_date, state, paid, operator, created_at FROM promises WHERE "
        "account_pk=? ORDER BY created_at DESC", (pk,))]
    out["payments"] = [dict(r) for r in db.execute(
        "SELECT amount, paid_on, ref FROM payments WHERE account_id=? ORDER BY paid_on DESC",
        (acc["account_id"],))]
    out["flags"] = [dict(r) for r in db.execute(
        "SELECT id, kind, text, flagged_by, flagged_at, cleared_by, cleared_at FROM flags "
        "WHERE account_pk=? ORDER BY flagged_at DESC", (pk,))]
    out["recordings"] = [
        {**dict(r), "operator": operator_name(r["operator"])} for r in db.execute(
            "SELECT r.call_id, r.started_at, r.operator, r.duration_s, r.state FROM recordings r "
            "JOIN attempts a ON a.call_id = r.call_id WHERE a.account_pk=? AND r.state IN "
            "('done', 'interrupted') ORDER BY r.started_at DESC LIMIT 100", (pk,))]
    out["decisions"] = [dict(r) for r in db.execute(
        "SELECT at, decision, code, detail FROM decisions WHERE account_pk=? ORDER BY id DESC "
        "LIMIT 100", (pk,))]
    return out


PHONE_STATUSES = ("ok", "bad")  # bad: a wrong number; "dnc" is set by the DNC list only


def add_phone(store, pk: int, number: str, kind: str, *, by: str, source: str = "") -> str:
    """A supervisor adds a phone to the account (audited); its E.164."""
    if kind not in ("mobile", "home", "work", "third_party"):
        raise UserError(f"phone type {kind!r}: one of mobile, home, work, third party")
    try:
        e164 = normalize_phone(number)
    except ValueError:
        raise UserError("{number} is not a phone number", number=repr(number)) from None
    with store.tx():
        _account_id(store, pk)
        pos = store.db.execute("SELECT COALESCE(MAX(position), -1) + 1 FROM phones WHERE "
                               "account_pk=?", (pk,)).fetchone()[0]
        store.db.execute("INSERT INTO phones (account_pk, e164, kind, position) VALUES "
                         "(?,?,?,?) ON CONFLICT (account_pk, e164) DO UPDATE SET "
                         "kind=excluded.kind", (pk, e164, kind, pos))
        audit.record(store, who=by, action="add_phone", obj="calllist",
                     key=_account_id(store, pk), after={"phone": e164, "kind": kind},
                     source=source)
    return e164


def set_phone_status(store, pk: int, phone_id: int, status: str, *, by: str,
                     source: str = "") -> None:
    """Mark a phone usable or not (a wrong number, say); audited with before and after."""
    if status not in PHONE_STATUSES:
        raise UserError(f"phone status {status!r}: one of {', '.join(PHONE_STATUSES)}")
    with store.tx():
        row = store.db.execute("SELECT e164, status FROM phones WHERE id=? AND account_pk=?",
                               (phone_id, pk)).fetchone()
        if row is None:
            raise UserError("no such phone on this account")
        store.db.execute("UPDATE phones SET status=? WHERE id=?", (status, phone_id))
        audit.record(store, who=by, action="phone_status", obj="calllist",
                     key=_account_id(store, pk), before={"phone": row["e164"],
                                                         "status": row["status"]},
                     after={"phone": row["e164"], "status": status}, source=source)


def _account_id(store, pk: int) -> str:
    row = store.db.execute("SELECT account_id FROM accounts WHERE id=?", (pk,)).fetchone()
    if row is None:
        raise UserError("no such debtor")
    return row[0]
