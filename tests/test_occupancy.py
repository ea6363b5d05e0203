"""Operator occupancy: handling time over time on the floor, kept in the store so the KPIs are
the same after a restart of the box."""
from __future__ import annotations

import asyncio

from controller import occupancy
from controller.operators import OperatorPool
from controller.store import Store
from dialbox.appliance import Appliance, Settings
from firmware.clock import run_virtual
from tests.test_dialer import FakeClock

WALL0 = 1_764_000_000.0


def test_occupancy_is_handling_time_over_time_on_the_floor(tmp_path):
    clock = FakeClock(WALL0)
    store = Store(tmp_path / "d.sqlite3", clock)
    pool = OperatorPool(0, clock)  # type: ignore[arg-type]
    anna = pool.login("anna")
    clock.set(WALL0 + 100)  # not ready for 100 s: not on the floor
    pool.set_ready(anna, True)
    clock.set(WALL0 + 110)  # free 10 s
    op = pool.reserve("c1")
    assert op is anna
    clock.set(WALL0 + 115)  # reserved 5 s
    pool.talking(anna)
    clock.set(WALL0 + 135)  # talking 20 s
    pool.release(anna, talked=True)
    clock.set(WALL0 + 145)  # wrapping up 10 s
    pool.finish_wrap(anna)
    clock.set(WALL0 + 150)  # free 5 s
    pool.take_break(anna, "lunch")
    occupancy.flush(store, pool)
    clock.set(WALL0 + 1000)  # a break counts in neither
    assert occupancy.occupancy(store, pool, "desk-anna") == round(30 / 50, 4)
    by = occupancy.seconds_by_state(store, pool)["desk-anna"]
    assert by == {"not_ready": 100, "free": 15, "reserved": 5, "talking": 20, "wrap_up": 10,
                  "break": 850}
    assert occupancy.occupancy(store, pool, "pos-nobody") is None
    store.close()


async def _a_shift_then_a_restart(clock, data):
    # Modems over ser2net-style TCP: delivered at once, as virtual time needs (a pty is not).
    settings = dict(simulate=True, operators=4, data=data, seed=5, wrap_mean_s=8.0,
                    compliance="none", sim_transport="tcp")
    app = Appliance(Settings(**settings), clock=clock)
    await app.start()
    try:
        await clock.sleep(900)  # a quarter of an hour of calls
        for op in app.operators.ops:  # the shift ends: each goes on a break after his call
            app.operators.take_break(op, "end of shift")
        while any(op.state != "break" for op in app.operators.ops):
            await clock.sleep(1)
        before = await app.kpi(None, "operator")
    finally:
        await app.stop()
    # The box comes back; nobody has pressed Ready yet.
    again = Appliance(Settings(**dict(settings, operators=0)), clock=clock)
    await again.start()
    try:
        after = await again.kpi(None, "operator")
        floor = occupancy.seconds_by_state(again.store, again.operators)
    finally:
        await again.stop()
    return before, after, floor


def test_the_kpis_are_the_same_after_a_restart(tmp_path):
    before, after, floor = run_virtual(
        lambda c: _a_shift_then_a_restart(c, tmp_path / "d"), wall0=WALL0)
    busy = [r for r in before if r["key"] and r["attempts"]]
    assert len(busy) == 4, before  # every simulated operator took calls
    assert all(0.2 < r["occupancy"] < 1.0 for r in busy), busy
    assert after == before
    for r in busy:  # what was kept: a quarter of an hour on the floor each
        on_floor = sum(floor[r["key"]].get(s, 0) for s in occupancy.ON_FLOOR)
        assert 900 <= on_floor < 1000, floor[r["key"]]
