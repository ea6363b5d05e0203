"""Hardware profiles in the browser: list, view, edit the YAML with each problem beside its line."""
from __future__ import annotations

from aiohttp import web

from controller import audit
from web_admin.render import backend, call, message_of, render, t, user


async def page(request: web.Request) -> web.Response:
    lib = await call(backend(request).profile_library)
    return render("hardware.html", request, {"entries": lib.entries()})


async def profile(request: web.Request, *, text: str | None = None, problems=None,
                  saved: str | None = None, status: int = 200) -> web.Response:
    name = request.match_info["name"]
    lib = await call(backend(request).profile_library)
    if text is None:
        text = lib.text(name)
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
        before = lib.text(name)
    except Exception:
        before = None
    problems = lib.save(name, text)
    if problems:
        return await profile(request, text=text, problems=problems, status=400)
    audit.record(b.store, who=user(request)["username"], action="edit", obj="profile",
                 key=name, before=before, after=text, source=request.remote or "")
    applied = await call(b.apply_profile, name)
    saved = (t(request, "Saved and applied; the other devices kept working.") if applied else
             t(request, "Saved. The box uses it from its next start."))
    return await profile(request, text=text, saved=saved)
