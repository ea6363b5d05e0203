"""``dialbox backup FILE`` and ``dialbox restore FILE``: the store, safely, while dialing too."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dialbox import backup, config


def add_parser(sub) -> None:
    b = sub.add_parser("backup", help="back up the store into FILE (safe while the box runs)")
    b.add_argument("file", type=Path, metavar="FILE")
    _data_args(b)
    b.set_defaults(func=make)
    r = sub.add_parser("restore", help="restore the store from FILE (the box must be stopped)")
    r.add_argument("file", type=Path, metavar="FILE")
    _data_args(r)
    r.set_defaults(func=restore)


def _data_args(p) -> None:
    p.add_argument("--data", type=Path, metavar="DIR",
                   help="data directory (default: the config's, else ./dialbox-data)")
    p.add_argument("--config", type=Path, metavar="FILE",
                   help="appliance config (default $DIALBOX_CONFIG) naming the data directory")


def _data(args: argparse.Namespace) -> Path:
    if args.data:
        return args.data
    path = config.find(args.config)
    return config.load(path).data if path else Path("dialbox-data")


def make(args: argparse.Namespace) -> int:
    data = _data(args)
    manifest = backup.make(data / backup.DB_NAME, args.file, data=data)
    print(json.dumps({"file": str(args.file), "schema_version": manifest["schema_version"],
                      "db_bytes": manifest["db_bytes"],
                      "recordings": len(manifest["recordings"])}, ensure_ascii=False))
    return 0


def restore(args: argparse.Namespace) -> int:
    result = backup.restore(args.file, _data(args))
    print(json.dumps(result, ensure_ascii=False))
    if result["missing_recordings"] or result["changed_recordings"]:
        print(f"dialbox: warning: {len(result['missing_recordings'])} recording(s) the backup "
              f"references are missing and {len(result['changed_recordings'])} changed",
              file=sys.stderr)
    return 0
