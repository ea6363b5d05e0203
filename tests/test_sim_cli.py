"""``dialbox sim modem`` for people and tools: the real gammu works against it unchanged."""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sys

import pytest

from firmware.clock import Clock
from firmware.gsm.dialects import DIALECTS
from firmware.sim.modem import SimModem
from tests.gsmsim import population, until


def _need_gammu() -> str:
    path = shutil.which("gammu")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("gammu is missing in CI (apt-get install -y gammu)")
        pytest.skip("gammu is not installed")
    return path


async def gammu(tmp_path, device: str, *args: str, timeout: float = 60) -> tuple[int, str]:
    """Run the real gammu on ``device``; its exit code and its output."""
    rc = tmp_path / "gammurc"
    rc.write_text(f"[gammu]\ndevice = {device}\nconnection = at115200\n")
    proc = await asyncio.create_subprocess_exec(
        _need_gammu(), "-c", str(rc), *args, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, env=dict(os.environ, LC_ALL="C.UTF-8"))
    out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode, out.decode("utf-8", "replace")


@pytest.fixture
async def modem(request):
    dialect = getattr(request, "param", "huawei")
    sim = SimModem("m0", DIALECTS[dialect], population("answer", talk_mean_s=60.0), Clock(),
                   seed=11)
    await sim.start()
    yield sim
    await sim.stop()


@pytest.mark.parametrize("modem", ["huawei", "sim7600", "ec25", "sim800"], indirect=True)
async def test_gammu_identifies_the_module_and_its_network(modem, tmp_path):
    code, out = await gammu(tmp_path, modem.path, "identify")
    assert code == 0, out
    assert modem.imei in out and modem.imsi in out
    model = {"huawei": "E173", "sim7600": "SIM7600", "ec25": "EC25", "sim800": "SIM800"}
    assert model[modem.dialect.name] in out
    code, out = await gammu(tmp_path, modem.path, "networkinfo")
    assert code == 0, out
    assert "home network" in out and "250 02" in out and "MegaFon" in out
    assert "LAC 1A2B" in out and "GPRS                 : attached" in out


async def test_gammu_reads_the_smsc_and_sends_an_sms(modem, tmp_path):
    code, out = await gammu(tmp_path, modem.path, "getsmsc")
    assert code == 0 and '"+79262000331"' in out, out
    code, out = await gammu(tmp_path, modem.path, "sendsms", "TEXT", "+79161234567", "-text",
                            "Платёж до 30.11", "-unicode")
    assert code == 0 and "message reference" in out, out
    [sms] = modem.sms_sent
    assert sms.number == "+79161234567" and sms.text == "Платёж до 30.11"


@pytest.mark.parametrize("modem", ["sim800"], indirect=True)
async def test_gammu_asks_the_balance_by_ussd(modem, tmp_path):
    code, out = await gammu(tmp_path, modem.path, "getussd", "*100#")
    assert code == 0, out
    assert modem.ussd_requests == ["*100#"]
    assert "Баланс: 123,45 р." in out


async def test_gammu_dials_and_hangs_up(modem, tmp_path):
    code, out = await gammu(tmp_path, modem.path, "dialvoice", "+79161234567")
    assert code == 0, out
    assert modem.records[-1].number == "+79161234567"
    # gammu cannot tell a call's URC arriving before its command's echo: let the answer come
    # while gammu is away, as a person at minicom would.
    await until(lambda: modem._call is not None and modem._call.stat == 0, timeout=10)
    code, out = await gammu(tmp_path, modem.path, "cancelcall")
    assert code == 0, out
    assert modem.records[-1].ended_by == "box"


async def _cli(*args: str):
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dialbox.cli", "sim", "modem", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def _stop(proc) -> int:
    proc.send_signal(signal.SIGTERM)
    return await asyncio.wait_for(proc.wait(), 20)


async def test_cli_prints_both_ports_and_serves_until_stopped(tmp_path):
    proc = await _cli("--dialect", "huawei", "--fate", "busy")
    try:
        at = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().strip()
        audio = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().strip()
        assert at.startswith("/dev/") and audio.startswith("/dev/") and at != audio
        code, out = await gammu(tmp_path, at, "identify")
        assert code == 0 and "E173" in out, out
        # The box's own tool against it: a busy debtor, as --fate said.
        tool = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "dialbox.cli", "modem", "--profile", "huawei-e173", "--port",
            at, "call", "+79161234567", stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(tool.communicate(), 60)
        assert tool.returncode == 0, err
        assert json.loads(out)["outcome"] == "busy"
    finally:
        assert await _stop(proc) == 0


async def test_cli_on_tcp_puts_audio_on_the_next_port():
    import socket
    for _ in range(5):  # another test on this machine may hold the next port: try another pair
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        proc = await _cli("--dialect", "sim7600", "--tcp", str(port))
        at = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().strip()
        if at:
            break
        err = (await proc.stderr.read()).decode()
        assert await proc.wait() == 1 and "address already in use" in err, err
    try:
        audio = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().strip()
        assert at == f"socket://127.0.0.1:{port}"
        assert audio == f"socket://127.0.0.1:{port + 1}"
        tool = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "dialbox.cli", "modem", "--profile", "sim7600", "--port", at,
            "probe", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(tool.communicate(), 60)
        assert tool.returncode == 0, err
        info = json.loads(out)
        assert info["model"] == "SIMCOM_SIM7600E-H" and info["registration"] == "home"
    finally:
        assert await _stop(proc) == 0


async def test_cli_sim800_has_no_audio_port_and_bad_options_are_clear():
    proc = await _cli("--dialect", "sim800")
    try:
        at = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().strip()
        assert at.startswith("/dev/")
        second = asyncio.ensure_future(proc.stdout.readline())
        await asyncio.sleep(0.5)
        assert not second.done(), "SIM800 has only analog audio: no second line"
    finally:
        assert await _stop(proc) == 0
        await asyncio.wait_for(second, 5)
    proc = await _cli("--dialect", "sim800", "--tcp", "70000")
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 1 and b"--tcp" in err and b"Traceback" not in err
