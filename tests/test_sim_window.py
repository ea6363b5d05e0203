"""A simulator that runs for days keeps a window of its calls, not all of them: the demo box
(``dialbox run --simulate``) stays flat in memory, as the soak benchmark measures. Through the real
drivers, in virtual time, with the windows made small."""
from __future__ import annotations

from cext import linestate_codes as C
from firmware.clock import run_virtual
from firmware.e1.profile import spans_from_profile
from firmware.sim import audioport, modem
from firmware.sim.e1_network import drive_calls
from firmware.sim.population import Population
from tests.gsmsim import modem_and_driver
from tests.test_e1_scale import profile

WALL0 = 1_764_000_000.0


def test_a_span_remembers_its_last_calls_and_forgets_the_older(monkeypatch):
    monkeypatch.setattr(audioport, "KEEP_RECORDS", 20)

    async def main(clock):
        spans = spans_from_profile(profile(1), simulate=True, clock=clock,
                                   population=lambda i: Population(seed=7, ring_mean_s=2,
                                                                   talk_mean_s=5, talk_sd_s=2),
                                   sim_transport="tcp")
        try:
            results = await drive_calls(spans, 90, clock=clock, timeout_s=20000)
        finally:
            for span in spans:
                await span.stop()
        records = spans[0].simulator.records
        assert len(results) == 90
        assert 20 <= len(records) <= 24  # the window and at most a fifth more, never all 90
        assert all(r.ended is not None for r in records)
        # the newest calls are the ones kept, in the order they were dialed
        assert [r.number for r in records] == [f"8495{i:07d}" for i in range(90 - len(records), 90)]

    run_virtual(main, wall0=WALL0)


def test_a_module_remembers_its_last_calls_and_commands(monkeypatch):
    monkeypatch.setattr(audioport, "KEEP_RECORDS", 10)
    monkeypatch.setattr(audioport, "KEEP_HEARD", 3)
    monkeypatch.setattr(modem, "KEEP_COMMANDS", 40)

    async def main(clock):
        async with modem_and_driver("sim800", "busy", health_interval_s=5, clock=clock) as (
                sim, drv, rec):
            await rec.wait_for(C.EV_HW_IN_SERVICE)
            numbers = [f"+7916555{i:04d}" for i in range(30)]
            for number in numbers:
                n = len(rec.reports)
                await drv.dial(0, number)
                await rec.wait_for(C.EV_HW_RELEASED, after=n, timeout=30)
            assert 10 <= len(sim.records) <= 12
            assert [r.number for r in sim.records] == numbers[-len(sim.records):]
            assert 40 <= len(sim.commands) <= 48  # every call's ATD and more, the last kept
            assert not any(numbers[0] in c for c in sim.commands)  # the oldest are forgotten
            assert any(numbers[-1] in c for c in sim.commands)

    run_virtual(main, wall0=WALL0)
