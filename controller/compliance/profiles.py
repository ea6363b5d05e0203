"""Compliance profiles as data: a named set of limits the shop picks per campaign."""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import time, timedelta

from controller.compliance.errors import ComplianceError

# What a limit counts (see controller.compliance.history for the exact meaning of each kind).
CONVERSATION = "conversation"
ATTEMPT = "attempt"
SMS = "sms"

# How a limit's window is laid out in the debtor's local time.
DAY = "day"          # the local calendar day, 00:00-24:00
WEEK = "week"        # the local calendar week, Monday 00:00 to the next Monday 00:00
MONTH = "month"      # the local calendar month, the 1st 00:00 to the next 1st 00:00
ROLLING = "rolling"  # today and the ``days - 1`` local days before it
SLIDING = "sliding"  # the ``span`` of time that ends at the decision instant (24 h, 7 days...)

# How a profile reads the law's "day", "week", "month" (see RU_230FZ below).
READINGS = ("rolling", "calendar")


@dataclass(frozen=True, slots=True)
class Hours:
    """Local hours when contact is allowed: [start, end) on working days and on rest days."""

    working: tuple[time, time]
    # Weekends and public holidays (incl. transferred days off); None: same as working days.
    rest: tuple[time, time] | None = None

    def window(self, rest_day: bool) -> tuple[time, time]:
        """The allowed [start, end) of a day of the given kind."""
        return self.rest if rest_day and self.rest is not None else self.working


@dataclass(frozen=True, slots=True)
class CountLimit:
    """At most ``maximum`` contacts of ``counts`` per ``period`` window; ``code`` names a breach."""

    code: str
    counts: str
    period: str
    maximum: int
    days: int = 0  # length of a ROLLING window
    span: timedelta | None = None  # length of a SLIDING window

    def describe(self) -> str:
        """Short human wording, e.g. 'at most 2 conversations in a calendar week'."""
        one = self.maximum == 1
        what = {CONVERSATION: "conversation" if one else "conversations",
                ATTEMPT: "call attempt" if one else "call attempts", SMS: "SMS"}[self.counts]
        return f"at most {self.maximum} {what} in {self.window_name()}"

    def window_name(self) -> str:
        """The window in words: 'a calendar week', 'any 24 hours', '7 consecutive days'."""
        if self.period == SLIDING:
            return f"any {_span_words(self.span)}"
        return {DAY: "a calendar day", WEEK: "a calendar week", MONTH: "a calendar month",
                ROLLING: f"{self.days} consecutive day{'' if self.days == 1 else 's'}"
                }[self.period]

    @property
    def reading(self) -> str:
        """'rolling' for windows that slide with time, 'calendar' for calendar periods."""
        return "rolling" if self.period in (SLIDING, ROLLING) else "calendar"


# "any 1 hours" and "1 consecutive days": how evidence stored before 2026-11 words them.
_WINDOW_WORDS = re.compile(r"any (?P<n>\d+) (?P<unit>hour|day)s?|(?P<c>\d+) consecutive days?"
                           r"|a calendar (?P<cal>day|week|month)")


def window_parts(name: str) -> tuple[str, int] | None:
    """``window_name()``'s words read back, for a page in another language (stored evidence
    keeps the words): ('hours', 24), ('days', 7), ('consecutive', 5), ('calendar day', 1) ...;
    None for words it never writes."""
    m = _WINDOW_WORDS.fullmatch(str(name))
    if m is None:
        return None
    if m["unit"]:
        return m["unit"] + "s", int(m["n"])
    if m["c"]:
        return "consecutive", int(m["c"])
    return f"calendar {m['cal']}", 1


def _span_words(span: timedelta | None) -> str:
    if span is None or span <= timedelta(0):
        raise ComplianceError("a sliding limit needs a positive span")
    if span % timedelta(days=1) == timedelta(0) and span > timedelta(days=1):
        return f"{span.days} days"
    hours = span // timedelta(hours=1)
    return "1 hour" if hours == 1 else f"{hours} hours"


@dataclass(frozen=True, slots=True)
class ChannelRules:
    """Limits on one channel (voice or SMS)."""

    hours: Hours | None = None
    limits: tuple[CountLimit, ...] = ()
    # No contact on the day of a conversation and the next ``quiet_days_after_conversation - 1``.
    quiet_days_after_conversation: int = 0
    # Whose contacts each limit counts: "person" (the person key, across accounts, creditors
    # and campaigns), "phone" (the number, whoever was called on it), "debt" (one account).
    scopes: tuple[str, ...] = ("person",)


@dataclass(frozen=True, slots=True)
class Profile:
    """A named compliance profile; ``holiday_country`` selects rest days for the hours rule."""

    name: str
    title: str
    voice: ChannelRules
    sms: ChannelRules
    holiday_country: str | None = None
    version: str = "1"
    reading: str = "rolling"  # how the limits read the law's periods; see READINGS
    abandon_target: float | None = None      # share of live answers that may be abandoned
    abandon_window: timedelta | None = None  # over which the share is measured
    min_ring_seconds: float | None = None    # an unanswered call rings at least this long
    # A live answer not put through to an operator within this many seconds is abandoned.
    abandon_after_seconds: float | None = None
    # Calls only from a line whose official number is known and shown (137-FZ).
    caller_number_required: bool = False
    # Conversations are recorded; the debtor hears a notice that they are; recordings are kept
    # this many days, then purged (None: the box's own setting). For the recorder and prompts.
    recording_notice: bool = False
    recording_retention_days: int | None = None
    sources: tuple[str, ...] = field(default=())

    def channel(self, channel: str) -> ChannelRules:
        """Rules of ``voice`` or ``sms``."""
        if channel == "voice":
            return self.voice
        if channel == "sms":
            return self.sms
        raise ComplianceError(f"unknown channel {channel!r}: use 'voice' or 'sms'")

    def abandon_rate_exceeded(self, abandoned: int, live_answers: int) -> bool:
        """True when ``abandoned`` of ``live_answers`` in the window is over the target."""
        if self.abandon_target is None or live_answers <= 0:
            return False
        return abandoned / live_answers > self.abandon_target


def _h(hour: int) -> time:
    return time(hour)


_THREE_YEARS = 3 * 365 + 1  # days, a leap day included
_RU_HOURS = Hours(working=(_h(8), _h(22)), rest=(_h(9), _h(20)))

# 230-FZ art. 7 part 3 p. 3 limits telephone conversations at the creditor's initiative to once
# a "сутки", twice a "неделя", eight times a "месяц"; part 5 limits messages to 2 / 4 / 16 and
# gives them the same hours as calls (part 3 p. 1: not 22-8 on working days, not 20-9 on days
# off and public holidays, local time at the debtor's residence). The FSSP checks calendar
# months; "day" and "week" are read both ways. The default reading slides: any 24 hours, any 7
# days, any 31 days. It satisfies every calendar reading too (a calendar day, week or month lies
# inside the sliding window that ends at its last contact; Russia keeps no summer time), while
# the calendar reading does not satisfy the sliding one: Sunday + Monday + Tuesday is 3 in 3
# days. The calendar reading (the local calendar day, Monday-to-Sunday week, calendar month) is
# the profile option "ru-230fz:calendar". Counts are conversations (see history.py), not dials.
# Counted per person (across accounts, creditors' files and campaigns) and per phone number.
_RU_SCOPES = ("person", "phone")
_RU_SOURCES = ("230-FZ art. 7 part 3 (voice), part 5 (messages); audio records of every "
               "interaction, with notice, kept 3 years",
               "467-FZ (from 2024-02-01), 137-FZ (from 2025-09-01)",
               "Ministry of Justice order No. 134 (from 2024-09-01)")


def _ru_limits(counts: str, day: int, week: int, month: int, reading: str
               ) -> tuple[CountLimit, ...]:
    if reading == "calendar":
        return (CountLimit("daily_limit", counts, DAY, day),
                CountLimit("weekly_limit", counts, WEEK, week),
                CountLimit("monthly_limit", counts, MONTH, month))
    return (CountLimit("daily_limit", counts, SLIDING, day, span=timedelta(hours=24)),
            CountLimit("weekly_limit", counts, SLIDING, week, span=timedelta(days=7)),
            CountLimit("monthly_limit", counts, SLIDING, month, span=timedelta(days=31)))


RU_230FZ = Profile(
    name="ru-230fz",
    title="Russia, Federal Law 230-FZ art. 7 (as of 137-FZ)",
    holiday_country="RU",
    version="2025-09-01",
    reading="rolling",
    voice=ChannelRules(hours=_RU_HOURS, limits=_ru_limits(CONVERSATION, 1, 2, 8, "rolling"),
                       scopes=_RU_SCOPES),
    sms=ChannelRules(hours=_RU_HOURS, limits=_ru_limits(SMS, 2, 4, 16, "rolling"),
                     scopes=_RU_SCOPES),
    abandon_target=0.01,
    abandon_window=timedelta(days=1),
    abandon_after_seconds=2.0,
    caller_number_required=True,
    recording_notice=True,
    recording_retention_days=_THREE_YEARS,
    sources=_RU_SOURCES,
)
RU_230FZ_CALENDAR = replace(
    RU_230FZ, name="ru-230fz:calendar", reading="calendar",
    title="Russia, Federal Law 230-FZ art. 7, calendar day, week and month only",
    voice=ChannelRules(hours=_RU_HOURS, limits=_ru_limits(CONVERSATION, 1, 2, 8, "calendar"),
                       scopes=_RU_SCOPES),
    sms=ChannelRules(hours=_RU_HOURS, limits=_ru_limits(SMS, 2, 4, 16, "calendar"),
                     scopes=_RU_SCOPES))

# 12 CFR 1006.6(b)(1)(i): 08:00-21:00 at the consumer's location, for every communication.
# 1006.14(b)(2): calls over 7 in 7 consecutive days, or within 7 consecutive days after a
# telephone conversation (its date is day 1), are presumed harassment. Days are the consumer's
# local calendar days. Both count per debt, as the rule reads ("in connection with the
# collection of a particular debt"): a consumer with two debts has two budgets. Calls our own
# line failed never reached the network and do not count. SMS are not telephone calls under
# 1006.14(b)(2): hours only.
US_REGF = Profile(
    name="us-regf",
    title="USA, CFPB Regulation F (12 CFR 1006) with FCC/TSR abandon and ring rules",
    holiday_country=None,
    version="2021-11-30",
    voice=ChannelRules(
        hours=Hours(working=(_h(8), _h(21))),
        limits=(CountLimit("regf_7in7", ATTEMPT, ROLLING, 7, days=7),),
        quiet_days_after_conversation=7,
        scopes=("debt",),
    ),
    sms=ChannelRules(hours=Hours(working=(_h(8), _h(21)))),
    abandon_target=0.03,
    abandon_window=timedelta(days=30),
    abandon_after_seconds=2.0,
    min_ring_seconds=15.0,
    # 1006.100: records kept 3 years after the last collection activity on the debt; all-party
    # consent states want the notice, so it is on.
    recording_notice=True,
    recording_retention_days=_THREE_YEARS,
    sources=("12 CFR 1006.6(b)(1)(i)", "12 CFR 1006.14(b)(2)", "12 CFR 1006.100",
             "16 CFR 310.4(b)(4)",
             "47 CFR 64.1200(a)(7)"),
)

NONE = Profile(
    name="none",
    title="No limits (explicit choice; the shop answers for compliance itself)",
    voice=ChannelRules(),
    sms=ChannelRules(),
)

PROFILES: dict[str, Profile] = {p.name: p for p in (RU_230FZ, US_REGF, NONE)}
# Profiles with an option ("name:option"): the same law read another way.
OPTIONS: dict[str, Profile] = {p.name: p for p in (RU_230FZ_CALENDAR,)}
DEFAULT_PROFILE = RU_230FZ.name


def get_profile(name: str) -> Profile:
    """The profile called ``name`` ("ru-230fz", or with an option: "ru-230fz:calendar")."""
    found = PROFILES.get(name) or OPTIONS.get(name)
    if found is None:
        known = ", ".join(sorted([*PROFILES, *OPTIONS]))
        raise ComplianceError(f"unknown compliance profile {name!r}: use one of {known}")
    return found


def with_reading(name: str, reading: str | None) -> str:
    """The profile name that reads ``name``'s periods as ``reading`` (None: as it is)."""
    base = get_profile(name).name.split(":")[0]
    if reading is None:
        return name
    if reading not in READINGS:
        raise ComplianceError(f"reading {reading!r}: use one of {', '.join(READINGS)}")
    for candidate in (base, f"{base}:{reading}"):
        p = PROFILES.get(candidate) or OPTIONS.get(candidate)
        if p is not None and p.reading == reading:
            return p.name
    raise ComplianceError(f"profile {base!r} has no {reading} reading")
