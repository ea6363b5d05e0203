"""The operator's desk: ready toggle, the debtor's card live over a WebSocket, outcomes, hang-up."""
from __future__ import annotations

import json

import structlog
from aiohttp import web

from firmware.errors import InputError, UserError
from web_admin import i18n
from web_admin.backend import DISPOSITIONS
from web_admin.render import (backend, call, json_error, lang_of, message_of, render, secure, t,
                              user)
from web_admin.live import stamped
from web_admin.rtc import headset_feed

log = structlog.get_logger(__name__)

GONE_AFTER_S = 15.0  # desk.js beats every 5 s; this much silence counts as a desk gone
OPEN_DESKS = web.AppKey("open_desks", dict)  # user name -> desk feeds open now
BREAK_REASONS = ("lunch", "rest", "training", "technical", "other")

# Outcome buttons in the order of their keyboard shortcuts 1..9; the fields each one asks for.
OUTCOMES = (("promise", ("amount", "date")), ("rpc", ()), ("callback", ("at",)),
            ("refusal", ()), ("dispute", ()), ("third_party", ()), ("wrong_number", ()),
            ("complaint", ("text",)), ("no_contact", ()))
assert sorted(k for k, _ in OUTCOMES) == sorted(DISPOSITIONS)


def readable(snapshot: object, lang: str) -> object:
    """The desk as the operator reads it: money and dates written the way of the page's locale."""
    if not isinstance(snapshot, dict) or not isinstance(snapshot.get("call"), dict):
        return snapshot
    a = snapshot["call"].get("account")
    if not isinstance(a, dict):
        return snapshot
    cur = a.get("currency") or None
    a = dict(a, debt_text=i18n.money(a.get("debt_amount"), lang, cur))
    a["promises"] = [dict(p, amount_text=i18n.money(p.get("amount"), lang, cur),
                          date_text=i18n.day(p.get("date"), lang))
                     for p in a.get("promises") or ()]
    a["history"] = [dict(h, at_text=i18n.when(h.get("at"), lang)) for h in a.get("history") or ()]
    a["sms_received"] = [dict(m, at_text=i18n.when(m.get("at"), lang))
                         for m in a.get("sms_received") or ()]
    return dict(snapshot, call=dict(snapshot["call"], account=a))


async def _desk(request: web.Request) -> object:
    return readable(await call(backend(request).desk, user(request)["username"]),
                    lang_of(request))


async def page(request: web.Request) -> web.Response:
    error = None
    try:
        snapshot = stamped(await _desk(request))
    except (UserError, ValueError, LookupError) as exc:
        snapshot, error = None, message_of(request, exc)
    return render("desk.html", request, {
        "outcomes": OUTCOMES, "error": error, "break_reasons": BREAK_REASONS,
        "snapshot_json": json.dumps(snapshot, ensure_ascii=False, default=str)
        .replace("</", "<\\/")})


async def api_desk(request: web.Request) -> web.Response:
    return secure(web.json_response(await _desk(request)))


async def live_feed(request: web.Request) -> web.StreamResponse:
    """The desk's live card (its socket also carries the headset's WebRTC signalling); while
    it is open (and heard from) the operator is at his desk.

    When the last desk page of a person closes or goes silent, he is not ready: no call is put
    through to an empty desk (one reserved for him is moved), until he comes back and presses
    Ready.
    """
    username = user(request)["username"]
    b = backend(request)
    open_desks = request.app[OPEN_DESKS]
    open_desks[username] = open_desks.get(username, 0) + 1
    try:
        await call(b.desk_presence, username, True)
        return await headset_feed(
            request, lambda: _desk(request), leg=lambda: call(b.desk_audio, username),
            notify=lambda up, why: call(b.desk_audio_state, username, up, why),
            silence_s=GONE_AFTER_S, subscribe=lambda push: b.desk_subscribe(username, push))
    finally:
        open_desks[username] -= 1
        if not open_desks[username]:
            del open_desks[username]
            await call(b.desk_presence, username, False)
            log.info("desk_gone", user=username)


async def _body(request: web.Request) -> dict:
    try:
        body = await request.json()
    except ValueError:
        raise InputError("The request body is not JSON.") from None
    if not isinstance(body, dict):
        raise InputError("The request body must be a JSON object.")
    return body


async def _after(request: web.Request) -> web.Response:
    """Every desk action answers with the desk as it is now, so the page redraws at once."""
    return secure(web.json_response({"ok": True, "desk": stamped(await _desk(request))}))


async def ready(request: web.Request) -> web.Response:
    body = await _body(request)
    if not isinstance(body.get("ready"), bool):
        return json_error(t(request, "ready must be true or false"))
    await call(backend(request).desk_ready, user(request)["username"], body["ready"])
    log.info("desk_ready", user=user(request)["username"], ready=body["ready"])
    return await _after(request)


async def take_break(request: web.Request) -> web.Response:
    """A break with a reason: now when idle, after the call and its wrap-up otherwise."""
    body = await _body(request)
    reason = body.get("reason")
    if reason not in BREAK_REASONS:
        return json_error(t(request, "choose the reason for the break"))
    try:
        await call(backend(request).desk_break, user(request)["username"], reason)
    except UserError as exc:
        return json_error(message_of(request, exc))
    log.info("desk_break", user=user(request)["username"])
    return await _after(request)


async def hangup(request: web.Request) -> web.Response:
    body = await _body(request)
    await call(backend(request).desk_hangup, user(request)["username"],
               str(body.get("call_id", "")))
    log.info("desk_hangup", user=user(request)["username"], call_id=body.get("call_id"))
    return await _after(request)


async def take(request: web.Request) -> web.Response:
    """Take the inbound call ringing on the desk: the audio starts when the line confirms."""
    return await _preview_action(request, "desk_take")


async def dial(request: web.Request) -> web.Response:
    """Preview mode: place the call of the card on the desk."""
    return await _preview_action(request, "desk_dial")


async def skip(request: web.Request) -> web.Response:
    """Preview mode: pass on the card; the next one comes."""
    return await _preview_action(request, "desk_skip")


async def _preview_action(request: web.Request, method: str) -> web.Response:
    """A desk action on the call shown (dial, skip, take): its refusal is said on the page."""
    body = await _body(request)
    try:
        await call(getattr(backend(request), method), user(request)["username"],
                   str(body.get("call_id", "")))
    except UserError as exc:
        return secure(web.json_response({"error": message_of(request, exc)}, status=400))
    log.info(method, user=user(request)["username"], call_id=body.get("call_id"))
    return await _after(request)


async def disposition(request: web.Request) -> web.Response:
    body = await _body(request)
    kind = body.get("kind")
    if kind not in DISPOSITIONS:
        return json_error(t(request, "Unknown outcome {kind}.", kind=kind))
    details = body.get("details") or {}
    if not isinstance(details, dict):
        return json_error(t(request, "details must be an object"))
    fields = dict(OUTCOMES)[kind]
    note = str(details.get("note") or "").strip()
    details = {k: str(details.get(k, "")).strip() for k in fields}
    if note:  # free text on any outcome, kept in the debtor's history
        details["note"] = note
    if details.get("amount"):  # typed in the page's locale: "15 000,50" in Russian
        try:
            details["amount"] = str(i18n.parse_amount(details["amount"], lang_of(request)))
        except ValueError:
            return secure(web.json_response({"error": t(
                request, "amount: enter the promised sum, e.g. 5000"), "kind": kind}, status=400))
    try:
        await call(backend(request).desk_disposition, user(request)["username"],
                   str(body.get("call_id", "")), kind, details)
    except (ValueError, UserError) as exc:
        return secure(web.json_response({"error": message_of(request, exc), "kind": kind},
                                        status=400))
    log.info("desk_disposition", user=user(request)["username"], call_id=body.get("call_id"),
             kind=kind)
    return await _after(request)


async def recording(request: web.Request) -> web.StreamResponse:
    """A recorded conversation for the card's player, with HTTP ranges (seeking); each playback
    (the player's first request, not its seeks) is audited by the backend."""
    call_id = request.match_info["call_id"]
    ranged = request.headers.get("Range", "")
    playback = not ranged or ranged.replace(" ", "").startswith("bytes=0-")
    try:
        path = await call(backend(request).recording_file, user(request)["username"], call_id,
                          request.remote or "", playback)
    except FileNotFoundError:
        raise web.HTTPNotFound() from None
    except PermissionError:
        log.info("recording_refused", user=user(request)["username"], call_id=call_id)
        return json_error(t(request, "you may play only the recordings of the debtor you are "
                                     "on a call with"), 403)
    if playback:
        log.info("recording_played", user=user(request)["username"], call_id=call_id)
    return secure(web.FileResponse(path, headers={"Content-Type": "audio/ogg",
                                                  "Cache-Control": "private, no-store"}))
