"""The admin's page: who may log in, with which role; disable, reset; everyone's own password."""
from __future__ import annotations

import asyncio

import structlog
from aiohttp import web

from controller import audit
from controller import users as users_mod
from controller.users import ROLES
from firmware.errors import UserError
from web_admin.render import SESSION_COOKIE, backend, call, message_of, render, t, user

log = structlog.get_logger(__name__)


async def page(request: web.Request, *, error: str | None = None, form: dict | None = None,
               status: int = 200, done: str | None = None) -> web.Response:
    return render("users.html", request, {"users": await call(backend(request).users),
                                          "roles": ROLES, "error": error, "form": form or {},
                                          "done": done}, status=status)


async def _audit(request: web.Request, action: str, key: str, before=None, after=None) -> None:
    await backend(request).store.run(
        audit.record, who=user(request)["username"], action=action, obj="user", key=key,
        before=before, after=after, source=request.remote or "")


async def add(request: web.Request) -> web.Response:
    form = await request.post()
    username, role = str(form.get("username", "")).strip(), str(form.get("role", ""))
    try:
        await call(backend(request).user_add, username, str(form.get("password", "")), role)
    except (UserError, ValueError) as exc:
        return await page(request, error=message_of(request, exc),
                          form={"username": username, "role": role}, status=400)
    await _audit(request, "add", username, after={"role": role})
    log.info("user_added", by=user(request)["username"], user=username, role=role)
    raise web.HTTPSeeOther("/users")


async def disable(request: web.Request) -> web.Response:
    """Disable a user (sessions end at once) or enable again; never the last admin."""
    form = await request.post()
    username, off = str(form.get("username", "")), form.get("disabled") == "1"
    try:
        await call(backend(request).user_disable, username, off)
    except (UserError, ValueError) as exc:
        return await page(request, error=message_of(request, exc), status=400)
    await _audit(request, "disable" if off else "enable", username, before={"disabled": not off},
           after={"disabled": off})
    log.info("user_disabled" if off else "user_enabled", by=user(request)["username"],
             user=username)
    raise web.HTTPSeeOther("/users")


async def set_team(request: web.Request) -> web.Response:
    """Put a user in a team (campaigns can take whole teams)."""
    form = await request.post()
    username, team = str(form.get("username", "")), str(form.get("team", "")).strip()
    before = next((u.get("team") for u in await call(backend(request).users)
                   if u["username"] == username), None)
    try:
        await call(backend(request).user_team, username, team or None)
    except (UserError, ValueError) as exc:
        return await page(request, error=message_of(request, exc), status=400)
    await _audit(request, "team", username, before={"team": before}, after={"team": team or None})
    raise web.HTTPSeeOther("/users")


async def reset_password(request: web.Request) -> web.Response:
    """An admin sets a new password; the user's sessions end."""
    form = await request.post()
    username = str(form.get("username", ""))
    try:
        await call(backend(request).user_password, username, str(form.get("password", "")))
    except (UserError, ValueError) as exc:
        return await page(request, error=message_of(request, exc), status=400)
    await _audit(request, "reset_password", username)  # never the password itself
    log.info("user_password_reset", by=user(request)["username"], user=username)
    return await page(request, done=t(request, "The password of {username} was changed; their "
                                               "sessions ended.", username=username))


async def account(request: web.Request, *, error: str | None = None, done: str | None = None,
                  status: int = 200) -> web.Response:
    return render("account.html", request, {"error": error, "done": done}, status=status)


async def change_own_password(request: web.Request) -> web.Response:
    """Everyone changes their own password (the current one first); other sessions end."""
    form = await request.post()
    who = user(request)["username"]
    new = str(form.get("new", ""))
    if new != str(form.get("again", "")):
        return await account(request, status=400,
                             error=t(request, "The two new passwords differ."))
    try:
        store = backend(request).store
        if await asyncio.to_thread(users_mod.verify, store, who, str(form.get("old", ""))) \
                is None:
            raise UserError("the current password is wrong")
        await users_mod.new_password(store, who, new,
                                     keep_token=request.cookies.get(SESSION_COOKIE))
    except UserError as exc:
        return await account(request, error=message_of(request, exc), status=400)
    await _audit(request, "change_password", who)
    log.info("own_password_changed", user=who)
    return await account(request, done=t(request, "Your password was changed; your other "
                                                  "sessions ended."))
