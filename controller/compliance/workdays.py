"""Working days and rest days of a country, from the maintained ``holidays`` library."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date

import holidays

from firmware.errors import Msg


@dataclass(frozen=True, slots=True)
class DayKind:
    """Whether a local date is a rest day, and why (for the supervisor's reason text)."""

    rest: bool
    why: str


_WEEKDAYS = (Msg("Monday"), Msg("Tuesday"), Msg("Wednesday"), Msg("Thursday"), Msg("Friday"),
             Msg("Saturday"), Msg("Sunday"))


@functools.lru_cache(maxsize=8)
def _calendar(country: str) -> holidays.HolidayBase:
    # The library knows the government's transfers: substituted days off are holidays, and
    # working Saturdays/Sundays set by decree are in ``weekend_workdays``.
    return holidays.country_holidays(country)


def day_kind(country: str | None, day: date) -> DayKind:
    """Kind of ``day`` in ``country``; without a country every day is a working day."""
    if country is None:
        return DayKind(False, Msg("any day"))
    cal = _calendar(country)
    name = cal.get(day)
    if name:
        return DayKind(True, Msg("a public holiday or day off: {name}", name=name))
    if day in cal.weekend_workdays:
        return DayKind(False, Msg("a working day moved to a weekend by decree"))
    if cal.is_weekend(day):
        return DayKind(True, Msg("a weekend day ({weekday})", weekday=_WEEKDAYS[day.weekday()]))
    return DayKind(False, Msg("a working day"))
