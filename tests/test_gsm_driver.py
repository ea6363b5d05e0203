"""The real GSM driver against the simulated modem over a pseudo-terminal, per dialect."""
from __future__ import annotations

import asyncio

import pytest

from cext import linestate_codes as C
from firmware.clock import run_virtual
from tests.gsmsim import modem_and_driver, population, until

DIALECTS = ["sim800", "sim7600", "ec25", "huawei", "generic"]


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_initialises_and_reports_in_service(dialect):
    async with modem_and_driver(dialect) as (sim, drv, rec):
        await rec.wait_for(C.EV_HW_IN_SERVICE)
        assert drv.info["sim"] == "READY"
        assert drv.info["imei"] == sim.imei
        assert drv.info["imsi"] == sim.imsi
        assert drv.info["iccid"] == sim.iccid
        assert drv.info["signal_dbm"] == -113 + 2 * sim.rssi
        assert drv.info["registration"] == "home"
        assert drv.info["operator"] == "MegaFon"
        assert "ATE0" in sim.commands and "AT+CMEE=1" in sim.commands


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_answered_call_then_debtor_hangs_up(dialect):
    async with modem_and_driver(dialect, "answer") as (sim, drv, rec):
        await rec.wait_for(C.EV_HW_IN_SERVICE)
        await drv.dial(0, "+79123456789")
        await rec.wait_for(C.EV_HW_ANSWER)
        release = await rec.wait_for(C.EV_HW_RELEASE)
        await rec.wait_for(C.EV_HW_RELEASED)
        assert "ATD+79123456789i;" in sim.commands
        assert release.cause == 16
        assert sim.records[-1].fate == "answer"


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("kind,cause", [("busy", 17), ("no_answer", 19), ("rejected", 21),
                                        ("unreachable", 20), ("invalid", 1)])
async def test_unanswered_outcomes_carry_the_network_cause(dialect, kind, cause):
    async with modem_and_driver(dialect, kind) as (sim, drv, rec):
        await rec.wait_for(C.EV_HW_IN_SERVICE)
        await drv.dial(0, "+79123456789")
        release = await rec.wait_for(C.EV_HW_RELEASE)
        await rec.wait_for(C.EV_HW_RELEASED)
        assert C.EV_HW_ANSWER not in rec.events()
        assert release.cause == cause


@pytest.mark.parametrize("dialect", ["sim800", "huawei", "generic"])
async def test_box_hangs_up_a_ringing_call(dialect):
    async with modem_and_driver(dialect, "no_answer", no_answer_timeout_s=60) as (sim, drv, rec):
        await rec.wait_for(C.EV_HW_IN_SERVICE)
        await drv.dial(0, "+79123456789")
        if dialect != "generic":
            await rec.wait_for(C.EV_HW_ALERTING)
        else:
            await asyncio.sleep(0.2)
        await drv.hangup(0)
        await rec.wait_for(C.EV_HW_RELEASED)
        assert sim.records[-1].ended_by == "box"
        # The line is usable again: a second call goes out.
        n = len(rec.reports)
        await drv.dial(0, "+79123456780")
        await rec.wait_for(C.EV_HW_DIALING, after=n)
        await until(lambda: "ATD+79123456780i;" in sim.commands)


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_inbound_call_with_caller_id(dialect):
    async with modem_and_driver(dialect) as (sim, drv, rec):
        await rec.wait_for(C.EV_HW_IN_SERVICE)
        sim.ring_inbound("+79001112233")
        offer = await rec.wait_for(C.EV_HW_INBOUND)
        assert offer.caller == "+79001112233"
        await drv.answer(0)
        await rec.wait_for(C.EV_HW_ANSWER)
        assert "ATA" in sim.commands


async def test_port_that_vanishes_takes_the_line_out_of_service_with_reason(tmp_path):
    async with modem_and_driver("sim800", health_interval_s=0.3,
                                link=tmp_path / "ttyUSB0") as (sim, drv, rec):
        await rec.wait_for(C.EV_HW_IN_SERVICE)
        n = len(rec.reports)
        sim.inject("vanish")
        (tmp_path / "ttyUSB0").unlink()  # udev removes the device's link
        oos = await rec.wait_for(C.EV_HW_OUT_OF_SERVICE, after=n, timeout=10)
        assert oos.reason  # a readable reason, e.g. "no response from the module"
        assert not drv.in_service


@pytest.mark.parametrize("fault,words", [("sim_removed", "SIM"), ("network_lost", "regist"),
                                         ("silent", "response"), ("garbage", "noise"),
                                         ("cme_error", "CME ERROR")])
def test_fault_takes_line_out_and_back(fault, words):
    """In virtual time: the module's 1 s command time-out is 1 s whatever the machine's load
    (on scaled wall time it was 0.1 s, and a loaded machine took modules for dead)."""
    async def main(clock):
        async with modem_and_driver("sim800", health_interval_s=0.3, clock=clock) as (
                sim, drv, rec):
            await rec.wait_for(C.EV_HW_IN_SERVICE)
            n = len(rec.reports)
            sim.inject(fault)
            oos = await rec.wait_for(C.EV_HW_OUT_OF_SERVICE, after=n, timeout=10)
            assert words.lower() in oos.reason.lower()
            n = len(rec.reports)
            sim.clear(fault)
            await rec.wait_for(C.EV_HW_IN_SERVICE, after=n, timeout=30)
    run_virtual(main, wall0=1_764_000_000.0)


def test_a_reset_the_line_core_asks_for_does_not_wait_behind_a_balance_ussd():
    """The network keeps the balance USSD unanswered (the driver waits 30 s for +CUSD): a
    reset asked meanwhile (the line core saw a dial go unconfirmed) takes the line out of
    service at once, and it comes back. Before, the reset waited for the USSD to time out."""
    async def main(clock):
        async with modem_and_driver("sim800", health_interval_s=1.0, clock=clock,
                                    ussd_balance="*100#", balance_interval_s=3600) as (
                sim, drv, rec):
            await rec.wait_for(C.EV_HW_IN_SERVICE)
            sim._later = lambda delay, urc: asyncio.sleep(0)  # +CUSD never comes
            await until(lambda: sim.ussd_requests, timeout=10)  # the health round asks
            n = len(rec.reports)
            asked = clock.now()
            await drv.reset(0)
            oos = await rec.wait_for(C.EV_HW_OUT_OF_SERVICE, after=n, timeout=60)
            assert clock.now() - asked < 1.0, clock.now() - asked
            assert "did not confirm" in oos.reason
            await rec.wait_for(C.EV_HW_IN_SERVICE, after=n, timeout=30)
    run_virtual(main, wall0=1_764_000_000.0)


async def test_reboot_is_detected_and_module_reinitialised():
    async with modem_and_driver("sim800", health_interval_s=5) as (sim, drv, rec):
        await rec.wait_for(C.EV_HW_IN_SERVICE)
        inits = sim.commands.count("ATE0")
        n = len(rec.reports)
        sim.inject("reboot")
        oos = await rec.wait_for(C.EV_HW_OUT_OF_SERVICE, after=n)
        assert "reboot" in oos.reason
        await rec.wait_for(C.EV_HW_IN_SERVICE, after=n, timeout=30)
        assert sim.commands.count("ATE0") > inits  # echo turned off again after the reboot


@pytest.mark.parametrize("dialect", ["sim800", "huawei"])
async def test_ussd_balance(dialect):
    async with modem_and_driver(dialect, health_interval_s=60) as (sim, drv, rec):
        await rec.wait_for(C.EV_HW_IN_SERVICE)
        drv.profile.ussd_balance = "*100#"
        sim.balance_text = "Баланс: -12,50 р. Пополните счёт"
        res = await drv.check_balance()
        assert sim.ussd_requests == ["*100#"]
        assert res["balance"] == -12.5
        assert drv.health()["balance"] == -12.5


@pytest.mark.parametrize("dialect", ["sim800", "huawei"])
async def test_the_balance_is_asked_with_the_code_of_each_sims_operator(dialect):
    from firmware.errors import UserError
    from firmware.gsm.ussd import UssdError
    codes = {"25002": "*100#", "Beeline": "*102#"}  # MegaFon by MCC+MNC, Beeline by its name
    async with modem_and_driver(dialect, health_interval_s=60, ussd_balance=codes) as (
            megafon, drv_m, rec_m), modem_and_driver(
            dialect, health_interval_s=60, ussd_balance=codes,
            network=("25099", "Beeline")) as (beeline, drv_b, rec_b):
        await rec_m.wait_for(C.EV_HW_IN_SERVICE)
        await rec_b.wait_for(C.EV_HW_IN_SERVICE)
        assert (drv_b.info["operator"], drv_b.info["imsi"][:5]) == ("Beeline", "25099")
        beeline.balance_text = "Ваш баланс 87,10 руб."
        assert (await drv_m.check_balance())["balance"] == 123.45
        assert (await drv_b.check_balance())["balance"] == 87.1
        assert megafon.ussd_requests == ["*100#"] and beeline.ussd_requests == ["*102#"]
        drv_b.profile.ussd_balance = {"25099": "*100#"}  # MegaFon's code on a Beeline SIM
        with pytest.raises(UssdError, match="did not answer \\*100#: operation not supported"):
            await drv_b.check_balance()
        drv_b.profile.ussd_balance = {"25002": "*100#"}  # nothing for Beeline, no default
        with pytest.raises(UserError, match="no ussd_balance code for this SIM's operator "
                                            "\\(Beeline\\)"):
            await drv_b.check_balance()
        assert drv_b.balance_code() is None and beeline.ussd_requests == ["*102#", "*100#"]


async def test_a_call_over_the_profiles_max_length_is_ended_by_the_box():
    async with modem_and_driver("sim800", "answer") as (sim, drv, rec):
        sim.population = population("answer", talk_mean_s=600)
        drv.profile.limits["max_call_s"] = 5  # simulated seconds (0.5 s at this scale)
        await rec.wait_for(C.EV_HW_IN_SERVICE)
        await drv.dial(0, "+79123456789")
        await rec.wait_for(C.EV_HW_ANSWER)
        await rec.wait_for(C.EV_HW_RELEASED, timeout=5)
        assert sim.records[-1].ended_by == "box"
        assert 4.0 <= sim.records[-1].talk_s < 60


def test_a_call_that_ends_leaves_no_max_length_timer_behind():
    """Each answered call armed a max-length timer that slept on after the call for the whole
    ``max_call_s`` (30 minutes by the profiles): a task per call of the last half hour, seen
    growing in the soak. The call's end drops it; the next call gets its own, which still works."""
    def timers() -> int:
        return sum(1 for t in asyncio.all_tasks() if t.get_coro().__qualname__.endswith(
            "_limit_call"))

    async def main(clock):
        async with modem_and_driver("sim800", "answer", health_interval_s=5, clock=clock) as (
                sim, drv, rec):
            sim.population = population("answer", talk_mean_s=20, talk_sd_s=0)
            drv.profile.limits["max_call_s"] = 1800
            await rec.wait_for(C.EV_HW_IN_SERVICE)
            for i in range(3):
                n = len(rec.reports)
                await drv.dial(0, f"+7912345678{i}")
                await rec.wait_for(C.EV_HW_ANSWER, after=n, timeout=30)
                assert timers() == 1
                await rec.wait_for(C.EV_HW_RELEASED, after=n, timeout=60)
                assert timers() == 0  # the debtor hung up: the timer went with the call
            sim.population = population("answer", talk_mean_s=5000, talk_sd_s=0)
            drv.profile.limits["max_call_s"] = 30
            n = len(rec.reports)
            await drv.dial(0, "+79123456799")
            await rec.wait_for(C.EV_HW_ANSWER, after=n, timeout=30)
            t0 = clock.now()
            await rec.wait_for(C.EV_HW_RELEASED, after=n, timeout=120)
            assert 29 <= clock.now() - t0 < 40 and sim.records[-1].ended_by == "box"
            assert timers() == 0

    run_virtual(main, wall0=1_764_000_000.0)
