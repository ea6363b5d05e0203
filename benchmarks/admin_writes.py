"""Event-loop lag while people change things: an audited change written on the loop (as the web
admin did before) against the same change given to the store's writer thread.

Run: python3 -m benchmarks.admin_writes [--changes 50] [--repeat 3]
Two cases per repeat: "idle", 50 audited changes 10 ms apart with nothing else writing; and
"contended", 5 changes each made while the writer is inside a 200 ms transaction (a batch of
the dialer's work or an import), which the loop's connection waits for (busy_timeout 5 s). A
task that sleeps 5 ms measures how late the loop wakes it. The last line is JSON with the
medians over repeats of the p99 and the worst lag, in ms.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

HELD_S = 0.2  # how long the writer is inside its transaction in the contended case


async def sample_lag(samples: list[float], stop: asyncio.Event) -> None:
    """How late (ms) the loop wakes a 5 ms sleep, appended to ``samples`` until ``stop``."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        t = loop.time()
        await asyncio.sleep(0.005)
        samples.append((loop.time() - t - 0.005) * 1000)


def _held(_store, seconds: float) -> None:
    time.sleep(seconds)  # on the writer thread, inside its BEGIN IMMEDIATE


async def one(case: str, where: str, changes: int, folder: Path) -> tuple[float, float]:
    from controller import audit
    from controller.store import Store
    store = Store(folder / f"{case}-{where}.sqlite3")
    store.start_writer()
    samples: list[float] = []
    stop = asyncio.Event()
    task = asyncio.get_running_loop().create_task(sample_lag(samples, stop))
    try:
        for i in range(changes if case == "idle" else 5):
            if case == "contended":
                store.submit(_held, HELD_S)
            await asyncio.sleep(0.02 if case == "contended" else 0.01)
            kw = dict(who="anna", action="edit", obj="campaign", key=f"c{i}",
                      before={"weight": i}, after={"weight": i + 1}, source="127.0.0.1")
            if where == "loop":
                audit.record(store, **kw)  # autocommit: the fsync on the loop's thread
            else:
                await store.run(audit.record, **kw)
        await store.flush()
    finally:
        stop.set()
        await task
        store.close()
    samples.sort()
    return samples[int(len(samples) * 0.99)], samples[-1]


async def main(changes: int, repeat: int) -> dict:
    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeat):
            for case in ("idle", "contended"):
                for where in ("loop", "writer"):
                    p99, worst = await one(case, where, changes, Path(tmp) / str(r))
                    out.setdefault(f"{case}/{where}", []).append((p99, worst))
                    print(f"repeat {r + 1} {case:9s} {where:6s} lag p99 {p99:6.1f} ms, "
                          f"worst {worst:6.1f} ms", flush=True)
    return {k: {"p99_ms": round(statistics.median(p for p, _ in v), 1),
                "worst_ms": round(statistics.median(w for _, w in v), 1)} for k, v in out.items()}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--changes", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    import logging

    import structlog
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    print(json.dumps(asyncio.run(main(a.changes, a.repeat))))
