"""TPDU field codecs (3GPP TS 23.040 §9.1.2, §9.2.3): addresses, time stamps, validity, DCS, user data."""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from firmware.gsm import alphabet as ab

_DIGITS = "0123456789*#abc"  # BCD semi-octets 0..E (23.040 §9.1.2.3); F is filler


class PduError(ValueError):
    """A PDU that cannot be decoded (or a message that cannot be encoded); ``offset`` in octets."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message if offset is None else f"{message} (at octet {offset})")
        self.offset = offset


@dataclass(frozen=True, slots=True)
class Concat:
    """Concatenation header: ``part`` of ``parts`` of the message with ``reference``."""

    reference: int
    part: int
    parts: int


def relative_validity(validity: timedelta) -> int:
    """TP-VP relative octet for at least ``validity`` (23.040 §9.2.3.12.1), capped at 63 weeks."""
    minutes = max(0, math.ceil(validity.total_seconds() / 60))
    if minutes <= 720:
        return max(0, math.ceil(minutes / 5) - 1)
    if minutes <= 1440:
        return 143 + math.ceil((minutes - 720) / 30)
    days = math.ceil(minutes / 1440)
    if days <= 30:
        return 166 + days
    return min(255, 192 + math.ceil(days / 7))


def validity_of(vp: int) -> timedelta:
    """Duration of a TP-VP relative octet."""
    if vp <= 143:
        return timedelta(minutes=5 * (vp + 1))
    if vp <= 167:
        return timedelta(hours=12, minutes=30 * (vp - 143))
    if vp <= 196:
        return timedelta(days=vp - 166)
    return timedelta(weeks=vp - 192)


def encode_timestamp(when: datetime) -> bytes:
    """TP-SCTS octets (semi-octet BCD, zone in quarter hours); a naive datetime counts as UTC."""
    offset = when.utcoffset() or timedelta(0)
    quarters = round(offset.total_seconds() / 900)
    zone = _bcd(abs(quarters)) | (0x08 if quarters < 0 else 0)
    fields = (when.year % 100, when.month, when.day, when.hour, when.minute, when.second)
    return bytes(_bcd(v) for v in fields) + bytes([zone])


def smsc_address(smsc: str | None) -> bytes:
    """The SMSC part in front of a TPDU; ``00`` asks the modem to use the SIM's default SMSC."""
    if not smsc:
        return b"\x00"
    encoded = address(smsc)
    return bytes([len(encoded) - 1]) + encoded[1:]


def address(number: str, *, alnum: bool = False) -> bytes:
    """TP address: digit count, type (0x91 international, 0x81 unknown, 0xD0 alphanumeric), BCD."""
    digits = number.strip()
    toa = 0x81
    if digits.startswith("+"):
        digits, toa = digits[1:], 0x91
    if digits and all(ch in _DIGITS[:12] for ch in digits):
        if len(digits) > 20:
            raise PduError(f"number has {len(digits)} digits, at most 20 fit")
        nibbles = [_DIGITS.index(ch) for ch in digits] + ([0xF] if len(digits) % 2 else [])
        bcd = bytes(nibbles[i] | nibbles[i + 1] << 4 for i in range(0, len(nibbles), 2))
        return bytes([len(digits), toa]) + bcd
    septets = ab.gsm7_septets(number) if alnum and number else None
    if septets is None or len(septets) > 11:
        raise PduError(f"not a phone number: {len(number)} characters, expected [+]digits")
    packed = ab.pack7(septets)
    return bytes([math.ceil(len(septets) * 7 / 4), 0xD0]) + packed


def _bcd(value: int) -> int:
    return (value % 10) << 4 | (value // 10) % 10


def payload_text(alphabet: str, payload: bytes) -> str:
    """Text of a user-data payload (8-bit data shown as Latin-1)."""
    if alphabet == ab.GSM7:
        return ab.gsm7_decode(payload)
    if alphabet == ab.UCS2:
        return ab.ucs2_decode(payload)
    return payload.decode("latin-1")


def dcs_alphabet(dcs: int) -> str:
    """Alphabet of a TP-DCS (23.038 §4); reserved codings are read as GSM7, as the spec asks."""
    group = dcs >> 4
    if group < 0x8:
        if dcs & 0x20:  # compressed: we cannot decompress, keep the octets
            return ab.OCTETS
        return (ab.GSM7, ab.OCTETS, ab.UCS2, ab.GSM7)[(dcs >> 2) & 0x03]
    if group == 0xE:
        return ab.UCS2
    if group == 0xF and dcs & 0x04:
        return ab.OCTETS
    return ab.GSM7


class Reader:
    """Cursor over PDU octets that raises PduError naming the field and the offset."""

    def __init__(self, pdu: str, length: int | None) -> None:
        text = "".join(str(pdu).split())
        for i, ch in enumerate(text):
            if ch not in "0123456789abcdefABCDEF":
                raise PduError(f"not a hex digit {ch!r}", i // 2)
        if len(text) % 2:
            raise PduError("odd number of hex digits", len(text) // 2)
        self.data = bytes.fromhex(text)
        self.pos = 0
        self.with_smsc = length is None or length != len(self.data)
        if self.with_smsc and length is not None and (not self.data or length != len(self.data) - 1 - self.data[0]):
            raise PduError(f"announced TPDU length {length} does not match the {len(self.data)}-octet PDU", 0)

    def octet(self, what: str) -> int:
        return self.take(1, what)[0]

    def take(self, count: int, what: str) -> bytes:
        if self.pos + count > len(self.data):
            raise PduError(f"truncated PDU: {what} needs {count} octet(s), {len(self.data) - self.pos} left",
                           self.pos)
        chunk = self.data[self.pos:self.pos + count]
        self.pos += count
        return chunk

    def smsc(self) -> str | None:
        if not self.with_smsc:
            return None
        start = self.pos
        size = self.octet("SMSC length")
        if size == 0:
            return None
        if size > 11:
            raise PduError(f"SMSC length {size} is over 11 octets", start)
        toa = self.octet("SMSC type")
        return _number(toa, self.take(size - 1, "SMSC address"), (size - 1) * 2)

    def address(self, what: str) -> str:
        start = self.pos
        digits = self.octet(f"{what} length")
        if digits > 20:
            raise PduError(f"{what} length {digits} is over 20 digits", start)
        toa = self.octet(f"{what} type")
        raw = self.take((digits + 1) // 2, what)
        if (toa >> 4) & 0x07 == 0x05:
            return ab.gsm7_decode(ab.unpack7(raw, digits * 4 // 7))
        return _number(toa, raw, digits)

    def timestamp(self, what: str) -> datetime | None:
        """A 7-octet time stamp; None when its digits are not a valid date (seen from some networks)."""
        raw = self.take(7, what)
        values = [(o & 0x0F) * 10 + (o >> 4) for o in raw[:6]]
        if any((o & 0x0F) > 9 or (o >> 4) > 9 for o in raw[:6]) or (raw[6] >> 4) > 9:
            return None
        quarters = (raw[6] & 0x07) * 10 + (raw[6] >> 4)
        zone = timezone(timedelta(minutes=15 * quarters * (-1 if raw[6] & 0x08 else 1)))
        try:
            return datetime(2000 + values[0], *values[1:], tzinfo=zone)
        except ValueError:
            return None

    def user_data(self, udhi: bool, dcs: int) -> tuple[Concat | None, str, bytes]:
        alphabet = dcs_alphabet(dcs)
        start = self.pos
        udl = self.octet("TP-UDL")
        limit = 160 if alphabet == ab.GSM7 else 140
        if udl > limit:
            raise PduError(f"TP-UDL {udl} is over {limit}", start)
        size = math.ceil(udl * 7 / 8) if alphabet == ab.GSM7 else udl
        ud = self.take(size, "TP-UD")
        concat, header_len = None, 0
        if udhi and ud:
            header_len = ud[0] + 1
            if header_len > len(ud):
                raise PduError(f"UDH length {ud[0]} is over the user data", start + 1)
            concat = _concat(ud[1:header_len], start + 2)
        if alphabet != ab.GSM7:
            return concat, alphabet, ud[header_len:]
        header_septets = math.ceil(header_len * 8 / 7)
        if header_septets > udl:
            raise PduError(f"UDH of {header_len} octets is over TP-UDL {udl}", start)
        fill = header_septets * 7 - header_len * 8
        return concat, alphabet, ab.unpack7(ud[header_len:], udl - header_septets, fill)


def _concat(header: bytes, offset: int) -> Concat | None:
    """The concatenation IE of a UDH, if any; a malformed header raises, an invalid IE is ignored."""
    found, i = None, 0
    while i < len(header):
        if i + 2 > len(header) or i + 2 + header[i + 1] > len(header):
            raise PduError("UDH information element runs past the header", offset + i)
        iei, size, value = header[i], header[i + 1], header[i + 2:i + 2 + header[i + 1]]
        if (iei, size) in ((0x00, 3), (0x08, 4)):
            ref = int.from_bytes(value[:-2], "big")
            parts, part = value[-2], value[-1]
            if 1 <= part <= parts:  # 23.040 §9.2.3.24.1: otherwise ignore the IE
                found = Concat(reference=ref, part=part, parts=parts)
        i += 2 + size
    return found


def _number(toa: int, raw: bytes, digits: int) -> str:
    nibbles = [n for o in raw for n in (o & 0x0F, o >> 4)][:digits]
    number = "".join(_DIGITS[n] for n in nibbles if n != 0xF)
    return "+" + number if (toa >> 4) & 0x07 == 0x01 and number else number
