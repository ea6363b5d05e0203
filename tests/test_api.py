"""The integration API: scoped tokens, debts and payments pushed in, outcomes and promises pulled
out by cursor, and schemathesis against the OpenAPI document it serves."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from datetime import date, timedelta

import pytest
from aiohttp import web

from controller import api_tokens, audit
from controller.store import Store
from tests.fake_backend import FakeBackend
from web_admin.app import make_app

SAMPLE = [
    {"account_id": "K-1", "debtor_name": "Иванов Иван", "debt_amount": "15 000,50",
     "phones": ["+7 912 345-67-89", {"number": "8 (495) 123-45-67", "kind": "work"}]},
    {"account_id": "K-2", "debt_amount": 700, "phones": [{"number": "12", "kind": "mobile"}]},
    {"account_id": "", "phones": ["+79123450000"]},
]


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "db.sqlite3")
    s.campaign("Банк-Ноябрь", create=True)
    yield s
    s.close()


@pytest.fixture
async def api(aiohttp_client, store, tmp_path):
    backend = FakeBackend(store, report_dir=tmp_path)
    client = await aiohttp_client(make_app(backend))
    tokens = {scope: api_tokens.issue(store, f"crm-{scope}", [scope], by="root")
              for scope in api_tokens.SCOPES}
    return client, tokens


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


async def test_no_token_or_wrong_scope_is_refused(api):
    client, tokens = api
    r = await client.get("/api/v1/outcomes")
    assert r.status == 401 and "Bearer" in r.headers["WWW-Authenticate"]
    r = await client.get("/api/v1/outcomes", headers=bearer("dbx_forged"))
    assert r.status == 401
    r = await client.get("/api/v1/outcomes", headers=bearer(tokens["import_leads"]))
    assert r.status == 403 and "read_results" in (await r.json())["error"]
    r = await client.post("/api/v1/payments", json={"payments": []},
                          headers=bearer(tokens["read_results"]))
    assert r.status == 403
    doc = await (await client.get("/api/v1/openapi.json")).json()  # the document is public
    assert doc["openapi"].startswith("3.") and "/outcomes" in doc["paths"]


async def test_a_revoked_token_stops_at_once_and_both_are_audited(api, store):
    client, tokens = api
    assert (await client.get("/api/v1/outcomes", headers=bearer(tokens["read_results"]))
            ).status == 200
    api_tokens.revoke(store, "crm-read_results", by="root")
    assert (await client.get("/api/v1/outcomes", headers=bearer(tokens["read_results"]))
            ).status == 401
    actions = {(e["action"], e["key"]) for e in audit.entries(store, obj="api_token")}
    assert ("issue", "crm-read_results") in actions and ("revoke", "crm-read_results") in actions
    assert "dbx_" not in json.dumps(audit.entries(store))  # the token itself is never kept


async def test_debts_pushed_in_are_checked_like_file_rows(api, store):
    client, tokens = api
    r = await client.post("/api/v1/campaigns/Банк-Ноябрь/debts", json={"debts": SAMPLE},
                          headers=bearer(tokens["import_leads"]))
    body = await r.json()
    assert r.status == 200, body
    assert body["imported"] == 1 and body["updated"] == 0
    assert {(x["index"], x["field"]) for x in body["rejected"]} == {(1, "phones"),
                                                                     (2, "account_id")}
    acc = store.db.execute("SELECT id, debt_amount FROM accounts WHERE account_id='K-1'"
                           ).fetchone()
    assert acc["debt_amount"] == 15000.50
    phones = {(r["e164"], r["kind"]) for r in store.db.execute(
        "SELECT e164, kind FROM phones WHERE account_pk=?", (acc["id"],))}
    assert phones == {("+79123456789", "mobile"), ("+74951234567", "work")}
    r = await client.post("/api/v1/campaigns/Банк-Ноябрь/debts", json={"debts": SAMPLE[:1]},
                          headers=bearer(tokens["import_leads"]))
    assert (await r.json())["updated"] == 1  # pushed again: updated, not doubled
    r = await client.post("/api/v1/campaigns/nope/debts", json={"debts": []},
                          headers=bearer(tokens["import_leads"]))
    assert r.status == 404


def _call(store, n: int, outcome: str = "answered") -> str:
    from controller.store import Lead
    acc = store.db.execute("SELECT id FROM accounts WHERE account_id='K-1'").fetchone()[0]
    ph = store.db.execute("SELECT id, e164 FROM phones WHERE account_pk=?", (acc,)).fetchone()
    cid = store.campaign("Банк-Ноябрь")
    call_id = f"call-{n}"
    store.begin_attempt(cid, Lead(acc, ph["id"], ph["e164"], "K-1"), "gsm0", call_id, "olga")
    store.finish_attempt(call_id, outcome=outcome, q850=16, reason="normal", ring_s=5.0,
                         talk_s=30.0, abandoned=False)
    return call_id


async def test_outcomes_and_promises_are_pulled_by_cursor_without_gaps(api, store):
    client, tokens = api
    await client.post("/api/v1/campaigns/Банк-Ноябрь/debts", json={"debts": SAMPLE[:1]},
                      headers=bearer(tokens["import_leads"]))
    calls = [_call(store, n) for n in range(3)]
    h = bearer(tokens["read_results"])
    page = await (await client.get("/api/v1/outcomes?limit=2", headers=h)).json()
    assert [x["call_id"] for x in page["items"]] == calls[:2]
    cursor = page["next_cursor"]
    # A disposition recorded after the CRM read the call brings the call back, once.
    due = (date.today() + timedelta(days=5)).isoformat()
    store.record_disposition(calls[0], "promise", amount=5000.0, date=due)
    page = await (await client.get(f"/api/v1/outcomes?cursor={cursor}", headers=h)).json()
    assert [x["call_id"] for x in page["items"]] == [calls[2], calls[0]]
    assert page["items"][1]["dispositions"] == ["promise"]
    end = page["next_cursor"]
    assert (await (await client.get(f"/api/v1/outcomes?cursor={end}", headers=h)).json()
            ) == {"items": [], "next_cursor": end}
    promises = await (await client.get("/api/v1/promises", headers=h)).json()
    assert [(p["account_id"], p["amount"], p["state"]) for p in promises["items"]] == [
        ("K-1", 5000.0, "open")]
    pc = promises["next_cursor"]
    # A payment keeps the promise: the promise comes out again with its new state.
    r = await client.post("/api/v1/payments", json={"payments": [
        {"account_id": "K-1", "amount": "5 000", "date": date.today().isoformat(),
         "reference": "p1"}, {"account_id": "nobody", "amount": 1, "date": "2026-01-01"}]},
        headers=bearer(tokens["import_payments"]))
    body = await r.json()
    assert body["imported"] == 1 and body["promises_kept"] == 1
    assert body["rejected"] == [{"index": 1, "field": "account_id",
                                 "reason": "no such account: 'nobody'"}]
    again = await (await client.get(f"/api/v1/promises?cursor={pc}", headers=h)).json()
    assert [(p["state"], p["paid"]) for p in again["items"]] == [("kept", 5000.0)]


async def test_bad_cursor_and_bad_json_get_clear_errors(api):
    client, tokens = api
    h = bearer(tokens["read_results"])
    r = await client.get("/api/v1/outcomes?cursor=-1", headers=h)
    assert r.status == 400 and "cursor" in (await r.json())["error"]
    r = await client.post("/api/v1/payments", data=b"{not json",
                          headers={**bearer(tokens["import_payments"]),
                                   "Content-Type": "application/json"})
    assert r.status == 400 and "JSON" in (await r.json())["error"]


async def test_campaigns_are_listed_and_controlled_with_audit(api, store):
    client, tokens = api
    items = (await (await client.get("/api/v1/campaigns", headers=bearer(
        tokens["read_results"]))).json())["items"]
    assert {"name": "Тест", "status": "running"}.items() <= items[0].items()
    store.campaign("Тест", create=True)
    h = bearer(tokens["control_campaigns"])
    r = await client.post("/api/v1/campaigns/Тест/actions", json={"action": "pause"}, headers=h)
    assert r.status == 200
    items = (await (await client.get("/api/v1/campaigns", headers=bearer(
        tokens["read_results"]))).json())["items"]
    assert items[0]["status"] == "paused"
    r = await client.post("/api/v1/campaigns/Тест/actions", json={"action": "explode"},
                          headers=h)
    assert r.status == 400 and "start, pause" in (await r.json())["error"]
    entry = audit.entries(store, obj="campaign")[0]
    assert (entry["who"], entry["action"], entry["key"]) == ("api:crm-control_campaigns",
                                                            "pause", "Тест")


def test_cli_issues_lists_and_revokes_tokens(tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "dialbox.cli", "api", "token", *args,
                               "--data", str(tmp_path)], capture_output=True, text=True,
                              timeout=60)
    r = run("add", "CRM", "--scope", "read_results", "--scope", "import_payments")
    assert r.returncode == 0 and r.stdout.startswith("dbx_"), r.stderr
    listed = json.loads(run("list").stdout)
    assert listed[0]["name"] == "CRM" and listed[0]["scopes"] == ["import_payments",
                                                                  "read_results"]
    assert r.stdout.strip() not in run("list").stdout
    assert run("revoke", "CRM").returncode == 0
    bad = run("add", "CRM2", "--scope", "everything")
    assert bad.returncode != 0 and "invalid choice" in bad.stderr


# --- schemathesis: no server error, no response outside the document --------------------------
@pytest.fixture
def live_api(tmp_path):
    """The real web admin on 127.0.0.1 in its own thread, with a token of every scope."""
    store = Store(tmp_path / "live.sqlite3")
    store.campaign("Банк-Ноябрь", create=True)
    token = api_tokens.issue(store, "fuzz", list(api_tokens.SCOPES), by="root")
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict = {}

    async def serve():
        runner = web.AppRunner(make_app(FakeBackend(store, report_dir=tmp_path)))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        holder["port"] = runner.addresses[0][1]
        holder["runner"] = runner
        started.set()

    thread = threading.Thread(target=lambda: (loop.run_until_complete(serve()),
                                              loop.run_forever()), daemon=True)
    thread.start()
    assert started.wait(10)
    yield f"http://127.0.0.1:{holder['port']}", token
    asyncio.run_coroutine_threadsafe(holder["runner"].cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()
    store.close()


def _no_server_error(ctx, response, case):
    assert response.status_code < 500, f"server error {response.status_code}"
    return True


def test_schemathesis_finds_no_server_error_and_nothing_outside_the_spec(live_api):
    import hypothesis
    import requests
    import schemathesis
    from schemathesis.specs.openapi.checks import (content_type_conformance,
                                                   response_schema_conformance,
                                                   status_code_conformance)

    base, token = live_api
    doc = requests.get(f"{base}/api/v1/openapi.json", timeout=10).json()
    schema = schemathesis.openapi.from_dict(doc)
    schema.config.update(base_url=f"{base}/api/v1")
    checks = [_no_server_error, status_code_conformance, content_type_conformance,
              response_schema_conformance]
    failures = []
    for op in schema.get_all_operations():
        operation = op.ok()

        @hypothesis.settings(max_examples=25, deadline=None, database=None,
                             suppress_health_check=list(hypothesis.HealthCheck))
        @hypothesis.given(case=operation.as_strategy())
        def run(case):
            response = case.call(headers={"Authorization": f"Bearer {token}"})
            try:
                case.validate_response(response, checks=checks)
            except AssertionError as exc:
                failures.append(f"{operation.label}: {exc}")
                raise

        try:
            run()
        except AssertionError:
            pass
    assert failures == []
