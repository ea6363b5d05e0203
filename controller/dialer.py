"""The campaign dialer: picks leads, places calls on free lines, hands answers to operators.

Modes share one loop. Progressive reserves an operator before each call (one call per free
operator). Predictive asks the pacer how many calls to launch from the state of the floor and
hands each live answer to whoever is free within the 2-second bridge deadline (the line core
abandons the call after it). Inbound calls (blended mode) go to a free operator before any new
outbound call is launched; blocked callers get busy. A call offered to a person rings on his
desk and is answered only when he takes it; not taken within ``take_s`` it goes to the next
free operator (he is paused: likely away), or waits for one while the caller's line rings.
"""
from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

import structlog

from controller import compliance
from controller.holds import DialingHolds
from controller.operators import (AWAY, FREE, RESERVED, TALKING, WRAP, CampaignFloor, Operator,
                                  OperatorPool)
from controller.pacing import FloorSnapshot, Pacer
from controller.pacing.setup import campaign_config
from controller.store import Store
from firmware.clock import Clock
from firmware.lineapi import (CallProgress, CallReleased, CallStage, InboundCall, LineAPI,
                              LineError, LineEvent, LineStatus, Outcome)

log = structlog.get_logger(__name__)

from controller.store_campaigns import MODES
CAUSE_BUSY = 17
LEADS_PER_CHUNK = 8  # leads looked at, and their refusals committed, between two loop turns
LEADS_PER_JOB = 64  # the same on the store's writer thread, where the loop does not wait
LEADS_PER_CYCLE = 2048
LEADS_PAUSE_S = 0.005  # between chunks: refusals are background work, never the loop's all
TAKE_S = 15.0  # an inbound call rings on a desk this long before it goes to the next operator


@dataclass
class _Out:
    """An outbound call of this campaign in flight."""

    call_id: str
    line: str
    launched: float  # clock seconds
    answered: float | None = None
    segment: str = "default"  # the lead's segment: the pacer learns per segment
    ring_s: float = 0.0  # how long this call may ring before the box gives up


class Dialer:
    """One campaign's dialing.

    Alone (``managed=False``) it runs its own loop and listens to the lines itself. Under the
    campaign runner it is driven from the runner's loop (which shares lines and operators among
    the campaigns by weight) and is given only line events; it acts on its own calls only.
    """

    def __init__(self, store: Store, lines: LineAPI, operators: OperatorPool | CampaignFloor,
                 clock: Clock, *, campaign_id: int, campaign_name: str,
                 mode: str = "progressive",
                 compliance_profile: str = compliance.DEFAULT_PROFILE,
                 reserve_inbound: int = 0, managed: bool = False,
                 wake: asyncio.Event | None = None, abandon_target: float | None = None,
                 holds: DialingHolds | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"dialing mode {mode!r}: one of {', '.join(MODES)}")
        self.store = store
        self.lines = lines
        if isinstance(operators, OperatorPool):
            operators = CampaignFloor(operators, campaign_id)
        self.operators = operators
        self.clock = clock
        self.campaign_id = campaign_id
        self.campaign_name = campaign_name
        self.managed = managed
        self.reserve_inbound = reserve_inbound  # operators kept free for debtors calling back
        self.weight = 1
        self.line_ok = lambda line: True  # the campaign's line group
        self.mode = mode
        self.compliance = compliance.get_profile(compliance_profile)
        self.abandon_target = abandon_target
        self._over_cap: set[tuple[str, float]] = set()  # segment targets above the law, told
        # Every line's ring time-out, raised to the law's minimum ring: one configuration.
        self._ring_s = {ln.name: lines.ring_timeout_s(ln.name) for ln in lines.lines()}
        self.pacer = self._pacer()
        self.last_decision = None
        self._evidence: dict[int, dict] = {}  # account -> the law's decision to dial it
        self._unnumbered: set[str] = set()  # lines already reported as having no number
        self.held = 0  # decisions not to dial, this run
        self.running = False
        # Set by the box when it must not place calls (the recordings disk is full, the clock
        # is not synchronised): calls up and inbound calls go on, no new call is placed. The
        # campaign runner gives every dialer its one set of reasons.
        self.holds = holds if holds is not None else DialingHolds()
        self._stopping = False
        self._task: asyncio.Task | None = None
        self._wake = wake or asyncio.Event()
        self._out: dict[str, _Out] = {}  # outbound calls in flight
        self._op_segment: dict[str, str] = {}  # operator -> segment of the call he wraps up
        self._waiting: list[str] = []  # answered calls with no operator yet (oldest first)
        self._inbound: list[str] = []  # inbound calls offered, waiting for an operator
        self._inbound_line: dict[str, str] = {}  # inbound call -> its line, while it lasts
        self.ringing: dict[str, Operator] = {}  # inbound call -> the desk it rings on, not taken
        self.take_s = TAKE_S
        self.previews: dict[str, tuple] = {}  # preview id -> (lead, operator) shown, not dialed
        self.preview_s = 8.0  # how long a simulated operator reads a card before dialing
        self._line_faults: dict[str, int] = {}  # consecutive faults per line
        self._day_limits: dict[str, int] | None = None
        self._quarantine: dict[str, float] = {}  # line -> loop time it may be used again
        self.listeners: list = []  # callables(event) for the live feed
        self._tasks: set[asyncio.Task] = set()
        if not managed:
            lines.subscribe(self.on_line_event)
        self.operators.watch(self._on_operators, self._on_wrap_end)

    def _pacer(self) -> Pacer:
        """Lines give the ring time-out, the law the rest, the campaign its target."""
        target = self.abandon_target
        if target is None:
            target = self.store.campaign_config(self.campaign_id).abandon_target
        return Pacer(campaign_config(self.compliance, self._ring_s.values(),
                                     abandon_target=target,
                                     reserve_inbound=self.reserve_inbound,
                                     campaign=self.campaign_name))

    def reconfigure(self, *, mode: str, compliance_profile: str,
                    abandon_target: float | None) -> None:
        """A running campaign's mode, law or pacing target changed: a new pacer, its window
        replayed (what it learnt of the segments is kept when only the target changed)."""
        if mode == self.mode and compliance_profile == self.compliance.name and \
                abandon_target == self.abandon_target:
            return
        same_law = compliance_profile == self.compliance.name
        self.mode, self.abandon_target = mode, abandon_target
        self.compliance = compliance.get_profile(compliance_profile)
        learnt = self.pacer._segments
        self.pacer = self._pacer()
        if same_law:
            self.pacer._segments = learnt
        self.last_decision = None
        self._replay_abandon_window()
        log.info("campaign_reconfigured", campaign=self.campaign_name, mode=mode,
                 compliance=compliance_profile, abandon_target=self.pacer.config.abandon_target)

    def target_of(self, segment: str) -> float | None:
        """The pacing target of a segment's strategy (None: the campaign's), within the law."""
        target = self.store.strategy(self.campaign_id, segment).abandon_target
        cap = self.pacer.config.abandon_cap
        if target is not None and cap is not None and target > cap:
            if (segment, target) not in self._over_cap:  # said once, not at every decision
                self._over_cap.add((segment, target))
                log.warning("segment_target_over_the_law", campaign=self.campaign_name,
                            segment=segment, asked=target, cap=cap)
            return cap
        return target

    async def start(self) -> None:
        self.running = True
        self._stopping = False
        # A month of answers is read on the store's reader thread, not on the loop.
        since = self.clock.wall() - self.pacer.config.window_s / self.clock.scale
        self._replay_abandon_window(await self.store.read(_answered_since, self.campaign_id,
                                                          since))
        if not self.managed:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    def pause(self) -> None:
        """Place no new calls; calls up go on to their end (answers still reach operators)."""
        self.running = False
        for preview_id, (lead, op) in list(self.previews.items()):
            self.store.submit(Store.set_preview, lead.account_pk, False)
            self.operators.release(op, talked=False)
        self.previews.clear()

    def resume(self) -> None:
        self.running = True
        self._wake.set()

    async def stop(self) -> None:
        self.pause()
        self._stopping = True  # calls hung up from now on were cut short by us
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.operators.unwatch()

    def owns(self, call_id: str) -> bool:
        """Is this call one of this campaign's (placed, waiting, offered, previewed, held)?"""
        return (call_id in self._out or call_id in self._inbound or call_id in self.previews
                or call_id in self.ringing or self.operators.by_call(call_id) is not None)

    def load(self) -> int:
        """Calls and cards of this campaign in hand now (for sharing lines by weight)."""
        return len(self._out) + len(self.previews) + len(self._inbound) + len(self.ringing)

    def busy(self) -> bool:
        """Anything of this campaign still going on (a paused one is kept until it is not)."""
        return bool(self._out or self._waiting or self._inbound or self.ringing or
                    self.previews or any(
            o.campaign == self.campaign_id and o.call_id for o in self.operators.pool.ops))

    def _replay_abandon_window(self, rows: list | None = None) -> None:
        """The pacer's window survives restarts: stored live answers and abandons go back in
        (``rows``: read already, else read here)."""
        wall, now = self.clock.wall(), self.clock.now()
        if rows is None:
            since = wall - self.pacer.config.window_s / self.clock.scale
            rows = _answered_since(self.store, self.campaign_id, since)
        for created, abandoned in rows:
            t = now - (wall - created) * self.clock.scale
            self.pacer.window.record(t, live=1, abandoned=int(abandoned))

    async def _loop(self) -> None:
        while not self._stopping:  # a flag as well: 3.11's wait_for can swallow a cancel
            try:
                await self._cycle()
            except Exception:
                log.exception("dialer_cycle_failed", campaign=self.campaign_name)
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), 0.25)
            except asyncio.TimeoutError:
                pass

    async def _cycle(self) -> None:
        await self.serve()
        if self._inbound or not self.running:
            return  # people calling in go first
        if self.holds:
            return  # the recordings disk is full, the clock is not synchronised, ...
        await self._place()

    async def serve(self) -> None:
        """What cannot wait: callers ringing in, answered calls waiting for an operator."""
        await self._serve_inbound()
        self._hand_waiting()

    async def place_one(self) -> bool:
        """Place at most one call (or show one card); True when it did (the runner's turn)."""
        if not self.running or self._inbound or self.holds:
            return False
        return await self._place(limit=1) > 0

    @property
    def hold_reason(self) -> str | None:
        return self.holds.reason

    def _dials_predictively(self) -> bool:
        """The campaign or one of its segments dials without reserving an operator."""
        return self.mode == "predictive" or any(
            s.strategy.mode == "predictive" for s in self.store.segments(self.campaign_id))

    def mode_of(self, lead) -> str:
        """The lead's segment strategy decides the mode; the campaign's mode by default."""
        return self.store.strategy(self.campaign_id, lead.segment).mode or self.mode

    # --- placing calls ----------------------------------------------------------------------
    async def _place(self, limit: int | None = None) -> int:
        """Leads in priority order, each in its segment's mode: preview, progressive, predictive.

        Preview and progressive take a free operator for the lead (beyond the inbound reserve);
        predictive leads are launched while the pacer's budget for this instant lasts. Returns
        how many calls were placed or cards shown (at most ``limit``).
        """
        budget: int | None = None
        budget_segment = None
        reserve = False
        placed = 0
        launched: dict[str, int] = {}
        try:
            while self.running and (limit is None or placed < limit):
                op = self.operators.next_free()
                spare_op = op is not None and len(self.operators.free()) > self.reserve_inbound
                if not spare_op and not self._dials_predictively():
                    return placed  # every lead waits for an operator: none is free
                free_lines = self._usable(self.lines.free_lines())
                if not free_lines and not spare_op:
                    return placed
                # A callback is kept for the operator who promised it: say who takes the call.
                lead = await self._next_allowed_lead(op if spare_op else None)
                if lead is None:
                    return placed
                mode = self.mode_of(lead)
                if mode == "preview":
                    if not spare_op:
                        return placed
                    self._preview(lead)
                    placed += 1
                    continue
                if mode == "progressive":
                    line, among = self._seat_pick(free_lines) if spare_op else (None, None)
                    if line is None:
                        return placed
                    await self._launch(line, lead, reserve=True, among=among)
                    placed += 1
                    continue
                free_lines = [ln for ln in free_lines if self._seat(ln) is None]  # no operator
                segment = lead.segment or "default"                                # to wait for
                if budget is None or segment != budget_segment:
                    # Each segment's own estimates say how many of its leads to launch now.
                    budget_segment = segment
                    decision = self.pacer.decide(self.floor(len(free_lines), segment),
                                                 self.clock.now(), self.target_of(segment))
                    if decision.fallback != getattr(self.last_decision, "fallback", None):
                        log.info("pacing_mode", campaign=self.campaign_name,
                                 mode=decision.mode, reason=decision.reason)
                    self.last_decision = decision
                    budget = decision.n_calls
                    reserve = decision.mode != "predictive"  # the pacer's own fallback
                if budget <= 0 or not free_lines or (reserve and not spare_op):
                    return placed
                await self._launch(free_lines[0], lead, reserve=reserve)
                budget -= 1
                launched[segment] = launched.get(segment, 0) + 1
                placed += 1
            return placed
        finally:
            for segment, n in launched.items():
                self.pacer.observe_launched(self.clock.now(), n, segment)

    def _preview(self, lead) -> None:
        """Show the card to the next free operator; the call waits for his word."""
        preview_id = uuid.uuid4().hex[:12]
        op = self.operators.reserve(preview_id)
        self.store.submit(Store.set_preview, lead.account_pk, True)
        self.previews[preview_id] = (lead, op)
        if op is not None and not op.human:
            self._spawn(self._simulated_preview(preview_id))

    async def _simulated_preview(self, preview_id: str) -> None:
        await self.clock.sleep(self.preview_s)
        try:
            await self.preview_dial(preview_id)
        except LineError:
            if preview_id in self.previews:  # no line yet: read on, retry
                self._spawn(self._simulated_preview(preview_id))

    async def preview_dial(self, preview_id: str) -> str:
        """The operator read the card: place the call on a free line; returns the call id."""
        if preview_id not in self.previews:
            raise LineError("this card is no longer waiting to be dialed")
        line = self._line_for(self._usable(self.lines.free_lines()), self.previews[preview_id][1])
        if line is None:
            raise LineError("no free line right now: try again in a moment")
        lead, op = self.previews.pop(preview_id)
        self.store.submit(Store.set_preview, lead.account_pk, False)
        # The law is asked again at the moment of dialing.
        allowed, evidence = await self.store.run(ask_the_law, self.compliance, lead,
                                                 self.campaign_id)
        if not allowed:
            self.held += 1
            self.operators.release(op, talked=False)
            raise LineError("the law no longer allows this call (a refusal, the hours or a "
                            "limit reached meanwhile); the card is put back with the reason")
        self._evidence[lead.account_pk] = evidence
        if not await self._record_and_dial(line, lead, preview_id, op):
            raise LineError("the line was taken meanwhile: try again in a moment")
        return preview_id

    async def preview_skip(self, preview_id: str, by: str) -> None:
        """The operator passes on this card: recorded (on disk when this returns), the account
        due again later."""
        item = self.previews.pop(preview_id, None)
        if item is None:
            return
        lead, op = item
        self.operators.release(op, talked=False)
        self.store.submit(Store.set_preview, lead.account_pk, False)
        await self.store.run(Store.hold, lead.account_pk, "skipped_in_preview",
                             f"skipped by {by}", campaign_id=self.campaign_id,
                             until=self.clock.wall() + 3600)

    async def _next_allowed_lead(self, op: Operator | None):
        """The next lead the law allows now; refusals are written a chunk at a time.

        Thousands of leads held by the law (night in their zone, say) never stall the loop: a
        chunk of leads is looked at, and its refusals written under one commit, on the store's
        writer thread (without one, here, with a pause between chunks); one cycle looks at no
        more than ``LEADS_PER_CYCLE`` leads (the next cycle goes on).
        """
        chunk = LEADS_PER_JOB if self.store.writer is not None else LEADS_PER_CHUNK
        for _ in range(max(1, LEADS_PER_CYCLE // chunk)):
            lead, evidence, held, more = await self.store.run(
                pick_lead, self.campaign_id, self.compliance,
                op.position if op else None, chunk)
            self.held += held
            if lead is not None:
                self._evidence[lead.account_pk] = evidence  # goes with the attempt
                return lead
            if not more:
                return None
            if self.store.writer is None:
                # A pause, not only a turn: timers, I/O and web requests get the loop at once.
                await asyncio.sleep(LEADS_PAUSE_S)
            if not self.running:
                return None
        self._wake.set()  # more to look at: the next cycle goes on at once
        return None

    async def _launch(self, line: str, lead, *, reserve: bool, among=None) -> bool:
        """Place one call to ``lead`` on ``line``; False when no operator could be reserved
        (``among``: who may take it: a line wired to a seat is that seat's)."""
        call_id = uuid.uuid4().hex[:12]
        op = (self.operators.reserve(call_id, among=among) if among is not None
              else self.operators.reserve(call_id)) if reserve else None
        if reserve and op is None:
            return False
        await self._record_and_dial(line, lead, call_id, op)
        return True

    async def _record_and_dial(self, line: str, lead, call_id: str, op: Operator | None
                               ) -> bool:
        """The attempt is committed to disk, then the number dialed: a power cut in between
        never redials it. False when the line was taken while the attempt was being written
        (the debtor is due again, the operator free; not a fault of the line)."""
        self._out[call_id] = self._track(call_id, line, lead)  # in hand while it is written
        try:
            await self.store.run(Store.begin_attempt, self.campaign_id, lead, line, call_id,
                                 op.position if op else None, evidence=self._why(lead, line))
        except BaseException:
            self._out.pop(call_id, None)
            if op is not None:
                self.operators.release(op, talked=False)
            raise
        if line not in self.lines.free_lines():  # a caller took it meanwhile
            self._out.pop(call_id, None)
            self.store.submit(Store.requeue_attempt, call_id,
                              "its line was taken before the number was dialed")
            if op is not None:
                self.operators.release(op, talked=False)
            log.info("dial_deferred", line=line, call_id=call_id, campaign=self.campaign_name)
            return False
        log.info("call_placed", line=line, call_id=call_id, campaign=self.campaign_name)
        try:
            await self.lines.dial(line, lead.number, call_id=call_id,
                                  min_ring_s=self.pacer.config.min_ring_s,
                                  tags={"campaign": self.campaign_name})
        except LineError as exc:
            log.warning("dial_refused", line=line, call_id=call_id,
                        campaign=self.campaign_name, error=str(exc))
            self._finish(CallReleased(line, call_id, Outcome.FAILED, None, str(exc), 0, 0,
                                      self.clock.now(), line_fault=True))
        return True

    def _log(self, call_id: str):
        """The logger for lines about ``call_id``: its line (when known) and this campaign."""
        out = self._out.get(call_id)
        line = out.line if out is not None else self._inbound_line.get(call_id)
        return log.bind(line=line, call_id=call_id, campaign=self.campaign_name)

    def _read_ring(self, line: str) -> None:
        """A line back in service, or about to be dialed, may carry a new hardware profile
        (applied while the campaign runs): its ring time-out is read again, and the pacer's
        no-answer time-out follows the longest."""
        try:
            ring = self.lines.ring_timeout_s(line)
        except (KeyError, IndexError, LineError):
            return
        if self._ring_s.get(line) == ring:
            return
        self._ring_s[line] = ring
        longest = campaign_config(self.compliance, self._ring_s.values()).no_answer_timeout_s
        self.pacer.config.no_answer_timeout_s = longest
        for est in self.pacer._segments.values():
            est.no_answer_timeout_s = longest
        log.info("line_ring_timeout_changed", line=line, ring_timeout_s=ring,
                 campaign=self.campaign_name)

    def _track(self, call_id: str, line: str, lead) -> _Out:
        self._read_ring(line)  # a profile applied meanwhile (a line blocked then unblocked too)
        ring = max(self._ring_s.get(line, self.pacer.config.no_answer_timeout_s),
                   self.pacer.config.min_ring_s)
        return _Out(call_id, line, self.clock.now(), segment=lead.segment or "default",
                    ring_s=ring)

    def floor(self, lines_free: int, segment: str = "default") -> FloorSnapshot:
        """The floor as the pacer sees it now, for a decision about ``segment``'s leads."""
        now = self.clock.now()
        ops = [o for o in self.operators.ops if o.state not in AWAY]
        return FloorSnapshot(
            operators=len(ops),
            free=sum(1 for o in ops if o.state == FREE),
            talk_elapsed=[now - o.since for o in ops if o.state == TALKING],
            wrap_elapsed=[now - o.since for o in ops if o.state == WRAP],
            # Time since the dial, whatever the line's time-out: a debtor answers as soon on
            # a GSM line (40 s) as on an E1 one (60 s). (Shifting a 40 s line's calls 20 s on,
            # to end them with the model's one time-out, took each call just dialed for one
            # that had rung 20 s unanswered, and the pacer over-dialed once calls spread over
            # the gateway's lines: 13 abandons in a minute.)
            ring_elapsed=[now - c.launched for c in self._out.values() if c.answered is None],
            waiting=len(self._waiting),
            lines_free=lines_free, segment=segment)

    def _why(self, lead, line: str) -> dict:
        """The stored answer to "why was this debtor called": the law's decision, the line."""
        why = self._evidence.pop(lead.account_pk, None) or {}
        info = next((ln for ln in self.lines.lines() if ln.name == line), None)
        details = info.details if info is not None else {}
        why["line"] = {"name": line, "number": details.get("number"),
                       "number_source": details.get("number_source"),
                       "caller_id": details.get("caller_id")}
        return why

    # --- answers to operators ---------------------------------------------------------------
    def _hand_waiting(self) -> None:
        """Give answered calls still inside the bridge deadline to operators now free."""
        while self._waiting and self.operators.next_free() is not None:
            call_id = self._waiting.pop(0)  # taken off before reserving: no one else hands it
            op = self.operators.reserve(call_id)
            self.store.submit(Store.assign_operator, call_id, op.position)
            self._log(call_id).info("call_handed_off", position=op.position, waited=True)
            self._spawn(self._bridge(call_id, op))

    async def _bridge(self, call_id: str, op: Operator) -> None:
        """Put the call through; a person's desk shows the card first (pushed, never after
        the audio)."""
        try:
            if op.human and self.operators.pool.show_card is not None:
                await self.operators.pool.show_card(op, call_id)
            await self.lines.bridge(call_id, op.position)
        except LineError as exc:
            self._log(call_id).warning("bridge_failed", error=str(exc))

    async def _serve_inbound(self) -> None:
        """Callers to free operators: a person's desk rings until he takes the call; a
        simulated operator takes it at once."""
        while self._inbound and self.operators.next_free() is not None:
            call_id = self._inbound.pop(0)
            op = self.operators.reserve(call_id)
            if op.human:
                self.ringing[call_id] = op
                self._log(call_id).info("inbound_offered", position=op.position)
                self._spawn(self._ring_out(call_id, op))
                continue
            await self._answer(call_id, op)

    async def take(self, call_id: str, op: Operator) -> None:
        """The person takes the call ringing on his desk: the line is answered, and the audio
        is put through when the line confirms (LineError: it is no longer ringing for him)."""
        if self.ringing.get(call_id) is not op or op.call_id != call_id:
            raise LineError("this call is no longer ringing for you")
        del self.ringing[call_id]
        self._log(call_id).info("inbound_taken", position=op.position)
        if not await self._answer(call_id, op):
            raise LineError("the caller hung up")

    async def _answer(self, call_id: str, op: Operator) -> bool:
        try:
            await self.lines.answer(call_id)
            return True
        except LineError as exc:  # the caller gave up
            self._log(call_id).info("inbound_gone", error=str(exc))
            if op.call_id == call_id:
                self.operators.release(op, talked=False)
            return False

    async def _ring_out(self, call_id: str, op: Operator) -> None:
        """Not taken in time: the operator is paused, the caller goes to the next free one."""
        await self.clock.sleep(self.take_s)
        if self.ringing.get(call_id) is not op:
            return  # taken, or the caller hung up
        self._reoffer(call_id, op, missed=True)

    def _reoffer(self, call_id: str, op: Operator, *, missed: bool) -> None:
        """The call ringing on ``op``'s desk goes back to the head of the queue."""
        del self.ringing[call_id]
        self._log(call_id).info("inbound_not_taken", position=op.position,
                 reason="rang out" if missed else "desk gone")
        if op.call_id == call_id:
            if missed:
                self.operators.pool.missed(op)
            else:
                self.operators.release(op, talked=False)
        self._inbound.insert(0, call_id)
        self._wake.set()

    def _on_operators(self) -> None:
        # Called from inside the pool's state changes: never reserve from here (re-entrant);
        # the loop wakes at once and hands waiting answers over well inside the 2 s deadline.
        self._wake.set()

    def _on_wrap_end(self, op: Operator, wrap_s: float) -> None:
        self.pacer.observe_wrap_end(wrap_s, self._op_segment.pop(op.position, "default"))

    # --- events from the lines --------------------------------------------------------------
    def on_line_event(self, ev: LineEvent) -> None:
        """A line event; calls of other campaigns are none of this dialer's business."""
        if isinstance(ev, (CallProgress, CallReleased)):
            if not self.owns(ev.call_id):
                return
            if isinstance(ev, CallProgress):
                self._progress(ev)
            else:
                self._finish(ev)
        elif isinstance(ev, InboundCall):
            self._offered(ev)  # alone it takes every caller; the runner routes them
        elif isinstance(ev, LineStatus):
            if ev.in_service:
                self._read_ring(ev.line)
            self._wake.set()
        for listener in self.listeners:
            listener(ev)

    def operator_gone(self, op: Operator) -> None:
        """An operator reserved for one of our calls left his desk before it was put through.

        A card goes back to the list; a call not yet answered is handed to another free
        operator, or, with none, waits for one as a predictive answer does.
        """
        if op.state != RESERVED or op.campaign != self.campaign_id or op.call_id is None:
            return
        call_id = op.call_id
        if self.ringing.get(call_id) is op:
            self._reoffer(call_id, op, missed=False)
            return
        if call_id in self.previews:
            lead, _ = self.previews.pop(call_id)
            self.store.submit(Store.set_preview, lead.account_pk, False)
            self.operators.release(op, talked=False)
            return
        out = self._out.get(call_id)
        if out is None or out.answered is not None:
            return
        self.operators.release(op, talked=False)
        other = self.operators.reserve(call_id)
        self.store.submit(Store.assign_operator, call_id, other.position if other else None)
        log.info("reservation_moved", call_id=call_id, line=out.line,
                 campaign=self.campaign_name, to=other.position if other else None)

    def _progress(self, ev: CallProgress) -> None:
        op = self.operators.by_call(ev.call_id)
        out = self._out.get(ev.call_id)
        if ev.stage == CallStage.ANSWERED:
            if out is not None and out.answered is None:
                out.answered = ev.at
                self.store.submit(Store.mark_answered, ev.call_id, self.clock.wall())
                self.pacer.observe_answered(ev.at - out.launched, self.clock.now(),
                                            out.segment)
            if op is not None:
                self._log(ev.call_id).info("call_handed_off", position=op.position,
                                           waited=False)
                self._spawn(self._bridge(ev.call_id, op))
            elif out is not None:
                self._waiting.append(ev.call_id)
                self._hand_waiting()
        elif ev.stage == CallStage.BRIDGED and op is not None:
            self.operators.talking(op)

    def _offered(self, ev: InboundCall) -> None:
        self._inbound_line[ev.call_id] = ev.line
        self.lines.tag(ev.call_id, campaign=self.campaign_name)
        if self.store.is_blocked(ev.caller):
            self._log(ev.call_id).info("inbound_blocked")
            self._spawn(self._reject(ev.call_id))
            return
        self._log(ev.call_id).info("inbound_call")
        self._inbound.append(ev.call_id)
        self._wake.set()

    async def _reject(self, call_id: str) -> None:
        try:
            await self.lines.hangup(call_id, cause=CAUSE_BUSY)
        except LineError:
            pass

    def _finish(self, ev: CallReleased) -> None:
        out = self._out.pop(ev.call_id, None)
        self._inbound_line.pop(ev.call_id, None)
        if ev.call_id in self._waiting:
            self._waiting.remove(ev.call_id)
        if ev.call_id in self._inbound:
            self._inbound.remove(ev.call_id)
        self.ringing.pop(ev.call_id, None)
        op = self.operators.by_call(ev.call_id)
        if op is not None:
            if out is not None:
                self._op_segment[op.position] = out.segment  # his wrap-up is of this segment
            self.operators.release(op, talked=ev.talk_s > 0 and not ev.abandoned)
        if out is not None and not ev.line_fault:
            if ev.abandoned:
                self.pacer.observe_abandon(self.clock.now(), out.segment)
            elif ev.outcome != Outcome.ANSWERED:
                self.pacer.observe_not_answered(self.clock.now() - out.launched, out.segment)
            elif ev.talk_s > 0:
                self.pacer.observe_talk_end(ev.talk_s, out.segment)
        if ev.inbound:
            self._wake.set()
            return
        if ev.line_fault and ev.outcome != Outcome.ANSWERED:
            # The debtor was never called: put him back, and rest a line that keeps failing so
            # it cannot eat the list while its driver recovers it.
            self.store.submit(Store.requeue_attempt, ev.call_id, ev.reason)
            n = self._line_faults[ev.line] = self._line_faults.get(ev.line, 0) + 1
            if n >= 2:
                self._quarantine[ev.line] = self.clock.now() + min(60, 5 * n)
                log.warning("line_rested_after_faults", line=ev.line, faults=n)
            self._wake.set()
            return
        self._line_faults.pop(ev.line, None)
        if self._stopping and ev.outcome != Outcome.ANSWERED:
            self.store.submit(Store.interrupt_attempt, ev.call_id,
                              "the box stopped while the call rang")
            return
        self.store.submit(Store.finish_attempt, ev.call_id, outcome=ev.outcome.value,
                          q850=ev.q850, reason=ev.reason, ring_s=ev.ring_s, talk_s=ev.talk_s,
                          abandoned=ev.abandoned, retry_scale=1 / self.clock.scale)
        self._wake.set()

    def _seat(self, line: str) -> str | None:
        seat_of = getattr(self.lines, "seat_of", None)
        return seat_of(line) if seat_of is not None else None

    def _seat_pick(self, lines: list[str]):
        """A free line and who may take its call: a line wired to a seat whose operator is free
        first (his alone), else a line any free operator can take. (None, None) when none."""
        for ln in lines:
            seat = self._seat(ln)
            if seat is not None and self.operators.next_free(
                    among=lambda o, seat=seat: o.position == seat) is not None:
                return ln, (lambda o, seat=seat: o.position == seat)
        for ln in lines:
            if self._seat(ln) is None:
                return ln, None
        return None, None

    def _line_for(self, lines: list[str], op: Operator | None) -> str | None:
        """A free line for a call ``op`` takes: one wired to his seat first, else one whose
        audio can reach any seat; never a line wired to another seat (analog-seat modules)."""
        mine = [ln for ln in lines if op is not None and self._seat(ln) == op.position]
        return (mine or [ln for ln in lines if self._seat(ln) is None] or [None])[0]

    def _usable(self, lines: list[str]) -> list[str]:
        """Free lines of the campaign's group, not resting after repeated faults, nor over
        their SIM's calls today.

        Under a profile that wants the caller's official number shown (ru-230fz), a line whose
        number is neither declared nor learnt from its SIM does not dial.
        """
        now = self.clock.now()
        lines = [ln for ln in lines if self._quarantine.get(ln, 0.0) <= now and self.line_ok(ln)]
        if not lines:
            return lines
        infos = self.lines.lines()
        if self.compliance.caller_number_required:
            numbered = {ln.name for ln in infos if ln.details.get("number")}
            for ln in set(lines) - numbered - self._unnumbered:
                self._unnumbered.add(ln)  # said once per line: declare it or let the SIM tell
                log.warning("line_without_number", line=ln, campaign=self.campaign_name,
                            reason="its official number is unknown (profile 'number' or "
                                   "AT+CNUM); the law wants it shown, so it does not dial")
            lines = [ln for ln in lines if ln in numbered]
        if self._day_limits is None:  # a SIM's calls a day: from its profile, fixed
            self._day_limits = {ln.name: ln.details["calls_per_day"] for ln in infos
                                if ln.details.get("calls_per_day")}
        limits = {ln: self._day_limits[ln] for ln in lines if ln in self._day_limits}
        if not limits:
            return lines
        made = self.store.calls_today(limits)  # an index seek per line with a cap
        return [ln for ln in lines if ln not in limits or made.get(ln, 0) < limits[ln]]

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def counters(self) -> dict:
        return self.store.counters(self.campaign_id)


def _answered_since(store: Store, campaign_id: int, since: float) -> list[tuple[float, int]]:
    """(when, abandoned) of the campaign's live answers since ``since``, oldest first."""
    return [(r[0], r[1]) for r in store.db.execute(
        "SELECT created_at, abandoned FROM attempts WHERE campaign_id=? AND "
        "outcome='answered' AND created_at >= ? ORDER BY created_at", (campaign_id, since))]


# --- the law and the next lead, run on the store's writer thread ---------------------------
def ask_the_law(store: Store, profile, lead, campaign_id: int) -> tuple[bool, dict | None]:
    """Check the law before a dial; a refusal is stored with its reason and next time.

    Returns (allowed, the decision's evidence to keep with the attempt).
    """
    ctx = compliance.LeadContext(lead.person_key or store.person_of(lead.account_pk),
                                 phone=lead.number, region=lead.region, tz=lead.tz,
                                 debt=str(lead.account_pk))
    at = datetime.fromtimestamp(store.clock.wall(), timezone.utc)
    try:
        d = compliance.check(profile, ctx, at=at, history=store)
    except compliance.ComplianceError as exc:
        store.hold(lead.account_pk, "compliance_error", str(exc), campaign_id=campaign_id)
        return False, None
    if d.allowed:
        return True, d.evidence()
    codes = ",".join(r.code for r in d.reasons)
    texts = "; ".join(r.text for r in d.reasons)
    until = d.next_allowed_at.timestamp() if d.next_allowed_at else None
    store.hold(lead.account_pk, codes, texts, campaign_id=campaign_id, until=until,
               evidence=d.evidence())  # the decision is the record: no log line per lead
    return False, None


def pick_lead(store: Store, campaign_id: int, profile, operator: str | None, limit: int
              ) -> tuple[object | None, dict | None, int, bool]:
    """Up to ``limit`` leads in priority order until one the law allows, refusals under one
    commit. Returns (lead, its evidence, leads held, whether the limit cut the search short)."""
    held = 0
    with store.tx():  # committed before a lead is returned, and so dialed
        for _ in range(limit):
            lead = store.next_lead(campaign_id, store.clock.wall(), operator=operator)
            if lead is None:
                return None, None, held, False
            allowed, evidence = ask_the_law(store, profile, lead, campaign_id)
            if allowed:
                return lead, evidence, held, False
            held += 1
    return None, None, held, True
