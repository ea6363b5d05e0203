"""``dialbox user``: people who may log in to the web admin."""
from __future__ import annotations

import argparse
import getpass
import os
from pathlib import Path

from controller import users
from controller.store import Store
from firmware.errors import UserError


def add_parser(sub) -> None:
    p = sub.add_parser("user", help="web admin users")
    psub = p.add_subparsers(dest="user_command", metavar="ACTION")
    psub.required = True
    a = psub.add_parser("add", help="add a user (the password is asked, or read from "
                                    "DIALBOX_PASSWORD)")
    a.add_argument("username")
    a.add_argument("--role", default="supervisor", choices=users.ROLES)
    a.add_argument("--data", type=Path, default=Path("dialbox-data"), metavar="DIR")
    a.set_defaults(func=add)


def add(args: argparse.Namespace) -> int:
    password = os.environ.get("DIALBOX_PASSWORD")
    if password is None:
        try:
            password = getpass.getpass("password: ")
            again = getpass.getpass("again: ")
        except EOFError:
            raise UserError("no password given (type it, or set DIALBOX_PASSWORD)") from None
        if password != again:
            raise UserError("the two passwords differ")
    store = Store(args.data / "dialbox.sqlite3")
    try:
        users.add(store, args.username, password, role=args.role)
    finally:
        store.close()
    print(f"user {args.username} ({args.role}) added")
    return 0
