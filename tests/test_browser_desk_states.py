"""Operator states at the desk in real Chromium, on the simulated box (its own dialer, lines and
store): a break asked for while talking waits for the call and its wrap-up and no new call is
offered; an outcome chosen during the call is the call's one outcome (no wrap-up after it, no
second one)."""
from __future__ import annotations

import pytest
from aiohttp import web

from controller import users
from dialbox.appliance import Appliance, Settings
from tests.test_browser import CHROMIUM, browser  # noqa: F401 (skips without Chromium, fails in CI)
from tests.deskbox import PASSWORD
from tests.gsmsim import until
from tests.test_browser_desk_e2e import olga_at_desk
from tests.test_e2e_audio import POPULATION
from web_admin.app import make_app


@pytest.fixture
async def box(tmp_path, monkeypatch):
    """The simulated box, 25 times real time, every debtor answering and talking until the
    operator hangs up; its web admin on 127.0.0.1 and olga: (base URL, box)."""
    profile = tmp_path / "gsm.yaml"
    long_talk = dict(POPULATION, talk_mean_s=3000.0, talk_sd_s=1.0)
    profile.write_text("name: sim-gsm-2\ndriver: gsm\ndialect: sim800\nmodules:\n"
                       "  - {name: gsm0, port: 'sim://0'}\n  - {name: gsm1, port: 'sim://1'}\n"
                       f"simulate:\n  population: {long_talk}\n", encoding="utf-8")
    monkeypatch.setattr(Appliance, "_default_population", lambda self: long_talk)
    app = Appliance(Settings(simulate=True, profiles=(str(profile),), operators=0,
                             data=tmp_path / "d", time_scale=25.0, seed=7, compliance="none"))
    await app.start()
    users.add(app.store, "olga", PASSWORD, role="operator")
    runner = web.AppRunner(make_app(app), handle_signals=False)
    try:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}", app
    finally:
        await runner.cleanup()
        await app.stop()


async def _talking(browser, base: str, app):  # noqa: F811
    """olga at the desk, Ready, talking to a debtor: (context, page, call id)."""
    from playwright.async_api import expect
    ctx, page = await olga_at_desk(browser, base, audio=False)  # a scaled clock: no media plane
    await page.click("#ready-toggle")
    await until(lambda: (app.desk("olga")["call"] or {}).get("stage") == "bridged", timeout=60)
    await expect(page.locator("#desk-state-text")).to_have_text("Разговор", timeout=10000)
    await expect(page.locator("#card")).to_be_visible()
    return ctx, page, app.desk("olga")["call"]["call_id"]


def _calls_of(app, op) -> int:
    return app.store.db.execute("SELECT COUNT(*) FROM attempts WHERE operator=?",
                                (op.position,)).fetchone()[0]


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_a_break_asked_while_talking_comes_after_the_call_and_its_wrap_up(browser, box):  # noqa: F811,E501
    from playwright.async_api import expect
    base, app = box
    ctx, page, call_id = await _talking(browser, base, app)
    op = app.operators.human("olga")
    await page.select_option("#break-reason", "lunch")
    await page.click("#break")
    # The call goes on; the desk says the break comes after it, and Break cannot be asked twice.
    await expect(page.locator("#desk-note")).to_have_text(
        "Перерыв начнётся после этого звонка и постобработки")
    await expect(page.locator("#desk-state-text")).to_have_text("Разговор")
    await expect(page.locator("#break")).to_be_disabled()
    assert (op.state, op.call_id, op.pending) == ("talking", call_id, "lunch")
    calls = _calls_of(app, op)
    await page.click("#hangup")  # the conversation ends: wrap-up
    await expect(page.locator("#desk-state-text")).to_have_text("Постобработка", timeout=10000)
    await page.wait_for_timeout(1500)  # 37 s of box time: nothing is reserved for her
    assert (op.state, op.call_id) == ("wrap_up", call_id) and _calls_of(app, op) == calls
    await page.keyboard.press("2")  # the outcome ends the wrap-up: the break begins
    await expect(page.locator("#desk-state-text")).to_have_text("Перерыв", timeout=10000)
    await expect(page.locator("#desk-note")).to_have_text("обед")
    await expect(page.locator("#card")).to_be_hidden()
    await page.wait_for_timeout(1500)  # no new call is offered during the break
    assert (op.state, op.reason, op.call_id) == ("break", "lunch", None)
    assert _calls_of(app, op) == calls
    assert [r[0] for r in app.store.db.execute(
        "SELECT kind FROM dispositions WHERE call_id=?", (call_id,))] == ["rpc"]
    await app.store.writer.drain()
    wrap_s = app.store.db.execute("SELECT wrap_s FROM attempts WHERE call_id=?",
                                  (call_id,)).fetchone()[0]
    assert wrap_s >= 30  # her wrap-up, in box seconds, for the handle-time figures
    assert page.errors == []
    await ctx.close()


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_an_outcome_chosen_during_the_call_is_its_one_outcome(browser, box):  # noqa: F811
    from playwright.async_api import expect
    base, app = box
    ctx, page, call_id = await _talking(browser, base, app)
    op = app.operators.human("olga")
    await page.keyboard.press("2")  # "talked to the debtor", while the call goes on
    await expect(page.locator("#outcome-saved")).to_have_text(
        "Итог сохранён: Разговор с должником")
    await expect(page.locator("#desk-state-text")).to_have_text("Разговор")
    outcomes = page.locator("button.outcome")
    for i in range(await outcomes.count()):  # the desk offers no second outcome
        await expect(outcomes.nth(i)).to_be_disabled()
    await page.keyboard.press("4")  # a second one by key does nothing either
    await page.wait_for_timeout(500)
    states = []
    app.operators.watch(lambda: states.append(op.state))
    await page.click("#hangup")
    await until(lambda: op.call_id != call_id, timeout=10)
    assert "wrap_up" not in states  # the wrap-up ended with the call
    assert app.store.db.execute("SELECT wrap_s FROM attempts WHERE call_id=?",
                                (call_id,)).fetchone()[0] in (None, 0.0)
    assert [r[0] for r in app.store.db.execute(
        "SELECT kind FROM dispositions WHERE call_id=?", (call_id,))] == ["rpc"]
    await expect(page.locator("#desk-state-text")).not_to_have_text("Постобработка")
    assert await page.locator("#desk-error").is_hidden()
    assert page.errors == []
    await ctx.close()
