"""Supervisor pages: live dashboard, campaigns and call-list upload, KPI funnel, do-not-call list."""
from __future__ import annotations

import re

import structlog
from aiohttp import web

from firmware.errors import UserError
from web_admin.backend import CAMPAIGN_ACTIONS, KPI_BY, KPI_COLUMNS, OPERATOR_STATES
from web_admin.live import push_changes
from web_admin.render import backend, call, message_of, render, secure, t, user

log = structlog.get_logger(__name__)

# Line states in the groups a supervisor reads at a glance (the tile colours).
LINE_GROUPS = (("idle", ("idle",)), ("dialing", ("seized", "dialing", "proceeding", "alerting",
                                                 "releasing")),
               ("talking", ("answered", "bridged", "inbound")),
               ("out_of_service", ("out_of_service",)), ("blocked", ("blocked",)))

async def dashboard(request: web.Request) -> web.Response:
    return render("dashboard.html", request, {"status": backend(request).status(),
                                              "line_groups": LINE_GROUPS,
                                              "op_states": OPERATOR_STATES})

async def api_status(request: web.Request) -> web.Response:
    return secure(web.json_response(backend(request).status()))

async def live_feed(request: web.Request) -> web.StreamResponse:
    return await push_changes(request, backend(request).status)

# --- campaigns --------------------------------------------------------------------------------
async def campaigns(request: web.Request, *, error: str | None = None,
                    status: int = 200) -> web.Response:
    return render("campaigns.html", request,
                  {"campaigns": await call(backend(request).campaigns), "error": error},
                  status=status)

async def campaign_action(request: web.Request) -> web.Response:
    form = await request.post()
    name, action = str(form.get("name", "")), str(form.get("action", ""))
    if action not in CAMPAIGN_ACTIONS:
        return await campaigns(request, status=400, error=t(
            request, "Unknown action {action}: start or pause.", action=action))
    try:
        await call(backend(request).campaign_action, name, action, user(request)["username"])
    except UserError as exc:
        return await campaigns(request, error=message_of(request, exc), status=400)
    log.info("campaign_action", user=user(request)["username"], campaign=name, action=action)
    raise web.HTTPSeeOther("/campaigns")

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
