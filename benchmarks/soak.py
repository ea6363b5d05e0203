"""Soak: the box on simulated hardware at full load for N minutes; memory and event-loop lag.

Run: nice -n 10 python3 -m benchmarks.soak [--minutes 30] [--operators 120] [--leads 40000]

The appliance as ``dialbox run --simulate`` runs it (``dialbox.service.serve``, web admin and
all), in real time so the media plane carries and records every call: four E1 spans (120 lines)
and 30 simulated SIM800 modules (150 lines), a predictive campaign under no law (any hour) over
a generated list, simulated operators. On the box's own loop, a 100 ms sleeper measures how late
it wakes (loop lag). Every 10 s the box's resident memory (VmRSS, and its recorder worker's)
and the lines carrying a call are sampled. Reported: lag p50/p99/max over the run after the
warm-up, RSS at the end of the warm-up and at the end (medians of their minute), and the growth.
Goals (issue 15): growth under 5 %, lag p99 under 50 ms.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

GSM_MODULES = 30
SAMPLE_S = 10.0


def gsm_profile(path: Path, modules: int = GSM_MODULES) -> Path:
    """The bundled simulated gateway, with ``modules`` modules."""
    from firmware import profiles
    text = Path(profiles.load("sim-gsm-4").source).read_text(encoding="utf-8")
    head, _, rest = text.partition("modules:\n")
    tail = rest[rest.index("limits:"):]
    body = "".join(f'  - {{name: gsm{i}, port: "sim://{i}"}}\n' for i in range(modules))
    path.write_text(head.replace("name: sim-gsm-4", f"name: soak-gsm-{modules}") +
                    "modules:\n" + body + tail, encoding="utf-8")
    return path


def call_list(path: Path, leads: int, seed: int = 1) -> Path:
    rng = random.Random(seed)
    rows = ["Номер договора;ФИО;Телефон;Сумма долга;Просрочка;Регион"]
    for i in range(leads):
        rows.append(f"SOAK-{i:06d};Должник {i};+7 912 {rng.randrange(10**7):07d};"
                    f"{rng.randrange(1000, 300000)},00;{rng.randrange(1, 180)};Москва")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def rss_kb(pid: int | None) -> int:
    if pid is None:
        return 0
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


async def lag_sampler(out: list[float], period_s: float = 0.1) -> None:
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + period_s
        await asyncio.sleep(period_s)
        out.append(max(0.0, loop.time() - due))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def soak(minutes: float, operators: int, leads: int, warmup_min: float,
               work: Path, trace: bool = False, objects: bool = False) -> dict:
    from dialbox import config
    from dialbox.appliance import Settings
    from tests.runbox import free_port, running
    cfg = config.ApplianceConfig(data=work / "data", listen=[f"127.0.0.1:{free_port()}"],
                                 simulate=True)
    settings = Settings(simulate=True, data=cfg.data, operators=operators, compliance="none",
                        mode="predictive", time_scale=1.0, seed=11,
                        profiles=(str(gsm_profile(work / "soak-gsm.yaml")), "e1-4span"),
                        calllist=call_list(work / "soak-list.csv", leads))
    cfg.profiles = list(settings.profiles)
    lags: list[float] = []
    samples: list[dict] = []
    load_start = os.getloadavg()
    async with running(cfg, settings) as (app, _task):
        t0 = time.monotonic()
        sampler = asyncio.create_task(lag_sampler(lags))
        warm_lags = 0
        try:
            while (elapsed := time.monotonic() - t0) < minutes * 60:
                await asyncio.sleep(SAMPLE_S)
                if warm_lags == 0 and elapsed >= warmup_min * 60:
                    warm_lags = len(lags)
                    if trace:
                        snap0 = tracemalloc.take_snapshot()
                    if objects:
                        census0 = _census()
                lines = app.lines.lines()
                samples.append({
                    "t_s": round(time.monotonic() - t0, 1),
                    "rss_kb": rss_kb(os.getpid()),
                    "worker_rss_kb": rss_kb(app.recording.recorder.worker_pid),
                    "busy_lines": sum(1 for ln in lines if ln.call_id),
                    "lines": len(lines),
                    "attempts": app.store.db.execute("SELECT COUNT(*) FROM attempts"
                                                     ).fetchone()[0],
                    "late_ticks": app.media.late_ticks,
                    "py_blocks": sys.getallocatedblocks()})
            grown = _growth(snap0, tracemalloc.take_snapshot()) if trace else []
            if objects:
                after = _census()
                grown += [f"{n:+d} {name}" for name, n in sorted(
                    ((k, after[k] - census0.get(k, 0)) for k in after),
                    key=lambda kv: -kv[1])[:20]]
        finally:
            sampler.cancel()
    run = lags[warm_lags:]
    warm = [s for s in samples if warmup_min * 60 <= s["t_s"] < (warmup_min + 1) * 60]
    last = [s for s in samples if s["t_s"] >= samples[-1]["t_s"] - 60]
    rss0 = statistics.median(s["rss_kb"] for s in warm or samples[:6])
    rss1 = statistics.median(s["rss_kb"] for s in last)
    w0 = statistics.median(s["worker_rss_kb"] for s in warm or samples[:6])
    w1 = statistics.median(s["worker_rss_kb"] for s in last)
    after = [s for s in samples if s["t_s"] >= warmup_min * 60]
    return {
        "minutes": minutes, "warmup_min": warmup_min, "operators": operators,
        "lines": samples[-1]["lines"], "load_average_start": load_start,
        "load_average_end": os.getloadavg(),
        "busy_lines_median": statistics.median(s["busy_lines"] for s in after or samples),
        "attempts": samples[-1]["attempts"], "media_late_ticks": samples[-1]["late_ticks"],
        "lag_ms": {"p50": round(pct(run, 0.5) * 1000, 1), "p99": round(pct(run, 0.99) * 1000, 1),
                   "max": round(max(run, default=0.0) * 1000, 1), "samples": len(run)},
        "rss_mb": {"after_warmup": round(rss0 / 1024, 1), "end": round(rss1 / 1024, 1),
                   "growth_pct": round(100 * (rss1 - rss0) / rss0, 2)},
        "python_heap_blocks": {"after_warmup": statistics.median(
            s["py_blocks"] for s in warm or samples[:6]), "end": statistics.median(
            s["py_blocks"] for s in last)},
        "worker_rss_mb": {"after_warmup": round(w0 / 1024, 1), "end": round(w1 / 1024, 1)},
        "per_minute": [s for s in samples if int(s["t_s"]) % 60 < SAMPLE_S],
        **({"grown_since_warmup": grown} if trace or objects else {}),
    }


def _census() -> dict[str, int]:
    """Live objects the garbage collector tracks, by type, and the loop's tasks by coroutine."""
    import collections
    import gc
    gc.collect()
    found = collections.Counter(f"{type(o).__module__}.{type(o).__qualname__}"
                                for o in gc.get_objects())
    found.update(f"task {t.get_coro().__qualname__}" for t in asyncio.all_tasks())
    found.update(_held())
    return dict(found)


def _held() -> dict[str, int]:
    """Items held in the collections of objects' attributes, by class and attribute. A dict of
    strings to numbers is not tracked by the garbage collector, so the census above would not
    see one that grows; its owner is tracked, and this looks inside."""
    import collections
    import gc
    held: collections.Counter = collections.Counter()
    kinds = (dict, list, set, collections.deque, bytearray)
    for o in gc.get_objects():
        if isinstance(o, type):
            continue
        try:
            attrs = object.__getattribute__(o, "__dict__")
        except Exception:
            continue
        if not isinstance(attrs, dict):
            continue
        for name, value in list(attrs.items()):
            if isinstance(value, kinds):
                held[f"held {type(o).__qualname__}.{name}"] += len(value)
    return held


def _growth(before, after, top: int = 15) -> list[str]:
    """Where Python memory grew between two tracemalloc snapshots (the biggest first)."""
    stats = after.compare_to(before, "traceback")
    return [f"{st.size_diff / 1024:+.0f} KiB in {st.count_diff:+d} blocks: " +
            " <- ".join(f"{f.filename.rsplit('/', 2)[-1]}:{f.lineno}" for f in st.traceback[:4])
            for st in stats[:top]]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--warmup", type=float, default=None,
                   help="minutes not measured at the start (default: a fifth of the run, "
                        "at most 5)")
    p.add_argument("--operators", type=int, default=120)
    p.add_argument("--leads", type=int, default=40000)
    p.add_argument("--json", type=Path, help="write the result here too")
    p.add_argument("--keep-heard", type=int, default=1, metavar="N",
                   help="calls whose heard audio each simulated operator keeps (default 1; "
                        "the simulated modems and spans keep 40; the tests keep 100)")
    p.add_argument("--keep-records", type=int, default=200, metavar="N",
                   help="calls each simulated modem and span remembers, and conversations the "
                        "simulated operators remember (default 200; the product's default is "
                        "2,000 and 10,000: a window that would still be filling in 30 minutes)")
    p.add_argument("--objects", action="store_true",
                   help="which kinds of objects grew in number after the warm-up (gc census)")
    p.add_argument("--trace", action="store_true",
                   help="where Python memory grew after the warm-up (tracemalloc; slower)")
    args = p.parse_args(argv)
    import logging
    import structlog
    from dialbox import appliance
    from firmware.sim import audioport, voice
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    warmup = args.warmup if args.warmup is not None else min(5.0, args.minutes / 5)
    # The simulated debtors and operators keep what they heard of their last calls for the
    # tests' ears (up to 96 KB a call, 100 calls each: over 1 GB for 120 operators and 34
    # simulators once full); that is the simulation's memory, not the box's, and it would fill
    # during the first hours of a soak.
    voice.KEEP_EARS = args.keep_heard  # an operator hears one call at a time
    audioport.KEEP_HEARD = max(args.keep_heard, 40)  # a span's 30 calls at once are cleared right
    # The simulators' memory of their calls is bounded (a window of records), but the product's
    # window fills in hours, not minutes; a short soak uses a short window so that what it
    # measures is the box.
    audioport.KEEP_RECORDS = args.keep_records
    appliance.KEEP_CONVERSATIONS = args.keep_records
    with tempfile.TemporaryDirectory(prefix="dialbox-soak-") as tmp:
        if args.trace:
            tracemalloc.start(4)
        result = asyncio.run(soak(args.minutes, args.operators, args.leads, warmup, Path(tmp),
                                  trace=args.trace, objects=args.objects))
    text = json.dumps(result, indent=1, ensure_ascii=False)
    print(text)
    if args.json:
        args.json.write_text(text, encoding="utf-8")
    ok = result["rss_mb"]["growth_pct"] < 5 and result["lag_ms"]["p99"] < 50
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
