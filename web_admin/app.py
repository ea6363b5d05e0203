"""The web admin: app factory, routes, auth and CSRF, live feed over WebSocket."""
from __future__ import annotations

import asyncio
import json
import secrets
from importlib.resources import files
from pathlib import Path
from typing import Any, Protocol

import aiohttp_jinja2
import jinja2
import structlog
from aiohttp import WSMsgType, web

from controller import users

log = structlog.get_logger(__name__)

SESSION_COOKIE = "dialbox_session"
LANG_COOKIE = "dialbox_lang"
LANGS = ("ru", "en")
_HERE = Path(str(files("web_admin")))
LOCALES = {lang: json.loads((_HERE / "locales" / f"{lang}.json").read_text(encoding="utf-8"))
           for lang in LANGS}


class Backend(Protocol):
    """What the web admin needs from the appliance."""

    store: Any

    def health(self) -> dict: ...

    def status(self) -> dict: ...


BACKEND = web.AppKey("backend", object)
USER = web.RequestKey("user", dict)


def make_app(backend: Backend) -> web.Application:
    app = web.Application(middlewares=[error_middleware, auth_middleware])
    app[BACKEND] = backend
    aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(str(_HERE / "templates")),
                         autoescape=jinja2.select_autoescape(["html"]))
    app.router.add_get("/healthz", healthz, name="healthz")
    app.router.add_get("/login", login_form, name="login")
    app.router.add_post("/login", login_submit)
    app.router.add_post("/logout", logout, name="logout")
    app.router.add_get("/", dashboard, name="dashboard")
    app.router.add_get("/api/status", api_status, name="api_status")
    app.router.add_get("/ws", live_feed, name="ws")
    app.router.add_static("/static/", str(_HERE / "static"), name="static")
    return app


# --- i18n -------------------------------------------------------------------------------------
def lang_of(request: web.Request) -> str:
    q = request.query.get("lang")
    if q in LANGS:
        return q
    c = request.cookies.get(LANG_COOKIE)
    return c if c in LANGS else "ru"


def _context(request: web.Request) -> dict:
    lang = lang_of(request)
    strings = LOCALES[lang]
    user = request.get(USER)
    return {"t": lambda key: strings.get(key, key), "lang": lang,
            "other_lang": "en" if lang == "ru" else "ru",
            "strings_json": json.dumps(strings, ensure_ascii=False).replace("</", "<\\/"),
            "user": user, "csrf": (user or {}).get("csrf", "")}


def _render(template: str, request: web.Request, ctx: dict, *, status: int = 200) -> web.Response:
    resp = aiohttp_jinja2.render_template(template, request, {**_context(request), **ctx},
                                          status=status)
    if request.query.get("lang") in LANGS:
        resp.set_cookie(LANG_COOKIE, request.query["lang"], max_age=365 * 86400,
                        samesite="Lax", httponly=True)
    resp.headers["X-Frame-Options"] = "DENY"
    resp.headers["Content-Security-Policy"] = ("default-src 'self'; connect-src 'self'; "
                                               "img-src 'self' data:")
    return resp


# --- middlewares ------------------------------------------------------------------------------
@web.middleware
async def error_middleware(request: web.Request, handler):
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("http_handler_failed", path=request.path)
        if request.path.startswith("/api/"):
            return web.json_response({"error": "internal error"}, status=500)
        return _render("error.html", request, {"message_key": "internal_error"}, status=500)


@web.middleware
async def auth_middleware(request: web.Request, handler):
    if request.path in ("/healthz", "/login") or request.path.startswith("/static/"):
        return await handler(request)
    store = request.app[BACKEND].store
    token = request.cookies.get(SESSION_COOKIE)
    user = users.session_user(store, token) if token else None
    if user is None:
        if request.path.startswith(("/api/", "/ws")):
            return web.json_response({"error": "authentication required"}, status=401)
        raise web.HTTPFound("/login")
    request[USER] = user
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        sent = request.headers.get("X-CSRF-Token")
        if sent is None and request.content_type in ("application/x-www-form-urlencoded",
                                                     "multipart/form-data"):
            sent = (await request.post()).get("csrf")
        if not sent or not secrets.compare_digest(str(sent), user["csrf"]):
            return web.json_response({"error": "CSRF token missing or wrong"}, status=403)
    return await handler(request)


# --- views ------------------------------------------------------------------------------------
async def healthz(request: web.Request) -> web.Response:
    return web.json_response(request.app[BACKEND].health())


async def login_form(request: web.Request, *, error: str | None = None,
                     status: int = 200) -> web.Response:
    token = request.cookies.get("dialbox_login_csrf") or secrets.token_urlsafe(24)
    resp = _render("login.html", request, {"error_key": error, "login_csrf": token},
                   status=status)
    resp.set_cookie("dialbox_login_csrf", token, httponly=True, samesite="Strict")
    return resp


async def login_submit(request: web.Request) -> web.Response:
    form = await request.post()
    cookie = request.cookies.get("dialbox_login_csrf", "")
    if not cookie or not secrets.compare_digest(str(form.get("csrf", "")), cookie):
        return await login_form(request, error="bad_csrf", status=403)
    store = request.app[BACKEND].store
    user = await asyncio.to_thread(users.verify, store, str(form.get("username", "")),
                                   str(form.get("password", "")))
    if user is None:
        log.warning("login_failed", remote=request.remote)
        return await login_form(request, error="bad_login", status=401)
    token, _ = users.open_session(store, user["id"])
    log.info("login", user=user["username"])
    resp = web.HTTPFound("/")
    resp.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="Strict",
                    max_age=users.SESSION_TTL_S)
    resp.del_cookie("dialbox_login_csrf")
    raise resp


async def logout(request: web.Request) -> web.Response:
    users.close_session(request.app[BACKEND].store, request.cookies.get(SESSION_COOKIE, ""))
    resp = web.HTTPFound("/login")
    resp.del_cookie(SESSION_COOKIE)
    raise resp


async def dashboard(request: web.Request) -> web.Response:
    return _render("dashboard.html", request, {"status": request.app[BACKEND].status()})


async def api_status(request: web.Request) -> web.Response:
    return web.json_response(request.app[BACKEND].status())


async def live_feed(request: web.Request) -> web.StreamResponse:
    """Push the status whenever it changes (checked 4 times a second)."""
    ws = web.WebSocketResponse(heartbeat=20)
    await ws.prepare(request)
    backend = request.app[BACKEND]
    last = None
    reader = asyncio.get_running_loop().create_task(_drain(ws))
    try:
        while not ws.closed and not reader.done():
            snapshot = json.dumps(backend.status(), ensure_ascii=False, sort_keys=True)
            if snapshot != last:
                await ws.send_str(snapshot)
                last = snapshot
            await asyncio.sleep(0.25)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        await ws.close()
    return ws


async def _drain(ws: web.WebSocketResponse) -> None:
    async for msg in ws:
        if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
            break
