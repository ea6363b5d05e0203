"""An inbound call rings on a person's desk until he takes it; not taken in time, it goes on.

The dialer over the fake Line API (as in test_dialer), in virtual time: the ring time-out is
waited for, not slept through.
"""
from __future__ import annotations

import pytest

from controller import audit, campaigns
from controller.campaign_runner import CampaignRunner
from controller.dialer import TAKE_S, Dialer
from controller.operators import DESK_GONE, FREE, MISSED, NOT_READY, RESERVED, OperatorPool
from controller.store import Store
from firmware.clock import run_virtual
from firmware.errors import InputError
from firmware.lineapi import (CallProgress, CallReleased, CallStage, InboundCall, LineError,
                              Outcome)
from tests.test_dialer import FakeLines

WALL0 = 1_764_064_800.0  # 2025-11-25 12:00 Moscow: nothing here depends on the date


async def _two_ready(clock):
    """Two lines and two people ready, olga the longest."""
    lines = FakeLines(["l0", "l1"])
    pool = OperatorPool(0, clock)
    olga, ivan = pool.login("olga"), pool.login("ivan")
    pool.set_ready(olga, True)
    await clock.sleep(1.0)
    pool.set_ready(ivan, True)
    return lines, pool, olga, ivan


def floor(tmp_path, main):
    """Run ``main(clock, dialer, lines, pool, olga, ivan)``: two people ready, olga longest."""
    async def run(clock):
        store = Store(tmp_path / "d.sqlite3", clock)
        cid = store.campaign("inbound", create=True)
        lines, pool, olga, ivan = await _two_ready(clock)
        d = Dialer(store, lines, pool, clock, campaign_id=cid, campaign_name="inbound",
                   compliance_profile="none")
        await d.start()
        try:
            await main(clock, d, lines, pool, olga, ivan)
        finally:
            await d.stop()
            await pool.stop()
            store.close()
    run_virtual(run, wall0=WALL0)


def test_the_call_rings_until_taken_then_the_card_goes_before_the_audio(tmp_path):
    async def main(clock, d, lines, pool, olga, ivan):
        said: list[tuple] = []

        async def show_card(op, call_id):
            said.append(("card", op.username, call_id))
        pool.show_card = show_card
        bridge = lines.bridge

        async def bridged(call_id, position):
            said.append(("bridge", position, call_id))
            await bridge(call_id, position)
        lines.bridge = bridged

        lines.emit(InboundCall("l0", "in-1", "+79161234567", clock.now()))
        await clock.sleep(0.5)
        assert (olga.state, olga.call_id) == (RESERVED, "in-1") and d.ringing == {"in-1": olga}
        await clock.sleep(TAKE_S - 2.0)
        assert lines.answers == []  # ringing on her desk: the line is not answered
        with pytest.raises(LineError):
            await d.take("in-1", ivan)  # it does not ring on his desk
        await d.take("in-1", olga)
        assert lines.answers == ["in-1"] and d.ringing == {}
        await clock.sleep(5.0)
        assert olga.state == RESERVED  # taken: no ring time-out any more
        lines.emit(CallProgress("l0", "in-1", CallStage.ANSWERED, clock.now()))
        await clock.sleep(0.1)
        assert said == [("card", "olga", "in-1"), ("bridge", olga.position, "in-1")]
        assert ivan.state == FREE

    floor(tmp_path, main)


def test_not_taken_in_time_it_rings_on_the_next_desk_and_the_first_is_paused(tmp_path):
    async def main(clock, d, lines, pool, olga, ivan):
        lines.emit(InboundCall("l0", "in-1", "+79161234567", clock.now()))
        await clock.sleep(TAKE_S - 0.5)
        assert olga.call_id == "in-1" and ivan.state == FREE
        await clock.sleep(1.0)
        # She let it ring out: paused (likely away); it rings on Ivan's desk now.
        assert (olga.state, olga.reason) == (NOT_READY, MISSED)
        assert (ivan.state, ivan.call_id) == (RESERVED, "in-1") and lines.answers == []
        await clock.sleep(TAKE_S + 0.5)
        # Nobody takes it: it waits for a free operator while the caller's line rings.
        assert ivan.state == NOT_READY and d._inbound == ["in-1"] and d.ringing == {}
        pool.set_ready(olga, True)
        await clock.sleep(0.5)
        assert olga.call_id == "in-1" and d.ringing == {"in-1": olga}
        # The caller hangs up while it rings: her desk is free again, nothing is answered.
        lines.emit(CallReleased("l0", "in-1", Outcome.NO_ANSWER, 16, "normal", 40.0, 0.0,
                                clock.now(), inbound=True))
        await clock.sleep(0.5)
        assert olga.state == FREE and d.ringing == {} and lines.answers == []
        with pytest.raises(LineError):
            await d.take("in-1", olga)

    floor(tmp_path, main)


def test_a_desk_closed_while_it_rings_passes_the_call_on_at_once(tmp_path):
    async def main(clock, d, lines, pool, olga, ivan):
        lines.emit(InboundCall("l0", "in-1", "+79161234567", clock.now()))
        await clock.sleep(0.5)
        assert olga.call_id == "in-1"
        pool.desk_gone(olga)  # her tab closed
        d.operator_gone(olga)
        await clock.sleep(0.5)
        assert (olga.state, olga.reason) == (NOT_READY, DESK_GONE)
        assert ivan.call_id == "in-1" and d.ringing == {"in-1": ivan}
        await d.take("in-1", ivan)
        assert lines.answers == ["in-1"]

    floor(tmp_path, main)


def test_a_campaigns_take_time_is_how_long_its_calls_ring_on_a_desk(tmp_path):
    """The take time-out is the campaign's (5-120 s, audited; none: 15 s). A running campaign
    follows a change: its call rings on Olga's desk past 15 s, goes to Ivan's at 40 s."""
    async def run(clock):
        store = Store(tmp_path / "d.sqlite3", clock)
        campaigns.create(store, "inbound", compliance="none", who="t", source="test")
        for bad in (4, 121, "soon"):
            with pytest.raises(InputError, match="take_s: a call rings on an operator's desk"):
                campaigns.update(store, "inbound", who="t", source="test", take_s=bad)
        campaigns.act(store, "inbound", "start", who="t", source="test")
        lines, pool, olga, ivan = await _two_ready(clock)
        runner = CampaignRunner(store, lines, pool, clock, poll_s=1.0)
        await runner.start()
        try:
            await clock.sleep(2.0)
            (d,) = runner.dialers.values()
            assert d.take_s == TAKE_S == 15.0  # none set: the default
            campaigns.update(store, "inbound", who="olga", source="web", take_s=40)
            await clock.sleep(2.0)  # the runner polls the store
            assert d.take_s == 40.0
            lines.emit(InboundCall("l0", "in-1", "+79161234567", clock.now()))
            await clock.sleep(TAKE_S + 5.0)
            assert d.ringing == {"in-1": olga} and olga.state == RESERVED
            await clock.sleep(40.0 - TAKE_S - 4.0)
            assert (olga.state, olga.reason) == (NOT_READY, MISSED)
            assert d.ringing == {"in-1": ivan} and lines.answers == []
            campaigns.update(store, "inbound", who="olga", source="web", take_s=None)
            await clock.sleep(2.0)
            assert d.take_s == TAKE_S
        finally:
            await runner.stop()
            await pool.stop()
        edits = [(e["before"], e["after"]) for e in audit.entries(store, obj="campaign",
                                                                  key="inbound")
                 if e["action"] == "edit"][::-1]
        assert edits == [({"take_s": None}, {"take_s": 40.0}), ({"take_s": 40.0},
                                                                 {"take_s": None})]
        store.close()
    run_virtual(run, wall0=WALL0)
