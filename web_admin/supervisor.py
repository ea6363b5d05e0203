"""Supervisor pages: live dashboard, campaigns and call-list upload, KPI funnel, do-not-call list."""
from __future__ import annotations

import re
from urllib.parse import quote

import structlog
from aiohttp import web

from controller import sms_inbox
from firmware.errors import UserError
from web_admin import i18n
from web_admin.backend import (CAMPAIGN_ACTIONS, CAMPAIGN_MODES, KPI_BY, KPI_COLUMNS,
                               MONITOR_MODES, OPERATOR_STATES, WRAP_AFTER)
from web_admin.render import (backend, call, current_status, json_error, lang_of, message_of,
                              render, secure, t, user)
from web_admin.rtc import headset_feed

log = structlog.get_logger(__name__)

# Line states in the groups a supervisor reads at a glance (the tile colours).
LINE_GROUPS = (("idle", ("idle",)), ("dialing", ("seized", "dialing", "proceeding", "alerting",
                                                 "releasing")),
               ("talking", ("answered", "bridged", "inbound")),
               ("out_of_service", ("out_of_service",)), ("blocked", ("blocked",)))

async def dashboard(request: web.Request) -> web.Response:
    flagged = await backend(request).store.read(sms_inbox.waiting)  # a scan: on the reader
    return render("dashboard.html", request, {"status": await current_status(backend(request)),
                                              "line_groups": LINE_GROUPS,
                                              "op_states": OPERATOR_STATES,
                                              "flagged_sms": flagged})

async def api_status(request: web.Request) -> web.Response:
    """The status for integrators: in English, the box's part without a server path."""
    status = await current_status(backend(request))
    if isinstance(status, dict) and status.get("box"):
        status = dict(status, box=box_words("en", status["box"]))
    return secure(web.json_response(status))

def box_words(lang: str, box: dict | None) -> dict | None:
    """The box's part of the status (boot report, restarted tasks) in the page's language, as
    the dashboard shows it: no exception's own words, a path as its file name only."""
    if not box:
        return box

    def words(value) -> str:
        return i18n.message_of(lang, value) if value else ""

    def item(i: dict) -> dict:
        return dict(i, what=words(i["what"]), detail=words(i["detail"]))
    tasks = [{k: v for k, v in dict(task, name=words(task["name"]),
                                    last_reason=words(task["last_reason"])).items()
              if k != "last_error"} for task in box.get("tasks_failing", [])]
    clock = box.get("clock")
    return dict(box, boot=dict(box["boot"], items=[item(i) for i in box["boot"]["items"]]),
                boot_failed=[item(i) for i in box["boot_failed"]], tasks_failing=tasks,
                clock=dict(clock, text=words(clock["text"])) if clock else clock)


async def live_feed(request: web.Request) -> web.StreamResponse:
    """The status pushed live; the socket also carries the supervisor's headset (WebRTC)."""
    username = user(request)["username"]
    b = backend(request)

    async def snapshot() -> dict:  # why a line is down, in the page's language
        status = await current_status(b)
        if not isinstance(status, dict) or not status.get("lines"):
            return status
        return dict(status, lines=[dict(ln, reason=message_of(request, ln["reason"]))
                                   if ln.get("reason") else ln for ln in status["lines"]],
                    box=box_words(lang_of(request), status.get("box")))
    return await headset_feed(request, snapshot,
                              leg=lambda: call(b.listen_audio, username),
                              notify=lambda up, why: None)


async def monitor(request: web.Request) -> web.Response:
    """Listen to a live call, whisper to its operator, barge in, or stop (audited below)."""
    try:
        body = await request.json()
    except ValueError:
        return json_error(t(request, "the request body is not JSON"))
    mode, position = body.get("mode") if isinstance(body, dict) else None, (
        body.get("position") if isinstance(body, dict) else None)
    if mode not in MONITOR_MODES or not isinstance(position, str):
        return json_error(t(request, "mode must be one of {modes}, with a position",
                            modes=", ".join(MONITOR_MODES)))
    try:
        await call(backend(request).monitor, user(request)["username"], position, mode,
                   request.remote or "")
    except UserError as exc:
        return json_error(message_of(request, exc))
    log.info("monitor", user=user(request)["username"], position=position, mode=mode)
    return secure(web.json_response({"ok": True, "mode": mode, "position": position}))

# --- campaigns --------------------------------------------------------------------------------
# The actions a campaign's status allows, in the order the buttons show.
ACTIONS_FOR = {"draft": ("start", "archive"), "running": ("pause", "stop"),
               "paused": ("start", "stop"), "stopped": ("start", "archive"),
               "archived": ("unarchive",), "finished": ("start", "archive")}


def _profiles() -> list[str]:
    from controller.compliance import PROFILES
    return list(PROFILES)


async def campaigns(request: web.Request, *, error: str | None = None, form: dict | None = None,
                    status: int = 200, selected: str | None = None) -> web.Response:
    return render("campaigns.html", request,
                  {"campaigns": await call(backend(request).campaigns), "error": error,
                   "form": form or {}, "modes": CAMPAIGN_MODES, "profiles": _profiles(),
                   "actions_for": ACTIONS_FOR, "selected": selected}, status=status)


async def campaign_create(request: web.Request) -> web.Response:
    """A new campaign, a draft: it dials once somebody starts it."""
    form = await request.post()
    fields = {k: str(form.get(k, "")).strip() for k in ("name", "creditor", "mode", "compliance")}
    try:
        made = await call(backend(request).campaign_create, fields["name"],
                          fields["creditor"] or None, fields["mode"], fields["compliance"],
                          user(request)["username"])
    except (UserError, ValueError) as exc:
        return await campaigns(request, error=message_of(request, exc), form=fields, status=400)
    log.info("campaign_created", user=user(request)["username"], campaign=made["name"])
    raise web.HTTPSeeOther(f"/campaign/{quote(made['name'], safe='')}")


async def campaign_page(request: web.Request, *, error: str | None = None,
                        done: str | None = None, status: int = 200,
                        name: str | None = None) -> web.Response:
    name = name or request.match_info["name"]
    try:
        c = await call(backend(request).campaign_settings, name)
    except UserError:
        raise web.HTTPNotFound() from None
    return render("campaign.html", request, {
        "c": c, "modes": CAMPAIGN_MODES, "profiles": _profiles(), "wrap_after": WRAP_AFTER,
        "actions": ACTIONS_FOR.get(c["status"], ()), "error": error, "done": done},
        status=status)


def _names(text: str) -> list[str]:
    return [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]


async def campaign_settings(request: web.Request) -> web.Response:
    """Save the settings form: only what changed goes to the backend (and the audit log)."""
    name = request.match_info["name"]
    form = await request.post()
    try:
        before = await call(backend(request).campaign_settings, name)
    except UserError:
        raise web.HTTPNotFound() from None
    wanted: dict = {"name": str(form.get("name", "")).strip(),
                    "creditor": str(form.get("creditor", "")).strip() or None,
                    "mode": str(form.get("mode", "")), "compliance": str(form.get("compliance", "")),
                    "line_group": _names(str(form.get("line_group", ""))),
                    "operators": _names(str(form.get("operators", ""))),
                    "teams": _names(str(form.get("teams", ""))),
                    "wrap_after": str(form.get("wrap_after", ""))}
    try:
        wanted["weight"] = _whole(request, form.get("weight"), "weight")
        limit = str(form.get("wrap_limit_s", "")).strip()
        wanted["wrap_limit_s"] = _whole(request, limit, "wrap_limit_s") if limit else None
        take = str(form.get("take_s", "")).strip()
        wanted["take_s"] = _whole(request, take, "take_s") if take else None
        wanted["abandon_target"] = percent(request, form.get("abandon_target"),
                                           t(request, "Pacing target"))
    except ValueError as exc:
        return await campaign_page(request, error=str(exc), status=400, name=name)
    if form.get("schedule_on") == "1":
        days = sorted({int(d) for d in form.getall("day", []) if str(d) in "1234567" and d})
        wanted["schedule"] = {"days": days, "from": str(form.get("from", "")),
                              "to": str(form.get("to", "")), "tz": str(form.get("tz", ""))}
    else:
        wanted["schedule"] = None
    changes = {k: v for k, v in wanted.items() if v != before.get(k)}
    if not changes:
        return await campaign_page(request, done=t(request, "Nothing changed."), name=name)
    try:
        after = await call(backend(request).campaign_update, name, changes,
                           user(request)["username"])
    except (UserError, ValueError) as exc:
        return await campaign_page(request, error=message_of(request, exc), status=400,
                                   name=name)
    log.info("campaign_updated", user=user(request)["username"], campaign=after["name"],
             changed=sorted(changes))
    raise web.HTTPSeeOther(f"/campaign/{quote(after['name'], safe='')}")


def percent(request: web.Request, value: object, field: str) -> float | None:
    """A percentage as typed ("1,5", "1.5", "1.5 %") as a share (0.015); empty: None."""
    text = str(value or "").strip().rstrip("%").strip().replace(",", ".")
    if not text:
        return None
    try:
        return round(float(text) / 100.0, 6)
    except ValueError:
        raise ValueError(t(request, "{field}: a percentage, such as 1.5", field=field)) from None


def _whole(request: web.Request, value: object, field: str) -> int:
    try:
        return int(str(value).strip())
    except ValueError:
        raise ValueError(t(request, "{field}: a whole number", field=field)) from None

async def campaign_action(request: web.Request) -> web.Response:
    form = await request.post()
    name, action = str(form.get("name", "")), str(form.get("action", ""))
    if action not in CAMPAIGN_ACTIONS:
        return await campaigns(request, status=400, error=t(
            request, "Unknown action {action}.", action=action))
    back = form.get("back") == "1"  # from the campaign's own page: back to it
    try:
        await call(backend(request).campaign_action, name, action, user(request)["username"])
    except UserError as exc:
        if back:
            return await campaign_page(request, error=message_of(request, exc), status=400,
                                       name=name)
        return await campaigns(request, error=message_of(request, exc), status=400)
    log.info("campaign_action", user=user(request)["username"], campaign=name, action=action)
    raise web.HTTPSeeOther(f"/campaign/{quote(name, safe='')}" if back else "/campaigns")


async def report(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if not re.fullmatch(r"[\w][\w.-]{0,200}", name):
        raise web.HTTPNotFound()
    try:
        path = await call(backend(request).report_file, name)
    except (FileNotFoundError, UserError):
        raise web.HTTPNotFound() from None
    resp = web.FileResponse(path, headers={
        "Content-Disposition": f'attachment; filename="{name}"',
        "Content-Type": "text/csv; charset=utf-8"})
    return secure(resp)

# --- KPI ----------------------------------------------------------------------------------------
async def kpi(request: web.Request) -> web.Response:
    names = [c["name"] for c in await call(backend(request).campaigns)]
    by = request.query.get("by", "campaign")
    errors = []
    if by not in KPI_BY:
        errors.append(t(request, "Grouping {by}: choose one of {known}.", by=by,
                        known=", ".join(KPI_BY)))
        by = "campaign"
    campaign = request.query.get("campaign") or None
    if campaign is not None and campaign not in names:
        errors.append(t(request, "There is no campaign named {name}.", name=campaign))
        campaign = None
    error = "; ".join(errors) or None
    rows = await call(backend(request).kpi, campaign, by)
    return render("kpi.html", request, {"rows": rows, "by": by, "by_options": KPI_BY,
                                        "columns": KPI_COLUMNS, "campaign": campaign,
                                        "campaign_names": names, "error": error},
                  status=400 if error else 200)

# --- do-not-call list ---------------------------------------------------------------------------
async def dnc(request: web.Request, *, error: str | None = None, form: dict | None = None,
              status: int = 200) -> web.Response:
    return render("dnc.html", request, {"entries": await call(backend(request).dnc_list),
                                        "error": error, "form": form or {}}, status=status)

async def dnc_add(request: web.Request) -> web.Response:
    form = await request.post()
    number, reason = str(form.get("number", "")).strip(), str(form.get("reason", "")).strip()
    if not number:
        return await dnc(request, error=t(request, "Enter a phone number."),
                         form={"reason": reason}, status=400)
    if not reason:
        return await dnc(request, error=t(request, "Enter a reason."),
                         form={"number": number}, status=400)
    try:
        await call(backend(request).dnc_add, number, reason, user(request)["username"])
    except (UserError, ValueError) as exc:
        return await dnc(request, error=message_of(request, exc),
                         form={"number": number, "reason": reason}, status=400)
    log.info("dnc_added", user=user(request)["username"])  # the number is personal data
    raise web.HTTPSeeOther("/dnc")

async def dnc_remove(request: web.Request) -> web.Response:
    form = await request.post()
    try:
        await call(backend(request).dnc_remove, str(form.get("number", "")),
                   user(request)["username"])
    except (UserError, ValueError) as exc:
        return await dnc(request, error=message_of(request, exc), status=400)
    log.info("dnc_removed", user=user(request)["username"])
    raise web.HTTPSeeOther("/dnc")
