"""SMS PDU codec (3GPP TS 23.040): SMS-SUBMIT, SMS-DELIVER, SMS-STATUS-REPORT, as AT+CMGF=0 uses them.

Every PDU here carries the SMSC address in front (``00`` = the SIM's default SMSC), as in
``AT+CMGS``, ``+CMT``, ``+CMGR`` and ``+CDS``; ``tpdu_length`` is the octet count without it.
"""
from __future__ import annotations

import enum
import math
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from firmware.gsm import alphabet as ab
from firmware.gsm.alphabet import text_mode_fits, ucs2_from_hex, ucs2_hex
from firmware.gsm.tpdu_fields import (
    Concat, PduError, Reader, address, dcs_alphabet, encode_timestamp, payload_text, relative_validity,
    smsc_address, validity_of,
)

__all__ = [
    "Concat", "Deliver", "DeliveryOutcome", "EncodedPdu", "PduError", "STATUS_NAMES", "StatusReport", "Submit",
    "SubmitPdu", "count_parts", "dcs_alphabet", "decode_deliver", "decode_pdu", "decode_status_report",
    "decode_submit", "encode_deliver", "encode_status_report", "encode_submit", "encode_timestamp", "payload_text",
    "relative_validity", "status_outcome", "text_mode_fits", "ucs2_from_hex", "ucs2_hex", "validity_of",
]

MAX_PARTS = 255


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
STATUS_NAMES.update({st + 0x40: STATUS_NAMES[st] + ", SC gave up" for st in range(0x20, 0x26)})


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
    destination = address(number)

    def head(udhi: bool) -> bytes:
        return bytes([first | (0x40 if udhi else 0), 0x00]) + destination  # TP-MR 00: the modem sets it

    return _encode_parts(smsc_address(smsc), head, vp, number, text, reference)


def encode_deliver(sender: str, text: str, *, timestamp: datetime, smsc: str | None = None,
                   reference: int | None = None) -> list[EncodedPdu]:
    """SMS-DELIVER PDUs (what the network hands the modem), split like ``encode_submit``."""
    originator = address(sender, alnum=True)

    def head(udhi: bool) -> bytes:
        return bytes([0x04 | (0x40 if udhi else 0)]) + originator  # 0x04: no more messages waiting

    return _encode_parts(smsc_address(smsc), head, encode_timestamp(timestamp), sender, text, reference)


def encode_status_report(message_reference: int, recipient: str, *, status: int, sc_timestamp: datetime,
                         discharge_time: datetime, smsc: str | None = None) -> EncodedPdu:
    """An SMS-STATUS-REPORT PDU for ``+CDS``."""
    if not 0 <= message_reference <= 255 or not 0 <= status <= 255:
        raise PduError("message reference and status must be 0..255")
    tpdu = (bytes([0x06, message_reference]) + address(recipient) + encode_timestamp(sc_timestamp)
            + encode_timestamp(discharge_time) + bytes([status]))
    return EncodedPdu(hex=(smsc_address(smsc) + tpdu).hex().upper(), tpdu_length=len(tpdu))


def count_parts(text: str) -> int:
    """How many SMS ``text`` takes (what the operator bills)."""
    alphabet = ab.alphabet_for(text)
    return len(ab.split_text(text, alphabet, *_limits(alphabet, 6)))


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


# ---------------------------------------------------------------- decoding


def decode_deliver(pdu: str, *, length: int | None = None) -> Deliver:
    """Decode an SMS-DELIVER; ``length`` is the TPDU length the modem announced (``+CMT: ,<len>``)."""
    r = Reader(pdu, length)
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
    r = Reader(pdu, length)
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
    r = Reader(pdu, length)
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


def decode_pdu(pdu: str, *, length: int | None = None) -> Deliver | Submit | StatusReport:
    """Decode whichever of the three a ``+CMGR``/``+CMGL`` entry holds, by its message type."""
    r = Reader(pdu, length)
    r.smsc()
    mti = r.octet("first octet") & 0x03
    decoder = {0: decode_deliver, 1: decode_submit, 2: decode_status_report}.get(mti)
    if decoder is None:
        raise PduError("reserved message type 3", r.pos - 1)
    return decoder(pdu, length=length)
