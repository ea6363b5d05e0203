"""Q.931 information elements used on an ETSI PRI: each one encodes and decodes its contents."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


class DecodeError(ValueError):
    """Bytes that are not a well-formed frame or message; ``offset`` points at the culprit."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} (at byte offset {offset})")
        self.offset = offset
        self.reason = message


def _digits(data: bytes, offset: int) -> str:
    if any(b > 0x7F for b in data):
        raise DecodeError("number digits are not IA5", offset)
    return data.decode("ascii")


@dataclass(frozen=True, slots=True)
class BearerCapability:
    """Bearer capability; the defaults are speech, circuit mode, 64 kbit/s, G.711 A-law."""

    ID: ClassVar[int] = 0x04
    capability: int = 0x00  # 0 speech, 8 unrestricted digital, 0x10 3.1 kHz audio
    mode: int = 0x00  # 0 circuit
    rate: int = 0x10  # 64 kbit/s
    layer1: int | None = 0x03  # G.711 A-law; None when octet 5 is absent
    coding: int = 0

    def encode(self) -> bytes:
        out = bytes([0x80 | self.coding << 5 | self.capability, 0x80 | self.mode << 5 | self.rate])
        if self.layer1 is not None:
            out += bytes([0x80 | 0x20 | self.layer1])
        return out

    @classmethod
    def decode(cls, data: bytes, offset: int) -> BearerCapability:
        if len(data) < 2:
            raise DecodeError("bearer capability shorter than 2 octets", offset)
        layer1 = None
        i = 2 if data[0] & 0x80 else 3  # octet 3a is absent in DSS1 but may appear
        if len(data) > i and (data[i - 1] & 0x80) and (data[i] >> 5) & 0x03 == 1:
            layer1 = data[i] & 0x1F
        return cls((data[0] & 0x1F), (data[1] >> 5) & 0x03, data[1] & 0x1F, layer1,
                   (data[0] >> 5) & 0x03)


@dataclass(frozen=True, slots=True)
class Cause:
    """Q.850 cause: location (0 user, 1 private local, 2 public local...) and value."""

    ID: ClassVar[int] = 0x08
    value: int
    location: int = 0
    coding: int = 0
    diagnostics: bytes = b""

    def encode(self) -> bytes:
        head = bytes([0x80 | self.coding << 5 | self.location, 0x80 | self.value])
        return head + self.diagnostics

    @classmethod
    def decode(cls, data: bytes, offset: int) -> Cause:
        if len(data) < 2:
            raise DecodeError("cause shorter than 2 octets", offset)
        i = 1 if data[0] & 0x80 else 2  # octet 3a (recommendation) present when ext bit is 0
        if len(data) <= i:
            raise DecodeError("cause value octet missing", offset + i)
        return cls(data[i] & 0x7F, data[0] & 0x0F, (data[0] >> 5) & 0x03, bytes(data[i + 1:]))


@dataclass(frozen=True, slots=True)
class CallState:
    ID: ClassVar[int] = 0x14
    value: int
    coding: int = 0

    def encode(self) -> bytes:
        return bytes([self.coding << 6 | self.value])

    @classmethod
    def decode(cls, data: bytes, offset: int) -> CallState:
        if len(data) != 1:
            raise DecodeError("call state must be 1 octet", offset)
        return cls(data[0] & 0x3F, data[0] >> 6)


@dataclass(frozen=True, slots=True)
class ChannelId:
    """Channel identification on a PRI: one B-channel (exclusive or preferred) or the interface."""

    ID: ClassVar[int] = 0x18
    channel: int | None = None  # timeslot number 1..31, None for "no channel" / "any channel"
    exclusive: bool = True
    whole_interface: bool = False  # "any channel" selection, used with RESTART of the interface
    d_channel: bool = False

    def encode(self) -> bytes:
        sel = 1 if self.channel is not None else (3 if self.whole_interface else 0)
        octet3 = 0x80 | 0x20 | self.exclusive << 3 | self.d_channel << 2 | sel
        if self.channel is None:
            return bytes([octet3])
        return bytes([octet3, 0x83, 0x80 | self.channel])

    @classmethod
    def decode(cls, data: bytes, offset: int) -> ChannelId:
        if not data:
            raise DecodeError("empty channel identification", offset)
        o3 = data[0]
        if not o3 & 0x20:
            raise DecodeError("channel identification is not for a primary rate interface", offset)
        i = 1
        if o3 & 0x40:  # interface identifier octets follow, up to one with the ext bit
            while i < len(data) and not data[i] & 0x80:
                i += 1
            i += 1
        sel = o3 & 0x03
        exclusive, dch = bool(o3 & 0x08), bool(o3 & 0x04)
        if sel != 1:
            return cls(None, exclusive, sel == 3, dch)
        if len(data) < i + 2:
            raise DecodeError("channel identification lacks channel type or number", offset + i)
        if data[i] & 0x10 or data[i] & 0x0F != 0x03:
            raise DecodeError("channel identification is not a B-channel number", offset + i)
        return cls(data[i + 1] & 0x7F, exclusive, False, dch)


@dataclass(frozen=True, slots=True)
class ProgressIndicator:
    ID: ClassVar[int] = 0x1E
    description: int  # 1 not end-to-end ISDN, 2 destination non-ISDN, 8 in-band info
    location: int = 0
    coding: int = 0

    def encode(self) -> bytes:
        return bytes([0x80 | self.coding << 5 | self.location, 0x80 | self.description])

    @classmethod
    def decode(cls, data: bytes, offset: int) -> ProgressIndicator:
        if len(data) != 2:
            raise DecodeError("progress indicator must be 2 octets", offset)
        return cls(data[1] & 0x7F, data[0] & 0x0F, (data[0] >> 5) & 0x03)


@dataclass(frozen=True, slots=True)
class Display:
    ID: ClassVar[int] = 0x28
    text: str

    def encode(self) -> bytes:
        return self.text.encode("latin-1")

    @classmethod
    def decode(cls, data: bytes, offset: int) -> Display:
        return cls(bytes(data).decode("latin-1"))


@dataclass(frozen=True, slots=True)
class CallingNumber:
    """Calling party number: type of number, numbering plan, presentation and screening."""

    ID: ClassVar[int] = 0x6C
    digits: str
    type_of_number: int = 0  # 0 unknown, 1 international, 2 national, 4 subscriber
    plan: int = 1  # 1 ISDN/E.164
    presentation: int | None = 0  # 0 allowed, 1 restricted, 2 not available; None: no octet 3a
    screening: int = 0

    def encode(self) -> bytes:
        head = self.type_of_number << 4 | self.plan
        if self.presentation is None:
            return bytes([0x80 | head]) + self.digits.encode("ascii")
        return bytes([head, 0x80 | self.presentation << 5 | self.screening]) + \
            self.digits.encode("ascii")

    @classmethod
    def decode(cls, data: bytes, offset: int) -> CallingNumber:
        if not data:
            raise DecodeError("empty calling party number", offset)
        ton, plan = (data[0] >> 4) & 0x07, data[0] & 0x0F
        if data[0] & 0x80:
            return cls(_digits(data[1:], offset + 1), ton, plan, None)
        if len(data) < 2:
            raise DecodeError("calling party number lacks presentation octet", offset + 1)
        return cls(_digits(data[2:], offset + 2), ton, plan, (data[1] >> 5) & 0x03,
                   data[1] & 0x03)


@dataclass(frozen=True, slots=True)
class CalledNumber:
    ID: ClassVar[int] = 0x70
    digits: str
    type_of_number: int = 0
    plan: int = 1

    def encode(self) -> bytes:
        return bytes([0x80 | self.type_of_number << 4 | self.plan]) + self.digits.encode("ascii")

    @classmethod
    def decode(cls, data: bytes, offset: int) -> CalledNumber:
        if not data:
            raise DecodeError("empty called party number", offset)
        if not data[0] & 0x80:
            raise DecodeError("called party number octet 3 lacks the extension bit", offset)
        return cls(_digits(data[1:], offset + 1), (data[0] >> 4) & 0x07, data[0] & 0x0F)


@dataclass(frozen=True, slots=True)
class RestartIndicator:
    ID: ClassVar[int] = 0x79
    restart_class: int  # 0 indicated channels, 6 single interface, 7 all interfaces

    def encode(self) -> bytes:
        return bytes([0x80 | self.restart_class])

    @classmethod
    def decode(cls, data: bytes, offset: int) -> RestartIndicator:
        if len(data) != 1 or (data[0] & 0x07) not in (0, 6, 7):
            raise DecodeError("restart indicator must be 1 octet with class 0, 6 or 7", offset)
        return cls(data[0] & 0x07)


@dataclass(frozen=True, slots=True)
class SendingComplete:
    """Single-octet IE (type 2, 0xA1): the called number is complete."""

    ID: ClassVar[int] = 0xA1


@dataclass(frozen=True, slots=True)
class RawIE:
    """An IE the codec does not know (kept as it came; ``codeset`` after a shift)."""

    ident: int
    data: bytes
    codeset: int = 0
    offset: int = 0


@dataclass(frozen=True, slots=True)
class InvalidIE:
    """A known IE with malformed contents: call control answers cause 100."""

    ident: int
    data: bytes
    reason: str
    offset: int = 0


IE_CLASSES = {c.ID: c for c in (BearerCapability, Cause, CallState, ChannelId, ProgressIndicator,
                                Display, CallingNumber, CalledNumber, RestartIndicator)}
IE = (BearerCapability | Cause | CallState | ChannelId | ProgressIndicator | Display
      | CallingNumber | CalledNumber | RestartIndicator | SendingComplete)


