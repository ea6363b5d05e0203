"""``dialbox api token``: tokens for integrations (the shop's CRM), scoped and revocable."""
from __future__ import annotations

import argparse
import getpass
import json
from pathlib import Path

from controller import api_tokens
from controller.store import Store


def add_parser(sub) -> None:
    p = sub.add_parser("api", help="the integration API: tokens for the shop's CRM")
    psub = p.add_subparsers(dest="api_command", metavar="ACTION")
    psub.required = True
    t = psub.add_parser("token", help="issue, list or revoke integration tokens")
    tsub = t.add_subparsers(dest="token_command", metavar="ACTION")
    tsub.required = True
    add = tsub.add_parser("add", help="issue a token (printed once, never stored in clear)")
    add.add_argument("name", help="the integration, e.g. 'CRM'")
    add.add_argument("--scope", action="append", required=True, choices=sorted(api_tokens.SCOPES),
                     help="what it may do (repeat): " + "; ".join(
                         f"{k}: {v}" for k, v in api_tokens.SCOPES.items()))
    rev = tsub.add_parser("revoke", help="revoke an integration's token")
    rev.add_argument("name")
    lst = tsub.add_parser("list", help="the integrations and their scopes (JSON)")
    for a in (add, rev, lst):
        a.add_argument("--data", type=Path, default=Path("dialbox-data"), metavar="DIR")
        a.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    store = Store(args.data / "dialbox.sqlite3")
    who = f"cli:{getpass.getuser()}"
    try:
        if args.token_command == "add":
            print(api_tokens.issue(store, args.name, args.scope, by=who, source="cli"))
        elif args.token_command == "revoke":
            api_tokens.revoke(store, args.name, by=who, source="cli")
            print(f"the token of {args.name!r} is revoked")
        else:
            print(json.dumps(api_tokens.tokens(store), ensure_ascii=False, indent=2))
    finally:
        store.close()
    return 0
