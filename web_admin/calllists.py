"""Call lists in the browser: upload, see the columns, map them, import with progress, rejects."""
from __future__ import annotations

import asyncio
import secrets
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web

from controller import audit
from firmware.errors import UserError
from web_admin import i18n
from web_admin.backend import CALLLIST_FIELDS, CALLLIST_REQUIRED
from web_admin.labels import label
from web_admin.render import BACKEND, backend, call, lang_of, message_of, render, secure, t, user
from web_admin.supervisor import campaigns

log = structlog.get_logger(__name__)

UPLOAD_SUFFIXES = (".csv", ".txt", ".xlsx")
PHONES = tuple(f for f in CALLLIST_FIELDS if f.startswith("phone") and f != "phone_type")
MANY_ALLOWED = (*PHONES, "custom", "ignore")  # fields more than one column may have
KEEP_S = 3600.0  # an upload nobody imported is forgotten after an hour


@dataclass
class Upload:
    """One uploaded file on its way in: previewed, then imported in the background."""

    token: str
    campaign: str
    filename: str
    path: Path
    who: str
    at: float
    preview: dict = field(default_factory=dict)
    state: str = "uploaded"  # uploaded -> importing -> done | failed
    done: int = 0
    total: int = 0
    summary: dict | None = None
    error: str | None = None
    task: asyncio.Task | None = None


UPLOADS = web.AppKey("uploads", dict)


def setup(app: web.Application) -> None:
    app[UPLOADS] = {}
    app.on_cleanup.append(_forget_all)


async def _forget_all(app: web.Application) -> None:
    for up in list(app[UPLOADS].values()):
        if up.task is not None:
            up.task.cancel()
        shutil.rmtree(up.path.parent, ignore_errors=True)
    app[UPLOADS].clear()


def _uploads(request: web.Request) -> dict[str, Upload]:
    uploads: dict[str, Upload] = request.app[UPLOADS]
    now = asyncio.get_running_loop().time()
    for token, up in list(uploads.items()):  # forget the old ones nobody finished
        if now - up.at > KEEP_S and up.state != "importing":
            shutil.rmtree(up.path.parent, ignore_errors=True)
            del uploads[token]
    return uploads


def _mine(request: web.Request) -> Upload:
    up = _uploads(request).get(request.match_info["token"])
    if up is None or up.who != user(request)["username"]:
        raise web.HTTPNotFound()
    return up


async def upload(request: web.Request) -> web.Response:
    """Keep the file, show its columns and first rows with the mapping to choose."""
    form = await request.post()
    campaign = str(form.get("campaign", ""))
    upload_field = form.get("file")
    if not isinstance(upload_field, web.FileField) or not upload_field.filename:
        return await campaigns(request, error=t(request, "Choose a call list file."), status=400)
    filename = Path(upload_field.filename).name
    suffix = Path(filename).suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        return await campaigns(request, status=400, error=t(
            request, "{file}: not a call list; upload a .csv or .xlsx file.", file=filename))
    folder = Path(tempfile.mkdtemp(prefix="dialbox-upload-"))
    path = folder / f"list{suffix}"
    with path.open("wb") as out:
        await asyncio.to_thread(shutil.copyfileobj, upload_field.file, out)
    up = Upload(secrets.token_urlsafe(12), campaign, filename, path, user(request)["username"],
                asyncio.get_running_loop().time())
    try:
        up.preview = await call(backend(request).calllist_preview, campaign, path, filename)
    except UserError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        if "file" in exc.params:  # the person's file name, never the server's path
            exc.params["file"] = filename
        return await campaigns(request, error=message_of(request, exc), status=400)
    _uploads(request)[up.token] = up
    log.info("calllist_uploaded", user=up.who, campaign=campaign, columns=len(
        up.preview.get("columns", ())))
    return _mapping_page(request, up)


def _mapping_page(request: web.Request, up: Upload, *, error: str | None = None,
                  chosen: dict[int, str] | None = None, status: int = 200) -> web.Response:
    columns = up.preview.get("columns", [])
    guess = up.preview.get("mapping", {})
    chosen = chosen or {i: guess.get(c) or "custom" for i, c in enumerate(columns)}
    return render("calllist_mapping.html", request, {
        "up": up, "columns": columns, "rows": up.preview.get("rows", []), "chosen": chosen,
        "fields": CALLLIST_FIELDS, "required": CALLLIST_REQUIRED, "error": error},
        status=status)


async def start(request: web.Request) -> web.Response:
    """Import with the mapping the person chose; the page then shows the progress."""
    up = _mine(request)
    if up.state != "uploaded":
        raise web.HTTPSeeOther(f"/campaigns/import/{up.token}")
    form = await request.post()
    columns = up.preview.get("columns", [])
    chosen = {i: str(form.get(f"col{i}", "custom")) for i in range(len(columns))}
    error = _mapping_error(request, columns, chosen)
    if error:
        return _mapping_page(request, up, error=error, chosen=chosen, status=400)
    mapping = {columns[i]: f for i, f in chosen.items() if columns[i].strip()}
    up.state = "importing"
    up.total = int(up.preview.get("rows_total") or 0)
    lang, store = lang_of(request), backend(request).store
    source = request.remote or ""
    up.task = asyncio.get_running_loop().create_task(
        _run(request.app, up, mapping, lang, store, source))
    raise web.HTTPSeeOther(f"/campaigns/import/{up.token}")


def _mapping_error(request: web.Request, columns: list[str], chosen: dict[int, str]) -> str | None:
    lang = lang_of(request)
    unknown = [f for f in chosen.values() if f not in CALLLIST_FIELDS]
    if unknown:
        return t(request, "Choose what each column holds from the list.")
    if not any(f in PHONES for f in chosen.values()):
        return t(request, "Choose the column with the phone number: without it there is "
                          "nobody to call.")
    twice = sorted({f for f in chosen.values() if f not in MANY_ALLOWED
                    and list(chosen.values()).count(f) > 1})
    if twice:
        return t(request, "Each of these may be chosen for one column only: {fields}.",
                 fields=", ".join(label(lang, "field", f) for f in twice))
    return None


async def _run(app: web.Application, up: Upload, mapping: dict, lang: str, store: Any,
               source: str) -> None:
    loop = asyncio.get_running_loop()

    def progress(done: int, total: int) -> None:  # called from the import's thread
        loop.call_soon_threadsafe(_set_progress, up, done, total)

    try:
        up.summary = await call(app[BACKEND].import_calllist, up.campaign, up.path,
                                up.filename, mapping, lang, progress)
        await store.run(audit.record, who=up.who, action="import", obj="calllist",
                        key=up.campaign, after={"file": up.filename, "mapping": mapping, **{
                            k: up.summary.get(k) for k in ("imported", "updated", "rejected",
                                                           "duplicates", "derived_ids")}},
                        source=source)
        up.state = "done"  # once the import and its audit entry are both on disk
        up.done = up.total = max(up.total, up.done)
        log.info("calllist_imported", user=up.who, campaign=up.campaign,
                 imported=up.summary.get("imported"), rejected=up.summary.get("rejected"))
    except (UserError, ValueError) as exc:
        if isinstance(exc, UserError) and "file" in exc.params:
            exc.params["file"] = up.filename
        up.state, up.error = "failed", _message(lang, exc)
    except Exception:
        log.exception("calllist_import_failed", campaign=up.campaign)
        up.state = "failed"
        up.error = _message(lang, UserError(
            "Internal error. Details are in the log; tell a technician."))
    finally:
        shutil.rmtree(up.path.parent, ignore_errors=True)


def _message(lang: str, exc: BaseException) -> str:
    return i18n.message_of(lang, exc)


def _set_progress(up: Upload, done: int, total: int) -> None:
    up.done, up.total = done, max(total, up.total)


def _state(up: Upload) -> dict:
    return {"state": up.state, "done": up.done, "total": up.total, "summary": up.summary,
            "error": up.error}


async def page(request: web.Request) -> web.Response:
    """The import's progress, then its result with the reject report."""
    up = _mine(request)
    report = None
    if up.summary and up.summary.get("report"):
        report = Path(str(up.summary["report"])).name
    return render("calllist_import.html", request, {"up": up, "report": report})


async def state(request: web.Request) -> web.Response:
    return secure(web.json_response(_state(_mine(request))))
