"""A running box reads its long lists off the event loop: the lines page's counts of today's calls
and SMS, the whole do-not-call list, the SMS page's last messages and replies. On the loop's own
connection each such scan stalls every protocol timer and the 2-second bridge deadline for as
long as it takes (and waits for the connection's mutex when another thread uses it)."""
from __future__ import annotations

import re
import traceback

import aiohttp
import pytest
from aiohttp import web

from controller import sms_inbox
from dialbox.appliance import DEMO_CAMPAIGN, Appliance, Settings
from firmware.lineapi import InboundSms
from tests.gsmsim import until
from tests.test_loop_writes import _signed_in
from web_admin.app import make_app

# the tables whose rows these pages list or count: read on the store's reader, never on the loop
_LISTS = re.compile(r"\bFROM\s+(attempts|sms_messages|sms_inbox|phone_lists)\b", re.I)


@pytest.fixture
async def box(tmp_path):
    """A simulated box with the web admin on 127.0.0.1: (appliance, base URL)."""
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


@pytest.mark.slow
async def test_the_lines_dnc_and_sms_pages_read_their_lists_off_the_event_loop(
        box, loop_write_guard):
    app, base = box
    await until(lambda: app.store.db.execute(
        "SELECT COUNT(*) FROM attempts WHERE line='gsm0'").fetchone()[0] >= 1, timeout=60)
    await app.dnc_add("+79161234567", "просил не звонить", "anna")
    cid = app.store.campaign(DEMO_CAMPAIGN)
    pk, e164 = app.store.db.execute(
        "SELECT a.id, p.e164 FROM accounts a JOIN phones p ON p.account_pk = a.id "
        "WHERE a.campaign_id=? ORDER BY a.id LIMIT 1", (cid,)).fetchone()
    now = app.store.clock.wall()
    with loop_write_guard.paused():  # the test's own set-up: an SMS sent and a reply
        app.store.db.execute(
            "INSERT INTO sms_messages (sms_id, key, campaign_id, account_pk, rule, number, line, "
            "text, state, detail, created_at, updated_at) VALUES "
            "('sms-t1', 't1', ?, ?, 'due_reminder', ?, 'gsm0', 'Напоминаем о платеже', "
            "'delivered', '', ?, ?)", (cid, pk, e164, now, now))
        sms_inbox.keep(app.store, InboundSms(line="gsm0", sender=e164, text="Оплачу в пятницу",
                                             at=now, uid="t1"))
    before = (app.store.calls_today(["gsm0"], now)["gsm0"],
              app.store.sms_today(["gsm0"], now)["gsm0"])

    scans: list[str] = []

    def seen(sql: str) -> None:  # a page's own scan of a list, on the loop's connection
        loop_write_guard._trace(sql)  # the write guard keeps watching
        if _LISTS.search(sql) and any("/web_admin/" in f.filename
                                      for f in traceback.extract_stack()):
            scans.append(" ".join(sql.split()))
    app.store.db.set_trace_callback(seen)
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as boss:
            await _signed_in(boss, base, "admin", app.initial_password)
            async with boss.get(base + "lines") as r:
                assert r.status == 200
                lines = await r.text()
            async with boss.get(base + "dnc") as r:
                assert r.status == 200
                dnc = await r.text()
            async with boss.get(base + "sms", params={"campaign": DEMO_CAMPAIGN}) as r:
                assert r.status == 200
                sms = await r.text()
    finally:
        loop_write_guard.watch(app.store)
    assert scans == [], "\n".join(scans)
    # and each page still shows what it listed
    await app.store.flush()
    after = (app.store.calls_today(["gsm0"], now)["gsm0"],
             app.store.sms_today(["gsm0"], now)["gsm0"])
    row = re.search(r'<tr data-line="gsm0".*?</tr>', lines, re.S).group(0)
    shown = re.search(r'class="num today[^"]*">(\d+)(?:/\d+)? · (\d+)/100<', row)
    assert shown, row
    assert before <= (int(shown[1]), int(shown[2])) <= after, (before, shown[0], after)
    assert 'data-number="+79161234567"' in dnc and "просил не звонить" in dnc
    assert "Напоминаем о платеже" in sms and "Оплачу в пятницу" in sms
