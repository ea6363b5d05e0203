"""Live feeds: a WebSocket that pushes a snapshot whenever it changes."""
from __future__ import annotations

import asyncio
import json
from typing import Any, Callable
from urllib.parse import urlsplit

import structlog
from aiohttp import WSMsgType, web

from firmware.errors import UserError
from web_admin.render import call, message_of, t

log = structlog.get_logger(__name__)

POLL_S = 0.25


async def push_changes(request: web.Request, snapshot: Callable[[], Any]) -> web.WebSocketResponse:
    """Send `snapshot()` as JSON now and again each time it differs (checked 4 times a second)."""
    origin = request.headers.get("Origin")
    if origin is not None and urlsplit(origin).netloc != request.host:
        # a page from another site must not read the feed with this person's cookie
        raise web.HTTPForbidden(text="cross-origin WebSocket refused")
    ws = web.WebSocketResponse(heartbeat=20)
    await ws.prepare(request)
    last = None
    reader = asyncio.get_running_loop().create_task(_drain(ws))
    try:
        while not ws.closed and not reader.done():
            try:
                data = await call(snapshot)
            except (UserError, ValueError, LookupError) as exc:  # e.g. the user has no operator position
                data = {"error": message_of(request, exc)}
            except Exception:  # a fault below: say so once and close, the page reconnects
                log.exception("live_feed_failed", path=request.path)
                await ws.send_str(json.dumps({"error": t(
                    request, "Internal error. Details are in the log; tell a technician.")}))
                break
            text = json.dumps(data, ensure_ascii=False, sort_keys=True, default=str)
            if text != last:
                await ws.send_str(text)
                last = text
            await asyncio.sleep(POLL_S)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        await ws.close()
    return ws


async def _drain(ws: web.WebSocketResponse) -> None:
    async for msg in ws:
        if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
            break
