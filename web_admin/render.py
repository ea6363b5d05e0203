"""What every page shares: app keys, languages, who may open what, rendering with security headers."""
from __future__ import annotations

import inspect
import json
import time
from importlib.resources import files
from pathlib import Path
from typing import Any

import aiohttp_jinja2
from aiohttp import web

SESSION_COOKIE = "dialbox_session"
LANG_COOKIE = "dialbox_lang"
LANGS = ("ru", "en")
HERE = Path(str(files("web_admin")))
LOCALES = {lang: json.loads((HERE / "locales" / f"{lang}.json").read_text(encoding="utf-8"))
           for lang in LANGS}
CSP = "default-src 'self'; connect-src 'self'; img-src 'self' data:; form-action 'self'"

BACKEND = web.AppKey("backend", object)
ACCESS = web.AppKey("access", dict)  # route name -> roles that may use it
USER = web.RequestKey("user", dict)
THROTTLE = web.AppKey("throttle", object)  # web_admin.throttle.LoginThrottle

STAFF = ("admin", "supervisor")
DESK = ("operator", "supervisor", "admin")
TECH = ("technician", "admin")
ADMIN = ("admin",)

# (route name, path, locale key): the navigation, shown to a role only where it may go.
NAV = (("dashboard", "/", "nav_dashboard"), ("desk", "/desk", "nav_desk"),
       ("campaigns", "/campaigns", "nav_campaigns"), ("kpi", "/kpi", "nav_kpi"),
       ("dnc", "/dnc", "nav_dnc"), ("lines", "/lines", "nav_lines"),
       ("users", "/users", "nav_users"), ("sessions", "/sessions", "nav_sessions"))
HOME = {"admin": "/", "supervisor": "/", "operator": "/desk", "technician": "/lines"}


def lang_of(request: web.Request) -> str:
    q = request.query.get("lang")
    if q in LANGS:
        return q
    c = request.cookies.get(LANG_COOKIE)
    return c if c in LANGS else "ru"


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


def _context(request: web.Request) -> dict:
    lang = lang_of(request)
    strings = LOCALES[lang]
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
    return {"t": lambda key: strings.get(key, key), "lang": lang,
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


def render(template: str, request: web.Request, ctx: dict, *, status: int = 200) -> web.Response:
    resp = aiohttp_jinja2.render_template(template, request, {**_context(request), **ctx},
                                          status=status)
    remember_lang(request, resp)
    return secure(resp)


def remember_lang(request: web.Request, resp: web.StreamResponse) -> None:
    """A ?lang= choice is kept in a cookie, on pages and on redirects alike."""
    if request.query.get("lang") in LANGS and not resp.prepared:
        resp.set_cookie(LANG_COOKIE, request.query["lang"], max_age=365 * 86400,
                        samesite="Lax", httponly=True)


def error_page(request: web.Request, *, key: str | None = None, message: str | None = None,
               status: int) -> web.Response:
    """A page that says what went wrong in words, never a traceback."""
    return render("error.html", request, {"message_key": key, "message": message}, status=status)


def json_error(message: str, status: int = 400) -> web.Response:
    return secure(web.json_response({"error": message}, status=status))


# --- Jinja filters: numbers and times the way a collection shop reads them ---------------------
def pct(value: Any) -> str:
    if value is None:
        return "—"
    return f"{float(value) * 100:.1f} %"


def money(value: Any) -> str:
    if value is None:
        return "—"
    return f"{float(value):,.2f}".replace(",", "\u00a0")


def duration(value: Any) -> str:
    if value is None:
        return "—"
    s = int(round(float(value)))
    return f"{s // 60}:{s % 60:02d}"


def when(value: Any) -> str:
    if value in (None, ""):
        return "—"
    if isinstance(value, (int, float)):
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(value))
    return str(value).replace("T", " ")[:16]


FILTERS = {"pct": pct, "money": money, "duration": duration, "when": when}
