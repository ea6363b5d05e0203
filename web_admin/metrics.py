"""``/metrics`` for Prometheus: read from the appliance at scrape time (prometheus-client).

Open to loopback and to the networks the config allows (``metrics.allow``); anyone else needs
``Authorization: Bearer <metrics.token>``. Without a runtime (tests' fake backend) only loopback.
"""
from __future__ import annotations

import asyncio
import ipaddress
import secrets
import shutil
import weakref
from pathlib import Path

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import choose_encoder

from web_admin.render import BACKEND, current_status

DISK_EVERY_S = 60.0


async def handler(request: web.Request) -> web.Response:
    backend = request.app[BACKEND]
    denied = _denied(request, backend)
    if denied is not None:
        return denied
    sampler = _sampler(request.app, backend)
    await sampler.refresh()
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    lines = (await current_status(backend))["lines"]

    def encode(store) -> bytes:  # counts over every call: on the store's reader connection,
        registry = CollectorRegistry(auto_describe=False)  # never the event loop's
        registry.register(_Collector(backend, sampler, store, lines))
        return encoder(registry)
    body = await backend.store.read(encode)
    return web.Response(body=body, headers={"Content-Type": content_type,
                                            "Cache-Control": "no-store"})


def _denied(request: web.Request, backend) -> web.Response | None:
    runtime = getattr(backend, "runtime", None)
    cfg = getattr(runtime, "config", None)
    allow = [ipaddress.ip_network(n, strict=False) for n in getattr(cfg, "metrics_allow", [])]
    token = getattr(cfg, "metrics_token", None)
    try:
        remote = ipaddress.ip_address((request.remote or "").split("%")[0])
    except ValueError:
        remote = None
    if remote is not None:
        if remote.is_loopback or any(remote in net for net in allow if
                                     net.version == remote.version):
            return None
        mapped = getattr(remote, "ipv4_mapped", None)
        if mapped is not None and (mapped.is_loopback or any(mapped in n for n in allow)):
            return None
    sent = request.headers.get("Authorization", "")
    if token and sent.startswith("Bearer ") and secrets.compare_digest(sent[7:].strip(), token):
        return None
    return web.Response(status=401 if token else 403,
                        text="scrape token required\n" if token else "not allowed from here\n",
                        headers={"WWW-Authenticate": "Bearer"} if token else {})


class _Sampler:
    """What is too slow to read at each scrape (disk use) is sampled at most once a minute."""

    def __init__(self, backend) -> None:
        self.backend = backend
        self.recordings_bytes = 0
        self.recordings_files = 0
        self.free_bytes: int | None = None
        self._at: float | None = None

    async def refresh(self) -> None:
        loop = asyncio.get_running_loop()
        if self._at is not None and loop.time() - self._at < DISK_EVERY_S:
            return
        self._at = loop.time()
        data = _data_dir(self.backend)
        if data is None:
            return
        self.recordings_files, self.recordings_bytes, self.free_bytes = \
            await asyncio.to_thread(_disk, data)


def _disk(data: Path) -> tuple[int, int, int | None]:
    root = data / "recordings"
    files = size = 0
    if root.is_dir():
        for p in root.rglob("*"):
            if p.is_file():
                files += 1
                size += p.stat().st_size
    try:
        free = shutil.disk_usage(data).free
    except OSError:
        free = None
    return files, size, free


def _data_dir(backend) -> Path | None:
    settings = getattr(backend, "settings", None)
    data = getattr(settings, "data", None)
    return Path(data) if data else None


_SAMPLERS: "weakref.WeakKeyDictionary[web.Application, _Sampler]" = weakref.WeakKeyDictionary()


def _sampler(app: web.Application, backend) -> _Sampler:
    """One sampler per web app (a started app takes no new keys)."""
    if app not in _SAMPLERS:
        _SAMPLERS[app] = _Sampler(backend)
    return _SAMPLERS[app]


class _Collector:
    """Everything a scrape shows, read from the appliance as it is now."""

    def __init__(self, backend, sampler: _Sampler, store, lines: list[dict]) -> None:
        self.b = backend
        self.sampler = sampler
        self.store = store  # the store on the thread that collects
        self.lines = lines  # as the status showed them on the event loop

    def collect(self):
        yield from self._lines()
        yield from self._calls()
        yield from self._campaigns()
        yield from self._runtime()
        yield from self._media()
        rec = GaugeMetricFamily("dialbox_recordings_bytes", "Disk space used by recordings")
        rec.add_metric([], self.sampler.recordings_bytes)
        yield rec
        files = GaugeMetricFamily("dialbox_recordings_files", "Recording files on disk")
        files.add_metric([], self.sampler.recordings_files)
        yield files
        if self.sampler.free_bytes is not None:
            free = GaugeMetricFamily("dialbox_data_free_bytes", "Free space on the data disk")
            free.add_metric([], self.sampler.free_bytes)
            yield free

    def _lines(self):
        lines = self.lines
        by_state = GaugeMetricFamily("dialbox_lines", "Lines by state", labels=["state", "kind"])
        counts: dict[tuple[str, str], int] = {}
        for ln in lines:
            key = (ln["state"], ln["kind"])
            counts[key] = counts.get(key, 0) + 1
        for (state, kind), n in sorted(counts.items()):
            by_state.add_metric([state, kind], n)
        yield by_state
        up = GaugeMetricFamily("dialbox_lines_in_service", "Lines in service")
        up.add_metric([], sum(1 for ln in lines if ln["in_service"]))
        yield up
        faults = CounterMetricFamily("dialbox_driver_errors", "Failures seen per driver: lines "
                                     "going out of service and calls our own line failed",
                                     labels=["driver"])
        counter = getattr(getattr(self.b, "runtime", None), "extras", {}).get("driver_errors")
        for driver, n in sorted((counter or {}).items()):
            faults.add_metric([driver], n)
        yield faults

    def _calls(self):
        calls = CounterMetricFamily("dialbox_calls", "Finished call attempts by outcome",
                                    labels=["outcome"])
        for outcome, n in self.store.db.execute(
                "SELECT COALESCE(outcome, 'unknown'), COUNT(*) FROM attempts WHERE "
                "state != 'dialing' GROUP BY 1 ORDER BY 1"):
            calls.add_metric([outcome], n)
        yield calls
        active = GaugeMetricFamily("dialbox_calls_in_progress", "Calls placed and not ended")
        active.add_metric([], self.store.db.execute(
            "SELECT COUNT(*) FROM attempts WHERE state='dialing'").fetchone()[0])
        yield active

    def _campaigns(self):
        store = self.store
        rate = GaugeMetricFamily("dialbox_abandon_rate", "Abandoned share of live answers over "
                                 "the law's window, per campaign", labels=["campaign"])
        backlog = GaugeMetricFamily("dialbox_backlog_leads", "Leads due for a call now",
                                    labels=["campaign"])
        running = GaugeMetricFamily("dialbox_campaign_running", "1 while a campaign dials",
                                    labels=["campaign"])
        for c in store.campaigns():
            name = c["name"]
            try:
                rate.add_metric([name], float(store.abandon_rate(c["id"]) or 0.0))
            except Exception:  # a campaign whose law has no abandon rule
                pass
            backlog.add_metric([name], sum(store.backlog(c["id"]).values()))
            running.add_metric([name], 1 if c["status"] == "running" else 0)
        yield rate
        yield backlog
        yield running
        queue = GaugeMetricFamily("dialbox_queue_depth", "Calls waiting for an operator",
                                  labels=["queue"])
        waiting = sum(len(getattr(d, "_waiting", ())) for d in _dialers(self.b))
        inbound = sum(len(getattr(d, "_inbound", ())) for d in _dialers(self.b))
        queue.add_metric(["answered"], waiting)
        queue.add_metric(["inbound"], inbound)
        yield queue

    def _runtime(self):
        runtime = getattr(self.b, "runtime", None)
        if runtime is None:
            return
        lag = GaugeMetricFamily("dialbox_event_loop_lag_seconds", "How late the event loop "
                                "wakes a sleeper (recent samples)", labels=["quantile"])
        for q in (0.5, 0.99):
            lag.add_metric([str(q)], runtime.lag.percentile(q))
        lag.add_metric(["1.0"], runtime.lag.worst)
        yield lag
        sup = runtime.supervisor
        if sup is not None:
            deaths = CounterMetricFamily("dialbox_task_failures", "Supervised tasks that died "
                                         "and were restarted", labels=["task"])
            for child in sup.snapshot():
                deaths.add_metric([child["name"]], child["failures"])
            yield deaths
        clock = runtime.extras.get("clock")
        if clock is not None and clock.state is not None:
            synced = GaugeMetricFamily("dialbox_clock_synchronized", "1 when the kernel's clock "
                                       "is synchronised (adjtimex)")
            synced.add_metric([], 1 if clock.state.synchronized else 0)
            yield synced
            held = GaugeMetricFamily("dialbox_dialing_held", "1 while automatic dialing is held",
                                     labels=["reason"])
            held.add_metric(["clock"], 1 if clock.holding else 0)
            runner = getattr(self.b, "runner", None)
            if runner is not None:
                held.add_metric(["disk"], 1 if "disk" in runner.holds else 0)
                others = [w for w in runner.holds.as_dict() if w not in ("clock", "disk")]
                held.add_metric(["other"], 1 if others else 0)
            yield held
            if clock.state.max_error_ms is not None:
                err = GaugeMetricFamily("dialbox_clock_max_error_seconds", "The kernel's maximum "
                                        "clock error estimate")
                err.add_metric([], clock.state.max_error_ms / 1000)
                yield err
        nightly = runtime.extras.get("backup")
        if nightly is not None and nightly.last is not None:
            last = GaugeMetricFamily("dialbox_backup_last_timestamp_seconds", "When the last "
                                     "nightly backup ran", labels=["ok"])
            last.add_metric(["1" if nightly.last["ok"] else "0"], nightly.last["at"])
            yield last
        boot = GaugeMetricFamily("dialbox_boot_failures", "Parts that failed to start at boot")
        boot.add_metric([], len(runtime.boot.failed))
        yield boot

    def _media(self):
        media = getattr(self.b, "media", None)
        late = getattr(media, "late_frames", None)
        if late is None:
            return
        fam = CounterMetricFamily("dialbox_media_late_frames", "Frames of media ticks that ran "
                                  "late (over 20 ms after their time)")
        fam.add_metric([], late)
        yield fam
        lines = [leg for leg in list(media.legs.values()) if leg.kind == "line"]
        target = GaugeMetricFamily("dialbox_media_line_buffer_frames", "Frames a line's jitter "
                                   "buffer holds before it plays (adaptive on GSM lines)",
                                   labels=["line"])
        jitter = GaugeMetricFamily("dialbox_media_line_jitter_seconds", "A line's audio arrival "
                                   "jitter, peak to peak over its last second", labels=["line"])
        events = CounterMetricFamily("dialbox_media_line_buffer_events", "A line's jitter "
                                     "buffer: underruns, growths and shrinks of its depth, "
                                     "frames dropped (full) and drained (standing)",
                                     labels=["line", "event"])
        for leg in lines:
            jb = leg.jitter
            target.add_metric([leg.name], jb.target)
            jitter.add_metric([leg.name], jb.jitter_ms / 1000.0)
            for event, n in (("underrun", jb.underruns), ("grown", jb.grown),
                             ("shrunk", jb.shrunk), ("dropped", jb.dropped),
                             ("drained", jb.drained)):
                events.add_metric([leg.name, event], n)
        yield target
        yield jitter
        yield events


def _dialers(backend) -> list:
    """Every running campaign's dialer."""
    runner = getattr(backend, "runner", None)
    if runner is not None:
        return list(runner.dialers.values())
    one = getattr(backend, "dialer", None)
    return [one] if one is not None else []
