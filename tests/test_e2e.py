"""The whole appliance in-process on the simulated gateway: dial, record, show."""
from __future__ import annotations

import asyncio
import csv
import re
from importlib.resources import files
from pathlib import Path

import pytest

from controller.calllist import normalize_phone
from dialbox.appliance import Appliance, Settings
from web_admin.app import make_app

FATE_OUTCOME = {"answer": "answered", "busy": "busy", "no_answer": "no_answer",
                "unreachable": "unreachable", "rejected": "rejected", "invalid": "invalid_number"}


def demo_numbers() -> set[str]:
    path = Path(str(files("controller").joinpath("data/demo-debtors.csv")))
    out = set()
    with path.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter=";"):
            try:
                out.add(normalize_phone(row["Телефон"]))
            except ValueError:
                pass
    return out


@pytest.fixture
async def appliance(tmp_path):
    app = Appliance(Settings(simulate=True, operators=3, data=tmp_path / "data",
                             time_scale=25.0, seed=7, wrap_mean_s=5.0, compliance="none"))
    await app.start()
    yield app
    await app.stop()


@pytest.mark.slow
async def test_appliance_dials_the_list_and_records_what_debtors_did(appliance, aiohttp_client):
    client = await aiohttp_client(make_app(appliance))
    await asyncio.sleep(8)
    numbers = demo_numbers()
    dialed = [c[3:-1] for sim in appliance.sims for c in sim.commands if c.startswith("ATD")]
    assert len(dialed) >= 8, "the simulated modems received too few ATD commands"
    assert set(dialed) <= numbers

    # Outcomes in SQLite match what the simulated debtors did, call by call, per line.
    compared = 0
    for sim, line in zip(appliance.sims, ("gsm0", "gsm1", "gsm2", "gsm3")):
        rows = appliance.store.db.execute(
            "SELECT number, outcome, state FROM attempts WHERE line=? ORDER BY id",
            (line,)).fetchall()
        assert [r["number"] for r in rows] == [rec.number for rec in sim.records]
        for row, rec in zip(rows, sim.records):
            if row["state"] == "done" and rec.ended_by != "box":
                assert row["outcome"] == FATE_OUTCOME[rec.fate], (row["number"], rec)
                compared += 1
    assert compared >= 5

    # The admin page and /healthz show it.
    health = await (await client.get("/healthz")).json()
    assert health["status"] == "ok"
    assert health["lines"] == {"total": 4, "in_service": 4}
    page = await client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', await page.text()).group(1)
    r = await client.post("/login", data={"username": "admin",
                                          "password": appliance.initial_password,
                                          "csrf": token})
    assert r.status == 200
    status = await (await client.get("/api/status")).json()
    db_counters = appliance.store.counters(appliance.dialer.campaign_id)
    assert status["campaign"]["counters"]["attempts"] == db_counters["attempts"]
    page = await (await client.get("/")).text()
    for line in ("gsm0", "gsm1", "gsm2", "gsm3"):
        assert f'data-line="{line}"' in page


@pytest.mark.slow
async def test_demo_list_rejects_are_reported_and_nothing_is_lost(appliance):
    report = Path(appliance.settings.data) / "reports" / "demo-debtors.rejects.csv"
    text = report.read_text(encoding="utf-8")
    assert "59;phone;" in text and "145;phone;" in text
    n = appliance.store.db.execute("SELECT COUNT(*) FROM accounts").fetchone()[0]
    assert n == 198


@pytest.mark.slow
async def test_restart_keeps_every_result(tmp_path):
    settings = Settings(simulate=True, operators=2, data=tmp_path / "d", time_scale=25.0,
                        seed=3, compliance="none")
    app = Appliance(settings)
    await app.start()
    await asyncio.sleep(3)
    await app.stop()  # hangs up the calls in progress and records them
    from controller.store import Store
    s = Store(tmp_path / "d" / "dialbox.sqlite3")
    before = s.db.execute("SELECT COUNT(*) FROM attempts").fetchone()[0]
    open_attempts = s.db.execute("SELECT COUNT(*) FROM attempts WHERE state='dialing'"
                                 ).fetchone()[0]
    s.close()
    assert before > 0 and open_attempts == 0
    app = Appliance(settings)
    await app.start()
    assert app.initial_password is None  # the admin made at the first start is kept
    await asyncio.sleep(1)
    await app.stop()
    s = Store(tmp_path / "d" / "dialbox.sqlite3")
    assert s.db.execute("SELECT COUNT(*) FROM attempts").fetchone()[0] >= before
    s.close()


async def test_bad_profile_path_is_a_clear_error(tmp_path):
    from firmware.errors import UserError
    app = Appliance(Settings(simulate=True, profile=str(tmp_path / "missing.yaml"),
                             data=tmp_path / "d"))
    with pytest.raises(UserError, match="missing.yaml: file not found"):
        await app.start()
