"""The appliance as ``dialbox run`` runs it (``dialbox.service.serve``), in this test's loop."""
from __future__ import annotations

import asyncio
import re
import socket
from contextlib import asynccontextmanager

import aiohttp


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@asynccontextmanager
async def running(cfg, settings, *, announce=None):
    """Yields (appliance, serve task) once booted; stops the box on the way out."""
    from dialbox.service import serve
    up = asyncio.Event()
    held: list = []
    task = asyncio.create_task(serve(cfg, settings, ready=lambda a: (held.append(a), up.set()),
                                     announce=announce or (lambda *a, **k: None)))
    waiter = asyncio.create_task(up.wait())
    try:
        await asyncio.wait({task, waiter}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
        if task.done():
            task.result()  # boot failed: its error
        assert held, "the box did not boot in 60 s"
        yield held[0], task
    finally:
        if held and not task.done():
            held[0].runtime.request_stop()
        try:
            await asyncio.wait_for(asyncio.shield(task), 60)
        except asyncio.TimeoutError:
            for t in asyncio.all_tasks():  # what the stop waits for, to see why
                t.print_stack(limit=6)
            raise


async def dashboard(app) -> str:
    """The dashboard as the admin sees it, over HTTP."""
    return (await dashboards(app, None))[0]


async def dashboards(app, *langs: str | None) -> list[str]:
    """The dashboard in each of ``langs`` (None: the default, Russian), with one login."""
    return await admin_pages(app, *(f"?lang={lang}" if lang else "" for lang in langs))


async def admin_pages(app, *paths: str) -> list[str]:
    """Pages of the web admin (paths after the base URL) as the admin sees them, one login."""
    base = app.runtime.web_urls[0]
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(base + "login") as r:
            csrf = re.search(r'name="csrf" value="([^"]+)"', await r.text()).group(1)
        async with http.post(base + "login", data={"username": "admin", "csrf": csrf,
                                                   "password": app.initial_password}) as r:
            assert r.status == 200
        pages = []
        for path in paths:
            async with http.get(base + path) as r:
                pages.append(await r.text())
        return pages


def cli(argv: list[str]) -> int:
    """``dialbox ARGV`` in this process, as ``dialbox.cli.main`` runs it but without configuring
    logging (which caches structlog loggers and blinds later tests' log captures)."""
    import sys
    from dialbox.cli import build_parser
    from firmware.errors import UserError
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"dialbox: error: {exc}", file=sys.stderr)
        return 1
