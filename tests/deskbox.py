"""The whole box at real time for desk tests: simulated GSM modems with audio, the media plane,
the web admin on loopback, and an operator who can sign in."""
from __future__ import annotations

from contextlib import asynccontextmanager

from aiohttp import web

from controller import users
from dialbox.appliance import Appliance, Settings
from tests.test_e2e_audio import POPULATION
from web_admin.app import make_app
from web_admin.rtc import MediaNetworks

PASSWORD = "olga-password-1"


@asynccontextmanager
async def desk_box(tmp_path, *, talk_mean_s: float = 4.0, modules: int = 1, **settings):
    """The box on simulated Huawei modems with audio, its web admin on loopback, and the
    operator olga: (appliance, base URL)."""
    profile = tmp_path / "huawei.yaml"
    mods = "".join(f"  - {{name: hw{i}, port: 'sim://{i}'}}\n" for i in range(modules))
    profile.write_text("name: sim-huawei\ndriver: gsm\ndialect: huawei\naudio: huawei-ddsetex\n"
                       f"modules:\n{mods}"
                       "health_interval_s: 4\ncommand_timeout_s: 3\n"
                       f"simulate:\n  population: {dict(POPULATION, talk_mean_s=talk_mean_s)}\n",
                       encoding="utf-8")
    settings = dict(dict(operators=0, time_scale=1.0, seed=5, compliance="none"), **settings)
    app = Appliance(Settings(simulate=True, profiles=(str(profile),), data=tmp_path / "data",
                             **settings))
    await app.start()
    users.add(app.store, "olga", PASSWORD, role="operator")
    runner = web.AppRunner(make_app(app, media=MediaNetworks.parse(["127.0.0.1/8"])),
                           handle_signals=False)
    try:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield app, f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    finally:
        await runner.cleanup()
        await app.stop()
