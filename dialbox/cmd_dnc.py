"""``dialbox dnc``: the do-not-call list and the inbound block list, with who and why."""
from __future__ import annotations

import argparse
import getpass
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

from controller.store import Store
from dialbox import logsetup


def add_parser(sub) -> None:
    p = sub.add_parser("dnc", help="do-not-call list (and --inbound: callers answered busy)")
    psub = p.add_subparsers(dest="dnc_command", metavar="ACTION")
    psub.required = True
    for name, helptext in (("add", "put a number on the list"),
                           ("remove", "take a number off the list"),
                           ("list", "show the list (JSON lines)")):
        a = psub.add_parser(name, help=helptext)
        if name != "list":
            a.add_argument("number", help="phone number, e.g. +79123456789 or 8 912 345-67-89")
            a.add_argument("--reason", required=name == "add", default="",
                           help="why (kept in the audit)")
            a.add_argument("--by", default=None, help="who (default: the login name)")
        else:
            a.add_argument("--audit", action="store_true", help="show every change instead")
        a.add_argument("--inbound", action="store_true",
                       help="the inbound block list (abusive callers get busy)")
        a.add_argument("--data", type=Path, default=Path("dialbox-data"), metavar="DIR")
        a.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    logsetup.configure("WARNING")  # stdout carries the result only
    list_name = "blocked" if args.inbound else "dnc"
    store = Store(args.data / "dialbox.sqlite3")
    try:
        if args.dnc_command == "add":
            e164 = store.list_add(list_name, args.number, args.reason, args.by or _who())
            print(f"{e164} added to the {list_name} list")
        elif args.dnc_command == "remove":
            if store.list_remove(list_name, args.number, args.by or _who(), args.reason):
                print(f"{args.number} removed from the {list_name} list")
            else:
                print(f"{args.number} was not on the {list_name} list")
                return 1
        else:
            rows = store.list_audit(list_name) if args.audit else store.list_entries(list_name)
            for r in rows:
                for k in ("at", "added_at"):
                    if k in r:
                        r[k] = datetime.fromtimestamp(r[k], timezone.utc).isoformat()
                sys.stdout.write(json.dumps(r, ensure_ascii=False) + "\n")
    finally:
        store.close()
    return 0


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
