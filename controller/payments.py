"""Payments from the creditor's CSV/XLSX; they close promises to pay as kept, or broken when due."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import structlog

from controller.calllist import Reject, parse_amount, parse_date, write_report
from controller.importer import HEADERS, normalize_header, open_table, rows_of
from controller.store import Store

log = structlog.get_logger(__name__)

_WORDS = {
    "account_id": set(HEADERS["account_id"]),
    "amount": {"amount", "payment", "paid", "сумма", "сумма платежа", "платеж", "оплата",
               "сумма оплаты"},
    "date": {"date", "paid on", "payment date", "дата", "дата платежа", "дата оплаты"},
    "ref": {"ref", "reference", "payment id", "номер платежа", "id платежа", "номер документа"},
}


@dataclass
class PaymentsResult:
    imported: int = 0
    duplicates: int = 0
    unknown_accounts: int = 0
    rejected: int = 0
    kept: int = 0
    broken: int = 0
    rejects: list[Reject] = field(default_factory=list)
    report: str | None = None

    def summary(self) -> dict:
        return {"imported": self.imported, "duplicates": self.duplicates,
                "unknown_accounts": self.unknown_accounts, "rejected": self.rejected,
                "promises_kept": self.kept, "promises_broken": self.broken,
                "report": self.report}


def import_payments(store: Store, path: str | Path, *, today: date | None = None,
                    report_dir: str | Path | None = None, now: float | None = None
                    ) -> PaymentsResult:
    """Load payments (account id, amount, date[, ref]); the same payment twice counts once."""
    p = Path(path)
    table = open_table(p, lambda row: {"account_id", "amount", "date"} <= set(_columns(row)),
                       "needs columns for account id, amount and date (e.g. 'Номер договора;"
                       "Сумма платежа;Дата платежа'); this is not a payments file")
    cols = _columns(table.header)
    res = PaymentsResult()
    now = store.clock.wall() if now is None else now
    known = {r[0] for r in store.db.execute("SELECT DISTINCT account_id FROM accounts")}
    batch = []
    for n, row in rows_of(table):
        def get(f: str, row: list[str] = row) -> str:
            return row[cols[f]].strip() if f in cols and cols[f] < len(row) else ""
        aid = get("account_id")
        try:
            f = "account_id"
            if not aid:
                raise ValueError("empty account id")
            f = "amount"
            amount = parse_amount(get("amount"))
            if amount <= 0:
                raise ValueError("not a positive amount")
            f = "date"
            paid_on = parse_date(get("date")).isoformat()
        except ValueError as exc:
            res.rejects.append(Reject(n, f, f"{exc}: {get(f)!r}"))
            continue
        if aid not in known:
            res.unknown_accounts += 1
            res.rejects.append(Reject(n, "account_id", f"no such account: {aid!r}"))
            continue
        batch.append((aid, amount, paid_on, get("ref"), now))
    with store.tx():
        before = store.db.total_changes
        store.db.executemany("INSERT OR IGNORE INTO payments (account_id, amount, paid_on, ref, "
                             "imported_at) VALUES (?,?,?,?,?)", batch)
        res.imported = store.db.total_changes - before
        res.duplicates = len(batch) - res.imported
        res.kept, res.broken = settle_promises(store, today or date.today(), now=now)
    res.rejected = len({r.row for r in res.rejects})
    if report_dir is not None:
        res.report = str(write_report(Path(report_dir) / f"{p.stem}.rejects.csv", res.rejects))
    log.info("payments_imported", file=p.name, imported=res.imported, kept=res.kept,
             broken=res.broken)
    return res


def settle_promises(store: Store, today: date, *, now: float | None = None) -> tuple[int, int]:
    """Close open promises: kept when paid in full by their date, broken once it has passed."""
    now = store.clock.wall() if now is None else now
    kept = broken = 0
    with store.tx():
        rows = store.db.execute(
            "SELECT p.id, p.account_pk, p.amount, p.due_date, "
            "COALESCE((SELECT SUM(pay.amount) FROM payments pay WHERE pay.account_id=a.account_id "
            "AND pay.paid_on >= date(p.created_at, 'unixepoch') AND pay.paid_on <= p.due_date), 0) "
            "FROM promises p JOIN accounts a ON a.id=p.account_pk WHERE p.state='open'"
        ).fetchall()
        for pid, account_pk, amount, due, paid in rows:
            if paid >= amount - 0.005:
                state, kept = "kept", kept + 1
            elif today.isoformat() > due:
                state, broken = "broken", broken + 1
            else:
                continue
            store.db.execute("UPDATE promises SET state=?, paid=?, closed_at=? WHERE id=?",
                             (state, paid, now, pid))
            # A kept promise ends the account's cycle; a broken one brings it back to the list.
            store.db.execute("UPDATE accounts SET status=?, next_due_at=?, updated_at=? "
                             "WHERE id=? AND status='promise'",
                             ("done" if state == "kept" else "active", now, now, account_pk))
            store.db.execute("UPDATE flags SET prev_status=? WHERE account_pk=? AND "
                             "cleared_at IS NULL AND prev_status='promise'",
                             ("done" if state == "kept" else "active", account_pk))
    return kept, broken


def _columns(header: list[str]) -> dict[str, int]:
    cols: dict[str, int] = {}
    for i, h in enumerate(header):
        key = normalize_header(h)
        for f, words in _WORDS.items():
            if key in words and f not in cols:
                cols[f] = i
    return cols
