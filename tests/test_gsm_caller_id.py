"""The caller's number is never hidden (137-FZ): CLIR at the simulated modem, byte for byte, and
the real driver over it (AT+CLIR=2 confirmed by AT+CLIR?, ATD<number>i;, AT+CNUM)."""
from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

import pytest

from cext import linestate_codes as C
from firmware.clock import Clock
from firmware.gsm.dialects import DIALECTS
from firmware.gsm.driver import GsmModule, parse_cnum
from firmware.sim.modem import SimModem
from tests.gsmsim import Recorder, population, profile_for, until

DEBTOR = "+79161234567"
OURS = "+79990001122"


@asynccontextmanager
async def wire(clir_mode: int = 4, msisdn: str | None = OURS):
    """A simulated modem on TCP and a raw connection to it: ``chat(command) -> bytes``."""
    sim = SimModem("m0", DIALECTS["sim800"], population("busy"), Clock(10), seed=3,
                   msisdn=msisdn, clir_mode=clir_mode)
    host, port = (await sim.start_tcp()).removeprefix("socket://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))

    async def chat(command: str) -> bytes:
        writer.write(command.encode() + b"\r")
        out = b""
        while not out.endswith((b"OK\r\n", b"ERROR\r\n")) and b"+CME ERROR" not in out:
            out += await asyncio.wait_for(reader.read(256), 5)
        return out

    assert (await chat("ATE0")).endswith(b"\r\nOK\r\n")
    assert await chat("AT+CMEE=1") == b"\r\nOK\r\n"
    try:
        yield sim, chat
    finally:
        writer.close()
        await sim.stop()


@pytest.mark.parametrize("clir_mode,before,dial,shown", [
    (4, [], f"ATD{DEBTOR};", "allowed"),             # subscription shows it
    (4, [], f"ATD{DEBTOR}I;", "restricted"),         # "I" invokes CLIR for this call
    (4, ["AT+CLIR=1"], f"ATD{DEBTOR};", "restricted"),
    (4, ["AT+CLIR=1"], f"ATD{DEBTOR}i;", "allowed"),  # "i" suppresses it for this call
    (3, [], f"ATD{DEBTOR};", "restricted"),          # subscription hides it by default
    (3, [], f"ATD{DEBTOR}i;", "allowed"),
    (3, ["AT+CLIR=2"], f"ATD{DEBTOR};", "allowed"),
    (1, ["AT+CLIR=2"], f"ATD{DEBTOR}i;", "restricted"),  # permanent: nothing shows it
    (0, [], f"ATD{DEBTOR};", "allowed"),             # CLIR not provisioned
    (4, [], f"ATD{DEBTOR}iG;", "allowed"),           # with a closed user group modifier
])
async def test_simulated_modem_reports_what_it_was_asked(clir_mode, before, dial, shown):
    async with wire(clir_mode) as (sim, chat):
        for cmd in before:
            assert await chat(cmd) == b"\r\nOK\r\n"
        assert await chat(dial) == b"\r\nOK\r\n"
        rec = sim.records[-1]
        assert (rec.number, rec.dialed, rec.presentation) == (DEBTOR, dial[3:], shown)
        assert rec.caller == (OURS if shown == "allowed" else None)


@pytest.mark.parametrize("clir_mode,command,reply", [
    (4, "AT+CLIR?", b"\r\n+CLIR: 0,4\r\n\r\nOK\r\n"),
    (3, "AT+CLIR=2", b"\r\nOK\r\n"),
    (1, "AT+CLIR?", b"\r\n+CLIR: 0,1\r\n\r\nOK\r\n"),
    (4, "AT+CLIR=?", b"\r\n+CLIR: (0-2)\r\n\r\nOK\r\n"),
    (4, "AT+CLIR=5", b"\r\n+CME ERROR: 4\r\n"),
    (4, "AT+CNUM", b'\r\n+CNUM: "","+79990001122",145\r\n\r\nOK\r\n'),
    (4, f"ATD{DEBTOR}x;", b"\r\nERROR\r\n"),
    (4, f"ATD{DEBTOR}ii;", b"\r\nERROR\r\n"),
])
async def test_simulated_modem_answers_byte_for_byte(clir_mode, command, reply):
    async with wire(clir_mode) as (_, chat):
        assert await chat(command) == reply


async def test_clir_setting_is_kept_and_read_back():
    async with wire(3) as (_, chat):
        assert await chat("AT+CLIR=2") == b"\r\nOK\r\n"
        assert await chat("AT+CLIR?") == b"\r\n+CLIR: 2,3\r\n\r\nOK\r\n"


async def test_sim_without_its_number_answers_cnum_with_ok_alone():
    async with wire(msisdn=None) as (_, chat):
        assert await chat("AT+CNUM") == b"\r\nOK\r\n"


@pytest.mark.parametrize("text,number", [
    ('"","+79990001122",145', "+79990001122"),
    ('"Voice","89990001122",129', "+79990001122"),
    ('"","79990001122",145', "+79990001122"),
    ('"","",129', None),
    ("garbage", None),
])
def test_parse_cnum(text, number):
    assert parse_cnum(text) == number


@asynccontextmanager
async def line(dialect="sim800", *, clir_mode=4, msisdn: str | None = OURS,
               declared: str | None = None, **profile_kw):
    clock = Clock(10)
    sim = SimModem("m0", DIALECTS[dialect], population("answer"), clock, seed=3, msisdn=msisdn,
                   clir_mode=clir_mode)
    drv = GsmModule("gsm0", await sim.start(), profile_for(dialect, **profile_kw), clock,
                    number=declared)
    rec = Recorder()
    await drv.start(rec)
    try:
        yield sim, drv, rec
    finally:
        await drv.stop()
        await sim.stop()


@pytest.mark.parametrize("dialect", ["sim800", "huawei", "generic"])
@pytest.mark.parametrize("clir_mode", [4, 3, 0])
async def test_driver_shows_the_number_on_every_call(dialect, clir_mode):
    async with line(dialect, clir_mode=clir_mode) as (sim, drv, rec):
        await rec.wait_for(C.EV_HW_IN_SERVICE)
        assert sim.commands.index("AT+CLIR=2") < sim.commands.index("AT+CLIR?")
        assert sim.st.clir == 2
        health = drv.health()
        assert (health["caller_id"], health["number"], health["number_source"]) == \
            ("shown", OURS, "sim")
        await drv.dial(0, DEBTOR)
        await until(lambda: sim.records)
        assert sim.records[-1].dialed == f"{DEBTOR}i;"
        assert (sim.records[-1].presentation, sim.records[-1].caller) == ("allowed", OURS)


async def test_a_profile_init_that_hides_the_number_is_overridden():
    async with line(init=("AT+CLIP=1", "AT+CLIR=1")) as (sim, drv, rec):
        await rec.wait_for(C.EV_HW_IN_SERVICE)
        assert sim.commands.index("AT+CLIR=1") < sim.commands.index("AT+CLIR=2")
        await drv.dial(0, DEBTOR)
        await until(lambda: sim.records)
        assert sim.records[-1].presentation == "allowed"


async def test_sim_that_always_hides_the_number_is_taken_out_of_service():
    async with line(clir_mode=1) as (sim, drv, rec):
        r = await rec.wait_for(C.EV_HW_OUT_OF_SERVICE)
        assert "hides the caller's number (+CLIR: 2,1)" in r.reason
        assert not drv.in_service and drv.health()["caller_id"] == "restricted"
        assert C.EV_HW_IN_SERVICE not in rec.events()
        assert not any(c.startswith("ATD") for c in sim.commands)


@pytest.mark.parametrize("declared,msisdn,number,source", [
    ("+79160000001", OURS, "+79160000001", "profile"),  # the profile wins over the SIM
    ("+79160000001", None, "+79160000001", "profile"),
    (None, OURS, OURS, "sim"),
    (None, None, None, None),                          # unknown: ru-230fz will not dial it
])
async def test_the_lines_official_number(declared, msisdn, number, source):
    async with line(msisdn=msisdn, declared=declared) as (sim, drv, rec):
        await rec.wait_for(C.EV_HW_IN_SERVICE)
        health = drv.health()
        assert (health["number"], health["number_source"]) == (number, source)
        assert health["sim_number"] == msisdn
