"""``dialbox run`` as a service: boot, web admin, console, supervision, watchdog, until stopped."""
from __future__ import annotations

import asyncio
import errno
import os
import signal
from dataclasses import dataclass, field
from pathlib import PurePath

import structlog
from aiohttp import web

from dialbox import logring, sdnotify
from dialbox.appliance import Appliance, Settings
from dialbox.boot import BootReport, DataLock, load_profiles, set_timezone
from dialbox.config import ApplianceConfig, parse_listen
from dialbox.supervise import Supervisor
from firmware.errors import N_, Msg, UserError, reason_of

log = structlog.get_logger(__name__)


@dataclass
class Runtime:
    """What the runtime adds to the appliance; the console, dashboard and /metrics read it."""

    config: ApplianceConfig
    boot: BootReport
    supervisor: Supervisor | None = None
    lag: sdnotify.LoopLag = field(default_factory=sdnotify.LoopLag)
    stop_requested: asyncio.Event = field(default_factory=asyncio.Event)
    exit_code: int = 0
    web_urls: list[str] = field(default_factory=list)
    extras: dict = field(default_factory=dict)  # console, clock, backup: set as they start

    def request_stop(self, exit_code: int = 0) -> None:
        self.exit_code = exit_code
        self.stop_requested.set()


async def serve(cfg: ApplianceConfig, settings: Settings, *, announce=print,
                ready=None, tls=None) -> int:
    """Boot the box and run it until SIGINT/SIGTERM or a console ``reboot``; the exit code.
    ``ready(app)`` is called once everything started (tests hold the appliance through it);
    ``tls`` is (web_admin.https.Https, (host, port, ssl context) or None) for HTTPS."""
    report = BootReport()
    lock = DataLock(cfg.data)
    lock.acquire()
    ring = logring.install(cfg.log_lines)
    try:
        return await _serve(cfg, settings, report, announce, ready, ring, tls)
    finally:
        logring.remove(ring)
        lock.release()


async def _serve(cfg: ApplianceConfig, settings: Settings, report: BootReport, announce,
                 ready, ring: logring.LogRing, tls) -> int:
    report.add(N_("config"), True, Msg("read from {file}", file=PurePath(cfg.source))
               if cfg.source else N_("no config file: flags and defaults"))
    set_timezone(cfg.timezone, report)
    if cfg.profiles:
        good = load_profiles(cfg, report)
        if not good:
            raise UserError("no hardware profile could be loaded:\n{problems}",
                            problems="\n".join(f"  {i.what}: {i.detail}" for i in report.failed))
        settings.profiles = tuple(good)
    from dialbox import clocksync
    settings.holds.update(clocksync.hold_before_boot(cfg, settings.simulate))
    app = Appliance(settings)
    runtime = app.runtime = Runtime(cfg, report)
    runtime.extras["log"] = ring
    try:
        await app.start()
    except Exception as exc:
        report.add(N_("appliance"), False, reason_of(exc))
        raise
    _report_started(app, report)
    runner = await _start_web(app, cfg, report, tls)
    sup = runtime.supervisor = Supervisor(app.clock, backoff_s=cfg.restart_backoff_s,
                                          backoff_max_s=cfg.restart_backoff_max_s)
    try:
        watch_appliance(sup, app)
        watchdog_s = sdnotify.watchdog_interval_s() if cfg.watchdog else None
        sup.run(N_("heartbeat"), lambda: sdnotify.heartbeat(runtime.lag, watchdog_s=watchdog_s))
        report.add(N_("watchdog"), True, Msg("systemd watchdog every {seconds} s",
                                             seconds=f"{watchdog_s / 2:g}")
                   if watchdog_s else N_("not run by systemd with WatchdogSec: off"))
        for starter in RUNTIME_PARTS:
            await starter(app, runtime, report)
        for line in report.text():
            log.info("boot_report", line=line)
        log.info("boot_done", started=len(report.items) - len(report.failed),
                 failed=len(report.failed))
        _announce(app, runtime, settings, announce)
        sdnotify.notify(f"READY=1\nSTATUS={_status_line(app)}")
        if ready is not None:
            ready(app)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, runtime.request_stop)
        try:
            await runtime.stop_requested.wait()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
        sdnotify.notify("STOPPING=1")
    finally:
        await sup.stop()
        for stop in reversed(runtime.extras.get("stoppers", [])):
            await stop()
        await runner.cleanup()
        await app.stop()
    return runtime.exit_code


async def _console(app: Appliance, runtime: Runtime, report: BootReport) -> None:
    from dialbox import console
    await console.start(app, runtime, report)


async def _clock(app: Appliance, runtime: Runtime, report: BootReport) -> None:
    from dialbox import clocksync
    await clocksync.start(app, runtime, report)


async def _backup(app: Appliance, runtime: Runtime, report: BootReport) -> None:
    from dialbox import backup
    await backup.start(app, runtime, report)


async def _driver_errors(app: Appliance, runtime: Runtime, report: BootReport) -> None:
    """Count, per driver, lines going out of service and calls our own line failed (/metrics)."""
    from firmware.lineapi import CallReleased, LineStatus
    counts: dict[str, int] = runtime.extras.setdefault("driver_errors", {})
    owner = {ch.name: ch.driver.name for ch in app.lines.channels}
    for name in set(owner.values()):
        counts.setdefault(name, 0)

    def on_event(ev) -> None:
        if (isinstance(ev, LineStatus) and not ev.in_service) or \
                (isinstance(ev, CallReleased) and ev.line_fault):
            driver = owner.get(ev.line)
            if driver is not None:
                counts[driver] += 1
    app.lines.subscribe(on_event)


# Parts of the runtime that start after the appliance and the web admin: each is
# ``async def start(app, runtime, report)`` and may add a stopper to runtime.extras["stoppers"].
RUNTIME_PARTS: list = [_driver_errors, _clock, _backup, _console]


def watch_appliance(sup: Supervisor, app: Appliance) -> None:
    """Adopt the appliance's long-lived tasks: a task that dies is restarted with backoff."""
    loop = asyncio.get_running_loop()
    runner = getattr(app, "runner", None)
    if runner is not None:  # every campaign's dialing goes through the runner's two tasks
        for i, (name, body) in enumerate(((N_("campaigns poll"), runner._poll),
                                          (N_("campaigns turns"), runner._drive))):
            def restart(i=i, body=body):
                runner._tasks[i] = loop.create_task(body())
            sup.watch(name, lambda i=i: runner._tasks[i] if len(runner._tasks) > i else None,
                      restart)
    dialer = getattr(app, "dialer", None)
    if dialer is not None:
        sup.watch(N_("dialer"), lambda: dialer._task if dialer.running else None,
                  lambda: setattr(dialer, "_task", loop.create_task(dialer._loop())))
    lines = app.lines
    sup.watch(N_("line timers"), lambda: lines._timer_task,
              lambda: setattr(lines, "_timer_task", loop.create_task(lines._timers())))
    for drv in lines.drivers:
        if hasattr(drv, "_supervise"):
            sup.watch(Msg("driver {name}", name=drv.name), lambda d=drv: d._task,
                      lambda d=drv: setattr(d, "_task", loop.create_task(d._supervise())))
    sms = getattr(app, "sms", None)
    if sms is not None:
        sup.watch(N_("sms reminders"), lambda: sms._task,
                  lambda: setattr(sms, "_task", loop.create_task(sms._loop())))
    sup.watch(N_("housekeeping"), lambda: getattr(app, "_housekeeping_task", None),
              lambda: setattr(app, "_housekeeping_task", loop.create_task(app._housekeeping())))
    media = getattr(app, "media", None)
    if media is not None and hasattr(media, "_task"):
        def restart_media():
            media._task = None  # start() makes a new tick task only when there is none
            return media.start()
        sup.watch(N_("media plane"), lambda: media._task,
                  restart_media)


# A campaign's dialing mode in the report (the store keeps the key).
MODES = {"predictive": N_("predictive"), "progressive": N_("progressive"),
         "preview": N_("preview")}


def _report_started(app: Appliance, report: BootReport) -> None:
    recovered = getattr(app, "recovered", 0)
    try:
        mb = -(-os.stat(app.store.path).st_size // 1_000_000)
    except (OSError, TypeError, ValueError):
        mb = 0
    version = app.store.db.execute("PRAGMA user_version").fetchone()[0]
    # What a technician needs (no path: the console's 'show status' and the log name the data
    # directory); the calls a stop cut are closed, never left open.
    report.add(N_("store"), True, Msg(
        "open, {mb} MB, schema v{version}; calls cut by the last stop, closed as "
        "interrupted: {recovered}", mb=mb, version=version, recovered=recovered)
        if recovered else Msg("open, {mb} MB, schema v{version}", mb=mb, version=version))
    lines = app.lines.lines()
    kinds: dict[str, int] = {}
    for ln in lines:
        kinds[ln.kind] = kinds.get(ln.kind, 0) + 1
    report.add(N_("lines"), bool(lines), ", ".join(
        f"{n} {k.upper()}" for k, n in sorted(kinds.items())) or N_("no lines"))
    for c in app.store.campaign_configs():
        if c.status == "running":
            mode = c.mode
            report.add(Msg("campaign {name}", name=c.name), True,
                       Msg("dialing ({mode})", mode=Msg(MODES[mode]) if mode in MODES else mode))


def _listen_failure(exc: OSError) -> Msg:
    """Why the web admin cannot listen on an address, in words a page can translate."""
    known = {errno.EADDRINUSE: N_("the port is in use by another program"),
             errno.EADDRNOTAVAIL: N_("this box has no such address"),
             errno.EACCES: N_("permission denied (ports below 1024 need privileges)")}
    if exc.errno in known:
        return Msg("cannot listen: {reason}", reason=Msg(known[exc.errno]))
    return Msg("cannot listen: {reason}", reason=errno.errorcode.get(exc.errno or 0, "")
               or (exc.strerror or str(exc)))


async def _start_web(app: Appliance, cfg: ApplianceConfig, report: BootReport,
                     tls) -> web.AppRunner:
    from web_admin.app import make_app
    https, secure_site = tls if tls is not None else (None, None)
    runner = web.AppRunner(make_app(app, tls=https) if https else make_app(app), access_log=None)
    await runner.setup()
    sites = [(addr, parse_listen(addr), None) for addr in cfg.listen]
    if secure_site is not None:
        host, port, ctx = secure_site
        sites.append((f"{host}:{port} (https)", (host, port), ctx))
    for addr, parsed, ctx in sites:
        if parsed is None:
            report.add(Msg("web admin {address}", address=addr), False,
                       N_("expected HOST:PORT"))
            continue
        host, port = parsed
        try:
            await web.TCPSite(runner, host, port, ssl_context=ctx).start()
        except OSError as exc:
            report.add(Msg("web admin {address}", address=addr), False, _listen_failure(exc))
            continue
        shown = f"[{host}]" if ":" in host else host
        app.runtime.web_urls.append(f"{'https' if ctx else 'http'}://{shown}:{port}/")
        report.add(Msg("web admin {address}", address=addr), True, N_("listening"))
    if not app.runtime.web_urls and not cfg.console.device:
        await runner.cleanup()
        await app.stop()
        raise UserError("the web admin could not listen on any address ({why}) and no console "
                        "is configured", why="; ".join(str(i.detail) for i in report.failed
                                                       if i.what.startswith("web admin")))
    return runner


def _announce(app: Appliance, runtime: Runtime, settings: Settings, announce) -> None:
    urls = " and ".join(runtime.web_urls) or "(web admin not listening)"
    announce(f"dialbox is running: web admin at {urls}  (Ctrl-C stops it)", flush=True)
    if app.initial_password:
        from dialbox.banner import first_start
        home = next((u for u in runtime.web_urls if u.startswith("https:")),
                    runtime.web_urls[0] if runtime.web_urls else "-")
        announce(first_start(home,
                             app.initial_password,
                             str(settings.data / "initial-admin-password")), flush=True)
    if hasattr(app, "campaigns_line"):
        announce(app.campaigns_line(), flush=True)
    if runtime.extras.get("initial_console_pin"):
        announce(f"first start: the field-service console's one-time PIN is in "
                 f"{runtime.extras['initial_console_pin']}", flush=True)
    if runtime.boot.failed:
        announce(f"boot: {len(runtime.boot.failed)} part(s) failed to start; see the log, "
                 "the console's 'show boot' or the dashboard", flush=True)


def _status_line(app: Appliance) -> str:
    h = app.health()
    return f"{h['lines']['in_service']}/{h['lines']['total']} lines in service"
