"""Web admin: every route but /healthz needs a session; CSRF on writes; Russian by default."""
from __future__ import annotations

import re

import pytest

from controller import users
from controller.store import Store
from web_admin.app import make_app


class FakeBackend:
    """The layer below, faked: the web admin is tested against its interface."""

    def __init__(self, store):
        self.store = store

    def health(self):
        return {"status": "ok", "lines": {"total": 2, "in_service": 1}}

    def status(self):
        return {"lines": [{"name": "gsm0", "kind": "gsm", "state": "alerting", "in_service": True,
                           "reason": "", "signal_dbm": -77, "operator": "MegaFon"},
                          {"name": "gsm1", "kind": "gsm", "state": "out_of_service",
                           "in_service": False, "reason": "no SIM card", "signal_dbm": None,
                           "operator": None}],
                "campaign": {"name": "Тест", "running": True,
                             "counters": {"attempts": 7, "answered": 3, "busy": 1, "no_answer": 2,
                                          "failed": 1, "abandoned": 0, "in_progress": 1,
                                          "leads_left": 40, "held": 5},
                             "compliance": "ru-230fz"},
                "operators": [{"name": "Оператор 1", "position": "pos1", "state": "talking",
                               "calls": 2}],
                "health": self.health()}


@pytest.fixture
async def client(aiohttp_client, tmp_path):
    store = Store(tmp_path / "db.sqlite3")
    users.add(store, "anna", "correct horse battery", role="supervisor")
    c = await aiohttp_client(make_app(FakeBackend(store)))
    yield c
    store.close()


async def login(client, password="correct horse battery"):
    page = await client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', await page.text()).group(1)
    return await client.post("/login", data={"username": "anna", "password": password,
                                             "csrf": token}, allow_redirects=False)


async def test_healthz_is_public(client):
    r = await client.get("/healthz")
    assert r.status == 200
    assert (await r.json())["lines"] == {"total": 2, "in_service": 1}


@pytest.mark.parametrize("path", ["/", "/api/status", "/ws"])
async def test_everything_else_needs_a_session(client, path):
    r = await client.get(path, allow_redirects=False)
    assert r.status in (302, 401)


async def test_wrong_password_is_refused(client):
    r = await login(client, "wrong password!")
    assert r.status == 401
    assert "Неверное имя пользователя или пароль" in await r.text()


async def test_login_then_dashboard_in_russian_and_english(client):
    r = await login(client)
    assert r.status == 302
    page = await (await client.get("/")).text()
    assert "Попытки" in page and "гудки" in page and "no SIM card" in page
    assert '<td data-counter="attempts">7</td>' in page
    page = await (await client.get("/?lang=en")).text()
    assert "Attempts" in page and "ringing" in page
    page = await (await client.get("/")).text()  # the choice is remembered
    assert "Attempts" in page


async def test_api_status_and_live_feed(client):
    await login(client)
    data = await (await client.get("/api/status")).json()
    assert data["campaign"]["counters"]["answered"] == 3
    ws = await client.ws_connect("/ws")
    msg = await ws.receive_json(timeout=5)
    assert msg["lines"][0]["state"] == "alerting"
    await ws.close()


async def test_logout_needs_csrf(client):
    await login(client)
    r = await client.post("/logout", allow_redirects=False)
    assert r.status == 403
    page = await (await client.get("/")).text()
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    r = await client.post("/logout", data={"csrf": token}, allow_redirects=False)
    assert r.status == 302
    r = await client.get("/", allow_redirects=False)
    assert r.status == 302


async def test_login_form_without_csrf_is_refused(client):
    r = await client.post("/login", data={"username": "anna",
                                          "password": "correct horse battery"})
    assert r.status == 403
