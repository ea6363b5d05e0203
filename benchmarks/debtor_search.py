"""Debtor search over 1,000,000 accounts: p50/p99 per kind of query (phone, digits, name, number).

Run: python3 -m benchmarks.debtor_search [--accounts 1000000] [--queries 300] [--repeat 3]
The database is built once per size (cached in the temp directory) with the real import writer,
so the search indexes (FTS5 word prefixes, phone trigrams) are maintained by the same triggers
as on the box; the build time is reported too. Each repeat times every kind of query; the last
line is JSON with the medians over repeats.
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

SURNAMES = ("Иванов", "Петров", "Сидоров", "Смирнов", "Кузнецов", "Попов", "Васильев",
            "Соколов", "Михайлов", "Новиков", "Фёдоров", "Морозов", "Волков", "Алексеев",
            "Лебедев", "Семёнов", "Егоров", "Павлов", "Козлов", "Степанов")
NAMES = ("Иван", "Пётр", "Анна", "Мария", "Сергей", "Ольга", "Алексей", "Елена", "Дмитрий",
         "Наталья", "Андрей", "Татьяна")


def build(path: Path, n: int) -> float:
    from controller.store import AccountWriter, Store
    t0 = time.perf_counter()
    s = Store(path)
    rng = random.Random(11)
    cid = s.campaign("bench", create=True)
    w = AccountWriter(s, cid, now=1_795_000_000.0)
    for i in range(n):
        name = f"{rng.choice(SURNAMES)} {rng.choice(NAMES)} {rng.choice(NAMES)}ович"
        phones = [(f"+79{i:09d}", "mobile")]
        if i % 10 == 0:
            phones.append((f"+7495{i % 10_000_000:07d}", "work"))
        w.add({"account_id": f"КД-{2020 + i % 6}/{i:07d}", "debtor_name": name}, phones)
    w.finish()
    s.db.execute("ANALYZE")
    s.close()
    return time.perf_counter() - t0


def queries(n: int, count: int, seed: int) -> dict[str, list[str]]:
    rng = random.Random(seed)
    pick = [rng.randrange(n) for _ in range(count)]
    return {
        "phone_full": [f"8 (9{i:09d}"[:6] + ") " + f"{i:09d}"[2:] for i in pick],
        "phone_digits": [f"{i:09d}"[-6:] for i in pick],
        "name_prefix": [f"{rng.choice(SURNAMES)[:5]} {rng.choice(NAMES)[:3]}" for _ in pick],
        "account_number": [f"КД-{2020 + i % 6}/{i:07d}" for i in pick],
    }


def run(path: Path, n: int, count: int, seed: int) -> dict[str, dict[str, float]]:
    from controller import debtors
    from controller.store import Store
    s = Store(path)
    out = {}
    for kind, qs in queries(n, count, seed).items():
        times, hits = [], 0
        for q in qs:
            t0 = time.perf_counter()
            rows = debtors.search(s, q)
            times.append((time.perf_counter() - t0) * 1000)
            hits += bool(rows)
        times.sort()
        out[kind] = {"p50_ms": round(times[len(times) // 2], 2),
                     "p99_ms": round(times[int(len(times) * 0.99) - 1], 2),
                     "found_share": round(hits / len(qs), 3)}
    s.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--accounts", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    from dialbox import logsetup
    logsetup.configure("WARNING")
    path = Path(tempfile.gettempdir()) / f"dialbox-search-{args.accounts}.sqlite3"
    build_s = None
    if not path.exists():
        build_s = round(build(path, args.accounts), 1)
        print(f"built {args.accounts} accounts in {build_s} s")
    runs = [run(path, args.accounts, args.queries, seed) for seed in range(args.repeat)]
    for i, r in enumerate(runs):
        print(f"repeat {i}: " + ", ".join(f"{k} p50 {v['p50_ms']} ms p99 {v['p99_ms']} ms"
                                          for k, v in r.items()))
    med = {k: {m: statistics.median(r[k][m] for r in runs) for m in runs[0][k]}
           for k in runs[0]}
    print(json.dumps({"accounts": args.accounts, "build_s": build_s, "median": med}))


if __name__ == "__main__":
    main()
