"""Event-loop lag while the /dnc page reads a 200,000-number do-not-call list: the read and sort
on the loop (as before) against the same read on the store's reader thread.

Run: python3 -m benchmarks.dnc_page [--entries 200000] [--repeat 3]
A task that sleeps 5 ms measures how late the loop wakes it while the list is read 3 times. The
page's template still renders every row on the loop (not measured here). The last line is JSON
with the medians over repeats of the worst lag and of the time to read the list, in ms.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
from pathlib import Path

from benchmarks.admin_writes import sample_lag


async def one(store, where: str) -> tuple[float, float]:
    from dialbox.backend import _dnc_entries
    loop = asyncio.get_running_loop()
    samples: list[float] = []
    stop = asyncio.Event()
    task = loop.create_task(sample_lag(samples, stop))
    await asyncio.sleep(0.05)
    reads = []
    for _ in range(3):
        t = loop.time()
        rows = _dnc_entries(store) if where == "loop" else await store.read(_dnc_entries)
        reads.append((loop.time() - t) * 1000)
        assert rows
        await asyncio.sleep(0.02)
    stop.set()
    await task
    return max(samples), statistics.median(reads)


async def main(entries: int, repeat: int) -> dict:
    from controller.store import Store
    with tempfile.TemporaryDirectory() as d:
        store = Store(Path(d) / "dnc.sqlite3")
        with store.tx():
            store.db.executemany(
                "INSERT INTO phone_lists (list, e164, reason, added_by, added_at) "
                "VALUES ('dnc', ?, 'asked not to be called', 'anna', ?)",
                ((f"+7916{i:07d}", 1.7e9 + i) for i in range(entries)))
        store.start_writer()
        out: dict = {}
        for where in ("loop", "reader"):
            runs = [await one(store, where) for _ in range(repeat)]
            out[where] = {"lag_max_ms": round(statistics.median(r[0] for r in runs), 1),
                          "read_ms": round(statistics.median(r[1] for r in runs), 1)}
            print(where, runs)
        store.close()
    return out


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--entries", type=int, default=200_000)
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args()
    print(json.dumps({"entries": a.entries, **asyncio.run(main(a.entries, a.repeat))}))
