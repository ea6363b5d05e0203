"""The web admin in real Chromium (Playwright): desk card pops, a promise is recorded, live dashboard."""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from aiohttp import web

from controller import users
from controller.store import Store
from tests.fake_backend import FakeBackend
from web_admin.app import make_app

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "correct horse battery"
PEOPLE = {"admin": "root", "supervisor": "anna", "technician": "ted", "operator": "olga"}

try:
    from playwright.async_api import async_playwright, expect
except ImportError:  # pragma: no cover - depends on the machine
    async_playwright = None

if async_playwright is None or not os.path.exists(CHROMIUM):
    if os.environ.get("CI"):
        raise RuntimeError("CI needs Chromium (apt: chromium) and Playwright (pip: playwright) "
                           "for the browser tests")
    pytest.skip("Chromium or Playwright is not installed here", allow_module_level=True)


@pytest.fixture(scope="session")
def people_db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("people") / "db.sqlite3"
    s = Store(path)
    for role, name in PEOPLE.items():
        users.add(s, name, PASSWORD, role=role)
    s.close()
    return path


@pytest.fixture
async def served(tmp_path, people_db):
    """The app with the fake backend on 127.0.0.1 (a free port): (base URL, fake)."""
    shutil.copy(people_db, tmp_path / "db.sqlite3")
    store = Store(tmp_path / "db.sqlite3")
    reports = tmp_path / "reports"
    reports.mkdir()
    fake = FakeBackend(store, report_dir=reports, lines=124)
    runner = web.AppRunner(make_app(fake), handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}", fake
    await runner.cleanup()
    store.close()


@pytest.fixture
async def browser():
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield b
        await b.close()


@pytest.fixture
async def open_page(browser, served):
    """A page logged in as the person with `role`; console errors (CSP too) fail the test."""
    base, _ = served
    errors: list[str] = []
    pages = []

    async def _open(role: str):
        ctx = await browser.new_context(viewport={"width": 1366, "height": 768}, locale="ru-RU")
        page = await ctx.new_page()
        # a 400 is how the desk hears a validation message; anything else is a fault
        page.on("console", lambda m: m.type == "error" and "status of 400" not in m.text
                and errors.append(m.text))
        page.on("pageerror", lambda e: errors.append(str(e)))
        await page.goto(base + "/login")
        await page.fill("input[name=username]", PEOPLE[role])
        await page.fill("input[name=password]", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_load_state("networkidle")
        pages.append(ctx)
        return page

    _open.errors = errors  # a test that expects a refusal takes its console line out
    yield _open
    for ctx in pages:
        await ctx.close()
    assert errors == []


async def _wait_for(predicate, page, timeout_s: float = 5.0):
    for _ in range(int(timeout_s / 0.05)):
        if predicate():
            return
        await page.wait_for_timeout(50)
    raise AssertionError("the backend never saw it")


async def _card_speaks_russian(page) -> None:
    """No internal key on the card: every name shown is the Russian catalogue's, dates are local."""
    from babel.messages.pofile import read_po

    from web_admin import i18n
    from web_admin.backend import CALL_STAGES, DISPOSITIONS, OPERATOR_STATES
    from web_admin.labels import LABELS
    with i18n.po_path("ru").open("rb") as f:
        ru = {(m.context, m.id): m.string for m in read_po(f, locale="ru") if m.id}
    keys = {k for names in LABELS.values() for k in names} | set(DISPOSITIONS) | set(
        OPERATOR_STATES) | set(CALL_STAGES) | {"open", "out_answered"}
    text = await page.locator("#card").inner_text()
    words = set(re.findall(r"[A-Za-z_]+", text))
    assert not words & keys, words & keys
    history = await page.locator("#history").inner_text()
    for family, key in (("attempt", "answered"), ("attempt", "no_answer"), ("out", "callback")):
        assert ru[LABELS[family][key]] in history, (family, key)
    assert ru[LABELS["out"]["callback"]] == "Перезвонить"
    assert "просил позже" in history and re.search(r"\d\d\.\d\d\.\d{4}, \d\d:\d\d", history)
    assert not re.search(r"\b1760\d{6}", text)  # no Unix timestamp
    await expect(page.locator("#script-text")).to_have_text(
        "Здравствуйте! Напоминаем о просроченном платеже.")
    await expect(page.locator("#promises")).to_contain_text("01.10.2026")
    await expect(page.locator("#promises")).to_contain_text("5\u00a0000,00\u00a0₽")


async def test_desk_pops_the_card_and_records_a_promise(open_page, served):
    base, fake = served
    page = await open_page("operator")
    assert page.url == base + "/desk"
    state = page.locator("#desk-state-text")
    await expect(state).to_have_text("Не готов")
    await page.click("#ready-toggle")
    await expect(state).to_have_text("Ожидание звонка")
    assert ("desk_ready", "olga", True) in fake.calls
    await expect(page.locator("#card")).to_be_hidden()
    fake.put_call("olga")  # the dialer bridges an answered call to her
    await expect(page.locator("#debtor-name")).to_have_text("Иванов Иван Иванович", timeout=5000)
    await expect(state).to_have_text("Разговор")
    await expect(page).to_have_title("Разговор — dialbox")
    await expect(page.locator("#debt")).to_have_text("45\u00a0210,50\u00a0₽")
    await expect(page.locator("#flags")).to_contain_text("жалоба")
    await _card_speaks_russian(page)
    await page.locator("#call-note").fill("обещал после зарплаты")
    await page.get_by_role("button", name="Обещание оплаты").click()
    form = page.locator("#fields-promise")
    await form.locator("input[name=amount]").fill("15 000,50")
    await form.locator("input[name=date]").fill("2020-01-01")
    await form.get_by_role("button", name="Сохранить").click()
    await expect(form.locator(".field-error")).to_have_text("дата: обещанная дата уже прошла")
    await form.locator("input[name=date]").fill("2026-12-10")
    await form.locator("input[name=date]").press("Enter")
    await _wait_for(lambda: any(c[0] == "desk_disposition" for c in fake.calls), page)
    assert fake.calls[-1] == ("desk_disposition", "olga", "c-1", "promise",  # typed the Russian way
                              {"amount": "15000.50", "date": "2026-12-10",
                               "note": "обещал после зарплаты"})
    await expect(page.locator("#card")).to_be_hidden()
    await expect(state).to_have_text("Ожидание звонка")  # ready again after the outcome


async def test_preview_card_then_call_or_skip(open_page, served):
    _, fake = served
    fake.operators["olga"]["state"] = "reserved"
    fake.put_call("olga", call_id="p-1", stage="preview")
    page = await open_page("operator")
    state = page.locator("#desk-state-text")
    await expect(state).to_have_text("Карточка: позвоните, когда будете готовы")
    await expect(page.locator("#hangup")).to_be_hidden()
    await expect(page.get_by_role("button", name="Обещание оплаты")).to_be_disabled()
    await page.get_by_role("button", name="Позвонить").click()
    await _wait_for(lambda: ("desk_dial", "olga", "p-1") in fake.calls, page)
    await expect(page.locator("#dial")).to_be_hidden()
    fake.put_call("olga", call_id="p-2", stage="preview")
    await page.get_by_role("button", name="Пропустить").click()
    await _wait_for(lambda: ("desk_skip", "olga", "p-2") in fake.calls, page)
    await expect(page.locator("#card")).to_be_hidden()


async def test_desk_keyboard_hangup_wrap_up_and_outcome(open_page, served):
    _, fake = served
    fake.operators["olga"]["state"] = "free"
    page = await open_page("operator")
    fake.put_call("olga", call_id="c-7")
    await expect(page.locator("#debtor-name")).to_be_visible(timeout=5000)
    await page.click("#hangup")
    await expect(page.locator("#desk-state-text")).to_have_text("Постобработка")
    assert ("desk_hangup", "olga", "c-7") in fake.calls
    await page.keyboard.press("8")  # complaint asks for words; Esc changes the mind
    await expect(page.locator("#fields-complaint textarea")).to_be_focused()
    await page.keyboard.press("Escape")
    await expect(page.locator("#fields-complaint")).to_be_hidden()
    await page.keyboard.press("3")  # callback asks when
    at = page.locator("#fields-callback input[name=at]")
    await expect(at).to_be_focused()
    await at.fill("2026-11-26T10:30")
    await at.press("Enter")
    await _wait_for(lambda: fake.calls[-1][0] == "desk_disposition", page)
    assert fake.calls[-1][3:] == ("callback", {"at": "2026-11-26T10:30"})
    await expect(page.locator("#card")).to_be_hidden()
    await expect(page.locator("#desk-state-text")).to_have_text("Ожидание звонка")
    fake.put_call("olga", call_id="c-8")
    await expect(page.locator("#desk-state-text")).to_have_text("Разговор", timeout=5000)
    await page.keyboard.press("7")  # wrong number: one key, no fields
    await _wait_for(lambda: fake.calls[-1][2] == "c-8", page)
    assert fake.calls[-1][3:] == ("wrong_number", {})


async def test_an_inbound_call_rings_until_taken_and_one_gone_says_so(open_page, served):
    _, fake = served
    fake.operators["olga"]["state"] = "free"
    page = await open_page("operator")
    fake.ring_call("olga", call_id="in-1")
    await expect(page.locator("#desk-state-text")).to_have_text("Входящий звонок: примите его")
    await expect(page.locator("#call-meta")).to_contain_text("+79123456789")
    await expect(page.locator("#hangup")).to_be_hidden()
    await expect(page.locator("button.outcome").first).to_be_disabled()  # not before it is taken
    await page.click("#take")
    await _wait_for(lambda: ("desk_take", "olga", "in-1") in fake.calls, page)
    await expect(page.locator("#take")).to_be_hidden()
    fake.ring_call("olga", call_id="in-2")
    await expect(page.locator("#take")).to_be_visible()
    fake.caller_gone = True  # he hangs up as she presses Enter
    await page.keyboard.press("Enter")
    await expect(page.locator("#desk-error")).to_have_text(
        "этот звонок уже не ждёт вас (абонент положил трубку или звонок ушёл другому оператору)")


async def test_dashboard_updates_live_without_reload(open_page, served):
    _, fake = served
    page = await open_page("supervisor")
    await expect(page.locator("#feed-state")).to_have_attribute("data-state", "live")
    await page.evaluate("window.__notReloaded = true")
    tiles = page.locator("#lines .tile")
    assert await tiles.count() == 124
    fake.lines[0]["state"] = "bridged"
    fake.counters["attempts"] = 8
    fake.operators["olga"]["state"] = "wrap_up"
    await expect(page.locator('[data-line="gsm0"]')).to_have_class("tile st-bridged", timeout=5000)
    await expect(page.locator('[data-counter="attempts"]')).to_have_text("8")
    await expect(page.locator('[data-position="pos1"] .state')).to_have_text("постобработка")
    await expect(page.locator('[data-op-state="wrap_up"]')).to_have_text("1")
    talking = sum(1 for ln in fake.lines if ln["state"] in ("answered", "bridged", "inbound"))
    await expect(page.locator('[data-group="talking"]')).to_have_text(str(talking))
    assert await page.evaluate("window.__notReloaded") is True


async def test_language_switch_is_remembered(open_page, served):
    base, _ = served
    page = await open_page("supervisor")
    await expect(page.locator("h1")).to_contain_text("Кампания")
    await page.click("#lang-switch")
    await expect(page.locator("h1")).to_contain_text("Campaign")
    await page.goto(base + "/kpi")
    await expect(page.locator("h1")).to_have_text("KPI")
    await page.click("#lang-switch")
    await expect(page.locator("h1")).to_have_text("Показатели")


async def test_upload_and_forms_work_in_the_browser(open_page, served, tmp_path):
    base, fake = served
    page = await open_page("supervisor")
    await page.goto(base + "/campaigns")
    csv = tmp_path / "debts.csv"
    csv.write_text("ФИО;Мобила\nA;+79123456789\nB;garbage\n", encoding="utf-8")
    await page.set_input_files("input[type=file]", str(csv))
    await page.click("#upload-form button[type=submit]")
    # the columns found and the first rows; "Мобила" is no known name: the person picks it
    await expect(page.locator("#preview thead th").first).to_have_text("ФИО")
    await expect(page.locator("#preview tbody tr")).to_have_count(2)
    phone = page.locator('select[data-column="Мобила"]')
    await page.click("#mapping-form button[type=submit]")
    await expect(page.locator("#page-error")).to_have_text(
        "Выберите столбец с номером телефона: без него некому звонить.")
    await phone.select_option(label="Телефон *")  # the required field is marked
    await page.click("#mapping-form button[type=submit]")
    await expect(page.locator('[data-summary="imported"]')).to_have_text("1")
    await expect(page.locator("#report-link")).to_be_visible()
    assert fake.mappings["Тест"] == {"ФИО": "debtor_name", "Мобила": "phone"}
    body = await page.locator("main").inner_text()
    assert "/tmp" not in body and "--mapping" not in body
    if os.environ.get("DIALBOX_SCREENSHOTS"):
        await page.screenshot(path=os.path.join(os.environ["DIALBOX_SCREENSHOTS"], "upload.png"))
    await page.goto(base + "/dnc")
    await page.fill("#dnc-form input[name=number]", "12")
    await page.fill("#dnc-form input[name=reason]", "просил")
    await page.click("#dnc-form button[type=submit]")
    await expect(page.locator("#form-error")).to_contain_text("12 — не номер телефона")
    await expect(page.locator("#dnc-form input[name=reason]")).to_have_value("просил")


SHOTS = [("operator", "/desk", "desk"), ("supervisor", "/", "dashboard"),
         ("supervisor", "/campaigns", "campaigns"), ("supervisor", "/kpi?by=segment", "kpi"),
         ("supervisor", "/dnc", "dnc"), ("technician", "/lines", "lines"),
         ("admin", "/users", "users"), ("operator", "/users", "forbidden")]


async def test_screenshots_of_every_page(open_page, served, tmp_path):
    """Every page at 1366x768, for a person to look at (DIALBOX_SCREENSHOTS=dir keeps them)."""
    base, fake = served
    out = Path(os.environ.get("DIALBOX_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    fake.operators["olga"]["state"] = "free"
    page = await open_page("operator")
    await page.screenshot(path=str(out / "desk-waiting.png"))
    await page.context.clear_cookies()
    await page.goto(base + "/login")
    await page.screenshot(path=str(out / "login.png"))
    fake.put_call("olga")
    for role, path, name in SHOTS:
        page = await open_page(role)
        await page.goto(base + path)
        await page.wait_for_load_state("networkidle")
        await page.screenshot(path=str(out / f"{name}.png"))
        assert (out / f"{name}.png").stat().st_size > 10_000
        if name == "forbidden":
            await expect(page.locator(".error")).to_have_text("Недостаточно прав для этой страницы.")
            open_page.errors.remove(
                "Failed to load resource: the server responded with a status of 403 (Forbidden)")
    page = await open_page("operator")
    await page.get_by_role("button", name="Обещание оплаты").click()
    await page.screenshot(path=str(out / "desk-promise.png"))
    await page.goto(base + "/desk?lang=en")
    await page.wait_for_load_state("networkidle")
    await page.screenshot(path=str(out / "desk-en.png"))


async def test_technician_test_call_and_block(open_page, served):
    base, fake = served
    page = await open_page("technician")
    assert page.url == base + "/lines"
    await page.select_option("#test-call-form select[name=line]", "gsm0")
    await page.fill("#test-call-form input[name=number]", "+79123456789")
    await page.click("#test-call-form button[type=submit]")
    await expect(page.locator("#test-progress")).to_have_attribute("data-state", "done")
    await expect(page.locator("#test-progress")).to_contain_text("ответили")
    call = fake.calls[-1]
    assert call[:3] == ("line_action", "gsm0", "test_call")
    assert call[3]["number"] == "+79123456789"
    await page.locator('tr[data-line="gsm0"] button[value=block]').click()
    await expect(page.locator('tr[data-line="gsm0"] button[value=unblock]')).to_be_visible()
    assert fake.lines[0]["state"] == "blocked"


async def test_an_answer_overtaken_by_a_push_does_not_take_the_call_off_the_desk(open_page, served):
    """The box answers "ready" with the desk as it was; the dialer bridges a call and the live
    push shows it before that answer arrives. The late answer is older than the card on screen
    and must not hide it: the feed would not send the card again, and the debtor would be
    talking to a desk that shows no one."""
    import asyncio
    base, fake = served
    page = await open_page("operator")
    state = page.locator("#desk-state-text")
    await expect(state).to_have_text("Не готов")
    answered = asyncio.get_running_loop().create_future()

    async def late(route):
        response = await route.fetch()  # the box's answer: the desk before the call came
        fake.put_call("olga")  # ... and the push that overtakes it
        await expect(page.locator("#debtor-name")).to_have_text("Иванов Иван Иванович")
        await route.fulfill(response=response)
        answered.set_result(None)
    await page.route("**/desk/ready", late)
    async with page.expect_request_finished(lambda r: r.url.endswith("/desk/ready")):
        await page.click("#ready-toggle")
    await answered
    await page.evaluate("() => new Promise((done) => setTimeout(done, 100))")  # the page took it
    await expect(state).to_have_text("Разговор")
    await expect(page.locator("#debtor-name")).to_be_visible()


async def test_the_russian_pages_say_every_error_in_russian(open_page, served, tmp_path):
    """Each error path a person meets, on the Russian pages: the message is the catalogue's
    Russian, never an English message, an internal key or a server path."""
    from babel.messages.pofile import read_po

    from web_admin import i18n
    with i18n.po_path("ru").open("rb") as f:
        english = {m.id.split("{")[0].strip() for m in read_po(f, locale="ru")
                   if isinstance(m.id, str)} - {""}
    english = {e for e in english if len(e) > 12}  # the English wording of every message
    base, fake = served
    shown: list[str] = []

    async def error_of(page, selector):
        el = page.locator(selector)
        await expect(el).to_be_visible()
        shown.append(await el.inner_text())

    page = await open_page("operator")  # the desk: a bad amount, a date in the past
    await page.click("#ready-toggle")
    fake.put_call("olga")
    await expect(page.locator("#debtor-name")).to_be_visible(timeout=5000)
    await page.get_by_role("button", name="Обещание оплаты").click()
    form = page.locator("#fields-promise")
    await form.locator("input[name=amount]").fill("пятнадцать")
    await form.locator("input[name=date]").fill("2026-12-10")
    await form.get_by_role("button", name="Сохранить").click()
    await error_of(page, "#fields-promise .field-error")
    await form.locator("input[name=amount]").fill("100")
    await form.locator("input[name=date]").fill("2020-01-01")
    await form.get_by_role("button", name="Сохранить").click()
    await expect(form.locator(".field-error")).to_contain_text("прошла")
    shown.append(await form.locator(".field-error").inner_text())
    page = await open_page("supervisor")  # uploads, mapping, the do-not-call list
    await page.goto(base + "/campaigns")
    bad = tmp_path / "photo.png"
    bad.write_bytes(b"\x89PNG....")
    await page.set_input_files("#upload-form input[type=file]", str(bad))
    await page.click("#upload-form button[type=submit]")
    await error_of(page, "#page-error")
    notes = tmp_path / "notes.csv"
    notes.write_text("just some text\n", encoding="utf-8")
    await page.set_input_files("#upload-form input[type=file]", str(notes))
    await page.click("#upload-form button[type=submit]")
    await error_of(page, "#page-error")
    lst = tmp_path / "list.csv"
    lst.write_text("ФИО;Мобила\nA;+79123456789\n", encoding="utf-8")
    await page.set_input_files("#upload-form input[type=file]", str(lst))
    await page.click("#upload-form button[type=submit]")
    await page.click("#mapping-form button[type=submit]")
    await error_of(page, "#page-error")
    await page.goto(base + "/dnc")
    await page.fill("#dnc-form input[name=number]", "12")
    await page.fill("#dnc-form input[name=reason]", "просил")
    await page.click("#dnc-form button[type=submit]")
    await error_of(page, "#form-error")
    page = await open_page("admin")  # users: a short password, the last admin
    await page.goto(base + "/users")
    await page.fill("#user-form input[name=username]", "petr")
    await page.fill("#user-form input[name=password]", "0123456789")
    await page.select_option("#user-form select[name=role]", "operator")
    await page.evaluate("document.querySelector('#user-form input[name=username]').value='x'")
    await page.click("#user-form button[type=submit]")
    await error_of(page, "#form-error")
    await page.locator('tr[data-user="root"] button.user-disable').click()
    await error_of(page, "#form-error")
    await page.goto(base + "/account")
    await page.fill("input[name=old]", "not my password")
    await page.fill("input[name=new]", "0123456789ab")
    await page.fill("input[name=again]", "0123456789ab")
    await page.click("#password-form button[type=submit]")
    await error_of(page, "#form-error")
    assert len(shown) == 9
    for text in shown:
        assert re.search("[а-яё]", text, re.I), text
        assert not any(e in text for e in english), text
        assert "/tmp" not in text and "--mapping" not in text and "Traceback" not in text


@pytest.fixture
async def box(tmp_path):
    """The simulated box itself (no demo) with its web admin on 127.0.0.1: (base URL, box)."""
    from dialbox.appliance import Appliance, Settings
    a = Appliance(Settings(simulate=True, operators=3, data=tmp_path / "d", time_scale=25.0,
                           seed=5, demo=False, wrap_mean_s=1.0))
    await a.start()
    users.add(a.store, "anna", PASSWORD, role="supervisor")
    runner = web.AppRunner(make_app(a), handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}", a
    await runner.cleanup()
    await a.stop()


async def test_a_campaign_made_and_loaded_in_the_browser_is_dialed(browser, box, tmp_path):
    base, a = box
    assert await a.campaigns() == []  # nothing dials on a box nobody set up
    ctx = await browser.new_context(locale="ru-RU")
    page = await ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(base + "/login")
    await page.fill("input[name=username]", "anna")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.goto(base + "/campaigns")
    await page.fill("#create-form input[name=name]", "Банк-Ноябрь")
    await page.fill("#create-form input[name=creditor]", "Банк")
    await page.select_option("#create-form select[name=compliance]", "none")  # any hour
    await page.click("#create-form button[type=submit]")
    await expect(page.locator("#campaign-status")).to_have_text("черновик")
    # the creditor's file: no account numbers, a phone column with a name nobody guesses
    csv = tmp_path / "ноябрь.csv"
    csv.write_text("ФИО;Сумма долга;Мобила\n" + "".join(
        f"Должник {i};{1000 + i},50;+7 900 {i:03d}-00-0{i % 10}\n" for i in range(1, 21)),
        encoding="utf-8")
    await page.goto(base + "/campaigns")
    await page.select_option("#upload-form select[name=campaign]", "Банк-Ноябрь")
    await page.set_input_files("#upload-form input[type=file]", str(csv))
    await page.click("#upload-form button[type=submit]")
    await expect(page.locator("#preview tbody tr")).to_have_count(5)
    await page.locator('select[data-column="Мобила"]').select_option(label="Телефон *")
    await page.click("#mapping-form button[type=submit]")
    await expect(page.locator('[data-summary="imported"]')).to_have_text("20", timeout=20000)
    await expect(page.locator("#derived-ids")).to_be_visible()
    await page.goto(base + "/campaign/Банк-Ноябрь")
    await page.click('button[value="start"]')
    await expect(page.locator("#campaign-status")).to_have_text("идёт обзвон")
    cid = a.store.campaign("Банк-Ноябрь")
    for _ in range(400):  # the box dials the list it was given in the browser
        n = a.store.db.execute("SELECT COUNT(*) FROM attempts WHERE campaign_id=?",
                               (cid,)).fetchone()[0]
        if n >= 3:
            break
        await page.wait_for_timeout(50)
    assert n >= 3
    mapping = a.store.mapping_for("Банк")
    assert mapping and mapping.get("Мобила") == "phone"  # saved for the creditor
    assert not errors
    await ctx.close()
