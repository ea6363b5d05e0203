"""A running box writes nothing to SQLite on its event loop: every commit is an fsync, and the
loop's connection may wait 5 s for the writer's lock, which would stall every protocol timer and
the 2-second bridge deadline. People's actions in the web admin and a received SMS go through
the store's writer thread (tests/loop_writes.py watches the loop's own connection)."""
from __future__ import annotations

import asyncio
import re
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web

from controller import audit, sms_inbox, users
from dialbox.appliance import Appliance, Settings
from tests.gsmsim import until
from tests.loop_writes import is_write
from web_admin.app import make_app


@asynccontextmanager
async def served_box(tmp_path):
    """A simulated box (3 operators, no law's hours) with its web admin on 127.0.0.1:
    (appliance, base URL); stopped on the way out."""
    app = Appliance(Settings(simulate=True, operators=3, data=tmp_path / "d", time_scale=25.0,
                             seed=4, compliance="none"))
    await app.start()
    runner = web.AppRunner(make_app(app), handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield app, f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/"
    finally:
        await runner.cleanup()
        await app.stop()

PASSWORD = "olga-password-1"


def test_the_guard_tells_writes_from_reads():
    for sql in ("INSERT INTO audit_log VALUES (1)", "  update sessions SET x=1",
                "DELETE FROM sessions", "REPLACE INTO t VALUES (1)", "COMMIT",
                "BEGIN IMMEDIATE", "WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x",
                "CREATE INDEX i ON t(x)", "RELEASE job"):
        assert is_write(sql), sql
    for sql in ("SELECT 'INSERT' FROM t", "PRAGMA data_version", "BEGIN", "ROLLBACK",
                "-- TRIGGER audit_no_update", "WITH x AS (SELECT 1) SELECT * FROM x",
                "CREATE TEMP TABLE t (x)"):
        assert not is_write(sql), sql


async def _signed_in(http: aiohttp.ClientSession, base: str, username: str, password: str
                     ) -> str:
    """Signs in; the CSRF token of the session."""
    async with http.get(base + "login") as r:
        token = re.search(r'name="csrf" value="([^"]+)"', await r.text()).group(1)
    async with http.post(base + "login", data={"username": username, "password": password,
                                               "csrf": token}) as r:
        assert r.status == 200, await r.text()
        page = await r.text()
    found = re.search(r'name="csrf" value="([^"]+)"', page) or \
        re.search(r'<meta name="csrf" content="([^"]+)"', page)
    assert found, "no CSRF token on the first page after signing in"
    return found.group(1)


@pytest.mark.slow
async def test_the_web_admins_changes_and_a_received_sms_are_written_off_the_event_loop(
        tmp_path, loop_write_guard):
    app = Appliance(Settings(simulate=True, operators=0, data=tmp_path / "d", time_scale=25.0,
                             seed=21, compliance="none"))
    await app.start()  # the guard watches the loop's connection from here
    assert loop_write_guard.armed
    with loop_write_guard.paused():  # the test's own set-up, not the box's doing
        users.add(app.store, "olga", PASSWORD, role="operator")
    runner = web.AppRunner(make_app(app), handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/"
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as boss, \
                aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as olga:
            csrf = await _signed_in(boss, base, "admin", app.initial_password)
            # A campaign made and edited.
            async with boss.post(base + "campaigns/create", data={
                    "csrf": csrf, "name": "Банк-Ноябрь", "creditor": "Банк",
                    "mode": "progressive", "compliance": "none"}) as r:
                assert r.status == 200, await r.text()
            form = [("csrf", csrf), ("name", "Банк-Ноябрь"), ("creditor", "Банк"),
                    ("mode", "progressive"), ("compliance", "none"), ("weight", "3"),
                    ("line_group", ""), ("operators", ""), ("teams", ""),
                    ("wrap_limit_s", "90"), ("wrap_after", "ready"), ("take_s", "30")]
            async with boss.post(base + "campaign/Банк-Ноябрь/settings", data=form) as r:
                assert r.status == 200, await r.text()
            # Its call list uploaded and imported.
            upload = aiohttp.FormData()
            upload.add_field("csrf", csrf)
            upload.add_field("campaign", "Банк-Ноябрь")
            upload.add_field("file", "ФИО;Телефон;Сумма\nИванов Иван;+79123456789;15000\n"
                             .encode(), filename="debts.csv", content_type="text/csv")
            async with boss.post(base + "campaigns/upload", data=upload) as r:
                page = await r.text()
                assert r.status == 200, page
            token = re.search(r'action="/campaigns/import/([^"]+)"', page).group(1)
            mapping = [("csrf", csrf), ("col0", "debtor_name"), ("col1", "phone"),
                       ("col2", "debt_amount")]
            async with boss.post(base + f"campaigns/import/{token}", data=mapping) as r:
                assert r.status == 200, await r.text()

            async def imported() -> bool:
                async with boss.get(base + f"api/imports/{token}") as r:
                    return (await r.json())["state"] == "done"
            for _ in range(400):
                if await imported():
                    break
                await asyncio.sleep(0.05)
            else:
                pytest.fail("the import did not finish")
            async with boss.get(base + "debtors", params={"q": "Иванов Иван"}) as r:
                assert r.status == 200 and "+79123456789" in await r.text()  # just imported
            # People: a team for olga, a new supervisor.
            async with boss.post(base + "users/team", data={"csrf": csrf, "username": "olga",
                                                            "team": "Утро"}) as r:
                assert r.status == 200, await r.text()
            async with boss.post(base + "users/add", data={
                    "csrf": csrf, "username": "petr", "password": "petr-password-1",
                    "role": "supervisor"}) as r:
                assert r.status == 200, await r.text()
            # Olga at the desk takes a call and records its outcome.
            desk = await _signed_in(olga, base, "olga", PASSWORD)
            head = {"X-CSRF-Token": desk}
            async with olga.post(base + "desk/ready", json={"ready": True}, headers=head) as r:
                assert r.status == 200, await r.text()
            await until(lambda: (app.desk("olga")["call"] or {}).get("stage") == "bridged",
                        timeout=60)
            call_id = app.desk("olga")["call"]["call_id"]
            async with olga.post(base + "desk/disposition", headers=head, json={
                    "call_id": call_id, "kind": "rpc", "details": {"note": "перезвонит"}}) as r:
                assert r.status == 200, await r.text()
            # A debtor's reply SMS reaches the box; a supervisor decides on it.
            e164 = app.store.db.execute("SELECT e164 FROM phones ORDER BY id LIMIT 1"
                                        ).fetchone()[0]
            sim = app.sims[0]
            await until(lambda: any(c.startswith("AT+CMGL") for c in sim.commands))
            sim.receive_sms("8" + e164[2:], "СТОП")
            await until(lambda: sms_inbox.received(app.store, flagged=True), timeout=30)
            [msg] = sms_inbox.received(app.store, flagged=True)
            async with boss.post(base + "sms/received/decide", data={
                    "csrf": csrf, "id": str(msg["id"]), "decision": "not_a_refusal"}) as r:
                assert r.status == 200, await r.text()
            async with olga.post(base + "logout", data={"csrf": desk}) as r:
                assert r.status == 200
        # Everything happened, and is on disk.
        await app.store.flush()
        done = {(e["object"], e["action"]) for e in audit.entries(app.store)}
        assert {("campaign", "create"), ("campaign", "edit"), ("calllist", "import"),
                ("user", "team"), ("user", "add"), ("refusal", "sms_decided")} <= done, done
        assert app.store.db.execute("SELECT kind FROM dispositions WHERE call_id=?",
                                    (call_id,)).fetchone()[0] == "rpc"
        assert app.store.db.execute("SELECT COUNT(*) FROM accounts WHERE debtor_name=?",
                                    ("Иванов Иван",)).fetchone()[0] == 1
    finally:
        await runner.cleanup()
        await app.stop()
    assert not loop_write_guard.writes, \
        f"SQLite writes on the event loop:\n{loop_write_guard.report()}"


@pytest.mark.slow
async def test_the_dashboard_reports_kpi_and_metrics_scan_the_calls_off_the_event_loop(tmp_path):
    # A report reads months of calls; on the loop's connection that scan would stall the loop
    # (from a worker thread too: the loop then waits for the connection's mutex).
    import traceback
    scans: list[str] = []
    async with served_box(tmp_path) as (app, base):
        await until(lambda: app.store.db.execute(
            "SELECT COUNT(*) FROM attempts WHERE state='done'").fetchone()[0] >= 3, timeout=60)
        await app.store.flush()
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as boss:
            await _signed_in(boss, base, "admin", app.initial_password)

            def seen(sql: str) -> None:  # a page's own scan of the calls, on the loop's
                if re.search(r"\bFROM\s+attempts\b", sql, re.I) and \
                        any("/web_admin/" in f.filename for f in traceback.extract_stack()):
                    scans.append(sql)
            app.store.db.set_trace_callback(seen)
            pages = []
            for report in ("funnel", "heatmap", "lines", "abandons", "operators"):
                async with boss.get(base + f"reports?report={report}") as r:
                    assert r.status == 200
                    pages.append(await r.text())
            for page in ("kpi?by=operator", "", "api/status"):  # the dashboard too
                async with boss.get(base + page) as r:
                    assert r.status == 200, page
            async with boss.get(base + "metrics") as r:
                assert r.status == 200
                metrics = await r.text()
            app.store.db.set_trace_callback(None)
        assert scans == [], scans
        assert "Демо-кампания" in pages[0] and "gsm" in pages[2]  # the rows are there
        assert re.search(r'dialbox_calls_total\{outcome="answered"\} [1-9]', metrics), metrics
