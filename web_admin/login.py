"""Signing in and out, and the public health check."""
from __future__ import annotations

import asyncio
import math
import secrets

import structlog
from aiohttp import web

from controller import users
from web_admin.render import BACKEND, HOME, SESSION_COOKIE, THROTTLE, render, t

log = structlog.get_logger(__name__)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response(request.app[BACKEND].health())


async def login_form(request: web.Request, *, error: str | None = None,
                     status: int = 200, wait_s: int = 0) -> web.Response:
    token = request.cookies.get("dialbox_login_csrf") or secrets.token_urlsafe(24)
    resp = render("login.html", request, {"error": error, "login_csrf": token}, status=status)
    if wait_s:
        resp.headers["Retry-After"] = str(wait_s)
    resp.set_cookie("dialbox_login_csrf", token, httponly=True, samesite="Strict")
    return resp


async def login_submit(request: web.Request) -> web.Response:
    form = await request.post()
    cookie = request.cookies.get("dialbox_login_csrf", "")
    if not cookie or not secrets.compare_digest(str(form.get("csrf", "")), cookie):
        return await login_form(request, status=403, error=t(
            request, "The form expired: reload the page and try again."))
    store = request.app[BACKEND].store
    throttle = request.app[THROTTLE]
    username = str(form.get("username", ""))
    wait = throttle.wait_s(username, request.remote)
    if wait > 0:  # even the right password waits: guessing must cost time
        log.warning("login_throttled", remote=request.remote, wait_s=round(wait, 1))
        wait_s = max(1, math.ceil(wait))
        return await login_form(request, status=429, wait_s=wait_s, error=t(
            request, "Too many failed sign-ins. Try again in {s} s.", s=wait_s))
    who = await asyncio.to_thread(users.verify, store, username, str(form.get("password", "")))
    if who is None:
        backoff = throttle.failed(username, request.remote)
        log.warning("login_failed", remote=request.remote, backoff_s=backoff)
        return await login_form(request, status=401,
                                error=t(request, "Wrong user name or password."))
    throttle.succeeded(username, request.remote)
    token, _ = await store.run(users.open_session, who["id"], remote=request.remote,
                               agent=request.headers.get("User-Agent"))
    log.info("login", user=who["username"], role=who["role"])
    resp = web.HTTPFound(HOME.get(who["role"], "/"))
    resp.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="Strict",
                    max_age=users.SESSION_TTL_S)
    resp.del_cookie("dialbox_login_csrf")
    raise resp


async def logout(request: web.Request) -> web.Response:
    await request.app[BACKEND].store.run(users.close_session,
                                         request.cookies.get(SESSION_COOKIE, ""))
    resp = web.HTTPFound("/login")
    resp.del_cookie(SESSION_COOKIE)
    raise resp
