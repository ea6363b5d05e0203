"""Q.931 codec: known byte strings, round trips of every message and IE, arbitrary input."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.e1 import q931
from firmware.e1.q931 import (BearerCapability, CalledNumber, CallingNumber, CallState, Cause,
                              ChannelId, DecodeError, Display, Message, MessageType,
                              ProgressIndicator, RestartIndicator, SendingComplete)


def test_setup_bytes_match_the_dss1_layout():
    msg = Message(MessageType.SETUP, 0x1234, False,
                  [CalledNumber("84951234567", 2, 1), ChannelId(5), BearerCapability(),
                   SendingComplete()])
    # 08 | 02 12 34 | 05 | A1 | 04 03 80 90 A3 | 18 03 A9 83 85 | 70 0C A1 "84951234567"
    assert msg.encode() == bytes.fromhex(
        "08 02 1234 05 a1 04 03 8090a3 18 03 a98385 70 0c a1") + b"84951234567"


def test_disconnect_from_the_network_decodes_cause_and_flag():
    raw = bytes.fromhex("08 02 8001 45 08 02 8291 1e 02 8288")
    msg = q931.decode_message(raw)
    assert msg.type is MessageType.DISCONNECT and msg.cref == 1 and msg.flag
    assert msg.get(Cause) == Cause(17, 2)
    assert msg.get(ProgressIndicator) == ProgressIndicator(8, 2)


def test_cause_with_recommendation_octet_and_diagnostics():
    msg = q931.decode_message(bytes.fromhex("08 02 0001 5a 08 04 02 83 aa 18"))
    assert msg.get(Cause) == Cause(42, 2, 0, b"\x18")


def test_calling_number_presentation_restricted():
    ie = CallingNumber("4951112233", 2, 1, 1, 3)
    msg = q931.decode_message(Message(MessageType.SETUP, 7, False, [ie]).encode())
    assert msg.get(CallingNumber) == ie
    assert ie.encode()[:2] == bytes([0x21, 0x80 | 0x20 | 3])


def test_restart_whole_interface_and_single_channel():
    whole = q931.decode_message(Message(MessageType.RESTART, 0, False,
                                        [RestartIndicator(7)]).encode())
    assert whole.get(RestartIndicator).restart_class == 7 and whole.cref == 0
    one = Message(MessageType.RESTART, 0, False, [ChannelId(17), RestartIndicator(0)]).encode()
    assert one == bytes.fromhex("08 02 0000 46 18 03 a98391 79 01 80")
    assert ChannelId.decode(bytes([0xA3]), 0) == ChannelId(None, False, True)


def test_unknown_ie_is_recorded_and_known_bad_ie_is_invalid():
    raw = bytes.fromhex("08 02 0003 7d 08 02 8090 14 01 0a 7f 02 aabb 18 01 80")
    msg = q931.decode_message(raw)
    assert [r.ident for r in msg.unknown] == [0x7F]
    # octet 3 of the channel identification is not for a PRI
    assert [(i.ident, i.offset) for i in msg.invalid] == [(0x18, 18)]
    assert msg.get(CallState) == CallState(10)


def test_locking_shift_moves_ies_to_another_codeset():
    msg = q931.decode_message(bytes.fromhex("08 02 0003 01 96 08 02 8090"))
    assert msg.get(Cause) is None and msg.unknown[0].codeset == 6


@pytest.mark.parametrize("raw, offset, words", [
    ("09 02 0001 05", 0, "protocol discriminator"),
    ("08 03 000001 05", 1, "call reference length"),
    ("08 02", 2, "too short"),
    ("08 02 00", 3, "inside the call reference"),
    ("08 02 0001", 4, "message type missing"),
    ("08 02 0001 85", 4, "message type"),
    ("08 02 0001 05 70 09 a1 31", 6, "runs past the end"),
    ("08 02 0001 05 70", 5, "no length octet"),
])
def test_malformed_messages_name_the_offset(raw, offset, words):
    with pytest.raises(DecodeError) as info:
        q931.decode_message(bytes.fromhex(raw))
    assert info.value.offset == offset and words in str(info.value)


digits = st.text("0123456789*#", min_size=0, max_size=20)
ies = st.one_of(
    st.builds(BearerCapability, st.sampled_from([0, 8, 0x10]), st.just(0),
              st.sampled_from([0x10, 0x18]), st.one_of(st.none(), st.sampled_from([2, 3]))),
    st.builds(Cause, st.integers(0, 127), st.integers(0, 15), st.integers(0, 3),
              st.binary(max_size=4)),
    st.builds(CallState, st.integers(0, 63), st.integers(0, 3)),
    st.builds(ChannelId, st.integers(1, 31), st.booleans()),
    st.builds(ChannelId, st.none(), st.booleans(), st.booleans(), st.booleans()),
    st.builds(ProgressIndicator, st.integers(0, 127), st.integers(0, 15), st.integers(0, 3)),
    st.builds(Display, st.text(st.characters(max_codepoint=255), max_size=30)),
    st.builds(CallingNumber, digits, st.integers(0, 7), st.integers(0, 15), st.integers(0, 3),
              st.integers(0, 3)),
    st.builds(CallingNumber, digits, st.integers(0, 7), st.integers(0, 15), st.none(),
              st.just(0)),
    st.builds(CalledNumber, digits, st.integers(0, 7), st.integers(0, 15)),
    st.builds(RestartIndicator, st.sampled_from([0, 6, 7])),
    st.just(SendingComplete()),
)


@given(st.sampled_from(list(MessageType)), st.integers(0, 0x7FFF), st.booleans(),
       st.lists(ies, max_size=6))
def test_every_message_and_ie_round_trips(mtype, cref, flag, elements):
    msg = Message(mtype, cref, flag, elements)
    back = q931.decode_message(msg.encode())
    assert (back.type, back.cref, back.flag) == (mtype, cref, flag)
    assert not back.unknown and not back.invalid
    assert sorted(map(repr, back.ies)) == sorted(map(repr, elements))


@settings(max_examples=500)
@given(st.binary(max_size=64))
def test_arbitrary_bytes_raise_only_decode_error(data):
    try:
        msg = q931.decode_message(data)
    except DecodeError as exc:
        assert 0 <= exc.offset <= len(data)
    else:
        assert msg.encode()[:1] == b"\x08"


@settings(max_examples=300)
@given(st.binary(max_size=40))
def test_arbitrary_ie_bodies_after_a_valid_header(body):
    try:
        q931.decode_message(bytes.fromhex("08 02 0001 05") + body)
    except DecodeError as exc:
        assert 5 <= exc.offset <= 5 + len(body)
