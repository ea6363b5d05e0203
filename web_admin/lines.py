"""The technician's page: every line with SIM and network health, block/unblock, reset, test call,
balance. Block, unblock and reset are audited (the test call and SMS in line_tests)."""
from __future__ import annotations

import structlog
from aiohttp import web

from controller import audit
from firmware.errors import UserError
from web_admin.backend import LINE_ACTIONS
from web_admin.render import backend, call, message_of, render, t, user

log = structlog.get_logger(__name__)


async def page(request: web.Request, *, result: dict | None = None, error: str | None = None,
               notice: str | None = None, status: int = 200) -> web.Response:
    every = await call(backend(request).lines_detail)
    problems = request.query.get("problems") == "1"
    shown = [ln for ln in every if not ln.get("in_service")] if problems else every
    return render("lines.html", request, {"lines": shown, "every": every, "problems": problems,
                                          "result": result, "error": error, "notice": notice},
                  status=status)


async def action(request: web.Request) -> web.Response:
    form = await request.post()
    line, act = str(form.get("line", "")), str(form.get("action", ""))
    if act not in LINE_ACTIONS:
        return await page(request, error=t(request, "Unknown action {action}.", action=act),
                          status=400)
    kw = {}
    if act in ("test_call", "test_sms"):
        number = str(form.get("number", "")).strip()
        if act == "test_sms":
            kw["text"] = str(form.get("text", ""))
        if not number:
            return await page(request, error=t(request, "Enter a number for the test call."),
                              result={"line": line, "action": act}, status=400)
        kw["number"] = number
    try:
        out = await call(backend(request).line_action, line, act, **kw)
    except (UserError, ValueError) as exc:
        return await page(request, error=message_of(request, exc), result={"line": line, "action": act},
                          status=400)
    who = user(request)["username"]
    log.info("line_action", user=who, line=line, action=act)
    if act in ("block", "unblock", "reset"):
        done = out or {}
        await backend(request).store.run(
            audit.record, who=who, action=act, obj="line", key=line,
            before={"state": done["state"]} if "state" in done else None,
            after={"block": {"state": "blocked"}, "unblock": {"state": "idle"},
                   "reset": {"reset": done.get("reset")}}[act],
            source=request.remote or "")
    if act == "reset":
        notice = (t(request, "{line}: the module is re-initialising; its state below follows it.",
                    line=line) if (out or {}).get("reset") == "module" else
                  t(request, "{line}: the channel was restarted (RESTART sent to the network).",
                    line=line))
        return await page(request, notice=notice)
    if act in ("block", "unblock"):
        raise web.HTTPSeeOther("/lines")
    return await page(request, result={"line": line, "action": act, "data": out or {}})
