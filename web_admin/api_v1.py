"""The API for integrators under /api/v1: scoped bearer tokens, an OpenAPI document, cursors.

A sub-application of its own: no cookies, so no CSRF; every route but the document needs a token
with the route's scope. Errors are JSON {"error": "..."} with the status the document names.
"""
from __future__ import annotations

import json

import structlog
from aiohttp import web

from controller import api_tokens, crm
from firmware.errors import UserError
from web_admin.render import BACKEND, call, secure

log = structlog.get_logger(__name__)

INTEGRATION = web.RequestKey("integration", dict)
MAX_BODY = 8 * 1024 * 1024
CAMPAIGN_ACTIONS = ("start", "pause")
MAX_CURSOR = 2 ** 63 - 1  # SQLite's largest integer

# (method, path, handler name, scope, summary)
ENDPOINTS = (
    ("GET", "/campaigns", "list_campaigns", "read_results", "Campaigns and their counters"),
    ("POST", "/campaigns/{name}/actions", "campaign_action", "control_campaigns",
     "Start or pause a campaign"),
    ("POST", "/campaigns/{name}/debts", "push_debts", "import_leads",
     "Insert or update debts in a campaign"),
    ("POST", "/payments", "push_payments", "import_payments", "Payments received"),
    ("GET", "/outcomes", "pull_outcomes", "read_results",
     "Finished calls and their outcomes, after a cursor"),
    ("GET", "/promises", "pull_promises", "read_results",
     "Promises to pay made or settled, after a cursor"),
)


def make_api(backend) -> web.Application:
    api = web.Application(middlewares=[_errors, _token], client_max_size=MAX_BODY)
    api[BACKEND] = backend
    api.router.add_get("/openapi.json", openapi, name="openapi")
    for method, path, handler, scope, _ in ENDPOINTS:
        api.router.add_route(method, path, globals()[handler], name=handler)
    return api


def _json_error(message: str, status: int) -> web.Response:
    return secure(web.json_response({"error": message}, status=status))


@web.middleware
async def _errors(request: web.Request, handler):
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status >= 400:
            return _json_error(exc.reason or "error", exc.status)
        raise
    except UserError as exc:
        return _json_error(str(exc), 404 if "no campaign" in str(exc) else 400)
    except ValueError as exc:
        return _json_error(str(exc), 400)
    except Exception:
        log.exception("api_failed", path=request.path)
        return _json_error("internal error", 500)


@web.middleware
async def _token(request: web.Request, handler):
    route = request.match_info.route.name
    if route == "openapi":
        return await handler(request)
    auth = request.headers.get("Authorization", "")
    who = None
    if auth.startswith("Bearer "):
        who = api_tokens.verify(request.app[BACKEND].store, auth[7:].strip())
    if who is None:
        resp = _json_error("a valid bearer token is required", 401)
        resp.headers["WWW-Authenticate"] = 'Bearer realm="dialbox"'
        return resp
    scope = next((s for _, _, h, s, _ in ENDPOINTS if h == route), None)
    if scope not in who["scopes"]:
        return _json_error(f"this token lacks the scope {scope}", 403)
    request[INTEGRATION] = who
    return await handler(request)


async def _body(request: web.Request):
    if request.content_type != "application/json":
        raise ValueError("send JSON (Content-Type: application/json)")
    try:
        return await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ValueError("the body is not valid JSON") from None


def _cursor(request: web.Request) -> tuple[int, int]:
    try:
        cursor = int(request.query.get("cursor", "0"))
        limit = int(request.query.get("limit", "500"))
    except ValueError:
        raise ValueError("cursor and limit are whole numbers") from None
    if not 0 <= cursor <= MAX_CURSOR or not 1 <= limit <= 1000:
        raise ValueError("cursor is from 0 to 2^63-1; limit is from 1 to 1000")
    return cursor, limit


def _campaign_name(request: web.Request) -> str:
    name = request.match_info["name"]
    store = request.app[BACKEND].store
    if not store.db.execute("SELECT 1 FROM campaigns WHERE name=?", (name,)).fetchone():
        raise web.HTTPNotFound(reason=f"no campaign named {name!r}")
    return name


async def list_campaigns(request: web.Request) -> web.Response:
    rows = await call(request.app[BACKEND].campaigns)
    return web.json_response({"items": [
        {"name": c["name"], "mode": c["mode"], "status": c["status"],
         "compliance": c["compliance"], "counters": c.get("counters", {})} for c in rows]})


async def campaign_action(request: web.Request) -> web.Response:
    name = _campaign_name(request)
    body = await _body(request)
    action = body.get("action") if isinstance(body, dict) else None
    if action not in CAMPAIGN_ACTIONS:
        raise ValueError(f"action is one of {', '.join(CAMPAIGN_ACTIONS)}")
    backend = request.app[BACKEND]
    await call(backend.campaign_action, name, action)
    from controller import audit
    await backend.store.run(audit.record, who=f"api:{request[INTEGRATION]['name']}",
                            action=action, obj="campaign", key=name,
                            source=request.remote or "")
    return web.json_response({"name": name, "action": action})


async def push_debts(request: web.Request) -> web.Response:
    name = _campaign_name(request)
    body = await _body(request)
    if not isinstance(body, dict) or not isinstance(body.get("debts"), list):
        raise ValueError('send {"debts": [...]}')
    creditor = body.get("creditor")
    if creditor is not None and not isinstance(creditor, str):
        raise ValueError("creditor is a string")
    result = await request.app[BACKEND].store.apart(crm.import_debts, name, body["debts"],
                                                    creditor=creditor)  # off the loop
    log.info("api_debts", integration=request[INTEGRATION]["name"], imported=result["imported"],
             updated=result["updated"], rejected=len(result["rejected"]))
    return web.json_response(result)


async def push_payments(request: web.Request) -> web.Response:
    body = await _body(request)
    if not isinstance(body, dict) or not isinstance(body.get("payments"), list):
        raise ValueError('send {"payments": [...]}')
    return web.json_response(await request.app[BACKEND].store.apart(crm.import_payments,
                                                                     body["payments"]))


async def pull_outcomes(request: web.Request) -> web.Response:
    cursor, limit = _cursor(request)
    return web.json_response(crm.outcomes(request.app[BACKEND].store, cursor, limit))


async def pull_promises(request: web.Request) -> web.Response:
    cursor, limit = _cursor(request)
    return web.json_response(crm.promises(request.app[BACKEND].store, cursor, limit))


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(OPENAPI)


# --- the document ------------------------------------------------------------------------------
def _err(desc: str) -> dict:
    return {"description": desc, "content": {"application/json": {"schema": {
        "$ref": "#/components/schemas/Error"}}}}


_NULLABLE_STR = {"type": "string", "nullable": True}
_NULLABLE_NUM = {"type": "number", "nullable": True}
_PAGE_PARAMS = [
    {"name": "cursor", "in": "query", "required": False,
     "description": "the next_cursor of the previous page; 0 for the start",
     "schema": {"type": "integer", "minimum": 0, "maximum": MAX_CURSOR, "default": 0}},
    {"name": "limit", "in": "query", "required": False,
     "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 500}},
]
_NAME_PARAM = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
_COMMON_ERRORS = {"400": _err("the request is malformed"),
                  "401": _err("no valid bearer token"),
                  "403": _err("the token lacks the scope")}
_REJECT = {"type": "object", "required": ["index", "field", "reason"], "properties": {
    "index": {"type": "integer"}, "field": {"type": "string"}, "reason": {"type": "string"},
    "whole_record": {"type": "boolean"}}}


def _ok(schema: dict) -> dict:
    return {"200": {"description": "done", "content": {"application/json": {"schema": schema}}}}


def _page(item: str) -> dict:
    return {"type": "object", "required": ["items", "next_cursor"], "properties": {
        "items": {"type": "array", "items": {"$ref": f"#/components/schemas/{item}"}},
        "next_cursor": {"type": "integer", "minimum": 0}}}


OPENAPI: dict = {
    "openapi": "3.0.3",
    "info": {"title": "dialbox integration API", "version": "1",
             "description": "Push debts and payments in; pull outcomes and promises out by "
                            "cursor. Every call needs a bearer token issued for the "
                            "integration, with the scope the operation names."},
    "servers": [{"url": "/api/v1"}],
    "security": [{"bearer": []}],
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": {"type": "object", "required": ["error"],
                      "properties": {"error": {"type": "string"}}},
            "Campaign": {"type": "object", "required": ["name", "mode", "status"],
                         "properties": {"name": {"type": "string"}, "mode": {"type": "string"},
                                        "status": {"type": "string"},
                                        "compliance": {"type": "string"},
                                        "counters": {"type": "object"}}},
            "Debt": {"type": "object", "required": ["account_id", "phones"], "properties": {
                "account_id": {"type": "string", "minLength": 1},
                "debtor_name": {"type": "string"},
                "debt_amount": {"oneOf": [{"type": "number"}, {"type": "string"}]},
                "currency": {"type": "string"}, "dpd": {"type": "integer", "minimum": 0},
                "due_date": {"type": "string", "format": "date"},
                "region": {"type": "string"}, "tz": {"type": "string"},
                "product": {"type": "string"}, "creditor": {"type": "string"},
                # the person behind the debt (limits per person); his refusal of interaction
                "birth_date": {"type": "string", "format": "date"},
                "refusal_date": {"type": "string", "format": "date"},
                "phones": {"type": "array", "items": {"oneOf": [
                    {"type": "string"},
                    {"type": "object", "required": ["number"], "properties": {
                        "number": {"type": "string"},
                        "kind": {"type": "string",
                                 "enum": ["mobile", "home", "work", "third_party"]}}}]}}}},
            "Payment": {"type": "object", "required": ["account_id", "amount", "date"],
                        "properties": {"account_id": {"type": "string"},
                                       "amount": {"oneOf": [{"type": "number"},
                                                            {"type": "string"}]},
                                       "date": {"type": "string", "format": "date"},
                                       "reference": {"type": "string"}}},
            "Outcome": {"type": "object", "required": ["call_id", "campaign", "account_id",
                                                       "outcome"], "properties": {
                "call_id": {"type": "string"}, "campaign": {"type": "string"},
                "account_id": {"type": "string"}, "number": {"type": "string"},
                "line": {"type": "string"}, "started_at": _NULLABLE_STR,
                "ended_at": _NULLABLE_STR, "outcome": {"type": "string"},
                "q850": {"type": "integer", "nullable": True}, "ring_s": _NULLABLE_NUM,
                "talk_s": _NULLABLE_NUM, "operator": _NULLABLE_STR,
                "abandoned": {"type": "boolean"},
                "dispositions": {"type": "array", "items": {"type": "string"}}}},
            "Promise": {"type": "object", "required": ["promise_id", "account_id", "amount",
                                                       "due_date", "state"], "properties": {
                "promise_id": {"type": "integer"}, "campaign": {"type": "string"},
                "account_id": {"type": "string"}, "call_id": _NULLABLE_STR,
                "operator": _NULLABLE_STR, "amount": {"type": "number"},
                "due_date": {"type": "string"},
                "state": {"type": "string", "enum": ["open", "kept", "broken"]},
                "paid": {"type": "number"}, "created_at": _NULLABLE_STR,
                "closed_at": _NULLABLE_STR}},
        },
    },
    "paths": {
        "/campaigns": {"get": {
            "operationId": "list_campaigns", "summary": ENDPOINTS[0][4],
            "description": "scope: read_results",
            "responses": {**_ok({"type": "object", "required": ["items"], "properties": {
                "items": {"type": "array", "items": {"$ref": "#/components/schemas/Campaign"}}}}),
                **_COMMON_ERRORS}}},
        "/campaigns/{name}/actions": {"post": {
            "operationId": "campaign_action", "summary": ENDPOINTS[1][4],
            "description": "scope: control_campaigns", "parameters": [_NAME_PARAM],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["action"], "properties": {
                    "action": {"type": "string", "enum": list(CAMPAIGN_ACTIONS)}}}}}},
            "responses": {**_ok({"type": "object", "required": ["name", "action"], "properties": {
                "name": {"type": "string"}, "action": {"type": "string"}}}),
                **_COMMON_ERRORS, "404": _err("no such campaign")}}},
        "/campaigns/{name}/debts": {"post": {
            "operationId": "push_debts", "summary": ENDPOINTS[2][4],
            "description": "scope: import_leads. Records are checked like the rows of an "
                           "imported file; rejected ones are listed by their index.",
            "parameters": [_NAME_PARAM],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["debts"], "properties": {
                    "creditor": {"type": "string"},
                    "debts": {"type": "array", "maxItems": crm.MAX_BATCH,
                              "items": {"$ref": "#/components/schemas/Debt"}}}}}}},
            "responses": {**_ok({"type": "object", "required": ["imported", "updated",
                                                                "duplicates", "rejected"],
                                 "properties": {"imported": {"type": "integer"},
                                                "updated": {"type": "integer"},
                                                "duplicates": {"type": "integer"},
                                                "rejected": {"type": "array", "items": _REJECT}}}),
                          **_COMMON_ERRORS, "404": _err("no such campaign"),
                          "413": _err("the body is too large")}}},
        "/payments": {"post": {
            "operationId": "push_payments", "summary": ENDPOINTS[3][4],
            "description": "scope: import_payments. The same payment twice counts once.",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["payments"], "properties": {
                    "payments": {"type": "array", "maxItems": crm.MAX_BATCH,
                                 "items": {"$ref": "#/components/schemas/Payment"}}}}}}},
            "responses": {**_ok({"type": "object", "required": ["imported", "duplicates",
                                                                "rejected"], "properties": {
                "imported": {"type": "integer"}, "duplicates": {"type": "integer"},
                "rejected": {"type": "array", "items": _REJECT},
                "promises_kept": {"type": "integer"}, "promises_broken": {"type": "integer"}}}),
                **_COMMON_ERRORS, "413": _err("the body is too large")}}},
        "/outcomes": {"get": {
            "operationId": "pull_outcomes", "summary": ENDPOINTS[4][4],
            "description": "scope: read_results", "parameters": _PAGE_PARAMS,
            "responses": {**_ok(_page("Outcome")), **_COMMON_ERRORS}}},
        "/promises": {"get": {
            "operationId": "pull_promises", "summary": ENDPOINTS[5][4],
            "description": "scope: read_results", "parameters": _PAGE_PARAMS,
            "responses": {**_ok(_page("Promise")), **_COMMON_ERRORS}}},
        "/openapi.json": {"get": {
            "operationId": "openapi", "summary": "This document", "security": [],
            "responses": {"200": {"description": "the OpenAPI document", "content": {
                "application/json": {"schema": {"type": "object"}}}}}}},
    },
}
