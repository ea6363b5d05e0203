"""pcap of a simulated span checked field by field with Wireshark's own decoder (tshark)."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from firmware.clock import run_virtual
from firmware.e1.lapd import decode_frame
from firmware.e1.pcap import PcapWriter
from firmware.e1.profile import spans_from_profile
from firmware.e1.q931 import Cause, ChannelId, decode_message
from firmware.sim.e1_network import drive_calls
from firmware.sim.population import Population


def _tshark() -> str:
    path = shutil.which("tshark")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("tshark is missing in CI (apt-get install -y tshark)")
        pytest.skip("tshark not installed (apt-get install -y tshark)")
    return path


def _fields(tshark: str, pcap, *fields: str) -> list[list[str]]:
    cmd = [tshark, "-r", str(pcap), "-Y", "q931", "-T", "fields", "-E", "separator=|"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=60).stdout
    return [line.split("|") for line in out.splitlines()]


def _record(tmp_path, population: Population, calls: int, linktype: int, **span_keys):
    """Drive ``calls`` through a simulated span in virtual time; the pcap and the frames."""
    return run_virtual(lambda clock: _drive(tmp_path, population, calls, linktype, clock,
                                            **span_keys), wall0=1_764_000_000.0)


async def _drive(tmp_path, population: Population, calls: int, linktype: int, clock,
                 **span_keys):
    frames: list[tuple[bytes, bool]] = []
    path = tmp_path / f"span-{linktype}.pcap"
    with open(path, "wb") as out:
        pcap = PcapWriter(out, linktype=linktype)

        def capture(raw: bytes, outgoing: bool) -> None:
            frames.append((raw, outgoing))
            pcap.write(raw, outgoing=outgoing)

        doc = {"driver": "e1", "spans": [{"name": "e1-0", "transport": "tcp",
                                          "address": "127.0.0.1:1", **span_keys}]}
        [span] = spans_from_profile(doc, simulate=True, clock=clock, population=population,
                                    sim_transport="socketpair", capture=capture)
        try:
            await drive_calls([span], calls, clock=clock, timeout_s=600)
        finally:
            await span.stop()
    return path, frames


@pytest.mark.parametrize("linktype", [203, 177])
def test_busy_call_decodes_in_wireshark_as_q931(tmp_path, linktype):
    tshark = _tshark()
    busy = Population(answer_prob=0, busy_prob=1.0, unreachable_prob=0, rejected_prob=0,
                      invalid_prob=0, seed=3)
    path, frames = _record(tmp_path, busy, 1, linktype)
    rows = _fields(tshark, path, "q931.message_type", "q931.cause_value",
                   "q931.channel.number", "q931.called_party_number.digits", "q931.call_ref_flag",
                   "q931.restart_indicator", "q931.call_ref_len")
    # The span came up: RESTART of all interfaces (class 7, global call reference), acknowledged
    assert [r[0] for r in rows[:2]] == ["0x46", "0x4e"]
    assert [r[5] for r in rows[:2]] == ["0x07", "0x07"] and rows[0][6] == "2"
    rows = rows[2:]
    assert [r[0] for r in rows] == ["0x05", "0x02", "0x45", "0x4d", "0x5a"]  # SETUP..REL COMP
    assert rows[0][2:4] == ["1", "84950000000"] and rows[1][2] == "1"
    assert rows[2][1] == "17"
    assert [r[4] for r in rows] == ["0", "1", "1", "0", "1"]  # we allocated the call reference


def test_every_q931_frame_matches_our_codec(tmp_path):
    tshark = _tshark()
    path, frames = _record(tmp_path, Population(seed=11, ring_mean_s=3, talk_mean_s=5), 12,
                                 203)
    ours = []
    for raw, _ in frames:
        f = decode_frame(raw)
        if f.kind == "I" and f.info:
            msg = decode_message(f.info)
            cause, chan = msg.get(Cause), msg.get(ChannelId)
            ours.append([f"0x{int(msg.type):02x}", str(cause.value) if cause else "",
                         str(chan.channel) if chan and chan.channel else ""])
    rows = _fields(tshark, path, "q931.message_type", "q931.cause_value", "q931.channel.number")
    assert len(ours) > 12 * 4
    assert rows == ours
    all_rows = subprocess.run([tshark, "-r", str(path), "-T", "fields", "-e", "_ws.malformed"],
                              capture_output=True, text=True, timeout=60).stdout
    assert all_rows.strip() == ""  # no frame is malformed to Wireshark


@pytest.mark.parametrize("declared,digits,number_type", [
    ("+74951234567", "74951234567", "0x01"),  # E.164: international number, ISDN plan
    ("84951234567", "84951234567", "0x00"),   # as the operator wrote it: type unknown
    (None, "74957770000", "0x01"),            # simulated span: the simulated operator's DDI
])
def test_setup_shows_our_number_with_presentation_allowed(tmp_path, declared, digits,
                                                                number_type):
    tshark = _tshark()
    busy = Population(answer_prob=0, busy_prob=1.0, unreachable_prob=0, rejected_prob=0,
                      invalid_prob=0, seed=3)
    keys = {"calling_number": declared} if declared else {}
    path, _ = _record(tmp_path, busy, 1, 203, **keys)
    rows = _fields(tshark, path, "q931.message_type", "q931.calling_party_number.digits",
                   "q931.presentation_ind", "q931.screening_ind", "q931.number_type",
                   "q931.numbering_plan")
    setup = next(r for r in rows if r[0] == "0x05")
    assert setup[1] == digits
    assert setup[2] == "0x00"  # presentation allowed (bits 6-7 of octet 3a: 00), never restricted
    assert setup[3] == "0x00"  # user-provided, not screened
    # calling number first (IE 0x6C before the called number 0x70), both in the ISDN plan
    assert setup[4].split(",")[0] == number_type and setup[5].split(",")[0] == "0x01"
