"""``dialbox campaign``: create, list, start, pause, stop, archive and edit campaigns.

Works on the data directory whether the box runs or not; a running box picks a change up
within a few seconds. Every change is audited (who: the system user, source: cli).
"""
from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path

from controller import campaigns
from controller.store import Store
from controller.store_campaigns import hhmm
from firmware.errors import UserError

_LIST_COLUMNS = ("name", "status", "creditor", "mode", "compliance", "weight")


def add_parser(sub) -> None:
    p = sub.add_parser("campaign", help="campaigns: create, list, start, pause, stop, edit",
                       description="Campaigns of this box. Works with the box running or not: "
                                   "a running box follows the change within a few seconds.")
    psub = p.add_subparsers(dest="campaign_command", metavar="ACTION")
    psub.required = True

    def data(q: argparse.ArgumentParser) -> None:
        q.add_argument("--data", type=Path, default=Path("dialbox-data"), metavar="DIR",
                       help="data directory (default ./dialbox-data)")

    c = psub.add_parser("create", help="a new campaign (a draft: it dials once started)")
    c.add_argument("name", metavar="NAME")
    c.add_argument("--creditor", metavar="C", help="whose portfolio this is")
    c.add_argument("--mode", default="progressive", choices=campaigns.MODES)
    c.add_argument("--compliance", default="ru-230fz", metavar="P",
                   help="compliance profile: ru-230fz (default), us-regf, none")
    data(c)
    c.set_defaults(func=create)

    ls = psub.add_parser("list", help="the campaigns, their status and settings")
    ls.add_argument("--json", action="store_true", help="JSON, one object per campaign")
    ls.add_argument("--all", action="store_true", help="archived campaigns too")
    data(ls)
    ls.set_defaults(func=list_)

    sh = psub.add_parser("show", help="one campaign's settings as JSON")
    sh.add_argument("name", metavar="NAME")
    data(sh)
    sh.set_defaults(func=show)

    for action, text in (("start", "start dialing"), ("pause", "pause (calls up go on)"),
                         ("stop", "stop dialing (calls up go on)"),
                         ("archive", "archive a stopped campaign"),
                         ("unarchive", "bring an archived campaign back (stopped)")):
        a = psub.add_parser(action, help=text)
        a.add_argument("name", metavar="NAME")
        data(a)
        a.set_defaults(func=act, action=action)

    s = psub.add_parser("set", help="change settings: schedule, weight, staff, lines, wrap-up")
    s.add_argument("name", metavar="NAME")
    s.add_argument("--rename", metavar="NEW", help="a new name")
    s.add_argument("--creditor", metavar="C")
    s.add_argument("--mode", choices=campaigns.MODES)
    s.add_argument("--compliance", metavar="P")
    s.add_argument("--weight", type=int, metavar="N",
                   help="share of lines and operators against other running campaigns (1-100)")
    s.add_argument("--days", metavar="DAYS", help="days it dials: mon-fri, or mon,wed,sat")
    s.add_argument("--hours", metavar="HH:MM-HH:MM",
                   help="hours it dials in the shop's time zone (the law's hours still apply)")
    s.add_argument("--tz", metavar="ZONE", help="the shop's time zone (default Europe/Moscow)")
    s.add_argument("--no-schedule", action="store_true", help="dial any time the law allows")
    s.add_argument("--wrap-limit", metavar="SECONDS",
                   help="wrap-up time limit per call (5-3600 s), or 'none'")
    s.add_argument("--take-time", metavar="SECONDS",
                   help="how long a call offered to an operator rings on his desk before it "
                        "goes to the next one (5-120 s), or 'none' (15 s)")
    s.add_argument("--after-wrap", choices=campaigns.WRAP_AFTER,
                   help="when the limit passes the operator is made ready, or paused")
    s.add_argument("--abandon-target", metavar="PERCENT",
                   help="pacing target: the share of live answers the predictive pacer may "
                        "abandon, in percent (e.g. 1.5), at most the law's; 'none': the law's "
                        "limit (with --segment: that segment's, 'none': the campaign's)")
    s.add_argument("--segment", metavar="SEGMENT",
                   help="with --abandon-target: set it for this segment's strategy only")
    s.add_argument("--lines", metavar="PATTERNS",
                   help="line group: line names or patterns, comma-separated (gsm0,gsm1 or "
                        "'e1-0/*'); 'all' for every line")
    s.add_argument("--operators", metavar="NAMES",
                   help="operators (user names; simulated ones: pos1...) who work it, "
                        "comma-separated; 'all' with no --teams: everyone")
    s.add_argument("--teams", metavar="TEAMS", help="teams who work it, comma-separated; "
                                                    "'none' to clear")
    data(s)
    s.set_defaults(func=set_)


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def _store(args) -> Store:
    return Store(args.data / "dialbox.sqlite3")


def create(args) -> int:
    store = _store(args)
    try:
        cfg = campaigns.create(store, args.name, creditor=args.creditor, mode=args.mode,
                               compliance=args.compliance, who=_who(), source="cli")
    finally:
        store.close()
    print(f"campaign {cfg.name!r} created (a draft: 'dialbox campaign start' starts it)")
    return 0


def list_(args) -> int:
    store = _store(args)
    try:
        rows = []
        for cfg in store.campaign_configs():
            if cfg.status == "archived" and not args.all:
                continue
            rows.append(dict(cfg.to_json(), counters=store.counters(cfg.id)))
    finally:
        store.close()
    if args.json:
        json.dump(rows, sys.stdout, ensure_ascii=False)
        sys.stdout.write("\n")
        return 0
    if not rows:
        print("no campaigns; 'dialbox campaign create NAME' makes one")
        return 0
    table = [[str(r[c] if r[c] is not None else "-") for c in _LIST_COLUMNS] +
             [str(r["counters"]["leads_left"])] for r in rows]
    head = [*_LIST_COLUMNS, "leads_left"]
    widths = [max(len(x) for x in col) for col in zip(head, *table)]
    for row in (head, *table):
        print("  ".join(x.ljust(w) for x, w in zip(row, widths)).rstrip())
    return 0


def show(args) -> int:
    store = _store(args)
    try:
        cfg = store.campaign_config(args.name)
        out = dict(cfg.to_json(), counters=store.counters(cfg.id))
    finally:
        store.close()
    json.dump(out, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


def act(args) -> int:
    store = _store(args)
    try:
        cfg = campaigns.act(store, args.name, args.action, who=_who(), source="cli",
                            data=args.data)
    finally:
        store.close()
    print(f"campaign {cfg.name!r}: {cfg.status}")
    return 0


def _names(text: str, empty: str) -> list[str]:
    return [] if text.strip().lower() == empty else [n.strip() for n in text.split(",")
                                                     if n.strip()]


def _percent(text: str) -> float | None:
    """'1.5', '1,5' or '1.5%' -> 0.015; 'none' -> None."""
    t = text.strip().lower().rstrip("%").strip().replace(",", ".")
    if t == "none":
        return None
    try:
        return float(t) / 100.0
    except ValueError:
        raise UserError(f"--abandon-target {text!r}: a percentage such as 1.5, or 'none'"
                        ) from None


def _seconds(text: str, flag: str) -> float | None:
    t = text.strip().lower()
    try:
        return None if t == "none" else float(t)
    except ValueError:
        raise UserError(f"{flag} {text!r}: seconds, or 'none'") from None


def set_(args) -> int:
    if args.segment is not None:
        return _set_segment(args)
    changes: dict = {}
    if args.abandon_target is not None:
        changes["abandon_target"] = _percent(args.abandon_target)
    if args.rename is not None:
        changes["name"] = args.rename
    for key in ("creditor", "mode", "compliance", "weight"):
        if getattr(args, key) is not None:
            changes[key] = getattr(args, key)
    if args.no_schedule and (args.days or args.hours or args.tz):
        raise UserError("--no-schedule takes no --days, --hours or --tz")
    if args.no_schedule:
        changes["schedule"] = None
    for flag, key in (("wrap_limit", "wrap_limit_s"), ("take_time", "take_s")):
        if getattr(args, flag) is not None:
            changes[key] = _seconds(getattr(args, flag), "--" + flag.replace("_", "-"))
    if args.after_wrap is not None:
        changes["wrap_after"] = args.after_wrap
    if args.lines is not None:
        changes["line_group"] = _names(args.lines, "all")
    if args.operators is not None:
        changes["operators"] = _names(args.operators, "all")
    if args.teams is not None:
        changes["teams"] = _names(args.teams, "none")
    partial = args.days or args.hours or args.tz
    if not changes and not partial:
        raise UserError("nothing to change: give at least one setting (see --help)")
    store = _store(args)
    try:
        if partial:  # what is not given stays as it was
            old = store.campaign_config(args.name).schedule or campaigns.Schedule()
            days = args.days or ",".join(campaigns.DAY_NAMES[d - 1] for d in old.days)
            hours = args.hours or f"{hhmm(old.start)}-{hhmm(old.end)}"
            changes["schedule"] = campaigns.Schedule.parse(days, hours, args.tz or old.tz)
        cfg = campaigns.update(store, args.name, who=_who(), source="cli", **changes)
    finally:
        store.close()
    json.dump(cfg.to_json(), sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


def _set_segment(args) -> int:
    """``--segment S --abandon-target P``: one segment's pacing target, nothing else."""
    others = [k for k in ("rename", "creditor", "mode", "compliance", "weight", "days", "hours",
                          "tz", "wrap_limit", "after_wrap", "lines", "operators", "teams")
              if getattr(args, k) is not None] + (["no_schedule"] if args.no_schedule else [])
    if args.abandon_target is None or others:
        raise UserError("--segment sets a segment's --abandon-target and nothing else")
    store = _store(args)
    try:
        seg = campaigns.set_segment_target(store, args.name, args.segment,
                                           _percent(args.abandon_target), who=_who(),
                                           source="cli")
    finally:
        store.close()
    json.dump(seg.to_json(), sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0
