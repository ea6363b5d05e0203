"""The appliance as the web admin's backend: a person at the desk takes a real simulated call."""
from __future__ import annotations

import asyncio
import datetime
import inspect
import re

import pytest

from controller import users
from dialbox.appliance import Appliance, Settings
from firmware.errors import UserError


@pytest.fixture
async def app(tmp_path):
    a = Appliance(Settings(simulate=True, operators=0, data=tmp_path / "d", time_scale=25.0,
                           seed=21, compliance="none"))
    await a.start()
    users.add(a.store, "olga", "olga-password-1", role="operator")
    yield a
    await a.stop()


@pytest.fixture
async def paced_app(tmp_path):
    """A box whose clock runs 5 times real time, not 25: a test that waits on the hardware's
    answer (a test call) gets 6 real seconds before the line's 30 s watchdog, which a loaded
    machine's stalls of a second or two do not reach."""
    a = Appliance(Settings(simulate=True, operators=0, data=tmp_path / "d", time_scale=5.0,
                           seed=21, compliance="none"))
    await a.start()
    yield a
    await a.stop()


async def _wait(cond, timeout=60.0):
    """Until ``cond()`` (a coroutine's result too) is true."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not await _value(cond()):
        assert loop.time() < end, "condition not met in time"
        await asyncio.sleep(0.05)


async def _value(v):
    return await v if inspect.isawaitable(v) else v


async def _in_service(app) -> bool:
    return all(ln["in_service"] for ln in await app.lines_detail())


@pytest.mark.slow
async def test_person_at_the_desk_takes_a_call_and_records_a_promise(app):
    desk = app.desk("olga")
    assert desk["operator"]["state"] == "not_ready" and desk["call"] is None
    await app.desk_ready("olga", True)
    await _wait(lambda: (app.desk("olga")["call"] or {}).get("stage") == "bridged", 40)
    call = app.desk("olga")["call"]
    card = call["account"]
    assert card["account_id"].startswith("DEMO-") and card["phones"]
    due = (datetime.date.today() + datetime.timedelta(days=5)).isoformat()
    with pytest.raises(ValueError, match="amount: the promised sum must be above zero"):
        await app.desk_disposition("olga", call["call_id"], "promise", {"amount": "-5",
                                                                       "date": due})
    with pytest.raises(ValueError, match="date: the promised date is in the past"):
        await app.desk_disposition("olga", call["call_id"], "promise", {"amount": "5",
                                                                       "date": "2020-01-01"})
    await _wait(lambda: app.desk("olga")["operator"]["state"] == "wrap_up", 60)
    await app.desk_disposition("olga", call["call_id"], "promise",
                               {"amount": "15000.50", "date": due, "note": "после зарплаты"})
    row = app.store.db.execute("SELECT amount, due_date, operator FROM promises").fetchone()
    assert tuple(row) == (15000.5, due, app.desk("olga")["operator"]["position"])
    note = app.store.db.execute("SELECT note FROM attempts WHERE call_id=?",
                                (call["call_id"],)).fetchone()[0]
    assert note == "после зарплаты" and card["history"] is not None
    assert app.desk("olga")["operator"]["state"] in ("free", "reserved", "talking")
    kpi = await app.kpi(None, "operator")
    assert any(r["key"] == "desk-olga" and r["attempts"] >= 1 for r in kpi)


async def test_technician_and_supervisor_views(app):
    await _wait(lambda: _in_service(app))
    lines = await app.lines_detail()
    gsm = next(ln for ln in lines if ln["name"] == "gsm0")
    assert gsm["kind"] == "gsm" and "imei" in gsm
    # a SIM's day against its profile's caps: what the store says it placed today
    placed = app.store.db.execute("SELECT COUNT(*) FROM attempts WHERE line='gsm0' AND "
                                  "state != 'line_fault'").fetchone()[0]
    assert gsm["calls_today"] == placed and gsm["calls_cap"] == 250 and gsm["sms_cap"] == 100
    assert all("calls_today" not in ln for ln in lines if ln["kind"] == "e1")
    await app.line_action("gsm0", "block")
    assert next(ln for ln in await app.lines_detail() if ln["name"] == "gsm0")["state"] == \
        "blocked"
    await app.line_action("gsm0", "unblock")
    with pytest.raises(UserError):
        await app.line_action("nope", "block")
    camps = await app.campaigns()
    assert camps[0]["status"] == "running"
    await app.campaign_action(camps[0]["name"], "pause")
    assert (await app.campaigns())[0]["status"] == "paused"
    await app.dnc_add("+79161234567", "asked not to be called", "anna")
    assert (await app.dnc_list())[0]["e164"] == "+79161234567"
    with pytest.raises(UserError):
        await app.user_add("x", "short", "operator")


def test_the_appliance_keeps_the_web_admins_backend_contract():
    from web_admin.backend import contract_problems
    app = Appliance(Settings())
    app.store = object()  # not started: only the shape of its methods is checked
    assert contract_problems(app) == []


@pytest.mark.slow
async def test_preview_mode_card_first_then_the_call(tmp_path):
    a = Appliance(Settings(simulate=True, operators=0, data=tmp_path / "d", time_scale=25.0,
                           seed=8, compliance="none", mode="preview"))
    await a.start()
    try:
        users.add(a.store, "olga", "olga-password-1", role="operator")
        await a.desk_ready("olga", True)
        await _wait(lambda: (a.desk("olga")["call"] or {}).get("stage") == "preview")
        first = a.desk("olga")["call"]
        assert first["account"]["account_id"].startswith("DEMO-")
        assert a.store.db.execute("SELECT COUNT(*) FROM attempts").fetchone()[0] == 0
        await a.desk_skip("olga", first["call_id"])
        code = a.store.db.execute("SELECT code FROM decisions ORDER BY id DESC").fetchone()[0]
        assert code == "skipped_in_preview"
        await _wait(lambda: (a.desk("olga")["call"] or {}).get("stage") == "preview")
        second = a.desk("olga")["call"]
        assert second["account"]["account_id"] != first["account"]["account_id"]
        await a.desk_dial("olga", second["call_id"])
        row = a.store.db.execute("SELECT operator, number FROM attempts").fetchone()
        assert row["operator"] == "desk-olga"
        assert row["number"] == second["account"]["phones"][0]["e164"]
        with pytest.raises(UserError):
            await a.desk_dial("olga", second["call_id"])  # dialed already
    finally:
        await a.stop()


async def test_a_list_is_previewed_then_imported_off_the_loop_with_progress_and_a_russian_report(
        app, tmp_path):
    f = tmp_path / "list.csv"
    f.write_text("ФИО;Мобила;Сумма\nИванов Иван;8 912 345-67-89;15 000,50\n"
                 "Петров;12;10\n", encoding="utf-8")
    camp = (await app.campaigns())[0]["name"]
    preview = app.calllist_preview(camp, f, "Банк.csv")
    assert preview["columns"] == ["ФИО", "Мобила", "Сумма"] and len(preview["rows"]) == 2
    assert preview["mapping"] == {"ФИО": "debtor_name", "Мобила": "custom",
                                  "Сумма": "debt_amount"}
    seen = []
    summary = await app.import_calllist(camp, f, "Банк.csv", {"ФИО": "debtor_name",
                                                              "Мобила": "phone",
                                                              "Сумма": "debt_amount"},
                                        "ru", lambda done, total: seen.append((done, total)))
    assert summary["imported"] == 1 and summary["rejected"] == 1 and summary["derived_ids"]
    assert seen[-1] == (2, 2)
    row = app.store.db.execute("SELECT account_id, debt_amount FROM accounts WHERE "
                               "debtor_name='Иванов Иван'").fetchone()
    assert row[0].startswith("P-") and row[1] == 15000.5
    report = app.report_file(summary["report"]).read_text(encoding="utf-8-sig")
    assert report.splitlines()[0].startswith("строка;поле;причина;строка отклонена;ФИО")
    with pytest.raises(UserError) as err:
        app.calllist_preview(camp, tmp_path, "папка.csv")  # not a file: the name, no path
    assert str(tmp_path) not in str(err.value.params.get("file"))


async def test_refusals_and_sms_senders_through_the_backend(app):
    aid = app.store.db.execute("SELECT account_id FROM accounts ORDER BY id LIMIT 1").fetchone()[0]
    assert app.refusals(aid) == []
    entry = await app.refusal_record(aid, "debtor", "card", "anna", note="письмо от 01.11")
    assert (entry["kind"], entry["channel"], entry["by"]) == ("debtor", "card", "anna")
    x = await app.refusal_exception(entry["id"], "enforcement_document",
                                    "ФС № 1 от 01.11.2026", "boss")
    assert x["until"] - x["from"] >= 59 * 86400
    third = await app.refusal_record(aid, "third_party", "desk", "anna", phone="8 916 555-44-33")
    assert third["phone"] == "+79165554433"
    assert [r["id"] for r in app.refusals(aid)] == [entry["id"], third["id"]]
    for bad in (lambda: app.refusal_record(aid, "debtor", "import", "anna"),
                lambda: app.refusal_record("NOPE", "debtor", "card", "anna"),
                lambda: app.refusal_exception(third["id"], "representative", "x", "b",
                                              phone="+79161234567")):
        with pytest.raises(UserError):
            await bad()
    name = (await app.campaigns())[0]["name"]
    with pytest.raises(UserError, match="add {creditor}"):
        await app.sms_settings_save(name, "anna", {"template": {
            "rule": "not_reached", "text": "Звоните {contact_phone}"}})
    saved = await app.sms_settings_save(name, "anna", {"max_parts": "2", "template": {
        "rule": "not_reached", "text": "{creditor}: звоните {contact_phone}"}})
    assert saved["max_parts"] == 2 and app.sms_settings(name) == saved
    assert saved["contact_phone"] == "+74950000000"  # the demo's, kept


async def test_sms_preview_renders_a_real_debtors_message_in_russian(app):
    camp = (await app.campaigns())[0]["name"]
    over = await app.sms_overview(camp)
    assert set(over["templates"]) == set(over["rules"]) and over["segments"]
    text = "{name}, долг {amount} {currency} до {date}. {creditor}, тел. {contact_phone}"
    await app.sms_settings_save(camp, "anna", {"creditor_name": "Банк", "contact_phone":
                                               "8 495 000-00-00", "max_parts": "1"})
    with pytest.raises(UserError, match="would not be sent"):  # 2 SMS, the campaign allows 1
        app.sms_preview(camp, "due_reminder", text + " " + "Пожалуйста, оплатите." * 5)
    shown = app.sms_preview(camp, "due_reminder", text)
    assert shown["account_id"] and "Банк, тел. +74950000000" in shown["text"]
    assert re.search(r"долг \d{1,3}(\u00a0\d{3})*,\d\d ₽", shown["text"]), shown["text"]
    assert shown["parts"] >= 1


async def test_a_segments_script_reaches_the_card_and_the_change_is_audited(app):
    camp = (await app.campaigns())[0]["name"]
    segs = app.campaign_segments(camp)
    segs[0]["script"] = "Здравствуйте! Звоним по поводу платежа."
    after = await app.campaign_set_segments(camp, segs, "anna")
    assert after[0]["script"] == segs[0]["script"]
    pk = app.store.db.execute("SELECT id FROM accounts WHERE segment=? LIMIT 1",
                              (segs[0]["name"],)).fetchone()
    if pk is not None:
        assert app._card(pk[0])["script"] == segs[0]["script"]
    row = app.store.db.execute("SELECT who, action, object FROM audit_log WHERE "
                               "action='segments'").fetchone()
    assert tuple(row) == ("anna", "segments", "campaign")
    with pytest.raises(UserError):
        await app.campaign_set_segments(camp, [segs[0], segs[0]], "anna")


async def test_a_debtor_calling_back_in_national_format_pops_his_card(app):
    """The simulated module rings with the caller as the network shows it (8XXXXXXXXXX): the
    person who takes the call sees that debtor's card (matched through the E.164 index)."""
    await _wait(lambda: _in_service(app))
    app.store.db.execute("UPDATE accounts SET status='done'")  # nobody to dial out
    app.store.db.commit()
    # A call placed before is let finish: a caller would wait behind it (call waiting).
    await _wait(lambda: not any(ln.call_id for ln in app.lines.lines()), 40)
    row = app.store.db.execute("SELECT a.account_id, p.e164 FROM accounts a JOIN phones p ON "
                               "p.account_pk = a.id ORDER BY a.id DESC LIMIT 1").fetchone()
    await app.desk_ready("olga", True)
    app.sims[0].ring_inbound("8" + row["e164"][2:])
    await _wait(lambda: (app.desk("olga")["call"] or {}).get("inbound"), 40)
    call = app.desk("olga")["call"]
    assert call["account"] is not None and call["account"]["account_id"] == row["account_id"]


async def test_reset_re_initialises_a_gsm_module_and_restarts_an_e1_channel(app):
    from structlog.testing import capture_logs
    await _wait(lambda: _in_service(app))
    await app.campaign_action((await app.campaigns())[0]["name"], "pause")  # nothing dials meanwhile
    sim = app.sims[1]
    inits = sim.commands.count("ATE0")
    done = await app.line_action("gsm1", "reset")
    assert done["reset"] == "module" and done["state"] in ("idle", "dialing", "alerting",
                                                            "answered", "bridged", "releasing")
    await _wait(lambda: sim.commands.count("ATE0") > inits)  # the module heard the re-init
    await _wait(lambda: app.lines.state("gsm1") == "idle")
    e1 = next(ch for ch in app.lines.channels if hasattr(ch.driver, "restart"))
    with capture_logs() as logs:
        done = await app.line_action(e1.name, "reset")
        assert done["reset"] == "channel"
        await _wait(lambda: any(e["event"] == "e1.restart_acknowledged" for e in logs))
    await _wait(lambda: app.lines.state(e1.name) == "idle")
    with pytest.raises(UserError, match="the line refused"):
        await app.line_action("gsm9", "reset")


async def test_each_simulated_sim_reports_its_balance_by_its_own_operators_code(app):
    from firmware.sim.modem import BALANCE_CODES
    async def balances_read() -> bool:
        return all(ln.get("balance") == 123.45 for ln in await app.lines_detail()
                   if ln["kind"] == "gsm")
    await _wait(balances_read, 40)
    gsm = {ln["name"]: ln for ln in await app.lines_detail() if ln["kind"] == "gsm"}
    assert [gsm[s.name]["operator"] for s in app.sims] == ["MegaFon", "MTS RUS", "Beeline",
                                                           "Tele2"]
    for sim in app.sims:  # asked once by the health check, with the code its network answers
        assert sim.ussd_requests[:1] == [BALANCE_CODES[sim.mcc_mnc]], sim.name
    app.sims[2].balance_text = "Ваш баланс 87,10 руб."
    assert (await app.line_action("gsm2", "check_balance"))["balance"] == 87.1
    assert app.sims[2].ussd_requests[-1] == "*102#"


@pytest.fixture
def local_zone():
    """The process's time zone back as it was after a test that changes it."""
    import os
    import time
    was = os.environ.get("TZ")
    yield
    if was is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = was
    time.tzset()


async def test_settings_are_applied_at_once_and_kept_in_the_config_file(app, tmp_path,
                                                                        local_zone):
    import time
    from types import SimpleNamespace

    from dialbox import config
    from firmware.errors import InputError
    conf = tmp_path / "dialbox.yaml"
    conf.write_text("# the shop's box\ntimezone: Europe/Moscow\nretention:\n  log_lines: 500\n")
    from dialbox.backup import Nightly
    nightly = Nightly(app, config.load(conf))
    app.runtime = SimpleNamespace(config=config.load(conf), extras={"backup": nightly})
    app.recording.check_disk()
    free = app.recording.disk["free_mb"]
    done = await app.settings_change({"time_zone": "Asia/Vladivostok", "retention_days": "90",
                                      "disk_warn_free_mb": str(free * 4),
                                      "disk_stop_free_mb": str(free * 2)})
    assert done["kept"] and done["changed"] == ["disk_stop_free_mb", "disk_warn_free_mb",
                                                "retention_days", "time_zone"]
    assert time.strftime("%Z") == "+10" and done["view"]["time_zone"] == "Asia/Vladivostok"
    assert nightly._replan.is_set()  # the nightly backup computes its wait again, in the new zone
    # the recorder sees them now: the disk counts as full and dialing is held, no restart
    assert app.recording.policy.stop_free_mb == free * 2 and app.recording.disk["level"] == "full"
    assert app.runner.hold_reason and "recordings disk nearly full" in app.runner.hold_reason
    assert app.recording.retention_days == 90  # compliance "none": the box's own setting
    saved = config.load(conf)
    assert (saved.timezone, saved.recordings_days, saved.log_lines) == ("Asia/Vladivostok", 90, 500)
    assert (saved.disk_warn_free_mb, saved.disk_stop_free_mb) == (free * 4, free * 2)
    assert conf.read_text().startswith("# the shop's box\n")
    assert "Europe/Moscow" in conf.with_name("dialbox.yaml.prev").read_text()
    await app.settings_change({"disk_warn_free_mb": "2", "disk_stop_free_mb": "1"})
    assert app.runner.hold_reason is None  # room again: dialing resumes
    with pytest.raises(InputError, match="disk: dialing must stop at less free space"):
        await app.settings_change({"disk_stop_free_mb": "5"})
    assert config.load(conf).disk_stop_free_mb == 1


async def test_the_lines_page_says_in_russian_why_a_line_is_out_of_service(app, aiohttp_client):
    """A module whose SIM is gone and a span whose D-channel is cut: the reasons the drivers
    give are shown in the page's language (a Msg: template and values), English in English."""
    from tests.test_i18n import russian_only
    from web_admin.app import make_app
    from web_admin.render import SESSION_COOKIE
    await _wait(lambda: _in_service(app))
    await app.campaign_action((await app.campaigns())[0]["name"], "pause")  # nothing dials meanwhile
    app.sims[0].inject("sim_removed")
    await app.line_action("gsm0", "reset")  # re-initialised: AT+CPIN? answers +CME ERROR: 10
    span = app.e1_spans[0]
    span.simulator.fault_link_down(3600)
    e1_line = next(ch.name for ch in app.lines.channels if ch.driver is span)

    async def both_told() -> bool:
        reason = {ln["name"]: ln["reason"] for ln in await app.lines_detail()}
        return "no SIM card" in reason["gsm0"] and "D-channel down" in reason[e1_line]
    await _wait(both_told)
    users.add(app.store, "tim", "tim-password-1", role="technician")
    uid = app.store.db.execute("SELECT id FROM users WHERE username='tim'").fetchone()[0]
    client = await aiohttp_client(make_app(app))
    client.session.cookie_jar.update_cookies({SESSION_COOKIE: users.open_session(app.store,
                                                                                 uid)[0]})
    ru = await (await client.get("/lines?lang=ru")).text()
    rows = {m.group(1): m.group(2) for m in re.finditer(
        r'data-line="([^"]+)".*?<td class="reason">(.*?)</td>', ru, re.S)}
    assert "нет SIM-карты (+CME ERROR: 10)" in rows["gsm0"], rows["gsm0"]
    assert "D-канал упал: другая сторона перестала отвечать (T200 × N200)" in rows[e1_line]
    for line in ("gsm0", e1_line):
        assert not russian_only(rows[line], ("firmware/",)), rows[line]
    en = await (await client.get("/lines?lang=en")).text()
    assert "no SIM card (+CME ERROR: 10)" in en
    assert "D-channel down: peer stopped answering (T200 x N200)" in en


async def _technician_with_busy_gsm0(app, aiohttp_client):
    """A technician's web client (and CSRF token) on a box whose campaigns are paused and whose
    gsm0 reaches only busy subscribers (the simulated network answers cause 17)."""
    from tests.gsmsim import population
    from web_admin.app import make_app
    from web_admin.render import SESSION_COOKIE
    await _wait(lambda: _in_service(app))
    await app.campaign_action((await app.campaigns())[0]["name"], "pause")  # nothing dials meanwhile
    await _wait(lambda: app.lines.state("gsm0") == "idle")
    app.sims[0].population = population("busy")
    users.add(app.store, "tim", "tim-password-1", role="technician")
    uid = app.store.db.execute("SELECT id FROM users WHERE username='tim'").fetchone()[0]
    client = await aiohttp_client(make_app(app))
    sid, csrf = users.open_session(app.store, uid)
    client.session.cookie_jar.update_cookies({SESSION_COOKIE: sid})
    return client, csrf


async def test_a_test_call_says_in_russian_why_the_network_ended_it(paced_app, aiohttp_client):
    """A test call to a busy subscriber through the simulated modem: the release reason is shown
    by its Q.850 cause in Russian on a Russian page, in the network's English on an English one."""
    from tests.test_i18n import russian_only
    client, csrf = await _technician_with_busy_gsm0(paced_app, aiohttp_client)

    async def test_call(lang):
        r = await client.post(f"/lines/action?lang={lang}", data={
            "csrf": csrf, "line": "gsm0", "action": "test_call", "number": "8 (912) 345-67-89"})
        page = await r.text()
        assert r.status == 200, page
        return re.search(r'<section class="panel result" id="action-result">(.*?)</section>',
                         page, re.S).group(1)
    ru = await test_call("ru")
    assert "абонент занят" in ru and "<dd>17</dd>" in ru, ru
    assert not russian_only(ru, ("web_admin/labels.py", "firmware/")), ru
    en = await test_call("en")
    assert "busy" in en.lower() and "абонент" not in en, en


async def test_the_dashboard_says_in_russian_why_dialing_is_held(tmp_path, aiohttp_client):
    """A box whose clock is not synchronised at boot holds dialing; with no runtime box on the
    page to say so, the dashboard gives the hold's reason in the reader's language."""
    from dialbox import clocksync
    from tests.test_i18n import russian_only
    from web_admin.app import make_app
    from web_admin.render import SESSION_COOKIE
    a = Appliance(Settings(simulate=True, operators=0, data=tmp_path / "d", time_scale=25.0,
                           seed=21, compliance="none",
                           holds={clocksync.HOLD: clocksync.HOLD_TEXT}))  # as read at boot
    await a.start()
    try:
        assert a.runner.hold_reason == clocksync.HOLD_TEXT
        users.add(a.store, "sveta", "sveta-password-1", role="supervisor")
        uid = a.store.db.execute("SELECT id FROM users WHERE username='sveta'").fetchone()[0]
        client = await aiohttp_client(make_app(a))
        client.session.cookie_jar.update_cookies({SESSION_COOKIE: users.open_session(a.store,
                                                                                     uid)[0]})

        async def held(lang):
            page = await (await client.get(f"/?lang={lang}")).text()
            return re.search(r'<p class="error banner" id="dialing-held">(.*?)</p>', page,
                             re.S).group(1)
        ru = await held("ru")
        assert "Автоматический обзвон остановлен: часы не синхронизированы" in ru, ru
        assert not russian_only(ru, ("dialbox/", "web_admin/")), ru
        en = await held("en")
        assert en == ("Automatic dialing is held: the clock is not synchronised: legal calling "
                      "hours cannot be checked"), en
    finally:
        await a.stop()


async def test_a_test_call_in_progress_reports_its_end_in_the_pages_language(paced_app,
                                                                             aiohttp_client):
    """The lines page's script starts a test call and polls it: the finished job says why the
    network ended the call in the language of the page that started it."""
    from tests.test_i18n import russian_only
    client, csrf = await _technician_with_busy_gsm0(paced_app, aiohttp_client)

    async def finished(lang):
        r = await client.post(f"/lines/test?lang={lang}", data={
            "line": "gsm0", "action": "test_call", "number": "+7 912 345-67-89"},
            headers={"X-CSRF-Token": csrf, "Accept": "application/json"})
        job = (await r.json())["job"]
        for _ in range(400):
            view = await (await client.get(f"/lines/test/{job}")).json()
            if view["state"] != "running":
                return view
            await asyncio.sleep(0.05)
        raise AssertionError("the test call did not finish")
    ru = await finished("ru")
    assert ru["state"] == "done" and ru["result"]["reason"] == "абонент занят", ru
    assert not russian_only(ru["result"]["reason"], ("web_admin/",))
    en = await finished("en")
    assert en["result"]["reason"] == "user busy", en
