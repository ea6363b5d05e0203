"""The line manager: every channel of every driver in one line-state core, offered as the Line API."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Callable

import structlog

from cext import linestate_codes as C
from cext.linestate import LineCore
from firmware.clock import Clock
from firmware.driverapi import Driver, HwReport
from firmware.errors import Msg, reason_of
from firmware.lineapi import (CallProgress, CallReleased, CallStage, EventSink, InboundCall,
                              LineError, LineEvent, LineInfo, LineStatus, Outcome,
                              cause_name, classify_cause)
from firmware.media.plane import MediaError, MediaPlane

log = structlog.get_logger(__name__)

_PROGRESS_STAGE = {C.PROCEEDING: CallStage.PROCEEDING, C.ALERTING: CallStage.ALERTING,
                   C.DIALING: CallStage.DIALING, C.SEIZED: CallStage.DIALING}


@dataclass
class _Channel:
    index: int
    name: str
    driver: Driver
    local: int
    ring_s: float  # the line's ring time-out, from its hardware profile
    reason: str = Msg("starting")


@dataclass
class _Call:
    call_id: str
    channel: int
    number: str
    started: float
    inbound: bool = False
    ring_s: float = 0.0  # this call's ring time-out: the line's, or longer if the law says so
    alerted_at: float | None = None
    answered_at: float | None = None
    position: str | None = None
    abandoned: bool = False
    line_fault: bool = False
    no_cause: bool = False  # released without a cause the hardware could report
    reason: str = ""
    info: dict = field(default_factory=dict)
    bridged_at: float | None = None  # the first debtor frame reached the operator (media plane)
    tags: dict = field(default_factory=dict)  # log fields of the layer above (the campaign)


class LineManager:
    """Owns the line-state core; drivers report into it, the controller calls into it."""

    def __init__(self, drivers: list[Driver], clock: Clock, *, ring_timeout_s: float = 40.0,
                 bridge_timeout_s: float = 2.0, release_guard_s: float = 10.0,
                 watchdog_s: float = 30.0, plane: MediaPlane | None = None,
                 abandon_lead_s: float = 0.2) -> None:
        self.clock = clock
        self.ring_timeout_s_default = ring_timeout_s
        self.bridge_timeout_s = bridge_timeout_s
        # With line audio the 2-second rule is kept at the debtor's ear: the box gives up on an
        # operator abandon_lead_s early, so that the abandon message reaches him in time.
        self.abandon_lead_s = abandon_lead_s
        self.plane = plane  # line legs come from drivers that carry audio (attach_media)
        # Set by the box: the 8 kHz PCM to play on a call, or None. Kinds: "abandon" (no operator
        # within the bridge deadline: played, then the line hangs up) and "notice" (the
        # recording notice, played to both sides when the operator is connected).
        self.prompt_for: Callable[[str, str], bytes | None] | None = None
        self.drivers = list(drivers)
        self.channels: list[_Channel] = []
        self._by_name: dict[str, int] = {}
        for drv in self.drivers:
            for local, name in enumerate(drv.channel_names()):
                if name in self._by_name:
                    raise LineError(f"two channels are named {name!r}: line names must be unique")
                self._by_name[name] = len(self.channels)
                ring_s = float(getattr(drv, "ring_timeout_s", None) or ring_timeout_s)
                self.channels.append(_Channel(len(self.channels), name, drv, local, ring_s))
        self.core = LineCore(max(1, len(self.channels)),
                             ring_timeout_ms=int(ring_timeout_s * 1000),
                             bridge_timeout_ms=int(bridge_timeout_s * 1000),
                             release_guard_ms=int(release_guard_s * 1000),
                             watchdog_ms=int(watchdog_s * 1000))
        self._calls: dict[str, _Call] = {}
        self._on_channel: dict[int, _Call] = {}
        self._sinks: list[EventSink] = []
        self._tasks: set[asyncio.Task] = set()
        self._timer_task: asyncio.Task | None = None
        self._timer_wake = asyncio.Event()
        self._closing = False
        self._sleeping_until = -1  # the core deadline (ms) the timer task sleeps until
        self._inbound_seq = 0
        self._glare: dict[int, _Call] = {}  # channel -> inbound call waiting for ours to end
        # Channels whose driver is being replaced (replace_drivers): no new call, and the swap
        # waits for their calls to end (told by _drained).
        self._draining: set[int] = set()
        self._waiting: set[int] = set()  # of those, the ones still waiting for their calls
        self._drained = asyncio.Event()
        # When each channel last took a call (dialed or rang in): free lines are offered least
        # recently used first, so the work spreads over every device and SIM.
        self._last_used: dict[int, float] = {}

    # --- life cycle -------------------------------------------------------------------------
    async def start(self) -> None:
        base = 0
        for drv in self.drivers:
            await self._start_driver(drv, base)
            base += len(drv.channel_names())
        if self.plane is not None and self.plane.running and any(
                leg.kind == "line" for leg in self.plane.legs.values()):
            self.core.set_timeout(C.TIMER_BRIDGE, int(
                1000 * max(0.5, self.bridge_timeout_s - self.abandon_lead_s)))
        self._timer_task = asyncio.get_running_loop().create_task(self._timers())

    async def _start_driver(self, drv: Driver, base: int) -> None:
        if hasattr(drv, "on_sms"):
            drv.on_sms = self._emit  # type: ignore[attr-defined]
        attach = getattr(drv, "attach_media", None)
        if self.plane is not None and attach is not None:
            attach(self.plane)  # the driver adds a line leg per channel it carries audio of
        await drv.start(self._reporter(base, drv))

    async def replace_drivers(self, old: list[Driver], new: list[Driver]) -> list[str]:
        """Put ``new`` drivers (a device's new hardware profile) in place of ``old`` ones that
        carry the same lines, leaving every other line and its calls alone. The old drivers'
        lines take no new call from now on; once their calls have ended they go out of
        service, the old drivers stop and the new ones start (their lines come back in service
        as the hardware reports; a blocked line stays blocked). Returns the lines; LineError
        when the new drivers' lines are not the same."""
        idx = [ch.index for ch in self.channels if any(ch.driver is d for d in old)]
        names = [self.channels[i].name for i in idx]
        slots = [(d, local, name) for d in new for local, name in enumerate(d.channel_names())]
        if [name for _, _, name in slots] != names:
            raise LineError(f"the new drivers carry lines {[n for _, _, n in slots]}, not "
                            f"{names}: adding or removing lines needs a restart")
        self._draining.update(idx)
        self._waiting.update(idx)
        try:
            while any(i in self._on_channel or i in self._glare for i in idx):
                self._drained.clear()
                await self._drained.wait()
            self._waiting.difference_update(idx)
            for i in idx:  # no await from the last call's end to here: nothing new slips in
                if self.core.state(i) != C.BLOCKED:
                    self.channels[i].reason = Msg("applying the hardware profile")
                    self._feed(i, C.EV_HW_OUT_OF_SERVICE, 0)
            for drv in old:
                try:
                    await drv.stop()
                except Exception:  # the swap goes on: the new driver opens the port anew
                    log.exception("driver_stop_failed", lines=len(names))
            for name in names:  # the new drivers add their own audio legs
                leg = self.plane.legs.get(name) if self.plane is not None else None
                if leg is not None and leg.kind == "line":
                    self.plane.remove_leg(leg)
            for (drv, local, _), i in zip(slots, idx):
                ch = self.channels[i]
                ch.driver, ch.local = drv, local
                ch.ring_s = float(getattr(drv, "ring_timeout_s", None)
                                  or self.ring_timeout_s_default)
            at = min(k for k, d in enumerate(self.drivers) if any(d is o for o in old))
            self.drivers = [d for d in self.drivers if not any(d is o for o in old)]
            self.drivers[at:at] = new
            for drv in new:
                first = next(ch.index for ch in self.channels if ch.driver is drv)
                try:
                    await self._start_driver(drv, first)
                except Exception as exc:  # its lines stay out of service, saying why
                    log.exception("driver_start_failed", lines=len(names))
                    for ch in self.channels:
                        if ch.driver is drv:
                            ch.reason = Msg("the new hardware profile did not start: {problem}",
                                         problem=reason_of(exc))
        finally:
            self._draining.difference_update(idx)
            self._waiting.difference_update(idx)
        log.info("drivers_replaced", lines=len(names))
        return names

    def waiting_to_replace(self, lines: list[str]) -> bool:
        """True while a replace_drivers of these lines still waits for their calls to end
        (cancelling it then leaves the old drivers as they were)."""
        return any(self._by_name.get(n) in self._waiting for n in lines)

    async def stop(self) -> None:
        """Hang up every call, stop the drivers."""
        async def hang(call: _Call) -> None:
            ch = self.channels[call.channel]
            try:
                await asyncio.wait_for(ch.driver.hangup(ch.local, C.CAUSE_NORMAL), 3)
            except Exception as exc:  # stopping must go on whatever one line does
                self._log(call).warning("hangup_on_stop_failed", error=str(exc))
        # All at once: one by one, 60 calls on slow lines took minutes (past systemd's stop
        # timeout, which then kills the box mid-write).
        await asyncio.gather(*(hang(c) for c in list(self._calls.values())))
        self._closing = True
        self._timer_wake.set()
        if self._timer_task:
            self._timer_task.cancel()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, *( [self._timer_task] if self._timer_task else []),
                             return_exceptions=True)
        for drv in self.drivers:
            await drv.stop()

    # --- Line API ---------------------------------------------------------------------------
    def subscribe(self, sink: EventSink) -> None:
        self._sinks.append(sink)

    def lines(self) -> list[LineInfo]:
        out = []
        for ch in self.channels:
            st = self.core.state(ch.index)
            call = self._on_channel.get(ch.index)
            health = dict(ch.driver.health(ch.local), ring_timeout_s=ch.ring_s)
            reason = (Msg("takes no new call: switches to its new hardware profile when the "
                          "call ends") if ch.index in self._waiting else ch.reason)
            out.append(LineInfo(ch.name, ch.driver.kind, C.STATE_NAMES[st],
                                st not in (C.OUT_OF_SERVICE, C.BLOCKED), reason,
                                call.call_id if call else None, health))
        return out

    def free_lines(self) -> list[str]:
        """Lines that can take a call now, the least recently used first (never used: in
        profile order). A dialer that takes the first spreads its calls over every device's
        lines: each SIM carries its share, none is flagged by its network for a burst of
        calls while others sit idle, and an E1 span and a gateway work side by side."""
        last = self._last_used
        free = [ch.index for ch in self.channels
                if self.core.state(ch.index) == C.IDLE and ch.index not in self._on_channel
                and ch.index not in self._draining]
        free.sort(key=lambda i: (last.get(i, float("-inf")), i))
        return [self.channels[i].name for i in free]

    def state(self, line: str) -> str:
        return C.STATE_NAMES[self.core.state(self._index(line))]

    def seat_of(self, line: str) -> str | None:
        """The one operator position a line's audio is wired to (analog-seat), else None."""
        ch = self.channels[self._index(line)]
        seat = getattr(ch.driver, "seat_of", None)
        return seat(ch.local) if seat is not None else None

    def ring_timeout_s(self, line: str) -> float:
        """How long an unanswered call on ``line`` rings before the box gives up."""
        return self.channels[self._index(line)].ring_s

    async def dial(self, line: str, number: str, *, call_id: str, min_ring_s: float = 0.0,
                   tags: dict | None = None) -> None:
        """Place a call; it rings the line's time-out, at least ``min_ring_s`` (the law's);
        ``tags`` (the campaign, say) go on every log line about it, the driver's included."""
        idx = self._index(line)
        if self.core.state(idx) != C.IDLE or idx in self._on_channel:
            raise LineError(f"line {line} is not free ({self.state(line)})")
        if idx in self._draining:
            raise LineError(f"line {line} is switching to its new hardware profile")
        if call_id in self._calls:
            raise LineError(f"call id {call_id} is already in use")
        call = _Call(call_id, idx, number, self.clock.now(),
                     ring_s=max(self.channels[idx].ring_s, min_ring_s))
        self._calls[call_id] = call
        self._on_channel[idx] = call
        self._last_used[idx] = call.started
        call.tags = dict(tags or {})
        self._tag_driver(call)
        self._log(call).debug("dial")
        self._feed(idx, C.EV_CTL_DIAL, 0)

    def tag(self, call_id: str, **fields) -> None:
        """Fields every later log line about this call carries (an inbound call's campaign)."""
        call = self._calls.get(call_id)
        if call is not None:
            call.tags.update(fields)
            self._tag_driver(call)

    def _log(self, call: _Call):
        """The logger for lines about ``call``: its line, call id and the tags given."""
        return log.bind(line=self.channels[call.channel].name, call_id=call.call_id,
                        **call.tags)

    def _tag_driver(self, call: _Call) -> None:
        ch = self.channels[call.channel]
        tag = getattr(ch.driver, "tag_call", None)
        if tag is not None:
            tag(ch.local, {"call_id": call.call_id, **call.tags})

    async def hangup(self, call_id: str, cause: int = C.CAUSE_NORMAL) -> None:
        call = self._calls.get(call_id)
        if call is not None:
            self._feed(call.channel, C.EV_CTL_HANGUP, cause)

    async def bridge(self, call_id: str, position: str) -> None:
        call = self._calls.get(call_id)
        if call is None:
            raise LineError(f"no call {call_id} (already released?)")
        call.position = position
        self._feed(call.channel, C.EV_CTL_BRIDGE, 0)

    async def answer(self, call_id: str) -> None:
        call = self._calls.get(call_id)
        if call is None:
            raise LineError(f"no call {call_id} (caller hung up?)")
        self._feed(call.channel, C.EV_CTL_ANSWER, 0)

    async def send_sms(self, line: str, number: str, text: str, *, sms_id: str) -> dict:
        ch = self.channels[self._index(line)]
        send = getattr(ch.driver, "send_sms", None)
        if send is None:
            raise LineError(f"line {line} ({ch.driver.kind}) cannot send SMS")
        return await send(ch.local, number, text, sms_id=sms_id)

    async def sms_stored(self, line: str, uid: str) -> None:
        """The received message is kept by the box: off the SIM with it."""
        ch = self.channels[self._index(line)]
        stored = getattr(ch.driver, "sms_stored", None)
        if stored is not None:
            await stored(uid)

    def block(self, line: str) -> None:
        self._feed(self._index(line), C.EV_CTL_BLOCK, 0)

    def unblock(self, line: str) -> None:
        self._feed(self._index(line), C.EV_CTL_UNBLOCK, 0)

    # --- the core ---------------------------------------------------------------------------
    def _reporter(self, base: int, drv: Driver | None = None):
        def report(r: HwReport) -> None:
            idx = base + r.channel
            ch = self.channels[idx]
            if drv is not None and ch.driver is not drv:
                return  # a replaced driver's last words: its lines are another driver's now
            if r.event == C.EV_HW_OUT_OF_SERVICE:
                ch.reason = r.reason or Msg("out of service")
            elif r.event == C.EV_HW_IN_SERVICE:
                ch.reason = ""
            call = self._on_channel.get(idx)
            if r.event == C.EV_HW_INBOUND and call is not None and not call.inbound and \
                    self.core.state(idx) == C.SEIZED:
                # Glare before our dial reached the hardware: the core ends our call (cause
                # 44) and offers the inbound one, which takes the line once ours is released.
                call.line_fault = True  # the debtor was never called
                call.reason = "glare: an inbound call took the line as we seized it"
                self._glare[idx] = self._inbound_call(ch, idx, r.caller)
                call = None
            elif r.event == C.EV_HW_INBOUND and call is None:
                call = self._on_channel[idx] = self._inbound_call(ch, idx, r.caller)
            if call is not None and r.reason:
                call.reason = r.reason
            if call is not None and (r.info.get("line_fault") or
                                     r.event == C.EV_HW_OUT_OF_SERVICE):
                call.line_fault = True  # our line failed under the call: not the debtor's doing
                if r.event == C.EV_HW_OUT_OF_SERVICE:
                    call.reason = f"line out of service: {ch.reason}"
            if call is not None and r.info.get("no_cause"):
                call.no_cause = True
            self._feed(idx, r.event, r.cause)
        return report

    def _inbound_call(self, ch: _Channel, idx: int, caller: str | None) -> _Call:
        self._inbound_seq += 1
        call = _Call(f"in-{ch.name}-{self._inbound_seq}", idx, caller or "", self.clock.now(),
                     inbound=True, ring_s=ch.ring_s)
        self._calls[call.call_id] = call
        self._last_used[idx] = call.started
        self._tag_driver(call)
        return call

    def _now_ms(self) -> int:
        return int(self.clock.now() * 1000)

    def _feed(self, idx: int, event: int, cause: int) -> None:
        # Ring timers are armed only by events fed here: each takes its own line's time-out.
        call = self._on_channel.get(idx)
        ring_s = call.ring_s if call is not None else self.channels[idx].ring_s
        self.core.set_timeout(C.TIMER_RING, int(ring_s * 1000))
        self._run(self.core.feed_one(idx, event, cause, self._now_ms()))
        nxt = self.core.next_deadline()
        if nxt >= 0 and (self._sleeping_until < 0 or nxt < self._sleeping_until):
            self._timer_wake.set()  # a timer sooner than the one slept for

    async def _timers(self) -> None:
        """Sleep until the core's next deadline (or an earlier one is armed), then expire."""
        while not self._closing:  # a flag as well: 3.11's wait_for can swallow a cancel
            nxt = self.core.next_deadline()
            self._sleeping_until = nxt
            self._timer_wake.clear()
            delay = None if nxt < 0 else max(0.0, self.clock.real(nxt / 1000 - self.clock.now()))
            try:
                await asyncio.wait_for(self._timer_wake.wait(),
                                       None if delay is None else delay + 0.001)
            except asyncio.TimeoutError:
                pass
            try:
                self._run(self.core.expire(self._now_ms()))
            except Exception:
                log.exception("line_timer_failed")

    def _run(self, actions) -> None:
        for idx, action, arg in actions:
            try:
                self._act(idx, action, arg)
            except Exception:
                log.exception("line_action_failed", line=self.channels[idx].name,
                              action=C.ACTION_NAMES[action])

    def _act(self, idx: int, action: int, arg: int) -> None:
        ch = self.channels[idx]
        call = self._on_channel.get(idx)
        now = self.clock.now()
        if action == C.ACT_DIAL and call is not None:
            # A longer ring than the line's own (the law's minimum) goes down to the driver.
            longer = {"ring_timeout_s": call.ring_s} if call.ring_s > ch.ring_s else {}
            self._spawn(self._guard(ch, self._dial(ch, call, **longer), call))
        elif action == C.ACT_HANGUP:
            if call is not None and call.abandoned and self._abandon_message(ch, call, arg):
                return
            self._spawn(self._guard(ch, ch.driver.hangup(ch.local, arg or C.CAUSE_NORMAL), call))
        elif action == C.ACT_BRIDGE and call is not None:
            if self._media_bridge(ch, call):
                return
            self._spawn(self._guard(ch, ch.driver.bridge(ch.local, call.position or ""), call))
        elif action == C.ACT_ANSWER:
            self._spawn(self._guard(ch, ch.driver.answer(ch.local), call))
        elif action == C.ACT_NOTIFY_PROGRESS and call is not None:
            if arg == C.ALERTING and call.alerted_at is None:
                call.alerted_at = now
            stage = _PROGRESS_STAGE.get(arg)
            if stage is not None:
                self._emit(CallProgress(ch.name, call.call_id, stage, now))
        elif action == C.ACT_NOTIFY_ANSWER and call is not None:
            call.answered_at = now
            if call.alerted_at is None:
                call.alerted_at = now
            self._log(call).info("call_answered")
            self._emit(CallProgress(ch.name, call.call_id, CallStage.ANSWERED, now))
        elif action == C.ACT_NOTIFY_BRIDGED and call is not None:
            self._emit(CallProgress(ch.name, call.call_id, CallStage.BRIDGED, now))
        elif action == C.ACT_NOTIFY_ABANDONED and call is not None:
            call.abandoned = True
            self._log(call).warning("call_abandoned")
        elif action == C.ACT_NOTIFY_RELEASED and call is not None:
            self._release(ch, call, arg, now)
        elif action == C.ACT_NOTIFY_OUT_OF_SERVICE:
            self._emit(LineStatus(ch.name, False, ch.reason))
        elif action == C.ACT_NOTIFY_IN_SERVICE:
            self._emit(LineStatus(ch.name, True, ""))
        elif action == C.ACT_NOTIFY_INBOUND and call is None and idx in self._glare:
            call = self._on_channel[idx] = self._glare.pop(idx)
            self._emit(InboundCall(ch.name, call.call_id, call.number or None, now))
        elif action == C.ACT_NOTIFY_INBOUND and call is not None:
            self._emit(InboundCall(ch.name, call.call_id, call.number or None, now))
        elif action == C.ACT_RESET:
            reset = getattr(ch.driver, "reset", None)
            ch.reason = Msg("the hardware did not confirm a request in time; resetting")
            (self._log(call) if call is not None else log.bind(line=ch.name)).warning(
                "line_reset")
            if call is not None:  # whatever the timer concluded, the line cannot be believed
                call.line_fault = True
                call.reason = call.reason or ch.reason
            if reset is not None:
                self._spawn(reset(ch.local))
        elif action == C.ACT_REJECTED:
            (self._log(call) if call is not None else log.bind(line=ch.name)).warning(
                "line_event_rejected",
                rejected=C.EVENT_NAMES[arg] if 0 <= arg < len(C.EVENT_NAMES) else arg,
                state=C.STATE_NAMES[self.core.state(idx)])

    # --- the media plane ----------------------------------------------------------------------
    def media_leg(self, line: str):
        """The line's audio leg in the media plane, or None when its audio does not pass here."""
        plane = self.plane
        if plane is None or not plane.running:
            return None
        leg = plane.legs.get(line)
        return leg if leg is not None and leg.kind == "line" else None

    def _media_bridge(self, ch: _Channel, call: _Call) -> bool:
        """Bridge as a switch in the media plane: the line's leg to the position's leg,
        confirmed when the first debtor frame has been delivered to the position. False when
        this line's audio or this position does not pass through the plane (the driver bridges)."""
        leg = self.media_leg(ch.name)
        pos = self.plane.legs.get(call.position or "") if leg is not None else None
        if leg is None or pos is None or pos.kind != "position":
            return False
        try:
            confirmed = self.plane.connect(leg, pos)
        except MediaError as exc:
            self._log(call).warning("media_bridge_refused", error=str(exc))
            return True  # not bridged: the core's bridge timer decides (abandon)

        def done(fut) -> None:
            if fut.cancelled() or fut.exception() is not None:
                return  # released or re-bridged before the first frame
            if self._on_channel.get(ch.index) is call:
                call.bridged_at = fut.result()
                self._feed(ch.index, C.EV_HW_BRIDGED, 0)
                notice = self._prompt(call, "notice")
                if notice and ch.name in self.plane.legs and pos.name in self.plane.legs:
                    self.plane.play([ch.name, pos.name], notice)
        confirmed.add_done_callback(done)
        return True

    def _prompt(self, call: _Call, kind: str) -> bytes | None:
        if self.prompt_for is None:
            return None
        try:
            return self.prompt_for(call.call_id, kind)
        except Exception:  # a missing file must not cost the call
            self._log(call).exception("prompt_lookup_failed", kind=kind)
            return None

    def _abandon_message(self, ch: _Channel, call: _Call, cause: int) -> bool:
        """No operator in time: the debtor hears the campaign's abandon message, then the line
        hangs up (never silence). False when there is no message or no audio path."""
        leg = self.media_leg(ch.name)
        pcm = self._prompt(call, "abandon") if leg is not None else None
        if not pcm:
            return False
        self.plane.disconnect(leg)
        played = self.plane.play(leg, pcm)
        self._log(call).info("abandon_message", seconds=round(len(pcm) / 16000, 1))

        async def then_hang_up() -> None:
            try:
                await asyncio.wait_for(asyncio.shield(played),
                                       self.clock.real(len(pcm) / 16000 + 2.0))
            except asyncio.TimeoutError:
                self.plane.stop_prompts(ch.name)
            if self._on_channel.get(ch.index) is call:  # the debtor did not hang up first
                await self._guard(ch, ch.driver.hangup(ch.local, cause or C.CAUSE_NORMAL), call)
        self._spawn(then_hang_up())
        return True

    def _release(self, ch: _Channel, call: _Call, cause: int, now: float) -> None:
        if self.plane is not None and ch.name in self.plane.legs:
            self.plane.disconnect(ch.name)
            self.plane.stop_prompts(ch.name)
        self._calls.pop(call.call_id, None)
        if self._on_channel.get(ch.index) is call:
            del self._on_channel[ch.index]
        if ch.index in self._draining:
            self._drained.set()  # replace_drivers waits for this line's calls to end
        answered = call.answered_at is not None
        q850 = cause or None
        outcome = classify_cause(q850, alerted=call.alerted_at is not None, answered=answered)
        ring_end = call.answered_at if answered else now
        ring_s = ring_end - call.alerted_at if call.alerted_at is not None else 0.0
        if call.no_cause and not answered:
            # No cause: "no answer" only when it rang out; a short ring is a failed call.
            q850 = None
            rang_out = call.alerted_at is not None and ring_s >= call.ring_s - 2.0
            outcome = Outcome.NO_ANSWER if rang_out else Outcome.FAILED
        if call.line_fault and not answered:
            outcome = Outcome.FAILED  # our line's failure says nothing about the debtor
        talk_s = now - call.answered_at if answered else 0.0
        reason = call.reason or cause_name(q850)
        self._log(call).info("call_released", outcome=outcome.value, cause=q850)
        self._emit(CallReleased(ch.name, call.call_id, outcome, q850, reason, round(ring_s, 3),
                                round(talk_s, 3), now, call.abandoned, call.inbound,
                                call.line_fault))

    async def _dial(self, ch: _Channel, call: _Call, **kw) -> None:
        if self._on_channel.get(ch.index) is not call:
            return  # released before the hardware was asked (glare, a hangup): nothing to dial
        await ch.driver.dial(ch.local, call.number, **kw)

    async def _guard(self, ch: _Channel, coro, call: _Call | None) -> None:
        """Run a driver request; a failure becomes a release with the reason, never a crash."""
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            (self._log(call) if call is not None else log.bind(line=ch.name)).warning(
                "driver_request_failed", error=str(exc))
            if call is not None:
                call.reason = str(exc)
                call.line_fault = True
            self._feed(ch.index, C.EV_HW_RELEASE, 41)
            self._feed(ch.index, C.EV_HW_RELEASED, 0)

    def _emit(self, ev: LineEvent) -> None:
        for sink in self._sinks:
            try:
                sink(ev)
            except Exception:
                log.exception("line_event_sink_failed", kind=type(ev).__name__)

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _index(self, line: str) -> int:
        try:
            return self._by_name[line]
        except KeyError:
            raise LineError(f"no line named {line!r}; lines: "
                            f"{', '.join(self._by_name) or 'none'}") from None
