"""The admin's page: who may log in, with which role."""
from __future__ import annotations

import structlog
from aiohttp import web

from controller.users import ROLES
from firmware.errors import UserError
from web_admin.render import backend, call, message_of, render, user

log = structlog.get_logger(__name__)


async def page(request: web.Request, *, error: str | None = None, form: dict | None = None,
               status: int = 200) -> web.Response:
    return render("users.html", request, {"users": await call(backend(request).users),
                                          "roles": ROLES, "error": error, "form": form or {}},
                  status=status)


async def add(request: web.Request) -> web.Response:
    form = await request.post()
    username, role = str(form.get("username", "")).strip(), str(form.get("role", ""))
    try:
        await call(backend(request).user_add, username, str(form.get("password", "")), role)
    except (UserError, ValueError) as exc:
        return await page(request, error=message_of(request, exc), form={"username": username, "role": role},
                          status=400)
    log.info("user_added", by=user(request)["username"], user=username, role=role)
    raise web.HTTPSeeOther("/users")
