"""USSD over ``AT+CUSD`` (3GPP TS 27.007 §7.15; CBS data coding of 23.038 §5) and balance parsing."""
from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from firmware.gsm import alphabet as ab

DCS_GSM7 = 15  # 0x0F: GSM 7-bit, language unspecified
DCS_UCS2 = 72  # 0x48: UCS2
MAX_SEPTETS = 182  # 160 octets of packed septets

STATUS_NAMES = {
    0: "no further action required", 1: "further action required", 2: "terminated by network",
    3: "answered by another local client", 4: "operation not supported", 5: "network timeout",
}


class UssdError(ValueError):
    """A USSD string or ``+CUSD`` line that cannot be encoded or decoded."""


@dataclass(frozen=True, slots=True)
class UssdReply:
    """A decoded ``+CUSD: <m>[,"<str>"[,<dcs>]]``."""

    status: int
    text: str
    dcs: int | None

    @property
    def session_open(self) -> bool:
        """The network waits for an answer; send ``AT+CUSD=2`` to close it if none is due."""
        return self.status == 1

    @property
    def failed(self) -> bool:
        return self.status in (4, 5)


def encode_request(code: str, *, packed: bool = True) -> str:
    """The ``<str>`` of ``AT+CUSD=1,"<str>",15``: packed GSM 7-bit hex (PDU-USSD modems) or the text."""
    septets = ab.gsm7_septets(code)
    if not code or septets is None or '"' in code:
        raise UssdError("USSD request must be non-empty GSM 7-bit text without quotes, e.g. *100#")
    if len(septets) > MAX_SEPTETS:
        raise UssdError(f"USSD request of {len(septets)} septets is over {MAX_SEPTETS}")
    if not packed:
        return code
    if len(septets) % 8 == 7:  # 7 spare bits would read as '@': pad with CR (23.038 §6.1.2.3.1)
        septets += b"\r"
    return ab.pack7(septets).hex().upper()


def cusd_command(code: str, *, packed: bool = True) -> str:
    """The whole ``AT+CUSD=1,...,15`` command for a request such as ``*100#``."""
    return f'AT+CUSD=1,"{encode_request(code, packed=packed)}",{DCS_GSM7}'


_CUSD = re.compile(r'^\s*\+CUSD:\s*(\d+)\s*(?:,\s*"(.*)"\s*(?:,\s*(\d+))?)?\s*$', re.DOTALL)


def parse_cusd(line: str, *, encoding: str = "auto") -> UssdReply:
    """Decode a ``+CUSD:`` line; ``encoding`` is "packed", "text" or "auto" (guess for GSM 7-bit replies)."""
    match = _CUSD.match(line)
    if match is None:
        raise UssdError(f"not a +CUSD line: {line[:40]!r}")
    status, body, dcs = match.groups()
    dcs_value = int(dcs) if dcs is not None else None
    if dcs_value is not None and dcs_value > 255:
        raise UssdError(f"USSD data coding scheme {dcs_value} is over 255")
    text = decode_ussd(body, dcs_value, encoding=encoding) if body is not None else ""
    return UssdReply(status=int(status), text=text, dcs=dcs_value)


def decode_ussd(body: str, dcs: int | None, *, encoding: str = "auto") -> str:
    """Text of a ``+CUSD`` string: UCS2 hex, packed GSM 7-bit hex or plain text, by ``dcs``."""
    alphabet = cbs_alphabet(dcs)
    if alphabet == ab.UCS2:
        if _is_hex(body) and len(body) % 4 == 0:
            data = bytes.fromhex(body)
            return ab.ucs2_decode(data[2:] if dcs == 0x11 else data)  # 0x11: 2-octet language first
        return body  # the modem converted it already (AT+CSCS="UTF-8" and the like)
    if alphabet == ab.OCTETS:
        return bytes.fromhex(body).decode("latin-1") if _is_hex(body) and len(body) % 2 == 0 else body
    if encoding == "text" or (encoding == "auto" and not _looks_packed(body)):
        return body
    if not (_is_hex(body) and len(body) % 2 == 0):
        raise UssdError("packed USSD string is not an even number of hex digits")
    return _unpack(bytes.fromhex(body))


def cbs_alphabet(dcs: int | None) -> str:
    """Alphabet of a CBS/USSD data coding scheme (23.038 §5); reserved values read as GSM 7-bit."""
    if dcs is None:
        return ab.GSM7
    group = dcs >> 4
    if dcs == 0x11 or (group in (0x4, 0x5, 0x6, 0x7, 0x9) and (dcs >> 2) & 0x03 == 0x02):
        return ab.UCS2
    if (group in (0x4, 0x5, 0x6, 0x7, 0x9) and (dcs >> 2) & 0x03 == 0x01) or (group == 0xF and dcs & 0x04):
        return ab.OCTETS
    return ab.GSM7


def _unpack(data: bytes) -> str:
    count = len(data) * 8 // 7
    septets = ab.unpack7(data, count)
    if count % 8 == 0 and septets[-1:] == b"\r":  # CR padding of the last 7 bits
        septets = septets[:-1]
    return ab.gsm7_decode(septets)


def _is_hex(text: str) -> bool:
    return bool(text) and all(ch in "0123456789abcdefABCDEF" for ch in text)


def _looks_packed(body: str) -> bool:
    """Hex that unpacks to readable text; a plain reply made only of hex digits stays ambiguous."""
    if not (_is_hex(body) and len(body) % 2 == 0 and len(body) >= 4):
        return False
    decoded = _unpack(bytes.fromhex(body))
    return all(ch.isprintable() or ch in "\r\n" for ch in decoded)


_NUMBER = r"(?:\d{1,3}(?:,\d{3})+\.\d{1,2}|\d{1,3}(?:[ \u00a0\u202f]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d+)?)"
# not glued to other digits, so dates (01.03.2024) and times (12:30) are not taken for money
_AMOUNT = re.compile(
    rf"(?P<sign>[-\u2212\u2013]|минус\s*|minus\s*)?(?<!\d)(?<!\d[.,:])(?P<num>{_NUMBER})(?!\d|[.,:]\d)",
    re.IGNORECASE)
_CURRENCY = re.compile(r"\s*(?:руб|р\.|р\b|₽|rub|rur|r\b)", re.IGNORECASE)
_KEYWORD = re.compile(r"баланс|balans|balance|остаток|ostatok|на\s+сч[её]т|na\s+schet", re.IGNORECASE)


def parse_balance(text: str) -> Decimal | None:
    """Money amount of an operator's balance reply ("Баланс: 123,45 р.", "Balance -12.50 RUB"), or None."""
    keyword = _KEYWORD.search(text)
    candidates = list(_AMOUNT.finditer(text, keyword.end() if keyword else 0))
    with_currency = [m for m in candidates if _CURRENCY.match(text, m.end())]
    if with_currency:
        chosen = with_currency[0]
    elif keyword and candidates:
        chosen = candidates[0]
    else:
        return None
    number = re.sub(r"[ \u00a0\u202f]", "", chosen.group("num"))
    number = number.replace(",", "") if "." in number and "," in number else number.replace(",", ".")
    amount = Decimal(number)
    return -amount if chosen.group("sign") else amount
