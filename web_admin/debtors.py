"""Debtors: search by phone, account number or name; the card with everything known; edits."""
from __future__ import annotations

from aiohttp import web

from controller import debtors
from web_admin.render import backend, render, user


async def page(request: web.Request) -> web.Response:
    q = request.query.get("q", "").strip()
    store = backend(request).store
    results = debtors.search(store, q) if q else []
    return render("debtors.html", request, {"q": q, "results": results, "searched": bool(q)})


async def card(request: web.Request) -> web.Response:
    pk = _pk(request)
    store = backend(request).store
    data = debtors.card(store, pk)
    extra = getattr(backend(request), "debtor_extra", None)
    if extra is not None:  # recordings, refusals, evidence: what other parts of the box add
        data.update(await _maybe_await(extra(pk, user(request))))
    return render("debtor_card.html", request, {"d": data})


async def phone(request: web.Request) -> web.Response:
    pk = _pk(request)
    form = await request.post()
    store = backend(request).store
    who, where = user(request)["username"], request.remote or ""
    if form.get("phone_id"):
        debtors.set_phone_status(store, pk, _int(form.get("phone_id")),
                                 str(form.get("status", "")), by=who, source=where)
    else:
        debtors.add_phone(store, pk, str(form.get("number", "")), str(form.get("kind", "mobile")),
                          by=who, source=where)
    raise web.HTTPSeeOther(f"/debtors/{pk}")


async def flag(request: web.Request) -> web.Response:
    pk = _pk(request)
    form = await request.post()
    store = backend(request).store
    who = user(request)["username"]
    from controller import audit
    if form.get("clear"):
        store.clear_flag(pk, who)
        audit.record(store, who=who, action="clear", obj="complaint", key=str(pk),
                     source=request.remote or "")
    else:
        kind = str(form.get("kind", "complaint"))
        text = str(form.get("text", "")).strip() or None
        store.flag_account(pk, kind, text, who)
        audit.record(store, who=who, action="flag", obj="complaint", key=str(pk),
                     after={"kind": kind, "text": text}, source=request.remote or "")
    raise web.HTTPSeeOther(f"/debtors/{pk}")


def _pk(request: web.Request) -> int:
    try:
        return int(request.match_info["pk"])
    except ValueError:
        raise web.HTTPNotFound() from None


def _int(value) -> int:
    try:
        return int(str(value))
    except ValueError:
        raise ValueError("no such phone on this account") from None


async def _maybe_await(value):
    import inspect
    return await value if inspect.isawaitable(value) else value
