"""``dialbox payments import``: payments from the creditor close promises as kept or broken."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from controller.payments import import_payments
from controller.store import Store
from dialbox import logsetup
from firmware.errors import UserError


def add_parser(sub) -> None:
    p = sub.add_parser("payments", help="payments received (they settle promises to pay)")
    psub = p.add_subparsers(dest="payments_command", metavar="ACTION")
    psub.required = True
    a = psub.add_parser("import", help="import a payments CSV/XLSX: account id, amount, date")
    a.add_argument("file", type=Path, metavar="FILE")
    a.add_argument("--data", type=Path, default=Path("dialbox-data"), metavar="DIR")
    a.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    logsetup.configure("WARNING")  # stdout carries the result only
    if not args.file.exists():
        raise UserError(f"{args.file}: file not found")
    store = Store(args.data / "dialbox.sqlite3")
    try:
        result = import_payments(store, args.file, report_dir=args.data / "reports")
    finally:
        store.close()
    json.dump(result.summary(), sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0
