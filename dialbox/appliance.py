"""The composition root: hardware (real or simulated), line manager, store, campaigns, in one process.

Campaigns are the shop's: the box dials only the campaigns a person started (they keep running
across restarts). With ``--simulate`` on a fresh data directory the demo campaign (200 fictitious
debtors) is loaded and started, so the first command shows a floor at work; ``--no-demo`` leaves
the box empty. On real hardware nothing is ever loaded or started by the box itself.
"""
from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

import structlog

import cext
from controller import campaigns, compliance, occupancy, prompts, sms_templates, users
from controller.sms_pacing import SimPacer
from controller.calllist import import_csv
from controller.campaign_runner import CampaignRunner
from dialbox.backend import BackendMixin
from dialbox.boot import box_status
from controller.dialer import Dialer
from controller.operators import OperatorPool
from controller.sms_inbox import SmsInbox
from controller.store_campaigns import CampaignConfig
from controller.store import Store
from firmware import profiles
from firmware.clock import Clock
from firmware.errors import UserError
from firmware.gsm.dialects import DIALECTS
from firmware.gsm.driver import GsmModule
from firmware.linemanager import LineManager
from firmware.media.plane import MediaPlane
from firmware.media import prompts as media_prompts
from firmware.media.recorder import Recorder
from dialbox.recording import DiskPolicy, RecordingService
from firmware.lineapi import CallReleased, InboundCall, LineEvent
from firmware.sim.modem import NETWORKS as SIM_NETWORKS
from firmware.sim.modem import SimModem
from firmware.sim.population import Population
from firmware.sim.voice import PositionVoice

log = structlog.get_logger(__name__)

DEMO_CAMPAIGN = "Демо-кампания"
_NO_COUNTERS = {"attempts": 0, "answered": 0, "busy": 0, "no_answer": 0, "failed": 0,
                "abandoned": 0, "in_progress": 0, "leads_left": 0, "line_faults": 0, "held": 0}


DEFAULT_SIMULATED = ("sim-gsm-4", "e1-1span")
KEEP_CONVERSATIONS = 10_000  # simulated: the last conversations whose debtor's mind is kept


@dataclass
class Settings:
    simulate: bool = False
    # With ``simulate``: the profiles' hardware too (True), or only the floor (simulated
    # operators and the demo) with the profiles' ports opened as they are (``--simulate floor``:
    # real modems, or simulators running outside the box).
    simulate_hardware: bool = True
    profiles: tuple[str, ...] = ()  # hardware profiles of this box; empty: the simulated default
    operators: int = 3
    data: Path = Path("dialbox-data")
    time_scale: float = 1.0
    calllist: Path | None = None  # the demo's call list
    abandon_message: Path | None = None  # the demo campaign's abandon message (audio file)
    demo: bool = True  # --simulate on a fresh data directory: load and start the demo campaign
    holds: dict = field(default_factory=dict)  # reasons to hold dialing from the first cycle on
    seed: int | None = None
    wrap_mean_s: float = 10.0
    compliance: str = "ru-230fz"  # of the demo campaign when it is made
    mode: str = "progressive"  # of the demo campaign when it is made
    reserve_inbound: int = 0  # blended mode: operators kept free for inbound calls
    sms_interval_s: float = 60.0  # how often SMS reminders due are looked for (clock seconds)
    # Recordings: kept this many days (the compliance profile may set it), and the free space
    # below which the dashboard warns and, lower, automatic dialing pauses.
    recording_retention_days: float = 3 * 365 + 1
    disk_warn_free_mb: float = 2048.0
    disk_stop_free_mb: float = 512.0
    sim_transport: str = "pty"  # simulated modems on ptys, or "tcp" (a ser2net-style bridge)


def _close_outcomes(store: Store, started: float) -> None:
    closed = store.close_outcomes_after_restart(started)
    if closed:
        log.warning("calls_left_without_outcome", count=closed)


@dataclass
class Appliance(BackendMixin):
    settings: Settings
    clock: Clock | None = None  # the one clock; by default real time at settings.time_scale
    store: Store = field(init=False)
    lines: LineManager = field(init=False)
    media: MediaPlane = field(init=False)
    operators: OperatorPool = field(init=False)
    runner: CampaignRunner = field(init=False)
    sims: list[SimModem] = field(default_factory=list)
    _sim_ports: dict[str, str] = field(default_factory=dict)  # simulated module -> its port
    devices: dict[str, list] = field(default_factory=dict)  # profile name -> its drivers
    _applying: dict = field(default_factory=dict)  # profile name -> swap waiting for calls
    _profile_names: list = field(default_factory=list)
    e1_spans: list = field(default_factory=list)
    started_at: float = 0.0
    initial_password: str | None = None
    listeners: list = field(default_factory=list)
    _inbound_callers: dict = field(default_factory=dict)  # inbound call id -> caller number
    conversations: dict = field(default_factory=dict)  # simulated: call id -> Conversation
    operator_voices: dict = field(default_factory=dict)  # simulated: position -> PositionVoice
    _prompt_cache: dict = field(default_factory=dict)  # (path, mtime) -> PCM

    async def start(self) -> None:
        s = self.settings
        if s.operators < 0:
            raise UserError(f"--operators must be 0 or more, got {s.operators}")
        from controller.compliance.profiles import OPTIONS, PROFILES
        if s.compliance not in PROFILES and s.compliance not in OPTIONS:
            raise UserError(f"compliance profile {s.compliance!r} is unknown; known: "
                            f"{', '.join([*PROFILES, *OPTIONS])}")
        if self.clock is None:
            self.clock = Clock(s.time_scale)
        names = s.profiles or (DEFAULT_SIMULATED if s.simulate else ())
        if not names:
            raise UserError("no hardware profile: give --profile FILE (repeat it for several "
                            "devices), or --simulate to run on the simulated hardware")
        loaded = [profiles.load(self._profile_source(n))
                  for n in names]  # every profile checked before anything opens
        self._profile_names = list(names)
        self.store = Store(Path(s.data) / "dialbox.sqlite3", self.clock)
        self.store.start_writer()  # the dialer's SQLite work runs off the event loop
        try:
            await self._start(loaded)
        except BaseException:
            await self.stop()
            raise

    async def _start(self, loaded: list[profiles.Profile]) -> None:
        s = self.settings
        recovered = self.recovered = self.store.recover_interrupted()
        if recovered:
            log.warning("attempts_interrupted_by_restart", count=recovered)
        # One outcome per call, always: calls left without one when the box stopped get "no
        # outcome chosen" (on the writer: it is a scan, and it must not hold up the start).
        self.store.submit(_close_outcomes, self.clock.wall())
        self.initial_password = self._bootstrap_admin()
        drivers: list = []
        for k, profile in enumerate(loaded):
            if profile.driver == "gsm":
                devices = await self._gsm_drivers(profile, seed_base=1000 * k)
            else:
                devices = self._e1_drivers(profile, seed_base=1000 * k)
            self.devices[self._profile_names[k]] = devices  # what applying the profile swaps
            drivers += devices
        # One media plane carries every line's and position's audio. Audio is real time: with a
        # scaled or virtual clock the plane stays off and drivers confirm bridges themselves.
        self.media = MediaPlane(self.clock)
        if self.clock.scale == 1 and not self.clock.virtual:
            await self.media.start()
        # Each line rings as long as its own profile says (GSM 40 s, E1 ring_timeout_s).
        # The release guard covers an abandon message playing before the hangup.
        self.lines = LineManager(drivers, self.clock, release_guard_s=15.0, plane=self.media)
        self.lines.prompt_for = self._prompt_for
        self.lines.subscribe(self._on_line_event)
        # Received SMS: kept, then deleted from the SIM; listening before the lines start, as
        # what was left on a SIM comes up right after the module's init.
        self.sms_inbox = SmsInbox(self.store, self.lines)
        self.lines.subscribe(self.sms_inbox.on_line_event)
        await self.lines.start()
        if s.simulate and s.demo and not self.store.campaigns():
            # on a connection and thread of its own: the lines are up, their timers run
            await self.store.apart(self._load_demo)
        elif s.abandon_message is not None:
            await self.store.apart(self._demo_abandon_message)
        # Simulated operators only on simulated hardware; real calls go to people at the desk.
        self.operators = OperatorPool(s.operators if s.simulate else 0, self.clock,
                                      wrap_mean_s=s.wrap_mean_s, seed=s.seed)
        self.operators.on_wrap_timeout = self._wrap_timed_out
        for op in self.operators.ops:
            self.media.add_leg(op.position, "position")
        self.operators.show_card = self._show_card  # the card before the audio, pushed
        self.operators.watch(self._desks_changed)
        if s.simulate:
            self._talk = Population.from_dict(dict(self._default_population(), seed=s.seed))
            self.operators.on_sim_wrap = self._sim_disposition
            for op in self.operators.ops:  # each speaks his own signal, and listens, per call
                self.operator_voices[op.position] = PositionVoice(
                    self.media.legs[op.position], self.clock, op.name,
                    call_of=lambda op=op: op.call_id if op.state == "talking" else None)
        self.recording = RecordingService(
            self.store, self.lines, Recorder(self.media, Path(s.data) / "recordings", self.clock),
            Path(s.data), self.clock, operator_of=self._position_of,
            retention_days=self._retention_days(),
            disk=DiskPolicy(s.disk_warn_free_mb, s.disk_stop_free_mb), on_disk=self._on_disk)
        self.lines.subscribe(self.recording.on_line_event)
        await self.recording.start()
        self._sms_per_sim = self._sms_limit(loaded)
        # One pace per SIM for every campaign's messages; a profile may set its own interval.
        self.sms_pacer = SimPacer(
            self.clock, seed=s.seed, store=self.store,
            interval_of=lambda ln: self._limits_of(ln).get("sms_min_interval_s"))
        self.runner = CampaignRunner(self.store, self.lines, self.operators, self.clock,
                                     reserve_inbound=s.reserve_inbound, sms=self._sms_for)
        self.runner.holds.set("disk", self.recording.pause_reason())
        self.runner.holds.update(s.holds)  # e.g. the clock, read before anything dials
        await self.runner.start()
        self._housekeeping_task = asyncio.get_running_loop().create_task(self._housekeeping())
        self._occupancy_task = asyncio.get_running_loop().create_task(
            occupancy.keep(self.store, self.operators, self.clock))
        self.started_at = self.clock.now()
        log.info("appliance_started", lines=len(self.lines.channels), operators=s.operators,
                 simulate=s.simulate, core=cext.IMPLEMENTATION)

    def _load_demo(self, store: Store) -> None:
        """The demo campaign: made, loaded with the fictitious debtors, started (by the box)."""
        s = self.settings
        cfg = campaigns.create(store, DEMO_CAMPAIGN, who="dialbox", source="demo",
                               creditor="Демо", mode=s.mode, compliance=s.compliance, demo=True)
        source = s.calllist or Path(str(files("controller").joinpath("data/demo-debtors.csv")))
        result = import_csv(store, cfg.id, source, report_dir=Path(s.data) / "reports")
        log.info("calllist_imported", campaign=DEMO_CAMPAIGN, **result.summary())
        # Who the demo's SMS say they are from (the law wants a creditor and a phone).
        sms_templates.save(store, cfg.id, by="demo", source="demo",
                           creditor_name="ООО «Демо-Кредит»", contact_phone="+74950000000")
        self._demo_abandon_message(store)
        campaigns.act(store, DEMO_CAMPAIGN, "start", who="dialbox", source="demo",
                      data=Path(s.data))

    def _demo_abandon_message(self, store: Store) -> None:
        """--abandon-message: the demo campaign's (us-regf predictive needs one)."""
        s = self.settings
        if s.abandon_message is None:
            return
        if not Path(s.abandon_message).is_file():
            raise UserError("{path}: abandon message file not found", path=str(s.abandon_message))
        cfg = next((c for c in store.campaign_configs() if c.demo), None)
        if cfg is None:
            raise UserError("--abandon-message is for the demo campaign, and this data "
                            "directory has none: upload it with dialbox prompts upload")
        prompts.upload(store, s.data, cfg.id, "abandon",
                       Path(s.abandon_message).read_bytes(),
                       filename=Path(s.abandon_message).name, who="system", source="start")

    def _sms_for(self, cfg: CampaignConfig):
        from controller.sms import SmsReminders
        return SmsReminders(self.store, self.lines, self.clock, campaign_id=cfg.id,
                            compliance_profile=cfg.compliance,
                            per_sim_per_day=self._sms_per_sim,
                            interval_s=self.settings.sms_interval_s, pacer=self.sms_pacer)

    def campaigns_line(self) -> str:
        """One line for the console: what dials now, or how to make it dial."""
        cfgs = self.store.campaign_configs()
        running = [c.name for c in cfgs if c.status == "running"]
        if running:
            demo = any(c.demo and c.status == "running" for c in cfgs)
            return (f"dialing: {', '.join(running)}" +
                    (" (the demo: fictitious debtors, started because --simulate began on an "
                     "empty data directory)" if demo else ""))
        if cfgs:
            return ("no campaign is running: start one with 'dialbox campaign start NAME' or "
                    "on the campaigns page")
        return ("no campaigns yet: 'dialbox campaign create NAME', 'dialbox import --campaign "
                "NAME FILE', then 'dialbox campaign start NAME' (or the campaigns page)")

    @property
    def dialer(self) -> Dialer | None:
        """The dialer of the demo campaign, else of the first running one (None: none runs)."""
        dialers = self.runner.dialers
        demo = next((d for cid, d in dialers.items()
                     if self.runner.configs.get(cid) and self.runner.configs[cid].demo), None)
        return demo or next(iter(dialers.values()), None)

    async def _housekeeping(self) -> None:
        """Hourly: promises whose date passed unpaid become broken."""
        from datetime import datetime
        from controller.payments import settle_promises
        while True:
            try:
                today = datetime.fromtimestamp(self.clock.wall()).date()
                kept, broken = await self.store.run(settle_promises, today)
                if kept or broken:
                    log.info("promises_settled", kept=kept, broken=broken)
            except Exception:
                log.exception("housekeeping_failed")
            await self.clock.sleep(3600)

    @staticmethod
    def _sms_limit(loaded: list[profiles.Profile]) -> int:
        limits = [int(p.limits.get("sms_per_sim_per_day", 100)) for p in loaded
                  if p.driver == "gsm"]
        return min(limits) if limits else 100

    def _profile_source(self, name: str) -> str:
        """The shop's edited copy of a profile (DATA/profiles/NAME.yaml) wins over the bundled."""
        own = Path(self.settings.data) / "profiles" / f"{name}.yaml"
        return str(own) if own.is_file() else name

    async def _gsm_drivers(self, profile: profiles.Profile, *, seed_base: int) -> list:
        """One driver per module; with --simulate each module is a simulated modem on a pty
        (a module simulated already keeps its modem: a new profile talks to the same one)."""
        s = self.settings
        drivers = []
        running = {sim.name: sim for sim in self.sims}
        for i, mod in enumerate(profile.modules):
            port = mod.port
            if s.simulate and s.simulate_hardware and mod.name in running:
                sim = running[mod.name]
                port = self._sim_ports[mod.name]
            elif s.simulate and s.simulate_hardware:
                seed = None if s.seed is None else s.seed + seed_base + i
                pop = Population.from_dict(dict(profile.population, seed=seed))
                sim = SimModem(mod.name, DIALECTS[profile.dialect], pop, self.clock,
                               seed=None if seed is None else seed + 100,
                               network=SIM_NETWORKS[i % len(SIM_NETWORKS)])
                port = await (sim.start_tcp() if s.sim_transport == "tcp" else sim.start())
                self.sims.append(sim)
                self._sim_ports[mod.name] = port
            elif port.startswith("sim://"):
                raise UserError(f"{profile.source}: port {port} is simulated; run with "
                                "--simulate, or give a profile with real ports")
            audio_port = sim.audio_path if s.simulate and s.simulate_hardware else mod.audio_port
            drivers.append(GsmModule(mod.name, port, profile, self.clock, baud=mod.baud,
                                     number=mod.number, audio_port=audio_port, seat=mod.seat))
        return drivers

    def _e1_drivers(self, profile: profiles.Profile, *, seed_base: int) -> list:
        """E1 spans; with --simulate each has the operator's switch (NT) simulated behind it."""
        from firmware.e1.profile import spans_from_profile
        s = self.settings
        pop = (lambda i: Population.from_dict(dict(
            self._default_population(), seed=None if s.seed is None else s.seed + seed_base + i)))
        spans = spans_from_profile(profile.raw, simulate=s.simulate and s.simulate_hardware,
                                   clock=self.clock,
                                   population=pop, seed=s.seed, audio=True)
        self.e1_spans.extend(spans)
        return spans

    def _retention_days(self) -> float:
        """How long recordings are kept: what the campaigns' compliance profiles want (the
        longest), else the box's setting."""
        wanted = []
        for (name,) in self.store.db.execute("SELECT DISTINCT compliance_profile FROM campaigns"):
            try:
                days = compliance.get_profile(name).recording_retention_days
            except compliance.ComplianceError:
                continue
            if days:
                wanted.append(days)
        return float(max(wanted)) if wanted else self.settings.recording_retention_days

    def _prompt_for(self, call_id: str, kind: str) -> bytes | None:
        """The campaign's prompt for this call (inbound calls: the running campaign's); the
        recording notice only under a profile that wants one."""
        row = self.store.db.execute("SELECT campaign_id FROM attempts WHERE call_id=?",
                                    (call_id,)).fetchone()
        dialer = self.runner.dialer_of(call_id) if row is None else None
        campaign_id = row[0] if row else (dialer.campaign_id if dialer else None)
        if campaign_id is None:
            return None
        if kind == "notice":
            prof = self.store.db.execute("SELECT compliance_profile FROM campaigns WHERE id=?",
                                         (campaign_id,)).fetchone()
            if prof is None or not compliance.get_profile(prof[0]).recording_notice:
                return None
        p = prompts.path(self.store, self.settings.data, campaign_id, kind)
        if p is None:
            return None
        key = (str(p), p.stat().st_mtime_ns)
        pcm = self._prompt_cache.get(key)
        if pcm is None:
            pcm = self._prompt_cache[key] = media_prompts.read_wav(p)
        return pcm

    def _position_of(self, call_id: str) -> str | None:
        op = self.operators.by_call(call_id) if hasattr(self, "operators") else None
        return op.position if op is not None else None

    def _on_disk(self, reason: str | None) -> None:
        """The recordings disk filled up (reason) or has room again (None)."""
        if hasattr(self, "runner"):
            self.runner.holds.set("disk", reason)
        if reason:
            log.error("dialing_paused", reason=reason)

    async def _sim_disposition(self, op, call_id: str) -> None:
        """A simulated operator records what the simulated debtor said (kept for tests)."""
        row = self.store.db.execute(
            "SELECT a.account_pk, acc.debt_amount FROM attempts a JOIN accounts acc ON "
            "acc.id = a.account_pk WHERE a.call_id=?", (call_id,)).fetchone()
        if row is None:
            return
        talk = self._talk.conversation()
        self.conversations[call_id] = talk
        while len(self.conversations) > KEEP_CONVERSATIONS:  # a demo box that runs for days
            del self.conversations[next(iter(self.conversations))]
        try:  # on the store's writer thread, after the call's own result
            if not talk.rpc:
                await self.store.run(Store.record_disposition, call_id, "third_party")
            elif talk.promise_share > 0:
                from datetime import datetime, timedelta
                amount = round((row["debt_amount"] or 1000.0) * talk.promise_share, 2)
                today = datetime.fromtimestamp(self.clock.wall()).date()
                await self.store.run(Store.record_disposition, call_id, "promise",
                                     amount=amount, date=today + timedelta(days=7))
            else:
                await self.store.run(Store.record_disposition, call_id, "rpc")
        except UserError as exc:
            log.warning("sim_disposition_refused", call_id=call_id, error=str(exc))

    def _default_population(self) -> dict:
        return dict(profiles.load("sim-gsm-4").population)

    async def stop(self) -> None:
        """Stop dialing, hang up every call, close the database, release the ptys."""
        pending = list(self._applying.values())  # profiles waiting for calls to end
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for name in ("_housekeeping_task", "_occupancy_task"):
            task = getattr(self, name, None)
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if hasattr(self, "runner"):
            await self.runner.stop()
        if hasattr(self, "sms_inbox"):
            await self.sms_inbox.stop()
        if hasattr(self, "lines"):
            await self.lines.stop()
        if hasattr(self, "recording"):
            await self.recording.stop()
        if hasattr(self, "operators"):
            await self.operators.stop()
            if hasattr(self, "store"):
                occupancy.flush(self.store, self.operators)  # the floor's time survives
        if hasattr(self, "media"):
            await self.media.stop()
        for voice in self.operator_voices.values():
            voice.close()
        self.operator_voices.clear()
        for sim in self.sims:
            await sim.stop()
        self.sims.clear()
        if hasattr(self, "store"):
            self.store.close()
        log.info("appliance_stopped")

    def _bootstrap_admin(self) -> str | None:
        """No default password: the first start makes a random one and says where it is."""
        if users.count(self.store) > 0:
            return None
        password = secrets.token_urlsafe(12)
        users.add(self.store, "admin", password, role="admin")
        path = Path(self.settings.data) / "initial-admin-password"
        path.write_text(password + "\n", encoding="utf-8")
        path.chmod(0o600)
        return password

    def _on_line_event(self, ev: LineEvent) -> None:
        if isinstance(ev, InboundCall):
            self._inbound_callers[ev.call_id] = ev.caller
        elif isinstance(ev, CallReleased):
            self._inbound_callers.pop(ev.call_id, None)
        for listener in list(self.listeners):
            listener(ev)

    # --- what the web admin shows -----------------------------------------------------------
    def _pacing(self, dialer: Dialer | None) -> dict | None:
        d = dialer.last_decision if dialer is not None else None
        if d is None:
            return None
        w = dialer.pacer.window
        return {"mode": d.mode, "reason": d.reason, "fallback": d.fallback,
                "abandon_rate": round(w.rate(self.clock.now()), 4)}

    def _campaign_status(self, cfg: CampaignConfig, counts: dict | None = None) -> dict:
        d = self.runner.dialers.get(cfg.id)
        staffed = [o for o in self.operators.ops
                   if cfg.staffs(o.username, o.position, team=o.team)]
        states: dict[str, int] = {}
        for o in staffed:
            states[o.state] = states.get(o.state, 0) + 1
        return {"name": cfg.name, "creditor": cfg.creditor, "status": cfg.status,
                "running": cfg.status == "running", "dialing": bool(d and d.running),
                "compliance": cfg.compliance, "mode": cfg.mode, "weight": cfg.weight,
                "demo": cfg.demo, "pacing": self._pacing(d),
                "hold_reason": self.runner.hold_reason,
                "counters": counts if counts is not None else
                _campaign_counts(self.store, [cfg.id], self.clock.wall())[cfg.id],
                "operators": states}

    def health(self) -> dict:
        lines = self.lines.lines()
        up = sum(1 for ln in lines if ln.in_service)
        disk = dict(self.recording.disk) if hasattr(self, "recording") else {"level": "ok"}
        status = "ok" if up == len(lines) else ("degraded" if up else "down")
        warnings = []
        if disk["level"] != "ok":
            status = "degraded" if status == "ok" else status
            warnings.append({"code": f"recordings_disk_{disk['level']}",
                             "free_mb": disk["free_mb"], "limit_mb": disk["warn_free_mb"]
                             if disk["level"] == "low" else disk["stop_free_mb"]})
        return {"status": status,
                "lines": {"total": len(lines), "in_service": up},
                "recordings_disk": disk, "warnings": warnings,
                "media": {"running": self.media.running, "late_ticks": self.media.late_ticks}
                if hasattr(self, "media") else None,
                "core": cext.IMPLEMENTATION,
                "uptime_s": round(self.clock.real(self.clock.now() - self.started_at), 1)}

    async def status_live(self) -> dict:
        """status(), its campaigns' counts read on the store's reader thread: the dashboard's
        feed asks 4 times a second, and over a list of 200,000 they take about 100 ms. Pages
        open at once share one count (one in progress, or one younger than 0.2 s)."""
        ids = tuple(c.id for c in self.store.campaign_configs() if c.status != "archived")
        loop = asyncio.get_running_loop()
        shared = getattr(self, "_live_counts", None)
        if shared is None or shared[0] != ids or (shared[2].done() and
                                                  loop.time() - shared[1] > 0.2):
            fut = asyncio.ensure_future(self.store.read(_campaign_counts, list(ids),
                                                        self.clock.wall()))
            shared = self._live_counts = (ids, loop.time(), fut)
        return self.status(counts=await asyncio.shield(shared[2]))

    def status(self, counts: dict[int, dict] | None = None) -> dict:
        counts = counts or {}
        shown = [self._campaign_status(c, counts.get(c.id)) for c in self.store.campaign_configs()
                 if c.status != "archived"]
        return {
            "lines": [{"name": ln.name, "kind": ln.kind, "state": ln.state,
                       "in_service": ln.in_service, "reason": ln.reason,
                       "signal_dbm": ln.details.get("signal_dbm"),
                       "operator": ln.details.get("operator")} for ln in self.lines.lines()],
            "campaign": self._headline(shown),
            "campaigns": shown,
            "operators": self._operators(),
            "health": self.health(),
            "box": box_status(self),
            "holds": self.runner.holds.as_dict(),
        }


    @staticmethod
    def _headline(shown: list[dict]) -> dict:
        """The one campaign the old dashboard header shows: the first running, else the first."""
        first = next((c for c in shown if c["running"]), shown[0] if shown else None)
        if first is None:
            return {"name": "—", "running": False, "compliance": "", "mode": "",
                    "pacing": None, "hold_reason": None, "counters": dict(_NO_COUNTERS)}
        return first

    def _operators(self) -> list[dict]:
        """Each operator's state, for how long, why, on which campaign, and which he works."""
        names = {c.id: c.name for c in self.runner.configs.values()}
        cfgs = [c for c in self.runner.configs.values() if c.status == "running"]
        out = self.operators.snapshot()
        for row, op in zip(out, self.operators.ops):
            row["campaign"] = names.get(op.campaign)
            row["campaigns"] = [c.name for c in cfgs
                                if c.staffs(op.username, op.position, team=op.team)]
        return out


def _campaign_counts(store: Store, ids: list[int], now: float) -> dict[int, dict]:
    """The dashboard tiles of these campaigns (any thread's store)."""
    return {cid: dict(store.counters(cid), held=store.held_count(cid, now)) for cid in ids}


async def run_forever(app: Appliance) -> None:
    """Run until cancelled (used by tests and the console)."""
    await app.start()
    try:
        while True:
            await asyncio.sleep(3600)
    finally:
        await app.stop()
