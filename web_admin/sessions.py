"""Sessions an admin can see and end: who is signed in, from where, since when."""
from __future__ import annotations

from aiohttp import web

from controller import audit, users
from web_admin.render import BACKEND, USER, render


async def page(request: web.Request) -> web.Response:
    store = request.app[BACKEND].store
    return render("sessions.html", request, {"sessions": users.sessions(store),
                                             "mine": request[USER].get("session")})


async def revoke(request: web.Request) -> web.Response:
    form = await request.post()
    store = request.app[BACKEND].store
    sid = str(form.get("session", ""))
    await store.run(_revoke, sid, request[USER]["username"], request.remote or "")
    raise web.HTTPSeeOther("/sessions")


def _revoke(store, sid: str, who: str, source: str) -> None:
    """End a session and audit it, in one transaction."""
    username = users.revoke_session(store, sid)
    if username is not None:
        audit.record(store, who=who, action="revoke", obj="session", key=username,
                     before={"session": sid}, source=source)
