"""The box's settings: time zone, retention and disk limits changed here (applied at once,
audited); network, backups, certificate and languages shown (the network is the console's)."""
from __future__ import annotations

from aiohttp import web

from controller import audit
from firmware.errors import UserError
from web_admin.render import backend, call, message_of, render, t, user

FIELDS = ("time_zone", "retention_days", "disk_warn_free_mb", "disk_stop_free_mb")


async def page(request: web.Request, *, error: str | None = None, saved: str | None = None,
               form: dict | None = None, status: int = 200) -> web.Response:
    from zoneinfo import available_timezones
    view = await call(backend(request).settings_view)
    zones = sorted(z for z in available_timezones() if "/" in z and not z.startswith(
        ("Etc/", "SystemV/", "US/", "posix/", "right/")))
    return render("settings.html", request, {"s": view, "zones": zones, "error": error,
                                             "saved": saved, "form": form or {}}, status=status)


async def save(request: web.Request) -> web.Response:
    form = await request.post()
    changes = {k: str(form[k]) for k in FIELDS if k in form}
    b = backend(request)
    before = await call(b.settings_view)
    try:
        done = await call(b.settings_change, changes)
    except (UserError, ValueError) as exc:
        return await page(request, error=message_of(request, exc), form=changes, status=400)
    after = done["view"]
    if done["changed"]:
        await b.store.run(audit.record, who=user(request)["username"], action="change",
                          obj="setting", key=",".join(done["changed"]),
                          before={k: before.get(_shown(k)) for k in done["changed"]},
                          after={k: after.get(_shown(k)) for k in done["changed"]},
                          source=request.remote or "")
    notes = [t(request, "Saved and applied; nothing needed a restart.") if done["changed"] else
             t(request, "Nothing changed.")]
    if done["changed"] and not done["kept"]:
        notes.append(t(request, "The box runs without a configuration file: the change lasts "
                                "until its next start."))
    if after["retention_days"] > after.get("retention_setting_days", after["retention_days"]):
        notes.append(t(request, "The law of the running campaigns keeps recordings {n} days; "
                                "the longer of the two applies.", n=after["retention_days"]))
    return await page(request, saved=" ".join(notes))


def _shown(key: str) -> str:
    return "retention_setting_days" if key == "retention_days" else key
