"""The whole simulated box under ru-230fz on a working-day noon in Moscow: every call shows the
line's own number and keeps why the law allowed it; nobody talks twice in 24 hours."""
from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from controller import evidence
from dialbox.appliance import Appliance, Settings
from firmware.clock import Clock

NOON = datetime(2026, 11, 25, 12, 0, tzinfo=ZoneInfo("Europe/Moscow")).timestamp()  # Wednesday


@pytest.mark.slow
async def test_every_call_under_ru_230fz_shows_its_number_and_keeps_its_evidence(tmp_path,
                                                                                 monkeypatch):
    # The box's one clock says a working-day noon, whatever the hour this test runs at.
    monkeypatch.setattr(Clock, "wall",
                        lambda self: NOON + (time.monotonic() - self._t0) * self.scale)
    app = Appliance(Settings(simulate=True, operators=6, data=tmp_path / "data", time_scale=25.0,
                             seed=5, wrap_mean_s=3.0, compliance="ru-230fz"))
    await app.start()
    try:
        for _ in range(400):
            await asyncio.sleep(0.05)
            if app.store.db.execute("SELECT COUNT(*) FROM attempts WHERE state='done' AND "
                                    "outcome='answered'").fetchone()[0] >= 5:
                break
        calls = app.store.db.execute("SELECT call_id, line, number FROM attempts WHERE "
                                     "state != 'line_fault'").fetchall()
        assert len(calls) >= 8
        numbers = {ln.name: ln.details.get("number") for ln in app.lines.lines()}
        for call_id, line, number in calls:
            why = evidence.explain(app.store, call_id)["why"]
            assert why["allowed"] and why["profile"] == "ru-230fz" and why["version"]
            assert why["zones"] and set(why["local_times"]) == set(why["zones"])
            for local in why["local_times"].values():  # working-day hours in every zone
                assert 8 <= datetime.fromisoformat(local).hour < 22
            assert {(c["limit"], c["scope"]) for c in why["counters"]} >= {
                ("daily_limit", "person"), ("daily_limit", "phone")}
            assert why["line"]["name"] == line and why["line"]["number"] == numbers[line]
            assert numbers[line]  # no call from a line whose number is unknown
        for sim in app.sims:  # what the simulated network showed the debtors
            assert all(rec.presentation == "allowed" and rec.caller == sim.msisdn
                       for rec in sim.records)
        # Nobody was talked to twice within 24 hours, across campaigns and accounts.
        talks = app.store.db.execute(
            "SELECT acc.person_key, a.created_at FROM attempts a JOIN accounts acc ON "
            "acc.id = a.account_pk WHERE a.outcome = 'answered' ORDER BY a.created_at"
        ).fetchall()
        seen: dict[str, float] = {}
        for key, at in talks:
            assert key not in seen or at - seen[key] >= 86400, json.dumps([key, at, seen[key]])
            seen[key] = at
    finally:
        await app.stop()
