"""What the shop's CRM exchanges with the box: debts and payments in, outcomes and promises out.

Pushed records go through the same validation as an imported file (one record = one row, its
position in the request = its row number). Outcomes and promises are read incrementally: each
change gets the next number of its stream (set by triggers in the store), and a cursor is the
last number the CRM has seen, so nothing is missed and nothing is read twice.
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from controller.calllist import ImportResult, parse_amount, parse_date, write_records
from controller.importer import PHONE_FIELDS, Table
from controller.payments import settle_promises
from firmware.errors import UserError

DEBT_FIELDS = ("account_id", "debtor_name", "debt_amount", "currency", "dpd", "due_date",
               "region", "tz", "product", "creditor", "birth_date", "refusal_date")
PHONE_KINDS = {"mobile": "phone_mobile", "home": "phone_home", "work": "phone_work",
               "third_party": "phone_third_party"}
MAX_BATCH = 5000


def import_debts(store, campaign: str, records: list[dict], *, creditor: str | None = None
                 ) -> dict:
    """Insert or update debts in ``campaign``; {imported, updated, duplicates, rejected: [...]}."""
    if not isinstance(records, list) or len(records) > MAX_BATCH:
        raise UserError(f"send a list of at most {MAX_BATCH} debts")
    campaign_id = store.campaign(campaign)
    header = [*DEBT_FIELDS, *PHONE_KINDS.values()]
    rows = []
    for n, rec in enumerate(records, start=1):
        if not isinstance(rec, dict):
            rows.append((n, [""] * len(header)))
            continue
        row = ["" if rec.get(f) is None else str(rec.get(f)) for f in DEBT_FIELDS]
        by_kind: dict[str, list[str]] = {k: [] for k in PHONE_KINDS}
        for p in rec.get("phones") or []:
            number, kind = (p, "mobile") if isinstance(p, str) else (
                str((p or {}).get("number", "")), str((p or {}).get("kind", "mobile")))
            by_kind.setdefault(kind if kind in PHONE_KINDS else "mobile", []).append(number)
        row += [", ".join(by_kind[k]) for k in PHONE_KINDS]
        rows.append((n, row))
    table = Table(path=Path("api"), kind="api", header=header, header_row=0, rows=iter(rows))
    cols = {f: [i] for i, f in enumerate(header) if f not in PHONE_KINDS.values()}
    cols.update({f: [len(DEBT_FIELDS) + i] for i, f in enumerate(PHONE_KINDS.values())})
    result = ImportResult()
    today = datetime.fromtimestamp(store.clock.wall(), timezone.utc).date()
    write_records(store, campaign_id, table, cols, result, creditor, today)
    return {"imported": result.imported, "updated": result.updated,
            "duplicates": result.duplicates,
            "rejected": [{"index": r.row - 1, "field": _public_field(r.field),
                          "reason": r.reason, "whole_record": r.whole_row}
                         for r in result.rejects]}


def import_payments(store, payments: list[dict]) -> dict:
    """Payments received; the same payment twice counts once; promises settle at once."""
    if not isinstance(payments, list) or len(payments) > MAX_BATCH:
        raise UserError(f"send a list of at most {MAX_BATCH} payments")
    now = store.clock.wall()
    rejected, batch = [], []
    known = {r[0] for r in store.db.execute("SELECT DISTINCT account_id FROM accounts")}
    for i, p in enumerate(payments):
        field = "account_id"
        try:
            if not isinstance(p, dict):
                raise ValueError("not an object")
            aid = str(p.get("account_id") or "").strip()
            if not aid:
                raise ValueError("empty account id")
            if aid not in known:
                raise ValueError(f"no such account: {aid!r}")
            field = "amount"
            amount = parse_amount(str(p.get("amount", "")))
            if amount <= 0:
                raise ValueError("not a positive amount")
            field = "date"
            paid_on = parse_date(str(p.get("date", ""))).isoformat()
        except ValueError as exc:
            rejected.append({"index": i, "field": field, "reason": str(exc)})
            continue
        batch.append((aid, amount, paid_on, str(p.get("reference") or ""), now))
    today = datetime.fromtimestamp(now, timezone.utc).date()
    with store.tx():
        before = store.db.total_changes
        store.db.executemany("INSERT OR IGNORE INTO payments (account_id, amount, paid_on, ref, "
                             "imported_at) VALUES (?,?,?,?,?)", batch)
        imported = store.db.total_changes - before
        kept, broken = settle_promises(store, today, now=now)
    return {"imported": imported, "duplicates": len(batch) - imported, "rejected": rejected,
            "promises_kept": kept, "promises_broken": broken}


def outcomes(store, cursor: int = 0, limit: int = 500) -> dict:
    """Finished attempts (and their dispositions) changed after ``cursor``, oldest first."""
    rows = store.db.execute(
        "SELECT a.result_seq, a.call_id, c.name AS campaign, acc.account_id, a.number, a.line, "
        "a.created_at, a.ended_at, a.outcome, a.q850, a.ring_s, a.talk_s, a.operator, "
        "a.abandoned, a.state, (SELECT GROUP_CONCAT(d.kind) FROM dispositions d WHERE "
        "d.call_id = a.call_id) AS dispositions FROM attempts a "
        "JOIN campaigns c ON c.id = a.campaign_id JOIN accounts acc ON acc.id = a.account_pk "
        "WHERE a.result_seq > ? ORDER BY a.result_seq LIMIT ?", (cursor, limit)).fetchall()
    items = [{"call_id": r["call_id"], "campaign": r["campaign"], "account_id": r["account_id"],
              "number": r["number"], "line": r["line"], "started_at": _iso(r["created_at"]),
              "ended_at": _iso(r["ended_at"]), "outcome": r["outcome"] or r["state"],
              "q850": r["q850"], "ring_s": r["ring_s"], "talk_s": r["talk_s"],
              "operator": r["operator"], "abandoned": bool(r["abandoned"]),
              "dispositions": (r["dispositions"] or "").split(",") if r["dispositions"] else []}
             for r in rows]
    return {"items": items, "next_cursor": rows[-1]["result_seq"] if rows else cursor}


def promises(store, cursor: int = 0, limit: int = 500) -> dict:
    """Promises to pay made or settled after ``cursor``, oldest change first."""
    rows = store.db.execute(
        "SELECT p.change_seq, p.id, c.name AS campaign, acc.account_id, p.call_id, p.operator, "
        "p.amount, p.due_date, p.state, p.paid, p.created_at, p.closed_at FROM promises p "
        "JOIN campaigns c ON c.id = p.campaign_id JOIN accounts acc ON acc.id = p.account_pk "
        "WHERE p.change_seq > ? ORDER BY p.change_seq LIMIT ?", (cursor, limit)).fetchall()
    items = [{"promise_id": r["id"], "campaign": r["campaign"], "account_id": r["account_id"],
              "call_id": r["call_id"], "operator": r["operator"], "amount": r["amount"],
              "due_date": r["due_date"], "state": r["state"], "paid": r["paid"],
              "created_at": _iso(r["created_at"]), "closed_at": _iso(r["closed_at"])}
             for r in rows]
    return {"items": items, "next_cursor": rows[-1]["change_seq"] if rows else cursor}


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, timezone.utc).isoformat()


def _public_field(f: str) -> str:
    return "phones" if f in PHONE_FIELDS or f == "phone_type" else f
