"""The box on a real-hardware profile: starts empty, dials nothing until a person starts a campaign.

The "hardware" is a simulated SIM800 on a pseudo-terminal, named in a profile as a real port is;
the real GSM driver runs on it. Campaigns are made and started with the `dialbox` command while
the box runs, as a shop would.
"""
from __future__ import annotations

import asyncio

import pytest

from controller import users
from dialbox.appliance import Appliance, Settings
from firmware.clock import Clock
from firmware.gsm.dialects import DIALECTS
from firmware.sim.modem import SimModem
from tests.gsmsim import population
from tests.test_campaigns import run_cli


async def _wait(cond, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        assert loop.time() < end, "condition not met in time"
        await asyncio.sleep(0.1)


@pytest.fixture
async def modem(tmp_path):
    sim = SimModem("gsm0", DIALECTS["sim800"], population("answer", talk_mean_s=4.0),
                   Clock(1.0), seed=3)
    path = await sim.start()
    profile = tmp_path / "shop-sim800.yaml"
    profile.write_text(
        "name: shop-sim800\ndriver: gsm\ndialect: sim800\nbaud: 115200\n"
        f"modules:\n  - {{name: gsm0, port: {path}}}\n"
        'init: ["AT+CLIP=1", "AT+CLCC=1", "AT+CNMI=2,1,0,1,0"]\nhangup: ATH\n'
        "call_progress: clcc\nsms_mode: pdu\nlimits:\n  ring_timeout_s: 40\n"
        "health_interval_s: 2\ncommand_timeout_s: 3\n", encoding="utf-8")
    yield sim, profile
    await sim.stop()


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_fresh_box_on_real_hardware_has_no_campaign_and_dials_only_once_started(
        modem, tmp_path):
    sim, profile = modem
    data = tmp_path / "d"
    app = Appliance(Settings(profiles=(str(profile),), data=data))
    await app.start()
    try:
        await _wait(lambda: all(ln.in_service for ln in app.lines.lines()), 30)
        users.add(app.store, "olga", "olga-password-1", role="operator")
        await app.desk_audio_state("olga", True, "")  # her desk's headset is connected
        await app.desk_ready("olga", True)  # a person is ready: still nothing to dial
        await asyncio.sleep(3)
        assert app.store.campaigns() == [] and await app.campaigns() == []
        assert not [c for c in sim.commands if c.startswith("ATD")]
        assert "no campaigns yet" in app.campaigns_line()

        # The shop makes a campaign and imports its list while the box runs: still nothing.
        code, _, err = await run_cli("campaign", "create", "Банк-Ноябрь", "--creditor", "Банк",
                                     "--compliance", "none", "--data", str(data))
        assert code == 0, err
        csv = tmp_path / "list.csv"
        csv.write_text("Номер договора;ФИО;Телефон;Сумма долга\n"
                       "N-1;Иванов Иван;+79161234501;1000\nN-2;Петров Пётр;+79161234502;2000\n",
                       encoding="utf-8")
        code, _, err = await run_cli("import", "--campaign", "Банк-Ноябрь", "--data", str(data),
                                     str(csv))
        assert code == 0, err
        await asyncio.sleep(3)  # more than one poll of the store
        assert not [c for c in sim.commands if c.startswith("ATD")]

        # A person starts it: the running box dials within a few seconds.
        code, out, err = await run_cli("campaign", "start", "Банк-Ноябрь", "--data", str(data))
        assert code == 0, err
        await _wait(lambda: any(c.startswith("ATD+7916123450") for c in sim.commands), 15)
        row = app.store.db.execute("SELECT c.name, a.operator FROM attempts a JOIN campaigns c "
                                   "ON c.id = a.campaign_id").fetchone()
        assert tuple(row) == ("Банк-Ноябрь", "desk-olga")
        # And a pause from the command line stops new calls.
        code, out, err = await run_cli("campaign", "pause", "Банк-Ноябрь", "--data", str(data))
        assert code == 0, err
        await _wait(lambda: app.desk("olga")["operator"]["state"] == "wrap_up", 30)
        dialed = len([c for c in sim.commands if c.startswith("ATD")])
        call_id = app.desk("olga")["call"]["call_id"]
        await app.desk_disposition("olga", call_id, "rpc", {})
        await asyncio.sleep(3)
        assert app.desk("olga")["operator"]["state"] == "free"
        assert len([c for c in sim.commands if c.startswith("ATD")]) == dialed
        assert not app.runner.dialers  # its last call and wrap-up over, the dialer let go
    finally:
        await app.stop()
