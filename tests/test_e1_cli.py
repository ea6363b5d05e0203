"""``dialbox e1 decode`` and ``dialbox e1 capture`` through the real CLI entry point."""
from __future__ import annotations

import json

import pytest

from dialbox import cli
from firmware.e1.lapd import Frame
from firmware.e1.q931 import BearerCapability, CalledNumber, ChannelId, Message, MessageType


@pytest.fixture(autouse=True)
def _only_e1(monkeypatch):
    # The other subcommand modules live on other branches; the entry point is the same.
    monkeypatch.setattr(cli, "_COMMAND_MODULES", ("dialbox.cmd_e1",))


def test_decode_prints_frame_message_and_every_ie(capsys):
    setup = Message(MessageType.SETUP, 0x21, False,
                    [BearerCapability(), ChannelId(17), CalledNumber("84957654321", 2, 1)])
    raw = Frame("I", 0, ns=5, nr=3, info=setup.encode()).encode()
    assert cli.main(["e1", "decode", raw.hex(" ")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["lapd"] == {"kind": "I", "sapi": 0, "tei": 0, "cr": 0, "pf": 0, "ns": 5, "nr": 3}
    q = out["q931"]
    assert (q["message_type"], q["call_reference"], q["call_reference_flag"]) == ("SETUP", 0x21, 0)
    by_name = {ie["ie"]: ie for ie in q["information_elements"]}
    assert by_name["ChannelId"]["channel"] == 17 and by_name["ChannelId"]["exclusive"] is True
    assert by_name["CalledNumber"] == {"ie": "CalledNumber", "digits": "84957654321",
                                       "type_of_number": 2, "plan": 1}
    assert by_name["BearerCapability"]["layer1"] == 3


def test_decode_names_the_cause_and_records_unknown_ies(capsys):
    msg = bytes.fromhex("08 02 8001 45 08 02 8291 7f 01 00")
    assert cli.main(["e1", "decode", "02:01:04:02" + msg.hex()]) == 0
    q = json.loads(capsys.readouterr().out)["q931"]
    assert q["information_elements"][0]["name"] == "user busy"
    assert q["unknown_ies"] == [{"ident": 0x7F, "codeset": 0, "data": "00", "offset": 13}]


@pytest.mark.parametrize("hexstr, offset", [
    ("00 01 00 00 09 02 00 01 05", 4),  # not Q.931
    ("00 01 00 00 08 02 00 01 05 70 09 a1", 10),  # IE length runs past the end
    ("01 01 7f", 0),  # address EA bit
    ("00 01", 2),
])
def test_decode_errors_name_the_byte_offset(capsys, hexstr, offset):
    assert cli.main(["e1", "decode", hexstr]) == 1
    err = capsys.readouterr().err
    assert f"byte offset {offset}" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_decode_rejects_text_that_is_not_hex(capsys):
    assert cli.main(["e1", "decode", "zz"]) == 1
    assert "is not hex" in capsys.readouterr().err


def test_capture_runs_calls_and_writes_every_frame(tmp_path, capsys):
    pcap = tmp_path / "calls.pcap"
    assert cli.main(["e1", "capture", "--calls", "6", "--pcap", str(pcap), "--scale", "400",
                     "--transport", "socketpair"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["calls"] == 6 and sum(summary["fates"].values()) == 6
    data = pcap.read_bytes()
    assert data[:4] == bytes.fromhex("d4c3b2a1") and int.from_bytes(data[20:24], "little") == 203
    records, pos = 0, 24
    while pos < len(data):
        incl = int.from_bytes(data[pos + 8:pos + 12], "little")
        pos += 16 + incl
        records += 1
    assert pos == len(data) and records == summary["frames"] > 6 * 5


def test_capture_refuses_an_unwritable_file(tmp_path, capsys):
    assert cli.main(["e1", "capture", "--calls", "1", "--pcap",
                     str(tmp_path / "no" / "dir.pcap")]) == 1
    assert "cannot write" in capsys.readouterr().err
