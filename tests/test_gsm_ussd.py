"""USSD request encoding, +CUSD decoding and balance parsing."""
from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from smspdudecoder.codecs import GSM as OracleGSM

from firmware.gsm import alphabet as ab
from firmware.gsm.ussd import (
    UssdError, UssdReply, cusd_command, decode_ussd, encode_request, parse_balance, parse_cusd,
)


def test_balance_request_known_vector():
    # the request Huawei sticks need in PDU-USSD mode: *100# packed
    assert encode_request("*100#") == "AA180C3602"
    assert cusd_command("*100#") == 'AT+CUSD=1,"AA180C3602",15'
    assert cusd_command("*100#", packed=False) == 'AT+CUSD=1,"*100#",15'


def test_seven_spare_bits_are_padded_with_cr():
    # 7 septets leave 7 spare bits that would read as '@'; 23.038 asks for CR there
    packed = encode_request("*102*1#")
    assert len(packed) == 14
    assert OracleGSM.decode(packed) == "*102*1#\r"
    assert decode_ussd(packed, 15, encoding="packed") == "*102*1#"


@given(st.text(alphabet="0123456789*#ABCabc", min_size=1, max_size=182))
def test_request_round_trip_and_oracle(code):
    packed = encode_request(code)
    assert decode_ussd(packed, 15, encoding="packed") == code
    assert OracleGSM.decode(packed, strip_padding=True).rstrip("@") == code.rstrip("@")


@pytest.mark.parametrize("bad", ["", "*100#\"", "Баланс", "*" * 183])
def test_bad_requests_are_refused(bad):
    with pytest.raises(UssdError):
        encode_request(bad)


def test_ucs2_reply_dcs_72():
    text = "Баланс: 123,45р. Доступно 50 мин"
    line = f'+CUSD: 0,"{ab.ucs2_hex(text)}",72'
    reply = parse_cusd(line)
    assert reply == UssdReply(status=0, text=text, dcs=72)
    assert parse_balance(reply.text) == Decimal("123.45")


def test_packed_gsm7_reply():
    text = "Balance 12.50 RUB, bonus 3"
    hex_text = ab.pack7(ab.gsm7_septets(text)).hex().upper()
    reply = parse_cusd(f'+CUSD: 0,"{hex_text}",15', encoding="packed")
    assert reply.text == text
    assert parse_cusd(f'+CUSD: 0,"{hex_text}",15').text == text  # auto recognises it
    assert parse_balance(reply.text) == Decimal("12.50")


def test_plain_text_reply_and_open_session():
    reply = parse_cusd('+CUSD: 1,"Vash balans -15.20 rub. 1-Popolnit",15')
    assert reply.session_open and not reply.failed
    assert reply.text == "Vash balans -15.20 rub. 1-Popolnit"
    assert parse_balance(reply.text) == Decimal("-15.20")


@pytest.mark.parametrize(("line", "status", "failed"), [
    ("+CUSD: 4", 4, True), ("+CUSD: 2", 2, False), ("+CUSD: 5", 5, True), ("+CUSD: 0,\"\",15", 0, False),
])
def test_status_only_replies(line, status, failed):
    reply = parse_cusd(line)
    assert (reply.status, reply.text, reply.failed) == (status, "", failed)


@pytest.mark.parametrize("line", ["+CUSD:", "CUSD: 0", "+CUSD: x,\"a\",15", "+CUSD: 0,\"abc\",999"])
def test_malformed_cusd_lines(line):
    with pytest.raises(UssdError):
        parse_cusd(line)


@given(st.text(max_size=120), st.sampled_from(["auto", "packed", "text"]))
def test_arbitrary_cusd_lines_raise_only_ussd_error(body, encoding):
    for dcs in ("15", "72", "68", "17", "244", ""):
        line = f'+CUSD: 0,"{body}"' + (f",{dcs}" if dcs else "")
        try:
            assert isinstance(parse_cusd(line, encoding=encoding).text, str)
        except UssdError:
            pass


@pytest.mark.parametrize(("text", "amount"), [
    ("Баланс: 123,45 р.", "123.45"),
    ("Balance 12.50 RUB", "12.50"),
    ("Ваш баланс -15,20 руб.", "-15.20"),
    ("Баланс:минус 15 р", "-15"),
    ("Баланс:−7,01р", "-7.01"),
    ("Balans:136,24r", "136.24"),
    ("Баланс 1 234,56 руб", "1234.56"),
    ("Balance: 1,234.50 RUB", "1234.50"),
    ("Баланс на 01.03.2024: 150,00 р", "150.00"),
    ("Баланс на 12:30 составляет 77 руб", "77"),
    ("Ваш баланс 150.23 р. Пакет: 300 мин", "150.23"),
    ("Остаток на счете 42 р.", "42"),
    ("Баланс 15р", "15"),
    ("Баланс 0", "0"),
])
def test_parse_balance(text, amount):
    assert parse_balance(text) == Decimal(amount)


@pytest.mark.parametrize("text", ["Нет данных", "Осталось 20 SMS", "Запрос принят. Ожидайте SMS", ""])
def test_no_balance(text):
    assert parse_balance(text) is None


@given(st.text(max_size=100))
def test_parse_balance_never_raises(text):
    result = parse_balance(text)
    assert result is None or isinstance(result, Decimal)
