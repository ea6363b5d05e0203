"""Q.931 / ETSI DSS1 message codec (PRI): messages and the information elements call control uses.

Decoding never raises anything but :class:`DecodeError` (with the byte offset). Information
elements that are unknown are kept as :class:`RawIE`; known ones whose contents are malformed are
kept as :class:`InvalidIE`, so call control can answer STATUS with cause 99 or 100.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field

from firmware.e1.ies import (IE, IE_CLASSES, BearerCapability, CalledNumber, CallingNumber,
                             CallState, Cause, ChannelId, DecodeError, Display, InvalidIE,
                             ProgressIndicator, RawIE, RestartIndicator, SendingComplete)

__all__ = ["IE", "BearerCapability", "CalledNumber", "CallingNumber", "CallState", "Cause",
           "ChannelId", "DecodeError", "Display", "InvalidIE", "Message", "MessageType",
           "ProgressIndicator", "RawIE", "RestartIndicator", "SendingComplete",
           "comprehension_required", "decode_message"]

PROTOCOL_DISCRIMINATOR = 0x08


class MessageType(enum.IntEnum):
    ALERTING = 0x01
    CALL_PROCEEDING = 0x02
    PROGRESS = 0x03
    SETUP = 0x05
    CONNECT = 0x07
    SETUP_ACKNOWLEDGE = 0x0D
    CONNECT_ACKNOWLEDGE = 0x0F
    DISCONNECT = 0x45
    RESTART = 0x46
    RELEASE = 0x4D
    RESTART_ACKNOWLEDGE = 0x4E
    RELEASE_COMPLETE = 0x5A
    STATUS_ENQUIRY = 0x75
    INFORMATION = 0x7B
    STATUS = 0x7D


@dataclass(slots=True)
class Message:
    """One Q.931 message; ``flag`` is the call reference flag (set by the non-originating side)."""

    type: MessageType | int
    cref: int
    flag: bool = False
    ies: list = field(default_factory=list)
    unknown: list[RawIE] = field(default_factory=list)
    invalid: list[InvalidIE] = field(default_factory=list)
    cref_len: int = 2

    def get(self, cls: type) -> object | None:
        """The first IE of class ``cls``, or None."""
        for ie in self.ies:
            if isinstance(ie, cls):
                return ie
        return None

    def all(self, cls: type) -> list:
        return [ie for ie in self.ies if isinstance(ie, cls)]

    @property
    def name(self) -> str:
        return self.type.name if isinstance(self.type, MessageType) else f"UNKNOWN_{self.type:#04x}"

    def encode(self) -> bytes:
        out = bytearray([PROTOCOL_DISCRIMINATOR, self.cref_len])
        if self.cref_len:
            ref = self.cref.to_bytes(self.cref_len, "big")
            out += bytes([ref[0] | (0x80 if self.flag else 0)]) + ref[1:]
        out.append(int(self.type) & 0x7F)
        for ie in sorted(self.ies, key=lambda x: x.ID if x.ID < 0x80 else x.ID - 0x100):
            if ie.ID >= 0x80:
                out.append(ie.ID)
                continue
            body = ie.encode()
            out += bytes([ie.ID, len(body)]) + body
        for raw in self.unknown:
            out += bytes([raw.ident, len(raw.data)]) + raw.data
        return bytes(out)


def decode_message(data: bytes, base: int = 0) -> Message:
    """Decode one Q.931 message; ``base`` is added to offsets in errors (its place in a frame)."""
    data = bytes(data)
    if len(data) < 3:
        raise DecodeError(f"Q.931 message too short ({len(data)} bytes)", base + len(data))
    if data[0] != PROTOCOL_DISCRIMINATOR:
        raise DecodeError(f"protocol discriminator {data[0]:#04x} is not Q.931 (0x08)", base)
    clen = data[1] & 0x0F
    if data[1] & 0xF0 or clen > 2:
        raise DecodeError(f"call reference length {data[1]} is not 0, 1 or 2", base + 1)
    if len(data) < 2 + clen:
        raise DecodeError("message ends inside the call reference", base + len(data))
    if len(data) == 2 + clen:
        raise DecodeError("message type missing", base + len(data))
    ref = data[2:2 + clen]
    flag = bool(ref[0] & 0x80) if clen else False
    cref = int.from_bytes(bytes([ref[0] & 0x7F]) + ref[1:], "big") if clen else 0
    pos = 2 + clen
    mt = data[pos]
    if mt & 0x80 or mt == 0:
        raise DecodeError(f"message type {mt:#04x} is not a Q.931 message type", base + pos)
    try:
        mtype: MessageType | int = MessageType(mt)
    except ValueError:
        mtype = mt
    msg = Message(mtype, cref, flag, cref_len=clen)
    pos += 1
    codeset, locked = 0, 0
    while pos < len(data):
        ident = data[pos]
        start = pos
        if ident & 0x80:  # single-octet IE
            pos += 1
            if ident & 0xF0 == 0x90:  # shift
                if ident & 0x08:
                    codeset = ident & 0x07  # non-locking: next IE only
                    continue
                locked = codeset = ident & 0x07
                continue
            if ident == SendingComplete.ID and codeset == 0:
                msg.ies.append(SendingComplete())
            else:
                msg.unknown.append(RawIE(ident, b"", codeset, base + start))
            codeset = locked
            continue
        if pos + 1 >= len(data):
            raise DecodeError(f"IE {ident:#04x} has no length octet", base + pos)
        length = data[pos + 1]
        body = data[pos + 2:pos + 2 + length]
        if len(body) < length:
            raise DecodeError(f"IE {ident:#04x} length {length} runs past the end of the message",
                              base + pos + 1)
        pos += 2 + length
        cls = IE_CLASSES.get(ident) if codeset == 0 else None
        if cls is None:
            msg.unknown.append(RawIE(ident, body, codeset, base + start))
        else:
            try:
                msg.ies.append(cls.decode(body, base + start + 2))
            except DecodeError as exc:
                msg.invalid.append(InvalidIE(ident, body, exc.reason, exc.offset))
        codeset = locked
    return msg


def comprehension_required(ident: int) -> bool:
    """Q.931 5.8.7.1: codeset-0 IEs 0000 xxxx must be understood (cause 96/100 if not)."""
    return ident & 0xF0 == 0
