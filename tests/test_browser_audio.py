"""The desk's headset in real Chromium: WebRTC with the box's media plane, both directions heard.

The operator's microphone is Chromium's fake capture device playing a WAV tone; the debtor is a
line leg of the plane saying another tone. What each side hears is told apart with Goertzel.
"""
from __future__ import annotations

import array
import asyncio
import math
import shutil
import struct
import wave

import pytest
from aiohttp import web

from controller.store import Store
from firmware.clock import Clock
from firmware.media.plane import MediaPlane
from tests.fake_backend import FakeBackend
from tests.media_signals import dominant, tone
from tests.test_browser import CHROMIUM, PASSWORD, PEOPLE, people_db  # noqa: F401 (fixture)
from web_admin.app import make_app
from web_admin.rtc import MediaNetworks

from playwright.async_api import async_playwright, expect  # noqa: E402 (after the skip above)

DEBTOR_HZ, OPERATOR_HZ = 450.0, 1050.0
LOOPBACK = MediaNetworks.parse(["127.0.0.1/8"])


def write_tone_wav(path, hz: float, seconds: float = 10.0, rate: int = 48000) -> None:
    n = int(seconds * rate)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(struct.pack(f"<{n}h", *(int(9000 * math.sin(2 * math.pi * hz * i / rate))
                                              for i in range(n))))


def samples(pcm: bytes) -> array.array:
    a = array.array("h")
    a.frombytes(bytes(pcm))
    return a


@pytest.fixture
async def box(tmp_path, people_db):  # noqa: F811
    """The web admin over the fake backend with a real media plane: (base URL, fake, plane)."""
    shutil.copy(people_db, tmp_path / "db.sqlite3")
    store = Store(tmp_path / "db.sqlite3")
    fake = FakeBackend(store)
    plane = MediaPlane(Clock())
    await plane.start()
    fake.plane = plane
    runner = web.AppRunner(make_app(fake, media=LOOPBACK), handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}", fake, plane
    await runner.cleanup()
    await plane.stop()
    store.close()


@pytest.fixture
async def launch(tmp_path):
    """Chromium whose microphone says a tone of `hz` (one process per voice)."""
    browsers = []
    async with async_playwright() as pw:
        async def _launch(hz: float):
            wav = tmp_path / f"voice-{int(hz)}.wav"
            write_tone_wav(wav, hz)
            b = await pw.chromium.launch(executable_path=CHROMIUM, args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                f"--use-file-for-fake-audio-capture={wav}",
                "--allow-loopback-in-peer-connection",
                "--autoplay-policy=no-user-gesture-required"])
            browsers.append(b)
            return b
        yield _launch
        for b in browsers:
            await b.close()


@pytest.fixture
async def chromium(launch):
    return await launch(OPERATOR_HZ)


async def login(browser, base: str, role: str):
    ctx = await browser.new_context(locale="ru-RU", permissions=["microphone"])
    page = await ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(base + "/login")
    await page.fill("input[name=username]", PEOPLE[role])
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_load_state("domcontentloaded")
    page.errors = errors
    return ctx, page


ENERGY_JS = """async () => {
  const s = await window.dialboxAudio.stats();
  return s ? s.energy : null;
}"""


async def energy_rises(page, seconds: float = 1.0) -> float:
    """How much the inbound audio energy (WebRTC getStats) grew in `seconds`."""
    e0 = await page.evaluate(ENERGY_JS)
    await page.wait_for_timeout(int(seconds * 1000))
    e1 = await page.evaluate(ENERGY_JS)
    return (e1 or 0) - (e0 or 0)


async def talking(plane, line, pos, heard: bytearray):
    """Connect the call in the plane; what the debtor heard of the operator in the next second."""
    await plane.connect(line, pos)
    heard.clear()
    await asyncio.sleep(1.2)
    return samples(heard[-8000:])


def debtor(plane, heard: bytearray):
    """The simulated debtor on line gsm0: says a tone, keeps what it hears. (leg, task)"""
    line = plane.add_leg("gsm0", "line")
    line.on_output(heard.extend)
    frames = tone(DEBTOR_HZ, seconds=1.0)

    async def says() -> None:
        i = 0
        while True:
            line.push(frames[i % len(frames)])
            i += 1
            await plane.clock.sleep(0.02)

    return line, asyncio.get_running_loop().create_task(says())


async def test_operator_hears_the_debtor_and_the_debtor_hears_the_operator(chromium, box):
    base, fake, plane = box
    heard = bytearray()
    line, talk = debtor(plane, heard)
    ctx, page = await login(chromium, base, "operator")
    try:
        await expect(page.locator("#audio")).to_have_attribute("data-state", "up", timeout=15000)
        await expect(page.locator("#mic-state")).to_have_attribute("data-state", "on")
        assert ("desk_audio_state", "olga", True, "") in fake.calls
        pos = plane.legs["pos1"]
        await page.click("#ready-toggle")
        await expect(page.locator("#desk-state-text")).to_have_text("Ожидание звонка")
        assert await energy_rises(page) < 1e-4  # no call: silence from the box
        pc_before = await page.evaluate("window.dialboxAudio.stats().then(s => s.pcId)")
        for n in range(1, 11):  # the 2nd and the 10th call of the shift have audio too
            fake.put_call("olga", call_id=f"c-{n}")
            said = await talking(plane, line, pos, heard)
            await expect(page.locator("#debtor-name")).to_have_text("Иванов Иван Иванович")
            if n in (1, 2, 10):
                assert await energy_rises(page) > 1e-3, f"call {n}: the operator hears nothing"
            # (Chromium's echo canceller and gain control lower the tone while the debtor talks)
            assert max(said) > 300 and dominant(said, (DEBTOR_HZ, OPERATOR_HZ)) == OPERATOR_HZ, \
                f"call {n}: the debtor does not hear the operator"
            plane.disconnect(line)
            await fake.desk_disposition("olga", f"c-{n}", "rpc", {})
        # one peer connection for the whole shift: calls were switched, never renegotiated
        assert await page.evaluate("window.dialboxAudio.stats().then(s => s.pcId)") == pc_before
        assert await page.evaluate("window.dialboxAudio.stats().then(s => s.codec)") == \
            "audio/PCMA"
        # The tab is closed mid-shift: paused at once, and Ready is refused until audio is back.
        await page.close()
        for _ in range(100):
            if fake.operators["olga"]["state"] == "not_ready":
                break
            await asyncio.sleep(0.05)
        assert fake.operators["olga"]["state"] == "not_ready"
        downs = [c for c in fake.calls if c[:3] == ("desk_audio_state", "olga", False)]
        assert downs and downs[-1][3] in ("tab_closed", "network")
        with pytest.raises(Exception, match="headset is not connected"):
            await fake.desk_ready("olga", True)
        assert page.errors == []
    finally:
        talk.cancel()
        await asyncio.gather(talk, return_exceptions=True)
        await ctx.close()


SUPERVISOR_HZ = 1650.0


def share(pcm: bytes, hz: float, others=(DEBTOR_HZ, OPERATOR_HZ, SUPERVISOR_HZ)) -> float:
    """The share of `hz` in the power of the tones of the test (0..1)."""
    from tests.media_signals import power
    s = samples(pcm)
    total = sum(power(s, f) for f in others) or 1.0
    return power(s, hz) / total


async def test_supervisor_listens_whispers_and_barges_from_the_dashboard(launch, box):
    base, fake, plane = box
    heard = bytearray()
    line, talk = debtor(plane, heard)
    op_ctx, op_page = await login(await launch(OPERATOR_HZ), base, "operator")
    sup_ctx, sup_page = await login(await launch(SUPERVISOR_HZ), base, "supervisor")
    try:
        for page in (op_page, sup_page):
            await expect(page.locator("#audio")).to_have_attribute("data-state", "up",
                                                                   timeout=15000)
        fake.put_call("olga")
        await plane.connect(line, plane.legs["pos1"])
        assert await energy_rises(sup_page) < 1e-4  # not listening yet: silence
        await sup_page.locator('#operators [data-position="pos1"] button[data-monitor=listen]'
                               ).click()
        await expect(sup_page.locator("#monitor-state")).to_have_attribute("data-state", "listen")
        assert await energy_rises(sup_page) > 1e-3  # the supervisor hears the call
        assert await sup_page.evaluate(f"window.dialboxAudio.heard({DEBTOR_HZ})") > \
            await sup_page.evaluate("window.dialboxAudio.heard(2400)") + 20  # the debtor's tone
        # Whisper: the operator hears the supervisor; the debtor does not.
        await sup_page.locator('#operators [data-position="pos1"] button[data-monitor=whisper]'
                               ).click()
        await expect(sup_page.locator("#monitor-state")).to_have_attribute("data-state",
                                                                           "whisper")
        await asyncio.sleep(1.5)
        assert await op_page.evaluate(f"window.dialboxAudio.heard({SUPERVISOR_HZ})") > \
            await op_page.evaluate("window.dialboxAudio.heard(2400)") + 20
        heard.clear()
        await asyncio.sleep(1.0)
        assert share(heard[-8000:], SUPERVISOR_HZ) < 0.02  # the debtor hears no whisper
        assert share(heard[-8000:], OPERATOR_HZ) > 0.5
        # Barge: now the debtor hears the supervisor too.
        await sup_page.locator('#operators [data-position="pos1"] button[data-monitor=barge]'
                               ).click()
        await expect(sup_page.locator("#monitor-state")).to_have_attribute("data-state", "barge")
        await asyncio.sleep(0.5)
        heard.clear()
        await asyncio.sleep(1.0)
        assert share(heard[-8000:], SUPERVISOR_HZ) > 0.1
        await sup_page.click("#monitor-stop")
        await expect(sup_page.locator("#monitor-state")).to_have_attribute("data-state", "stop")
        assert [c[3] for c in fake.calls if c[0] == "monitor"] == [
            "listen", "whisper", "barge", "stop"]
        assert op_page.errors == [] and sup_page.errors == []
    finally:
        talk.cancel()
        await asyncio.gather(talk, return_exceptions=True)
        await op_ctx.close()
        await sup_ctx.close()
