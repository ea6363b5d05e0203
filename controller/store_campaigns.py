"""Campaign settings in the store: status, creditor, schedule, weight, wrap-up limit, lines, staff."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, time as dtime
from fnmatch import fnmatchcase
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from controller.shop import shop_zone
from firmware.errors import InputError, UserError

STATUSES = ("draft", "running", "paused", "stopped", "archived")
MODES = ("preview", "progressive", "predictive")
WRAP_AFTER = ("ready", "paused")  # what an operator becomes when the wrap-up limit passes
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Schedule:
    """When a campaign dials, in the shop's time zone (the law's hours apply on top)."""

    days: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7)  # ISO weekdays
    start: dtime = dtime(0, 0)
    end: dtime = dtime.max  # written 24:00
    tz: str = field(default_factory=shop_zone)  # the shop's when a schedule names none

    def open_at(self, wall: float) -> bool:
        local = datetime.fromtimestamp(wall, ZoneInfo(self.tz))
        return local.isoweekday() in self.days and self.start <= local.time() < self.end

    def to_json(self) -> dict:
        return {"days": list(self.days), "from": hhmm(self.start), "to": hhmm(self.end),
                "tz": self.tz}

    @classmethod
    def from_json(cls, d: dict) -> Schedule:
        return cls(tuple(d["days"]), _time(d["from"]), _time(d["to"]), d.get("tz") or shop_zone())

    @classmethod
    def parse(cls, days: str | None, hours: str | None, tz: str | None) -> Schedule:
        """``mon-fri`` or ``mon,wed,sat``; ``09:00-20:00``; a zone name such as Asia/Yekaterinburg."""
        base = cls()
        out_days = base.days if not days else _parse_days(days)
        start, end = base.start, base.end
        if hours:
            a, sep, b = hours.partition("-")
            try:
                start, end = _time(a.strip()), _time(b.strip())
            except ValueError:
                raise InputError("hours: write them as 09:00-20:00, not {hours}",
                                 hours=hours) from None
            if not sep or start >= end:
                raise InputError("hours: the start must come before the end, as in "
                                 "09:00-20:00, not {hours}", hours=hours)
        zone = tz or shop_zone()
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InputError("tz: time zone {zone} is unknown; give one like Europe/Moscow",
                             zone=zone) from None
        return cls(out_days, start, end, zone)


def hhmm(t: dtime) -> str:
    return "24:00" if t == dtime.max else t.strftime("%H:%M")


def _time(text: str) -> dtime:
    return dtime.max if text == "24:00" else dtime.fromisoformat(text)


def _parse_days(text: str) -> tuple[int, ...]:
    out: set[int] = set()
    for part in text.lower().replace(" ", "").split(","):
        a, _, b = part.partition("-")
        try:
            lo = DAY_NAMES.index(a) + 1
            hi = DAY_NAMES.index(b) + 1 if b else lo
        except ValueError:
            raise InputError("days: use mon..sun, as in mon-fri or mon,wed,sat; not {days}",
                             days=text) from None
        out.update(range(lo, hi + 1) if lo <= hi else [*range(lo, 8), *range(1, hi + 1)])
    return tuple(sorted(out))


@dataclass(frozen=True)
class CampaignConfig:
    """What the runner needs to know of one campaign, as stored."""

    id: int
    name: str
    creditor: str | None = None
    mode: str = "progressive"
    compliance: str = "ru-230fz"
    status: str = "draft"
    schedule: Schedule | None = None
    weight: int = 1
    wrap_limit_s: float | None = None
    wrap_after: str = "ready"
    take_s: float | None = None  # an offered call rings on a desk this long; None: TAKE_S
    abandon_target: float | None = None  # the pacing target; None: the law's cap
    line_group: tuple[str, ...] = ()  # line name patterns (gsm*, e1-0/1); empty: every line
    operators: tuple[str, ...] = ()  # user names or positions; with teams empty: everyone
    teams: tuple[str, ...] = ()
    demo: bool = False
    extra: dict = field(default_factory=dict, compare=False)

    def line_ok(self, line: str) -> bool:
        return not self.line_group or any(fnmatchcase(line, p) for p in self.line_group)

    def staffs(self, *names: str | None, team: str | None = None) -> bool:
        """Does this campaign take this operator (any of his names, or his team)?"""
        if not self.operators and not self.teams:
            return True
        return any(n in self.operators for n in names if n) or (team is not None and
                                                                 team in self.teams)

    def to_json(self) -> dict:
        return {"name": self.name, "creditor": self.creditor, "mode": self.mode,
                "compliance": self.compliance, "status": self.status,
                "schedule": self.schedule.to_json() if self.schedule else None,
                "weight": self.weight, "wrap_limit_s": self.wrap_limit_s,
                "wrap_after": self.wrap_after, "take_s": self.take_s,
                "abandon_target": self.abandon_target,
                "line_group": list(self.line_group),
                "operators": list(self.operators), "teams": list(self.teams),
                "demo": self.demo}


class CampaignsMixin:
    """Store methods over campaigns and campaign_staff."""

    def create_campaign(self, name: str, *, creditor: str | None = None,
                        mode: str = "progressive", compliance_profile: str = "ru-230fz",
                        demo: bool = False) -> int:
        """A new campaign, a draft: it dials only once a person starts it."""
        name = name.strip()
        if not name or len(name) > 100:
            raise InputError("name: give the campaign a name of 1-100 characters")
        if mode not in MODES:
            raise InputError("mode: {mode} is not a dialing mode; one of {modes}", mode=mode,
                             modes=", ".join(MODES))
        _known_profile(compliance_profile)
        if self.db.execute("SELECT 1 FROM campaigns WHERE name=?", (name,)).fetchone():
            raise InputError("name: a campaign named {name} exists already", name=name)
        with self.tx():
            cid = self.campaign(name, create=True, mode=mode,
                                compliance_profile=compliance_profile)
            self.db.execute("UPDATE campaigns SET creditor=?, demo=?, status='draft', "
                            "updated_at=? WHERE id=?",
                            (creditor or None, int(demo), self.clock.wall(), cid))
        return cid

    def campaign_config(self, campaign: int | str) -> CampaignConfig:
        col = "id" if isinstance(campaign, int) else "name"
        row = self.db.execute(f"SELECT * FROM campaigns WHERE {col}=?", (campaign,)).fetchone()
        if row is None:
            raise UserError("no campaign named {name}", name=campaign)
        return self._config(row, self._staff().get(row["id"], ((), ())))

    def campaign_configs(self) -> list[CampaignConfig]:
        staff = self._staff()
        return [self._config(r, staff.get(r["id"], ((), ())))
                for r in self.db.execute("SELECT * FROM campaigns ORDER BY id")]

    def update_campaign(self, campaign_id: int, **changes) -> None:
        """Write checked settings (see controller.campaigns.update for the checks)."""
        cols = {"status", "creditor", "mode", "compliance_profile", "schedule", "weight",
                "wrap_limit_s", "wrap_after", "line_group", "name", "abandon_target",
                "take_s"}
        staff = {k: changes.pop(k) for k in ("operators", "teams") if k in changes}
        bad = set(changes) - cols
        if bad:
            raise ValueError(f"unknown campaign settings {sorted(bad)}")
        with self.tx():
            if changes:
                sets = ", ".join(f"{k}=?" for k in changes)
                self.db.execute(f"UPDATE campaigns SET {sets}, updated_at=? WHERE id=?",
                                (*changes.values(), self.clock.wall(), campaign_id))
            for kind, names in staff.items():
                self.db.execute("DELETE FROM campaign_staff WHERE campaign_id=? AND kind=?",
                                (campaign_id, kind[:-1]))
                self.db.executemany("INSERT INTO campaign_staff (campaign_id, kind, name) "
                                    "VALUES (?,?,?)",
                                    [(campaign_id, kind[:-1], n) for n in dict.fromkeys(names)])

    def teams_of_users(self) -> dict[str, str | None]:
        return dict(self.db.execute("SELECT username, team FROM users"))

    def _staff(self) -> dict[int, tuple[tuple[str, ...], tuple[str, ...]]]:
        out: dict[int, tuple[list, list]] = {}
        for cid, kind, name in self.db.execute(
                "SELECT campaign_id, kind, name FROM campaign_staff ORDER BY name"):
            ops, teams = out.setdefault(cid, ([], []))
            (ops if kind == "operator" else teams).append(name)
        return {cid: (tuple(o), tuple(t)) for cid, (o, t) in out.items()}

    @staticmethod
    def _config(r, staff) -> CampaignConfig:
        return CampaignConfig(
            id=r["id"], name=r["name"], creditor=r["creditor"], mode=r["mode"],
            compliance=r["compliance_profile"], status=r["status"],
            schedule=Schedule.from_json(json.loads(r["schedule"])) if r["schedule"] else None,
            weight=r["weight"], wrap_limit_s=r["wrap_limit_s"], wrap_after=r["wrap_after"],
            abandon_target=r["abandon_target"], take_s=r["take_s"],
            line_group=tuple(p for p in (r["line_group"] or "").split(",") if p),
            operators=staff[0], teams=staff[1], demo=bool(r["demo"]))


def _known_profile(name: str) -> None:
    from controller.compliance.profiles import OPTIONS, PROFILES
    if name not in PROFILES and name not in OPTIONS:  # "ru-230fz:calendar" is ru-230fz too
        raise InputError("compliance: profile {name} is unknown; known: {known}", name=name,
                         known=", ".join([*PROFILES, *OPTIONS]))
