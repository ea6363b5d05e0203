"""Many campaigns at once: one Dialer per running campaign over one set of lines and one floor.

The runner reads the campaigns from the store every ``poll_s`` seconds, so a start, pause or edit
made from the command line or the web admin reaches a running box without a restart. Lines and
operators are shared by turns: the next call goes to the running campaign with the fewest calls
in hand per unit of weight that can place one; each campaign uses only its line group and the
operators it is staffed with, and paces against those operators with its own abandon window.
Line events go to every dialer, which acts on its own calls only; an inbound call goes to the
campaign that holds the caller's account (else to the heaviest running one).
"""
from __future__ import annotations

import asyncio
from typing import Callable

import structlog

from controller.callers import accounts_of_caller
from controller.dialer import CAUSE_BUSY, TAKE_S, Dialer
from controller.holds import DialingHolds
from controller.operators import CampaignFloor, Operator, OperatorPool
from controller.store import Store
from controller.store_campaigns import CampaignConfig
from firmware.clock import Clock
from firmware.lineapi import InboundCall, LineAPI, LineError, LineEvent

log = structlog.get_logger(__name__)


class CampaignRunner:
    """Keeps a dialer running for each running campaign, as the store says."""

    def __init__(self, store: Store, lines: LineAPI, operators: OperatorPool, clock: Clock, *,
                 reserve_inbound: int = 0, poll_s: float = 2.0,
                 sms: Callable[[CampaignConfig], object] | None = None) -> None:
        self.store = store
        self.lines = lines
        self.operators = operators
        self.clock = clock
        self.reserve_inbound = reserve_inbound
        self.poll_s = poll_s
        self.dialers: dict[int, Dialer] = {}
        self.configs: dict[int, CampaignConfig] = {}
        self._sms_factory = sms
        self.sms: dict[int, object] = {}  # campaign id -> its SMS reminders, while running
        self._sms_made: dict[int, object] = {}
        self.listeners: list[Callable[[LineEvent], None]] = []
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._lock = asyncio.Lock()
        self._closing = False  # loops end on it too: 3.11's wait_for can swallow a cancel
        self.holds = DialingHolds()  # any reason set: no campaign places calls
        lines.subscribe(self._on_line_event)
        operators.watch(self._wake.set)
        operators.wrap_limit = self._wrap_limit

    @property
    def hold_reason(self) -> str | None:
        """Why no campaign places calls now (every reason), or None."""
        return self.holds.reason

    async def start(self) -> None:
        await self.reconcile()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._poll()), loop.create_task(self._drive())]

    async def stop(self) -> None:
        self._closing = True
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for sms in list(self.sms.values()):
            await sms.stop()
        self.sms.clear()
        for d in list(self.dialers.values()):
            await d.stop()

    def dialer_of(self, call_id: str) -> Dialer | None:
        return next((d for d in self.dialers.values() if d.owns(call_id)), None)

    def operator_gone(self, op: Operator) -> None:
        """A desk went away: move the calls reserved for it (see Dialer.operator_gone)."""
        d = self.dialers.get(op.campaign) if op.campaign is not None else None
        if d is not None:
            d.operator_gone(op)
        self._wake.set()

    def nudge(self) -> None:
        """Read the store now (a change was just made in this process)."""
        asyncio.get_running_loop().create_task(self.reconcile())

    # --- following the store ----------------------------------------------------------------
    async def reconcile(self) -> None:
        async with self._lock:
            teams = self.store.teams_of_users()
            for op in self.operators.ops:
                if op.username is not None:
                    op.team = teams.get(op.username)
            now = self.clock.wall()
            configs = {c.id: c for c in self.store.campaign_configs()}
            for cfg in configs.values():
                d = self.dialers.get(cfg.id)
                if cfg.status == "running" and d is None:
                    d = Dialer(self.store, self.lines, CampaignFloor(self.operators, cfg.id),
                               self.clock, campaign_id=cfg.id, campaign_name=cfg.name,
                               mode=cfg.mode, compliance_profile=cfg.compliance,
                               reserve_inbound=self.reserve_inbound, managed=True,
                               wake=self._wake, holds=self.holds)
                    self._apply(d, cfg)
                    self.dialers[cfg.id] = d
                    await d.start()
                    log.info("campaign_started", campaign=cfg.name, mode=cfg.mode,
                             compliance=cfg.compliance)
                elif d is not None:
                    self._apply(d, cfg)
                if d is not None:
                    placing = cfg.status == "running" and (
                        cfg.schedule is None or cfg.schedule.open_at(now))
                    if placing and not d.running:
                        d.resume()
                        log.info("campaign_dialing", campaign=cfg.name)
                    elif not placing and d.running:
                        d.pause()
                        log.info("campaign_not_dialing", campaign=cfg.name, status=cfg.status)
                await self._follow_sms(cfg)
            self.configs = configs
            for cid, d in list(self.dialers.items()):
                cfg = configs.get(cid)
                if (cfg is None or cfg.status != "running") and not d.busy():
                    await d.stop()
                    del self.dialers[cid]
            self._wake.set()

    def _apply(self, d: Dialer, cfg: CampaignConfig) -> None:
        d.campaign_name = cfg.name
        d.weight = max(1, cfg.weight)
        d.line_ok = cfg.line_ok
        d.operators.staffs = lambda op, cfg=cfg: cfg.staffs(op.username, op.position,
                                                           team=op.team)
        d.reconfigure(mode=cfg.mode, compliance_profile=cfg.compliance,
                      abandon_target=cfg.abandon_target)
        d.take_s = cfg.take_s or TAKE_S  # a call ringing now keeps the time it was given

    async def _follow_sms(self, cfg: CampaignConfig) -> None:
        """A running campaign's SMS reminders run; one object per campaign for the box's life
        (it listens to the lines for delivery reports)."""
        if self._sms_factory is None:
            return
        sms = self._sms_made.get(cfg.id)
        if cfg.status == "running" and cfg.id not in self.sms:
            if sms is None:
                sms = self._sms_made[cfg.id] = self._sms_factory(cfg)
            if sms is not None:
                self.sms[cfg.id] = sms
                await sms.start()
        elif cfg.status != "running" and cfg.id in self.sms:
            await self.sms.pop(cfg.id).stop()

    def _wrap_limit(self, campaign: int | None) -> tuple[float, str] | None:
        cfg = self.configs.get(campaign) if campaign is not None else None
        if cfg is None or not cfg.wrap_limit_s:
            return None
        return cfg.wrap_limit_s, cfg.wrap_after

    async def _poll(self) -> None:
        while not self._closing:
            await asyncio.sleep(self.poll_s)
            try:
                await self.reconcile()
            except Exception:
                log.exception("campaign_poll_failed")

    # --- sharing lines and operators --------------------------------------------------------
    async def _drive(self) -> None:
        while not self._closing:
            try:
                for d in list(self.dialers.values()):
                    await d.serve()
                await self._turns()
            except Exception:
                log.exception("campaign_turn_failed")
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), 0.25)
            except asyncio.TimeoutError:
                pass

    async def _turns(self) -> None:
        """One call at a time to the campaign with the least in hand per weight that can dial."""
        while True:
            if self.holds:
                return
            order = sorted((d for d in self.dialers.values() if d.running),
                           key=lambda d: (d.load() / d.weight, -d.weight, d.campaign_id))
            for d in order:
                if await d.place_one():
                    break
            else:
                return

    # --- line events ------------------------------------------------------------------------
    def _on_line_event(self, ev: LineEvent) -> None:
        if isinstance(ev, InboundCall):
            d = self._inbound_campaign(ev.caller)
            if d is not None:
                d.on_line_event(ev)
            else:
                log.info("inbound_no_campaign", line=ev.line, call_id=ev.call_id)
                asyncio.get_running_loop().create_task(self._busy(ev.call_id))
        else:
            for d in list(self.dialers.values()):
                d.on_line_event(ev)
            self._wake.set()
        for listener in list(self.listeners):
            listener(ev)

    def _inbound_campaign(self, caller: str | None) -> Dialer | None:
        running = [d for d in self.dialers.values() if d.running]
        if running:
            ids = {d.campaign_id for d in running}
            for _, cid in accounts_of_caller(self.store, caller):
                if cid in ids:
                    return self.dialers[cid]
        return max(running, key=lambda d: (d.weight, -d.campaign_id), default=None)

    async def _busy(self, call_id: str) -> None:
        try:
            await self.lines.hangup(call_id, cause=CAUSE_BUSY)
        except LineError:
            pass
