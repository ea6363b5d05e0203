"""KPI funnel per campaign, segment, operator, line or day: attempts to contacts, RPC, PTP, kept."""
from __future__ import annotations

from datetime import datetime, timezone

from controller.store import Store
from controller.store_outcomes import RPC_KINDS
from firmware.errors import UserError

GROUPS = {
    "campaign": "a.campaign_id",
    "segment": "a.segment",
    "operator": "a.operator",
    "line": "a.line",
    "day": "date(a.created_at + ?, 'unixepoch')",  # the local calendar day
}
_CONTACT = "a.outcome='answered' AND a.abandoned=0 AND a.talk_s>0"


def funnel(store: Store, campaign_id: int, *, by: str = "campaign", since: float = 0.0,
           until: float | None = None, utc_offset_s: int = 3 * 3600,
           now: float | None = None) -> list[dict]:
    """One row of KPIs per group, over attempts placed in [since, until).

    Rates: contact = contacts/attempts (a live conversation: answered, not abandoned, talked);
    RPC = right-party contacts/contacts; PTP = promises/RPC; kept = kept/(kept+broken);
    abandon = abandoned/answered; ASR = answered/attempts. Handle time is talk plus wrap-up.
    Amount collected counts payments that settled promises made in the group; campaign and
    segment groups also get every payment in the window (amount_paid), list penetration and
    backlog.
    """
    if by not in GROUPS:
        raise UserError("KPI grouping {by}: one of {known}", by=by, known=", ".join(GROUPS))
    now = store.clock.wall() if now is None else now
    until = now if until is None else until
    key = GROUPS[by]
    rpc_kinds = ",".join(f"'{k}'" for k in RPC_KINDS)
    sql = f"""
        WITH d AS (SELECT call_id, MAX(kind IN ({rpc_kinds})) AS rpc FROM dispositions
                   WHERE campaign_id=? GROUP BY call_id),
             p AS (SELECT call_id, COUNT(*) AS n, SUM(amount) AS promised,
                          SUM(state='kept') AS kept, SUM(state='broken') AS broken,
                          SUM(paid) AS paid
                   FROM promises WHERE campaign_id=? GROUP BY call_id)
        SELECT {key} AS k, COUNT(*) AS attempts,
               SUM(a.outcome='answered') AS answered, SUM(a.abandoned) AS abandoned,
               SUM({_CONTACT}) AS contacts, SUM(COALESCE(d.rpc, 0)) AS rpc,
               SUM(COALESCE(p.n, 0)) AS ptp, SUM(COALESCE(p.promised, 0)) AS promised,
               SUM(COALESCE(p.kept, 0)) AS kept, SUM(COALESCE(p.broken, 0)) AS broken,
               SUM(COALESCE(p.paid, 0)) AS collected,
               AVG(CASE WHEN a.outcome='answered' AND a.abandoned=0 THEN a.talk_s END)
                   AS avg_call_s,
               AVG(CASE WHEN {_CONTACT} THEN a.talk_s + COALESCE(a.wrap_s, 0) END) AS aht_s
        FROM attempts a LEFT JOIN d ON d.call_id=a.call_id LEFT JOIN p ON p.call_id=a.call_id
        WHERE a.campaign_id=? AND a.created_at>=? AND a.created_at<?
              AND a.state != 'line_fault'  -- our own line refused it: never placed
        GROUP BY k ORDER BY k"""
    args = (utc_offset_s,) if by == "day" else ()
    rows = store.db.execute(sql, (campaign_id, campaign_id, *args, campaign_id, since, until))
    out = []
    for r in rows:
        row = {"group": by, "key": r["k"], "attempts": r["attempts"], "answered": r["answered"],
               "contacts": r["contacts"], "rpc": r["rpc"], "ptp": r["ptp"],
               "kept": r["kept"], "broken": r["broken"], "abandoned": r["abandoned"],
               "amount_promised": r["promised"], "amount_collected": r["collected"],
               "contact_rate": _rate(r["contacts"], r["attempts"]),
               "rpc_rate": _rate(r["rpc"], r["contacts"]),
               "ptp_rate": _rate(r["ptp"], r["rpc"]),
               "kept_rate": _rate(r["kept"], r["kept"] + r["broken"]),
               "abandon_rate": _rate(r["abandoned"], r["answered"]),
               "asr": _rate(r["answered"], r["attempts"]),
               "avg_call_s": r["avg_call_s"], "aht_s": r["aht_s"]}
        out.append(row)
    if by in ("campaign", "segment"):
        days = tuple(datetime.fromtimestamp(t + utc_offset_s, timezone.utc).date().isoformat()
                     for t in (since, until))
        _add_list_figures(store, campaign_id, by, out, now, days)
    return out


def _add_list_figures(store: Store, campaign_id: int, by: str, out: list[dict], now: float,
                      days: tuple[str, str]) -> None:
    """List penetration (accounts tried at least once / all), backlog, all payments, per group."""
    key = "campaign_id" if by == "campaign" else "segment"
    pen = {r[0]: (r[1], r[2]) for r in store.db.execute(
        f"SELECT {key}, SUM(attempts > 0), COUNT(*) FROM accounts WHERE campaign_id=? "
        f"GROUP BY {key}", (campaign_id,))}
    paid = dict(store.db.execute(
        f"SELECT a.{key}, SUM(pay.amount) FROM payments pay JOIN accounts a ON "
        f"a.account_id=pay.account_id AND a.campaign_id=? WHERE pay.paid_on BETWEEN ? AND ? "
        f"GROUP BY a.{key}", (campaign_id, *days)).fetchall())
    backlog = store.backlog(campaign_id, now)
    rows = {r["key"]: r for r in out}
    for k, (tried, total) in pen.items():
        row = rows.get(k)
        if row is None:  # a segment nobody was called in yet
            row = {"group": by, "key": k, "attempts": 0}
            out.append(row)
        row["accounts"] = total
        row["penetration"] = _rate(tried, total)
        row["backlog"] = sum(backlog.values()) if by == "campaign" else backlog.get(k, 0)
        row["amount_paid"] = paid.get(k, 0.0)  # every payment, promised or not


def _rate(n: int | None, d: int | None) -> float | None:
    return round((n or 0) / d, 4) if d else None  # SUM over calls still going on is NULL
