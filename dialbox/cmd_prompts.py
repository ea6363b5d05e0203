"""``dialbox prompts upload|remove``: a campaign's abandon message and recording notice."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from controller import prompts
from controller.store import Store
from dialbox import logsetup
from firmware.errors import UserError


def add_parser(sub) -> None:
    p = sub.add_parser("prompts", help="a campaign's abandon message and recording notice")
    psub = p.add_subparsers(dest="prompts_command", metavar="ACTION")
    psub.required = True
    up = psub.add_parser("upload", help="convert an audio file (WAV, MP3, OGG) and keep it")
    up.add_argument("file", type=Path, metavar="FILE")
    rm = psub.add_parser("remove", help="remove a campaign's prompt")
    for a in (up, rm):
        a.add_argument("--campaign", required=True, metavar="NAME")
        a.add_argument("--kind", required=True, choices=prompts.KINDS,
                       help="abandon: played when no operator was free in 2 s; notice: the "
                            "recording notice played when the operator is connected")
        a.add_argument("--data", type=Path, default=Path("dialbox-data"), metavar="DIR")
    up.set_defaults(func=run_upload)
    rm.set_defaults(func=run_remove)


def _open(data: Path) -> Store:
    if not (data / "dialbox.sqlite3").exists():
        raise UserError(f"{data}: no dialbox database here; give the box's data directory "
                        "with --data DIR")
    return Store(data / "dialbox.sqlite3")


def run_upload(args: argparse.Namespace) -> int:
    logsetup.configure("WARNING")
    if not args.file.is_file():
        raise UserError(f"{args.file}: file not found")
    store = _open(args.data)
    try:
        cid = store.campaign(args.campaign)
        out = prompts.upload(store, args.data, cid, args.kind, args.file.read_bytes(),
                             filename=args.file.name, who="cli", source="cli")
    finally:
        store.close()
    json.dump(out, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    logsetup.configure("WARNING")
    store = _open(args.data)
    try:
        prompts.remove(store, store.campaign(args.campaign), args.kind, who="cli", source="cli")
    finally:
        store.close()
    return 0
