"""Recorded conversations in the browser: who may play which, HTTP ranges, every playback audited."""
from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from controller import audit, users
from controller.store import Store
from firmware.clock import Clock
from firmware.media.plane import MediaPlane
from firmware.media.recorder import Recorder
from tests.fake_backend import FakeBackend
from tests.media_signals import tone
from web_admin.app import make_app
from web_admin.rtc import MediaNetworks

PASSWORD = "correct horse battery"


async def make_recording(directory: Path, call_id: str, seconds: float = 1.0) -> Path:
    """A real recording: the media plane's recorder taps a line that says a tone."""
    plane = MediaPlane(Clock())
    await plane.start()
    line = plane.add_leg("gsm0", "line")
    recorder = Recorder(plane, directory, plane.clock)
    recorder.start(call_id, "gsm0")
    for frame in tone(450.0, seconds=seconds):
        line.push(frame)
        await plane.clock.sleep(0.02)
    result = await recorder.stop(call_id)
    await recorder.close()
    await plane.stop()
    return Path(result.path)


async def login(client, name: str) -> None:
    client.session.cookie_jar.clear()
    form = await client.get("/login")
    token = client.session.cookie_jar.filter_cookies(form.url)["dialbox_login_csrf"].value
    r = await client.post("/login", data={"username": name, "password": PASSWORD, "csrf": token},
                          allow_redirects=False)
    assert r.status == 302


@pytest.fixture
async def web(aiohttp_client, tmp_path):
    store = Store(tmp_path / "db.sqlite3")
    for name, role in (("olga", "operator"), ("oleg", "operator"), ("anna", "supervisor")):
        users.add(store, name, PASSWORD, role=role)
    fake = FakeBackend(store)
    fake.operators["oleg"] = {"name": "Оператор 2", "position": "pos2", "state": "free",
                              "calls": 0}
    path = await make_recording(tmp_path / "rec", "c-0")
    fake.recordings["c-0"] = {"path": path, "account_id": "A-1001", "operator": "Оператор 2",
                              "at": 1_790_000_000.0, "duration_s": 1.0}
    client = await aiohttp_client(make_app(fake, media=MediaNetworks.parse(["127.0.0.1/8"])))
    yield client, fake, path
    store.close()


async def test_an_operator_plays_only_the_debtor_on_the_line_a_supervisor_any(web):
    client, fake, path = web
    await login(client, "olga")
    assert (await client.get("/recordings/c-0")).status == 403  # no call: nothing to play
    fake.put_call("olga")  # now on a call with this debtor (A-1001)
    card = (await (await client.get("/api/desk")).json())["call"]["account"]
    assert [r["call_id"] for r in card["recordings"]] == ["c-0"]
    whole = await client.get("/recordings/c-0")
    assert whole.status == 200 and whole.headers["Content-Type"] == "audio/ogg"
    body = await whole.read()
    assert body == path.read_bytes() and body[:4] == b"OggS"
    # the player seeks: a range, answered 206 with just those bytes, and not audited again
    part = await client.get("/recordings/c-0", headers={"Range": "bytes=100-199"})
    assert part.status == 206 and await part.read() == body[100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(body)}"
    assert [c[:3] for c in fake.calls if c[0] == "recording_played"] == [
        ("recording_played", "olga", "c-0")]
    await login(client, "oleg")  # another operator, not on a call with this debtor
    assert (await client.get("/recordings/c-0")).status == 403
    await login(client, "anna")  # a supervisor plays any
    assert (await client.get("/recordings/c-0")).status == 200
    assert (await client.get("/recordings/nope")).status == 404
    assert len([c for c in fake.calls if c[0] == "recording_played"]) == 2


@pytest.mark.slow
async def test_the_appliance_lists_the_debtors_recordings_and_audits_each_playback(tmp_path):
    from dialbox.appliance import Appliance, Settings
    from tests.test_backend import _wait
    app = Appliance(Settings(simulate=True, operators=0, data=tmp_path / "d", time_scale=25.0,
                             seed=21, compliance="none"))
    await app.start()
    try:
        users.add(app.store, "olga", PASSWORD, role="operator")
        users.add(app.store, "oleg", PASSWORD, role="operator")
        users.add(app.store, "anna", PASSWORD, role="supervisor")
        await app.desk_ready("olga", True)
        await _wait(lambda: (app.desk("olga")["call"] or {}).get("stage") == "bridged", 40)
        call_id = app.desk("olga")["call"]["call_id"]
        pk = app.store.db.execute("SELECT account_pk FROM attempts WHERE call_id=?",
                                  (call_id,)).fetchone()[0]
        # an earlier conversation with this debtor, recorded (the recorder's index row)
        cols = [r[1] for r in app.store.db.execute("PRAGMA table_info(attempts)")
                if r[1] not in ("id", "call_id", "state")]
        app.store.db.execute(
            f"INSERT INTO attempts ({', '.join(cols)}, call_id, state) SELECT {', '.join(cols)}, "
            "'old-1', 'done' FROM attempts WHERE call_id=?", (call_id,))
        path = await make_recording(tmp_path / "d" / "recordings", "old-1")
        app.store.db.execute(
            "INSERT INTO recordings (call_id, line, operator, path, started_at, duration_s, "
            "channels, state) VALUES ('old-1', 'gsm0', 'Оператор 7', ?, 1790000000, 1.0, 2, "
            "'done')", (str(path.relative_to(tmp_path / "d")),))
        card = app.desk("olga")["call"]["account"]
        assert card["recordings"] == [{"call_id": "old-1", "at": 1790000000.0,
                                       "operator": "Оператор 7", "duration_s": 1.0}]
        assert await app.recording_file("olga", "old-1", "10.0.0.5", True) == path
        await app.recording_file("olga", "old-1", "10.0.0.5", False)  # a seek: not again
        with pytest.raises(PermissionError):
            await app.recording_file("oleg", "old-1", "10.0.0.6", True)
        assert await app.recording_file("anna", "old-1", "10.0.0.7", True) == path
        with pytest.raises(FileNotFoundError):
            await app.recording_file("anna", "nope", "10.0.0.7", True)
        played = audit.entries(app.store, obj="recording")
        assert [(e["who"], e["key"], e["action"], e["source"]) for e in reversed(played)] == [
            ("olga", "old-1", "play", "10.0.0.5"), ("anna", "old-1", "play", "10.0.0.7")]
        assert pk
    finally:
        await app.stop()


async def test_the_card_plays_a_recording_in_chromium(tmp_path, people_db):
    """The desk's card lists the debtor's recordings; the player plays one (Ogg/Opus)."""
    from aiohttp import web as aioweb
    from tests.test_browser import CHROMIUM, PEOPLE
    from tests.test_browser import PASSWORD as BROWSER_PASSWORD
    from playwright.async_api import async_playwright, expect
    shutil.copy(people_db, tmp_path / "db.sqlite3")
    store = Store(tmp_path / "db.sqlite3")
    fake = FakeBackend(store)
    path = await make_recording(tmp_path / "rec", "c-0", seconds=2.0)
    fake.recordings["c-0"] = {"path": path, "account_id": "A-1001", "operator": "Оператор 2",
                              "at": 1_790_000_000.0, "duration_s": 2.0}
    fake.put_call("olga")
    runner = aioweb.AppRunner(make_app(fake, media=MediaNetworks.parse(["127.0.0.1/8"])),
                              handle_signals=False)
    await runner.setup()
    site = aioweb.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    try:
        async with async_playwright() as pw:
            b = await pw.chromium.launch(executable_path=CHROMIUM, args=[
                "--no-sandbox", "--disable-gpu", "--autoplay-policy=no-user-gesture-required"])
            page = await b.new_page(locale="ru-RU")
            await page.goto(base + "/login")
            await page.fill("input[name=username]", PEOPLE["operator"])
            await page.fill("input[name=password]", BROWSER_PASSWORD)
            await page.click("button[type=submit]")
            player = page.locator('#recordings audio[data-call="c-0"]')
            await expect(player).to_have_count(1, timeout=10000)
            await expect(page.locator("#recordings")).to_contain_text("Оператор 2")
            await expect(page.locator("#recordings")).to_contain_text("0:02")
            await player.evaluate("a => a.play()")
            for _ in range(100):
                if await player.evaluate("a => a.currentTime") > 0.5:
                    break
                await asyncio.sleep(0.05)
            assert await player.evaluate("a => a.currentTime") > 0.5  # Chromium decodes it
            assert await player.evaluate("a => a.error") is None
            await b.close()
    finally:
        await runner.cleanup()
        store.close()
    assert ("recording_played", "olga", "c-0") in [c[:3] for c in fake.calls]


from tests.test_browser import people_db  # noqa: E402,F401 (fixture)
