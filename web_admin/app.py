"""The web admin: app factory, routes with the roles that may use them, auth, CSRF, errors."""
from __future__ import annotations

import asyncio
import secrets

import aiohttp_jinja2
import jinja2
import structlog
from aiohttp import web

from controller import users
from firmware.errors import UserError
from web_admin import (admin, api_v1, audit_page, calllists, debtors, desk, hardware, https,
                       line_tests, lines, login, metrics, reports_page, sessions,
                       settings_page, segments_page, sms_page, supervisor)
from web_admin.backend import Backend
from web_admin.render import (ACCESS, ADMIN, BACKEND, DESK, DESKS, HERE, HOME, LANG_COOKIE,
                              LANGS, SESSION_COOKIE, STAFF, TECH, THROTTLE, USER, error_page,
                              install_i18n, json_error, lang_of, message_of, remember_lang, t)
from web_admin.rtc import Desks, MediaNetworks
from web_admin.throttle import LoginThrottle

__all__ = ["make_app", "Backend", "LANGS", "LANG_COOKIE", "SESSION_COOKIE", "ROUTES", "lang_of"]

log = structlog.get_logger(__name__)

EVERYONE = ("admin", "supervisor", "technician", "operator")
PUBLIC = ("healthz", "login", "login_submit", "static", "tls_ca",
          "metrics")  # metrics: its own access check (loopback, allowed networks, token)
MAX_UPLOAD_BYTES = 32 * 1024 * 1024

# (method, path, handler, name, roles); every route but the public ones is checked against roles.
ROUTES = (
    ("GET", "/", supervisor.dashboard, "dashboard", STAFF),
    ("GET", "/api/status", supervisor.api_status, "api_status", STAFF),
    ("GET", "/ws", supervisor.live_feed, "ws", STAFF),
    ("POST", "/monitor", supervisor.monitor, "monitor", STAFF),
    ("GET", "/desk", desk.page, "desk", DESK),
    ("GET", "/api/desk", desk.api_desk, "api_desk", DESK),
    ("GET", "/desk/ws", desk.live_feed, "desk_ws", DESK),
    ("POST", "/desk/ready", desk.ready, "desk_ready", DESK),
    ("POST", "/desk/break", desk.take_break, "desk_break", DESK),
    ("GET", "/recordings/{call_id}", desk.recording, "recording", DESK),
    ("POST", "/desk/hangup", desk.hangup, "desk_hangup", DESK),
    ("POST", "/desk/take", desk.take, "desk_take", DESK),
    ("POST", "/desk/dial", desk.dial, "desk_dial", DESK),
    ("POST", "/desk/skip", desk.skip, "desk_skip", DESK),
    ("POST", "/desk/disposition", desk.disposition, "desk_disposition", DESK),
    ("GET", "/campaigns", supervisor.campaigns, "campaigns", STAFF),
    ("POST", "/campaigns/action", supervisor.campaign_action, "campaign_action", STAFF),
    ("GET", "/sms", sms_page.page, "sms", STAFF),
    ("POST", "/sms/settings", sms_page.save_settings, "sms_settings", STAFF),
    ("POST", "/sms/template", sms_page.template, "sms_template", STAFF),
    ("POST", "/sms/received/decide", sms_page.decide, "sms_decide", STAFF),
    ("POST", "/campaigns/create", supervisor.campaign_create, "campaign_create", STAFF),
    ("GET", "/campaign/{name}", supervisor.campaign_page, "campaign", STAFF),
    ("GET", "/campaign/{name}/segments", segments_page.page, "campaign_segments", STAFF),
    ("POST", "/campaign/{name}/segments", segments_page.save, "campaign_segments_save", STAFF),
    ("POST", "/campaign/{name}/settings", supervisor.campaign_settings, "campaign_settings",
     STAFF),
    ("POST", "/campaigns/upload", calllists.upload, "campaign_upload", STAFF),
    ("POST", "/campaigns/import/{token}", calllists.start, "calllist_import", STAFF),
    ("GET", "/campaigns/import/{token}", calllists.page, "calllist_import_page", STAFF),
    ("GET", "/api/imports/{token}", calllists.state, "api_import", STAFF),
    ("GET", "/campaigns/report/{name}", supervisor.report, "campaign_report", STAFF),
    ("GET", "/kpi", supervisor.kpi, "kpi", STAFF),
    ("GET", "/dnc", supervisor.dnc, "dnc", STAFF),
    ("POST", "/dnc/add", supervisor.dnc_add, "dnc_add", STAFF),
    ("POST", "/dnc/remove", supervisor.dnc_remove, "dnc_remove", STAFF),
    ("GET", "/lines", lines.page, "lines", TECH),
    ("POST", "/lines/action", lines.action, "line_action", TECH),
    ("POST", "/lines/test", line_tests.start, "line_test", TECH),
    ("GET", "/lines/test/{job}", line_tests.status, "line_test_status", TECH),
    ("GET", "/hardware", hardware.page, "hardware", TECH),
    ("GET", "/hardware/profiles/{name}", hardware.profile, "hardware_profile", TECH),
    ("POST", "/hardware/profiles/{name}", hardware.save, "hardware_profile_save", TECH),
    ("GET", "/settings", settings_page.page, "settings", ADMIN),
    ("POST", "/settings", settings_page.save, "settings_save", ADMIN),
    ("GET", "/users", admin.page, "users", ADMIN),
    ("POST", "/users/add", admin.add, "user_add", ADMIN),
    ("POST", "/users/disable", admin.disable, "user_disable", ADMIN),
    ("POST", "/users/team", admin.set_team, "user_team", ADMIN),
    ("POST", "/users/password", admin.reset_password, "user_password", ADMIN),
    ("GET", "/account", admin.account, "account", EVERYONE),
    ("POST", "/account/password", admin.change_own_password, "account_password", EVERYONE),
    ("GET", "/debtors", debtors.page, "debtors", STAFF),
    ("GET", "/debtors/{pk}", debtors.card, "debtor_card", STAFF),
    ("POST", "/debtors/{pk}/phone", debtors.phone, "debtor_phone", STAFF),
    ("POST", "/debtors/{pk}/flag", debtors.flag, "debtor_flag", STAFF),
    ("POST", "/debtors/{pk}/refusal", debtors.refusal, "debtor_refusal", STAFF),
    ("POST", "/debtors/{pk}/refusal-exception", debtors.refusal_exception,
     "debtor_refusal_exception", STAFF),
    ("GET", "/reports", reports_page.page, "reports", STAFF),
    ("GET", "/reports/export", reports_page.export, "report_export", STAFF),
    ("GET", "/audit", audit_page.page, "audit", STAFF),
    ("GET", "/audit.csv", audit_page.export, "audit_export", STAFF),
    ("GET", "/sessions", sessions.page, "sessions", ADMIN),
    ("POST", "/sessions/revoke", sessions.revoke, "session_revoke", ADMIN),
    ("GET", "/tls", https.page, "tls", ADMIN + TECH),
    ("POST", "/logout", login.logout, "logout", EVERYONE),
)


def make_app(backend: Backend, *, throttle: LoginThrottle | None = None,
             tls: https.Https = https.Https(), media: MediaNetworks | None = None
             ) -> web.Application:
    """The web admin over `backend` (the appliance, or a fake in tests); `tls` says where HTTPS
    is served and which CA the office PCs install; `media` the networks the desks' audio may
    use (default: the box's own non-loopback networks)."""
    app = web.Application(middlewares=[https.redirect_middleware, error_middleware,
                                       auth_middleware], client_max_size=MAX_UPLOAD_BYTES)
    app[BACKEND] = backend
    app[desk.OPEN_DESKS] = {}
    app[THROTTLE] = throttle or LoginThrottle()
    app[line_tests.JOBS] = {}
    app.on_cleanup.append(line_tests.cancel_all)
    app[https.HTTPS] = tls
    networks = media if media is not None else MediaNetworks.of_this_box()
    networks.install()
    app[DESKS] = Desks(networks)
    app.on_shutdown.append(_close_desks)
    app[ACCESS] = {name: roles for _, _, _, name, roles in ROUTES}
    env = aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(str(HERE / "templates")),
                               autoescape=jinja2.select_autoescape(["html"]))
    install_i18n(env)
    calllists.setup(app)
    app.router.add_get("/healthz", login.healthz, name="healthz")
    app.router.add_get("/metrics", metrics.handler, name="metrics")
    app.router.add_get("/login", login.login_form, name="login")
    app.router.add_post("/login", login.login_submit, name="login_submit")
    app.router.add_get("/tls/ca.crt", https.ca_cert, name="tls_ca")
    for method, path, handler, name, _ in ROUTES:
        app.router.add_route(method, path, handler, name=name)
    app.router.add_static("/static/", str(HERE / "static"), name="static")
    app.add_subapp("/api/v1", api_v1.make_api(backend))
    return app


async def _close_desks(app: web.Application) -> None:
    await app[DESKS].close_all()


# --- middlewares ------------------------------------------------------------------------------
def _wants_json(request: web.Request) -> bool:
    return (request.path.startswith(("/api/", "/ws", "/desk/"))
            or request.content_type == "application/json")


@web.middleware
async def error_middleware(request: web.Request, handler):
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status in (404, 413) and not _wants_json(request):
            return error_page(request, t(request, "There is no such page.") if exc.status == 404
                              else t(request, "The file is too large (over 32 MB): split the "
                                              "list into parts."), status=exc.status)
        remember_lang(request, exc)
        raise
    except asyncio.CancelledError:
        raise
    except (UserError, ValueError) as exc:  # a message meant for the person
        if _wants_json(request):
            return json_error(message_of(request, exc))
        return error_page(request, message_of(request, exc), status=400)
    except Exception:
        log.exception("http_handler_failed", path=request.path)
        text = t(request, "Internal error. Details are in the log; tell a technician.")
        if _wants_json(request):
            return json_error(text, 500)
        return error_page(request, text, status=500)


@web.middleware
async def auth_middleware(request: web.Request, handler):
    route = request.match_info.route.name
    if route in PUBLIC or request.path.startswith("/api/v1/"):
        return await handler(request)  # /api/v1 has its own bearer-token check
    store = request.app[BACKEND].store
    token = request.cookies.get(SESSION_COOKIE)
    who = users.session_user(store, token, touch=False) if token else None
    if who is not None and who.pop("touch"):  # written at most once a minute, on the writer
        store.submit(users.touch_session, token, store.clock.wall())
    if who is None:
        if _wants_json(request):
            return json_error(t(request, "Sign in first."), 401)
        raise web.HTTPFound("/login")
    request[USER] = who
    roles = request.app[ACCESS].get(route)
    if roles is not None and who["role"] not in roles:
        if route == "dashboard":  # everyone's start page leads to the page of their role
            raise web.HTTPFound(HOME.get(who["role"], "/login"))
        log.info("forbidden", user=who["username"], role=who["role"], route=route)
        text = t(request, "Your role may not open this page.")
        if _wants_json(request):
            return json_error(text, 403)
        return error_page(request, text, status=403)
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        sent = request.headers.get("X-CSRF-Token")
        if sent is None and request.content_type in ("application/x-www-form-urlencoded",
                                                     "multipart/form-data"):
            sent = (await request.post()).get("csrf")
        if not sent or not secrets.compare_digest(str(sent), who["csrf"]):
            text = t(request, "The form expired: reload the page and try again.")
            if _wants_json(request):
                return json_error(text, 403)
            return error_page(request, text, status=403)
    return await handler(request)
