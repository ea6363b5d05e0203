"""Choosing the next lead among 1,000,000: next_lead + begin/finish cycles, p50/p99.

Run: python3 -m benchmarks.nextlead_bench [--leads 1000000] [--cycles 2000] [--repeat 3]
The database is built once (cached in the temp directory by lead count): five DPD segments with
their priorities, half the leads due now and half later (most of the top-priority segment later,
the case that made the old single ORDER BY query scan), 1% with a second phone, 2,000 DNC
numbers and 200 pending callbacks. Then each repeat runs cycles of next_lead -> begin_attempt ->
finish_attempt in simulated time and reports next_lead latency percentiles; begin+finish are
reported apart (they fsync: synchronous=FULL). The v1 query is timed on the same data for
comparison.
"""
from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

T0 = 1_795_000_000.0  # a fixed instant: runs are repeatable

_V1_QUERY = (
    "SELECT a.id, a.account_id, a.region, a.tz, p.id AS phone_pk, p.e164 FROM accounts a "
    "JOIN phones p ON p.account_pk = a.id AND p.status = 'ok' "
    "WHERE a.campaign_id=? AND a.status='active' AND a.next_due_at <= ? "
    "ORDER BY a.priority DESC, a.next_due_at, a.id, p.attempts, p.position LIMIT 1")


def build(path: Path, leads: int) -> None:
    from controller.store import AccountWriter, Store
    s = Store(path)
    rng = random.Random(7)
    with s.tx():
        cid = s.campaign("bench", create=True)
        w = AccountWriter(s, cid, now=T0)
        for i in range(leads):
            dpd = rng.choice((5, 20, 45, 75, 120, 200, 365))
            phones = [(f"+79{i:09d}", "mobile")]
            if i % 100 == 0:
                phones.append((f"+78{i:09d}"[:12], "home"))
            w.add({"account_id": f"D{i:08d}", "dpd": dpd, "debt_amount": 1000.0 + i % 5000,
                   "tz": "Europe/Moscow"}, phones)
        w.finish()
        # Half due now, half later; the 90+ segment (top priority) mostly later.
        s.db.execute("UPDATE accounts SET next_due_at = CASE "
                     "WHEN segment='dpd 90+' AND id % 1000 != 0 THEN ? + (id % 86400) "
                     "WHEN id % 2 = 0 THEN ? - (id % 3600) ELSE ? + (id % 86400) END",
                     (T0 + 3600, T0, T0 + 60))
        s.db.executemany("INSERT INTO phone_lists VALUES ('dnc', ?, 'asked', 'bench', ?)",
                         [(f"+79{i:09d}", T0) for i in range(0, leads, max(1, leads // 2000))])
    for pk in range(3, leads, max(1, leads // 200)):
        s.schedule_callback(pk, T0 + rng.randrange(0, 7200), f"pos{pk % 5}", now=T0)
    s.db.execute("ANALYZE")
    s.close()


def cycles(path: Path, n: int, seed: int) -> tuple[list[float], list[float], int]:
    from controller.store import Store
    s = Store(path)
    rng = random.Random(seed)
    cid = s.campaign("bench")
    pick, write = [], []
    base = s.db.execute("SELECT COUNT(*) FROM attempts").fetchone()[0]
    for i in range(n):
        now = T0 + i * 0.5
        t = time.perf_counter()
        lead = s.next_lead(cid, now, f"pos{i % 5}")
        pick.append(time.perf_counter() - t)
        if lead is None:
            continue
        t = time.perf_counter()
        call_id = f"b{seed}-{base + i}"
        s.begin_attempt(cid, lead, "gsm0", call_id, f"pos{i % 5}", now=now)
        s.finish_attempt(call_id, outcome=rng.choice(("busy", "no_answer", "answered",
                                                      "no_answer")),
                         q850=None, reason="", ring_s=10, talk_s=0, abandoned=False, now=now)
        write.append(time.perf_counter() - t)
    due = sum(s.backlog(cid, T0 + n * 0.5).values())
    s.close()
    return pick, write, due


def v1_query(path: Path, n: int) -> list[float]:
    import sqlite3
    db = sqlite3.connect(path)
    out = []
    for i in range(n):
        t = time.perf_counter()
        db.execute(_V1_QUERY, (1, T0 + i)).fetchone()
        out.append(time.perf_counter() - t)
    db.close()
    return out


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--leads", type=int, default=1_000_000)
    ap.add_argument("--cycles", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    import logging
    logging.disable(logging.INFO)
    import structlog
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    path = Path(tempfile.gettempdir()) / f"dialbox-nextlead-{args.leads}.sqlite3"
    if not path.exists():
        t = time.perf_counter()
        build(path, args.leads)
        print(f"built {args.leads} leads in {time.perf_counter() - t:.1f} s: {path}")
    p50s, p99s, maxs, w50s, w99s = [], [], [], [], []
    for r in range(args.repeat):
        pick, write, due = cycles(path, args.cycles, seed=r)
        p50s.append(pct(pick, 50))
        p99s.append(pct(pick, 99))
        maxs.append(max(pick) * 1000)
        w50s.append(pct(write, 50))
        w99s.append(pct(write, 99))
        print(f"repeat {r + 1}: next_lead p50 {p50s[-1]:.3f} ms  p99 {p99s[-1]:.3f} ms  "
              f"max {maxs[-1]:.3f} ms | begin+finish p50 {w50s[-1]:.2f} ms  "
              f"p99 {w99s[-1]:.2f} ms | backlog after: {due}")
    old = v1_query(path, 20)
    med = statistics.median
    print(f"median of {args.repeat} repeats x {args.cycles} cycles, {args.leads} leads:")
    print(f"  next_lead (per-priority index seeks)  p50 {med(p50s):.3f} ms  "
          f"p99 {med(p99s):.3f} ms  max {med(maxs):.3f} ms")
    print(f"  begin_attempt+finish_attempt (fsync)  p50 {med(w50s):.2f} ms  p99 {med(w99s):.2f} ms")
    print(f"  v1 single ORDER BY query, 20 runs     p50 {pct(old, 50):.1f} ms  "
          f"p99 {pct(old, 99):.1f} ms")


if __name__ == "__main__":
    main()
