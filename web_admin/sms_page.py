"""The SMS page: who a campaign's messages come from, its rules and templates with a preview
rendered for a real debtor, the messages sent with their status, and the messages received
(replies that read like a refusal flagged for a person to decide)."""
from __future__ import annotations

from urllib.parse import quote

import structlog
from aiohttp import web

from controller import sms_inbox
from firmware.errors import UserError
from web_admin.render import backend, call, message_of, render, t, user

log = structlog.get_logger(__name__)


async def page(request: web.Request, *, campaign: str | None = None, error: str | None = None,
               preview: dict | None = None, draft: dict | None = None,
               done: str | None = None, status: int = 200) -> web.Response:
    names = [c["name"] for c in await call(backend(request).campaigns)
             if c.get("status") != "archived"]
    campaign = campaign or request.query.get("campaign") or (names[0] if names else None)
    flagged = request.query.get("flagged") == "1"
    received = await backend(request).store.read(sms_inbox.received, flagged=flagged,
                                                 limit=100)  # on the store's reader
    ctx = {"names": names, "campaign": campaign, "error": error, "preview": preview,
           "draft": draft or {}, "done": done, "settings": None, "overview": None,
           "flagged": flagged, "decisions": sms_inbox.DECISIONS, "received": received}
    if campaign is not None:
        try:
            ctx["settings"] = await call(backend(request).sms_settings, campaign)
            ctx["overview"] = await call(backend(request).sms_overview, campaign)
        except UserError:
            raise web.HTTPNotFound() from None
    return render("sms.html", request, ctx, status=status)


async def save_settings(request: web.Request) -> web.Response:
    form = await request.post()
    campaign = str(form.get("campaign", ""))
    changes = {k: str(form.get(k, "")).strip() for k in ("creditor_name", "contact_phone",
                                                         "max_parts")}
    try:
        await call(backend(request).sms_settings_save, campaign, user(request)["username"],
                   changes)
    except (UserError, ValueError) as exc:
        return await page(request, campaign=campaign, error=message_of(request, exc),
                          status=400)
    log.info("sms_settings_saved", user=user(request)["username"], campaign=campaign)
    raise web.HTTPSeeOther(f"/sms?campaign={quote(campaign, safe='')}")


async def template(request: web.Request) -> web.Response:
    """Preview a template for a real debtor, or save it (checked as the law wants)."""
    form = await request.post()
    campaign, rule = str(form.get("campaign", "")), str(form.get("rule", ""))
    text = str(form.get("text", ""))
    draft = {rule: text}
    try:
        if form.get("do") == "preview":
            shown = await call(backend(request).sms_preview, campaign, rule, text)
            return await page(request, campaign=campaign, draft=draft,
                              preview=dict(shown, rule=rule))
        await call(backend(request).sms_settings_save, campaign, user(request)["username"],
                   {"template": {"rule": rule, "text": text}})
    except (UserError, ValueError) as exc:
        return await page(request, campaign=campaign, draft=draft, status=400,
                          error=message_of(request, exc))
    log.info("sms_template_saved", user=user(request)["username"], campaign=campaign, rule=rule)
    return await page(request, campaign=campaign, done=t(request, "The template is saved."))


async def decide(request: web.Request) -> web.Response:
    """A person's word on a received reply that reads like a refusal (audited)."""
    form = await request.post()
    who = user(request)["username"]
    try:
        msg_id = int(str(form.get("id", "")))
    except ValueError:
        raise web.HTTPBadRequest() from None
    try:
        await backend(request).store.run(sms_inbox.decide, msg_id, str(form.get("decision", "")),
                                         who=who, source=request.remote or "")
    except UserError as exc:
        return await page(request, error=message_of(request, exc), status=400)
    log.info("sms_reply_decided", user=who, sms=msg_id)
    raise web.HTTPSeeOther("/sms?flagged=1#sms-received" if form.get("flagged") == "1"
                           else "/sms#sms-received")
