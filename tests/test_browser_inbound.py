"""An inbound call rings on the desk in real Chromium and is heard only once the person takes it.

The whole box at real time (a simulated GSM modem with audio, the media plane, the desk's WebRTC
headset): the debtor calls back, the desk rings (a tone the page makes itself) with the caller's
card, the line is not answered and no audio comes until Enter is pressed; then the browser's own
getStats hears the debtor.
"""
from __future__ import annotations

import pytest

from controller import campaigns
from tests.gsmsim import until
from tests.test_browser import CHROMIUM  # noqa: F401 (skips without Chromium, fails in CI)
from tests.test_browser_audio import OPERATOR_HZ, energy_rises, launch  # noqa: F401 (fixture)
from tests.deskbox import desk_box
from tests.test_browser_desk_e2e import olga_at_desk

CALLER = "+79161234567"


@pytest.fixture
async def box(tmp_path):
    async with desk_box(tmp_path, talk_mean_s=30.0, demo=False) as (app, base):
        # The caller is a debtor of an old campaign; the running one (nothing left to dial)
        # takes the calls that come in.
        old = campaigns.create(app.store, "Архив", who="test", source="test", compliance="none")
        app.store.upsert_account(old.id, {"account_id": "A-77", "debtor_name": "Петров Пётр",
                                          "debt_amount": 12000, "tz": "Europe/Moscow"},
                                 [(CALLER, "mobile")])
        campaigns.create(app.store, "Входящие", who="test", source="test", compliance="none")
        campaigns.act(app.store, "Входящие", "start", who="test", source="test",
                      data=app.settings.data)
        app.runner.nudge()
        yield app, base


RING_JS = """async (ms) => {
  let loudest = -Infinity;
  for (let t = 0; t < ms; t += 100) {
    const db = window.dialboxRing.level();
    if (db !== null && db > loudest) loudest = db;
    await new Promise((r) => setTimeout(r, 100));
  }
  return loudest;
}"""


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_a_call_back_rings_on_the_desk_and_is_heard_once_taken(launch, box):
    from playwright.async_api import expect
    app, base = box
    ctx, page = await olga_at_desk(await launch(OPERATOR_HZ), base)
    try:
        await page.click("#ready-toggle")
        await expect(page.locator("#desk-state")).to_have_attribute("data-state", "waiting")
        await until(lambda: all(ln.in_service for ln in app.lines.lines()), timeout=30)

        app.sims[0].ring_inbound(CALLER)
        await expect(page.locator("#desk-state")).to_have_attribute("data-state", "ringing",
                                                                    timeout=10000)
        await expect(page.locator("#desk-state-text")).to_have_text(
            "Входящий звонок: примите его")
        await expect(page.locator("#debtor-name")).to_have_text("Петров Пётр")  # his card
        await expect(page.locator("#call-meta")).to_contain_text(CALLER)
        await expect(page.locator("#take")).to_be_visible()
        assert await page.evaluate(RING_JS, 3200) > -60  # the desk rings (a 425 Hz tone)
        # Ringing: the line is not answered and nothing is heard from the box.
        assert (app.desk("olga")["call"] or {}).get("stage") == "ringing"
        assert app.sims[0].inbound_records[-1].voice is None
        assert await energy_rises(page, 1.0) < 1e-4

        await page.keyboard.press("Enter")  # the shortcut takes it
        await until(lambda: (app.desk("olga")["call"] or {}).get("stage") == "bridged",
                    timeout=10)
        await expect(page.locator("#desk-state")).to_have_attribute("data-state", "talking")
        assert not await page.evaluate("window.dialboxRing.on()")  # the ring stopped
        assert await energy_rises(page, 1.0) > 1e-4  # the caller is heard through the box
        assert page.errors == []
    finally:
        await ctx.close()
