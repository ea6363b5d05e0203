"""``dialbox console pin``: set the field-service console's PIN."""
from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from dialbox.console.pin import PinStore, check_new
from firmware.errors import UserError


def add_parser(sub) -> None:
    p = sub.add_parser("console", help="the field-service serial console: set its PIN")
    csub = p.add_subparsers(dest="console_command", metavar="ACTION")
    csub.required = True
    c = csub.add_parser("pin", help="set a new console PIN (asked twice on a terminal, or one "
                                    "line on standard input)")
    c.add_argument("--data", type=Path, default=Path("dialbox-data"), metavar="DIR",
                   help="data directory of the box (default ./dialbox-data)")
    c.set_defaults(func=set_pin)


def set_pin(args: argparse.Namespace) -> int:
    if sys.stdin.isatty():
        pin = getpass.getpass("new console PIN (6-12 digits): ")
        check_new(pin)
        if getpass.getpass("again: ") != pin:
            raise UserError("the two PINs differ; nothing changed")
    else:
        pin = sys.stdin.readline().strip()
    if not args.data.is_dir():
        raise UserError(f"{args.data}: no such data directory (give --data DIR)")
    PinStore(args.data).set(pin)
    _audit(args.data)
    print(f"console PIN set ({args.data / 'console-pin'}); the one-time PIN no longer works",
          file=sys.stderr)
    return 0


def _audit(data: Path) -> None:
    db = data / "dialbox.sqlite3"
    if not db.exists():
        return
    from controller import audit
    from controller.store import Store
    store = Store(db)
    try:
        audit.record(store, who=getpass.getuser(), action="pin_set", obj="console", source="cli")
    finally:
        store.close()
