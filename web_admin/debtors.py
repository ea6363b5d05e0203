"""Debtors: search by phone, account number or name; the card with everything known; edits."""
from __future__ import annotations

from aiohttp import web

from controller import audit, debtors
from firmware.errors import UserError
from web_admin.render import backend, call, message_of, render, user


async def page(request: web.Request) -> web.Response:
    q = request.query.get("q", "").strip()
    store = backend(request).store
    results = []
    if q:  # the new rows indexed on the store's writer, the search on its reader
        await store.run(debtors.index_pending)
        results = await store.read(debtors.search, q, fresh=False)
    return render("debtors.html", request, {"q": q, "results": results, "searched": bool(q)})


async def card(request: web.Request, *, error: str | None = None,
               status: int = 200) -> web.Response:
    pk = _pk(request)
    store = backend(request).store
    data = debtors.card(store, pk)
    for r in data["recordings"]:  # played through the audited, permission-checked route
        r["url"] = f"/recordings/{r['call_id']}"
    b = backend(request)
    try:  # the law's part of the card: refusals and why the debtor was (not) called
        data["refusals"] = await call(b.refusals, data["account_id"])
        data["evidence"] = await call(b.compliance_evidence, data["account_id"])
    except UserError:
        data["refusals"], data["evidence"] = [], None
    extra = getattr(b, "debtor_extra", None)
    if extra is not None:  # recordings: what other parts of the box add
        data.update(await _maybe_await(extra(pk, user(request))))
    return render("debtor_card.html", request, {"d": data, "error": error}, status=status)


async def refusal(request: web.Request) -> web.Response:
    """A refusal of interaction (or a third party's withdrawal of consent) taken on the card."""
    pk = _pk(request)
    form = await request.post()
    account_id = debtors.card(backend(request).store, pk)["account_id"]
    try:
        await call(backend(request).refusal_record, account_id, str(form.get("kind", "")),
                   "card", user(request)["username"], phone=str(form.get("phone", "")).strip(),
                   note=str(form.get("note", "")).strip())
    except (UserError, ValueError) as exc:
        return await card(request, error=message_of(request, exc), status=400)
    raise web.HTTPSeeOther(f"/debtors/{pk}")


async def refusal_exception(request: web.Request) -> web.Response:
    """An enforcement document or a representative: the law's exceptions to a refusal."""
    pk = _pk(request)
    form = await request.post()
    try:
        await call(backend(request).refusal_exception, _int(form.get("refusal")),
                   str(form.get("kind", "")), str(form.get("reference", "")).strip(),
                   user(request)["username"], phone=str(form.get("phone", "")).strip())
    except (UserError, ValueError) as exc:
        return await card(request, error=message_of(request, exc), status=400)
    raise web.HTTPSeeOther(f"/debtors/{pk}")


async def phone(request: web.Request) -> web.Response:
    pk = _pk(request)
    form = await request.post()
    store = backend(request).store
    who, where = user(request)["username"], request.remote or ""
    try:
        if form.get("phone_id"):
            await store.run(debtors.set_phone_status, pk, _int(form.get("phone_id")),
                            str(form.get("status", "")), by=who, source=where)
        else:
            await store.run(debtors.add_phone, pk, str(form.get("number", "")),
                            str(form.get("kind", "mobile")), by=who, source=where)
    except (UserError, ValueError) as exc:
        return await card(request, error=message_of(request, exc), status=400)
    raise web.HTTPSeeOther(f"/debtors/{pk}")


async def flag(request: web.Request) -> web.Response:
    pk = _pk(request)
    form = await request.post()
    store = backend(request).store
    who = user(request)["username"]
    if form.get("clear"):
        await store.run(_clear_flag, pk, who, request.remote or "")
    else:
        kind = str(form.get("kind", "complaint"))
        text = str(form.get("text", "")).strip() or None
        await store.run(_flag, pk, kind, text, who, request.remote or "")
    raise web.HTTPSeeOther(f"/debtors/{pk}")


def _clear_flag(store, pk: int, who: str, source: str) -> None:
    """The flag is cleared and audited in one transaction (on the store's writer)."""
    with store.tx():
        store.clear_flag(pk, who)
        audit.record(store, who=who, action="clear", obj="complaint", key=str(pk), source=source)


def _flag(store, pk: int, kind: str, text: str | None, who: str, source: str) -> None:
    with store.tx():
        store.flag_account(pk, kind, text, who)
        audit.record(store, who=who, action="flag", obj="complaint", key=str(pk),
                     after={"kind": kind, "text": text}, source=source)


def _pk(request: web.Request) -> int:
    try:
        return int(request.match_info["pk"])
    except ValueError:
        raise web.HTTPNotFound() from None


def _int(value) -> int:
    try:
        return int(str(value))
    except ValueError:
        raise UserError("no such entry on this card") from None


async def _maybe_await(value):
    import inspect
    return await value if inspect.isawaitable(value) else value
