"""A running box reads its long lists off the event loop: the lines page's counts of today's calls
and SMS, the whole do-not-call list, the SMS page's last messages and replies. On the loop's own
connection each such scan stalls every protocol timer and the 2-second bridge deadline for as
long as it takes (and waits for the connection's mutex when another thread uses it)."""
from __future__ import annotations

import re
import traceback

import aiohttp
import pytest

from controller import sms_inbox
from dialbox.appliance import DEMO_CAMPAIGN
from firmware.lineapi import InboundSms
from tests.gsmsim import until
from tests.test_loop_writes import _signed_in, served_box

# the tables whose rows these pages list or count: read on the store's reader, never on the loop
_LISTS = re.compile(r"\bFROM\s+(attempts|sms_messages|sms_inbox|phone_lists)\b", re.I)


@pytest.fixture
async def box(tmp_path):
    """A simulated box with the web admin on 127.0.0.1: (appliance, base URL)."""
    async with served_box(tmp_path) as served:
        yield served


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


@pytest.mark.slow
async def test_exports_the_audit_log_and_a_profile_save_run_off_the_event_loop(
        box, loop_write_guard, monkeypatch):
    """The report's XLSX workbook (built and zipped in Python), the audit log's search and CSV
    (up to 100,000 entries), and a profile's save (YAML checked, written, fsynced) and
    re-reading when it is applied: each runs on another thread than the event loop's."""
    import io
    import threading

    from openpyxl import load_workbook
    from openpyxl.workbook.workbook import Workbook

    from firmware import profiles
    from firmware.profile_library import ProfileLibrary
    app, base = box
    loop_thread = threading.get_ident()
    ran: dict[str, list[int]] = {"xlsx": [], "save": [], "load": []}

    def on_thread(kind, fn):
        def wrapped(*a, **kw):
            ran[kind].append(threading.get_ident())
            return fn(*a, **kw)
        return wrapped
    monkeypatch.setattr(Workbook, "save", on_thread("xlsx", Workbook.save))
    monkeypatch.setattr(ProfileLibrary, "save", on_thread("save", ProfileLibrary.save))
    monkeypatch.setattr(profiles, "load", on_thread("load", profiles.load))

    await until(lambda: app.store.db.execute(  # a call for the report to count
        "SELECT COUNT(*) FROM attempts WHERE state='done'").fetchone()[0] >= 1, timeout=60)
    await app.campaign_action(DEMO_CAMPAIGN, "pause")  # the lines idle: a profile applies now
    await until(lambda: not any(ln.call_id for ln in app.lines.lines()), timeout=60)
    name = next(n for n, devices in app.devices.items()
                if "gsm0" in [ch for d in devices for ch in d.channel_names()])
    text = ProfileLibrary(app.settings.data / "profiles").text(name)
    scans: list[str] = []

    def seen(sql: str) -> None:
        loop_write_guard._trace(sql)
        if re.search(r"\bFROM\s+audit_log\b", sql, re.I) and any(
                "/web_admin/" in f.filename for f in traceback.extract_stack()):
            scans.append(" ".join(sql.split()))
    app.store.db.set_trace_callback(seen)
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as boss:
            csrf = await _signed_in(boss, base, "admin", app.initial_password)
            async with boss.post(base + f"hardware/profiles/{name}",
                                 data={"csrf": csrf, "text": text}) as r:
                page = await r.text()
                assert r.status == 200 and 'class="error' not in page, page
            async with boss.get(base + "reports/export",
                                params={"report": "funnel", "format": "xlsx"}) as r:
                assert r.status == 200
                workbook = await r.read()
            async with boss.get(base + "audit", params={"object": "profile"}) as r:
                assert r.status == 200
                audit_page = await r.text()
            async with boss.get(base + "audit.csv", params={"object": "profile"}) as r:
                assert r.status == 200
                audit_csv = (await r.read()).decode("utf-8-sig")
    finally:
        loop_write_guard.watch(app.store)
    assert ran["save"] and ran["load"] and ran["xlsx"], ran  # the work was done...
    assert loop_thread not in ran["save"] + ran["load"] + ran["xlsx"], ran  # ...elsewhere
    assert scans == [], "\n".join(scans)
    rows = list(load_workbook(io.BytesIO(workbook)).active.iter_rows(values_only=True))
    assert rows[0][:3] == ("Группа", "Попытки", "Контакты")
    assert DEMO_CAMPAIGN in [r[0] for r in rows[1:]], rows
    assert name in audit_page
    assert re.search(rf"^\d+,[^,]+,admin,[^,]*,profile,{re.escape(name)},edit,", audit_csv,
                     re.M), audit_csv
