"""Security of the web admin: every route in the routes table, each role, CSRF, login throttling,
sessions that expire, can be revoked and end when the password changes."""
from __future__ import annotations

import re
import time

import pytest

from controller import audit, users
from tests.test_web import PASSWORD, PEOPLE, as_role, login  # noqa: F401  (fixtures below)
from tests.test_web import client, fake, people_db, store  # noqa: F401
from web_admin.app import ROUTES, make_app
from web_admin.throttle import FREE_FAILURES, LoginThrottle

STATE_CHANGING = ("POST", "PUT", "PATCH", "DELETE")


def _path(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


def _routes():
    return [(m, _path(p), name, roles) for m, p, _, name, roles in ROUTES]


@pytest.mark.parametrize("method,path,name,roles", _routes(), ids=[r[2] for r in _routes()])
async def test_without_a_session_every_route_is_closed(client, method, path, name, roles):
    r = await client.request(method, path, allow_redirects=False)
    assert r.status in (401, 302, 303), (name, r.status)
    if r.status != 401:
        assert r.headers["Location"] == "/login", name


@pytest.mark.parametrize("role", sorted(PEOPLE))
async def test_each_role_reaches_only_its_routes(client, store, role):
    csrf = as_role(client, store, role)
    for method, path, name, roles in _routes():
        if name in ("ws", "desk_ws", "logout"):
            continue  # WebSockets need an upgrade; logout would end this session
        headers = {"X-CSRF-Token": csrf} if method in STATE_CHANGING else {}
        r = await client.request(method, path, headers=headers, allow_redirects=False)
        if role in roles:
            assert r.status != 403, (role, name, r.status)
            assert not (r.status in (302, 303) and r.headers.get("Location") == "/login"), name
        elif name == "dashboard":  # everyone's start page leads to their own
            assert r.status == 302 and r.headers["Location"] != "/", (role, name)
        else:
            assert r.status == 403, (role, name, r.status)


@pytest.mark.parametrize("method,path,name,roles",
                         [r for r in _routes() if r[0] in STATE_CHANGING and r[2] != "logout"],
                         ids=[r[2] for r in _routes() if r[0] in STATE_CHANGING
                              and r[2] != "logout"])
async def test_without_csrf_every_state_changing_request_is_refused(client, store, method, path,
                                                                    name, roles):
    as_role(client, store, "admin" if "admin" in roles else roles[0])
    for kw in ({}, {"headers": {"X-CSRF-Token": "forged"}}, {"data": {"csrf": "forged"}}):
        r = await client.request(method, path, allow_redirects=False, **kw)
        assert r.status == 403, (name, kw, r.status)


async def test_logout_without_csrf_keeps_the_session(client, store):
    as_role(client, store, "supervisor")
    r = await client.post("/logout", allow_redirects=False)
    assert r.status == 403
    assert (await client.get("/", allow_redirects=False)).status == 200


class _Now:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


async def test_repeated_wrong_passwords_back_off_exponentially(aiohttp_client, fake):
    now = _Now()
    client = await aiohttp_client(make_app(fake, throttle=LoginThrottle(now=now)))
    for _ in range(FREE_FAILURES):
        assert (await login(client, password="wrong password")).status == 401
    waits = []
    for _ in range(4):
        assert (await login(client, password="wrong password")).status == 401
        r = await login(client, password=PASSWORD)  # the right one must wait too
        assert r.status == 429
        waits.append(int(r.headers["Retry-After"]))
        assert "Слишком много" in await r.text()
        now.t += waits[-1]
    assert waits == [2, 4, 8, 16]
    r = await login(client, password=PASSWORD)
    assert r.status == 302  # the lock passed: the right password gets in


async def test_an_address_trying_many_accounts_is_throttled_too(aiohttp_client, fake):
    client = await aiohttp_client(make_app(fake, throttle=LoginThrottle(now=_Now())))
    for i in range(FREE_FAILURES + 1):
        await login(client, username=f"nobody{i}", password="guess guess")
    r = await login(client, username="anna", password=PASSWORD)
    assert r.status == 429


def test_throttle_forgets_success_and_keeps_memory_bounded():
    now = _Now()
    t = LoginThrottle(now=now)
    for _ in range(FREE_FAILURES + 2):
        t.failed("ivan", None)
    assert t.wait_s("ivan", None) > 0
    t.succeeded("ivan", None)
    assert t.wait_s("ivan", None) == 0
    for i in range(25_000):
        t.failed(f"u{i}", None)
    assert len(t._keys) <= 20_000


async def test_idle_sessions_expire(client, store):
    as_role(client, store, "supervisor")
    assert (await client.get("/", allow_redirects=False)).status == 200
    store.db.execute("UPDATE sessions SET last_seen=?", (time.time() - users.SESSION_IDLE_S - 1,))
    r = await client.get("/", allow_redirects=False)
    assert r.status == 302 and r.headers["Location"] == "/login"


async def test_an_admin_sees_and_revokes_sessions_and_it_is_audited(client, store):
    uid = store.db.execute("SELECT id FROM users WHERE username='anna'").fetchone()[0]
    anna_token, _ = users.open_session(store, uid, remote="10.0.0.7")
    csrf = as_role(client, store, "admin")
    page = await (await client.get("/sessions")).text()
    assert "anna" in page and "10.0.0.7" in page and anna_token not in page
    sid = users.session_id(anna_token)
    r = await client.post("/sessions/revoke", data={"csrf": csrf, "session": sid},
                          allow_redirects=False)
    assert r.status == 303
    assert users.session_user(store, anna_token) is None
    entry = audit.entries(store, obj="session")[0]
    assert entry["who"] == "root" and entry["key"] == "anna" and entry["action"] == "revoke"


def test_ending_a_users_other_sessions_keeps_the_current_one(store):
    uid = store.db.execute("SELECT id FROM users WHERE username='anna'").fetchone()[0]
    a, _ = users.open_session(store, uid)
    b, _ = users.open_session(store, uid)
    assert users.end_sessions(store, uid, keep_token=a) == 1
    assert users.session_user(store, a) is not None and users.session_user(store, b) is None
