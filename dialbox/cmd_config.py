"""``dialbox config check FILE``: every problem of the appliance config and its profiles."""
from __future__ import annotations

import argparse
import sys

from dialbox import config
from firmware.yamlsrc import ConfigError, Source


def add_parser(sub) -> None:
    p = sub.add_parser("config", help="the appliance config: check")
    csub = p.add_subparsers(dest="config_command", metavar="ACTION")
    csub.required = True
    c = csub.add_parser("check", help="check a config and the profiles it enables; one line "
                                      "per problem as FILE:LINE: message")
    c.add_argument("file", metavar="FILE", help="the config file (e.g. /etc/dialbox/dialbox.yaml)")
    c.set_defaults(func=check)


def check(args: argparse.Namespace) -> int:
    try:
        src = Source.read(args.file)
        problems = config.check(src, profiles_too=True)
    except ConfigError as exc:
        problems = exc.problems
    for problem in problems:
        print(problem)
    if problems:
        return 1
    cfg = config.load(args.file)
    print(f"{args.file}: ok ({len(cfg.profiles)} profile(s) enabled, data in {cfg.data}, "
          f"web admin on {', '.join(cfg.listen)}"
          + (f", console on {cfg.console.device}" if cfg.console.device else "") + ")",
          file=sys.stderr)
    return 0
