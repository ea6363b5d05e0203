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
    for name, text, func in (
            ("list", "the users, their roles and teams (--json)", list_),
            ("disable", "no sign-in, sessions ended (never the last admin)", disable),
            ("enable", "may sign in again", enable),
            ("passwd", "set a new password (asked, or DIALBOX_PASSWORD); sessions end", passwd)):
        q = psub.add_parser(name, help=text)
        if name != "list":
            q.add_argument("username")
        else:
            q.add_argument("--json", action="store_true")
        q.add_argument("--data", type=Path, default=Path("dialbox-data"), metavar="DIR")
        q.set_defaults(func=func)
    r = psub.add_parser("role", help="change a user's role (never the last admin's)")
    r.add_argument("username")
    r.add_argument("role", choices=users.ROLES)
    r.add_argument("--data", type=Path, default=Path("dialbox-data"), metavar="DIR")
    r.set_defaults(func=role)
    t = psub.add_parser("team", help="put a user in a team ('none': in no team)")
    t.add_argument("username")
    t.add_argument("team")
    t.add_argument("--data", type=Path, default=Path("dialbox-data"), metavar="DIR")
    t.set_defaults(func=team)


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def _audit(store, action: str, key: str, before=None, after=None) -> None:
    from controller import audit
    audit.record(store, who=_who(), action=action, obj="user", key=key, before=before,
                 after=after, source="cli")


def list_(args: argparse.Namespace) -> int:
    import json
    import sys
    store = Store(args.data / "dialbox.sqlite3")
    try:
        rows = users.listing(store)
    finally:
        store.close()
    if args.json:
        json.dump(rows, sys.stdout, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        for r in rows:
            print(f"{r['username']:20} {r['role']:11} {r['team'] or '-':12} "
                  f"{'disabled' if r['disabled'] else ''}".rstrip())
    return 0


def _change(args, action: str, fn) -> int:
    store = Store(args.data / "dialbox.sqlite3")
    try:
        before, after = fn(store)
        _audit(store, action, args.username, before, after)
    finally:
        store.close()
    print(f"user {args.username}: {action}")
    return 0


def disable(args: argparse.Namespace) -> int:
    def do(store):
        users.set_disabled(store, args.username, True)
        return {"disabled": False}, {"disabled": True}
    return _change(args, "disable", do)


def enable(args: argparse.Namespace) -> int:
    def do(store):
        users.set_disabled(store, args.username, False)
        return {"disabled": True}, {"disabled": False}
    return _change(args, "enable", do)


def role(args: argparse.Namespace) -> int:
    def do(store):
        return {"role": users.set_role(store, args.username, args.role)}, {"role": args.role}
    return _change(args, "role", do)


def team(args: argparse.Namespace) -> int:
    new = None if args.team.strip().lower() == "none" else args.team
    def do(store):
        return {"team": users.set_team(store, args.username, new)}, {"team": new}
    return _change(args, "team", do)


def passwd(args: argparse.Namespace) -> int:
    password = _password()
    def do(store):
        users.set_password(store, args.username, password)
        return None, None  # the audit says a reset happened, never the password
    return _change(args, "reset_password", do)


def _password() -> str:
    password = os.environ.get("DIALBOX_PASSWORD")
    if password is None:
        try:
            password = getpass.getpass("password: ")
            again = getpass.getpass("again: ")
        except EOFError:
            raise UserError("no password given (type it, or set DIALBOX_PASSWORD)") from None
        if password != again:
            raise UserError("the two passwords differ")
    return password


def add(args: argparse.Namespace) -> int:
    password = _password()
    store = Store(args.data / "dialbox.sqlite3")
    try:
        users.add(store, args.username, password, role=args.role)
    finally:
        store.close()
    print(f"user {args.username} ({args.role}) added")
    return 0
