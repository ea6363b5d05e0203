"""Q.921 (LAPD) frames, modulo 128, and the data link of one D-channel (user or network role)."""
from __future__ import annotations

import asyncio
import enum
from collections import deque
from dataclasses import dataclass
from typing import Callable

import structlog

from firmware.clock import Clock
from firmware.errors import Msg
from firmware.e1.q931 import DecodeError

log = structlog.get_logger(__name__)

# Supervisory frames: bits 3-4 of the first control octet.
_S_KINDS = {0x01: "RR", 0x05: "RNR", 0x09: "REJ"}
# Unnumbered frames with the P/F bit masked out.
_U_KINDS = {0x6F: "SABME", 0x63: "UA", 0x43: "DISC", 0x0F: "DM", 0x87: "FRMR", 0x03: "UI",
            0xAF: "XID"}
_S_CODES = {v: k for k, v in _S_KINDS.items()}
_U_CODES = {v: k for k, v in _U_KINDS.items()}


@dataclass(frozen=True, slots=True)
class Frame:
    """One LAPD frame. ``kind`` is I, RR, RNR, REJ, SABME, UA, DISC, DM, FRMR, UI or XID."""

    kind: str
    cr: int = 0
    sapi: int = 0
    tei: int = 0
    pf: int = 0
    ns: int = 0
    nr: int = 0
    info: bytes = b""

    def encode(self) -> bytes:
        addr = bytes([self.sapi << 2 | self.cr << 1, self.tei << 1 | 1])
        if self.kind == "I":
            return addr + bytes([self.ns << 1, self.nr << 1 | self.pf]) + self.info
        if self.kind in _S_CODES:
            return addr + bytes([_S_CODES[self.kind], self.nr << 1 | self.pf])
        return addr + bytes([_U_CODES[self.kind] | self.pf << 4]) + self.info


def decode_frame(data: bytes) -> Frame:
    """Decode one LAPD frame (without flags and FCS); DecodeError names the offending offset."""
    data = bytes(data)
    if len(data) < 3:
        raise DecodeError(f"LAPD frame too short ({len(data)} bytes)", len(data))
    if data[0] & 0x01:
        raise DecodeError("address octet 1 has the EA bit set (2-octet address expected)", 0)
    if not data[1] & 0x01:
        raise DecodeError("address octet 2 lacks the EA bit", 1)
    sapi, cr, tei = data[0] >> 2, (data[0] >> 1) & 1, data[1] >> 1
    c = data[2]
    if not c & 0x01:
        if len(data) < 4:
            raise DecodeError("I-frame lacks its second control octet", 3)
        return Frame("I", cr, sapi, tei, data[3] & 1, c >> 1, data[3] >> 1, data[4:])
    if c & 0x03 == 0x01:
        kind = _S_KINDS.get(c)
        if kind is None:
            raise DecodeError(f"unknown supervisory control octet {c:#04x}", 2)
        if len(data) != 4:
            raise DecodeError(f"{kind} frame must be 4 bytes, got {len(data)}", min(len(data), 4))
        return Frame(kind, cr, sapi, tei, data[3] & 1, 0, data[3] >> 1)
    kind = _U_KINDS.get(c & 0xEF)
    if kind is None:
        raise DecodeError(f"unknown unnumbered control octet {c:#04x}", 2)
    return Frame(kind, cr, sapi, tei, (c >> 4) & 1, info=data[3:])


class Role(str, enum.Enum):
    USER = "user"
    NETWORK = "network"


class LinkState(str, enum.Enum):
    DOWN = "down"  # TEI assigned, no multiple-frame operation
    AWAITING_ESTABLISHMENT = "awaiting_establishment"
    ESTABLISHED = "established"
    TIMER_RECOVERY = "timer_recovery"


@dataclass
class LinkTimers:
    t200: float = 1.0
    n200: int = 3
    t203: float = 10.0
    k: int = 7
    reestablish: float = 2.0  # pause before trying SABME again after establishment failed


class DataLink:
    """Multiple-frame operation on SAPI 0, TEI 0 (point to point, as on a PRI)."""

    def __init__(self, role: Role, send: Callable[[bytes], None], *, clock: Clock,
                 timers: LinkTimers | None = None, initiate: bool = True, name: str = "") -> None:
        self.role, self.clock, self.name = Role(role), clock, name
        self.timers = timers or LinkTimers()
        self.initiate = initiate
        self._send_raw = send
        self.state = LinkState.DOWN
        self.on_up: Callable[[], None] = lambda: None
        self.on_down: Callable[[str], None] = lambda reason: None
        self.on_message: Callable[[bytes], None] = lambda info: None
        self.on_frame: Callable[[bytes, bool], None] = lambda raw, outgoing: None
        self.counters = {"tx": 0, "rx": 0, "retransmissions": 0, "rejects": 0,
                         "establishments": 0, "failures": 0, "bad_frames": 0}
        self._vs = self._va = self._vr = 0
        self._sent: dict[int, bytes] = {}  # N(S) -> info of I-frames not yet acknowledged
        self._queue: deque[bytes] = deque()
        self._rc = 0
        self._acked_vr = 0  # the N(R) we last told the peer: an RR is owed when V(R) moves past it
        self._peer_busy = False
        self._reject_sent = False
        self._t200: asyncio.TimerHandle | None = None
        self._t203: asyncio.TimerHandle | None = None
        self._retry: asyncio.TimerHandle | None = None
        self._running = False

    # -- public ---------------------------------------------------------------------------
    def start(self) -> None:
        self._running = True
        if self.initiate:
            self._establish()

    def stop(self) -> None:
        self._running = False
        for h in (self._t200, self._t203, self._retry):
            if h:
                h.cancel()
        self._t200 = self._t203 = self._retry = None
        if self.state is not LinkState.DOWN:
            self._go_down("stopped", notify=False)

    def send_message(self, info: bytes) -> None:
        """Queue a layer 3 message for acknowledged transfer (dropped while the link is down)."""
        if self.state in (LinkState.DOWN, LinkState.AWAITING_ESTABLISHMENT):
            log.debug("lapd.drop_while_down", link=self.name)
            return
        self._queue.append(info)
        self._push()

    @property
    def is_up(self) -> bool:
        return self.state in (LinkState.ESTABLISHED, LinkState.TIMER_RECOVERY)

    def receive(self, raw: bytes) -> None:
        """Handle one frame from the transport; malformed frames are counted and dropped."""
        try:
            f = decode_frame(raw)
        except DecodeError as exc:
            self.counters["bad_frames"] += 1
            log.debug("lapd.bad_frame", link=self.name, error=str(exc))
            return
        if f.sapi != 0 or f.tei != 0:
            return
        self.counters["rx"] += 1
        self.on_frame(raw, False)
        is_command = f.cr == (1 if self.role is Role.USER else 0)
        getattr(self, f"_rx_{f.kind.lower()}", self._rx_other)(f, is_command)

    # -- frames out -------------------------------------------------------------------------
    def _cr(self, command: bool) -> int:
        # C/R = 1 on network commands and user responses.
        return int(command) if self.role is Role.NETWORK else int(not command)

    def _tx(self, kind: str, command: bool, pf: int = 0, ns: int = 0, nr: int = 0,
            info: bytes = b"") -> None:
        raw = Frame(kind, self._cr(command), 0, 0, pf, ns, nr, info).encode()
        if kind in ("I", "RR", "RNR", "REJ"):
            self._acked_vr = nr
        self.counters["tx"] += 1
        self.on_frame(raw, True)
        self._send_raw(raw)

    # -- timers ------------------------------------------------------------------------------
    def _start_t200(self) -> None:
        if self._t200:
            self._t200.cancel()
        self._t200 = asyncio.get_running_loop().call_later(self.clock.real(self.timers.t200),
                                                          self._t200_expired)

    def _stop_t200(self) -> None:
        if self._t200:
            self._t200.cancel()
            self._t200 = None

    def _start_t203(self) -> None:
        if self._t203:
            self._t203.cancel()
        self._t203 = asyncio.get_running_loop().call_later(self.clock.real(self.timers.t203),
                                                          self._t203_expired)

    def _stop_t203(self) -> None:
        if self._t203:
            self._t203.cancel()
            self._t203 = None

    def _t200_expired(self) -> None:
        self._t200 = None
        if self.state is LinkState.AWAITING_ESTABLISHMENT:
            if self._rc >= self.timers.n200:
                self.counters["failures"] += 1
                self._go_down(Msg("no answer to SABME (T200 x N200)"))
                return
            self._rc += 1
            self._tx("SABME", True, pf=1)
            self._start_t200()
        elif self.state is LinkState.ESTABLISHED:
            self.state, self._rc = LinkState.TIMER_RECOVERY, 0
            self._enquire()
        elif self.state is LinkState.TIMER_RECOVERY:
            if self._rc >= self.timers.n200:
                self.counters["failures"] += 1
                self._link_lost(Msg("peer stopped answering (T200 x N200)"))
                return
            self._enquire()

    def _t203_expired(self) -> None:
        self._t203 = None
        if self.state is LinkState.ESTABLISHED:
            self.state, self._rc = LinkState.TIMER_RECOVERY, 0
            self._enquire()

    def _enquire(self) -> None:
        self._rc += 1
        self._tx("RR", True, pf=1, nr=self._vr)
        self._start_t200()

    # -- state changes -----------------------------------------------------------------------
    def _establish(self) -> None:
        if self._retry:
            self._retry.cancel()
            self._retry = None
        self._reset_vars()
        self.state, self._rc = LinkState.AWAITING_ESTABLISHMENT, 0
        self._stop_t203()
        self._tx("SABME", True, pf=1)
        self._start_t200()

    def _reset_vars(self) -> None:
        self._vs = self._va = self._vr = self._acked_vr = 0
        self._sent.clear()
        self._peer_busy = self._reject_sent = False

    def _established(self) -> None:
        self.state = LinkState.ESTABLISHED
        self.counters["establishments"] += 1
        self._stop_t200()
        self._start_t203()
        log.info("lapd.up", link=self.name, role=self.role.value)
        self.on_up()

    def _go_down(self, reason: str, notify: bool = True) -> None:
        was_up = self.is_up
        self.state = LinkState.DOWN
        self._stop_t200()
        self._stop_t203()
        self._reset_vars()
        self._queue.clear()
        if notify:
            log.info("lapd.down", link=self.name, reason=reason)
            if was_up:
                self.on_down(reason)
            if self._running and self.initiate and self._retry is None:
                self._retry = asyncio.get_running_loop().call_later(
                    self.clock.real(self.timers.reestablish), self._establish)

    def _link_lost(self, reason: str) -> None:
        """Multiple-frame operation failed: tell layer 3, then try to establish again."""
        self.on_down(reason)
        self._queue.clear()
        if self.initiate and self._running:
            self._establish()
        else:
            self._go_down(reason, notify=False)

    # -- frames in ---------------------------------------------------------------------------
    def _rx_sabme(self, f: Frame, is_command: bool) -> None:
        if not is_command:
            return
        was_up = self.is_up
        self._tx("UA", False, pf=f.pf)
        self._reset_vars()
        self._queue.clear()
        if was_up:
            log.info("lapd.reset_by_peer", link=self.name)
            self.on_down(Msg("data link reset by peer"))
        if self.state is LinkState.AWAITING_ESTABLISHMENT:
            return  # our own SABME crossed the peer's; its UA completes establishment
        self._established()

    def _rx_ua(self, f: Frame, is_command: bool) -> None:
        if self.state is LinkState.AWAITING_ESTABLISHMENT and f.pf:
            self._established()

    def _rx_disc(self, f: Frame, is_command: bool) -> None:
        if not is_command:
            return
        if self.is_up:
            self._tx("UA", False, pf=f.pf)
            self._go_down(Msg("peer released the link"))
        else:
            self._tx("DM", False, pf=f.pf)

    def _rx_dm(self, f: Frame, is_command: bool) -> None:
        if self.state is LinkState.AWAITING_ESTABLISHMENT and f.pf:
            self._go_down(Msg("peer refused establishment (DM)"))
        elif self.is_up and not f.pf:
            self._link_lost(Msg("peer is in disconnected mode (DM)"))

    def _rx_frmr(self, f: Frame, is_command: bool) -> None:
        if self.is_up:
            self._link_lost(Msg("frame reject from peer"))

    def _rx_other(self, f: Frame, is_command: bool) -> None:
        if f.kind == "UI" and f.info:
            self.on_message(f.info)

    def _nr_valid(self, nr: int) -> bool:
        return (nr - self._va) % 128 <= (self._vs - self._va) % 128

    def _ack(self, nr: int) -> None:
        while self._va != nr:
            self._sent.pop(self._va, None)
            self._va = (self._va + 1) % 128

    def _rx_i(self, f: Frame, is_command: bool) -> None:
        if not self.is_up:
            if f.pf and self.state is LinkState.DOWN:
                self._tx("DM", False, pf=1)
            return
        if not self._nr_valid(f.nr):
            self._link_lost(Msg("N(R) sequence error"))
            return
        accepted = f.ns == self._vr
        if accepted:
            self._vr = (self._vr + 1) % 128
            self._reject_sent = False
            if f.pf:
                self._tx("RR", False, pf=1, nr=self._vr)
        elif not self._reject_sent:
            self._reject_sent = True
            self.counters["rejects"] += 1
            self._tx("REJ", False, pf=f.pf, nr=self._vr)
        elif f.pf:
            self._tx("RR", False, pf=1, nr=self._vr)
        self._after_nr(f.nr, retransmit=False, final=False)
        if accepted and f.info:
            self.on_message(f.info)  # a reply sent from here carries the acknowledgement
        if self._acked_vr != self._vr and self.is_up:
            self._tx("RR", False, nr=self._vr)

    def _rx_supervisory(self, f: Frame, is_command: bool) -> None:
        if not self.is_up:
            return
        self._peer_busy = f.kind == "RNR"
        if is_command and f.pf:
            self._tx("RR", False, pf=1, nr=self._vr)
        if not self._nr_valid(f.nr):
            self._link_lost(Msg("N(R) sequence error"))
            return
        self._after_nr(f.nr, retransmit=f.kind == "REJ",
                       final=not is_command and bool(f.pf))

    _rx_rr = _rx_rnr = _rx_rej = _rx_supervisory

    def _after_nr(self, nr: int, *, retransmit: bool, final: bool) -> None:
        advanced = nr != self._va
        self._ack(nr)
        if self.state is LinkState.TIMER_RECOVERY:
            if not final:
                self._push()
                return
            self.state = LinkState.ESTABLISHED
            self._stop_t200()
            retransmit = True
        if retransmit and self._vs != self._va:
            self._stop_t200()
            self._retransmit_from(nr)
            return
        if self._va == self._vs:
            self._stop_t200()
            self._start_t203()
        elif advanced:
            self._start_t200()
        self._push()

    def _retransmit_from(self, nr: int) -> None:
        pending = [self._sent[(nr + i) % 128] for i in range((self._vs - nr) % 128)]
        self._vs = nr
        self._sent = {n: v for n, v in self._sent.items() if (n - nr) % 128 >= len(pending)}
        self.counters["retransmissions"] += len(pending)
        self._queue.extendleft(reversed(pending))
        self._push()

    def _push(self) -> None:
        if self.state is not LinkState.ESTABLISHED or self._peer_busy:
            return
        while self._queue and (self._vs - self._va) % 128 < self.timers.k:
            info = self._queue.popleft()
            self._sent[self._vs] = info
            self._tx("I", True, ns=self._vs, nr=self._vr, info=info)
            self._vs = (self._vs + 1) % 128
            self._stop_t203()
            if self._t200 is None:
                self._start_t200()
