"""Every log line about a call carries its line, call id and campaign (where known): from the
dialer's hand-off down to the GSM driver's URC-driven lines, seen with structlog's capture_logs."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from structlog.testing import capture_logs

from dialbox.appliance import Appliance, Settings
from firmware.clock import run_virtual
from firmware.gsm.dialects import DIALECTS
from firmware.gsm.driver import GsmModule
from firmware.lineapi import CallReleased
from firmware.linemanager import LineManager
from firmware.sim.modem import SimModem
from tests.gsmsim import population, profile_for
from tests.test_line_faults import Events, _alerting

NOON = datetime(2026, 11, 25, 12, 0, tzinfo=timezone(timedelta(hours=3))).timestamp()


async def _a_few_minutes(clock, data):
    app = Appliance(Settings(simulate=True, operators=3, data=data, seed=4, wrap_mean_s=5.0,
                             compliance="none", mode="predictive", sim_transport="tcp"),
                    clock=clock)
    with capture_logs() as logs:
        await app.start()
        try:
            await clock.sleep(60)
            caller = app.store.db.execute("SELECT e164 FROM phones LIMIT 1").fetchone()[0]
            app.e1_spans[0].simulator.originate(caller[1:])  # a debtor calls back
            await clock.sleep(120)
        finally:
            await app.stop()
    return logs


def test_every_log_line_about_a_call_names_its_line_call_and_campaign(tmp_path):
    logs = run_virtual(lambda c: _a_few_minutes(c, tmp_path / "d"), wall0=NOON)
    about_calls = [e for e in logs if e.get("call_id")]
    events = {e["event"] for e in about_calls}
    assert {"call_placed", "dial", "e1.dial", "call_answered", "call_handed_off",
            "call_released", "inbound_call"} <= events, events
    missing = [e for e in about_calls if not e.get("line") or not e.get("campaign")]
    assert not missing, missing[:5]


async def _sim_pulled_under_a_tagged_call(clock):
    sim = SimModem("m0", DIALECTS["sim800"], population("no_answer", ring_mean_s=1.0,
                                                       no_answer_timeout_s=30.0), clock, seed=3)
    sim.sim_urc_delay_s = 5.0
    path = await sim.start_tcp()
    drv = GsmModule("gsm0", path, profile_for("sim800", health_interval_s=5,
                                              command_timeout_s=3.0), clock)
    lines = LineManager([drv], clock)
    events = Events()
    lines.subscribe(events)
    await lines.start()
    try:
        await events.wait(lambda ev: lines.free_lines())
        with capture_logs() as logs:
            await lines.dial("gsm0", "+79001234567", call_id="c1", tags={"campaign": "Банк"})
            await events.wait(_alerting)
            sim.inject("sim_removed")
            await events.wait(lambda ev: isinstance(ev, CallReleased))
        return logs
    finally:
        await lines.stop()
        await sim.stop()


def test_the_gsm_drivers_lines_about_a_call_carry_its_id_and_campaign():
    logs = run_virtual(_sim_pulled_under_a_tagged_call, wall0=NOON)
    fault = next(e for e in logs if e["event"] == "gsm_line_fault_under_call")
    assert (fault["line"], fault["call_id"], fault["campaign"]) == ("gsm0", "c1", "Банк"), fault
    released = next(e for e in logs if e["event"] == "call_released")
    assert (released["line"], released["call_id"], released["campaign"]) == \
        ("gsm0", "c1", "Банк")
