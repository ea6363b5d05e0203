"""``dialbox modem`` against a simulated module on a pty, run as a technician would: a process."""
from __future__ import annotations

import asyncio
import json
import sys

import pytest

from firmware.clock import Clock
from firmware.gsm.dialects import DIALECTS
from firmware.sim.modem import SimModem
from tests.gsmsim import population


async def run_cli(*args: str, timeout: float = 60) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dialbox.cli", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture
async def sim():
    m = SimModem("m0", DIALECTS["sim800"], population("answer"), Clock(10.0), seed=5)
    await m.start()
    yield m
    await m.stop()


async def test_probe_prints_what_the_module_reports(sim):
    code, out, err = await run_cli("modem", "--profile", "sim800", "--port", sim.path, "probe")
    assert code == 0, err
    info = json.loads(out)
    assert info["imei"] == sim.imei and info["imsi"] == sim.imsi and info["iccid"] == sim.iccid
    assert info["sim"] == "READY" and info["registration"] == "home"
    assert info["signal_dbm"] == -113 + 2 * sim.rssi and info["operator"] == "MegaFon"


@pytest.mark.parametrize("typed", ["+79123456789", "+7 912 345-67-89", "8 (912) 345-67-89"])
async def test_call_prints_the_normalized_outcome(sim, typed):
    code, out, err = await run_cli("modem", "--profile", "sim800", "--port", sim.path, "call",
                                   typed, "--timeout", "20")
    assert code == 0, err
    res = json.loads(out)
    assert res["outcome"] == "answered" and res["cause"] == 16
    assert res["talk_s"] > 0 and res["ring_s"] >= 0
    assert "ATD+79123456789i;" in sim.commands


async def test_busy_number(sim):
    sim.population = population("busy")
    code, out, err = await run_cli("modem", "--profile", "sim800", "--port", sim.path, "call",
                                   "+79123456789")
    assert code == 0, err
    assert json.loads(out)["outcome"] == "busy" and json.loads(out)["cause"] == 17


async def test_missing_port_is_a_clear_error():
    code, out, err = await run_cli("modem", "--port", "/dev/ttyNOPE", "probe")
    assert code == 1
    assert "/dev/ttyNOPE" in err and "Traceback" not in err


async def test_bad_number_is_refused_cleanly(sim):
    code, out, err = await run_cli("modem", "--profile", "sim800", "--port", sim.path, "call",
                                   "not-a-number")
    assert code == 1 and "not a phone number" in err and "Traceback" not in err


async def test_sms_prints_parts_and_references(sim):
    text = "Напоминаем о платеже по договору №12345: внесите 5 000 руб. до 30.11, спасибо!!"
    code, out, err = await run_cli("modem", "--profile", "sim800", "--port", sim.path, "sms",
                                   "+79123456789", text)
    assert code == 0, err
    res = json.loads(out)
    assert res["status"] == "sent" and res["parts"] == 2 and len(res["references"]) == 2
    assert "".join(p.text for p in sim.sms_sent) == text


async def test_socket_url_reaches_a_module_behind_a_tcp_bridge():
    m = SimModem("m1", DIALECTS["ec25"], population("busy"), Clock(10.0), seed=9)
    url = await m.start_tcp()
    try:
        code, out, err = await run_cli("modem", "--profile", "ec25", "--port", url, "call",
                                       "+79123456789")
        assert code == 0, err
        assert json.loads(out)["outcome"] == "busy"
        code, out, err = await run_cli("modem", "--profile", "ec25", "--port", url, "probe")
        assert code == 0 and json.loads(out)["imei"] == m.imei
    finally:
        await m.stop()
