"""The law before every dial: one compliance decision against the store, p50/p99 per profile.

Run: python3 -m benchmarks.compliance_bench [--accounts 200000] [--decisions 2000] [--repeat 3]
The database (cached in the temp directory by size): accounts in two campaigns, one person in
four holding two accounts (two creditors' files), 31 days of history of three calls per account
(a third answered), 1% of people with a refusal, and the SMS sent. Each decision is what the
dialer asks before a dial: the person's and the number's contacts in the sliding windows, his
refusals, the counters kept as evidence (ru-230fz), or the per-debt counts (us-regf).
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

T0 = 1_795_000_000.0  # a fixed instant: runs are repeatable
DAY = 86400.0


def build(path: Path, accounts: int) -> None:
    from controller.persons import person_key
    from controller.store import Store
    s = Store(path)
    rng = random.Random(11)
    with s.tx():
        cids = [s.campaign(name, create=True) for name in ("bank-a", "mfo-b")]
        rows, phones, attempts, refusals, sms = [], [], [], [], []
        for i in range(accounts):
            person = i // 2 if i % 4 < 2 else accounts + i  # one in four has two accounts
            name = "Иван " + "".join("абвгдежзик"[int(d)] for d in str(person))  # names: letters
            key = person_key(name, f"19{50 + person % 50}-01-01", None)
            rows.append((i + 1, cids[i % 2], f"A{i:08d}", name, key, "Europe/Moscow", T0))
            phones.append((i + 1, f"+79{i:09d}"))
            for n in range(3):
                at = T0 - rng.uniform(0, 31 * DAY)
                attempts.append((f"c{i}-{n}", cids[i % 2], i + 1, i + 1, f"+79{i:09d}", "gsm0",
                                 "done", at, "answered" if n == 0 else "no_answer",
                                 30.0 if n == 0 else 0.0))
            if i % 100 == 0:
                refusals.append((key, i + 1, T0 - 5 * DAY))
            if i % 3 == 0:
                sms.append((f"s{i}", f"k{i}", cids[i % 2], i + 1, "not_reached",
                            f"+79{i:09d}", "sent", T0 - rng.uniform(0, 31 * DAY)))
        s.db.executemany("INSERT INTO accounts (id, campaign_id, account_id, debtor_name, "
                         "person_key, tz, updated_at) VALUES (?,?,?,?,?,?,?)", rows)
        s.db.executemany("INSERT INTO phones (account_pk, e164) VALUES (?,?)", phones)
        s.db.executemany("INSERT INTO attempts (call_id, campaign_id, account_pk, phone_pk, "
                         "number, line, state, created_at, outcome, talk_s) VALUES "
                         "(?,?,?,?,?,?,?,?,?,?)", attempts)
        s.db.executemany("INSERT INTO refusals (kind, person_key, account_pk, channel, at, "
                         "recorded_by, recorded_at) VALUES ('debtor', ?, ?, 'import', ?, "
                         "'bench', 0)", refusals)
        s.db.executemany("INSERT INTO sms_messages (sms_id, key, campaign_id, account_pk, rule, "
                         "number, state, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,0)",
                         sms)
    s.db.execute("ANALYZE")
    s.close()


def decide(path: Path, profile: str, n: int, seed: int) -> list[float]:
    from controller.compliance import LeadContext, check
    from controller.store import Store
    s = Store(path)
    rng = random.Random(seed)
    top = s.db.execute("SELECT MAX(id) FROM accounts").fetchone()[0]
    at = datetime.fromtimestamp(T0, timezone.utc)
    out = []
    for _ in range(n):
        pk = rng.randrange(1, top + 1)
        key, phone = s.db.execute("SELECT a.person_key, p.e164 FROM accounts a JOIN phones p "
                                  "ON p.account_pk=a.id WHERE a.id=?", (pk,)).fetchone()
        lead = LeadContext(key, phone=phone, tz="Europe/Moscow", debt=str(pk))
        t = time.perf_counter()
        d = check(profile, lead, at=at, history=s)
        d.evidence()
        out.append(time.perf_counter() - t)
    s.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=200_000)
    ap.add_argument("--decisions", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    path = Path(tempfile.gettempdir()) / f"dialbox-compliance-bench-{args.accounts}.sqlite3"
    if not path.exists():
        t = time.perf_counter()
        build(path, args.accounts)
        print(f"built {path} in {time.perf_counter() - t:.1f} s")
    result = {}
    for profile in ("ru-230fz", "ru-230fz:calendar", "us-regf"):
        p50s, p99s = [], []
        for r in range(args.repeat):
            times = sorted(decide(path, profile, args.decisions, seed=r))
            p50s.append(statistics.median(times) * 1000)
            p99s.append(times[int(len(times) * 0.99) - 1] * 1000)
        result[profile] = {"p50_ms": round(statistics.median(p50s), 3),
                           "p99_ms": round(statistics.median(p99s), 3),
                           "p50_runs_ms": [round(x, 3) for x in p50s]}
    print(json.dumps({"accounts": args.accounts, "decisions": args.decisions, **result},
                     indent=2))


if __name__ == "__main__":
    main()
