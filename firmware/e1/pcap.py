"""pcap files of D-channel frames, link type 203 (LINKTYPE_LINUX_LAPD), readable by Wireshark."""
from __future__ import annotations

import struct
import time
from typing import BinaryIO

LINKTYPE_LAPD = 203
LINKTYPE_LINUX_LAPD = 177
_ETH_P_LAPD = 0x0030
_ARPHRD_LAPD = 8445
_PACKET_HOST, _PACKET_OUTGOING = 0, 4


def lapd_pseudo_header(*, outgoing: bool, we_network: bool) -> bytes:
    """The 16-byte sll-like header: packet type (direction), address byte 0 = we are network."""
    addr = bytes([1 if we_network else 0]) + bytes(7)
    return struct.pack(">HHH8sH", _PACKET_OUTGOING if outgoing else _PACKET_HOST, _ARPHRD_LAPD,
                       1, addr, _ETH_P_LAPD)


class PcapWriter:
    """Classic pcap (microsecond stamps), one LAPD frame per record (plus the 177 pseudo-header)."""

    def __init__(self, out: BinaryIO, *, we_network: bool = False, clock=time.time,
                 linktype: int = LINKTYPE_LAPD) -> None:
        if linktype not in (LINKTYPE_LAPD, LINKTYPE_LINUX_LAPD):
            raise ValueError(f"link type must be 203 or 177, got {linktype}")
        self._out, self._we_network, self._clock = out, we_network, clock
        self.linktype = linktype
        self.count = 0
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype))

    def write(self, frame: bytes, *, outgoing: bool, ts: float | None = None) -> None:
        ts = self._clock() if ts is None else ts
        rec = frame
        if self.linktype == LINKTYPE_LINUX_LAPD:
            rec = lapd_pseudo_header(outgoing=outgoing, we_network=self._we_network) + frame
        sec = int(ts)
        self._out.write(struct.pack("<IIII", sec, int((ts - sec) * 1e6), len(rec), len(rec)))
        self._out.write(rec)
        self.count += 1

    def flush(self) -> None:
        self._out.flush()
