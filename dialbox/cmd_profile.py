"""``dialbox profile``: check hardware profiles, list the bundled ones."""
from __future__ import annotations

import argparse
import sys

import hw_profiles
from firmware import profiles
from firmware.yamlsrc import ConfigError, Source


def add_parser(sub) -> None:
    p = sub.add_parser("profile", help="hardware profiles: check, list")
    psub = p.add_subparsers(dest="profile_command", metavar="ACTION")
    psub.required = True
    c = psub.add_parser("check", help="check a profile; one line per problem as FILE:LINE: message")
    c.add_argument("file", metavar="FILE", help="a profile YAML file or a bundled name")
    c.set_defaults(func=check)
    ls = psub.add_parser("list", help="list the bundled profiles")
    ls.set_defaults(func=list_bundled)


def check(args: argparse.Namespace) -> int:
    try:
        src = Source.read(profiles.resolve(args.file))
        problems = profiles.check(src)
    except ConfigError as exc:
        problems = exc.problems
    for problem in problems:
        print(problem)
    if problems:
        return 1
    print(f"{args.file}: ok", file=sys.stderr)
    return 0


def list_bundled(args: argparse.Namespace) -> int:
    for name in hw_profiles.names():
        print(name)
    return 0
