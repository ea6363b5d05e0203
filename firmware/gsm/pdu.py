"""SMS PDU codec (3GPP TS 23.040): SMS-SUBMIT, SMS-DELIVER, SMS-STATUS-REPORT, as AT+CMGF=0 uses them.

Every PDU here carries the SMSC address in front (``00`` = the SIM's default SMSC), as in
``AT+CMGS``, ``+CMT``, ``+CMGR`` and ``+CDS``; ``tpdu_length`` is the octet count without it.
"""
from __future__ import annotations

import enum
import math
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

from firmware.gsm import alphabet as ab

MAX_PARTS = 255
_DIGITS = "0123456789*#abc"  # BCD semi-octets 0..E (23.040 §9.1.2.3); F is filler


class PduError(ValueError):
    """A PDU that cannot be decoded (or a message that cannot be encoded); ``offset`` in octets."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message if offset is None else f"{message} (at octet {offset})")
        self.offset = offset


class DeliveryOutcome(str, enum.Enum):
    """Class of a TP-Status (23.040 §9.2.3.15)."""

    DELIVERED = "delivered"  # 0x00-0x1F
    PENDING = "pending"  # 0x20-0x3F: the SC is still trying
    FAILED = "failed"  # 0x40-0x5F: permanent error (and reserved values 0x80-0xFF)
    GAVE_UP = "gave_up"  # 0x60-0x7F: temporary error, the SC stopped trying


STATUS_NAMES: dict[int, str] = {
    0x00: "received by the recipient", 0x01: "forwarded, delivery unconfirmed",
    0x02: "replaced by the SC",
    0x20: "congestion", 0x21: "recipient busy", 0x22: "no response from recipient",
    0x23: "service rejected", 0x24: "quality of service not available", 0x25: "error in recipient",
    0x40: "remote procedure error", 0x41: "incompatible destination",
    0x42: "connection rejected by recipient", 0x43: "not obtainable",
    0x44: "quality of service not available", 0x45: "no interworking available",
    0x46: "validity period expired", 0x47: "deleted by the sender",
    0x48: "deleted by SC administration", 0x49: "message does not exist",
}
for _st in range(0x20, 0x26):
    STATUS_NAMES[_st + 0x40] = STATUS_NAMES[_st] + ", SC gave up"


def status_outcome(status: int) -> DeliveryOutcome:
    """Classify a TP-Status value; reserved values (0x80+) count as failed, never as delivered."""
    if status < 0x20:
        return DeliveryOutcome.DELIVERED
    if status < 0x40:
        return DeliveryOutcome.PENDING
    if 0x60 <= status < 0x80:
        return DeliveryOutcome.GAVE_UP
    return DeliveryOutcome.FAILED


@dataclass(frozen=True, slots=True)
class Concat:
    """Concatenation header: ``part`` of ``parts`` of the message with ``reference``."""

    reference: int
    part: int
    parts: int


@dataclass(frozen=True, slots=True)
class EncodedPdu:
    """One PDU to hand to the modem: ``AT+CMGS=<tpdu_length>`` then ``hex`` and Ctrl-Z.

    TP-MR is written as 00: the modem assigns the real one and returns it in ``+CMGS: <mr>``.
    """

    hex: str
    tpdu_length: int
    part: int = 1
    parts: int = 1
    text: str = ""
    concat_reference: int | None = None


SubmitPdu = EncodedPdu


@dataclass(frozen=True, slots=True)
class Deliver:
    """An SMS-DELIVER (inbound SMS); ``payload`` is the user data after the header (septets for GSM7)."""

    sender: str
    timestamp: datetime | None
    text: str
    concat: Concat | None
    alphabet: str
    payload: bytes
    smsc: str | None = None
    pid: int = 0
    dcs: int = 0


@dataclass(frozen=True, slots=True)
class Submit:
    """An SMS-SUBMIT as the driver sent it (read by the simulated modem)."""

    message_reference: int
    number: str
    text: str
    concat: Concat | None
    alphabet: str
    payload: bytes
    status_report_requested: bool
    validity: timedelta | datetime | None
    smsc: str | None = None
    pid: int = 0
    dcs: int = 0


@dataclass(frozen=True, slots=True)
class StatusReport:
    """An SMS-STATUS-REPORT: match it to the sent message by ``message_reference`` and ``recipient``."""

    message_reference: int
    recipient: str
    sc_timestamp: datetime | None
    discharge_time: datetime | None
    status: int
    smsc: str | None = None

    @property
    def outcome(self) -> DeliveryOutcome:
        return status_outcome(self.status)

    @property
    def final(self) -> bool:
        return self.outcome is not DeliveryOutcome.PENDING

    @property
    def sms_status(self) -> str:
        """The Line API's word: delivered, pending or failed."""
        return {DeliveryOutcome.GAVE_UP: "failed"}.get(self.outcome, self.outcome.value)

    @property
    def status_name(self) -> str:
        return STATUS_NAMES.get(self.status, f"status 0x{self.status:02X}")


# ---------------------------------------------------------------- encoding


def encode_submit(number: str, text: str, *, smsc: str | None = None, request_status_report: bool = True,
                  reference: int | None = None, validity: timedelta | None = timedelta(days=1),
                  ) -> list[EncodedPdu]:
    """SMS-SUBMIT PDUs for ``text`` to ``number``, split into concatenated parts when long.

    ``reference`` (0-255: 8-bit IE, 256-65535: 16-bit IE) ties the parts together; pass a per-port
    counter; by default it is derived from number and text. ``validity`` None leaves it to the SC.
    """
    first = 0x01 | (0x20 if request_status_report else 0)
    vp = b""
    if validity is not None:
        first |= 0x10
        vp = bytes([relative_validity(validity)])
    address = _address(number)

    def head(udhi: bool) -> bytes:
        return bytes([first | (0x40 if udhi else 0), 0x00]) + address  # TP-MR 00: the modem sets it

    return _encode_parts(_smsc(smsc), head, vp, number, text, reference)


def encode_deliver(sender: str, text: str, *, timestamp: datetime, smsc: str | None = None,
                   reference: int | None = None) -> list[EncodedPdu]:
    """SMS-DELIVER PDUs (what the network hands the modem), split like ``encode_submit``."""
    address = _address(sender, alnum=True)

    def head(udhi: bool) -> bytes:
        return bytes([0x04 | (0x40 if udhi else 0)]) + address  # 0x04: no more messages waiting

    return _encode_parts(_smsc(smsc), head, encode_timestamp(timestamp), sender, text, reference)


def encode_status_report(message_reference: int, recipient: str, *, status: int, sc_timestamp: datetime,
                         discharge_time: datetime, smsc: str | None = None) -> EncodedPdu:
    """An SMS-STATUS-REPORT PDU for ``+CDS``."""
    if not 0 <= message_reference <= 255 or not 0 <= status <= 255:
        raise PduError("message reference and status must be 0..255")
    tpdu = (bytes([0x06, message_reference]) + _address(recipient) + encode_timestamp(sc_timestamp)
            + encode_timestamp(discharge_time) + bytes([status]))
    return EncodedPdu(hex=(_smsc(smsc) + tpdu).hex().upper(), tpdu_length=len(tpdu))


def count_parts(text: str) -> int:
    """How many SMS ``text`` takes (what the operator bills)."""
    alphabet = ab.alphabet_for(text)
    return len(ab.split_text(text, alphabet, *_limits(alphabet, 6)))


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


def _encode_parts(smsc: bytes, head: Callable[[bool], bytes], tail: bytes, who: str, text: str,
                  reference: int | None) -> list[EncodedPdu]:
    """Split ``text`` and wrap each segment as head(udhi) + PID + DCS + tail + UDL + UD."""
    try:
        text.encode("utf-16-be")
    except UnicodeEncodeError as exc:
        raise PduError(f"text has an unpaired surrogate at character {exc.start}") from None
    if reference is None:
        reference = zlib.crc32(f"{who}\n{text}".encode("utf-8", "surrogatepass")) & 0xFF
    if not 0 <= reference <= 0xFFFF:
        raise PduError(f"concatenation reference {reference} is not 0..65535")
    alphabet = ab.alphabet_for(text)
    udh_len = 6 if reference <= 0xFF else 7
    segments = ab.split_text(text, alphabet, *_limits(alphabet, udh_len))
    if len(segments) > MAX_PARTS:
        raise PduError(f"text needs {len(segments)} parts, at most {MAX_PARTS} are possible")
    dcs = 0x00 if alphabet == ab.GSM7 else 0x08
    pdus = []
    for number, segment in enumerate(segments, 1):
        udh = b""
        if len(segments) > 1:
            ref = bytes([reference]) if udh_len == 6 else reference.to_bytes(2, "big")
            ie = bytes([0x00 if udh_len == 6 else 0x08, len(ref) + 2]) + ref + bytes([len(segments), number])
            udh = bytes([len(ie)]) + ie
        udl, ud = _user_data(alphabet, segment, udh)
        tpdu = head(bool(udh)) + bytes([0x00, dcs]) + tail + bytes([udl]) + ud
        pdus.append(EncodedPdu(hex=(smsc + tpdu).hex().upper(), tpdu_length=len(tpdu), part=number,
                               parts=len(segments), text=segment,
                               concat_reference=reference if len(segments) > 1 else None))
    return pdus


def _limits(alphabet: str, udh_len: int) -> tuple[int, int]:
    """(single-message limit, per-part limit) in septets or UTF-16 units for a UDH of ``udh_len`` octets."""
    if alphabet == ab.GSM7:
        return 160, 160 - math.ceil(udh_len * 8 / 7)
    return 70, (140 - udh_len) // 2


def _user_data(alphabet: str, text: str, udh: bytes) -> tuple[int, bytes]:
    """(TP-UDL, TP-UD): GSM7 septets start on a septet boundary after the UDH (fill bits)."""
    if alphabet == ab.GSM7:
        septets = ab.gsm7_septets(text) or b""
        header_septets = math.ceil(len(udh) * 8 / 7)
        fill = header_septets * 7 - len(udh) * 8
        return header_septets + len(septets), udh + ab.pack7(septets, fill)
    ud = udh + ab.ucs2_encode(text)
    return len(ud), ud


def _smsc(smsc: str | None) -> bytes:
    if not smsc:
        return b"\x00"
    address = _address(smsc)
    return bytes([len(address) - 1]) + address[1:]


def _address(number: str, *, alnum: bool = False) -> bytes:
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


# ---------------------------------------------------------------- decoding


def decode_deliver(pdu: str, *, length: int | None = None) -> Deliver:
    """Decode an SMS-DELIVER; ``length`` is the TPDU length the modem announced (``+CMT: ,<len>``)."""
    r = _Reader(pdu, length)
    smsc = r.smsc()
    first = r.octet("first octet")
    if first & 0x03 != 0x00:
        raise PduError(f"not an SMS-DELIVER (message type {first & 3})", r.pos - 1)
    sender = r.address("originating address")
    pid, dcs = r.octet("TP-PID"), r.octet("TP-DCS")
    timestamp = r.timestamp("TP-SCTS")
    concat, alphabet, payload = r.user_data(bool(first & 0x40), dcs)
    return Deliver(sender=sender, timestamp=timestamp, text=payload_text(alphabet, payload), concat=concat,
                   alphabet=alphabet, payload=payload, smsc=smsc, pid=pid, dcs=dcs)


def decode_submit(pdu: str, *, length: int | None = None) -> Submit:
    """Decode an SMS-SUBMIT; ``length`` is the ``AT+CMGS=<len>`` value when known."""
    r = _Reader(pdu, length)
    smsc = r.smsc()
    first = r.octet("first octet")
    if first & 0x03 != 0x01:
        raise PduError(f"not an SMS-SUBMIT (message type {first & 3})", r.pos - 1)
    mr = r.octet("TP-MR")
    number = r.address("destination address")
    pid, dcs = r.octet("TP-PID"), r.octet("TP-DCS")
    vpf = (first >> 3) & 0x03
    validity: timedelta | datetime | None = None
    if vpf == 2:
        validity = validity_of(r.octet("TP-VP"))
    elif vpf == 3:
        validity = r.timestamp("TP-VP")
    elif vpf == 1:
        r.take(7, "TP-VP (enhanced)")
    concat, alphabet, payload = r.user_data(bool(first & 0x40), dcs)
    return Submit(message_reference=mr, number=number, text=payload_text(alphabet, payload), concat=concat,
                  alphabet=alphabet, payload=payload, status_report_requested=bool(first & 0x20),
                  validity=validity, smsc=smsc, pid=pid, dcs=dcs)


def decode_status_report(pdu: str, *, length: int | None = None) -> StatusReport:
    """Decode an SMS-STATUS-REPORT (``+CDS: <len>`` then this PDU); optional trailing fields are skipped."""
    r = _Reader(pdu, length)
    smsc = r.smsc()
    first = r.octet("first octet")
    if first & 0x03 != 0x02:
        raise PduError(f"not an SMS-STATUS-REPORT (message type {first & 3})", r.pos - 1)
    mr = r.octet("TP-MR")
    recipient = r.address("recipient address")
    sc_timestamp = r.timestamp("TP-SCTS")
    discharge = r.timestamp("TP-DT")
    return StatusReport(message_reference=mr, recipient=recipient, sc_timestamp=sc_timestamp,
                        discharge_time=discharge, status=r.octet("TP-ST"), smsc=smsc)


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


class _Reader:
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
