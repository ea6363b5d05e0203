"""``dialbox recordings list|export``: the recorded conversations and a verified copy of one."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from controller import recordings
from controller.store import Store
from dialbox import logsetup
from firmware.errors import UserError


def add_parser(sub) -> None:
    p = sub.add_parser("recordings", help="recorded conversations: list, export one verified")
    rsub = p.add_subparsers(dest="recordings_command", metavar="ACTION")
    rsub.required = True
    ls = rsub.add_parser("list", help="recordings kept (JSON array with --json)")
    ls.add_argument("--data", type=Path, default=Path("dialbox-data"), metavar="DIR")
    ls.add_argument("--call", metavar="CALL_ID", help="only this call's recording")
    ls.add_argument("--json", action="store_true", help="print a JSON array")
    ls.set_defaults(func=run_list)
    ex = rsub.add_parser("export", help="copy one recording out, checked against its SHA-256")
    ex.add_argument("call_id", metavar="CALL_ID")
    ex.add_argument("file", type=Path, metavar="FILE")
    ex.add_argument("--data", type=Path, default=Path("dialbox-data"), metavar="DIR")
    ex.set_defaults(func=run_export)


def _store(data: Path) -> Store:
    db = data / "dialbox.sqlite3"
    if not db.exists():
        raise UserError(f"{data}: no dialbox database here; give the box's data directory "
                        "with --data DIR")
    return Store(db)


def run_list(args: argparse.Namespace) -> int:
    logsetup.configure("WARNING")
    store = _store(args.data)
    try:
        rows = recordings.listing(store, args.data, args.call)
    finally:
        store.close()
    if args.json:
        keys = ("call_id", "path", "duration_s", "channels", "started_at", "sha256")
        json.dump([{k: r[k] for k in keys} for r in rows], sys.stdout, ensure_ascii=False)
        sys.stdout.write("\n")
        return 0
    for r in rows:
        dur = "-" if r["duration_s"] is None else f"{r['duration_s']:.1f}s"
        print(f"{r['call_id']}\t{r['line']}\t{r['operator'] or '-'}\t{dur}\t{r['state']}\t"
              f"{r['path']}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    logsetup.configure("WARNING")
    store = _store(args.data)
    try:
        out = recordings.export(store, args.data, args.call_id, args.file)
    finally:
        store.close()
    print(f"{out['exported_to']}\tsha256 {out['sha256']} verified")
    return 0
