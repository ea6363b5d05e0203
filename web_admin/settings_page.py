"""The box's settings as they stand: time zone, network, retention, backups, certificate, languages."""
from __future__ import annotations

from aiohttp import web

from web_admin.render import backend, call, render


async def page(request: web.Request) -> web.Response:
    view = await call(backend(request).settings_view)
    return render("settings.html", request, {"s": view})
