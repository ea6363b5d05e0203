"""Compliance profiles as data: a named set of limits the shop picks per campaign."""
from __future__ import annotations

from dataclasses import dataclass, field
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

    def describe(self) -> str:
        """Short human wording, e.g. 'at most 2 conversations a calendar week'."""
        what = {CONVERSATION: "conversations", ATTEMPT: "call attempts", SMS: "SMS"}[self.counts]
        span = {DAY: "a calendar day", WEEK: "a calendar week", MONTH: "a calendar month",
                ROLLING: f"{self.days} consecutive days"}[self.period]
        return f"at most {self.maximum} {what} in {span}"


@dataclass(frozen=True, slots=True)
class ChannelRules:
    """Limits on one channel (voice or SMS)."""

    hours: Hours | None = None
    limits: tuple[CountLimit, ...] = ()
    # No contact on the day of a conversation and the next ``quiet_days_after_conversation - 1``.
    quiet_days_after_conversation: int = 0


@dataclass(frozen=True, slots=True)
class Profile:
    """A named compliance profile; ``holiday_country`` selects rest days for the hours rule."""

    name: str
    title: str
    voice: ChannelRules
    sms: ChannelRules
    holiday_country: str | None = None
    abandon_target: float | None = None      # share of live answers that may be abandoned
    abandon_window: timedelta | None = None  # over which the share is measured
    min_ring_seconds: float | None = None    # an unanswered call rings at least this long
    # A live answer not put through to an operator within this many seconds is abandoned.
    abandon_after_seconds: float | None = None
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


_RU_HOURS = Hours(working=(_h(8), _h(22)), rest=(_h(9), _h(20)))

# 230-FZ art. 7 part 3 p. 3 limits telephone conversations at the creditor's initiative to once
# a "сутки", twice a "неделя", eight times a "месяц"; part 5 limits messages to 2 / 4 / 16 and
# gives them the same hours as calls (part 3 p. 1: not 22-8 on working days, not 20-9 on days
# off and public holidays, local time at the debtor's residence). Practitioners read the
# periods as calendar ones ("не более двух раз в течение календарной недели и не более восьми раз
# в течение календарного месяца", a lawyer citing part 3 in a 2025 interview on finance.mail.ru),
# which is what we implement: the local calendar day, the Monday-to-Sunday week and the calendar
# month. Under that reading two calls on Sunday and two on Monday are lawful. A shop that wants
# the rolling reading enforced as well can add ROLLING limits to a profile: limits are data.
# Part 3 counts conversations (an answered call that reached the debtor), not dial attempts.
RU_230FZ = Profile(
    name="ru-230fz",
    title="Russia, Federal Law 230-FZ art. 7",
    holiday_country="RU",
    voice=ChannelRules(
        hours=_RU_HOURS,
        limits=(
            CountLimit("daily_limit", CONVERSATION, DAY, 1),
            CountLimit("weekly_limit", CONVERSATION, WEEK, 2),
            CountLimit("monthly_limit", CONVERSATION, MONTH, 8),
        ),
    ),
    sms=ChannelRules(
        hours=_RU_HOURS,
        limits=(
            CountLimit("daily_limit", SMS, DAY, 2),
            CountLimit("weekly_limit", SMS, WEEK, 4),
            CountLimit("monthly_limit", SMS, MONTH, 16),
        ),
    ),
    abandon_target=0.01,
    abandon_window=timedelta(days=1),
    abandon_after_seconds=2.0,
    sources=("230-FZ art. 7 part 3 (voice), part 5 (messages)",),
)

# 12 CFR 1006.6(b)(1)(i): 08:00-21:00 at the consumer's location, for every communication.
# 1006.14(b)(2): calls over 7 in 7 consecutive days, or within 7 consecutive days after a
# telephone conversation (its date is day 1), are presumed harassment. Days are the consumer's
# local calendar days. We count per debtor across all his debts, which is stricter than the
# per-debt reading. SMS are not telephone calls under 1006.14(b)(2): hours only.
US_REGF = Profile(
    name="us-regf",
    title="USA, CFPB Regulation F (12 CFR 1006) with FCC/TSR abandon and ring rules",
    holiday_country=None,
    voice=ChannelRules(
        hours=Hours(working=(_h(8), _h(21))),
        limits=(CountLimit("regf_7in7", ATTEMPT, ROLLING, 7, days=7),),
        quiet_days_after_conversation=7,
    ),
    sms=ChannelRules(hours=Hours(working=(_h(8), _h(21)))),
    abandon_target=0.03,
    abandon_window=timedelta(days=30),
    abandon_after_seconds=2.0,
    min_ring_seconds=15.0,
    sources=("12 CFR 1006.6(b)(1)(i)", "12 CFR 1006.14(b)(2)", "16 CFR 310.4(b)(4)",
             "47 CFR 64.1200(a)(7)"),
)

NONE = Profile(
    name="none",
    title="No limits (explicit choice; the shop answers for compliance itself)",
    voice=ChannelRules(),
    sms=ChannelRules(),
)

PROFILES: dict[str, Profile] = {p.name: p for p in (RU_230FZ, US_REGF, NONE)}
DEFAULT_PROFILE = RU_230FZ.name


def get_profile(name: str) -> Profile:
    """The profile called ``name``; ComplianceError naming the known ones otherwise."""
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise ComplianceError(f"unknown compliance profile {name!r}: use one of {known}") from None
