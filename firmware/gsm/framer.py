"""AT framer: bytes in, lines and SMS prompts out. Never raises on any input."""
from __future__ import annotations

from typing import Iterator

PROMPT = object()  # the "> " of AT+CMGS, which comes with no line end
MAX_LINE = 4096  # a longer run without a line end is garbage: dropped to resync

FINAL_OK = ("OK",)
FINAL_ERROR = ("ERROR", "NO CARRIER", "BUSY", "NO ANSWER", "NO DIALTONE", "COMMAND NOT SUPPORT",
               "TOO MANY PARAMETERS")
FINAL_PREFIXES = ("+CME ERROR:", "+CMS ERROR:")


def is_final(line: str) -> bool:
    """A final result code: the end of a command's response."""
    return (line in FINAL_OK or line in FINAL_ERROR or line.startswith(FINAL_PREFIXES)
            or line == "CONNECT" or line.startswith("CONNECT "))


class ATFramer:
    """Split a modem's byte stream into lines (``\\r\\n``, bare ``\\r`` or ``\\n``) and prompts."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.dropped = 0  # bytes thrown away as garbage

    def feed(self, data: bytes) -> Iterator[object]:
        """Add bytes; yield each complete line (str, stripped, non-empty) or PROMPT."""
        self._buf += data
        while True:
            cut = _first_eol(self._buf)
            if cut < 0:
                break
            raw = bytes(self._buf[:cut])
            del self._buf[:cut + 1]
            line = _clean(raw)
            if line == ">" or line == "> ":
                yield PROMPT
            elif line:
                yield line
        stripped = bytes(self._buf).lstrip(b"\r\n\x00")
        if stripped in (b"> ", b">"):
            self._buf.clear()
            yield PROMPT
        elif len(self._buf) > MAX_LINE:
            self.dropped += len(self._buf)
            self._buf.clear()

    def reset(self) -> None:
        self._buf.clear()


def _first_eol(buf: bytearray) -> int:
    cr = buf.find(b"\r")
    lf = buf.find(b"\n")
    if cr < 0:
        return lf
    if lf < 0:
        return cr
    return min(cr, lf)


def _clean(raw: bytes) -> str:
    # Modems speak printable ASCII (UCS2 and PDUs travel as hex); noise on the line shows up as
    # NULs and high bytes, which are dropped so a result code glued to noise is still found.
    return bytes(b for b in raw if 32 <= b < 127).decode("ascii").strip()
