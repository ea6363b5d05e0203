"""The audit log as people read it: who, when, from where, what (before -> after); CSV export."""
from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone

from aiohttp import web

from controller import audit
from web_admin.render import backend, render, secure


def _filters(request: web.Request) -> dict:
    q = request.query
    out: dict = {"obj": q.get("object") or None, "who": q.get("who") or None,
                 "text": q.get("q") or None}
    for key, name in (("since", "from"), ("until", "to")):
        if q.get(name):
            try:
                d = datetime.strptime(q[name], "%Y-%m-%d")
            except ValueError:
                raise ValueError(f"date {q[name]!r}: use YYYY-MM-DD") from None
            out[key] = (d + timedelta(days=1 if key == "until" else 0)).timestamp()
    if out["obj"] not in (None, *audit.OBJECTS):
        out["obj"] = None
    return out


async def page(request: web.Request) -> web.Response:
    # a text search reads the whole log: on the store's reader, not the event loop
    rows = await backend(request).store.read(audit.entries, limit=500, **_filters(request))
    for r in rows:
        r["before_text"] = _short(r["before"])
        r["after_text"] = _short(r["after"])
    return render("audit.html", request, {"rows": rows, "objects": audit.OBJECTS,
                                          "query": dict(request.query)})


async def export(request: web.Request) -> web.Response:
    # up to 100,000 entries read and written out on the store's reader, not the event loop
    body = await backend(request).store.read(_csv, _filters(request))
    resp = web.Response(body=body, content_type="text/csv", charset="utf-8")
    resp.headers["Content-Disposition"] = 'attachment; filename="audit.csv"'
    return secure(resp)


def _csv(store, filters: dict) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["id", "at_utc", "who", "source", "object", "key", "action", "before", "after"])
    for r in audit.entries(store, limit=100_000, **filters):
        w.writerow([r["id"], datetime.fromtimestamp(r["at"], timezone.utc).isoformat(timespec="seconds"),
                    r["who"], r["source"], r["object"], r["key"], r["action"],
                    _dump(r["before"]), _dump(r["after"])])
    return buf.getvalue().encode("utf-8-sig")


def _dump(v) -> str:
    return "" if v is None else json.dumps(v, ensure_ascii=False, sort_keys=True)


def _short(v) -> str:
    text = _dump(v)
    return text if len(text) <= 200 else text[:199] + "…"
