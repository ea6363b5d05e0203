"""``dialbox compliance``: ask the compliance engine about one debtor at one instant."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from controller import evidence
from controller.compliance import (
    DEFAULT_PROFILE, PROFILES, ComplianceError, InMemoryContactHistory, LeadContext, check,
    get_profile, load_history, normalize_phone)
from controller.compliance.engine import SUSPENSION_MONTHS, Refusal, add_months
from controller.compliance.history import parse_instant
from controller.compliance.profiles import OPTIONS, READINGS, with_reading
from controller.compliance.regions import find_subjects, suggest
from controller.compliance.zones import zone
from controller.store import Store
from dialbox import logsetup
from firmware.errors import UserError

_CLI_DEBTOR = "cli-debtor"
_CLI_DEBT = "cli-debt"


def add_parser(subparsers) -> None:
    """Register ``dialbox compliance check`` and ``dialbox compliance profiles``."""
    parser = subparsers.add_parser(
        "compliance", help="check when a debtor may be called under a compliance profile")
    sub = parser.add_subparsers(dest="compliance_command", metavar="ACTION")
    sub.required = True
    chk = sub.add_parser("check", help="may this debtor be called at this instant; if not, why")
    chk.add_argument("--profile", default=DEFAULT_PROFILE,
                     help=f"compliance profile ({', '.join(sorted([*PROFILES, *OPTIONS]))}); "
                          f"default {DEFAULT_PROFILE}")
    chk.add_argument("--reading", choices=READINGS,
                     help="read the law's day, week and month as rolling windows (24 h, 7 days, "
                          "31 days: the default of ru-230fz) or as calendar periods")
    chk.add_argument("--phone", required=True, help="debtor's phone, e.g. '8 (912) 345-67-89'")
    chk.add_argument("--region", help="Russian federal subject: name, ISO code or region code")
    chk.add_argument("--tz", help="debtor's IANA time zone, e.g. Asia/Yekaterinburg")
    chk.add_argument("--at", required=True, help="instant, ISO 8601 with offset, e.g. "
                                                 "2026-01-02T10:00:00+03:00 or ...Z")
    chk.add_argument("--channel", choices=("voice", "sms"), default="voice")
    chk.add_argument("--history", metavar="FILE",
                     help='JSON list of past contacts with this person: [{"at": ISO, "kind": '
                          '"call|conversation|sms", "phone": optional, "debt": optional}, ...]')
    chk.add_argument("--debt", metavar="KEY", default=_CLI_DEBT,
                     help="the debt the call is about, for per-debt limits (us-regf); history "
                          "rows name theirs with \"debt\" (default: the same one)")
    chk.add_argument("--dnc", metavar="REASON", help="the number is on the do-not-call list")
    chk.add_argument("--refusal", metavar="ISO8601",
                     help="the debtor refused interaction at this instant (230-FZ art. 8)")
    chk.add_argument("--enforcement", metavar="ISO8601",
                     help="an enforcement document from this instant suspends the refusal for "
                          "two months")
    chk.add_argument("--representative", metavar="PHONE",
                     help="the debtor's named representative: his number may still be called")
    chk.set_defaults(func=_check)
    prof = sub.add_parser("profiles", help="list the compliance profiles")
    prof.set_defaults(func=_profiles)
    exp = sub.add_parser("explain", help="why this call (or SMS) was allowed: the profile and "
                                         "version, zones and local times, counts, line number")
    exp.add_argument("call_id", metavar="CALL_ID", help="a call id (or an SMS id, sms-...)")
    exp.add_argument("--data", type=Path, default=Path("dialbox-data"), metavar="DIR",
                     help="the box's data directory (default ./dialbox-data)")
    exp.set_defaults(func=_explain)


def _check(args: argparse.Namespace) -> int:
    try:
        profile = get_profile(with_reading(args.profile, args.reading))
        phone = normalize_phone(args.phone)
        at = parse_instant(args.at, "--at")
        if args.tz:
            zone(args.tz)
        if args.region and not find_subjects(args.region):
            hint = suggest(args.region)
            raise ComplianceError(
                f"region {args.region!r} is not a Russian federal subject"
                + (f"; did you mean {', '.join(hint)}?" if hint else
                   "; give its name, ISO code (RU-KGD) or two-digit code (39)"))
        history = (load_history(args.history, _CLI_DEBTOR, default_debt=args.debt)
                   if args.history else InMemoryContactHistory())
        if args.refusal:
            history.record_refusal(_CLI_DEBTOR, _refusal(args))
        elif args.enforcement or args.representative:
            raise ComplianceError("--enforcement and --representative are exceptions to a "
                                  "refusal: give --refusal too")
        decision = check(profile, LeadContext(_CLI_DEBTOR, phone, args.region, args.tz,
                                              debt=args.debt),
                         at=at, history=history, channel=args.channel, dnc=args.dnc)
    except ComplianceError as exc:
        raise UserError(f"compliance check: {exc}") from None
    json.dump(decision.to_json(), sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")
    return 0


def _refusal(args: argparse.Namespace) -> Refusal:
    at = parse_instant(args.refusal, "--refusal")
    suspended = ()
    if args.enforcement:
        start = parse_instant(args.enforcement, "--enforcement")
        suspended = ((start, add_months(start, SUSPENSION_MONTHS)),)
    reps = (normalize_phone(args.representative),) if args.representative else ()
    return Refusal("debtor", at, channel="cli", suspended=suspended, representatives=reps)


def _explain(args: argparse.Namespace) -> int:
    db = args.data / "dialbox.sqlite3"
    if not db.is_file():
        raise UserError(f"{db}: no database here; give the box's data directory with --data")
    logsetup.configure("WARNING")  # stdout carries the result only
    store = Store(db)
    try:
        json.dump(evidence.explain(store, args.call_id), sys.stdout, ensure_ascii=False,
                  indent=2)
    finally:
        store.close()
    sys.stdout.write("\n")
    return 0


def _profiles(args: argparse.Namespace) -> int:
    for name, p in sorted({**PROFILES, **OPTIONS}.items()):
        default = " (default)" if name == DEFAULT_PROFILE else ""
        print(f"{name}{default}: {p.title} [version {p.version}, {p.reading} windows]")
    return 0
