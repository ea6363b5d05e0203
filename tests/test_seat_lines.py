"""Analog-seat modules (SIM800): a line wired to one operator's headset serves that seat only."""
from __future__ import annotations

import asyncio

import pytest

from dialbox.appliance import Appliance, Settings


def _profile(tmp_path) -> str:
    f = tmp_path / "seats.yaml"
    f.write_text("name: seats\ndriver: gsm\ndialect: sim800\naudio: analog-seat\nmodules:\n"
                 "  - {name: gsm0, port: 'sim://0', seat: pos2}\n"
                 "  - {name: gsm1, port: 'sim://1', seat: pos3}\n"
                 "health_interval_s: 4\ncommand_timeout_s: 3\n"
                 "simulate:\n  population: {answer_prob: 1.0, busy_prob: 0.0, "
                 "unreachable_prob: 0.0, rejected_prob: 0.0, invalid_prob: 0.0, "
                 "ring_mean_s: 2, ring_sd_s: 0, talk_mean_s: 10, talk_sd_s: 0}\n",
                 encoding="utf-8")
    return str(f)


@pytest.mark.parametrize("mode", ["progressive", "predictive"])
async def test_a_seat_bound_line_serves_only_its_seat(tmp_path, mode):
    app = Appliance(Settings(simulate=True, profiles=(_profile(tmp_path),), operators=3,
                             data=tmp_path / "data", time_scale=20.0, seed=5, wrap_mean_s=2.0,
                             compliance="none", mode=mode))
    await app.start()
    try:
        await asyncio.sleep(4)
        rows = app.store.db.execute("SELECT line, operator, outcome FROM attempts").fetchall()
    finally:
        await app.stop()
    if mode == "predictive":
        # No operator is reserved before a predictive call: a seat's line never dials one.
        assert rows == []
        return
    assert len(rows) >= 4
    assert {(r["line"], r["operator"]) for r in rows} == {("gsm0", "pos2"), ("gsm1", "pos3")}
    answered = [r for r in rows if r["outcome"] == "answered"]
    assert answered, "the seat's operator took the calls of his line"
