"""The campaign dialer: picks leads, places calls on free lines, hands answers to operators."""
from __future__ import annotations

import asyncio
import itertools
import uuid
from datetime import datetime, timezone

import structlog

from controller import compliance
from controller.operators import OperatorPool
from controller.store import Store
from firmware.clock import Clock
from firmware.lineapi import (CallProgress, CallReleased, CallStage, InboundCall, LineAPI,
                              LineError, LineEvent, LineStatus, Outcome)

log = structlog.get_logger(__name__)


class Dialer:
    """Progressive mode: one call per free operator, the operator reserved before the call."""

    def __init__(self, store: Store, lines: LineAPI, operators: OperatorPool, clock: Clock, *,
                 campaign_id: int, campaign_name: str,
                 compliance_profile: str = compliance.DEFAULT_PROFILE) -> None:
        self.store = store
        self.lines = lines
        self.operators = operators
        self.clock = clock
        self.campaign_id = campaign_id
        self.campaign_name = campaign_name
        self.compliance = compliance.get_profile(compliance_profile)
        self.held = 0  # decisions not to dial, this run
        self.running = False
        self._task: asyncio.Task | None = None
        self._wake = asyncio.Event()
        self._calls: dict[str, str] = {}  # call id -> operator position
        self._line_faults: dict[str, int] = {}  # consecutive faults per line
        self._quarantine: dict[str, float] = {}  # line -> loop time it may be used again
        self._seq = itertools.count(1)
        self.listeners: list = []  # callables(event) for the live feed
        lines.subscribe(self.on_line_event)

    async def start(self) -> None:
        self.running = True
        self.store.set_campaign_status(self.campaign_id, "running")
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        self.running = False
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.store.set_campaign_status(self.campaign_id, "paused")

    async def _loop(self) -> None:
        while self.running:
            try:
                await self._place_calls()
            except Exception:
                log.exception("dialer_cycle_failed", campaign=self.campaign_name)
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), 0.25)
            except asyncio.TimeoutError:
                pass

    async def _place_calls(self) -> None:
        while self.running:
            free_lines = self._usable(self.lines.free_lines())
            if not free_lines or not self.operators.free():
                return
            lead = self.store.next_lead(self.campaign_id, self.clock.wall())
            if lead is None:
                return
            if not self._allowed(lead):
                continue
            call_id = f"{uuid.uuid4().hex[:12]}"
            op = self.operators.reserve(call_id)
            if op is None:
                return
            line = free_lines[0]
            self.store.begin_attempt(self.campaign_id, lead, line, call_id, op.position)
            self._calls[call_id] = op.position
            log.info("call_placed", line=line, call_id=call_id, campaign=self.campaign_name)
            try:
                await self.lines.dial(line, lead.number, call_id=call_id)
            except LineError as exc:
                log.warning("dial_refused", line=line, call_id=call_id,
                            campaign=self.campaign_name, error=str(exc))
                self._finish(CallReleased(line, call_id, Outcome.FAILED, None, str(exc), 0, 0,
                                          self.clock.now(), line_fault=True))

    def _allowed(self, lead) -> bool:
        """Check the law before every dial; a refusal is stored with its reason and next time."""
        ctx = compliance.LeadContext(lead.account_id, phone=lead.number, region=lead.region,
                                     tz=lead.tz)
        at = datetime.fromtimestamp(self.clock.wall(), timezone.utc)
        try:
            d = compliance.check(self.compliance, ctx, at=at, history=self.store)
        except compliance.ComplianceError as exc:
            self.store.hold(lead.account_pk, "compliance_error", str(exc),
                            campaign_id=self.campaign_id)
            self.held += 1
            return False
        if d.allowed:
            return True
        codes = ",".join(r.code for r in d.reasons)
        texts = "; ".join(r.text for r in d.reasons)
        until = d.next_allowed_at.timestamp() if d.next_allowed_at else None
        self.store.hold(lead.account_pk, codes, texts, campaign_id=self.campaign_id, until=until)
        self.held += 1
        log.debug("lead_held", campaign=self.campaign_name, codes=codes)
        return False

    # --- events from the lines --------------------------------------------------------------
    def on_line_event(self, ev: LineEvent) -> None:
        if isinstance(ev, CallProgress) and ev.call_id in self._calls:
            op = self.operators.by_call(ev.call_id)
            if ev.stage == CallStage.ANSWERED and op is not None:
                asyncio.get_running_loop().create_task(self._bridge(ev, op.position))
            elif ev.stage == CallStage.BRIDGED and op is not None:
                self.operators.talking(op)
        elif isinstance(ev, CallReleased) and ev.call_id in self._calls:
            self._finish(ev)
        elif isinstance(ev, InboundCall):
            log.info("inbound_call", line=ev.line, call_id=ev.call_id)
        elif isinstance(ev, LineStatus):
            self._wake.set()
        for listener in self.listeners:
            listener(ev)

    async def _bridge(self, ev: CallProgress, position: str) -> None:
        try:
            await self.lines.bridge(ev.call_id, position)
        except LineError as exc:
            log.warning("bridge_failed", line=ev.line, call_id=ev.call_id, error=str(exc))

    def _usable(self, lines: list[str]) -> list[str]:
        """Free lines not resting after repeated faults of their own."""
        now = asyncio.get_running_loop().time()
        return [ln for ln in lines if self._quarantine.get(ln, 0.0) <= now]

    def _finish(self, ev: CallReleased) -> None:
        self._calls.pop(ev.call_id, None)
        op = self.operators.by_call(ev.call_id)
        if op is not None:
            self.operators.release(op, talked=ev.talk_s > 0 and not ev.abandoned)
        if ev.line_fault:
            # The debtor was never called: put him back, and rest a line that keeps failing so
            # it cannot eat the list while its driver recovers it.
            self.store.requeue_attempt(ev.call_id, ev.reason)
            n = self._line_faults[ev.line] = self._line_faults.get(ev.line, 0) + 1
            if n >= 2:
                self._quarantine[ev.line] = asyncio.get_running_loop().time() + min(60, 5 * n)
                log.warning("line_rested_after_faults", line=ev.line, faults=n)
            self._wake.set()
            return
        self._line_faults.pop(ev.line, None)
        self.store.finish_attempt(ev.call_id, outcome=ev.outcome.value, q850=ev.q850,
                                  reason=ev.reason, ring_s=ev.ring_s, talk_s=ev.talk_s,
                                  abandoned=ev.abandoned, retry_scale=1 / self.clock.scale)
        self._wake.set()

    def counters(self) -> dict:
        return self.store.counters(self.campaign_id)

