"""The whole box at real time with a person at the desk in real Chromium: a simulated GSM line
with audio, the media plane, the recorder, the desk's WebRTC headset. The operator hears the
simulated debtor (the browser's own getStats), the debtor hears the operator's tone, the
recording holds both, the second call has audio too, and a closed tab pauses the operator.
"""
from __future__ import annotations

import asyncio

import pytest

from controller import recordings
from dialbox.appliance import Appliance
from tests.media_signals import decode_stereo, need_ffmpeg, power
from tests.test_browser import CHROMIUM  # noqa: F401 (skips without Chromium, fails in CI)
from tests.test_browser_audio import OPERATOR_HZ, energy_rises, launch  # noqa: F401 (fixture)
from tests.test_e2e_audio import POPULATION
from tests.deskbox import PASSWORD, desk_box
from tests.gsmsim import until


@pytest.fixture
async def box(tmp_path, monkeypatch):
    need_ffmpeg()
    monkeypatch.setattr(Appliance, "_default_population",
                        lambda self: dict(POPULATION, talk_mean_s=4.0, talk_sd_s=0.2))
    async with desk_box(tmp_path) as (app, base):
        yield app, base


async def olga_at_desk(browser, base: str, *, audio: bool = True):
    """olga signed in at the desk in Chromium, her headset's audio up (unless the box carries
    no audio): (context, page)."""
    from playwright.async_api import expect
    ctx = await browser.new_context(locale="ru-RU", permissions=["microphone"],
                                    viewport={"width": 1366, "height": 768})
    page = await ctx.new_page()
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    await page.goto(base + "/login")
    await page.fill("input[name=username]", "olga")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    if audio:
        await expect(page.locator("#audio")).to_have_attribute("data-state", "up",
                                                               timeout=20000)
    return ctx, page


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_a_person_at_the_desk_talks_to_simulated_debtors_through_the_box(launch, box):
    app, base = box
    from playwright.async_api import expect
    ctx, page = await olga_at_desk(await launch(OPERATOR_HZ), base)
    await page.click("#ready-toggle")
    for n in (1, 2):  # the second call of the shift has audio too
        await until(lambda: (app.desk("olga")["call"] or {}).get("stage") == "bridged",
                    timeout=60)
        call_id = app.desk("olga")["call"]["call_id"]
        await expect(page.locator("#card")).to_be_visible()
        assert await energy_rises(page, 1.0) > 1e-4, f"call {n}: the operator hears nothing"
        def mine() -> dict:
            call = app.desk("olga")["call"] or {}
            return call if call.get("call_id") == call_id else {}
        await until(lambda: mine().get("stage") in (None, "ended"), timeout=30)
        if mine():
            await page.keyboard.press("2")  # the outcome "talked to the debtor" (rpc)
        await until(lambda: not mine(), timeout=20)
        await until(lambda: any(r["state"] == "done" for r in recordings.listing(
            app.store, app.settings.data, call_id)), timeout=20)
        [info] = recordings.listing(app.store, app.settings.data, call_id)
        left, right = decode_stereo(info["path"])
        # the debtor channel holds the simulated debtor, the operator channel the person's tone
        assert sum(x * x for x in left) > len(left) * 100 ** 2, f"call {n}: no debtor"
        assert power(right, OPERATOR_HZ) > 20 * power(right, OPERATOR_HZ + 300), \
            f"call {n}: the debtor did not hear the operator's tone"
    # The tab is closed mid-shift: paused at once; no call goes to her afterwards.
    await page.close()
    op = app.operators.human("olga")
    await until(lambda: op.state == "not_ready" or op.pending == "desk_gone", timeout=10)

    async def hers() -> int:  # her calls, once the store's writer has written all it was given
        if app.store.writer is not None:  # (a call reserved for her and moved is not hers)
            await app.store.writer.drain()
        return len(app.store.db.execute("SELECT 1 FROM attempts WHERE operator=?",
                                        (op.position,)).fetchall())
    before = await hers()
    await asyncio.sleep(5)
    assert await hers() == before
    await ctx.close()
