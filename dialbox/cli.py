"""The one console script: ``dialbox <subcommand>``."""
from __future__ import annotations

import argparse
import importlib
import sys

from firmware.errors import UserError

# Each module registers its subcommands with ``add_parser(subparsers)``; the handler it sets as
# ``func`` returns the exit code. Modules are imported lazily so one broken optional part cannot
# take the whole command line down.
_COMMAND_MODULES = (
    "dialbox.cmd_run",
    "dialbox.cmd_profile",
    "dialbox.cmd_user",
    "dialbox.cmd_linestate",
    "dialbox.cmd_compliance",
    "dialbox.cmd_modem",
    "dialbox.cmd_e1",
    "dialbox.cmd_import",
    "dialbox.cmd_campaign",
    "dialbox.cmd_dnc",
    "dialbox.cmd_payments",
    "dialbox.cmd_simulate",
    "dialbox.cmd_api",
    "dialbox.cmd_recordings",
    "dialbox.cmd_prompts",
    "dialbox.cmd_sim",
    "dialbox.cmd_config",
    "dialbox.cmd_console",
    "dialbox.cmd_backup",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dialbox", description="dialbox: dialer appliance for debt-collection shops")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in _COMMAND_MODULES:
        importlib.import_module(name).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from dialbox import logsetup
    logsetup.configure("WARNING")  # tools print JSON on stdout; logs go to stderr
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"dialbox: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
