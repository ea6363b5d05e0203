"""What every page shares: app keys, languages, who may open what, rendering with security headers."""
from __future__ import annotations

import contextvars
import inspect
import json
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from firmware.errors import Msg, msg_from_json
from web_admin import i18n
from web_admin.i18n import HERE, LANGS, N_  # noqa: F401 (HERE: app.py imports it from here)
from web_admin.labels import (label, labels, limit_words, release_reason, sms_rest_reason,
                              window)

SESSION_COOKIE = "dialbox_session"
LANG_COOKIE = "dialbox_lang"
CSP = "default-src 'self'; connect-src 'self'; img-src 'self' data:; form-action 'self'"

BACKEND = web.AppKey("backend", object)
ACCESS = web.AppKey("access", dict)  # route name -> roles that may use it
USER = web.RequestKey("user", dict)
THROTTLE = web.AppKey("throttle", object)  # web_admin.throttle.LoginThrottle
DESKS = web.AppKey("desks", object)  # web_admin.rtc.Desks: every desk's headset (WebRTC)

STAFF = ("admin", "supervisor")
DESK = ("operator", "supervisor", "admin")
TECH = ("technician", "admin")
ADMIN = ("admin",)

# (route name, path, title): the navigation, shown to a role only where it may go.
NAV = (("dashboard", "/", N_("Dashboard")), ("desk", "/desk", N_("Agent desk")),
       ("campaigns", "/campaigns", N_("Campaigns")), ("kpi", "/kpi", N_("KPI")),
       ("dnc", "/dnc", N_("Do-not-call")), ("sms", "/sms", N_("SMS")),
       ("debtors", "/debtors", N_("Debtors")),
       ("reports", "/reports", N_("Reports")), ("audit", "/audit", N_("Audit")),
       ("lines", "/lines", N_("Lines")), ("hardware", "/hardware", N_("Hardware")), ("users", "/users", N_("Users")),
       ("sessions", "/sessions", N_("Sessions")),
       ("settings", "/settings", N_("Settings")), ("tls", "/tls", N_("Certificate")))
HOME = {"admin": "/", "supervisor": "/", "operator": "/desk", "technician": "/lines"}


def lang_of(request: web.Request) -> str:
    q = request.query.get("lang")
    if q in LANGS:
        return q
    c = request.cookies.get(LANG_COOKIE)
    return c if c in LANGS else i18n.DEFAULT


def t(request: web.Request, message: str, **params: Any) -> str:
    """`message` in the language of the page that asked, `{name}` placeholders filled."""
    return i18n.gettext(lang_of(request), message, **params)


def message_of(request: web.Request, exc: BaseException) -> str:
    """An error's message (UserError, ValueError) in the language of the page."""
    return i18n.message_of(lang_of(request), exc)


def backend(request: web.Request) -> Any:
    return request.app[BACKEND]


def user(request: web.Request) -> dict:
    return request[USER]


async def call(fn, *args, **kw) -> Any:
    """Call a backend method; await its result when it is awaitable (sync or async both fine)."""
    result = fn(*args, **kw)
    if inspect.isawaitable(result):
        result = await result
    return result


async def current_status(b) -> dict:
    """The box's status, its campaigns' counts read off the event loop (the box's status_live);
    a backend without it: status."""
    return await call(getattr(b, "status_live", b.status))


def _context(request: web.Request) -> dict:
    lang = lang_of(request)
    who = request.get(USER)
    nav = []
    if who:
        access = request.app[ACCESS]
        nav = [(path, key, name == _route_name(request))
               for name, path, key in NAV if who["role"] in access.get(name, ())]
    other = "en" if lang == "ru" else "ru"
    if request.method == "GET":
        lang_url = str(request.rel_url.update_query(lang=other))
    else:  # a form's answer: switch on the page the form lives on (/dnc/add -> /dnc)
        lang_url = (request.path.rsplit("/", 1)[0] or request.path) + f"?lang={other}"
    strings = {"messages": i18n.js_messages(lang), "labels": labels(lang)}
    return {"lang": lang, "label": lambda family, key: label(lang, family, key),
            "window": lambda name: window(lang, name),
            "release_reason": lambda reason, cause=None, outcome=None: release_reason(
                lang, reason, cause, outcome),
            "sms_rest_reason": lambda reason: sms_rest_reason(lang, reason),
            "limit_words": lambda refused: limit_words(lang, refused),
            "other_lang": other, "lang_url": lang_url,
            "strings_json": json.dumps(strings, ensure_ascii=False).replace("</", "<\\/"),
            "user": who, "csrf": (who or {}).get("csrf", ""), "nav": nav}


def _route_name(request: web.Request) -> str | None:
    try:
        return request.match_info.route.name
    except AttributeError:
        return None


def secure(resp: web.StreamResponse) -> web.StreamResponse:
    resp.headers["X-Frame-Options"] = "DENY"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "same-origin"
    resp.headers["Content-Security-Policy"] = CSP
    return resp


# The language the template being rendered speaks: the i18n extension's _() reads it.
_LANG: contextvars.ContextVar[str] = contextvars.ContextVar("lang", default=i18n.DEFAULT)


def install_i18n(env: jinja2.Environment) -> None:
    """jinja2's i18n extension over our catalogues, in the language of the page rendered."""
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(  # type: ignore[attr-defined]
        lambda m: i18n.translations(_LANG.get()).gettext(m),
        lambda s, p, n: i18n.translations(_LANG.get()).ngettext(s, p, n),
        newstyle=True,
        pgettext=lambda c, m: i18n.translations(_LANG.get()).pgettext(c, m),
        npgettext=lambda c, s, p, n: i18n.translations(_LANG.get()).npgettext(c, s, p, n))
    env.filters.update(FILTERS)


def render(template: str, request: web.Request, ctx: dict, *, status: int = 200) -> web.Response:
    _LANG.set(lang_of(request))
    resp = aiohttp_jinja2.render_template(template, request, {**_context(request), **ctx},
                                          status=status)
    remember_lang(request, resp)
    return secure(resp)


def remember_lang(request: web.Request, resp: web.StreamResponse) -> None:
    """A ?lang= choice is kept in a cookie, on pages and on redirects alike."""
    if request.query.get("lang") in LANGS and not resp.prepared:
        resp.set_cookie(LANG_COOKIE, request.query["lang"], max_age=365 * 86400,
                        samesite="Lax", httponly=True)


def error_page(request: web.Request, message: str, *, status: int) -> web.Response:
    """A page that says what went wrong in words (already in the page's language)."""
    return render("error.html", request, {"message": message}, status=status)


def json_error(message: str, status: int = 400) -> web.Response:
    return secure(web.json_response({"error": message}, status=status))


# --- Jinja filters: numbers and times the way a collection shop reads them, in its locale -------
@jinja2.pass_context
def pct(ctx: Any, value: Any) -> str:
    return i18n.percent(value, ctx.get("lang", i18n.DEFAULT))


@jinja2.pass_context
def money(ctx: Any, value: Any, currency: str | None = None) -> str:
    return i18n.money(value, ctx.get("lang", i18n.DEFAULT), currency)


@jinja2.pass_context
def number(ctx: Any, value: Any) -> str:
    return i18n.number(value, ctx.get("lang", i18n.DEFAULT))


def duration(value: Any) -> str:
    if value is None:
        return "—"
    s = int(round(float(value)))
    return f"{s // 60}:{s % 60:02d}"


@jinja2.pass_context
def when(ctx: Any, value: Any) -> str:
    return i18n.when(value, ctx.get("lang", i18n.DEFAULT))


@jinja2.pass_context
def day(ctx: Any, value: Any) -> str:
    return i18n.day(value, ctx.get("lang", i18n.DEFAULT))


@jinja2.pass_context
def msg(ctx: Any, value: Any) -> str:
    """A message from below (a line's reason: a Msg, or plain text) in the page's language."""
    if value in (None, ""):
        return ""
    return i18n.message_of(ctx.get("lang", i18n.DEFAULT), value)  # a Msg: template and values


@jinja2.pass_context
def said(ctx: Any, value: Any) -> str:
    """A message stored as JSON with its template and values (firmware.errors.msg_json), in the
    page's language; "" when there is none."""
    found = msg_from_json(value)
    return msg(ctx, found) if isinstance(found, Msg) else ""


FILTERS = {"msg": msg, "said": said, "pct": pct, "money": money, "number": number, "duration": duration, "when": when,
           "day": day}
