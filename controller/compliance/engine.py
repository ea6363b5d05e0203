"""The one decision: may this debtor be called or sent an SMS at this instant; if not, why, when."""
from __future__ import annotations

import functools
from calendar import monthrange
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

from controller.compliance.errors import ComplianceError
from controller.compliance.history import ContactHistory, subject
from controller.compliance.profiles import (
    DAY, MONTH, ROLLING, SLIDING, WEEK, ChannelRules, CountLimit, Profile, get_profile)
from controller.compliance.workdays import day_kind
from controller.compliance.zones import resolve, zone
from firmware.errors import Msg, msg_json

UTC = timezone.utc
# History older than this cannot matter: a calendar month window starts at most 31 days back.
_MONTH_LOOKBACK = 33
# An enforcement document suspends a debtor's refusal this many months (230-FZ as amended).
SUSPENSION_MONTHS = 2
# next_allowed_at is searched this far ahead; beyond it the lead is reported as not callable.
HORIZON = timedelta(days=400)
_MAX_STEPS = 20_000

_WHAT = {"attempt": "call attempts", "conversation": "conversations", "sms": "SMS"}


@dataclass(frozen=True, slots=True)
class Reason:
    """Why not: a stable ``code`` for programs and a ``text`` for the supervisor."""

    code: str
    text: str
    # For a count limit: which window refused (reading, window, scope, from, to, count, maximum).
    window: dict | None = None

    def to_json(self) -> dict:
        """Plain JSON-able form."""
        out = {"code": self.code, "text": self.text}
        if isinstance(self.text, Msg):  # a page reads it back in its own language
            out["said"] = msg_json(self.text)
        if self.window is not None:
            out["window"] = dict(self.window)
        return out


@dataclass(frozen=True, slots=True)
class LeadContext:
    """What the engine needs of a lead: who (for history) and where (for local time).

    ``debtor_id`` is the person: his stable person key, the same across accounts, creditors'
    files and campaigns. ``debt`` names one debt (account) for limits counted per debt.
    """

    debtor_id: str
    phone: str | None = None   # E.164
    region: str | None = None  # Russian federal subject: name, ISO 3166-2 or two-digit code
    tz: str | None = None      # IANA zone; wins over region and phone
    debt: str | None = None    # the account's key, for per-debt limits (Reg F)


@dataclass(frozen=True, slots=True)
class Refusal:
    """A debtor's refusal of interaction, or a third party's withdrawal of consent (``phone``).

    In force from ``at``; a debtor's refusal is lifted while an enforcement document suspends
    it (``suspended``: [from, until) spans) and never bars calls to a named representative.
    """

    kind: str                        # "debtor" or "third_party"
    at: datetime
    channel: str = ""                # desk, card, import (cli for a what-if)
    ident: int | str = ""
    phone: str | None = None         # the third party's number
    suspended: tuple[tuple[datetime, datetime], ...] = ()
    representatives: tuple[str, ...] = ()  # numbers of the debtor's named representatives


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer for one lead, channel and instant."""

    allowed: bool
    reasons: tuple[Reason, ...]
    at: datetime
    zones: tuple[str, ...]           # the debtor's possible zones, west to east
    zone_source: str | None          # "tz", "region", "phone" or None
    next_allowed_at: datetime | None  # earliest allowed UTC instant >= at; None: never or unknown
    profile: str
    channel: str
    local_times: dict[str, datetime] = field(default_factory=dict)
    version: str = ""
    # Each limit's count at ``at`` (before this contact): the evidence of why it was allowed.
    counters: tuple[dict, ...] = ()
    notes: tuple[str, ...] = ()  # exceptions applied (a suspended refusal, a representative)

    @property
    def local_time(self) -> datetime | None:
        """Local time in the westernmost possible zone (the only one when the zone is known)."""
        return self.local_times[self.zones[0]] if self.zones else None

    def to_json(self) -> dict:
        """Plain JSON-able form (for the CLI, logs, the web admin)."""
        return {
            "allowed": self.allowed,
            "reasons": [r.to_json() for r in self.reasons],
            "local_time": self.local_time.isoformat() if self.local_time else None,
            "local_times": {z: t.isoformat() for z, t in self.local_times.items()},
            "zones": list(self.zones),
            "zone_source": self.zone_source,
            "next_allowed_at": (self.next_allowed_at.astimezone(UTC).isoformat()
                                if self.next_allowed_at else None),
            "profile": self.profile,
            "channel": self.channel,
            "at": self.at.astimezone(UTC).isoformat(),
        }

    def evidence(self) -> dict:
        """What a regulator asks: the profile and its version, the zones and the local time in
        each, every limit's count before the contact, the exceptions applied, the reasons."""
        return dict(self.to_json(), version=self.version, counters=list(self.counters),
                    notes=list(self.notes))


@dataclass(frozen=True, slots=True)
class _Block:
    """A reason that holds on [t, until); until None: it will not pass by itself."""

    code: str
    text: str
    zone: str
    until: datetime | None
    window: dict | None = None
    zoned: bool = True  # False: the same in every zone (a sliding window)


def check(profile: Profile | str, lead: LeadContext, *, at: datetime, history: ContactHistory,
          channel: str = "voice", dnc: str | bool | None = None,
          refusals: list[Refusal] | None = None) -> Decision:
    """Decide whether ``lead`` may be contacted on ``channel`` at ``at`` (an aware datetime).

    ``refusals``: those bearing on this person and number; None asks ``history.refusals``
    when the history keeps them (the store does). Every profile honours them, as DNC.
    """
    if isinstance(profile, str):
        profile = get_profile(profile)
    rules = profile.channel(channel)
    if at.tzinfo is None or at.utcoffset() is None:
        raise ComplianceError(f"decision time {at.isoformat()} has no UTC offset")
    at = at.astimezone(UTC)
    needs_zone = rules.hours is not None or bool(rules.limits) or bool(
        rules.quiet_days_after_conversation)
    where = resolve(lead.tz, lead.region, lead.phone)
    zones = tuple(sorted(where.zones, key=lambda z: (at.astimezone(zone(z)).utcoffset(), z)))
    local_times = {z: at.astimezone(zone(z)) for z in zones}
    reasons: list[Reason] = []
    notes: list[str] = []
    if dnc:
        reasons.append(Reason("dnc", Msg("the number is on the do-not-call list: {reason}",
                                         reason=dnc) if isinstance(dnc, str) and dnc else
                              Msg("the number is on the do-not-call list")))
    if refusals is None:
        ask = getattr(history, "refusals", None)
        refusals = ask(lead.debtor_id, lead.phone) if ask is not None else []
    reasons.extend(_refused(refusals, lead, at, notes))
    if needs_zone and not zones:
        reasons.append(Reason("unknown_timezone", Msg(
            "the debtor's local time is unknown ({why}); held, never dialed at a guess: add a "
            "time zone or region to the lead", why=where.note)))
    decide = functools.partial(Decision, at=at, zones=zones, zone_source=where.source,
                               profile=profile.name, channel=channel, local_times=local_times,
                               version=profile.version)
    if reasons:
        return decide(allowed=False, reasons=tuple(reasons), next_allowed_at=None,
                      notes=tuple(notes))
    since = at - timedelta(days=max(
        [_MONTH_LOOKBACK, rules.quiet_days_after_conversation + 2]
        + [lim.days + 2 + (lim.span.days if lim.span else 0) for lim in rules.limits]))
    contacts = {}
    for scope, kind in _kinds(rules):
        key = subject(scope, lead)
        contacts[(scope, kind)] = [] if key is None else _utc_sorted(
            history.contacts(key, kind, since, at + timedelta(microseconds=1)))
    blocks = _blocks(profile, rules, zones, at, contacts)
    nxt = at if not blocks else _next_allowed(profile, rules, zones, at, contacts, blocks)
    return decide(allowed=not blocks, reasons=tuple(_merge(blocks, len(zones))),
                  next_allowed_at=nxt, counters=_counters(rules, zones, at, contacts),
                  notes=tuple(notes))


def _counters(rules: ChannelRules, zones: tuple[str, ...], at: datetime,
              contacts: dict[tuple[str, str], list[datetime]]) -> tuple[dict, ...]:
    out = []
    for scope in rules.scopes:
        for lim in rules.limits:
            times = contacts.get((scope, lim.counts), [])
            if lim.period == SLIDING:
                lo, hi, where = at - lim.span, at, None
                n = sum(1 for c in times if lo < c <= at)
                out.append(_counter(lim, scope, lo, hi, n, where))
                continue
            for name in zones:  # a calendar window depends on the zone
                first, after = _window(lim, at.astimezone(zone(name)).date())
                lo, hi = _at_local(first, time(0), name), _at_local(after, time(0), name)
                out.append(_counter(lim, scope, lo, hi, sum(1 for c in times if lo <= c < hi),
                                    name))
    return tuple(out)


def _counter(lim: CountLimit, scope: str, lo: datetime, hi: datetime, n: int,
             where: str | None) -> dict:
    out = {"limit": lim.code, "window": lim.window_name(), "scope": scope, "from": lo.isoformat(),
           "to": hi.isoformat(), "count": n, "maximum": lim.maximum}
    if where is not None:  # a calendar window is the debtor's local one
        out["zone"] = where
    return out


def _refused(refusals: list[Refusal], lead: LeadContext, at: datetime,
             notes: list[str]) -> list[Reason]:
    out = []
    for r in refusals:
        since = r.at.astimezone(UTC)
        if at < since:
            continue
        when = f"{since:%Y-%m-%d %H:%M}"
        channel = _CHANNEL_WORDS.get(r.channel, r.channel)
        if r.kind == "third_party":
            if r.phone and r.phone == lead.phone:
                out.append(Reason("consent_withdrawn", Msg(
                    "the third party on this number withdrew consent to interaction on {when} "
                    "UTC ({channel})", when=when, channel=channel) if channel else Msg(
                    "the third party on this number withdrew consent to interaction on {when} "
                    "UTC", when=when)))
            continue
        if lead.phone and lead.phone in r.representatives:
            notes.append(f"refusal #{r.ident} of {since:%Y-%m-%d}: this number is the debtor's "
                         "named representative")
            continue
        held = [hi for lo, hi in r.suspended if lo <= at < hi]
        if held:
            notes.append(f"refusal #{r.ident} of {since:%Y-%m-%d}: suspended by an enforcement "
                         f"document until {max(held):%Y-%m-%d %H:%M} UTC")
            continue
        out.append(Reason("refusal", Msg(
            "the debtor refused interaction on {when} UTC ({channel}); no calls or messages",
            when=when, channel=channel) if channel else Msg(
            "the debtor refused interaction on {when} UTC; no calls or messages", when=when)))
    return out


def add_months(t: datetime, months: int) -> datetime:
    """``t`` plus calendar months (the 31st becomes the last day of a shorter month)."""
    month0 = t.month - 1 + months
    year, month = t.year + month0 // 12, month0 % 12 + 1
    return t.replace(year=year, month=month, day=min(t.day, monthrange(year, month)[1]))


def _utc_sorted(times: list[datetime]) -> list[datetime]:
    # The store promises aware UTC instants in order; a naive one is taken as UTC, not dropped.
    return sorted(t.astimezone(UTC) if t.tzinfo else t.replace(tzinfo=UTC) for t in times)


def _kinds(rules: ChannelRules) -> set[tuple[str, str]]:
    kinds = {(scope, lim.counts) for lim in rules.limits for scope in rules.scopes}
    if rules.quiet_days_after_conversation:
        kinds.update((scope, "conversation") for scope in rules.scopes)
    return kinds


def _next_allowed(profile: Profile, rules: ChannelRules, zones: tuple[str, ...], at: datetime,
                  contacts: dict[str, list[datetime]], blocks: list[_Block]) -> datetime | None:
    # Every block holds until its ``until``, so no instant before the latest of them is allowed;
    # jump there and look again. Contacts are only those already made: none are planned.
    t = at
    for _ in range(_MAX_STEPS):
        if not blocks:
            return t
        if any(b.until is None for b in blocks):
            return None
        later = max(b.until for b in blocks)
        t = later if later > t else t + timedelta(minutes=1)
        if t - at > HORIZON:
            return None
        blocks = _blocks(profile, rules, zones, t, contacts)
    return None


def _blocks(profile: Profile, rules: ChannelRules, zones: tuple[str, ...], t: datetime,
            contacts: dict[tuple[str, str], list[datetime]]) -> list[_Block]:
    out: list[_Block] = []
    for scope in rules.scopes:  # a sliding window is the same in every zone: judged once
        for lim in rules.limits:
            if lim.period == SLIDING:
                out.extend(_sliding_block(lim, scope, zones[0], t,
                                          contacts.get((scope, lim.counts), [])))
    for name in zones:
        tz = zone(name)
        local = t.astimezone(tz)
        today = local.date()
        if rules.hours is not None:
            out.extend(_hours_block(profile, rules, name, local, today))
        for scope in rules.scopes:
            for lim in rules.limits:
                if lim.period != SLIDING:
                    out.extend(_limit_block(lim, scope, name, today,
                                            contacts.get((scope, lim.counts), [])))
            if rules.quiet_days_after_conversation:
                out.extend(_quiet_block(rules.quiet_days_after_conversation, scope, name, today,
                                        contacts.get((scope, "conversation"), [])))
    return out


def _hours_block(profile: Profile, rules: ChannelRules, name: str, local: datetime,
                 today: date) -> list[_Block]:
    kind = day_kind(profile.holiday_country, today)
    start, end = rules.hours.window(kind.rest)
    now = local.time().replace(tzinfo=None)
    if start <= now < end:
        return []
    until = _at_local(today, start, name) if now < start else _at_local(
        today + timedelta(days=1), time(0), name)
    code = "holiday_hours" if kind.rest else "outside_hours"
    text = Msg("local time {local} ({zone}) is outside {start}-{end}, the hours allowed on {day}",
               local=f"{local:%Y-%m-%d %H:%M}", zone=name, start=f"{start:%H:%M}",
               end=f"{end:%H:%M}", day=kind.why)
    return [_Block(code, text, name, until)]


# Where a refusal was taken, in the words of its reason (a channel not named: as it is).
_CHANNEL_WORDS = {"desk": Msg("desk"), "card": Msg("card"), "import": Msg("import"),
                  "sms": Msg("sms"), "cli": Msg("cli")}

# Whose contacts a limit counts, in the words of a refusal.
_SCOPE_WORDS = {"person": "with this person", "phone": "on this phone number",
                "debt": "about this debt"}


def _limit_block(lim: CountLimit, scope: str, name: str, today: date,
                 times: list[datetime]) -> list[_Block]:
    first, after = _window(lim, today)
    lo, hi = _at_local(first, time(0), name), _at_local(after, time(0), name)
    inside = [c for c in times if lo <= c < hi]
    if len(inside) < lim.maximum:
        return []
    if lim.period == ROLLING:
        # The window slides by local days: it is clear once enough of the oldest have left it.
        oldest_to_drop = inside[len(inside) - lim.maximum].astimezone(zone(name)).date()
        until = _at_local(oldest_to_drop + timedelta(days=lim.days), time(0), name)
    else:
        until = hi
    text = (f"{len(inside)} {_WHAT[lim.counts]} already {_SCOPE_WORDS[scope]} from "
            f"{first:%Y-%m-%d} to {after - timedelta(days=1):%Y-%m-%d} ({name}); the limit is "
            f"{lim.describe()}")
    return [_Block(lim.code, text, name, until, _window_json(lim, scope, lo, hi, inside))]


def _sliding_block(lim: CountLimit, scope: str, name: str, t: datetime,
                   times: list[datetime]) -> list[_Block]:
    # The window is (t - span, t]: a contact exactly one span ago has left it.
    lo = t - lim.span
    inside = [c for c in times if lo < c <= t]
    if len(inside) < lim.maximum:
        return []
    # Clear once enough of the oldest have left: the one that must go leaves at c + span.
    until = inside[len(inside) - lim.maximum] + lim.span
    tz = zone(name)
    text = (f"{len(inside)} {_WHAT[lim.counts]} already {_SCOPE_WORDS[scope]} in the "
            f"{lim.window_name()[4:]} from {lo.astimezone(tz):%Y-%m-%d %H:%M} to "
            f"{t.astimezone(tz):%Y-%m-%d %H:%M} ({name}); the limit is {lim.describe()}; "
            f"clear at {until.astimezone(tz):%Y-%m-%d %H:%M}")
    return [_Block(lim.code, text, name, until, _window_json(lim, scope, lo, t, inside),
                   zoned=False)]


def _window_json(lim: CountLimit, scope: str, lo: datetime, hi: datetime,
                 inside: list[datetime]) -> dict:
    return {"reading": lim.reading, "window": lim.window_name(), "scope": scope,
            "counts": lim.counts, "from": lo.astimezone(UTC).isoformat(),
            "to": hi.astimezone(UTC).isoformat(), "count": len(inside), "maximum": lim.maximum,
            "contacts": [c.astimezone(UTC).isoformat() for c in inside]}


def _quiet_block(days: int, scope: str, name: str, today: date,
                 conversations: list[datetime]) -> list[_Block]:
    tz = zone(name)
    recent = [c.astimezone(tz).date() for c in conversations]
    recent = [d for d in recent if d + timedelta(days=days) > today]
    if not recent:
        return []
    last = max(recent)
    text = (f"conversation {_SCOPE_WORDS[scope]} on {last:%Y-%m-%d} ({name}); no calls for "
            f"{days} days counting that day, until {last + timedelta(days=days):%Y-%m-%d}")
    return [_Block("regf_after_conversation", text, name,
                   _at_local(last + timedelta(days=days), time(0), name))]


def _window(lim: CountLimit, today: date) -> tuple[date, date]:
    """First day and the day after the last of the window containing ``today``."""
    if lim.period == DAY:
        return today, today + timedelta(days=1)
    if lim.period == WEEK:
        monday = today - timedelta(days=today.weekday())
        return monday, monday + timedelta(days=7)
    if lim.period == MONTH:
        first = today.replace(day=1)
        return first, (first + timedelta(days=32)).replace(day=1)
    if lim.period == ROLLING:
        return today - timedelta(days=lim.days - 1), today + timedelta(days=1)
    raise ComplianceError(f"limit {lim.code}: unknown period {lim.period!r}")


def _at_local(day: date, clock: time, name: str) -> datetime:
    """The UTC instant when the wall clock in zone ``name`` shows ``day`` ``clock``."""
    return datetime.combine(day, clock, tzinfo=zone(name)).astimezone(UTC)


def _merge(blocks: list[_Block], nzones: int) -> list[Reason]:
    """One reason per code and scope; for an ambiguous number, say in how many zones."""
    by_code: dict[tuple[str, str | None], list[_Block]] = {}
    counted = {(b.code, tuple(b.window["contacts"])) for b in blocks
               if b.window and b.window["scope"] == "person"}
    for b in blocks:
        if b.window and b.window["scope"] != "person" and \
                (b.code, tuple(b.window["contacts"])) in counted:
            continue  # the same contacts as the person's: one reason says it
        by_code.setdefault((b.code, b.window and b.window["scope"]), []).append(b)
    reasons = []
    for (code, _scope), group in by_code.items():
        text = group[0].text
        if nzones > 1 and group[0].zoned:
            text = Msg("{reason} [the number may be in {zones} zones; this applies in {count}: "
                       "{names}]", reason=text, zones=nzones, count=len(group),
                       names=", ".join(b.zone for b in group))
        reasons.append(Reason(code, text, group[0].window))
    return reasons
