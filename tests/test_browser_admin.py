"""The supervisor's pages in real Chromium: find a debtor, open the card, edit a phone and read
the audit entry it made; a report's chart, and its XLSX export read back with openpyxl."""
from __future__ import annotations

import asyncio
import io
import os
from pathlib import Path

from tests.test_browser import browser, open_page, people_db, served  # noqa: F401 (fixtures)
from playwright.async_api import expect

from controller.store import AccountWriter, Lead


def _seed(store) -> int:
    cid = store.campaign("Банк-Ноябрь", create=True)
    w = AccountWriter(store, cid)
    w.add({"account_id": "КД-2024/0017", "debtor_name": "Иванов Иван Иванович",
           "debt_amount": 15000.5}, [("+79123456789", "mobile"), ("+74951234567", "work")])
    w.add({"account_id": "КД-2024/0018", "debtor_name": "Петрова Анна"},
          [("+79001112233", "mobile")])
    w.finish()
    pk, ph = store.db.execute("SELECT a.id, p.id FROM accounts a JOIN phones p ON "
                              "p.account_pk=a.id WHERE a.account_id='КД-2024/0017' "
                              "ORDER BY p.id").fetchone()
    now = store.clock.wall()
    store.begin_attempt(cid, Lead(pk, ph, "+79123456789", "КД-2024/0017"), "gsm0", "c-1",
                        "desk-olga", now=now - 600)
    store.finish_attempt("c-1", outcome="answered", q850=16, reason="normal", ring_s=6.0,
                         talk_s=95.0, abandoned=False, now=now - 500)
    store.db.execute("INSERT INTO recordings (call_id, line, operator, path, started_at, "
                     "duration_s, state) VALUES ('c-1', 'gsm0', 'desk-olga', 'rec/c-1.ogg', ?, "
                     "95.0, 'done')", (now - 594,))
    return pk


def _shots() -> Path:
    out = Path(os.environ.get("DIALBOX_SCREENSHOTS") or "/tmp/dialbox-screenshots")
    out.mkdir(parents=True, exist_ok=True)
    return out


async def test_find_a_debtor_edit_a_phone_and_read_the_audit(open_page, served):
    base, fake = served
    pk = _seed(fake.store)
    page = await open_page("supervisor")
    await page.goto(base + "/debtors")
    await page.fill("input[name=q]", "8 (912) 345-67-89")
    await page.get_by_role("button", name="Найти").click()
    rows = page.locator("#debtor-results tbody tr")
    await expect(rows).to_have_count(1)
    await page.screenshot(path=str(_shots() / "debtors.png"))
    await rows.first.get_by_role("link", name="Иванов Иван Иванович").click()
    await expect(page).to_have_url(f"{base}/debtors/{pk}")
    await expect(page.locator("#debtor-phones")).to_contain_text("+74951234567")
    await expect(page.locator("#debtor-calls")).to_contain_text("ответил")
    work = page.locator("#debtor-phones tbody tr", has_text="+74951234567")
    await work.get_by_role("button", name="Чужой номер").click()
    await expect(work).to_contain_text("чужой номер")
    rec = page.locator("#debtor-recordings tbody tr").first
    await expect(rec).to_contain_text("olga")
    await expect(rec.locator("audio")).to_have_attribute("src", "/recordings/c-1")
    await page.screenshot(path=str(_shots() / "debtor-card.png"), full_page=True)
    body = await page.locator("main").inner_text()
    for key in ("phone_status", "bad", "mobile", "answered", "None"):
        assert key not in body, key  # people read names, never internal keys
    await page.goto(base + "/audit?object=calllist")
    entry = page.locator("#audit tbody tr").first
    await expect(entry).to_contain_text("anna")
    await expect(entry).to_contain_text("КД-2024/0017")
    await expect(entry).to_contain_text('"status": "bad"')
    await page.screenshot(path=str(_shots() / "audit.png"))


async def test_a_report_shows_its_chart_and_exports_xlsx(open_page, served):
    from openpyxl import load_workbook
    base, fake = served
    _seed(fake.store)
    page = await open_page("supervisor")
    await page.goto(base + "/reports?report=funnel&by=campaign")
    await expect(page.locator("svg.chart")).to_be_visible()
    await expect(page.locator("#report tbody")).to_contain_text("Банк-Ноябрь")
    await page.screenshot(path=str(_shots() / "reports.png"))
    async with page.expect_download() as dl:
        await page.click("#export-xlsx")
    data = Path(await (await dl.value).path()).read_bytes()
    ws = load_workbook(io.BytesIO(data)).active
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0][:3] == ("Группа", "Попытки", "Контакты")
    assert rows[1][:3] == ("Банк-Ноябрь", 1, 1)
    await page.goto(base + "/reports?report=heatmap")
    await expect(page.locator("svg.chart rect")).to_have_count(7 * 24)


async def test_a_test_call_shows_its_progress_and_never_blocks_the_page(open_page, served):
    base, fake = served
    fake.test_stage_s = 0.7  # each stage of the simulated test call takes a while
    page = await open_page("technician")
    await page.goto(base + "/lines")
    form = page.locator("#test-call-form")
    await form.locator("input[name=number]").fill("8 (912) 345-67-89")
    await form.get_by_role("button", name="Тестовый звонок").click()
    progress = page.locator("#test-progress")
    await expect(progress).to_contain_text("набор", timeout=2000)  # while it is dialing
    await expect(progress).to_have_attribute("data-state", "running")
    await expect(progress).to_contain_text("ответил", timeout=5000)
    await expect(progress).to_have_attribute("data-state", "done", timeout=5000)
    await expect(progress).to_contain_text("завершён")
    call = next(c for c in fake.calls if c[0] == "line_action" and c[2] == "test_call")
    assert call[3]["number"] == "8 (912) 345-67-89"
    from controller import audit
    assert audit.entries(fake.store, obj="line")[0]["action"] == "test_call"
    await form.locator("input[name=number]").fill("12")
    await form.get_by_role("button", name="Тестовый звонок").click()
    await expect(progress).to_have_attribute("data-state", "failed", timeout=5000)
    await expect(progress).to_contain_text("не номер телефона")


async def test_a_line_with_a_call_up_is_reset_only_when_the_technician_confirms(open_page,
                                                                                  served):
    base, fake = served
    page = await open_page("technician")
    await page.goto(base + "/lines")
    asked: list[str] = []

    async def answer(dialog, accept: bool) -> None:
        asked.append(dialog.message)
        await (dialog.accept() if accept else dialog.dismiss())
    page.once("dialog", lambda d: asyncio.ensure_future(answer(d, False)))
    row = page.locator('#lines-detail tr[data-line="gsm0"]')  # ringing: a call is up
    await row.get_by_role("button", name="Сбросить").click()
    await expect(page.locator("#page-notice")).to_have_count(0)
    assert asked == ["На линии идёт разговор: сброс его прервёт. Сбросить линию?"]
    assert not [c for c in fake.calls if c[:3] == ("line_action", "gsm0", "reset")]
    page.once("dialog", lambda d: asyncio.ensure_future(answer(d, True)))
    await row.get_by_role("button", name="Сбросить").click()
    await expect(page.locator("#page-notice")).to_contain_text("gsm0: модуль перезапускается")
    assert len(asked) == 2 and ("line_action", "gsm0", "reset", {}) in fake.calls
    idle = page.locator('#lines-detail tr[data-line="gsm1"]')  # out of service: no question
    await idle.get_by_role("button", name="Сбросить").click()
    await expect(page.locator("#page-notice")).to_contain_text("gsm1: модуль перезапускается")
    assert len(asked) == 2


async def test_a_profile_edited_with_a_mistake_shows_it_beside_the_line(open_page, served):
    base, fake = served
    page = await open_page("technician")
    await page.goto(base + "/hardware")
    await page.locator('#profiles a[href="/hardware/profiles/sim800"]').click()
    text = await page.locator("textarea[name=text]").input_value()
    lines = text.split("\n")
    n = next(i for i, ln in enumerate(lines) if ln.strip().startswith("ring_timeout_s:"))
    lines[n] = lines[n].replace("ring_timeout_s:", "ring_timout_s:")
    await page.locator("textarea[name=text]").fill("\n".join(lines))
    await page.get_by_role("button", name="Проверить и сохранить").click()
    bad = page.locator("#profile-lines li.bad")
    await expect(bad).to_have_count(1)
    await expect(bad).to_have_attribute("data-line", str(n + 1))
    await expect(bad).to_contain_text("ring_timeout_s")  # did you mean
    await expect(page.locator("#profile-problems")).to_be_visible()
    await page.screenshot(path=str(_shots() / "hardware-profile-error.png"), full_page=True)
    assert not (fake.profiles_dir / "sim800.yaml").exists()  # nothing invalid is saved
    lines[n] = lines[n].replace("ring_timout_s:", "ring_timeout_s:")
    await page.locator("textarea[name=text]").fill("\n".join(lines) + "\n# edited for the shop\n")
    await page.get_by_role("button", name="Проверить и сохранить").click()
    await expect(page.locator("#profile-saved")).to_contain_text("применён")
    assert "# edited for the shop" in (fake.profiles_dir / "sim800.yaml").read_text()
    assert ("apply_profile", "sim800") in fake.calls
    from controller import audit
    entry = audit.entries(fake.store, obj="profile")[0]
    assert entry["key"] == "sim800" and "# edited for the shop" in entry["after"]
    assert "# edited for the shop" not in entry["before"]
    await page.goto(base + "/hardware")
    row = page.locator("#profiles tr", has=page.locator('a[href="/hardware/profiles/sim800"]'))
    await expect(row).to_contain_text("копия")


async def test_settings_show_what_the_box_runs_with(open_page, served):
    base, fake = served
    page = await open_page("admin")
    await page.goto(base + "/settings")
    box = page.locator("#settings")
    await expect(box).to_contain_text("Europe/Moscow")
    await expect(box).to_contain_text("192.168.1.20")
    await expect(box).to_contain_text("1096 дн")
    await page.screenshot(path=str(_shots() / "settings.png"))
    form = page.locator("#settings-form")
    await form.locator("select[name=time_zone]").select_option("Asia/Yekaterinburg")
    await form.locator("input[name=retention_days]").fill("1200")
    await form.locator("input[name=disk_stop_free_mb]").fill("4096")  # above the warning
    await form.get_by_role("button", name="Сохранить и применить").click()
    await expect(page.locator("#settings-error")).to_contain_text("2048 МБ")
    assert fake.settings["time_zone"] == "Europe/Moscow"  # nothing half-applied
    await form.locator("input[name=disk_stop_free_mb]").fill("1024")
    await form.get_by_role("button", name="Сохранить и применить").click()
    await expect(page.locator("#settings-saved")).to_contain_text("перезапуск не понадобился")
    await expect(box).to_contain_text("Asia/Yekaterinburg")
    await expect(box).to_contain_text("1200 дн")
    from controller import audit
    entry = audit.entries(fake.store, obj="setting")[0]
    assert entry["after"]["time_zone"] == "Asia/Yekaterinburg" and entry["who"] == "root"


def test_the_appliance_reports_its_real_settings(tmp_path):
    from types import SimpleNamespace

    from dialbox.appliance import Settings
    from dialbox.backend import BackendMixin
    box = SimpleNamespace(settings=Settings(data=tmp_path, recording_retention_days=30.2))
    view = BackendMixin.settings_view(box)
    assert "127.0.0.1" in view["addresses"] and view["retention_days"] == 30
    assert view["time_zone"] and "/" in view["time_zone"] or view["time_zone"] == "UTC"


async def test_a_refusal_taken_on_the_card_and_why_he_was_called(open_page, served):
    base, fake = served
    pk = _seed(fake.store)
    page = await open_page("supervisor")
    await page.goto(f"{base}/debtors/{pk}")
    evidence = page.locator("#debtor-evidence")
    await expect(evidence).to_contain_text("ru-230fz")
    await expect(evidence).to_contain_text("+79990001122")  # the line's official number
    form = page.locator("#refusal-form")
    await form.locator("select[name=kind]").select_option("third_party")
    await form.locator("input[name=phone]").fill("not a phone")
    await form.get_by_role("button", name="Записать отказ").click()
    await expect(page.locator("#card-error")).to_be_visible()  # said on the card, in Russian
    await expect(page.locator("#card-error")).to_contain_text("не номер телефона")
    form = page.locator("#refusal-form")
    await form.locator("select[name=kind]").select_option("debtor")
    await form.locator("input[name=note]").fill("просил не звонить")
    await form.get_by_role("button", name="Записать отказ").click()
    row = page.locator("#debtor-refusals tbody tr").first
    await expect(row).to_contain_text("должник")
    await expect(row).to_contain_text("на карточке")
    rec = [c for c in fake.calls if c[0] == "refusal_record"][-1]
    assert rec[1:5] == ("КД-2024/0017", "debtor", "card", "anna")
    await row.locator("select[name=kind]").select_option("enforcement_document")
    await row.locator("input[name=reference]").fill("ФС № 012345 от 01.11.2026")
    await row.get_by_role("button", name="Добавить исключение").click()
    await expect(page.locator("#debtor-refusals")).to_contain_text("ФС № 012345")
    await page.screenshot(path=str(_shots() / "debtor-card-refusal.png"), full_page=True)
