"""``dialbox linestate table``: the line-state transition table, for people or as JSON."""
from __future__ import annotations

import argparse
import json

from cext.linestate_codes import TIMER_NAMES
from cext.linestate_table import describe, rows

# The core's default timeouts, shown beside the table (LineCore's constructor defaults).
DEFAULT_TIMEOUTS_MS = dict(zip(TIMER_NAMES, (30000, 2000, 5000, 10000)))


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("linestate", help="line-state core: show the transition table")
    sub = parser.add_subparsers(dest="linestate_command", metavar="WHAT")
    sub.required = True
    table = sub.add_parser("table", help="print every legal (state, event) transition")
    table.add_argument("--json", action="store_true", help="machine-readable output")
    table.set_defaults(func=show_table)


def show_table(args: argparse.Namespace) -> int:
    """Print the table grouped by state; events not listed for a state are rejected there."""
    described = [describe(row) for row in sorted(rows(), key=lambda r: (r.state, r.event))]
    if args.json:
        print(json.dumps({"transitions": described, "timeouts_ms": DEFAULT_TIMEOUTS_MS},
                         indent=2))
        return 0
    width = max(len(f"{d['state']} + {d['event']}") for d in described)
    current = None
    for d in described:
        if d["state"] != current:
            current = d["state"]
            print(f"\n[{current}]")
        head = f"{d['state']} + {d['event']}".ljust(width)
        parts = [", ".join(d["actions"]) or "-", ", ".join(d["timers"]) or "-"]
        if d["opens_call"]:
            parts.append("opens call")
        print(f"  {head} -> {d['next_state']:<15} {' | '.join(parts)}")
    print("\nTimeouts (ms): " + ", ".join(f"{k} {v}" for k, v in DEFAULT_TIMEOUTS_MS.items()))
    print("Any other (state, event) pair is rejected: state kept, counted, ACT_REJECTED emitted.")
    return 0

