"""Hardware profiles in the browser: list, view, edit the YAML with each problem beside its line."""
from __future__ import annotations

import asyncio

from aiohttp import web

from controller import audit
from firmware.errors import UserError
from web_admin.render import backend, call, message_of, render, t, user


async def page(request: web.Request) -> web.Response:
    lib = await call(backend(request).profile_library)
    return render("hardware.html", request, {"entries": lib.entries()})


async def profile(request: web.Request, *, text: str | None = None, problems=None,
                  saved: str | None = None, status: int = 200) -> web.Response:
    name = request.match_info["name"]
    lib = await call(backend(request).profile_library)
    if text is None:
        text = await asyncio.to_thread(lib.text, name)
    by_line: dict[int, list[str]] = {}
    for p in problems or []:
        # a problem's message is English with its values (a Msg): shown in the page's language
        by_line.setdefault(p.line, []).append(message_of(request, p.message))
    lines = [{"n": i, "text": ln, "problems": by_line.pop(i, [])}
             for i, ln in enumerate(text.split("\n"), start=1)]
    return render("hardware_profile.html", request, {
        "name": name, "text": text, "lines": lines, "problems": problems or [],
        "orphans": [m for ms in by_line.values() for m in ms], "saved": saved}, status=status)


async def save(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    form = await request.post()
    text = str(form.get("text", "")).replace("\r\n", "\n")
    b = backend(request)
    lib = await call(b.profile_library)
    try:
        before = await asyncio.to_thread(lib.text, name)
    except Exception:
        before = None
    # checked (YAML parsed, every field), written and fsynced: off the event loop
    problems = await asyncio.to_thread(lib.save, name, text)
    if problems:
        return await profile(request, text=text, problems=problems, status=400)
    await b.store.run(audit.record, who=user(request)["username"], action="edit",
                      obj="profile", key=name, before=before, after=text,
                      source=request.remote or "")
    try:
        done = await call(b.apply_profile, name)
    except (UserError, ValueError) as exc:
        return await profile(request, text=text, saved=t(
            request, "Saved, but not applied: {why}. The box uses it from its next start.",
            why=message_of(request, exc)))
    lines, busy = ", ".join(done["lines"]), ", ".join(done["busy"])
    saved = {
        "now": t(request, "Saved and applied: {lines} restarted with it; the other devices "
                          "kept working.", lines=lines),
        "after_calls": t(request, "Saved. A call is up on {busy}: the lines of this device "
                                  "take no new calls and switch to it when their calls end; "
                                  "the other devices keep working.", busy=busy),
        "next_start": t(request, "Saved. It adds or removes lines, so the box uses it from its "
                                 "next start."),
        "not_running": t(request, "Saved. The box does not run this profile now."),
    }[done["when"]]
    return await profile(request, text=text, saved=saved)
