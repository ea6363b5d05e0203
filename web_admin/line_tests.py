"""Test calls and test SMS that show their progress: started at once, then polled.

A test call takes up to a minute (ringing, answer, hang-up); the page no longer waits for it.
A job runs in the background and reports its stage (dialing, ringing, answered...) and the
seconds since it started; the page asks every half second and shows the result at the end.
"""
from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass

import structlog
from aiohttp import web

from controller import audit
from firmware.errors import UserError
from web_admin.labels import release_reason
from web_admin.render import BACKEND, backend, call, lang_of, message_of, user

log = structlog.get_logger(__name__)

JOBS = web.AppKey("line_test_jobs", dict)
KEEP_S = 600  # a finished job is kept this long for the page to read
MAX_JOBS = 100


@dataclass
class Job:
    line: str
    action: str
    clock: object  # the box's clock (its now() is loop time)
    started: float = 0.0
    stage: str = "starting"
    state: str = "running"  # running, done, failed
    result: dict | None = None
    error: str | None = None
    ended: float | None = None
    task: asyncio.Task | None = None

    def __post_init__(self) -> None:
        self.started = self.clock.now()

    def view(self) -> dict:
        end = self.ended or self.clock.now()
        return {"line": self.line, "action": self.action, "state": self.state,
                "stage": self.stage, "elapsed_s": round(end - self.started, 1),
                "result": self.result, "error": self.error}


async def start(request: web.Request) -> web.Response:
    form = await request.post() if request.content_type != "application/json" \
        else await request.json()
    line, action = str(form.get("line", "")), str(form.get("action", ""))
    if action not in ("test_call", "test_sms"):
        raise UserError("unknown action {action}", action=action)
    number = str(form.get("number", "")).strip()
    if not number:
        raise UserError("Enter a number for the test call.")
    jobs = _jobs(request.app)
    job = Job(line, action, request.app[BACKEND].store.clock)
    kw = {"number": number, "progress": lambda stage: setattr(job, "stage", stage)}
    if action == "test_sms":
        kw["text"] = str(form.get("text", ""))
    who, lang = user(request)["username"], lang_of(request)

    async def run() -> None:
        try:
            out = dict(await call(backend(request).line_action, line, action, **kw) or {})
            if "reason" in out:  # why the call ended, in the language of the page that asked
                out["reason"] = release_reason(lang, out["reason"], out.get("cause"),
                                               out.get("result"))
            job.result = out
            job.state = "done"
        except (UserError, ValueError) as exc:
            job.state, job.error = "failed", message_of(request, exc)
        except Exception:
            log.exception("line_test_failed", line=line, action=action)
            job.state, job.error = "failed", message_of(request, UserError("internal error"))
        finally:
            job.ended = job.clock.now()

    job_id = secrets.token_urlsafe(9)
    jobs[job_id] = job
    job.task = asyncio.get_running_loop().create_task(run())
    await request.app[BACKEND].store.run(audit.record, who=who, action=action, obj="line",
                                         key=line, after={"number": number},
                                         source=request.remote or "")
    log.info("line_test_started", user=who, line=line, action=action)
    return web.json_response({"job": job_id, **job.view()})


async def status(request: web.Request) -> web.Response:
    job = _jobs(request.app).get(request.match_info["job"])
    if job is None:
        raise web.HTTPNotFound()
    return web.json_response(job.view())


def _jobs(app: web.Application) -> dict[str, Job]:
    jobs = app[JOBS]
    now = app[BACKEND].store.clock.now()
    for key in [k for k, j in jobs.items() if j.ended and now - j.ended > KEEP_S]:
        del jobs[key]
    if len(jobs) >= MAX_JOBS:
        raise UserError("too many tests at once; wait for one to finish")
    return jobs


async def cancel_all(app: web.Application) -> None:
    """On shutdown: no test job outlives the web admin."""
    tasks = [j.task for j in app[JOBS].values() if j.task and not j.task.done()]
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
