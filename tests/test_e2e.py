"""The whole appliance in-process on the simulated gateway: dial, record, show."""
from __future__ import annotations

import asyncio
import csv
import math
import re
import struct
import wave
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


def _settled(rows, records):
    """The last attempt of a line may be recorded (before dialing) but not yet on the wire."""
    if rows and rows[-1]["state"] == "dialing" and len(rows) == len(records) + 1:
        return rows[:-1]
    return rows


@pytest.fixture
async def appliance(tmp_path):
    app = Appliance(Settings(simulate=True, operators=8, data=tmp_path / "data",
                             time_scale=25.0, seed=7, wrap_mean_s=5.0, compliance="none"))
    await app.start()
    yield app
    await app.stop()


@pytest.mark.slow
async def test_appliance_dials_the_list_and_records_what_debtors_did(appliance, aiohttp_client):
    client = await aiohttp_client(make_app(appliance))
    await asyncio.sleep(8)
    numbers = demo_numbers()
    dialed = [c[3:-2] for sim in appliance.sims for c in sim.commands if c.startswith("ATD")]
    assert len(dialed) >= 8, "the simulated modems received too few ATD commands"
    assert set(dialed) <= numbers
    # Every call showed the line's own number (137-FZ), learnt from its SIM with AT+CNUM.
    for sim in appliance.sims:
        assert all(rec.dialed.endswith("i;") and rec.presentation == "allowed"
                   and rec.caller == sim.msisdn for rec in sim.records)

    # Outcomes in SQLite match what the simulated debtors did, call by call, per line.
    compared = 0
    for sim, line in zip(appliance.sims, ("gsm0", "gsm1", "gsm2", "gsm3")):
        rows = appliance.store.db.execute(
            "SELECT number, outcome, state FROM attempts WHERE line=? AND state != 'line_fault' "
            "ORDER BY id", (line,)).fetchall()
        rows = _settled(rows, sim.records)
        assert [r["number"] for r in rows] == [rec.number for rec in sim.records]
        for row, rec in zip(rows, sim.records):
            if row["state"] == "done" and rec.ended_by != "box":
                assert row["outcome"] == FATE_OUTCOME[rec.fate], (row["number"], rec)
                compared += 1
    assert compared >= 5

    # The same on the simulated E1 span: the network side's records, timeslot by timeslot.
    sim = appliance.e1_spans[0].simulator
    compared = 0
    for ts in range(1, 32):
        rows = appliance.store.db.execute(
            "SELECT number, outcome, state, reason FROM attempts WHERE line=? AND "
            "state != 'line_fault' ORDER BY id", (f"e1-0/{ts}",)).fetchall()
        recs = [r for r in sim.records if r.timeslot == ts and r.direction == "outbound"]
        rows = _settled(rows, recs)
        # Q.931 carries the digits; the network writes the plus of an international number.
        assert [r["number"] for r in rows] == [rec.number for rec in recs]
        for row, rec in zip(rows, recs):
            if row["state"] == "done" and rec.cleared_by not in ("user", ""):
                assert row["outcome"] == FATE_OUTCOME[rec.fate], (ts, dict(row), rec)
                compared += 1
    assert compared >= 3

    # The admin page and /healthz show it.
    health = await (await client.get("/healthz")).json()
    assert health["status"] == "ok"
    assert health["lines"] == {"total": 4 + 30, "in_service": 4 + 30}
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
    for line in ("gsm0", "gsm1", "gsm2", "gsm3", "e1-0/1", "e1-0/31"):
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
    app = Appliance(Settings(simulate=True, profiles=(str(tmp_path / "missing.yaml"),),
                             data=tmp_path / "d"))
    with pytest.raises(UserError, match="missing.yaml: file not found"):
        await app.start()


async def _wait_line(app, name: str, in_service: bool, timeout: float) -> float:
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    while True:
        info = next(ln for ln in app.lines.lines() if ln.name == name)
        if info.in_service == in_service and (in_service or info.reason):
            return loop.time() - t0
        if loop.time() - t0 > timeout:
            raise AssertionError(f"{name} not {'in' if in_service else 'out of'} service "
                                 f"after {timeout}s: {info}")
        await asyncio.sleep(0.1)


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_faults_take_one_line_out_and_back_while_others_dial(tmp_path):
    """With the bundled profile's timings: out within 15 s (an idle module is found by its
    health poll: 4 s apart, a 3 s command time-out, then a bare AT for 2 s), back within 30 s
    of the fix. Calls go to the least recently used line, so gsm0 may be idle when it fails."""
    app = Appliance(Settings(simulate=True, operators=4, data=tmp_path / "d", time_scale=25.0,
                             seed=11, wrap_mean_s=2.0, compliance="none"))
    await app.start()
    try:
        await _wait_line(app, "gsm0", True, 10)
        for fault in ("silent", "garbage", "sim_removed", "network_lost", "cme_error", "reboot"):
            others_before = app.store.db.execute(
                "SELECT COUNT(*) FROM attempts WHERE line != 'gsm0'").fetchone()[0]
            t0 = asyncio.get_running_loop().time()
            app.sims[0].inject(fault)
            out_s = await _wait_line(app, "gsm0", False, 15)
            reason = next(ln.reason for ln in app.lines.lines() if ln.name == "gsm0")
            assert reason and "Traceback" not in reason, fault
            await asyncio.sleep(1.0)
            app.sims[0].clear(fault)
            back_s = await _wait_line(app, "gsm0", True, 30)
            # Give the other lines at least 4 s (100 simulated seconds) to show they dial on.
            await asyncio.sleep(max(0.0, 4.0 - (asyncio.get_running_loop().time() - t0)))
            others_after = app.store.db.execute(
                "SELECT COUNT(*) FROM attempts WHERE line != 'gsm0'").fetchone()[0]
            assert others_after > others_before, (
                f"other lines stopped dialing during {fault}: {app.status()}, "
                f"{[dict(r) for r in app.store.db.execute('SELECT * FROM attempts WHERE state=?', ('dialing',))]}")
            print(f"{fault}: out after {out_s:.1f}s ({reason}); back after {back_s:.1f}s")
    finally:
        await app.stop()


@pytest.mark.slow
def _abandon_message(tmp_path):
    """Reg F: a us-regf campaign dials predictive only with an abandon message (a 1 s tone)."""
    path = tmp_path / "abandon.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(struct.pack("<8000h", *(int(8000 * math.sin(2 * math.pi * 440 * i / 8000))
                                              for i in range(8000))))
    return path


async def test_predictive_campaign_dials_by_the_pacer_over_gsm_and_e1(tmp_path):
    app = Appliance(Settings(simulate=True, operators=12, data=tmp_path / "d", time_scale=25.0,
                             seed=5, wrap_mean_s=5.0, compliance="us-regf", mode="predictive",
                             abandon_message=_abandon_message(tmp_path)))
    # us-regf hours are checked in the debtors' zones: make every lead's zone one where it is
    # daytime now, so the test does not depend on the hour it runs at.
    await app.start()
    try:
        zone = _daytime_zone()
        app.store.db.execute("UPDATE accounts SET tz=?", (zone,))
        peak = 0
        for _ in range(40):
            await asyncio.sleep(0.2)
            busy = sum(1 for ln in app.lines.lines() if ln.call_id)
            talking = sum(1 for o in app.operators.ops if o.state != "free")
            peak = max(peak, busy - talking)
        assert app.dialer.last_decision is not None
        assert app.dialer.last_decision.mode in ("predictive", "progressive")
        assert peak > 0, "predictive never had more calls up than busy operators"
        rows = app.store.db.execute("SELECT outcome, abandoned, operator FROM attempts WHERE "
                                    "state='done'").fetchall()
        assert any(r["outcome"] == "answered" for r in rows)
        # Every live answer either reached an operator or is recorded as abandoned.
        for r in rows:
            if r["outcome"] == "answered" and not r["abandoned"]:
                assert r["operator"] and r["operator"].startswith("pos")
        answered = sum(1 for r in rows if r["outcome"] == "answered")
        abandoned = sum(1 for r in rows if r["abandoned"])
        assert abandoned <= max(2, 0.1 * answered), (abandoned, answered)
        # Nobody is left reserved for a call that is gone.
        await app.campaign_action("Демо-кампания", "pause", by="test")
        loop = asyncio.get_running_loop()
        end = loop.time() + 20
        while any(o.state != "free" for o in app.operators.ops):
            assert loop.time() < end, app.operators.snapshot()
            await asyncio.sleep(0.1)
    finally:
        await app.stop()


def _daytime_zone() -> str:
    from datetime import datetime
    from zoneinfo import ZoneInfo
    for z in ("America/New_York", "Europe/Moscow", "Asia/Tokyo", "America/Los_Angeles",
              "Asia/Kolkata", "Europe/London", "Pacific/Auckland", "America/Sao_Paulo"):
        h = datetime.now(ZoneInfo(z)).hour
        if 10 <= h < 19 and datetime.now(ZoneInfo(z)).weekday() < 5:
            return z
    return "America/New_York"
