"""SMS/USSD text coding (3GPP TS 23.038): GSM 7-bit default alphabet, septet packing, UCS2."""
from __future__ import annotations

import gsm0338

GSM7 = "gsm7"
UCS2 = "ucs2"
OCTETS = "8bit"

ESC = 0x1B
_CODEC = gsm0338.Codec()


def _tables() -> tuple[dict[int, str], dict[int, str]]:
    """Basic and extension tables, read from the gsm0338 codec once."""
    basic: dict[int, str] = {}
    extension: dict[int, str] = {}
    for septet in range(128):
        if septet == ESC:
            continue
        basic[septet] = _CODEC.decode(bytes([septet]))[0]
        try:
            extension[septet] = _CODEC.decode(bytes([ESC, septet]))[0]
        except UnicodeDecodeError:
            pass
    return basic, extension


_BASIC, _EXTENSION = _tables()
_SEPTETS: dict[str, bytes] = {ch: bytes([ESC, v]) for v, ch in _EXTENSION.items()}
_SEPTETS.update({ch: bytes([v]) for v, ch in _BASIC.items()})


def gsm7_septets(text: str) -> bytes | None:
    """Septet values of ``text`` (extension characters as ESC pairs), or None if a character does not fit."""
    try:
        return b"".join(_SEPTETS[ch] for ch in text)
    except KeyError:
        return None


def gsm7_decode(septets: bytes) -> str:
    """Text of septet values; an ESC before an unknown value shows the basic character (23.038 §6.2.1.1)."""
    out: list[str] = []
    escaped = False
    for value in septets:
        value &= 0x7F
        if escaped:
            escaped = False
            if value == ESC:  # reserved escape to a further table: shown as a space
                out.append(" ")
            else:
                out.append(_EXTENSION.get(value) or _BASIC[value])
        elif value == ESC:
            escaped = True
        else:
            out.append(_BASIC[value])
    if escaped:
        out.append(" ")
    return "".join(out)


def pack7(septets: bytes, fill_bits: int = 0) -> bytes:
    """Pack septets LSB first into octets, after ``fill_bits`` zero bits."""
    acc, nbits, out = 0, fill_bits, bytearray()
    for value in septets:
        acc |= (value & 0x7F) << nbits
        nbits += 7
        while nbits >= 8:
            out.append(acc & 0xFF)
            acc >>= 8
            nbits -= 8
    if nbits:
        out.append(acc & 0xFF)
    return bytes(out)


def unpack7(data: bytes, count: int, fill_bits: int = 0) -> bytes:
    """``count`` septets from packed ``data`` after ``fill_bits``; ValueError when data is short."""
    need = fill_bits + 7 * count
    if need > 8 * len(data):
        raise ValueError(f"{count} septets need {(need + 7) // 8} octets, have {len(data)}")
    bits = int.from_bytes(data, "little") >> fill_bits
    return bytes((bits >> (7 * i)) & 0x7F for i in range(count))


def ucs2_encode(text: str) -> bytes:
    """UTF-16BE octets (what phones send as "UCS2"); ValueError on a lone surrogate."""
    return text.encode("utf-16-be")


def ucs2_decode(data: bytes) -> str:
    """Text of UTF-16BE octets; a lone surrogate or odd octet becomes U+FFFD."""
    return data.decode("utf-16-be", errors="replace")


def ucs2_units(text: str) -> int:
    """Length in UTF-16 code units (characters beyond the BMP take two)."""
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)


def ucs2_hex(text: str) -> str:
    """Hex string for ``AT+CSCS="UCS2"`` text mode (text, numbers, USSD)."""
    return ucs2_encode(text).hex().upper()


def ucs2_from_hex(hexstr: str) -> str:
    """Text of a ``AT+CSCS="UCS2"`` hex string; ValueError when not hex."""
    return ucs2_decode(bytes.fromhex(hexstr))


def alphabet_for(text: str) -> str:
    """GSM7 when every character fits the default alphabet or its extension, else UCS2."""
    return GSM7 if gsm7_septets(text) is not None else UCS2


def split_text(text: str, alphabet: str, single: int, part: int) -> list[str]:
    """Split into segments of at most ``single`` units (one message) or ``part`` units each.

    Units are septets (GSM7) or UTF-16 code units (UCS2); a segment never ends inside an
    escape pair or a surrogate pair because whole characters are counted.
    """
    if alphabet == GSM7:
        costs = [len(_SEPTETS[ch]) for ch in text]
    else:
        costs = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
    if sum(costs) <= single:
        return [text]
    segments, start, used = [], 0, 0
    for i, units in enumerate(costs):
        if used + units > part:
            segments.append(text[start:i])
            start, used = i, 0
        used += units
    segments.append(text[start:])
    return segments


def text_mode_fits(text: str) -> bool:
    """True when ``text`` goes as one SMS in text mode: 160 GSM septets, or 70 UCS2 units."""
    septets = gsm7_septets(text)
    if septets is not None:
        return len(septets) <= 160
    return ucs2_units(text) <= 70
