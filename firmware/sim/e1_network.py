"""Simulated ISDN network side (NT) of one E1 span: real Q.921/Q.931, debtors from a Population.

The same LAPD and Q.931 code as the box runs here in the network role, over TCP (127.0.0.1) or
any frame transport (a socketpair in tests). Each call's fate is recorded so tests can compare
what the box reported with what the simulated debtor did.

With ``audio`` on, each B-channel is a SOCK_SEQPACKET pair carrying what a DAHDI channel file
carries: one 160-byte A-law frame every 20 ms each way. The box opens its end with
:meth:`NetworkSide.bchannel`; while a call on that timeslot is active the debtor speaks his
signal into it and keeps what he hears.
"""
from __future__ import annotations

import asyncio
import itertools
import random
import socket
from dataclasses import dataclass, field

import structlog

from firmware.clock import Clock
from firmware.e1 import q931
from firmware.e1.lapd import DataLink, LinkTimers, Role
from firmware.e1.q931 import (BearerCapability, CalledNumber, CallingNumber, CallState, Cause,
                              ChannelId, Message, MessageType as MT, ProgressIndicator,
                              RestartIndicator, SendingComplete)
from firmware.e1.span import E1_TIMESLOTS
from firmware.e1.transports import FdFrameTransport, FrameTransport, StreamFrameTransport
from firmware.sim.audioport import AudioPort, CallVoice, keep_window
from firmware.sim.population import Fate, Population

log = structlog.get_logger(__name__)


@dataclass
class CallRecord:
    """What happened to one call as the network saw it."""

    cref: int
    timeslot: int
    direction: str  # "outbound" (the box dialled) or "inbound" (the network offered it)
    number: str | None
    fate: str  # a population fate, or congestion / channel_unavailable / inbound
    cause: int | None = None  # the cause that ended the call (whoever sent it)
    cleared_by: str = ""  # network, user, link, restart
    alerted: bool = False
    connected: bool = False
    ring_s: float = 0.0
    talk_s: float = 0.0
    started: float = 0.0
    ended: float | None = None
    voice: CallVoice | None = None  # the debtor's signal and what he heard, when audio ran


@dataclass
class _NtCall:
    record: CallRecord
    ours: bool  # the network allocated the call reference
    state: str = "present"
    talk_s: float | None = None  # inbound calls: the caller hangs up after this long
    handles: list[asyncio.TimerHandle] = field(default_factory=list)
    voice: CallVoice | None = None

    def cancel(self) -> None:
        for h in self.handles:
            h.cancel()
        self.handles.clear()


class NetworkSide:
    """The NT side of one span: answers the box's SETUPs and originates calls on command."""

    def __init__(self, population: Population | None = None, *, clock: Clock | None = None,
                 timers: LinkTimers | None = None, name: str = "sim-nt", seed: int | None = None,
                 capture=None, audio: bool = False) -> None:
        self.population = population or Population(seed=seed)
        self.clock = clock or Clock()
        self.name = name
        self.rng = random.Random(seed)
        self.link = DataLink(Role.NETWORK, self._send_frame, clock=self.clock, timers=timers,
                             initiate=False, name=name)
        self.link.on_message = self._on_message
        self.link.on_down = self._link_down
        self.link.on_frame = capture or (lambda raw, outgoing: None)
        self.records: list[CallRecord] = []
        self.restart_acks = 0
        self.restarts_received: list[int] = []  # restart classes of the box's RESTARTs
        self.t309_s = 6.0  # active calls outlive a D-channel loss this long (libpri's T309)
        self.congested = False
        self.refuse_restart_all = False  # a switch that restarts only indicated channels
        self._calls: dict[tuple[int, bool], _NtCall] = {}
        self._slots: dict[int, _NtCall] = {}
        self._crefs = itertools.cycle(range(1, 0x8000))
        self._transport: FrameTransport | None = None
        self._server: asyncio.base_events.Server | None = None
        self._listener: socket.socket | None = None  # a SOCK_SEQPACKET D-channel listener
        self.port: int | None = None
        # A lost D-channel connection is silence on layer 2, not a dead line: the card or relay
        # behind it keeps the E1 up, so the network finds the box gone only by its own Q.921
        # timers (T203, T200 x N200) and holds active calls for T309, as a telco does.
        self.keeps_line = False
        self._line_up = False
        self._cut = False
        self._cut_handle: asyncio.TimerHandle | None = None
        self.audio = audio
        self._bports: dict[int, tuple[AudioPort, socket.socket | None]] = {}  # None: a pty
        self._tasks: set[asyncio.Task] = set()

    # -- wiring -------------------------------------------------------------------------------
    async def attach(self, transport: FrameTransport) -> None:
        """Run over an already connected frame transport (a socketpair end, a TCP connection)."""
        if self._transport is not None:
            await self._transport.close()
        transport.on_frame = self._receive_frame
        transport.on_lost = self._transport_lost
        self._transport = transport
        await transport.open()
        self.link.stop()
        self.link.start()

    async def serve_tcp(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen for the box's D-channel over TCP (2-byte length prefix); returns the port."""
        loop = asyncio.get_running_loop()

        def protocol():
            tr = StreamFrameTransport("tcp")
            self._connected(tr)
            return tr.protocol()

        self._server = await loop.create_server(protocol, host, port)
        return self._server.sockets[0].getsockname()[1]

    async def serve_seqpacket(self, path: str) -> str:
        """Listen for the box's D-channel on a Unix SOCK_SEQPACKET socket at ``path`` (one LAPD
        frame per packet with 2 FCS bytes, a DAHDI D-channel's semantics); returns the path."""
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            srv.bind(path)
            srv.listen(1)
        except OSError:
            srv.close()
            raise
        srv.setblocking(False)
        self._listener = srv
        asyncio.get_running_loop().add_reader(srv.fileno(), self._accept_seqpacket)
        return path

    def _accept_seqpacket(self) -> None:
        try:
            conn, _ = self._listener.accept()  # type: ignore[union-attr]
        except (BlockingIOError, InterruptedError):
            return
        tr = FdFrameTransport(sock=conn)
        self._connected(tr)
        self._spawn(tr.open())

    def _connected(self, tr: FrameTransport) -> None:
        """A new D-channel connection from the box replaces the last one."""
        tr.on_frame = self._receive_frame
        tr.on_lost = lambda reason, tr=tr: self._transport_lost(reason, tr)
        old, self._transport = self._transport, tr
        if old is not None:
            old.on_lost = lambda reason: None
            self._spawn(old.close())
        if self.keeps_line and self._line_up:
            return  # the line never went: the box's SABME resets the link it finds up
        self._line_up = True
        self.link.stop()
        self.link.start()

    def bchannel(self, timeslot: int) -> socket.socket:
        """The box's end of B-channel ``timeslot`` (A-law frames, DAHDI channel semantics)."""
        entry = self._bports.get(timeslot)
        if entry is not None and entry[1] is None:
            raise OSError(f"B-channel {timeslot} is a device: open {entry[0].path}")
        if entry is not None and entry[1].fileno() < 0:  # the box closed it: a new pair
            self._spawn(entry[0].close())
            entry = None
        if entry is None:
            ours, box = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            port = AudioPort()
            port.open_socket(ours)
            entry = self._bports[timeslot] = (port, box)
            call = self._slots.get(timeslot)
            if call is not None and call.state == "active":  # opened during the call
                self._voice_on(call)
        return entry[1]

    async def bchannel_device(self, timeslot: int) -> str:
        """B-channel ``timeslot`` as a character device (a raw pseudo-terminal standing in for
        /dev/dahdi/chan/SPAN/TS): the box opens the returned path as it opens a DAHDI channel
        file; the debtor speaks A-law into it and hears what the box writes."""
        port = AudioPort()
        path = await port.open_pty()
        self._bports[timeslot] = (port, None)
        call = self._slots.get(timeslot)
        if call is not None and call.state == "active":
            self._voice_on(call)
        return path

    async def close(self) -> None:
        for call in list(self._calls.values()):
            call.cancel()
            self._voice_off(call)
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for port, box in self._bports.values():
            await port.close()
            if box is not None:
                box.close()  # a box still holding it sees the channel go
        self._bports.clear()
        if self._cut_handle:
            self._cut_handle.cancel()
        self.link.stop()
        if self._listener is not None:
            asyncio.get_running_loop().remove_reader(self._listener.fileno())
            self._listener.close()
            self._listener = None
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self._transport is not None:
            await self._transport.close()
            self._transport = None

    # -- commands (tests, the capture command) -------------------------------------------------
    def originate(self, caller: str, called: str = "", *, timeslot: int | None = None,
                  talk_s: float | None = None) -> CallRecord:
        """Offer an inbound call to the box (SETUP, exclusive channel)."""
        if timeslot is None:
            free = [t for t in E1_TIMESLOTS if t not in self._slots]
            timeslot = free[-1] if free else E1_TIMESLOTS[-1]
        cref = next(c for c in self._crefs if (c, True) not in self._calls)
        rec = CallRecord(cref, timeslot, "inbound", caller, "inbound", started=self.clock.now())
        call = _NtCall(rec, True)
        self._calls[(cref, True)] = call
        self._slots.setdefault(timeslot, call)
        self.records.append(rec)
        keep_window(self.records)
        call.talk_s = talk_s
        self._send(call, MT.SETUP, [BearerCapability(), ChannelId(timeslot, exclusive=True),
                                    CallingNumber(caller, 2, 1, 0, 3),
                                    CalledNumber(called or "100", 0, 1), SendingComplete()])
        return rec

    def fault_link_down(self, seconds: float) -> None:
        """Cut the D-channel both ways for ``seconds``; the network clears its calls at once."""
        self._cut = True
        self.link.stop()
        self._clear_all(41, "link")
        self.link.start()  # passive: the box's SABME brings it back after the cut
        if self._cut_handle:
            self._cut_handle.cancel()
        self._cut_handle = asyncio.get_running_loop().call_later(self.clock.real(seconds),
                                                                 self._uncut)

    def fault_restart(self, timeslot: int | None = None) -> None:
        """Send RESTART for one channel or for the whole interface."""
        slots = [timeslot] if timeslot is not None else list(E1_TIMESLOTS)
        for ts in slots:
            if ts in self._slots:
                self._end(self._slots[ts], 41, "restart")
        ies = ([RestartIndicator(0), ChannelId(timeslot)] if timeslot is not None
               else [RestartIndicator(7)])
        self.link.send_message(Message(MT.RESTART, 0, False, ies).encode())

    async def fault_drop_connection(self) -> None:
        """Close the D-channel connection itself (the box must reconnect on its own)."""
        if self._transport is not None:
            tr, self._transport = self._transport, None
            await tr.close()
        self.link.stop()
        self._clear_all(41, "link")

    def fault_bchannel_lost(self, timeslot: int) -> None:
        """The B-channel's audio path breaks (the box's read sees it end); signalling goes on."""
        entry = self._bports.pop(timeslot, None)
        if entry is not None:
            call = self._slots.get(timeslot)
            if call is not None:
                self._voice_off(call)
            self._spawn(entry[0].close())

    def fault_congestion(self, on: bool = True) -> None:
        """While on, every SETUP is refused with cause 34 (no circuit available)."""
        self.congested = on

    def active_calls(self) -> int:
        return len(self._calls)

    # -- frames --------------------------------------------------------------------------------
    def _uncut(self) -> None:
        self._cut, self._cut_handle = False, None

    def _receive_frame(self, raw: bytes) -> None:
        if not self._cut:
            self.link.receive(raw)

    def _send_frame(self, raw: bytes) -> None:
        if not self._cut and self._transport is not None:
            self._transport.send(raw)

    def _transport_lost(self, reason: str, tr: FrameTransport | None = None) -> None:
        if tr is not None and tr is not self._transport:
            return  # an older connection, already replaced
        lost, self._transport = self._transport, None
        if lost is not None:  # let its socket go now, not when it is collected
            self._spawn(lost.close())
        if self.keeps_line:
            return  # frames now go nowhere; T200/T203 find the box gone
        self._line_up = False
        self.link.stop()
        self._link_lost()

    def _link_down(self, reason: str) -> None:
        self._link_lost()

    def _link_lost(self) -> None:
        """Q.931 5.8.9: calls not yet active are cleared; active ones are held for T309, so a
        box that comes back within it finds the switch still holding them (until RESTART)."""
        for call in list(self._calls.values()):
            if call.state != "active" or self.t309_s <= 0:
                self._end(call, 41, "link")
                continue
            call.cancel()  # the debtor's script stops with the signalling
            self._voice_off(call)
            call.state = "held"
            self._after(call, self.t309_s, lambda c=call: self._end(c, 41, "link"))

    # -- Q.931 ---------------------------------------------------------------------------------
    def _on_message(self, info: bytes) -> None:
        try:
            msg = q931.decode_message(info)
        except q931.DecodeError as exc:
            log.info("sim.e1.bad_message", sim=self.name, error=str(exc))
            return
        if msg.cref == 0 and msg.cref_len:
            if msg.type is MT.RESTART_ACKNOWLEDGE:
                self.restart_acks += 1
            elif msg.type is MT.RESTART:
                # The box restarts channels (all of them after its own restart): whatever the
                # network still holds there is cleared, then acknowledged.
                ind = msg.get(RestartIndicator)
                self.restarts_received.append(ind.restart_class if ind else -1)
                if self.refuse_restart_all and ind is not None and ind.restart_class == 7:
                    self.link.send_message(Message(MT.STATUS, 0, True, [Cause(100, 2),
                                                                        CallState(0)]).encode())
                    return
                chans = [c.channel for c in msg.all(ChannelId) if c.channel is not None]
                slots = chans if ind is not None and ind.restart_class == 0 else \
                    list(self._slots)
                for ts in slots:
                    if ts in self._slots:
                        self._end(self._slots[ts], 41, "restart")
                self.link.send_message(Message(MT.RESTART_ACKNOWLEDGE, 0, True, msg.ies).encode())
            return
        call = self._calls.get((msg.cref, msg.flag))
        if call is None:
            if msg.type is MT.SETUP and not msg.flag:
                self._setup(msg)
            elif msg.type not in (MT.RELEASE_COMPLETE, MT.STATUS):
                self.link.send_message(Message(MT.RELEASE_COMPLETE, msg.cref, not msg.flag,
                                               [Cause(81, 2)]).encode())
            return
        rec = call.record
        if msg.type in (MT.CALL_PROCEEDING, MT.ALERTING) and call.ours:
            rec.alerted = rec.alerted or msg.type is MT.ALERTING
        elif msg.type is MT.CONNECT and call.ours:
            call.state, rec.connected = "active", True
            rec.ring_s = self.clock.now() - rec.started
            self._send(call, MT.CONNECT_ACKNOWLEDGE)
            self._voice_on(call)
            if call.talk_s is not None:
                self._after(call, call.talk_s, lambda: self._disconnect(call, 16))
        elif msg.type is MT.CONNECT_ACKNOWLEDGE:
            pass
        elif msg.type is MT.DISCONNECT:
            cause = msg.get(Cause)
            self._note_end(call, cause.value if cause else None, "user")
            call.cancel()
            call.state = "releasing"
            self._send(call, MT.RELEASE)
        elif msg.type is MT.RELEASE:
            cause = msg.get(Cause)
            self._note_end(call, cause.value if cause else None, "user")
            self._send(call, MT.RELEASE_COMPLETE)
            self._forget(call)
        elif msg.type is MT.RELEASE_COMPLETE:
            cause = msg.get(Cause)
            self._note_end(call, cause.value if cause else None, "user")
            self._forget(call)
        elif msg.type is MT.STATUS_ENQUIRY:
            self._send(call, MT.STATUS, [Cause(30, 2), CallState(10 if call.state == "active"
                                                                  else 3)])

    def _setup(self, msg: Message) -> None:
        chan = msg.get(ChannelId)
        called = msg.get(CalledNumber)
        number = None if called is None else \
            ("+" if called.type_of_number == 1 else "") + called.digits
        ts = chan.channel if chan else None
        rec = CallRecord(msg.cref, ts or 0, "outbound", number, "", started=self.clock.now())
        self.records.append(rec)
        keep_window(self.records)
        refuse = None
        if ts is None or ts not in E1_TIMESLOTS or ts in self._slots:
            rec.fate, refuse = "channel_unavailable", 44
        elif self.congested:
            rec.fate, refuse = "congestion", 34
        if refuse is not None:
            rec.cause, rec.cleared_by, rec.ended = refuse, "network", self.clock.now()
            self.link.send_message(Message(MT.RELEASE_COMPLETE, msg.cref, True,
                                           [Cause(refuse, 2)]).encode())
            return
        call = _NtCall(rec, False, "proceeding")
        self._calls[(msg.cref, False)] = call
        self._slots[ts] = call
        fate = self.population.fate()
        rec.fate = fate.kind
        self._send(call, MT.CALL_PROCEEDING, [ChannelId(ts)])
        self._play(call, fate)

    def _play(self, call: _NtCall, fate: Fate) -> None:
        """Drive the call as the debtor's fate says (durations on the simulated clock)."""
        inband = [ProgressIndicator(8, 2)]
        step = 0.05
        if fate.kind in ("answer", "no_answer", "rejected"):
            self._after(call, step, lambda: self._alert(call))
        if fate.kind == "answer":
            self._after(call, step + fate.ring_s, lambda: self._connect(call, fate.talk_s))
        elif fate.kind == "no_answer":
            cause = 18 if self.rng.random() < 0.3 else 19
            self._after(call, step + fate.ring_s, lambda: self._disconnect(call, cause, inband))
        elif fate.kind == "rejected":
            self._after(call, step + fate.ring_s, lambda: self._disconnect(call, 21, inband))
        else:
            cause = {"busy": 17, "invalid": 1,
                     "unreachable": 20 if self.rng.random() < 0.5 else 27}[fate.kind]
            self._after(call, step, lambda: self._disconnect(call, cause, inband))

    def _alert(self, call: _NtCall) -> None:
        call.state, call.record.alerted = "delivered", True
        self._send(call, MT.ALERTING, [ProgressIndicator(8, 2)])

    def _connect(self, call: _NtCall, talk_s: float) -> None:
        call.state, call.record.connected = "active", True
        call.record.ring_s = self.clock.now() - call.record.started
        self._send(call, MT.CONNECT)
        self._voice_on(call)
        self._after(call, talk_s, lambda: self._disconnect(call, 16))

    def _disconnect(self, call: _NtCall, cause: int, ies: list | None = None) -> None:
        if call.state in ("disconnecting", "releasing"):
            return
        self._note_end(call, cause, "network")
        call.state = "disconnecting"
        self._send(call, MT.DISCONNECT, [Cause(cause, 2 if cause != 16 else 4)] + (ies or []))
        self._after(call, 4.0, lambda: self._release_stuck(call))

    def _release_stuck(self, call: _NtCall) -> None:
        """T305 on the network side: the box did not answer DISCONNECT."""
        self._send(call, MT.RELEASE, [Cause(102, 2)])
        self._after(call, 4.0, lambda: self._forget(call))

    # -- the debtor's voice on the B-channel ------------------------------------------------------
    def _voice_on(self, call: _NtCall) -> None:
        entry = self._bports.get(call.record.timeslot)
        if not self.audio or entry is None or call.voice is not None:
            return
        rec = call.record
        call.voice = rec.voice = CallVoice(entry[0], self.clock,
                                           f"{self.name}:{rec.timeslot}:{rec.cref}",
                                           law="alaw", spawn=self._spawn)
        call.voice.start()

    def _voice_off(self, call: _NtCall) -> None:
        if call.voice is not None:
            call.voice.halt()
            call.voice.close()
            call.voice = None

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- bookkeeping ---------------------------------------------------------------------------
    def _note_end(self, call: _NtCall, cause: int | None, by: str) -> None:
        rec = call.record
        self._voice_off(call)
        if rec.cleared_by:
            return
        now = self.clock.now()
        rec.cause, rec.cleared_by, rec.ended = cause, by, now
        if rec.connected:
            rec.talk_s = now - rec.started - rec.ring_s

    def _end(self, call: _NtCall, cause: int, by: str) -> None:
        self._note_end(call, cause, by)
        self._forget(call)

    def _clear_all(self, cause: int, by: str) -> None:
        for call in list(self._calls.values()):
            self._end(call, cause, by)

    def _forget(self, call: _NtCall) -> None:
        call.cancel()
        self._voice_off(call)
        self._calls.pop((call.record.cref, call.ours), None)
        if self._slots.get(call.record.timeslot) is call:
            del self._slots[call.record.timeslot]
        if call.record.ended is None:
            call.record.ended = self.clock.now()

    def _after(self, call: _NtCall, seconds: float, fn) -> None:
        def fire() -> None:
            if self._calls.get((call.record.cref, call.ours)) is call:
                fn()
        call.handles.append(asyncio.get_running_loop().call_later(self.clock.real(seconds), fire))

    def _send(self, call: _NtCall, mtype: MT, ies: list | None = None) -> None:
        self.link.send_message(Message(mtype, call.record.cref, not call.ours,
                                       ies or []).encode())


@dataclass
class CallResult:
    """One call as the box saw it (events in order) and how it was classified."""

    span: str
    channel: int
    number: str
    events: list[str] = field(default_factory=list)
    cause: int | None = None
    outcome: str = ""


async def drive_calls(spans: list, count: int, *, timeout_s: float, clock: Clock,
                      number=lambda i: f"8495{i:07d}", on_event=None) -> list[CallResult]:
    """Start the spans, place ``count`` calls over all their channels, wait until all are over.

    The simulated network ends every call; each channel is redialled when it is free again.
    """
    from cext import linestate_codes as codes
    from firmware.lineapi import classify_cause

    free: asyncio.Queue = asyncio.Queue()
    in_service: set[tuple[int, int]] = set()
    ready = asyncio.Event()
    live: dict[tuple[int, int], CallResult] = {}
    done: list[CallResult] = []
    finished = asyncio.Event()
    total = sum(len(s.channel_names()) - len(getattr(s, "blocked", ())) for s in spans)

    def reporter(si: int):
        def report(r) -> None:
            if on_event:
                on_event(spans[si], r)
            key = (si, r.channel)
            if r.event == codes.EV_HW_IN_SERVICE:
                in_service.add(key)
                if len(in_service) == total:
                    ready.set()
                return
            if r.event == codes.EV_HW_OUT_OF_SERVICE:
                in_service.discard(key)
            call = live.get(key)
            if call is None:
                return
            call.events.append(codes.EVENT_NAMES[r.event])
            if r.event == codes.EV_HW_RELEASE and call.cause is None:
                call.cause = r.cause
            if r.event == codes.EV_HW_RELEASED:
                del live[key]
                if call.cause is None:
                    call.cause = r.cause
                call.outcome = classify_cause(
                    call.cause, alerted="hw_alerting" in call.events,
                    answered="hw_answer" in call.events).value
                done.append(call)
                free.put_nowait(key)
                if len(done) == count:
                    finished.set()
        return report

    for si, span in enumerate(spans):
        await span.start(reporter(si))
    await asyncio.wait_for(ready.wait(), clock.real(timeout_s))
    for key in sorted(in_service, key=lambda k: (k[1], k[0])):  # spread over the spans
        free.put_nowait(key)
    deadline = asyncio.get_running_loop().time() + clock.real(timeout_s)
    for i in range(count):
        si, ch = await asyncio.wait_for(free.get(),
                                        deadline - asyncio.get_running_loop().time())
        live[(si, ch)] = CallResult(spans[si].name, ch, number(i))
        await spans[si].dial(ch, number(i))
    if count:
        await asyncio.wait_for(finished.wait(), deadline - asyncio.get_running_loop().time())
    return done
