"""A campaign's segments as a supervisor edits them: DPD range, dialing mode, pacing target,
attempts, retries per outcome, priority, SMS rules and the script the operator reads on the card."""
from __future__ import annotations

import json
from urllib.parse import quote

import structlog
from aiohttp import web

from controller.segments import DEFAULT_RETRY_S, MODES
from controller.sms import RULES
from firmware.errors import UserError
from web_admin.render import backend, call, message_of, render, t, user
from web_admin.supervisor import percent

log = structlog.get_logger(__name__)

RETRY_OUTCOMES = tuple(DEFAULT_RETRY_S)


async def page(request: web.Request, *, error: str | None = None, segments: list | None = None,
               status: int = 200) -> web.Response:
    name = request.match_info["name"]
    try:
        current = await call(backend(request).campaign_segments, name)
    except UserError:
        raise web.HTTPNotFound() from None
    shown = [dict(sg, rest=json.dumps({k: v for k, v in (sg.get("rules") or {}).items()
                                       if k != "dpd"}, ensure_ascii=False))
             for sg in (segments if segments is not None else current)]
    return render("segments.html", request, {
        "name": name, "segments": shown,
        "modes": MODES, "outcomes": RETRY_OUTCOMES, "defaults": DEFAULT_RETRY_S,
        "sms_rules": RULES, "error": error}, status=status)


def _number(request: web.Request, text: str, what: str, *, whole: bool = True):
    text = text.strip().replace(",", ".")
    if not text:
        return None
    try:
        value = int(text) if whole else float(text)
    except ValueError:
        raise ValueError(t(request, "{field}: a whole number", field=what)) from None
    return value


def _segment(request: web.Request, form, i: int) -> dict | None:
    p = f"seg{i}_"
    name = str(form.get(p + "name", "")).strip()
    if not name or form.get(p + "delete") == "1":
        return None
    rules = json.loads(str(form.get(p + "rest") or "{}"))
    lo = _number(request, str(form.get(p + "dpd_min", "")), name)
    hi = _number(request, str(form.get(p + "dpd_max", "")), name)
    if lo is not None or hi is not None:
        rules["dpd"] = [lo, hi]
    retry = {}
    for outcome in RETRY_OUTCOMES:
        minutes = _number(request, str(form.get(f"{p}retry_{outcome}", "")), name, whole=False)
        if minutes is not None:
            retry[outcome] = minutes * 60
    strategy = {"mode": str(form.get(p + "mode", "")) or None,
                "attempts_per_day": _number(request, str(form.get(p + "attempts_per_day", "3")),
                                            name) or 3,
                "max_attempts": _number(request, str(form.get(p + "max_attempts", "")), name),
                "priority": _number(request, str(form.get(p + "priority", "0")), name) or 0,
                "abandon_target": percent(request, form.get(p + "abandon_target"), name),
                "retry_s": retry, "sms_rules": [str(r) for r in form.getall(p + "sms", [])],
                "phone_order": [k for k in str(form.get(p + "phone_order", "")).split(",")
                                if k] or ["mobile", "home", "work"]}
    return {"name": name, "rules": rules, "strategy": strategy,
            "script": str(form.get(p + "script", "")).strip()}


async def save(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    form = await request.post()
    count = int(form.get("count", "0") or 0)
    try:
        wanted = [s for s in (_segment(request, form, i) for i in range(count + 1)) if s]
    except (ValueError, json.JSONDecodeError) as exc:
        return await page(request, error=str(exc), status=400)
    try:
        await call(backend(request).campaign_set_segments, name, wanted,
                   user(request)["username"])
    except (UserError, ValueError) as exc:
        return await page(request, error=message_of(request, exc), segments=wanted, status=400)
    log.info("segments_saved", user=user(request)["username"], campaign=name,
             segments=len(wanted))
    raise web.HTTPSeeOther(f"/campaign/{quote(name, safe='')}/segments")
