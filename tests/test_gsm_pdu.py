"""SMS PDU codec: known vectors, the independent decoder smspdudecoder as oracle, and property tests."""
from __future__ import annotations

import math
import random
from datetime import datetime, timedelta, timezone
from io import StringIO

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from smspdudecoder.codecs import GSM as OracleGSM
from smspdudecoder.easy import read_incoming_sms, read_outgoing_sms
from smspdudecoder.fields import SMSC as OracleSMSC
from smspdudecoder.fields import Address as OracleAddress
from smspdudecoder.fields import OutgoingPDUHeader as OracleHeader
from smspdudecoder.fields import SMSSubmit as OracleSubmit

from firmware.gsm import alphabet as ab
from firmware.gsm.concat import GAP, Reassembler
from firmware.gsm.pdu import (
    Concat, Deliver, DeliveryOutcome, PduError, StatusReport, Submit, count_parts, decode_deliver, decode_pdu,
    decode_status_report, decode_submit,
    encode_deliver, encode_status_report, encode_submit, encode_timestamp, relative_validity, status_outcome,
    validity_of,
)

MSK = timezone(timedelta(hours=3))
CYRILLIC = "Уважаемый клиент! Напоминаем о задолженности по договору. Просим погасить до пятницы."
GSM_ALPHABET = "".join(ch for ch in map(chr, range(32, 0x400)) if ab.gsm7_septets(ch) is not None)
# short and long (multi-part) texts of both alphabets; both reference widths
TEXTS = (st.text(max_size=80) | st.text(min_size=60, max_size=400)
         | st.text(alphabet=GSM_ALPHABET, max_size=170) | st.text(alphabet=GSM_ALPHABET, min_size=150, max_size=500))
REFERENCES = st.integers(min_value=0, max_value=0xFF) | st.integers(min_value=0x100, max_value=0xFFFF)


def oracle_submit(hex_pdu: str) -> tuple[str, str, dict]:
    """(recipient, text, user data) as smspdudecoder reads them."""
    sms = OracleSubmit.decode(StringIO(hex_pdu))
    number = sms["recipient"]["number"]
    if sms["recipient"]["toa"]["ton"] == "international":
        number = "+" + number
    text = sms["user_data"]["data"]
    if sms["dcs"]["encoding"] == "gsm":
        text = oracle_gsm7_text(hex_pdu, sms)
    return number, text, sms["user_data"]


def oracle_gsm7_text(hex_pdu: str, sms: dict) -> str:
    """GSM 7-bit text by smspdudecoder's field readers and septet unpacker.

    Its UserData reader unpacks the UDH octets as septets too (an ESC among them eats a text
    character) and cuts the *characters* at TP-UDL; so unpack the same octets with the header
    zeroed and cut after the header septets instead.
    """
    io = StringIO(hex_pdu)
    OracleSMSC.decode(io)
    OracleHeader.decode(io)
    io.read(2)                                           # TP-MR
    OracleAddress.decode(io)
    io.read(4)                                           # TP-PID, TP-DCS
    io.read({0: 0, 2: 2}.get(sms["header"]["vpf"], 14))  # TP-VP
    ud = io.read()[2:]                                   # after TP-UDL
    header_octets = int(ud[:2], 16) + 1 if sms["header"]["udhi"] else 0
    septets = OracleGSM.decode("00" * header_octets + ud[2 * header_octets:])
    return septets[math.ceil(header_octets * 8 / 7):]


def assert_oracle_text(oracle: str, expected: str) -> None:
    # the last octet's spare bits may hold a whole zero septet: one extra '@' at the end
    assert oracle in (expected, expected + "@")


# ---------------------------------------------------------------- known vectors


def test_submit_matches_the_classic_hellohello_vector():
    expected = ("00"                       # SMSC: the SIM's default
                "11"                       # SMS-SUBMIT, VPF relative, no status report
                "00"                       # TP-MR: the modem assigns it
                "0B 91 6407281553F8"       # 11 digits, international, +46708251358 swapped
                "00 00"                    # TP-PID, TP-DCS GSM 7-bit
                "AA"                       # TP-VP 170 = 4 days
                "0A E8329BFD4697D9EC37")   # 10 septets "hellohello" packed
    [pdu] = encode_submit("+46708251358", "hellohello", request_status_report=False,
                          validity=timedelta(days=4))
    assert pdu.hex == expected.replace(" ", "")
    assert pdu.tpdu_length == len(expected.replace(" ", "")) // 2 - 1 == 23
    assert (pdu.part, pdu.parts, pdu.concat_reference) == (1, 1, None)


def test_deliver_known_vector_decodes_every_field():
    hex_pdu = ("07 91 7283010010F5"        # SMSC +27381000015
               "04"                        # SMS-DELIVER, no more messages
               "0B C8 7238880900F1"        # sender: 11 digits, subscriber number 27838890001
               "00 00"                     # PID, DCS
               "99309251619580"            # 99-03-29 15:16:59, zone +8 quarters
               "0A E8329BFD4697D9EC37")    # "hellohello"
    sms = decode_deliver(hex_pdu.replace(" ", ""))
    assert sms.smsc == "+27381000015"
    assert sms.sender == "27838890001"
    assert sms.text == "hellohello"
    # two-digit years are read as 20yy
    assert sms.timestamp == datetime(2099, 3, 29, 15, 16, 59, tzinfo=timezone(timedelta(hours=2)))
    assert sms.concat is None and sms.alphabet == ab.GSM7


def test_deliver_with_alphanumeric_sender_and_negative_zone():
    hex_pdu = ("00" "04"
               "0B D0 CDE6DB5DCE03"        # alphanumeric, 11 semi-octets: "MMoney" in packed septets
               "00 08"                     # UCS2
               "3130523210658A"            # 13-03-25 23:01:56, zone -28 quarters (-7 h)
               "04 04110430")              # "Ба"
    sms = decode_deliver(hex_pdu.replace(" ", ""))
    assert sms.sender == "MMoney"
    assert sms.timestamp == datetime(2013, 3, 25, 23, 1, 56, tzinfo=timezone(timedelta(hours=-7)))
    assert sms.text == "Ба"


def test_status_report_vector():
    hex_pdu = ("00"                        # no SMSC
               "06"                        # SMS-STATUS-REPORT, no more messages
               "2A"                        # TP-MR 42
               "0B 91 9761214365F7"        # recipient +79161234567
               "42 30 10 21 43 65 21"      # SCTS 24-03-01 12:34:56 +3 h
               "42 30 10 21 53 75 21"      # discharge 24-03-01 12:35:57 +3 h
               "46")                       # TP-ST 0x46 validity period expired
    report = decode_status_report(hex_pdu.replace(" ", ""), length=25)
    assert report.message_reference == 42
    assert report.recipient == "+79161234567"
    assert report.sc_timestamp == datetime(2024, 3, 1, 12, 34, 56, tzinfo=MSK)
    assert report.discharge_time == datetime(2024, 3, 1, 12, 35, 57, tzinfo=MSK)
    assert report.status == 0x46 and report.status_name == "validity period expired"
    assert report.outcome is DeliveryOutcome.FAILED and report.final and report.sms_status == "failed"


def test_gsm7_with_udh_uses_one_fill_bit():
    # 6-octet UDH = 48 bits; one fill bit, so the text starts at bit 49 = septet 7
    [first, _] = encode_submit("+79161234567", "H" + "i" * 160, reference=0xCC, validity=None,
                               request_status_report=False)
    tpdu = bytes.fromhex(first.hex)[1:]
    ud = tpdu[tpdu.index(bytes([0x00, 0x00])) + 2:]  # after PID/DCS (no VP)
    assert ud[0] == 160                                # UDL in septets: 7 header + 153 text
    assert ud[1:7] == bytes.fromhex("05 00 03 CC 02 01")
    assert ud[7] == (ord("H") << 1) & 0xFF             # first text septet shifted past the fill bit


# ---------------------------------------------------------------- against the independent decoder


@pytest.mark.parametrize("text", [
    "Hello, your payment is due 01.02.",
    "Ext: € {curly} [square] ~tilde \\back |pipe ^caret",
    "Привет! Оплатите долг: 1 500,00 ₽",
    "",
])
def test_single_part_decodes_with_smspdudecoder(text):
    [pdu] = encode_submit("+79161234567", text)
    number, oracle_text, _ = oracle_submit(pdu.hex)
    assert number == "+79161234567"
    assert_oracle_text(oracle_text, text)
    assert decode_submit(pdu.hex).text == text


def test_cyrillic_over_70_chars_splits_in_two_with_udh():
    text = CYRILLIC[:71] + "!" * 10
    pdus = encode_submit("89161234567", text, reference=7)
    assert [p.parts for p in pdus] == [2, 2] and [p.part for p in pdus] == [1, 2]
    joined = ""
    for pdu in pdus:
        read = read_outgoing_sms(pdu.hex)
        assert read["recipient"] == "89161234567"
        header = OracleSubmit.decode(StringIO(pdu.hex))["user_data"]["header"]
        [ie] = header["elements"]
        assert ie["iei"] == 0x00
        assert ie["data"] == {"reference": 7, "parts_count": 2, "part_number": pdu.part}
        joined += read["content"]
    assert len(pdus[0].text) == 67
    assert joined == text


def test_long_gsm7_with_extension_chars_splits_and_decodes_with_oracle():
    text = ("Pay {now} €10 " * 30)[:400]
    pdus = encode_submit("+79161234567", text, reference=300)  # > 255: 16-bit reference IE 08
    joined = ""
    for pdu in pdus:
        _, oracle_text, user_data = oracle_submit(pdu.hex)
        [ie] = user_data["header"]["elements"]
        assert ie["iei"] == 0x08 and ie["data"]["reference"] == 300
        assert len(ab.gsm7_septets(pdu.text)) <= 152
        assert_oracle_text(oracle_text, pdu.text)
        joined += pdu.text
    assert joined == text


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(text=TEXTS, number=st.from_regex(r"\+?[0-9]{3,15}", fullmatch=True),
       reference=REFERENCES)
def test_any_message_agrees_with_smspdudecoder(text, number, reference):
    pdus = encode_submit(number, text, reference=reference)
    joined = ""
    for pdu in pdus:
        oracle_number, oracle_text, _ = oracle_submit(pdu.hex)
        assert oracle_number == number
        assert_oracle_text(oracle_text, pdu.text)
        joined += pdu.text
    assert joined == text


def test_encode_deliver_reads_back_with_smspdudecoder():
    when = datetime(2024, 3, 1, 12, 0, 5, tzinfo=MSK)
    pdus = encode_deliver("+79161234567", CYRILLIC * 2, timestamp=when, reference=9)
    parts = [read_incoming_sms(p.hex) for p in pdus]
    assert {p["sender"] for p in parts} == {"+79161234567"}
    assert {p["date"] for p in parts} == {when}
    assert [p["partial"]["part_number"] for p in parts] == list(range(1, len(pdus) + 1))
    assert "".join(p["content"] for p in parts) == CYRILLIC * 2


# ---------------------------------------------------------------- splitting rules


@pytest.mark.parametrize(("text", "parts", "first_len"), [
    ("a" * 160, 1, 160), ("a" * 161, 2, 153), ("a" * 306, 2, 153), ("a" * 307, 3, 153),
    ("Ж" * 70, 1, 70), ("Ж" * 71, 2, 67), ("€" * 80, 1, 80), ("€" * 81, 2, 76),
])
def test_part_limits(text, parts, first_len):
    pdus = encode_submit("+79161234567", text)
    assert len(pdus) == parts == count_parts(text)
    assert len(pdus[0].text) == first_len


def test_escape_pair_is_never_split():
    text = "a" * 152 + "€" + "b" * 10
    first, second = encode_submit("+79161234567", text)
    assert first.text == "a" * 152 and second.text.startswith("€")


def test_surrogate_pair_is_never_split():
    text = "Ж" * 66 + "😀" + "Ж" * 10
    first, second = encode_submit("+79161234567", text)
    assert first.text == "Ж" * 66 and second.text.startswith("😀")
    assert decode_submit(second.hex).text == second.text


def test_sixteen_bit_reference_leaves_152_septets():
    first, _ = encode_submit("+79161234567", "x" * 200, reference=0x1234)
    assert len(first.text) == 152
    assert decode_submit(first.hex).concat == Concat(reference=0x1234, part=1, parts=2)


def test_default_reference_is_stable_and_explicit_one_is_used():
    a = encode_submit("+79161234567", "x" * 200)
    b = encode_submit("+79161234567", "x" * 200)
    assert a == b
    c = encode_submit("+79161234567", "x" * 200, reference=5)
    assert decode_submit(c[0].hex).concat.reference == 5


# ---------------------------------------------------------------- fields


def test_number_types_and_smsc():
    [pdu] = encode_submit("89161234567", "x", smsc="+79168999100")
    assert pdu.hex.startswith("07 91 9761989901F0".replace(" ", ""))
    assert pdu.tpdu_length == len(pdu.hex) // 2 - 8
    sub = decode_submit(pdu.hex)
    assert sub.smsc == "+79168999100" and sub.number == "89161234567"
    assert bytes.fromhex(pdu.hex)[11] == 0x81  # 8 SMSC octets, first octet, MR, length, then type
    assert decode_submit(encode_submit("+79161234567", "x")[0].hex).number == "+79161234567"


@pytest.mark.parametrize("bad", ["", "+", "79161234567x", "1" * 21, "+7 916 abc"])
def test_bad_numbers_are_refused(bad):
    with pytest.raises(PduError):
        encode_submit(bad, "text")


def test_status_report_request_and_validity_are_encoded():
    sub = decode_submit(encode_submit("+79161234567", "x")[0].hex)
    assert sub.status_report_requested and sub.validity == timedelta(days=1)
    assert sub.message_reference == 0
    sub = decode_submit(encode_submit("+79161234567", "x", request_status_report=False, validity=None)[0].hex)
    assert not sub.status_report_requested and sub.validity is None


@pytest.mark.parametrize(("duration", "octet"), [
    (timedelta(minutes=5), 0), (timedelta(minutes=6), 1), (timedelta(hours=12), 143),
    (timedelta(hours=12, minutes=30), 144), (timedelta(days=1), 167), (timedelta(days=2), 168),
    (timedelta(days=30), 196), (timedelta(days=31), 197), (timedelta(weeks=63), 255), (timedelta(weeks=99), 255),
])
def test_relative_validity(duration, octet):
    assert relative_validity(duration) == octet


@given(st.integers(min_value=0, max_value=255))
def test_validity_octet_round_trip(vp):
    assert relative_validity(validity_of(vp)) == vp


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)),
       st.integers(min_value=-79, max_value=79))
def test_timestamp_round_trip(when, quarters):
    aware = when.replace(microsecond=0, tzinfo=timezone(timedelta(minutes=15 * quarters)))
    report = encode_status_report(1, "+1", status=0, sc_timestamp=aware, discharge_time=aware)
    assert decode_status_report(report.hex).sc_timestamp == aware
    assert len(encode_timestamp(aware)) == 7


@pytest.mark.parametrize(("status", "outcome", "line_status"), [
    (0x00, DeliveryOutcome.DELIVERED, "delivered"), (0x1F, DeliveryOutcome.DELIVERED, "delivered"),
    (0x20, DeliveryOutcome.PENDING, "pending"), (0x3F, DeliveryOutcome.PENDING, "pending"),
    (0x40, DeliveryOutcome.FAILED, "failed"), (0x5F, DeliveryOutcome.FAILED, "failed"),
    (0x60, DeliveryOutcome.GAVE_UP, "failed"), (0x7F, DeliveryOutcome.GAVE_UP, "failed"),
    (0x80, DeliveryOutcome.FAILED, "failed"), (0xFF, DeliveryOutcome.FAILED, "failed"),
])
def test_status_classification(status, outcome, line_status):
    assert status_outcome(status) is outcome
    pdu = encode_status_report(200, "+79161234567", status=status, sc_timestamp=datetime(2024, 1, 1),
                               discharge_time=datetime(2024, 1, 1))
    report = decode_status_report(pdu.hex, length=pdu.tpdu_length)
    assert (report.outcome, report.sms_status, report.final) == (outcome, line_status, not 0x20 <= status < 0x40)


def test_announced_length_decides_whether_the_smsc_is_present():
    pdu = encode_status_report(3, "+79161234567", status=0, sc_timestamp=datetime(2024, 1, 1),
                               discharge_time=datetime(2024, 1, 1), smsc="+79168999100")
    with_smsc = decode_status_report(pdu.hex, length=pdu.tpdu_length)
    without = decode_status_report(pdu.hex[16:], length=pdu.tpdu_length)
    assert with_smsc.smsc == "+79168999100" and without.smsc is None
    assert with_smsc.message_reference == without.message_reference == 3
    with pytest.raises(PduError, match="announced TPDU length 30"):
        decode_status_report(pdu.hex, length=30)


def test_dcs_8bit_and_class_0_are_decoded():
    hex_pdu = "00" "04" "0B919761214365F7" "00" "F4" "42301021436521" "03" "414243"
    sms = decode_deliver(hex_pdu)
    assert (sms.alphabet, sms.text, sms.payload) == (ab.OCTETS, "ABC", b"ABC")


def test_decode_pdu_dispatches_on_the_message_type():
    when = datetime(2024, 1, 1)
    assert isinstance(decode_pdu(encode_deliver("+79161234567", "x", timestamp=when)[0].hex), Deliver)
    assert isinstance(decode_pdu(encode_submit("+79161234567", "x")[0].hex), Submit)
    report = encode_status_report(1, "+79161234567", status=0, sc_timestamp=when, discharge_time=when)
    assert isinstance(decode_pdu(report.hex[2:], length=report.tpdu_length), StatusReport)
    with pytest.raises(PduError, match="reserved message type 3"):
        decode_pdu("0003")


def test_wrong_message_type_is_named():
    deliver = encode_deliver("+79161234567", "x", timestamp=datetime(2024, 1, 1))[0].hex
    with pytest.raises(PduError, match="not an SMS-SUBMIT"):
        decode_submit(deliver)
    with pytest.raises(PduError, match="not an SMS-STATUS-REPORT"):
        decode_status_report(deliver)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(("hex_pdu", "message", "offset"), [
    ("0", "odd number of hex digits", 0),
    ("00040", "odd number of hex digits", 2),
    ("0004zz", "not a hex digit 'z'", 2),
    ("", "SMSC length", 0),
    ("0004", "originating address length", 2),
    ("00040B91", "originating address", 4),
    ("0C", "SMSC length 12 is over 11", 0),
    ("00041591", "length 21 is over 20 digits", 2),
])
def test_bad_pdus_name_the_offset(hex_pdu, message, offset):
    with pytest.raises(PduError, match=message) as info:
        decode_deliver(hex_pdu)
    assert info.value.offset == offset
    assert f"at octet {offset}" in str(info.value)


def test_udl_over_the_limit_and_udh_past_the_data_are_refused():
    base = "00" "04" "0B919761214365F7" "0000" "42301021436521"
    with pytest.raises(PduError, match="TP-UDL 161 is over 160"):
        decode_deliver(base + "A1" + "00" * 141)
    with pytest.raises(PduError, match="UDH length"):
        decode_deliver("00" "44" + base[4:] + "02" + "0500")
    with pytest.raises(PduError, match="runs past the header"):
        decode_deliver("00" "44" + base[4:] + "05" + "0400031200")


@settings(max_examples=400)
@given(st.binary(max_size=200), st.none() | st.integers(min_value=0, max_value=260))
def test_arbitrary_bytes_raise_only_pdu_error(data, length):
    for decode in (decode_deliver, decode_submit, decode_status_report, decode_pdu):
        try:
            decode(data.hex(), length=length)
        except PduError:
            pass


@settings(max_examples=200)
@given(st.text(max_size=60))
def test_arbitrary_text_raises_only_pdu_error(text):
    for decode in (decode_deliver, decode_submit, decode_status_report, decode_pdu):
        try:
            decode(text)
        except PduError:
            pass


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200), st.data())
def test_truncated_or_corrupted_real_pdus_raise_only_pdu_error(text, data):
    pdu = encode_submit("+79161234567", text)[0].hex
    cut = data.draw(st.integers(min_value=0, max_value=len(pdu)))
    flip = data.draw(st.integers(min_value=0, max_value=max(0, len(pdu) - 1)))
    for candidate in (pdu[:cut], pdu[:flip] + "F" + pdu[flip + 1:]):
        try:
            decode_submit(candidate)
        except PduError:
            pass


# ---------------------------------------------------------------- round trips


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(text=TEXTS, number=st.from_regex(r"\+?[0-9*#]{1,20}", fullmatch=True), reference=REFERENCES)
def test_submit_round_trip(text, number, reference):
    pdus = encode_submit(number, text, reference=reference)
    joined = []
    for pdu in pdus:
        sub = decode_submit(pdu.hex, length=pdu.tpdu_length)
        assert sub.number == number and sub.text == pdu.text
        assert len(bytes.fromhex(pdu.hex)) - 1 == pdu.tpdu_length <= 164
        if len(pdus) > 1:
            assert sub.concat == Concat(reference=reference, part=pdu.part, parts=len(pdus))
        joined.append(sub.text)
    assert "".join(joined) == text


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(text=TEXTS, sender=st.from_regex(r"\+?[0-9]{1,20}|[A-Za-z][A-Za-z0-9 ]{0,10}",
                                                        fullmatch=True), seed=st.integers())
def test_deliver_parts_reassemble_in_any_order(text, sender, seed):
    when = datetime(2024, 5, 6, 7, 8, 9, tzinfo=MSK)
    pdus = encode_deliver(sender, text, timestamp=when, reference=77)
    random.Random(seed).shuffle(pdus)
    joiner = Reassembler(timeout=60)
    results = [joiner.add(decode_deliver(p.hex, length=p.tpdu_length), now=float(i)) for i, p in enumerate(pdus)]
    assert results[:-1] == [None] * (len(pdus) - 1)
    whole = results[-1]
    assert whole.text == text and whole.sender == sender and whole.timestamp == when
    assert whole.concat is None and joiner.waiting == 0


# ---------------------------------------------------------------- reassembly


def _parts(sender: str, text: str, reference: int) -> list:
    return [decode_deliver(p.hex) for p in encode_deliver(sender, text, timestamp=datetime(2024, 1, 1),
                                                          reference=reference)]


def test_reassembler_keeps_senders_and_references_apart_and_ignores_repeats():
    a1, a2 = _parts("+79161234567", "A" * 200, 1)
    b1, b2 = _parts("+79169999999", "B" * 200, 1)
    c1, c2 = _parts("+79161234567", "C" * 200, 2)
    joiner = Reassembler()
    assert [joiner.add(p, now=0) for p in (a1, b2, c1, a1)] == [None] * 4
    assert joiner.waiting == 3
    assert joiner.add(b1, now=1).text == "B" * 200
    assert joiner.add(a2, now=1).text == "A" * 200
    assert joiner.add(c2, now=1).text == "C" * 200


def test_reassembler_timeout_returns_what_arrived_with_a_gap():
    p1, _, p3 = _parts("+79161234567", "x" * 153 + "y" * 153 + "z" * 10, 4)
    joiner = Reassembler(timeout=30)
    joiner.add(p1, now=100)
    joiner.add(p3, now=110)
    assert joiner.expire(now=129) == []
    [partial] = joiner.expire(now=130)
    assert partial.text == "x" * 153 + GAP + "z" * 10
    assert joiner.waiting == 0 and joiner.expire(now=1000) == []


def test_single_part_passes_straight_through():
    [sms] = _parts("+79161234567", "short", 1)
    assert Reassembler().add(sms, now=0) == sms


def test_surrogate_pair_split_by_another_phone_is_joined():
    # a sender that cut the UTF-16 pair of 😀 (D83D DE00) between parts
    body = "Ж" * 66
    head = ("00" "44" "0B919761214365F7" "0008" "42301021436521")
    first = head + "8C" + "050003090201" + "".join(f"{ord(c):04X}" for c in body) + "D83D"
    second = head + "08" + "050003090202" + "DE00"
    joiner = Reassembler()
    assert decode_deliver(first).text.endswith("\ufffd")
    assert joiner.add(decode_deliver(first), now=0) is None
    assert joiner.add(decode_deliver(second), now=0).text == body + "😀"


# ---------------------------------------------------------------- text mode helpers


def test_text_mode_helpers():
    assert ab.text_mode_fits("a" * 160) and not ab.text_mode_fits("a" * 161)
    assert ab.text_mode_fits("Ж" * 70) and not ab.text_mode_fits("Ж" * 71)
    assert ab.ucs2_hex("Да!") == "041404300021"
    assert ab.ucs2_from_hex("041404300021") == "Да!"
    assert ab.ucs2_hex("+7916") == "002B0037003900310036"


@pytest.mark.parametrize(("udh", "concat"), [
    ("050003 2A 02 01", Concat(reference=0x2A, part=1, parts=2)),
    ("060804 1234 03 03", Concat(reference=0x1234, part=3, parts=3)),
    ("050003 2A 02 00", None),                 # part 0: the IE is ignored (23.040 §9.2.3.24.1)
    ("050003 2A 02 03", None),                 # part beyond the count: ignored
    ("06 0504 0B84 23F0", None),               # application port addressing only
])
def test_udh_concatenation_information_element(udh, concat):
    udh = udh.replace(" ", "")
    body = "04220435043A0441044200"[:20]          # "Текст" in UCS2
    udl = len(udh) // 2 + len(body) // 2
    hex_pdu = "00" "44" "0B919761214365F7" "0008" "42301021436521" + f"{udl:02X}" + udh + body
    sms = decode_deliver(hex_pdu)
    assert sms.concat == concat
    assert sms.text == "Текст"


# ---------------------------------------------------------------- alphabet


def test_extension_table_comes_from_gsm0338():
    doubles = {ch for ch in map(chr, range(0x10000)) if len(ab.gsm7_septets(ch) or b"") == 2}
    assert doubles == set("\f^{}\\[~]|€")
    assert ab.gsm7_septets("\x1b") is None           # a raw ESC is not text: such a message goes UCS2
    assert ab.alphabet_for("Привет") == ab.UCS2 and ab.alphabet_for("Hi {x}") == ab.GSM7


@pytest.mark.parametrize(("septets", "text"), [
    (b"\x1b\x65", "€"), (b"\x1b\x41", "A"),          # unknown extension: the basic character
    (b"A\x1b", "A "), (b"\x1b\x1bB", " B"),           # dangling ESC and ESC ESC: a space
])
def test_gsm7_decode_of_odd_escapes(septets, text):
    assert ab.gsm7_decode(septets) == text


@given(st.binary(max_size=200).map(lambda b: bytes(x & 0x7F for x in b)), st.integers(min_value=0, max_value=6))
def test_pack_unpack_round_trip(septets, fill):
    packed = ab.pack7(septets, fill)
    assert len(packed) == (fill + 7 * len(septets) + 7) // 8
    assert ab.unpack7(packed, len(septets), fill) == septets


def test_unpack_of_short_data_is_refused():
    with pytest.raises(ValueError, match="3 septets need 3 octets"):
        ab.unpack7(b"\x00\x00", 3)
