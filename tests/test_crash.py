"""Power cuts that lose nothing: the box killed with SIGKILL at random instants and restarted,
with its calls going on meanwhile at simulated modems and at a simulated E1 network.

The suite runs 10 kills (about 50 s); ``python -m tests.crashbox --kills 50`` is the issue's full
run, its result in benchmarks/RESULTS.md. See tests/crashbox.py for what is checked and how.
"""
from __future__ import annotations


import pytest

from cext import linestate_codes as C
from firmware.sim.population import Population
from tests.crashbox import crash_run, problems, summary
from tests.gsmsim import modem_and_driver, until


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_killed_ten_times_the_box_loses_and_doubles_nothing(tmp_path):
    run = await crash_run(tmp_path, kills=10, seed=8)
    found = problems(run)
    assert not found, "\n".join(found) + f"\n{summary(run)}"
    s = summary(run)
    # The kills fell where they matter: calls cut, recordings cut, and calls finished. (A
    # recording finished in a life is a matter of chance in 10 short lives: 1-7 of them.)
    assert s["attempts"].get("interrupted", 0) > 0 and s["attempts"].get("done", 0) > 0, s
    assert s["recordings"].get("interrupted", 0) > 0, s
    assert s["modem_dials"] > 0 and s["network_dials"] > 0, s


async def test_a_call_left_on_the_module_by_a_dead_box_is_hung_up_when_it_comes_back():
    async with modem_and_driver("sim7600", start_driver=False) as (sim, drv, rec):
        sim.population = Population(answer_prob=1.0, busy_prob=0, unreachable_prob=0,
                                    rejected_prob=0, invalid_prob=0, ring_mean_s=0.5,
                                    ring_sd_s=0, talk_mean_s=600, talk_sd_s=0, seed=1)
        sim._atd("+79161234567;")  # the box that dialed this died; the debtor talks on
        await until(lambda: sim._call is not None and sim._call.stat == 0)
        await drv.start(rec)
        await rec.wait_for(C.EV_HW_IN_SERVICE)
        assert sim._call.ended and sim.records[0].ended_by == "box"
        n = len(rec.reports)
        await drv.dial(0, "+79161234568")  # the next dial is not refused (+CME ERROR: 3)
        await rec.wait_for(C.EV_HW_ANSWER, after=n, timeout=15)
        assert [r.number for r in sim.records] == ["+79161234567", "+79161234568"]
