"""Web admin against a fake backend: sessions, roles, CSRF, every page's behaviour, both languages."""
from __future__ import annotations

import asyncio
import json
import re
import shutil
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from controller import users
from controller.store import Store
from tests.fake_backend import FakeBackend
from web_admin import backend as contract
from web_admin.app import ROUTES, make_app
from web_admin.render import HOME, NAV, SESSION_COOKIE

WEB = Path(__file__).resolve().parent.parent / "web_admin"
PEOPLE = {"admin": "root", "supervisor": "anna", "technician": "ted", "operator": "olga"}
PASSWORD = "correct horse battery"


@pytest.fixture(scope="session")
def people_db(tmp_path_factory) -> Path:
    """One database with a person per role, made once: argon2 hashing is slow on purpose."""
    path = tmp_path_factory.mktemp("people") / "db.sqlite3"
    s = Store(path)
    for role, name in PEOPLE.items():
        users.add(s, name, PASSWORD, role=role)
    s.close()
    return path


@pytest.fixture
def store(tmp_path, people_db):
    shutil.copy(people_db, tmp_path / "db.sqlite3")
    s = Store(tmp_path / "db.sqlite3")
    yield s
    s.close()


@pytest.fixture
def fake(store, tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    return FakeBackend(store, report_dir=reports)


@pytest.fixture
async def client(aiohttp_client, fake):
    return await aiohttp_client(make_app(fake))


def as_role(client, store, role: str) -> str:
    """Open a session for the person with this role; their CSRF token."""
    uid = store.db.execute("SELECT id FROM users WHERE username=?", (PEOPLE[role],)).fetchone()[0]
    token, csrf = users.open_session(store, uid)
    client.session.cookie_jar.update_cookies({SESSION_COOKIE: token})
    return csrf


async def login(client, username="anna", password=PASSWORD):
    page = await client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', await page.text()).group(1)
    return await client.post("/login", data={"username": username, "password": password,
                                             "csrf": token}, allow_redirects=False)


def form_csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


# --- the contract -------------------------------------------------------------------------------
def test_the_fake_keeps_the_backend_contract(fake):
    assert contract.contract_problems(fake) == []


def test_the_contract_check_names_what_is_wrong(fake):
    class Partial:
        store = None

        def health(self):
            return {}

        def desk(self, user):  # misnamed parameter
            return {}
    problems = contract.contract_problems(Partial())
    assert "desk: takes (user), the contract says (username)" in problems
    assert "status: missing" in problems and "line_action: missing" in problems
    assert not any(p.startswith("health") for p in problems)


# --- sessions -----------------------------------------------------------------------------------
async def test_healthz_is_public(client):
    r = await client.get("/healthz")
    assert r.status == 200
    assert (await r.json())["lines"] == {"total": 2, "in_service": 1}


@pytest.mark.parametrize("method,path", [(m, p.replace("{name}", "x.csv"))
                                         for m, p, *_ in ROUTES])
async def test_everything_else_needs_a_session(client, fake, method, path):
    r = await client.request(method, path, allow_redirects=False)
    assert r.status in (302, 401)
    if r.status == 302:
        assert r.headers["Location"] == "/login"
    assert fake.calls == []


async def test_wrong_password_is_refused(client):
    r = await login(client, password="wrong password!")
    assert r.status == 401
    assert "Неверное имя пользователя или пароль" in await r.text()


@pytest.mark.parametrize("role", list(PEOPLE))
async def test_login_lands_on_the_page_of_the_role(client, role):
    r = await login(client, PEOPLE[role])
    assert r.status == 302 and r.headers["Location"] == HOME[role]


async def test_login_form_without_csrf_is_refused(client):
    r = await client.post("/login", data={"username": "anna", "password": PASSWORD})
    assert r.status == 403


async def test_logout_needs_csrf(client):
    await login(client)
    r = await client.post("/logout", allow_redirects=False)
    assert r.status == 403
    token = form_csrf(await (await client.get("/")).text())
    r = await client.post("/logout", data={"csrf": token}, allow_redirects=False)
    assert r.status == 302
    r = await client.get("/", allow_redirects=False)
    assert r.status == 302 and r.headers["Location"] == "/login"


# --- roles --------------------------------------------------------------------------------------
MATRIX = [(role, method, path.replace("{name}", "x.csv").replace("{pk}", "1").replace("{job}", "x")
           .replace("{token}", "tok").replace("{call_id}", "c-404"), name, role in roles)
          for method, path, _, name, roles in ROUTES for role in PEOPLE]


@pytest.mark.parametrize("role,method,path,name,allowed", MATRIX,
                         ids=[f"{r}-{m}-{p}" for r, m, p, _, _ in MATRIX])
async def test_role_matrix(client, store, fake, role, method, path, name, allowed):
    csrf = as_role(client, store, role)
    r = await client.request(method, path, headers={"X-CSRF-Token": csrf},
                             allow_redirects=False)
    if allowed:
        assert r.status not in (401, 403), await r.text()
        if method == "GET" and name not in ("ws", "desk_ws", "campaign_report", "debtor_card",
                                                 "line_test_status", "api_import",
                                                 "calllist_import_page", "hardware_profile",
                                                 "campaign", "recording", "campaign_segments"):
            # only the operator has a position; others get the desk saying they have none
            assert r.status == (400 if name == "api_desk" and role != "operator" else 200)
        return
    if name == "dashboard":  # the start page sends a person to the page of their role
        assert r.status == 302 and r.headers["Location"] == HOME[role]
        return
    assert r.status == 403
    assert not [c for c in fake.calls if c[0] != "kpi"]  # nothing was done
    if "json" not in r.content_type:
        assert "Недостаточно прав" in await r.text()


@pytest.mark.parametrize("role", list(PEOPLE))
async def test_navigation_shows_only_what_the_role_may_open(client, store, role):
    as_role(client, store, role)
    html = await (await client.get(HOME[role])).text()
    nav = re.search(r'<nav class="main-nav">(.*?)</nav>', html, re.S).group(1)
    links = set(re.findall(r'href="([^"]+)"', nav))
    access = {name: roles for _, _, _, name, roles in ROUTES}
    expected = {path for name, path, _ in NAV if role in access[name]}
    assert {"/", "/desk", "/campaigns", "/kpi", "/dnc", "/lines", "/users", "/tls"} <= {
        path for _, path, _ in NAV}
    assert links == expected


# --- CSRF ---------------------------------------------------------------------------------------
POSTS = [(path, name, roles[0]) for method, path, _, name, roles in ROUTES if method == "POST"]


@pytest.mark.parametrize("path,name,role", POSTS, ids=[p for p, _, _ in POSTS])
@pytest.mark.parametrize("sent", [None, "wrong-token"])
async def test_every_post_needs_the_csrf_token(client, store, fake, path, name, role, sent):
    as_role(client, store, role)
    headers = {} if sent is None else {"X-CSRF-Token": sent}
    r = await client.post(path, data={"name": "Тест", "action": "pause", "number": "+79161234567",
                                      "reason": "x", "line": "gsm0", "username": "newbie",
                                      "password": "long enough pw", "role": "operator"},
                          headers=headers, allow_redirects=False)
    assert r.status == 403
    r = await client.post(path, json={"ready": True}, headers=headers, allow_redirects=False)
    assert r.status == 403
    assert fake.calls == []
    assert len(fake.dnc) == 1 and users.count(store) == 4
    if name == "logout":
        assert (await client.get("/kpi" if role != "operator" else "/desk")).status == 200


# --- the operator's desk ------------------------------------------------------------------------
async def desk_post(client, csrf, path, body):
    r = await client.post(path, json=body, headers={"X-CSRF-Token": csrf})
    return r.status, await r.json()


async def test_desk_ready_call_promise_and_ready_again(client, store, fake):
    csrf = as_role(client, store, "operator")
    page = await (await client.get("/desk")).text()
    assert "Обещание оплаты" in page and "Жалоба" in page and "<kbd>9</kbd>" in page
    status, out = await desk_post(client, csrf, "/desk/ready", {"ready": True})
    assert status == 200 and out["desk"]["operator"]["state"] == "free"
    call = fake.put_call("olga")
    status, out = await desk_post(client, csrf, "/desk/disposition", {
        "call_id": call["call_id"], "kind": "promise",
        "details": {"amount": "15 000,50", "date": "2026-12-05", "ignored": "x"}})
    assert status == 200  # typed the Russian way, handed on as a number
    assert fake.calls[-1] == ("desk_disposition", "olga", "c-1", "promise",
                              {"amount": "15000.50", "date": "2026-12-05"})
    assert out["desk"]["operator"]["state"] == "free" and out["desk"]["call"] is None


@pytest.mark.parametrize("kind,details,message", [
    ("promise", {"amount": "", "date": "2026-12-05"}, "сумма: укажите обещанную сумму"),
    ("promise", {"amount": "15.000,50,1", "date": "2026-12-05"}, "сумма: укажите обещанную сумму"),
    ("promise", {"amount": "100", "date": "2020-01-01"}, "дата: обещанная дата уже прошла"),
    ("callback", {"at": "tomorrow"}, "перезвон: укажите дату и время"),
    ("complaint", {"text": "  "}, "для жалобы нужен текст"),
])
async def test_desk_validation_message_comes_back_for_the_field(client, store, fake, kind,
                                                               details, message):
    csrf = as_role(client, store, "operator")
    fake.put_call("olga")
    status, out = await desk_post(client, csrf, "/desk/disposition",
                                  {"call_id": "c-1", "kind": kind, "details": details})
    assert status == 400 and out["error"].startswith(message) and out["kind"] == kind
    assert fake.desk("olga")["call"] is not None  # still on the call, nothing recorded
    assert not [c for c in fake.calls if c[0] == "desk_disposition"]


async def test_desk_rejects_unknown_outcome_and_bad_body(client, store, fake):
    csrf = as_role(client, store, "operator")
    fake.put_call("olga")
    status, out = await desk_post(client, csrf, "/desk/disposition",
                                  {"call_id": "c-1", "kind": "pay_me", "details": {}})
    assert status == 400 and "pay_me" in out["error"]
    status, out = await desk_post(client, csrf, "/desk/ready", {"ready": "yes"})
    assert status == 400
    r = await client.post("/desk/hangup", data=b"not json", headers={
        "X-CSRF-Token": csrf, "Content-Type": "application/json"})
    assert r.status == 400 and "JSON" in (await r.json())["error"]
    assert fake.calls == []


async def test_desk_hangup_then_wrap_up_then_outcome(client, store, fake):
    csrf = as_role(client, store, "operator")
    fake.put_call("olga")
    status, out = await desk_post(client, csrf, "/desk/hangup", {"call_id": "c-1"})
    assert status == 200 and out["desk"]["operator"]["state"] == "wrap_up"
    assert out["desk"]["call"]["stage"] == "ended"
    status, out = await desk_post(client, csrf, "/desk/disposition",
                                  {"call_id": "c-1", "kind": "wrong_number", "details": {}})
    assert status == 200 and out["desk"]["operator"]["state"] == "free"
    status, out = await desk_post(client, csrf, "/desk/hangup", {"call_id": "c-1"})
    assert status == 400 and out["error"] == "это не ваш звонок (возможно, он уже закончился)"


async def test_desk_feed_pops_the_card_when_a_call_is_bridged(client, store, fake):
    as_role(client, store, "operator")
    ws = await client.ws_connect("/desk/ws")
    first = await ws.receive_json(timeout=5)
    assert first["call"] is None
    fake.put_call("olga")
    card = await ws.receive_json(timeout=5)
    assert card["call"]["account"]["debtor_name"] == "Иванов Иван Иванович"
    assert card["operator"]["state"] == "talking"
    await ws.close()


async def test_desk_for_someone_without_a_position_says_so(client, store):
    as_role(client, store, "supervisor")
    r = await client.get("/desk")
    assert r.status == 200 and "пользователя anna нет" in await r.text()
    ws = await client.ws_connect("/desk/ws")
    assert "пользователя anna нет" in (await ws.receive_json(timeout=5))["error"]
    await ws.close()


# --- supervisor ---------------------------------------------------------------------------------
async def test_dashboard_in_russian_and_english(client, store):
    as_role(client, store, "supervisor")
    page = await (await client.get("/")).text()
    assert "Попытки" in page and "гудки" in page and "нет SIM-карты" in page
    assert 'data-counter="attempts">7<' in page and 'data-counter="held">5<' in page
    assert 'class="tile st-out_of_service" data-line="gsm1"' in page
    assert re.search(r'data-group="dialing" data-states="[^"]*alerting[^"]*">1<', page)
    assert re.search(r'data-group="out_of_service" [^>]*>1<', page)
    assert 'data-op-state="not_ready">1<' in page and 'data-op-state="talking">0<' in page
    page = await (await client.get("/?lang=en")).text()
    assert "Attempts" in page and "ringing" in page and "Held by law" in page
    page = await (await client.get("/")).text()  # the choice is remembered
    assert "Attempts" in page


async def test_language_switch_keeps_the_page_and_survives_redirects(client, store):
    csrf = as_role(client, store, "operator")
    r = await client.get("/?lang=en", allow_redirects=False)  # the operator is sent to /desk
    assert r.status == 302 and r.headers["Location"] == "/desk"
    page = await (await client.get("/desk")).text()
    assert "Promise to pay" in page
    csrf = as_role(client, store, "supervisor")
    page = await (await client.get("/kpi?by=segment&lang=ru")).text()
    assert 'href="/kpi?by=segment&amp;lang=en" id="lang-switch"' in page
    r = await client.post("/dnc/add", data={"csrf": csrf, "number": "", "reason": ""})
    assert 'href="/dnc?lang=en" id="lang-switch"' in await r.text()
    client.session.cookie_jar.clear()
    r = await client.post("/login", data={"username": "x"})
    assert 'href="/login?lang=en" id="lang-switch"' in await r.text()


async def test_api_status_and_live_feed(client, store, fake):
    as_role(client, store, "supervisor")
    data = await (await client.get("/api/status")).json()
    assert data["campaign"]["counters"]["answered"] == 3
    ws = await client.ws_connect("/ws")
    msg = await ws.receive_json(timeout=5)
    assert msg["lines"][0]["state"] == "alerting"
    assert {ln["name"]: ln["reason"] for ln in msg["lines"]}["gsm1"] == "нет SIM-карты"
    fake.lines[0]["state"] = "bridged"
    msg = await ws.receive_json(timeout=5)
    assert msg["lines"][0]["state"] == "bridged"
    await ws.close()


@pytest.mark.parametrize("path", ["/ws", "/desk/ws"])
async def test_live_feeds_refuse_pages_of_other_sites(client, store, path):
    as_role(client, store, "operator" if path == "/desk/ws" else "supervisor")
    import aiohttp
    with pytest.raises(aiohttp.WSServerHandshakeError) as err:
        await client.ws_connect(path, headers={"Origin": "https://evil.example"})
    assert err.value.status == 403
    ws = await client.ws_connect(path, headers={"Origin": str(client.make_url("/"))[:-1]})
    assert await ws.receive_json(timeout=5)
    await ws.close()


async def test_campaign_pause_and_start(client, store, fake):
    csrf = as_role(client, store, "supervisor")
    r = await client.post("/campaigns/action", data={"csrf": csrf, "name": "Тест",
                                                     "action": "pause"}, allow_redirects=False)
    assert r.status == 303
    assert fake.calls == [("campaign_action", "Тест", "pause", PEOPLE["supervisor"])]  # who: audited
    page = await (await client.get("/campaigns")).text()
    assert 'name="action" value="start"' in page
    r = await client.post("/campaigns/action", data={"csrf": csrf, "name": "Нет такой",
                                                     "action": "start"})
    assert r.status == 400 and "Кампании «Нет такой» нет" in await r.text()
    r = await client.post("/campaigns/action", data={"csrf": csrf, "name": "Тест",
                                                     "action": "explode"})
    assert r.status == 400 and "explode" in await r.text()


def upload_form(csrf, body: bytes, filename: str, campaign="Тест"):
    import aiohttp
    form = aiohttp.FormData()
    form.add_field("csrf", csrf)
    form.add_field("campaign", campaign)
    form.add_field("file", body, filename=filename, content_type="text/csv")
    return form


async def test_upload_shows_the_columns_then_maps_imports_and_reports(client, store, fake):
    csrf = as_role(client, store, "supervisor")
    body = "name;phone\nA;+79123456789\nB;+79123456789\nC;nope\n".encode()
    r = await client.post("/campaigns/upload", data=upload_form(csrf, body, "debts.csv"))
    page = await r.text()
    assert r.status == 200 and fake.calls == []  # nothing imported before the mapping
    assert re.search(r"<th>name</th><th>phone</th>", page)  # the columns found
    assert "<td>+79123456789</td>" in page and "<td>nope</td>" in page  # the first rows
    assert re.search(r'name="col0".*?value="debtor_name" selected', page, re.S)  # guessed
    assert re.search(r'name="col1".*?value="phone" selected>Телефон \*<', page, re.S)
    token = re.search(r'action="/campaigns/import/([^"]+)"', page).group(1)
    r = await client.post(f"/campaigns/import/{token}",  # no phone column chosen
                          data={"csrf": csrf, "col0": "debtor_name", "col1": "ignore"})
    assert r.status == 400 and "Выберите столбец с номером телефона" in await r.text()
    r = await client.post(f"/campaigns/import/{token}", allow_redirects=False,
                          data={"csrf": csrf, "col0": "debtor_name", "col1": "phone"})
    assert r.status == 303 and r.headers["Location"] == f"/campaigns/import/{token}"
    for _ in range(100):
        s = await (await client.get(f"/api/imports/{token}")).json()
        if s["state"] != "importing":
            break
        await asyncio.sleep(0.05)
    assert s["state"] == "done" and s["done"] == s["total"] == 3
    page = await (await client.get(f"/campaigns/import/{token}")).text()
    assert re.search(r'data-summary="imported">1<', page)
    assert re.search(r'data-summary="rejected">1<', page)
    assert re.search(r'data-summary="duplicates">1<', page)
    assert fake.calls == [("import_calllist", "Тест", "debts.csv")]
    assert fake.mappings["Тест"] == {"name": "debtor_name", "phone": "phone"}
    entry = store.db.execute("SELECT who, action, object, key FROM audit_log").fetchall()
    assert [tuple(e) for e in entry] == [("anna", "import", "calllist", "Тест")]
    link = re.search(r'href="(/campaigns/report/[^"]+)"', page).group(1)
    report = await client.get(link)
    assert report.status == 200 and "bad phone" in await report.text()
    assert (await client.get("/campaigns/report/..%2Fdb.sqlite3")).status == 404
    assert (await client.get("/campaigns/report/nothing.csv")).status == 404
    as_role(client, store, "admin")  # someone else's upload is not theirs to see
    assert (await client.get(f"/api/imports/{token}")).status == 404


@pytest.mark.parametrize("body,filename,message", [
    (b"just some text\n", "notes.csv", "notes.csv: нет столбца с телефоном: это не список обзвона"),
    (b"\x89PNG....", "photo.png", "photo.png: это не список обзвона"),
])
async def test_upload_of_something_else_says_what_is_wrong(client, store, fake, body, filename,
                                                          message):
    csrf = as_role(client, store, "supervisor")
    r = await client.post("/campaigns/upload", data=upload_form(csrf, body, filename))
    assert r.status == 400
    page = await r.text()
    assert message in page and 'id="page-error"' in page and "Traceback" not in page


async def test_upload_too_large_says_so(client, store, fake, monkeypatch):
    import web_admin.app as app_mod
    monkeypatch.setattr(app_mod, "MAX_UPLOAD_BYTES", 64 * 1024)
    from aiohttp.test_utils import TestClient, TestServer
    async with TestClient(TestServer(app_mod.make_app(fake))) as small:
        csrf = as_role(small, store, "supervisor")
        body = b"name;phone\n" + b"A;+79123456789\n" * 10_000
        r = await small.post("/campaigns/upload", data=upload_form(csrf, body, "big.csv"))
        assert r.status == 413 and "Файл слишком большой" in await r.text()
    assert fake.calls == []


async def test_upload_without_a_file(client, store):
    csrf = as_role(client, store, "supervisor")
    import aiohttp
    form = aiohttp.FormData()
    form.add_field("csrf", csrf)
    form.add_field("campaign", "Тест")
    r = await client.post("/campaigns/upload", data=form)
    assert r.status == 400 and "Выберите файл списка обзвона" in await r.text()


@pytest.mark.parametrize("by", contract.KPI_BY)
async def test_kpi_by_every_grouping(client, store, fake, by):
    as_role(client, store, "supervisor")
    r = await client.get(f"/kpi?by={by}&campaign=Тест")
    page = await r.text()
    assert r.status == 200 and fake.calls == [("kpi", "Тест", by)]
    assert "42,0\u00a0%" in page and "125\u00a0000,00" in page and "3:05" in page
    assert 'class="num bad">5,0\u00a0%' in page  # abandoned above the 3 % cap stands out


async def test_kpi_bad_selector_says_so(client, store, fake):
    as_role(client, store, "supervisor")
    r = await client.get("/kpi?by=planet&campaign=Марс")
    assert r.status == 400
    page = await r.text()
    assert "Группировка planet: выберите одну из campaign, segment" in page
    assert "Кампании «Марс» нет" in page
    assert fake.calls == [("kpi", None, "campaign")]


async def test_dnc_add_shows_who_and_when_and_remove(client, store, fake):
    csrf = as_role(client, store, "supervisor")
    r = await client.post("/dnc/add", data={"csrf": csrf, "number": "8 (912) 000-11-22",
                                            "reason": "третье лицо"}, allow_redirects=False)
    assert r.status == 303
    page = await (await client.get("/dnc")).text()
    row = re.search(r'<tr data-number="\+79120001122">(.*?)</tr>', page, re.S).group(1)
    assert "третье лицо" in row and "<td>anna</td>" in row
    assert re.search(r"<td>\d\d\.\d\d\.\d{4}, \d\d:\d\d</td>", row)  # a Russian date, no epoch
    r = await client.post("/dnc/remove", data={"csrf": csrf, "number": "+79120001122"},
                          allow_redirects=False)
    assert r.status == 303 and all(e["e164"] != "+79120001122" for e in fake.dnc)


@pytest.mark.parametrize("number,reason,message", [
    ("", "x", "Укажите номер телефона"), ("+79120001122", "", "Укажите причину"),
    ("12", "x", "12 — не номер телефона")])
async def test_dnc_validation(client, store, fake, number, reason, message):
    csrf = as_role(client, store, "supervisor")
    r = await client.post("/dnc/add", data={"csrf": csrf, "number": number, "reason": reason})
    assert r.status == 400
    page = await r.text()
    assert message in page and 'id="form-error"' in page
    assert len(fake.dnc) == 1


# --- technician ---------------------------------------------------------------------------------
async def test_lines_page_shows_sim_health_and_reason(client, store):
    as_role(client, store, "technician")
    page = await (await client.get("/lines")).text()
    assert "8970102123456789012" in page and "нет SIM-карты" in page and "-77" in page
    assert "Тестовый звонок" in page and "1/2" in page
    page = await (await client.get("/lines?problems=1")).text()
    assert 'data-line="gsm1"' in page and 'data-line="gsm0"' not in page and "1/2" in page


async def test_lines_page_says_which_sim_rests_from_sms_and_why(client, store, fake):
    as_role(client, store, "technician")
    fake.lines[0]["sms_rest"] = {"until": 1764097200.0,
                                 "reason": "+CMS ERROR 38: network out of order"}
    page = await (await client.get("/lines")).text()
    row = re.search(r'<tr data-line="gsm0".*?</tr>', page, re.S).group(0)
    assert "SMS приостановлены до" in row and "сеть неисправна (+CMS ERROR 38)" in row
    page = await (await client.get("/lines?lang=en")).text()
    assert "SMS paused until" in page and "приостановлены" not in page
    assert "+CMS ERROR 38: network out of order" in page


async def test_line_block_unblock_test_call_balance(client, store, fake):
    csrf = as_role(client, store, "technician")
    r = await client.post("/lines/action", data={"csrf": csrf, "line": "gsm0", "action": "block"},
                          allow_redirects=False)
    assert r.status == 303 and fake.lines[0]["state"] == "blocked"
    page = await (await client.get("/lines")).text()
    assert 'value="unblock"' in page
    r = await client.post("/lines/action", data={"csrf": csrf, "line": "gsm0",
                                                 "action": "test_call", "number": "+79123456789"})
    page = await r.text()
    assert r.status == 200 and "answered" in page and 'id="action-result"' in page
    assert fake.calls[-1] == ("line_action", "gsm0", "test_call", {"number": "+79123456789"})
    r = await client.post("/lines/action", data={"csrf": csrf, "line": "gsm0",
                                                 "action": "check_balance"})
    assert "152.40 RUB" in await r.text()


@pytest.mark.parametrize("form,message", [
    ({"line": "gsm0", "action": "test_call", "number": ""}, "Укажите номер для тестового звонка"),
    ({"line": "gsm0", "action": "test_call", "number": "12"}, "12 — не номер телефона"),
    ({"line": "gsm9", "action": "block"}, "линия отказала: gsm9"),
    ({"line": "gsm0", "action": "reboot"}, "reboot")])
async def test_line_action_errors(client, store, fake, form, message):
    csrf = as_role(client, store, "technician")
    r = await client.post("/lines/action", data={"csrf": csrf, **form})
    assert r.status == 400 and message in await r.text()
    assert fake.lines[0]["state"] == "alerting"


# --- admin --------------------------------------------------------------------------------------
async def test_admin_adds_a_user_who_can_log_in(client, store):
    csrf = as_role(client, store, "admin")
    r = await client.post("/users/add", data={"csrf": csrf, "username": "petr",
                                              "password": "long enough pw", "role": "operator"},
                          allow_redirects=False)
    assert r.status == 303
    page = await (await client.get("/users")).text()
    assert 'data-user="petr"' in page
    client.session.cookie_jar.clear()
    r = await login(client, "petr", "long enough pw")
    assert r.status == 302 and r.headers["Location"] == "/desk"


@pytest.mark.parametrize("form,message", [
    ({"username": "x", "password": "long enough pw", "role": "operator"}, "от 2 до 64 латинских"),
    ({"username": "petr", "password": "short", "role": "operator"}, "не короче 10 символов"),
    ({"username": "petr", "password": "long enough pw", "role": "king"}, "роль king — не одна из"),
    ({"username": "anna", "password": "long enough pw", "role": "operator"},
     "пользователь anna уже есть")])
async def test_user_add_validation(client, store, form, message):
    csrf = as_role(client, store, "admin")
    r = await client.post("/users/add", data={"csrf": csrf, **form})
    assert r.status == 400 and message in await r.text()
    assert users.count(store) == 4


# --- errors, headers, logs ----------------------------------------------------------------------
async def test_a_failing_backend_shows_words_not_a_traceback(client, store, fake):
    def broken():
        raise RuntimeError("secret internals")
    fake.campaigns = broken
    as_role(client, store, "supervisor")
    with capture_logs():
        r = await client.get("/campaigns")
    page = await r.text()
    assert r.status == 500 and "Внутренняя ошибка" in page
    assert "secret internals" not in page and "Traceback" not in page


async def test_a_failing_backend_closes_the_live_feed_with_a_word(client, store, fake):
    def broken():
        raise RuntimeError("secret internals")
    fake.status = broken
    as_role(client, store, "supervisor")
    with capture_logs() as logs:
        ws = await client.ws_connect("/ws")
        assert await ws.receive_json(timeout=5) == {
                "error": "Внутренняя ошибка. Подробности записаны в журнал; сообщите технику."}
        await ws.receive(timeout=5)  # closed by the server
        assert ws.closed
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["live_feed_failed"]


async def test_unknown_page_is_a_404_page(client, store):
    as_role(client, store, "supervisor")
    r = await client.get("/no/such/page")
    assert r.status == 404 and "Такой страницы нет" in await r.text()


@pytest.mark.parametrize("path", ["/", "/desk", "/campaigns", "/kpi", "/dnc", "/lines",
                                  "/users", "/login"])
async def test_pages_carry_csp_without_inline_script(client, store, path):
    as_role(client, store, "admin")
    r = await client.get(path)
    assert "default-src 'self'" in r.headers["Content-Security-Policy"]
    assert r.headers["X-Frame-Options"] == "DENY"
    html = await r.text()
    for tag in re.findall(r"<script([^>]*)>", html):
        assert 'type="application/json"' in tag or "src=" in tag
    assert not re.search(r"\son[a-z]+=", html)  # no inline event handlers


async def test_no_phone_numbers_or_names_in_info_logs(client, store, fake):
    csrf = as_role(client, store, "supervisor")
    with capture_logs() as logs:
        await client.post("/dnc/add", data={"csrf": csrf, "number": "+79120001122",
                                            "reason": "x"}, allow_redirects=False)
        csrf = as_role(client, store, "operator")
        fake.put_call("olga")
        await desk_post(client, csrf, "/desk/disposition", {
            "call_id": "c-1", "kind": "promise", "details": {"amount": "1", "date": "2026-12-01"}})
    assert {e["event"] for e in logs} >= {"dnc_added", "desk_disposition"}
    text = json.dumps(logs, ensure_ascii=False, default=str)
    assert "79120001122" not in text and "Иванов" not in text and "79123456789" not in text


# --- languages (the catalogues themselves: test_i18n.py) ----------------------------------------
@pytest.mark.parametrize("role", list(PEOPLE))
async def test_every_page_of_every_role_renders_in_english_without_russian_left(client, store,
                                                                                role):
    as_role(client, store, role)
    access = {name: roles for _, _, _, name, roles in ROUTES}
    for name, path in (("dashboard", "/"), ("desk", "/desk"), ("campaigns", "/campaigns"),
                       ("kpi", "/kpi"), ("dnc", "/dnc"), ("lines", "/lines"), ("users", "/users"),
                       ("tls", "/tls")):
        if role not in access[name]:
            continue
        html = await (await client.get(path + "?lang=en")).text()
        body = re.sub(r'<script type="application/json".*?</script>', "", html, flags=re.S)
        body = re.sub(r"<[^>]+>", " ", body)
        # data from the backend may be Russian (names, reasons); the interface words may not
        for word in ("Попытки", "Кампании", "Выйти", "Линия", "Телефон", "Сохранить", "Роль"):
            assert word not in body, (path, word)




# --- arbitrary input never breaks a page ---------------------------------------------------------
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                    | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)
DESK_CALL = st.fixed_dictionaries(
    {"call_id": st.one_of(st.just("c-1"), st.text(max_size=5)),
     "kind": st.sampled_from(contract.DISPOSITIONS + ("", "x")),
     "details": st.one_of(JSON, st.dictionaries(st.sampled_from(["amount", "date", "at", "text"]),
                                                JSON | st.text(max_size=12), max_size=4))},
    optional={"ready": JSON})
DESK_BODY = st.one_of(JSON, DESK_CALL, DESK_CALL, DESK_CALL)  # mostly well-formed, oddly filled


# Hypothesis warns when a recursive strategy's ``extend`` seems not to use its argument. JSON's
# extend does use it, yet the warning came once in a whole-suite run (never alone, not
# reproduced); it is a false alarm here, not a problem of the box's desk.
@pytest.mark.filterwarnings("ignore:extend=.*can't actually recurse")
@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(["/desk/ready", "/desk/hangup", "/desk/disposition"]),
       body=DESK_BODY)
def test_desk_answers_any_json_with_a_message_never_a_fault(people_db, tmp_path, path, body):
    async def run():
        shutil.copy(people_db, tmp_path / "h.sqlite3")
        store = Store(tmp_path / "h.sqlite3")
        fake = FakeBackend(store)
        fake.put_call("olga")
        async with TestClient(TestServer(make_app(fake))) as client:
            csrf = as_role(client, store, "operator")
            with capture_logs() as logs:
                r = await client.post(path, json=body, headers={"X-CSRF-Token": csrf})
                out = await r.json()
        store.close()
        assert r.status in (200, 400), out
        assert ("error" in out) == (r.status == 400)
        assert not [e for e in logs if e["log_level"] in ("error", "critical")]
        if r.status == 400:  # refused: nothing recorded, the call is still there
            assert not [c for c in fake.calls if c[0] == "desk_disposition"]
    asyncio.run(run())


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(number=st.text(max_size=20), reason=st.text(max_size=20))
def test_dnc_form_answers_any_text_with_a_page(people_db, tmp_path, number, reason):
    async def run():
        shutil.copy(people_db, tmp_path / "h.sqlite3")
        store = Store(tmp_path / "h.sqlite3")
        fake = FakeBackend(store)
        async with TestClient(TestServer(make_app(fake))) as client:
            csrf = as_role(client, store, "supervisor")
            r = await client.post("/dnc/add", data={"csrf": csrf, "number": number,
                                                    "reason": reason}, allow_redirects=False)
            page = await r.text()
        store.close()
        assert r.status in (303, 400)
        if r.status == 400:
            assert 'id="form-error"' in page and len(fake.dnc) == 1
        else:
            assert len(fake.dnc) == 2 and fake.dnc[0]["e164"].startswith("+")
    asyncio.run(run())


async def test_admin_disables_resets_and_nobody_removes_the_last_admin(client, store):
    csrf = as_role(client, store, "admin")
    r = await client.post("/users/disable", data={"csrf": csrf, "username": "root",
                                                  "disabled": "1"})
    assert r.status == 400 and "root — последний администратор" in await r.text()
    olga = users.verify(store, "olga", PASSWORD)
    token, _ = users.open_session(store, olga["id"])
    r = await client.post("/users/disable", allow_redirects=False,
                          data={"csrf": csrf, "username": "olga", "disabled": "1"})
    assert r.status == 303 and users.verify(store, "olga", PASSWORD) is None
    assert users.session_user(store, token) is None  # her session ended at once
    page = await (await client.get("/users")).text()
    assert re.search(r'data-user="olga">.*?отключён.*?Включить', page, re.S)
    await client.post("/users/disable", data={"csrf": csrf, "username": "olga", "disabled": "0"})
    r = await client.post("/users/password", data={"csrf": csrf, "username": "olga",
                                                   "password": "short"})
    assert r.status == 400 and "не короче 10 символов" in await r.text()
    r = await client.post("/users/password", data={"csrf": csrf, "username": "olga",
                                                   "password": "a new long password"})
    assert r.status == 200 and "Пароль пользователя olga изменён" in await r.text()
    assert users.verify(store, "olga", "a new long password") is not None
    actions = [tuple(a) for a in store.db.execute(
        "SELECT action, key FROM audit_log WHERE object='user' ORDER BY id")]
    assert actions == [("disable", "olga"), ("enable", "olga"), ("reset_password", "olga")]
    assert "a new long password" not in str(list(store.db.execute("SELECT * FROM audit_log")))


async def test_everyone_changes_their_own_password(client, store):
    csrf = as_role(client, store, "operator")
    page = await (await client.get("/account")).text()
    assert "Сменить пароль" in page
    r = await client.post("/account/password", data={"csrf": csrf, "old": "wrong one!!",
                                                     "new": "another password", "again":
                                                     "another password"})
    assert r.status == 400 and "текущий пароль неверен" in await r.text()
    r = await client.post("/account/password", data={"csrf": csrf, "old": PASSWORD,
                                                     "new": "another password", "again":
                                                     "another passwort"})
    assert r.status == 400 and "Новые пароли не совпадают" in await r.text()
    r = await client.post("/account/password", data={"csrf": csrf, "old": PASSWORD,
                                                     "new": "another password", "again":
                                                     "another password"})
    assert r.status == 200 and "Ваш пароль изменён" in await r.text()
    assert users.verify(store, "olga", "another password") is not None
    assert (await client.get("/desk")).status == 200  # this session stays


async def test_dashboard_warns_when_the_recordings_disk_runs_low(client, store, fake):
    as_role(client, store, "supervisor")
    fake.warnings = [{"code": "recordings_disk_full", "free_mb": 300.4, "limit_mb": 512}]
    page = await (await client.get("/")).text()
    assert 'data-warning="recordings_disk_full"' in page
    assert "Диск для записей заполнен: автоматический обзвон приостановлен" in page and "300 МБ" in page
    page = await (await client.get("/?lang=en")).text()
    assert "The recordings disk is full" in page and "300 MB" in page
    fake.warnings = []
    assert "data-warning" not in await (await client.get("/")).text()


async def test_sms_page_shows_senders_rules_templates_a_preview_and_the_messages(client, store,
                                                                                 fake):
    csrf = as_role(client, store, "supervisor")
    page = await (await client.get("/sms?campaign=Тест")).text()
    assert "ООО «Кредит»" in page and "Напоминание накануне срока обещания" in page
    assert re.search(r"<td>dpd 1-30</td><td>Просроченный платёж, Напоминание", page)
    shown = re.sub(r"<script.*?</script>", "", page, flags=re.S)
    assert "доставлено" in shown and ">delivered<" not in shown and "due_reminder<" not in shown
    r = await client.post("/sms/template", data={
        "csrf": csrf, "campaign": "Тест", "rule": "due_reminder", "do": "preview",
        "text": "{name}, долг {amount} {currency}. {creditor}, тел. {contact_phone}"})
    page = await r.text()
    preview = re.search(r'id="sms-preview">(.*?)</div>', page, re.S).group(1)
    assert "Иван Иванович, долг 5\u00a0000,00 ₽. ООО «Кредит», тел. +74950000000" in preview
    assert not [c for c in fake.calls if c[0] == "sms_settings_save"]  # a preview saves nothing
    r = await client.post("/sms/template", data={
        "csrf": csrf, "campaign": "Тест", "rule": "due_reminder", "do": "save",
        "text": "{name}, долг {amount} {currency}."})
    assert r.status == 400 and "по закону" in (await r.text()).lower()
    r = await client.post("/sms/template", data={
        "csrf": csrf, "campaign": "Тест", "rule": "due_reminder", "do": "save",
        "text": "{name}, долг {amount} {currency}. {creditor}, тел. {contact_phone}"})
    assert r.status == 200 and "Шаблон сохранён" in await r.text()
    assert fake.calls[-1][:3] == ("sms_settings_save", "Тест", "anna")


async def test_received_sms_are_listed_for_supervisors_and_on_the_debtors_card(client, store,
                                                                             fake):
    from controller import audit, sms_inbox
    from firmware.lineapi import InboundSms
    cid = store.campaign("Банк", create=True)
    store.upsert_account(cid, {"account_id": "КД-7", "debtor_name": "Петров Пётр"},
                         [("+79001112233", "mobile")])
    stop, _, _ = sms_inbox.keep(store, InboundSms("gsm1", "+79001112233", "СТОП!!! Не звоните",
                                                  0.0, uid="u1"))
    sms_inbox.keep(store, InboundSms("gsm0", "+79995550000", "Кто это?", 0.0, uid="u2"))
    pk = store.db.execute("SELECT id FROM accounts WHERE account_id='КД-7'").fetchone()[0]
    csrf = as_role(client, store, "supervisor")
    page = await (await client.get("/sms?campaign=Тест")).text()
    section = re.search(r'id="sms-received">(.*?)</section>', page, re.S).group(1)
    assert f'<a href="/debtors/{pk}">Петров Пётр</a> (КД-7)' in section
    assert "Похоже на отказ: «стоп»" in section and "неизвестный номер" in section
    assert "Кто это?" in section and "СТОП!!! Не звоните" in section
    home = await (await client.get("/")).text()  # the supervisor's first page says so
    assert re.search(r'<a href="/sms\?flagged=1#sms-received">Полученные SMS, похожие на '
                     r'отказ, ждут решения человека: 1</a>', home)
    flagged = await (await client.get("/sms?flagged=1")).text()
    assert "СТОП!!!" in flagged and "Кто это?" not in flagged
    card = await (await client.get(f"/debtors/{pk}")).text()
    received = re.search(r'id="debtor-sms-received">(.*?)</table>', card, re.S).group(1)
    assert "СТОП!!! Не звоните" in received and "Похоже на отказ" in received
    assert "Оформить отказ" in section and "Не отказ" in section  # the person decides
    r = await client.post("/sms/received/decide", allow_redirects=False, data={
        "csrf": csrf, "id": str(stop), "decision": "refusal_recorded", "flagged": "1"})
    assert r.status == 303 and r.headers["Location"] == "/sms?flagged=1#sms-received"
    [entry] = audit.entries(store, obj="refusal", key=f"sms:{stop}")
    assert (entry["who"], entry["after"]["decision"]) == ("anna", "refusal_recorded")
    from controller import refusals
    person = store.db.execute("SELECT person_key FROM accounts WHERE id=?", (pk,)).fetchone()[0]
    [refusal] = refusals.of_person(store, person)  # every call and message to him stops
    assert (refusal["kind"], refusal["channel"], refusal["by"]) == ("debtor", "sms", "anna")
    assert refusal["note"] == "SMS: СТОП!!! Не звоните"
    card = await (await client.get(f"/debtors/{pk}")).text()
    assert "отказ оформлен (anna)" in card
    assert 'id="flagged-sms"' not in await (await client.get("/")).text()
    r = await client.post("/sms/received/decide", data={"csrf": csrf, "id": str(stop),
                                                         "decision": "not_a_refusal"})
    assert r.status == 400 and "уже решено" in await r.text()
    r = await client.post("/sms/received/decide", data={"csrf": csrf, "id": str(stop + 1),
                                                         "decision": "not_a_refusal"})
    assert r.status == 400 and "не отмечено: решать нечего" in await r.text()


async def test_a_campaign_is_created_edited_started_stopped_and_archived_in_the_browser(
        client, store, fake):
    csrf = as_role(client, store, "supervisor")
    r = await client.post("/campaigns/create", allow_redirects=False, data={
        "csrf": csrf, "name": "Банк-Ноябрь", "creditor": "Банк", "mode": "preview",
        "compliance": "ru-230fz"})
    assert r.status == 303 and r.headers["Location"] == "/campaign/%D0%91%D0%B0%D0%BD%D0%BA-" \
                                                        "%D0%9D%D0%BE%D1%8F%D0%B1%D1%80%D1%8C"
    assert ("campaign_create", "Банк-Ноябрь", "anna") in fake.calls
    r = await client.post("/campaigns/create", data={
        "csrf": csrf, "name": "Банк-Ноябрь", "creditor": "", "mode": "preview",
        "compliance": "ru-230fz"})
    assert r.status == 400 and "кампания с названием Банк-Ноябрь уже есть" in await r.text()
    page = await (await client.get("/campaign/Банк-Ноябрь")).text()
    assert 'id="campaign-status">черновик<' in page and 'value="start"' in page
    form = {"csrf": csrf, "name": "Банк-Ноябрь", "creditor": "Банк", "mode": "preview",
            "compliance": "ru-230fz", "weight": "3", "line_group": "gsm0, gsm1",
            "operators": "olga", "teams": "", "wrap_limit_s": "90", "wrap_after": "paused",
            "take_s": "30", "schedule_on": "1", "from": "09:00", "to": "19:00", "tz": "Europe/Moscow"}
    data = [(k, v) for k, v in form.items()] + [("day", str(d)) for d in range(1, 6)]
    r = await client.post("/campaign/Банк-Ноябрь/settings", data=data, allow_redirects=False)
    assert r.status == 303
    update = [c for c in fake.calls if c[0] == "campaign_update"][-1]
    assert update[3] == "anna" and update[2] == {  # only what changed is sent (and audited)
        "weight": 3, "line_group": ["gsm0", "gsm1"], "operators": ["olga"], "wrap_limit_s": 90,
        "wrap_after": "paused", "take_s": 30, "schedule": {"days": [1, 2, 3, 4, 5], "from": "09:00",
                                             "to": "19:00", "tz": "Europe/Moscow"}}
    r = await client.post("/campaign/Банк-Ноябрь/settings", data=dict(form, weight="много"))
    assert r.status == 400 and "weight: нужно целое число" in await r.text()
    # The pacing target, typed in percent the Russian way, within the law (ru-230fz: 1 %).
    r = await client.post("/campaign/Банк-Ноябрь/settings", data=[*data, ("abandon_target",
                                                                          "0,8")],
                          allow_redirects=False)
    assert r.status == 303
    assert [c for c in fake.calls if c[0] == "campaign_update"][-1][2] == {
        "abandon_target": 0.008}
    page = await (await client.get("/campaign/Банк-Ноябрь")).text()
    assert 'name="abandon_target" type="number" min="0.1" max="100" step="0.1" value="0.8"' \
        in page and 'name="take_s" type="number" min="5" max="120" value="30"' in page
    r = await client.post("/campaign/Банк-Ноябрь/settings", data=[*data, ("abandon_target",
                                                                          "2")])
    assert r.status == 400 and "не более 1 %" in await r.text()
    r = await client.post("/campaign/Банк-Ноябрь/settings", data=[*data, ("abandon_target",
                                                                          "много")])
    assert r.status == 400 and "нужно число процентов" in await r.text()
    for action, status in (("start", "running"), ("stop", "stopped"), ("archive", "archived")):
        r = await client.post("/campaigns/action", allow_redirects=False, data={
            "csrf": csrf, "name": "Банк-Ноябрь", "action": action, "back": "1"})
        assert r.status == 303, await r.text()
        assert fake._campaign("Банк-Ноябрь")["status"] == status
    page = await (await client.get("/campaigns")).text()
    row = re.search(r'<tr data-campaign="Банк-Ноябрь">(.*?)</tr>', page, re.S).group(1)
    assert "в архиве" in row and 'value="unarchive"' in row and 'value="start"' not in row
    r = await client.post("/campaigns/action", data={"csrf": csrf, "name": "Тест",
                                                     "action": "archive"})
    assert r.status == 400 and "остановите кампанию" in await r.text()


async def test_segments_and_strategies_are_edited_with_the_script_and_retries(client, store,
                                                                              fake):
    csrf = as_role(client, store, "supervisor")
    page = await (await client.get("/campaign/Тест/segments")).text()
    assert 'name="seg0_name" value="dpd 1-30"' in page and "Добрый день!" in page
    form = {"csrf": csrf, "count": "1", "seg0_name": "dpd 1-30", "seg0_rest": "{}",
            "seg0_dpd_min": "1", "seg0_dpd_max": "30", "seg0_mode": "preview",
            "seg0_attempts_per_day": "2", "seg0_max_attempts": "", "seg0_priority": "10",
            "seg0_abandon_target": "0,5",
            "seg0_retry_busy": "5", "seg0_sms": "due_reminder", "seg0_phone_order": "mobile",
            "seg0_script": "Здравствуйте, {имя}! Напоминаем о платеже.",
            "seg1_name": "90+", "seg1_rest": "{}", "seg1_dpd_min": "91", "seg1_dpd_max": "",
            "seg1_mode": "", "seg1_attempts_per_day": "1", "seg1_priority": "40"}
    r = await client.post("/campaign/Тест/segments", data=form, allow_redirects=False)
    assert r.status == 303, await r.text()
    segs = fake.segments["Тест"]
    assert [s["name"] for s in segs] == ["dpd 1-30", "90+"]
    assert segs[0]["strategy"]["mode"] == "preview" and segs[0]["strategy"]["retry_s"] == {
        "busy": 300.0} and segs[0]["script"].startswith("Здравствуйте")
    assert segs[1]["rules"] == {"dpd": [91, None]} and segs[1]["strategy"]["mode"] is None
    assert (segs[0]["strategy"]["abandon_target"], segs[1]["strategy"]["abandon_target"]) == \
        (0.005, None)  # the second dials to the campaign's target
    page = await (await client.get("/campaign/Тест/segments")).text()
    assert 'name="seg0_abandon_target" type="number" min="0.1" max="100" step="0.1" ' \
           'value="0.5"' in page
    r = await client.post("/campaign/Тест/segments", data=dict(form, seg1_name="dpd 1-30"))
    assert r.status == 400 and "каждое название один раз" in await r.text()
    assert [s["name"] for s in fake.segments["Тест"]] == ["dpd 1-30", "90+"]  # unchanged


async def test_admin_puts_a_user_in_a_team_and_sees_the_campaigns_they_work(client, store):
    csrf = as_role(client, store, "admin")
    r = await client.post("/users/team", allow_redirects=False,
                          data={"csrf": csrf, "username": "olga", "team": "Мягкий сбор"})
    assert r.status == 303
    page = await (await client.get("/users")).text()
    row = re.search(r'<tr data-user="olga">(.*?)</tr>', page, re.S).group(1)
    assert 'value="Мягкий сбор"' in row and '<td class="campaigns">Тест</td>' in row
    r = await client.post("/users/team", data={"csrf": csrf, "username": "olga",
                                               "team": "<script>"})
    assert r.status == 400 and "команда &lt;script&gt;: от 1 до 64" in await r.text()
    audit = store.db.execute("SELECT action, key, after FROM audit_log WHERE action='team'"
                             ).fetchall()
    assert [(a[0], a[1]) for a in audit] == [("team", "olga")] and "Мягкий" in audit[0][2]


# --- Russian words for the box's own messages ---------------------------------------------------
async def test_a_profile_with_mistakes_is_explained_in_russian_next_to_each_line(client, store,
                                                                                    fake):
    from tests.test_i18n import russian_only
    csrf = as_role(client, store, "technician")
    text = (await (await client.get("/hardware/profiles/sim800")).text())
    bad = "\n".join([
        "name: sim800", "driver: gsm", "dialect: sim80", "baud: 12345", "audio: analog-seat",
        "modules:", "  - {port: /dev/ttyUSB0, seat: pos1, number: '8916'}",
        "  - {port: /dev/ttyUSB0, seat: pos2}", "  - {seat: pos3, audio_port: /dev/ttyUSB9}",
        'init: ["AT+CLIR=1", "ATZ", "CLIP=1"]', "hangup: ATA", "reset: hook",
        "limits: {ring_timout_s: 40, max_call_s: -1, calls_per_sim_per_day: many}",
        "max_failures: 0", "health_interval_s: yes", "ussd_balance: 100"])
    r = await client.post("/hardware/profiles/sim800", data={"csrf": csrf, "text": bad})
    page = await r.text()
    assert r.status == 400 and "Не сохранено" in page and text
    problems = " ".join(re.findall(r'<span class="problem">(.*?)</span>', page, re.S))
    assert len(re.findall(r'<span class="problem">', page)) >= 14
    assert "неизвестный ключ «ring_timout_s» (может быть, «ring_timeout_s»?)" in problems
    assert "неизвестный диалект «sim80»" in problems and "(может быть, «sim800»?)" in problems
    assert "порт «/dev/ttyUSB0» уже занят модулем 1" in problems
    assert "«calls_per_sim_per_day» должно быть: целое число; сейчас: текст &#39;many&#39;" in problems
    assert "скрыла бы номер звонящего" in problems
    leftover = russian_only(problems, ("firmware/",))
    assert not leftover, leftover
    english = await (await client.post("/hardware/profiles/sim800?lang=en",
                                       data={"csrf": csrf, "text": bad})).text()
    assert "unknown key &#39;ring_timout_s&#39; (did you mean &#39;ring_timeout_s&#39;?)" in english
    assert not (fake.profiles_dir / "sim800.yaml").exists()


async def test_an_e1_profile_with_mistakes_is_explained_in_russian(client, store, fake):
    from tests.test_i18n import russian_only
    csrf = as_role(client, store, "technician")
    bad = "\n".join([
        "name: e1-test", "driver: e1", "spans:",
        "  - {name: e1-0, transport: tcp, address: nowhere, channels: '1-16', swich: x}",
        "  - {name: e1-0, transport: dahdi, calling_number: abc, audio: /dev/x,",
        "     ring_timeout_s: 0, timers: {t303: 0, k: 200, n200: 2.5}}",
        "  - {transport: carrier-pigeon, blocked: '40'}"])
    r = await client.post("/hardware/profiles/e1-test", data={"csrf": csrf, "text": bad})
    page = await r.text()
    problems = " ".join(re.findall(r'<span class="problem">(.*?)</span>', page, re.S))
    assert r.status == 400 and "тайм-слот 16 — не B-канал" in problems
    assert "имя потока «e1-0» встречается дважды" in problems
    leftover = russian_only(problems, ("firmware/",))
    assert not leftover, leftover
    for text, line, says in (
            ("name: [unclosed\ndriver: e1\n", 2, "не закрыта скобка списка или словаря"),
            ("name: x\ndriver: gsm\nmodules:\n\t- {port: sim://0}\n", 4, "делайте отступы"),
            ("name: x\nussd_balance: *100#\n", 2, "возьмите его в кавычки")):
        r = await client.post("/hardware/profiles/e1-test", data={"csrf": csrf, "text": text})
        page = await r.text()
        assert r.status == 400 and f'data-line="{line}"' in page
        problem = re.search(r'<span class="problem">(.*?)</span>', page, re.S)[1]
        assert "это не YAML: " in problem and says in problem, problem
        assert not russian_only(problem, ("firmware/",)), problem


async def test_the_card_names_the_law_s_windows_in_russian(client, store, fake):
    from controller.calllist import AccountWriter
    from controller.compliance.profiles import RU_230FZ
    from tests.test_i18n import russian_only
    cid = store.campaign("Банк", create=True)
    w = AccountWriter(store, cid)
    w.add({"account_id": "A-1", "debtor_name": "Иванов Иван"}, [("+79123456789", "mobile")])
    w.finish()
    pk = store.db.execute("SELECT id FROM accounts WHERE account_id='A-1'").fetchone()[0]
    limits = RU_230FZ.voice.limits  # the engine's own words for its windows, as evidence keeps
    real = fake.compliance_evidence

    from datetime import datetime
    from zoneinfo import ZoneInfo

    from controller.compliance import InMemoryContactHistory, LeadContext, check
    msk = ZoneInfo("Europe/Moscow")
    lead = LeadContext("person-1", phone="+79161234567", tz="Europe/Moscow")
    past = InMemoryContactHistory()
    for day in (27, 28):
        past.record_call(lead.debtor_id, datetime(2026, 9, day, 10, tzinfo=msk),
                         conversation=True, phone=lead.phone)
    refused = check("ru-230fz", lead, at=datetime(2026, 9, 29, 10, tzinfo=msk), history=past)
    assert not refused.allowed  # the engine's own refusal, as the dialer stores it

    def evidence(account_id):
        out = real(account_id)
        out["calls"][0]["evidence"]["counters"] = [
            {"limit": lim.code, "window": lim.window_name(), "scope": "person", "count": 0,
             "maximum": lim.maximum} for lim in limits]
        out["not_called"][0].update(code=refused.reasons[0].code,
                                    detail=refused.reasons[0].text,
                                    evidence=refused.evidence())
        return out
    fake.compliance_evidence = evidence
    as_role(client, store, "supervisor")
    page = await (await client.get(f"/debtors/{pk}")).text()
    table = re.search(r'<table class="grid" id="debtor-evidence">.*?</table>', page, re.S)[0]
    counts = re.sub(r"<[^>]+>", " ", table)
    for ru in ("любые 24 часа", "любые 7 дней", "любой 31 день",
               "2 разговора с этим человеком за любые 7 дней, не больше 2"):
        assert ru in counts, ru
    assert not russian_only(counts, ("web_admin/labels.py",))
    assert not re.search(r"\bany\b|\bhours\b|\bdays\b", counts)
    english = await (await client.get(f"/debtors/{pk}?lang=en")).text()
    assert "(any 24 hours)" in english and "(any 31 days)" in english
    assert "2 conversations already with this person in the 7 days" in english


async def test_the_card_says_in_russian_why_hours_dnc_and_a_refusal_kept_him_uncalled(
        client, store, fake):
    """The engine's own refusals, kept in the store as the dialer keeps them: their details
    (not only the label) are read back in the page's language."""
    from datetime import datetime, timezone
    from zoneinfo import ZoneInfo

    from controller import evidence
    from controller.calllist import AccountWriter
    from controller.compliance import InMemoryContactHistory, LeadContext, Refusal, check
    from tests.test_i18n import russian_only
    cid = store.campaign("Банк", create=True)
    w = AccountWriter(store, cid)
    w.add({"account_id": "A-1", "debtor_name": "Иванов Иван"}, [("+79123456789", "mobile")])
    w.finish()
    pk = store.db.execute("SELECT id FROM accounts WHERE account_id='A-1'").fetchone()[0]
    lead = LeadContext("person-1", phone="+79123456789", tz="Europe/Moscow")
    saturday_night = datetime(2026, 10, 3, 23, 30, tzinfo=ZoneInfo("Europe/Moscow"))
    noon = datetime(2026, 10, 5, 12, tzinfo=ZoneInfo("Europe/Moscow"))
    refusal = Refusal("debtor", datetime(2026, 9, 1, 9, tzinfo=timezone.utc), channel="desk")
    none = InMemoryContactHistory()
    decisions = [check("ru-230fz", lead, at=saturday_night, history=none),
                 check("ru-230fz", lead, at=noon, history=none, dnc="просил не звонить"),
                 check("ru-230fz", lead, at=noon, history=none, refusals=[refusal]),
                 check("ru-230fz", LeadContext("person-1"), at=noon, history=none)]
    assert [d.reasons[0].code for d in decisions] == ["holiday_hours", "dnc", "refusal",
                                                      "unknown_timezone"]
    with store.tx():
        for i, d in enumerate(decisions):
            store._decide(1764060000.0 + i, cid, pk, d.reasons[0].code, d.reasons[0].text,
                          evidence=d.evidence())
    fake.compliance_evidence = lambda account_id: evidence.of_person(store, store.person_of(pk))
    as_role(client, store, "supervisor")
    page = await (await client.get(f"/debtors/{pk}")).text()
    table = re.search(r'<table class="grid" id="debtor-evidence">.*?</table>', page, re.S)[0]
    rows = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", r)).strip()
            for r in re.findall(r'<tr class="muted not-done">(.*?)</tr>', table, re.S)]
    assert len(rows) == 4, rows
    unknown, refused, dnc, hours = rows  # newest first
    assert ("местное время 2026-10-03 23:30 (Europe/Moscow) вне разрешённых часов "
            "09:00–20:00 (день: выходной день (суббота))") in hours, hours
    assert "номер в списке «не звонить»: просил не звонить" in dnc, dnc
    assert ("должник отказался от взаимодействия 2026-09-01 09:00 UTC (в разговоре); "
            "ни звонков, ни сообщений") in refused, refused
    assert "местное время должника неизвестно" in unknown, unknown
    for row in rows[1:]:  # the unknown zone's own note (what the lead lacks) stays English
        assert not russian_only(row, ("controller/compliance/",)), row
    english = await (await client.get(f"/debtors/{pk}?lang=en")).text()
    assert "is outside 09:00-20:00, the hours allowed on a weekend day (Saturday)" in english
    assert "the debtor refused interaction on 2026-09-01 09:00 UTC (desk)" in english


async def test_a_technician_resets_a_line_from_the_page_and_it_is_audited(client, store, fake):
    from controller import audit
    csrf = as_role(client, store, "technician")
    page = await (await client.get("/lines")).text()
    assert 'value="reset"' in page and "Сбросить" in page
    r = await client.post("/lines/action", data={"line": "gsm0", "action": "reset"})
    assert r.status == 403 and fake.calls == []  # no CSRF token, no reset
    r = await client.post("/lines/action", data={"csrf": csrf, "line": "gsm0",
                                                 "action": "reset"})
    page = await r.text()
    assert r.status == 200 and "gsm0: модуль перезапускается" in page
    assert fake.calls[-1] == ("line_action", "gsm0", "reset", {})
    entry = audit.entries(store, obj="line")[0]
    assert (entry["action"], entry["key"], entry["who"]) == ("reset", "gsm0", "ted")
    assert entry["before"] == {"state": "alerting"} and entry["after"] == {"reset": "module"}
    r = await client.post("/lines/action", data={"csrf": csrf, "line": "gsm9",
                                                 "action": "reset"})
    assert r.status == 400 and "линия отказала: gsm9" in await r.text()
    as_role(client, store, "supervisor")
    r = await client.post("/lines/action", data={"csrf": csrf, "line": "gsm0",
                                                 "action": "reset"})
    assert r.status == 403


async def test_the_admin_changes_the_time_zone_retention_and_disk_limits(client, store, fake):
    from controller import audit
    csrf = as_role(client, store, "admin")
    page = await (await client.get("/settings")).text()
    assert 'name="time_zone"' in page and "<option selected>Europe/Moscow</option>" in page
    form = {"csrf": csrf, "time_zone": "Asia/Yekaterinburg", "retention_days": "400",
            "disk_warn_free_mb": "4096", "disk_stop_free_mb": "1024"}
    r = await client.post("/settings", data={k: v for k, v in form.items() if k != "csrf"})
    assert r.status == 403 and fake.settings["time_zone"] == "Europe/Moscow"  # no CSRF token
    page = await (await client.post("/settings", data=form)).text()
    assert "Сохранено и применено; перезапуск не понадобился." in page
    assert fake.settings["time_zone"] == "Asia/Yekaterinburg"
    assert fake.settings["retention_days"] == 400 and fake.settings["disk_stop_free_mb"] == 1024
    assert "<option selected>Asia/Yekaterinburg</option>" in page and "400 дн." in page
    entry = audit.entries(store, obj="setting")[0]
    assert entry["who"] == "root" and entry["action"] == "change"
    assert entry["before"]["time_zone"] == "Europe/Moscow"
    assert entry["after"] == {"time_zone": "Asia/Yekaterinburg", "retention_days": 400,
                              "disk_warn_free_mb": 4096.0, "disk_stop_free_mb": 1024.0}
    page = await (await client.post("/settings", data=form)).text()
    assert "Ничего не изменилось." in page and len(audit.entries(store, obj="setting")) == 1
    fake.law_retention_days, fake.settings_kept = 1096, False
    page = await (await client.post("/settings", data=dict(form, retention_days="30"))).text()
    assert "до его следующего запуска" in page and "1096 дн." in page
    assert "Закон запущенных кампаний хранит записи 1096 дн." in page


@pytest.mark.parametrize("field,value,message", [
    ("time_zone", "Moscow", "Moscow — не часовой пояс"),
    ("time_zone", "../../etc/passwd", "не часовой пояс"),
    ("retention_days", "три года", "целым числом дней"),
    ("retention_days", "0", "от 1 до 36500 дней"),
    ("disk_warn_free_mb", "много", "числом мегабайт"),
    ("disk_stop_free_mb", "4096", "остатке свободного места, чем предупреждение (2048 МБ)"),
    ("disk_stop_free_mb", "-5", "больше 0 мегабайт")])
async def test_settings_that_cannot_be_are_refused_with_the_reason(client, store, fake, field,
                                                                   value, message):
    from controller import audit
    csrf = as_role(client, store, "admin")
    r = await client.post("/settings", data={"csrf": csrf, field: value})
    page = await r.text()
    assert r.status == 400 and message in page and 'id="settings-error"' in page
    assert fake.settings["time_zone"] == "Europe/Moscow" and fake.settings["retention_days"] == 1096
    assert not audit.entries(store, obj="setting")
    assert f'value="{value}"' in page or f"<option selected>{value}</option>" in page


async def test_the_operators_report_shows_logged_in_time_and_occupancy(client, store, fake):
    from datetime import datetime, timezone
    today = datetime.fromtimestamp(store.clock.wall(), timezone.utc).date().isoformat()
    store.db.executemany("INSERT INTO operator_time (day, position, state, seconds) VALUES "
                         "(?,?,?,?)", [(today, "desk-anna", s, v) for s, v in (
                             ("not_ready", 600), ("free", 1800), ("talking", 3600),
                             ("wrap_up", 1800), ("break", 900), ("desk_gone", 40000))])
    store.db.commit()
    as_role(client, store, "supervisor")
    page = await (await client.get("/reports?report=operators")).text()
    for header in ("В системе", "На линии", "Перерывы", "Занятость"):
        assert f"<th>{header}</th>" in page or header in page, header
    row = re.search(r"<tr>\s*<td>anna</td>.*?</tr>", page, re.S)[0]
    assert "75,0\u00a0%" in row  # 5400 s handling of 7200 s on the floor
    assert "<td class=\"num\">120:00</td>" in row or "120:00" in row  # on the floor: 2 h
    assert "<svg" in page and "Занятость" in page.split("<svg", 1)[1]
    csv_text = (await (await client.get("/reports/export?report=operators")).read()
                ).decode("utf-8-sig")
    head, anna = csv_text.splitlines()[0].split(";"), next(
        ln for ln in csv_text.splitlines() if ln.startswith("anna;")).split(";")
    got = dict(zip(head, anna))
    assert got["В системе"] == "8700.0" and got["На линии"] == "7200.0"
    assert got["Занятость"] == "0.75" and got["Перерывы"] == "900.0"


@pytest.mark.parametrize("applied,says", [
    ({"when": "now", "lines": ["gsm0", "gsm1"], "busy": []},
     "Сохранён и применён: gsm0, gsm1 перезапущены с ним; остальные устройства работали"),
    ({"when": "after_calls", "lines": ["gsm0", "gsm1"], "busy": ["gsm1"]},
     "На gsm1 идёт разговор: линии этого устройства не берут новых звонков"),
    ({"when": "next_start", "lines": ["gsm0"], "busy": []}, "со следующего запуска"),
    ({"when": "not_running", "lines": [], "busy": []}, "не работает с этим профилем")])
async def test_saving_a_profile_says_when_it_takes_effect(client, store, fake, applied, says):
    csrf = as_role(client, store, "technician")
    fake.applied = applied
    text = await (await client.get("/hardware/profiles/sim800")).text()
    original = re.search(r'<textarea[^>]*>(.*?)</textarea>', text, re.S)[1]
    import html
    r = await client.post("/hardware/profiles/sim800",
                          data={"csrf": csrf, "text": html.unescape(original) + "# shop\n"})
    page = await r.text()
    assert r.status == 200 and says in page and 'id="profile-saved"' in page
    assert fake.calls[-1] == ("apply_profile", "sim800")


@pytest.fixture
def shop_zone():
    """Sets the process's time zone for a test (as /settings does), and puts it back after."""
    import os
    import time
    was = os.environ.get("TZ")

    def set_zone(name: str) -> None:
        os.environ["TZ"] = name
        time.tzset()
    yield set_zone
    if was is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = was
    time.tzset()


async def test_reports_count_days_and_hours_in_the_shops_time_zone(client, store, shop_zone):
    from tests.test_reports import _calls  # a call at Monday 23 Nov 2026, 07:00 UTC
    _calls(store, "Банк", "ru-230fz", [(0, "gsm0", "desk-olga", "answered", 60.0, 5.0, False)])
    as_role(client, store, "supervisor")
    hours = {}
    for zone in ("Europe/Moscow", "Asia/Vladivostok", "America/New_York"):
        shop_zone(zone)
        body = await (await client.get("/reports/export?report=heatmap&from=2026-11-23"
                                       "&to=2026-11-23")).read()
        rows = [ln.split(";") for ln in body.decode("utf-8-sig").splitlines()]
        hours[zone] = [int(r[1]) for r in rows[1:]]
    # 10:00 in Moscow, 17:00 in Vladivostok; in New York it was 02:00 on the 23rd too
    assert hours == {"Europe/Moscow": [10], "Asia/Vladivostok": [17], "America/New_York": [2]}
    shop_zone("Pacific/Kiritimati")  # UTC+14: it was already the 23rd's evening, 21:00
    body = await (await client.get("/reports/export?report=heatmap&from=2026-11-24"
                                   "&to=2026-11-24")).read()
    assert len(body.decode("utf-8-sig").splitlines()) == 1  # nothing on the 24th there


async def test_a_line_actions_answer_is_shown_in_words_not_keys(client, store, fake):
    csrf = as_role(client, store, "technician")
    r = await client.post("/lines/action", data={"csrf": csrf, "line": "gsm0",
                                                 "action": "test_call", "number": "+79123456789"})
    panel = re.search(r'<section class="panel result" id="action-result">.*?</section>',
                      await r.text(), re.S)[0]
    assert "<dt>результат</dt><dd>ответили</dd>" in panel and "<dt>гудки, с</dt><dd>4.2</dd>" in panel
    assert not re.search(r"<dt>[a-z_]+</dt>", panel), panel  # no internal key
    r = await client.post("/lines/action", data={"csrf": csrf, "line": "gsm0",
                                                 "action": "check_balance"})
    assert "<dt>баланс</dt><dd>152.40 RUB</dd>" in await r.text()
