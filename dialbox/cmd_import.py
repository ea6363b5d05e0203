"""``dialbox import``: load a creditor's call list (CSV or XLSX) into a campaign."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from controller.calllist import import_file
from controller.importer import check_mapping
from controller.store import Store
from dialbox import logsetup
from firmware.errors import UserError


def add_parser(sub) -> None:
    p = sub.add_parser("import", help="import a call list (CSV or XLSX) into a campaign")
    p.add_argument("file", type=Path, metavar="FILE", help="the creditor's CSV or XLSX file")
    p.add_argument("--campaign", required=True, metavar="NAME",
                   help="campaign to load into (created if missing: progressive, ru-230fz)")
    p.add_argument("--data", type=Path, default=Path("dialbox-data"), metavar="DIR")
    p.add_argument("--creditor", metavar="C", help="creditor name: its saved column mapping is "
                                                   "used, and a --mapping given is saved for it")
    p.add_argument("--mapping", type=Path, metavar="FILE",
                   help='JSON {"column header": "field"}; fields: account_id, debtor_name, '
                        "phone, phone_mobile, phone_home, phone_work, phone_third_party, "
                        "phone_type, debt_amount, currency, dpd, due_date, region, tz, creditor, "
                        "product, custom, ignore")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    logsetup.configure("WARNING")  # stdout carries the result only
    mapping = None
    if args.mapping is not None:
        try:
            mapping = check_mapping(json.loads(args.mapping.read_text(encoding="utf-8-sig")),
                                    str(args.mapping))
        except FileNotFoundError:
            raise UserError(f"{args.mapping}: mapping file not found") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UserError(f"{args.mapping}: not a JSON mapping ({exc}); write "
                            '{"Column header": "field", ...}') from None
    if not args.file.exists():
        raise UserError(f"{args.file}: file not found")
    db_path = args.data / "dialbox.sqlite3"
    fresh = not db_path.exists()
    store = Store(db_path)
    try:
        result = import_file(store, args.campaign, args.file, creditor=args.creditor,
                             mapping=mapping, report_dir=args.data / "reports")
    except UserError:
        store.close()
        if fresh:  # refused: leave no empty database behind either
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db_path}{suffix}").unlink(missing_ok=True)
        raise
    store.close()
    json.dump(result.summary(), sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0
