"""One E1 ISDN PRI span, user side (TE): Q.931 call control per B-channel, and the Driver.

The Q.931 state of each call is protocol state only; the line state lives in the line manager's
core, which this driver feeds with ``HwReport`` events.
"""
from __future__ import annotations

import asyncio
import itertools
import os
from dataclasses import dataclass, field
from typing import Awaitable, Callable

import structlog

from cext import linestate_codes as codes
from firmware.clock import Clock
from firmware.driverapi import HwReport, Report
from firmware.e1 import q931
from firmware.e1.lapd import DataLink, LinkTimers, Role
from firmware.e1.q931 import (BearerCapability, CalledNumber, CallingNumber, CallState, Cause,
                              ChannelId, Message, MessageType as MT, RestartIndicator,
                              SendingComplete)
from firmware.e1.transports import FrameTransport
from firmware.errors import Msg
from firmware.lineapi import LineError
from firmware.lineaudio import FdAudio, LineAudio

E1_PREFILL_FRAMES = 1  # see attach_media

log = structlog.get_logger(__name__)

E1_TIMESLOTS = tuple(list(range(1, 16)) + list(range(17, 32)))
STATE_NAMES = {0: "null", 1: "call_initiated", 3: "outgoing_call_proceeding", 4: "call_delivered",
               6: "call_present", 7: "call_received", 8: "connect_request",
               9: "incoming_call_proceeding", 10: "active", 11: "disconnect_request",
               12: "disconnect_indication", 19: "release_request"}
CAUSE_LINK_LOST = 41  # temporary failure: the D-channel went down under the call
# Mandatory IEs (network to user) whose absence or bad contents stop the message (Q.931 5.8.6).
MANDATORY = {MT.SETUP: (BearerCapability, ChannelId), MT.DISCONNECT: (Cause,),
             MT.RESTART: (RestartIndicator,), MT.STATUS: (Cause, CallState)}
_CLEARING = (MT.DISCONNECT, MT.RELEASE, MT.RELEASE_COMPLETE)


@dataclass
class SpanConfig:
    """Timers in seconds (Q.931 defaults as in libpri/ETSI)."""

    name: str = "e1-0"
    timeslots: tuple[int, ...] = E1_TIMESLOTS
    blocked: frozenset[int] = frozenset()
    t303: float = 4.0
    t305: float = 30.0
    t308: float = 4.0
    t310: float = 10.0
    t313: float = 4.0
    t316: float = 120.0  # RESTART unacknowledged (sent twice, then the channels are used anyway)
    ring_timeout_s: float = 60.0
    bridge_delay_s: float = 0.2
    calling_number: str | None = None
    link: LinkTimers = field(default_factory=LinkTimers)
    reconnect_s: float = 2.0


@dataclass
class Call:
    cref: int
    ours: bool  # we allocated the call reference (outbound call)
    timeslot: int
    state: int = 0
    caller: str | None = None
    cleared_by_us: bool = False
    release_cause: int | None = None  # the cause first reported or sent for this call
    release_reported: bool = False
    proceeding_reported: bool = False
    retries: int = 0
    cause: int = 16
    setup: Message | None = None  # kept for the T303 retransmission
    timer: asyncio.TimerHandle | None = None
    ring_timer: asyncio.TimerHandle | None = None
    ring_timeout_s: float | None = None  # this call's, when longer than the span's (the law)
    yielded: bool = False  # lost a glare: off its channel, waiting for the network's clearing
    ended: asyncio.Event = field(default_factory=asyncio.Event)  # its channel is free again

    def stop_timers(self) -> None:
        for h in (self.timer, self.ring_timer):
            if h:
                h.cancel()
        self.timer = self.ring_timer = None


TransportFactory = Callable[[], Awaitable[FrameTransport]]


class E1Span:
    """A PRI span as a Driver: 30 B-channels, local channel i = ``config.timeslots[i]``."""

    kind = "e1"

    def __init__(self, config: SpanConfig, transport: TransportFactory, *,
                 clock: Clock | None = None,
                 capture: Callable[[bytes, bool], None] | None = None) -> None:
        self.config, self.name = config, config.name
        self.clock = clock or Clock()
        self._factory = transport
        self._capture = capture
        self._report: Report = lambda r: None
        self._transport: FrameTransport | None = None
        self.link = DataLink(Role.USER, self._send_frame, clock=self.clock,
                             timers=config.link, name=config.name)
        self.link.on_up, self.link.on_down = self._link_up, self._link_down
        self.link.on_message = self._on_message
        self.link.on_frame = self._on_frame
        self.blocked = set(config.blocked)
        self.calls: dict[tuple[int, bool], Call] = {}  # (cref, ours) -> call
        self.by_slot: dict[int, Call] = {}
        self._crefs = itertools.cycle(range(1, 0x8000))
        self._running = False
        self._reconnect: asyncio.TimerHandle | None = None
        self._connecting: asyncio.Task | None = None
        self._timers: set[asyncio.TimerHandle] = set()
        self.simulator = None  # the NT simulator behind a simulated span
        # B-channel audio: timeslot -> an open DAHDI channel file (path template from the
        # profile) or the simulator's socket; None: this span's voice does not pass the box.
        self.bchannel: Callable[[int], int | object] | None = None
        self._legs: dict[int, object] = {}  # timeslot -> media plane leg
        self._bfiles: dict[int, int | object] = {}  # timeslot -> channel file, open for the span
        self._voices: dict[int, FdAudio] = {}  # timeslot -> the call's audio being carried
        self.closers: list[Callable[[], Awaitable[None]]] = []  # run by stop()
        self._tags: dict[int, dict] = {}  # timeslot -> its call's log fields (id, campaign)
        self.stats = {"outbound": 0, "inbound": 0, "glare": 0, "protocol_errors": 0,
                      "restarts": 0, "link_losses": 0, "bad_messages": 0, "restarts_sent": 0}
        self._restarting: asyncio.TimerHandle | None = None  # our RESTART awaits its ACK
        self._restart_tries = 0
        self._to_restart: set[int] | None = None  # channels restarted one by one, not yet ACKed

    # -- Driver -------------------------------------------------------------------------------
    def channel_names(self) -> list[str]:
        return [f"{self.name}/{ts}" for ts in self.config.timeslots]

    def tag_call(self, channel: int, tags: dict) -> None:
        """The line manager names the call on this channel (its id, the campaign)."""
        self._tags[self._slot(channel)] = tags

    def _log(self, ts: int):
        """The logger for lines about the call on timeslot ``ts``."""
        return log.bind(span=self.name, line=f"{self.name}/{ts}", timeslot=ts,
                        **self._tags.get(ts, {}))

    def attach_media(self, plane) -> None:
        """Every B-channel gets a line leg when the span's channels can be opened. A B-channel
        is clocked by the span (DAHDI hands over one 20 ms block every 20 ms, as chan_dahdi
        relies on with no jitter buffer), so one frame of prefill covers the phase between
        the span and the plane's tick, and it stays fixed (a GSM module's adapts to its USB jitter)."""
        if self.bchannel is None or self._legs:
            return
        for ts, name in zip(self.config.timeslots, self.channel_names()):
            self._legs[ts] = plane.add_leg(name, "line", prefill=E1_PREFILL_FRAMES)

    async def start(self, report: Report) -> None:
        self._report, self._running = report, True
        for i, ts in enumerate(self.config.timeslots):
            self._emit(i, codes.EV_HW_OUT_OF_SERVICE,
                       reason=Msg("blocked for maintenance") if ts in self.blocked
                       else Msg("D-channel not established yet"))
        await self._connect()

    async def stop(self) -> None:
        self._running = False
        if self._reconnect:
            self._reconnect.cancel()
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
            await asyncio.gather(self._connecting, return_exceptions=True)
        for h in self._timers:
            h.cancel()
        self._timers.clear()
        if self._restarting is not None:
            self._restarting.cancel()
            self._restarting = None
        for call in list(self.calls.values()):
            call.stop_timers()
            call.ended.set()  # a hangup still waiting for it returns: the span is gone
        for ts in list(self._voices):
            self._voice_down(ts)
        for f in self._bfiles.values():
            f.close() if hasattr(f, "close") else os.close(f)
        self._bfiles.clear()
        self.link.stop()
        if self._transport is not None:
            await self._transport.close()
            self._transport = None
        for close in self.closers:
            await close()

    @property
    def ring_timeout_s(self) -> float:
        return self.config.ring_timeout_s

    async def dial(self, channel: int, number: str, *, ring_timeout_s: float | None = None
                   ) -> None:
        ts = self._slot(channel)
        if ts in self.by_slot:  # a call (maybe an inbound one just offered) holds the channel
            raise LineError(f"{self.channel_names()[channel]}: channel has a call "
                            f"({STATE_NAMES[self.by_slot[ts].state]})")
        digits, ton = (number[1:], 1) if number.startswith("+") else (number, 0)
        refuse = None
        if not digits or not all(c in "0123456789*#" for c in digits):
            refuse = 28
        elif ts in self.blocked:
            refuse = 44
        elif not self.link.is_up:
            refuse = 38
        if refuse is not None:
            self._emit(channel, codes.EV_HW_RELEASE, cause=refuse, reason=q931_reason(refuse))
            self._emit(channel, codes.EV_HW_RELEASED, cause=refuse)
            return
        cref = self._new_cref()
        call = Call(cref, True, ts, state=1, ring_timeout_s=ring_timeout_s)
        self._add(call)
        self.stats["outbound"] += 1
        ies = [BearerCapability(), ChannelId(ts, exclusive=True), CalledNumber(digits, ton, 1),
               SendingComplete()]
        if self.config.calling_number:  # our official number, presentation allowed (137-FZ)
            own = self.config.calling_number
            ies.append(CallingNumber(own.lstrip("+"), 1 if own.startswith("+") else 0,
                                     presentation=0))
        call.setup = Message(MT.SETUP, cref, False, ies)
        self._send(call.setup)
        self._arm(call, self.config.t303, self._t303)
        self._log(ts).debug("e1.dial", cref=cref)
        self._emit(channel, codes.EV_HW_DIALING)

    async def hangup(self, channel: int, cause: int = 16) -> None:
        """Clear the call on ``channel``; returns once it is over (the network's RELEASE, or
        T305/T308), its release reported, as a module's hangup returns after its OK."""
        call = self.by_slot.get(self._slot(channel))
        if call is None:
            self._emit(channel, codes.EV_HW_RELEASED)
            return
        call.cleared_by_us = True
        if call.state not in (11, 12, 19, 0):
            call.cause = cause
            self._disconnect(call, cause)
        await call.ended.wait()

    async def answer(self, channel: int) -> None:
        call = self.by_slot.get(self._slot(channel))
        if call is None or call.ours or call.state not in (6, 7, 9):
            raise LineError(f"{self.channel_names()[channel]}: no inbound call to answer")
        call.state = 8
        self._send(Message(MT.CONNECT, call.cref, True, [ChannelId(call.timeslot)]))
        self._arm(call, self.config.t313, self._t313)

    async def bridge(self, channel: int, position: str) -> None:
        call = self.by_slot.get(self._slot(channel))
        if call is None or call.state != 10:
            raise LineError(f"{self.channel_names()[channel]}: no active call to bridge")

        def confirmed() -> None:
            self._timers.discard(handle)
            if self.by_slot.get(call.timeslot) is call and call.state == 10:
                self._emit(channel, codes.EV_HW_BRIDGED, info={"position": position})

        handle = asyncio.get_running_loop().call_later(
            self.clock.real(self.config.bridge_delay_s), confirmed)
        self._timers.add(handle)

    def health(self, channel: int) -> dict:
        ts = self._slot(channel)
        call = self.by_slot.get(ts)
        return {"span": self.name, "timeslot": ts, "link": self.link.state.value,
                "blocked": ts in self.blocked,
                "call_state": STATE_NAMES.get(call.state if call else 0, "unknown"),
                "cref": call.cref if call else None, "link_counters": dict(self.link.counters),
                "span_counters": dict(self.stats), "number": self.config.calling_number,
                "number_source": "profile" if self.config.calling_number else None,
                "caller_id": "shown" if self.config.calling_number else "unknown"}

    # -- maintenance ----------------------------------------------------------------------------
    def block(self, channel: int) -> None:
        """Take a channel out of use (inbound SETUPs for it get cause 44)."""
        ts = self._slot(channel)
        self.blocked.add(ts)
        if ts not in self.by_slot:
            self._emit(channel, codes.EV_HW_OUT_OF_SERVICE,
                       reason=Msg("blocked for maintenance"))

    def unblock(self, channel: int) -> None:
        ts = self._slot(channel)
        self.blocked.discard(ts)
        if self.link.is_up:
            self._emit(channel, codes.EV_HW_IN_SERVICE)

    def restart(self, channel: int | None = None) -> None:
        """Send RESTART for one channel or the whole interface, clearing our calls there."""
        slots = [self._slot(channel)] if channel is not None else list(self.config.timeslots)
        for ts in slots:
            if ts in self.by_slot:
                self._drop(self.by_slot[ts], CAUSE_LINK_LOST, "restarted by us")
        ies = ([RestartIndicator(0), ChannelId(slots[0])] if channel is not None
               else [RestartIndicator(7)])
        self._send(Message(MT.RESTART, 0, False, ies))

    # -- transport and link ---------------------------------------------------------------------
    async def _connect(self) -> None:
        self._reconnect = None
        if not self._running:
            return
        tr = None
        try:
            tr = await self._factory()
            tr.on_frame, tr.on_lost = self.link.receive, self._transport_lost
            await tr.open()
        except (OSError, ConnectionError) as exc:
            log.warning("e1.transport.open_failed", span=self.name, error=str(exc))
            if tr is not None:
                await tr.close()
            self._schedule_reconnect()
            return
        self._transport = tr
        self.link.start()

    def _schedule_reconnect(self) -> None:
        if self._running and self._reconnect is None:
            loop = asyncio.get_running_loop()
            self._reconnect = loop.call_later(self.clock.real(self.config.reconnect_s),
                                              self._reconnect_now)

    def _reconnect_now(self) -> None:
        self._reconnect = None
        self._connecting = asyncio.get_running_loop().create_task(self._connect())

    def _transport_lost(self, reason: str) -> None:
        log.warning("e1.transport.lost", span=self.name, reason=reason)
        was_up = self.link.is_up
        self.link.stop()
        if was_up:
            self._link_down(reason)
        self._transport = None
        self._schedule_reconnect()

    def _send_frame(self, raw: bytes) -> None:
        if self._transport is not None:
            self._transport.send(raw)

    def _on_frame(self, raw: bytes, outgoing: bool) -> None:
        if self._capture:
            self._capture(raw, outgoing)

    def _link_up(self) -> None:
        """The D-channel is up, after a start of the box or a loss in which our calls were
        dropped: RESTART all interfaces (Q.931 5.5, class 7) so the network clears whatever it
        still holds, and use the channels once it acknowledges."""
        self._restart_tries, self._to_restart = 0, None
        self._send_restart()

    def _send_restart(self) -> None:
        self._restart_tries += 1
        self.stats["restarts_sent"] += 1
        log.info("e1.restart_sent", span=self.name, attempt=self._restart_tries)
        self._send(Message(MT.RESTART, 0, False, [RestartIndicator(7)]))
        if self._restarting is not None:
            self._restarting.cancel()
        self._restarting = asyncio.get_running_loop().call_later(
            self.clock.real(self.config.t316), self._t316)

    def _restart_channels(self) -> None:
        """The network refused to restart all interfaces: RESTART each channel (class 0), as
        chan_dahdi resets channels one by one; each is used once its own ACK comes (T316)."""
        self._to_restart = {ts for ts in self.config.timeslots if ts not in self.blocked}
        for ts in sorted(self._to_restart):
            self.stats["restarts_sent"] += 1
            self._send(Message(MT.RESTART, 0, False, [RestartIndicator(0), ChannelId(ts)]))
        self._restarting = asyncio.get_running_loop().call_later(
            self.clock.real(self.config.t316), self._t316)

    def _t316(self) -> None:
        self._restarting = None
        if self._to_restart is not None:
            log.warning("e1.channel_restart_unacknowledged", span=self.name,
                        timeslots=sorted(self._to_restart))
            self._restarted()
            return
        if self._restart_tries < 2:
            self._send_restart()
            return
        log.warning("e1.restart_unacknowledged", span=self.name)
        self._restarted()  # a network that ignores RESTART: its channels are usable all the same

    def _restarted(self) -> None:
        if self._restarting is not None:
            self._restarting.cancel()
            self._restarting = None
        left, self._to_restart = self._to_restart, None
        if not self.link.is_up:
            return
        for i, ts in enumerate(self.config.timeslots):
            if ts not in self.blocked and (left is None or ts in left):
                self._emit(i, codes.EV_HW_IN_SERVICE)

    def _link_down(self, reason: str) -> None:
        self.stats["link_losses"] += 1
        if self._restarting is not None:
            self._restarting.cancel()
            self._restarting = None
        self._to_restart = None
        for call in list(self.calls.values()):
            self._drop(call, CAUSE_LINK_LOST, f"D-channel lost: {reason}")
        for i, ts in enumerate(self.config.timeslots):
            self._emit(i, codes.EV_HW_OUT_OF_SERVICE,
                       reason=Msg("D-channel down: {reason}", reason=reason))

    # -- Q.931 in ----------------------------------------------------------------------------
    def _on_message(self, info: bytes) -> None:
        try:
            msg = q931.decode_message(info)
        except q931.DecodeError as exc:
            self.stats["bad_messages"] += 1
            log.info("e1.bad_message", span=self.name, error=str(exc))
            return  # Q.931 5.8.1-5.8.3: ignore what cannot be parsed
        if msg.cref == 0 and msg.cref_len:
            self._global(msg)
            return
        call = self.calls.get((msg.cref, msg.flag))
        if call is None:
            self._unknown_cref(msg)
            return
        if call.yielded:
            self._rx_yielded(call, msg)
            return
        handler = getattr(self, f"_rx_{msg.name.lower()}", None)
        if handler is None:
            self.stats["protocol_errors"] += 1
            self._status(call, 97 if not isinstance(msg.type, MT) else 98)
            return
        if not self._check_ies(call, msg):
            return
        handler(call, msg)
        # Q.931 5.8.7: act on the message, then report the IEs we could not use.
        if msg.type not in _CLEARING and (msg.invalid or msg.unknown) and \
                self.calls.get((call.cref, call.ours)) is call:
            self.stats["protocol_errors"] += 1
            self._status(call, 100 if msg.invalid else 99)

    def _check_ies(self, call: Call | None, msg: Message) -> bool:
        """Q.931 5.8.6/5.8.7: missing or bad mandatory IEs stop the message; others get STATUS."""
        bad_ids = {ie.ident for ie in msg.invalid}
        cause = None
        for cls in MANDATORY.get(msg.type, ()):
            if cls.ID in bad_ids:
                cause = 100
            elif msg.get(cls) is None:
                cause = 96
        if cause is None and any(q931.comprehension_required(r.ident) for r in msg.unknown
                                 if r.codeset == 0):
            cause = 96
        if cause is not None:
            self.stats["protocol_errors"] += 1
            if msg.type is MT.SETUP:
                self._send(Message(MT.RELEASE_COMPLETE, msg.cref, True, [Cause(cause)]))
            elif msg.type is MT.DISCONNECT and call is not None:
                call.state, call.cause = 19, cause
                self._report_release(call, 31)
                self._send(Message(MT.RELEASE, call.cref, not call.ours, [Cause(cause)]))
                self._arm(call, self.config.t308, self._t308)
            elif msg.type not in _CLEARING and call is not None:
                self._status(call, cause)
            return msg.type in (MT.RELEASE, MT.RELEASE_COMPLETE)
        return True

    def _unknown_cref(self, msg: Message) -> None:
        if msg.type is MT.SETUP and not msg.flag:
            if self._restarting is not None:
                self._restarted()  # the network offers calls: it is done restarting
            self._inbound(msg)
        elif msg.type is MT.RELEASE_COMPLETE:
            pass
        elif msg.type is MT.STATUS_ENQUIRY:
            self._send(Message(MT.STATUS, msg.cref, not msg.flag, [Cause(30), CallState(0)]))
        elif msg.type is MT.STATUS:
            state = msg.get(CallState)
            if state is not None and state.value != 0:
                self._send(Message(MT.RELEASE_COMPLETE, msg.cref, not msg.flag, [Cause(101)]))
        else:
            self._send(Message(MT.RELEASE_COMPLETE, msg.cref, not msg.flag, [Cause(81)]))

    def _inbound(self, msg: Message) -> None:
        if not self._check_ies(None, msg):
            return
        chan: ChannelId = msg.get(ChannelId)
        ts = chan.channel
        held = self.by_slot.get(ts) if ts is not None else None
        if held is not None and held.ours and held.state == 1:
            self._yield(held)  # our SETUP crossed the network's for this channel
        free = [t for t in self.config.timeslots if t not in self.by_slot and t not in self.blocked]
        if ts is None or (ts not in free and not chan.exclusive):
            ts = free[-1] if free else None  # the network allocates from the top, we from below
        if ts is None or ts not in free:
            if ts is not None and ts in self.by_slot:
                self.stats["glare"] += 1
            cause = 34 if not free else 44
            self._send(Message(MT.RELEASE_COMPLETE, msg.cref, True, [Cause(cause)]))
            return
        calling = msg.get(CallingNumber)
        call = Call(msg.cref, False, ts, state=9, caller=calling.digits if calling else None)
        self._add(call)
        self.stats["inbound"] += 1
        self._send(Message(MT.CALL_PROCEEDING, call.cref, True, [ChannelId(ts)]))
        call.state = 7
        self._send(Message(MT.ALERTING, call.cref, True))
        called = msg.get(CalledNumber)
        self._emit(self._index(ts), codes.EV_HW_INBOUND, caller=call.caller,
                   info={"called": called.digits if called else None, "cref": call.cref})

    def _yield(self, call: Call) -> None:
        """Glare: the network's SETUP for the channel our own SETUP just asked for. The network
        side wins (Q.931 5.1.2, as libpri and the switches do): it refuses our SETUP with cause
        44, and its call takes the channel. Our call ends at once with cause 44 as a line fault
        (not the debtor's doing), so the controller dials the lead again on another line."""
        self.stats["glare"] += 1
        call.stop_timers()
        call.yielded = call.release_reported = True
        del self.by_slot[call.timeslot]
        idx = self._index(call.timeslot)
        reason = (f"glare: the network's incoming call took timeslot {call.timeslot} as we "
                  "dialed on it")
        self._log(call.timeslot).info("e1.glare", cref=call.cref)
        self._emit(idx, codes.EV_HW_RELEASE, cause=44, reason=reason, info={"line_fault": True})
        self._emit(idx, codes.EV_HW_RELEASED, cause=44)
        # The network's RELEASE COMPLETE ends our call reference; if it never comes, we do.
        call.timer = self._later(self.config.t303, self._forget_yielded, call)

    def _forget_yielded(self, call: Call) -> None:
        self._send(Message(MT.RELEASE_COMPLETE, call.cref, False, [Cause(44)]))
        self.calls.pop((call.cref, call.ours), None)

    def _rx_yielded(self, call: Call, msg: Message) -> None:
        """A message about a call that lost a glare: only its clearing matters now."""
        if msg.type is MT.RELEASE:
            self._send(Message(MT.RELEASE_COMPLETE, call.cref, False))
        elif msg.type is MT.DISCONNECT:
            self._send(Message(MT.RELEASE, call.cref, False, [Cause(44)]))
            return
        elif msg.type is not MT.RELEASE_COMPLETE:  # a network that took it after all
            self._send(Message(MT.RELEASE, call.cref, False, [Cause(44)]))
            return
        call.stop_timers()
        self.calls.pop((call.cref, call.ours), None)

    def _global(self, msg: Message) -> None:
        if msg.type is MT.RESTART and not msg.flag:
            ind = msg.get(RestartIndicator)
            if ind is None:
                self._send(Message(MT.STATUS, 0, True, [Cause(96), CallState(0)]))
                return
            self.stats["restarts"] += 1
            chans = [c.channel for c in msg.all(ChannelId) if c.channel is not None]
            slots = chans if ind.restart_class == 0 else list(self.config.timeslots)
            for ts in slots:
                if ts in self.by_slot:
                    self._drop(self.by_slot[ts], CAUSE_LINK_LOST, "RESTART from the network")
            self._send(Message(MT.RESTART_ACKNOWLEDGE, 0, True, msg.ies))
        elif msg.type is MT.RESTART_ACKNOWLEDGE and self._to_restart is not None:
            for chan in msg.all(ChannelId):  # one channel restarted: it is ours to use
                if chan.channel in self._to_restart:
                    self._to_restart.discard(chan.channel)
                    self._emit(self._index(chan.channel), codes.EV_HW_IN_SERVICE)
            if not self._to_restart:
                log.info("e1.channels_restarted", span=self.name)
                self._restarted()
        elif msg.type is MT.RESTART_ACKNOWLEDGE:
            log.info("e1.restart_acknowledged", span=self.name)
            if self._restarting is not None:
                self._restarted()
        elif msg.type is MT.STATUS and self._restarting is not None:
            cause = msg.get(Cause)  # the network cannot do our RESTART (e.g. 96, 100)
            log.warning("e1.restart_refused", span=self.name, cause=cause.value if cause else None,
                        each_channel=self._to_restart is not None)
            if self._to_restart is None:
                self._restart_channels()  # perhaps it restarts channels one at a time
            else:
                self._restarted()  # neither kind: its channels are usable all the same

    # Each handler gets a call known to be ours or theirs and the message already checked.
    def _rx_setup(self, call: Call, msg: Message) -> None:
        """The network repeated its SETUP (T303 on its side): our answers are on their way."""

    def _rx_call_proceeding(self, call: Call, msg: Message) -> None:
        if call.state == 1:
            call.state = 3
            self._arm(call, self.config.t310, self._t310)
            self._report_proceeding(call)

    _rx_setup_acknowledge = _rx_call_proceeding

    def _rx_alerting(self, call: Call, msg: Message) -> None:
        if call.state in (1, 3):
            call.state = 4
            call.stop_timers()
            self._report_proceeding(call)
            self._emit(self._index(call.timeslot), codes.EV_HW_ALERTING)
            ring = max(self.config.ring_timeout_s, call.ring_timeout_s or 0.0)
            call.ring_timer = self._later(ring, self._ring_timeout, call)

    def _rx_progress(self, call: Call, msg: Message) -> None:
        if call.state == 3 and call.timer:
            call.timer.cancel()
            call.timer = None

    def _rx_connect(self, call: Call, msg: Message) -> None:
        if call.state in (1, 3, 4):
            call.stop_timers()
            call.state = 10
            self._send(Message(MT.CONNECT_ACKNOWLEDGE, call.cref, False))
            self._report_proceeding(call)
            self._emit(self._index(call.timeslot), codes.EV_HW_ANSWER)
            self._voice_up(call)

    def _rx_connect_acknowledge(self, call: Call, msg: Message) -> None:
        if call.state == 8:
            call.stop_timers()
            call.state = 10
            self._emit(self._index(call.timeslot), codes.EV_HW_ANSWER)
            self._voice_up(call)

    def _rx_disconnect(self, call: Call, msg: Message) -> None:
        if call.state in (19, 0):
            return
        cause: Cause = msg.get(Cause)
        call.stop_timers()
        self._report_release(call, cause.value)
        call.state = 19
        self._send(Message(MT.RELEASE, call.cref, not call.ours))
        self._arm(call, self.config.t308, self._t308)

    def _rx_release(self, call: Call, msg: Message) -> None:
        self._send(Message(MT.RELEASE_COMPLETE, call.cref, not call.ours))
        self._rx_release_complete(call, msg)

    def _rx_release_complete(self, call: Call, msg: Message) -> None:
        cause = msg.get(Cause)
        self._free(call, cause.value if cause else 16)

    def _rx_status_enquiry(self, call: Call, msg: Message) -> None:
        self._status(call, 30)

    def _rx_status(self, call: Call, msg: Message) -> None:
        state: CallState = msg.get(CallState)
        if state.value == 0:  # the network forgot the call: it is gone (Q.931 5.8.11)
            self._free(call, msg.get(Cause).value)

    def _rx_information(self, call: Call, msg: Message) -> None:
        pass

    # -- timers --------------------------------------------------------------------------------
    # A call timer that expires (cause 102) means the network did not answer our signalling: a
    # link going down under the call, a switch that lost it. Nothing the debtor did: a line
    # fault, never charged to him.
    def _t303(self, call: Call) -> None:
        if call.retries == 0:
            call.retries = 1
            self._send(call.setup)
            self._arm(call, self.config.t303, self._t303)
            return
        self._report_release(call, 102, fault=True)
        self._send(Message(MT.RELEASE_COMPLETE, call.cref, False, [Cause(102)]))
        self._free(call, 102)

    def _t310(self, call: Call) -> None:
        self._report_release(call, 102, fault=True)
        self._disconnect(call, 102)

    def _t313(self, call: Call) -> None:
        self._report_release(call, 102, fault=True)
        self._disconnect(call, 102)

    def _t305(self, call: Call) -> None:
        call.state = 19
        self._send(Message(MT.RELEASE, call.cref, not call.ours, [Cause(call.cause)]))
        self._arm(call, self.config.t308, self._t308)

    def _t308(self, call: Call) -> None:
        if call.retries < 2:
            call.retries = 2
            self._send(Message(MT.RELEASE, call.cref, not call.ours, [Cause(call.cause)]))
            self._arm(call, self.config.t308, self._t308)
            return
        self._log(call.timeslot).warning("e1.release_unanswered")
        self._free(call, 102)

    def _ring_timeout(self, call: Call) -> None:
        call.ring_timer = None
        if call.state == 4:
            self._report_release(call, 19)
            self._disconnect(call, 16)

    # -- helpers -------------------------------------------------------------------------------
    def _disconnect(self, call: Call, cause: int) -> None:
        self._voice_down(call.timeslot)
        call.stop_timers()
        call.state, call.cause = 11, cause
        self._send(Message(MT.DISCONNECT, call.cref, not call.ours, [Cause(cause)]))
        self._arm(call, self.config.t305, self._t305)

    def _status(self, call: Call, cause: int) -> None:
        self._send(Message(MT.STATUS, call.cref, not call.ours, [Cause(cause),
                                                                 CallState(call.state)]))

    def _drop(self, call: Call, cause: int, reason: str) -> None:
        """Forget a call without signalling (link lost, RESTART): report and free the channel."""
        if call.yielded:  # off its channel already, reported already
            call.stop_timers()
            self.calls.pop((call.cref, call.ours), None)
            return
        self._report_release(call, cause, reason, fault=True)  # ours or the network's
        self._free(call, cause)

    def _free(self, call: Call, cause: int) -> None:
        self._voice_down(call.timeslot)
        call.stop_timers()
        self._report_release(call, cause)
        self.calls.pop((call.cref, call.ours), None)
        if self.by_slot.get(call.timeslot) is call:
            del self.by_slot[call.timeslot]
        call.state = 0
        self._emit(self._index(call.timeslot), codes.EV_HW_RELEASED,
                   cause=call.release_cause or cause)
        call.ended.set()

    def _report_proceeding(self, call: Call) -> None:
        if call.ours and not call.proceeding_reported:
            call.proceeding_reported = True
            self._emit(self._index(call.timeslot), codes.EV_HW_PROCEEDING)

    def _report_release(self, call: Call, cause: int, reason: str = "", *,
                        fault: bool = False) -> None:
        self._voice_down(call.timeslot)
        if call.release_cause is None:
            call.release_cause = call.cause if call.cleared_by_us else cause
        if call.release_reported or call.cleared_by_us:
            return
        call.release_reported = True
        self._emit(self._index(call.timeslot), codes.EV_HW_RELEASE, cause=cause,
                   reason=reason or q931_reason(cause),
                   info={"line_fault": True} if fault else None)

    def _arm(self, call: Call, seconds: float, fn: Callable[[Call], None]) -> None:
        if call.timer:
            call.timer.cancel()
        call.timer = self._later(seconds, fn, call)

    def _later(self, seconds: float, fn: Callable[[Call], None], call: Call):
        def fire() -> None:
            if self.calls.get((call.cref, call.ours)) is call:
                fn(call)
        return asyncio.get_running_loop().call_later(self.clock.real(seconds), fire)

    def _add(self, call: Call) -> None:
        self.calls[(call.cref, call.ours)] = call
        self.by_slot[call.timeslot] = call

    def _new_cref(self) -> int:
        for _ in range(0x7FFF):
            cref = next(self._crefs)
            if (cref, True) not in self.calls:
                return cref
        raise LineError(f"{self.name}: no free call reference")

    def _send(self, msg: Message) -> None:
        self.link.send_message(msg.encode())

    def _slot(self, channel: int) -> int:
        if not 0 <= channel < len(self.config.timeslots):
            last = len(self.config.timeslots) - 1
            raise LineError(f"{self.name}: no channel {channel} (0..{last})")
        return self.config.timeslots[channel]

    def _index(self, ts: int) -> int:
        return self.config.timeslots.index(ts)

    # -- B-channel audio ----------------------------------------------------------------------
    def _voice_up(self, call: Call) -> None:
        """The call is active: carry its B-channel's A-law between the channel file and its leg."""
        ts = call.timeslot
        leg = self._legs.get(ts)
        if leg is None or not leg.plane.running or leg.removed or ts in self._voices:
            return
        try:
            f = self._bfiles.get(ts)
            if f is None:
                f = self._bfiles[ts] = self.bchannel(ts)  # type: ignore[misc]
        except OSError as exc:
            self._voice_fault(call, f"B-channel {ts} cannot be opened: {exc.strerror or exc}")
            return
        fd = f if isinstance(f, int) else f.fileno()
        audio = LineAudio(leg, law="alaw", on_lost=lambda exc: self._voice_lost(call, exc))
        self._voices[ts] = FdAudio(fd, audio)

    def _voice_down(self, ts: int) -> None:
        carrier = self._voices.pop(ts, None)
        if carrier is not None:
            carrier.audio.close()
            carrier.close()

    def _voice_lost(self, call: Call, exc: Exception | None) -> None:
        ts = call.timeslot
        self._voices.pop(ts, None)
        f = self._bfiles.pop(ts, None)  # reopened for the next call
        if f is not None:
            f.close() if hasattr(f, "close") else os.close(f)
        if self.by_slot.get(ts) is call and call.state == 10:
            self._voice_fault(call, f"B-channel {ts} audio lost: {exc}")

    def _voice_fault(self, call: Call, reason: str) -> None:
        """No audio path: the call is cleared as a line fault (not the debtor's doing)."""
        self._log(call.timeslot).warning("e1.audio_fault", reason=reason)
        call.release_reported = True
        self._emit(self._index(call.timeslot), codes.EV_HW_RELEASE, cause=41, reason=reason,
                   info={"line_fault": True})
        call.cleared_by_us = True
        self._disconnect(call, 41)

    def _emit(self, channel: int, event: int, cause: int = 0, reason: str = "",
              caller: str | None = None, info: dict | None = None) -> None:
        self._report(HwReport(channel, event, cause, reason, caller, info or {}))


def q931_reason(cause: int) -> str:
    from firmware.lineapi import cause_name
    return cause_name(cause)
