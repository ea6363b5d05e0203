"""Reports people read at a glance: the funnel by any grouping, contacts by hour and weekday,
ASR/ACD per line, abandons per campaign against the law's limit, operators' talk and wrap-up.

Every report covers [since, until) in wall seconds and returns plain rows; the web admin draws
them and exports them as CSV or XLSX. Names are resolved here (campaign names, operators' user
names), never ids.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from controller import compliance, kpi
from controller.occupancy import HANDLING, ON_FLOOR
from controller.operators import BREAK, DESK_GONE

REPORTS = ("funnel", "heatmap", "lines", "abandons", "operators")
_CONTACT = "a.outcome='answered' AND a.abandoned=0 AND COALESCE(a.talk_s, 0) > 0"
_PLACED = "a.state != 'line_fault'"  # our own line refused it: never placed, never counted


def operator_name(position: str | None) -> str | None:
    """A person at the desk by user name; a simulated operator by its number."""
    if position is None:
        return None
    if position.startswith("desk-"):
        return position[5:]
    return position


def funnel(store, *, by: str, since: float, until: float, campaign: str | None = None,
           utc_offset_s: int = 3 * 3600) -> list[dict]:
    """The KPI funnel per group, over every campaign (or one), with names for keys."""
    names = {r["id"]: r["name"] for r in store.db.execute("SELECT id, name FROM campaigns")}
    ids = [cid for cid, name in names.items() if campaign in (None, name)]
    out: list[dict] = []
    for cid in ids:
        rows = kpi.funnel(store, cid, by=by, since=since, until=until, utc_offset_s=utc_offset_s,
                          now=until)
        for r in rows:
            if not r.get("attempts") and by != "campaign":
                continue
            r["campaign"] = names[cid]
            if by == "campaign":
                r["key"] = names[cid]
            elif by == "operator":
                r["key"] = operator_name(r["key"])
            out.append(r)
    return out


def heatmap(store, *, since: float, until: float, utc_offset_s: int = 3 * 3600,
            campaign: str | None = None) -> list[dict]:
    """Attempts and contacts per (weekday 0=Monday, hour) in the shop's local time."""
    rows = store.db.execute(
        f"SELECT CAST(strftime('%w', a.created_at + ?, 'unixepoch') AS INTEGER) AS wd, "
        f"CAST(strftime('%H', a.created_at + ?, 'unixepoch') AS INTEGER) AS hour, "
        f"COUNT(*) AS attempts, SUM({_CONTACT}) AS contacts FROM attempts a "
        f"JOIN campaigns c ON c.id = a.campaign_id WHERE a.created_at >= ? AND "
        f"a.created_at < ? AND {_PLACED} AND (? IS NULL OR c.name = ?) GROUP BY wd, hour",
        (utc_offset_s, utc_offset_s, since, until, campaign, campaign)).fetchall()
    return [{"weekday": (r["wd"] + 6) % 7, "hour": r["hour"], "attempts": r["attempts"],
             "contacts": r["contacts"] or 0,
             "contact_rate": round((r["contacts"] or 0) / r["attempts"], 4)} for r in rows]


def lines(store, *, since: float, until: float) -> list[dict]:
    """Per line (a SIM or a B-channel): attempts, ASR (answered/attempts), ACD (mean talk)."""
    rows = store.db.execute(
        f"SELECT a.line, COUNT(*) AS attempts, SUM(a.outcome='answered') AS answered, "
        f"AVG(CASE WHEN {_CONTACT} THEN a.talk_s END) AS acd_s, "
        f"SUM(CASE WHEN {_CONTACT} THEN a.talk_s ELSE 0 END) AS talk_s FROM attempts a "
        f"WHERE a.created_at >= ? AND a.created_at < ? AND {_PLACED} GROUP BY a.line "
        f"ORDER BY a.line", (since, until)).fetchall()
    return [{"line": r["line"], "attempts": r["attempts"], "answered": r["answered"] or 0,
             "asr": round((r["answered"] or 0) / r["attempts"], 4) if r["attempts"] else None,
             "acd_s": round(r["acd_s"], 1) if r["acd_s"] is not None else None,
             "talk_s": round(r["talk_s"] or 0, 1)} for r in rows]


def abandons(store, *, until: float, days: int = 30) -> list[dict]:
    """Per campaign: abandoned / live answers over the last ``days``, against its law's limit."""
    since = until - timedelta(days=days).total_seconds()
    out = []
    for c in store.db.execute("SELECT id, name, compliance_profile FROM campaigns ORDER BY name"):
        r = store.db.execute(
            "SELECT SUM(outcome='answered') AS live, SUM(abandoned) AS abandoned FROM attempts "
            "WHERE campaign_id=? AND created_at >= ? AND created_at < ?",
            (c["id"], since, until)).fetchone()
        live, ab = r["live"] or 0, r["abandoned"] or 0
        try:
            limit = compliance.get_profile(c["compliance_profile"]).abandon_target
        except Exception:  # an unknown profile name: show the figure without a limit
            limit = None
        rate = round(ab / live, 4) if live else None
        out.append({"campaign": c["name"], "live_answers": live, "abandoned": ab,
                    "abandon_rate": rate, "limit": limit,
                    "over_limit": bool(limit is not None and rate is not None and rate > limit)})
    return out


def operators(store, *, since: float, until: float) -> list[dict]:
    """Per operator: calls, talk and wrap-up time (totals and means), handle time, the calls
    whose wrap-up time ran out before an outcome was chosen, and from the time kept per state
    (controller.occupancy): logged-in time, time on the floor, breaks and occupancy."""
    time = _time_by_state(store, since, until)
    rows = store.db.execute(
        f"SELECT a.operator, COUNT(*) AS calls, SUM(COALESCE(a.talk_s, 0)) AS talk_s, "
        f"SUM(COALESCE(a.wrap_s, 0)) AS wrap_s, AVG(a.talk_s) AS avg_talk_s, "
        f"AVG(a.wrap_s) AS avg_wrap_s, SUM(EXISTS (SELECT 1 FROM dispositions d WHERE "
        f"d.call_id = a.call_id AND d.kind = 'no_outcome')) AS no_outcome "
        f"FROM attempts a WHERE a.operator IS NOT NULL AND "
        f"{_CONTACT} AND a.created_at >= ? AND a.created_at < ? GROUP BY a.operator "
        f"ORDER BY a.operator", (since, until)).fetchall()
    out = []
    for r in rows:
        busy = (r["talk_s"] or 0) + (r["wrap_s"] or 0)
        out.append({"operator": operator_name(r["operator"]), "calls": r["calls"],
                    "talk_s": round(r["talk_s"] or 0, 1), "wrap_s": round(r["wrap_s"] or 0, 1),
                    "avg_talk_s": round(r["avg_talk_s"] or 0, 1),
                    "avg_wrap_s": round(r["avg_wrap_s"] or 0, 1),
                    "handle_s": round(busy, 1), "no_outcome": r["no_outcome"] or 0,
                    "talk_share": round((r["talk_s"] or 0) / busy, 4) if busy else None,
                    **_presence(time.pop(r["operator"], {}))})
    for position, by in sorted(time.items()):  # logged in, and took no call
        out.append({"operator": operator_name(position), "calls": 0, "talk_s": 0.0,
                    "wrap_s": 0.0, "avg_talk_s": 0.0, "avg_wrap_s": 0.0, "handle_s": 0.0,
                    "no_outcome": 0, "talk_share": None, **_presence(by)})
    return out


def _time_by_state(store, since: float, until: float) -> dict[str, dict[str, float]]:
    """position -> state -> seconds over the UTC days (the store keeps days) whose noon lies in
    [since, until): a local day of the shop's range, for zones within 12 h of UTC."""
    first = datetime.fromtimestamp(since - 43200, timezone.utc).date() + timedelta(days=1)
    last = datetime.fromtimestamp(until - 43200 - 1e-3, timezone.utc).date()
    out: dict[str, dict[str, float]] = {}
    for pos, state, seconds in store.db.execute(
            "SELECT position, state, SUM(seconds) FROM operator_time WHERE day >= ? AND day <= ? "
            "GROUP BY position, state", (first.isoformat(), last.isoformat())):
        out.setdefault(pos, {})[state] = seconds
    return out


def _presence(by: dict[str, float]) -> dict:
    """Logged in (every state but a closed desk), on the floor, on breaks, and occupancy:
    handling (talk and wrap-up) over time on the floor."""
    floor = sum(by.get(s, 0.0) for s in ON_FLOOR)
    return {"logged_in_s": round(sum(v for k, v in by.items() if k != DESK_GONE), 1),
            "floor_s": round(floor, 1), "break_s": round(by.get(BREAK, 0.0), 1),
            "occupancy": round(sum(by.get(s, 0.0) for s in HANDLING) / floor, 4)
            if floor > 0 else None}
