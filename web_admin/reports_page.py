"""Reports in the browser: a date range, a chart read at a glance, a table, CSV and XLSX export."""
from __future__ import annotations

import asyncio
import csv
import io
from datetime import date, datetime, timedelta, timezone

from aiohttp import web

from controller import reports
from firmware.errors import N_
from web_admin import charts
from web_admin.render import backend, render, secure, t

FUNNEL_BY = ("campaign", "segment", "operator", "line", "day")
def utc_offset_s(at: float) -> int:
    """The shop's offset from UTC at ``at``: the box's time zone (set at boot from the config,
    and on /settings), so that reports' days and hours are the shop's."""
    offset = datetime.fromtimestamp(at, timezone.utc).astimezone().utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def _range(request: web.Request) -> tuple[date, date, float, float, int]:
    q = request.query
    now = backend(request).store.clock.wall()
    offset = utc_offset_s(now)
    today = datetime.fromtimestamp(now + offset, timezone.utc).date()
    try:
        until_d = date.fromisoformat(q["to"]) if q.get("to") else today
        since_d = date.fromisoformat(q["from"]) if q.get("from") else until_d - timedelta(days=6)
    except ValueError:
        raise ValueError("dates are YYYY-MM-DD") from None
    if since_d > until_d:
        raise ValueError("the start date is after the end date")
    since = datetime(since_d.year, since_d.month, since_d.day, tzinfo=timezone.utc
                     ).timestamp() - offset
    until = since + ((until_d - since_d).days + 1) * 86400
    return since_d, until_d, since, until, offset


async def _data(request: web.Request) -> dict:
    q = request.query
    kind = q.get("report", "funnel")
    if kind not in reports.REPORTS:
        kind = "funnel"
    by = q.get("by", "campaign") if q.get("by") in FUNNEL_BY else "campaign"
    since_d, until_d, since, until, offset = _range(request)
    read = backend(request).store.read  # a report scans months of calls: off the event loop
    if kind == "funnel":
        rows = await read(reports.funnel, by=by, since=since, until=until, utc_offset_s=offset)
    elif kind == "heatmap":
        rows = await read(reports.heatmap, since=since, until=until, utc_offset_s=offset)
    elif kind == "lines":
        rows = await read(reports.lines, since=since, until=until)
    elif kind == "abandons":
        rows = await read(reports.abandons, until=until)
    else:
        rows = await read(reports.operators, since=since, until=until)
    return {"report": kind, "by": by, "since": since_d.isoformat(), "until": until_d.isoformat(),
            "rows": rows}


# The columns of each report: (field, header, kind of value)
COLUMNS = {
    "funnel": [("key", N_("Group"), "text"), ("attempts", N_("Attempts"), "int"),
               ("contacts", N_("Contacts"), "int"), ("rpc", N_("Right party"), "int"),
               ("ptp", N_("Promises"), "int"), ("kept", N_("Kept"), "int"),
               ("amount_promised", N_("Promised"), "money"), ("amount_collected", N_("Collected"), "money"),
               ("contact_rate", N_("Contact rate"), "pct"), ("abandon_rate", N_("Abandon rate"), "pct")],
    "heatmap": [("weekday", N_("Weekday"), "weekday"), ("hour", N_("Hour"), "int"),
                ("attempts", N_("Attempts"), "int"), ("contacts", N_("Contacts"), "int"),
                ("contact_rate", N_("Contact rate"), "pct")],
    "lines": [("line", N_("Line"), "text"), ("attempts", N_("Attempts"), "int"),
              ("answered", N_("Answered"), "int"), ("asr", N_("ASR"), "pct"),
              ("acd_s", N_("ACD"), "duration"), ("talk_s", N_("Talk time"), "duration")],
    "abandons": [("campaign", N_("Campaign"), "text"), ("live_answers", N_("Live answers"), "int"),
                 ("abandoned", N_("Abandoned"), "int"), ("abandon_rate", N_("Abandon rate"), "pct"),
                 ("limit", N_("Limit"), "pct")],
    "operators": [("operator", N_("Operator"), "text"), ("calls", N_("Calls"), "int"),
                  ("talk_s", N_("Talk time"), "duration"), ("wrap_s", N_("Wrap-up time"), "duration"),
                  ("avg_talk_s", N_("Mean talk"), "duration"),
                  ("avg_wrap_s", N_("Mean wrap-up"), "duration"),
                  ("talk_share", N_("Talk share"), "pct"),
                  ("no_outcome", N_("No outcome chosen"), "int"),
                  ("logged_in_s", N_("Logged in"), "duration"),
                  ("floor_s", N_("On the floor"), "duration"), ("break_s", N_("Breaks"), "duration"),
                  ("occupancy", N_("Occupancy"), "pct")],
}
WEEKDAYS = (N_("Mon"), N_("Tue"), N_("Wed"), N_("Thu"), N_("Fri"), N_("Sat"), N_("Sun"))


def _chart(request: web.Request, data: dict) -> str:
    rows, kind = data["rows"], data["report"]
    if not rows:
        return ""
    if kind == "funnel":
        total = {f: sum((r.get(f) or 0) for r in rows) for f in
                 ("attempts", "contacts", "rpc", "ptp", "kept")}
        names = {"attempts": N_("Attempts"), "contacts": N_("Contacts"),
                 "rpc": N_("Right party"), "ptp": N_("Promises"), "kept": N_("Kept")}
        return charts.bars([(t(request, names[f]), v, f"{v}") for f, v in total.items()],
                           title=t(request, "Funnel"))
    if kind == "heatmap":
        top = max(r["contact_rate"] for r in rows) or 1
        cells = {(r["weekday"], r["hour"]): r["contact_rate"] / top for r in rows}
        shown = {(r["weekday"], r["hour"]): f"{r['contacts']}/{r['attempts']}" for r in rows}
        return charts.heatmap(cells, rows=[t(request, d) for d in WEEKDAYS], shown=shown,
                              title=t(request, "Contacts by hour and weekday"))
    if kind == "abandons":
        limit = next((r["limit"] for r in rows if r["limit"] is not None), None)
        return charts.bars([(r["campaign"], (r["abandon_rate"] or 0) * 100,
                             f"{(r['abandon_rate'] or 0) * 100:.1f} %") for r in rows],
                           limit=None if limit is None else limit * 100,
                           limit_label=t(request, "limit") if limit is not None else "",
                           title=t(request, "Abandoned calls, 30 days"))
    if kind == "lines":
        return charts.bars([(r["line"], (r["asr"] or 0) * 100, f"{(r['asr'] or 0) * 100:.0f} %")
                            for r in rows], title="ASR")
    if any(r.get("occupancy") is not None for r in rows):  # who was busy while logged in
        return charts.bars([(r["operator"] or "—", (r["occupancy"] or 0) * 100,
                             f"{(r['occupancy'] or 0) * 100:.0f} %") for r in rows],
                           title=t(request, "Occupancy"))
    return charts.bars([(r["operator"] or "—", r["talk_s"], t(request, "{n} min", n=f"{r['talk_s'] / 60:.0f}"))
                        for r in rows], title=t(request, "Talk time"))


async def page(request: web.Request) -> web.Response:
    data = await _data(request)
    return render("reports.html", request, {**data, "columns": COLUMNS[data["report"]],
                                            "chart": _chart(request, data),
                                            "reports": reports.REPORTS, "funnel_by": FUNNEL_BY,
                                            "weekdays": WEEKDAYS})


async def export(request: web.Request) -> web.Response:
    data = await _data(request)
    cols = COLUMNS[data["report"]]
    header = [t(request, h) for _, h, _ in cols]
    body = [[r.get(f) for f, _, _ in cols] for r in data["rows"]]
    name = f"{data['report']}-{data['since']}-{data['until']}"
    if request.query.get("format") == "xlsx":
        # a workbook is built and zipped in Python: seconds for a long table, off the loop
        out = await asyncio.to_thread(xlsx, data["report"], header, body)
        resp = web.Response(body=out, content_type="application/vnd.openxmlformats-"
                            "officedocument.spreadsheetml.sheet")
        resp.headers["Content-Disposition"] = f'attachment; filename="{name}.xlsx"'
        return secure(resp)
    resp = web.Response(body=await asyncio.to_thread(semicolon_csv, header, body),
                        content_type="text/csv", charset="utf-8")
    resp.headers["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    return secure(resp)


def xlsx(title: str, header: list, rows: list[list]) -> bytes:
    """One sheet named ``title``: the header, then the rows (a write-only workbook: it streams
    rows instead of keeping a cell object for each)."""
    from openpyxl import Workbook
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title)
    ws.append(header)
    for row in rows:
        ws.append(row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def semicolon_csv(header: list, rows: list[list]) -> bytes:
    """What Excel in a Russian locale opens as columns: ``;`` separated, UTF-8 with a BOM."""
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=";")
    w.writerow(header)
    w.writerows(["" if v is None else v for v in row] for row in rows)
    return buf.getvalue().encode("utf-8-sig")
