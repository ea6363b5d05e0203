"""Live feeds: a WebSocket that pushes a snapshot whenever it changes (told at once by the box
where it can, else seen by polling)."""
from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any, Awaitable, Callable
from urllib.parse import urlsplit

import structlog
from aiohttp import WSMsgType, web

from firmware.errors import UserError
from web_admin.render import call, message_of, t

log = structlog.get_logger(__name__)

POLL_S = 0.25
_SEQ = itertools.count(1)


def stamped(view: Any) -> Any:
    """The view with its place (``seq``) in the order this box made views. A page keeps the
    newest it was given: an action's answer that a live push overtook on the way must not
    redraw the older state over the newer one (the feed would not send the newer again)."""
    return dict(view, seq=next(_SEQ)) if isinstance(view, dict) else view


OnMessage = Callable[[web.WebSocketResponse, dict], Awaitable[None]]
OnClose = Callable[[web.WebSocketResponse], Awaitable[None]]
Subscribe = Callable[[Callable[[], "asyncio.Future[None]"]], Callable[[], None]]


class _Pushes:
    """Asks for a snapshot now; each asker's future is done once the one after it was sent."""

    def __init__(self) -> None:
        self.wake = asyncio.Event()
        self.waiting: list[asyncio.Future[None]] = []

    def push(self) -> "asyncio.Future[None]":
        fut = asyncio.get_running_loop().create_future()
        self.waiting.append(fut)
        self.wake.set()
        return fut

    def take(self) -> list[asyncio.Future[None]]:
        self.wake.clear()
        waiting, self.waiting = self.waiting, []
        return waiting

    @staticmethod
    def done(futures: list[asyncio.Future[None]]) -> None:
        for f in futures:
            if not f.done():
                f.set_result(None)


async def push_changes(request: web.Request, snapshot: Callable[[], Any], *,
                       on_message: OnMessage | None = None,
                       on_close: OnClose | None = None,
                       silence_s: float | None = None,
                       subscribe: Subscribe | None = None) -> web.WebSocketResponse:
    """Send `snapshot()` as JSON now and again each time it differs (checked 4 times a second,
    and at once when the box pushes: `subscribe(push)` gives it the push and returns the end).

    JSON objects the page sends go to `on_message` (the desk's WebRTC signalling); `on_close`
    is awaited once the socket is gone, whatever closed it. With ``silence_s`` the page must
    say something (its heartbeat) at least that often, or the feed is closed: a frozen tab or a
    dead network counts as a page gone."""
    origin = request.headers.get("Origin")
    if origin is not None and urlsplit(origin).netloc != request.host:
        # a page from another site must not read the feed with this person's cookie
        raise web.HTTPForbidden(text="cross-origin WebSocket refused")
    ws = web.WebSocketResponse(heartbeat=20)
    await ws.prepare(request)
    last = None
    loop = asyncio.get_running_loop()
    heard = [loop.time()]
    reader = loop.create_task(_drain(ws, on_message, heard))
    pushes = _Pushes()
    unsubscribe = subscribe(pushes.push) if subscribe is not None else None
    asked: list[asyncio.Future[None]] = []
    try:
        while not ws.closed and not reader.done():
            asked = pushes.take()
            if silence_s is not None and loop.time() - heard[0] > silence_s:
                log.info("live_feed_silent", path=request.path)
                break
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
                await ws.send_str(json.dumps(stamped(data), ensure_ascii=False, default=str))
                last = text
            pushes.done(asked)
            try:
                await asyncio.wait_for(pushes.wake.wait(), POLL_S)
            except asyncio.TimeoutError:
                pass
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        if unsubscribe is not None:
            unsubscribe()
        pushes.done(asked + pushes.take())
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        await ws.close()
        if on_close is not None:
            await on_close(ws)
    return ws


async def _drain(ws: web.WebSocketResponse, on_message: OnMessage | None,
                 heard: list[float]) -> None:
    async for msg in ws:
        if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
            break
        heard[0] = asyncio.get_running_loop().time()
        if on_message is None or msg.type != WSMsgType.TEXT:
            continue
        try:
            data = json.loads(msg.data)
        except ValueError:
            continue
        if not isinstance(data, dict):
            continue
        try:
            await on_message(ws, data)
        except (ValueError, UserError) as exc:  # a message out of turn: say so, keep the feed
            await ws.send_str(json.dumps({"error": str(exc)}, ensure_ascii=False))
        except Exception:
            log.exception("live_message_failed")
