"""ru-230fz frequency windows: rolling by default (24 h, 7 days, 31 days), calendar as an option.

September-October 2026 in Moscow: Sunday 27, Monday 28, Tuesday 29, Wednesday 30 September,
Thursday 1 October; no public holidays, so working days allow 08:00-22:00, weekends 09:00-20:00.
"""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from controller.compliance import InMemoryContactHistory, LeadContext, check, get_profile

MSK = ZoneInfo("Europe/Moscow")
LEAD = LeadContext("person-1", phone="+79161234567", tz="Europe/Moscow")
ROLLING, CALENDAR = "ru-230fz", "ru-230fz:calendar"


def m(month: int, day: int, hour: int = 10, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, second, tzinfo=MSK)


def history(kind: str, times) -> InMemoryContactHistory:
    h = InMemoryContactHistory()
    for t in times:
        if kind == "sms":
            h.record_sms(LEAD.debtor_id, t, phone=LEAD.phone)
        else:
            h.record_call(LEAD.debtor_id, t, conversation=True, phone=LEAD.phone)
    return h


SEPT_DAYS = (1, 2, 7, 8, 14, 15, 21, 22)  # Tue+Wed, then Mon+Tue: 2 a calendar week
SEPT_EIGHT = [m(9, d) for d in SEPT_DAYS]

# (case, profile, channel, past contacts, decision instant, refusing codes, next allowed)
CASES = [
    # across a week boundary: Sunday + Monday + Tuesday is 3 in 3 days
    ("sun+mon, tue rolling", ROLLING, "voice", [m(9, 27), m(9, 28)], m(9, 29),
     {"weekly_limit"}, m(10, 4)),                        # Sunday's leaves 7 days after it
    ("sun+mon, tue calendar", CALENDAR, "voice", [m(9, 27), m(9, 28)], m(9, 29), set(), m(9, 29)),
    ("sun+mon+tue, wed calendar", CALENDAR, "voice", [m(9, 27), m(9, 28), m(9, 29)], m(9, 30),
     {"weekly_limit"}, m(10, 5, 8)),                     # next calendar Monday, 08:00
    ("sun+mon+tue, wed rolling", ROLLING, "voice", [m(9, 27), m(9, 28), m(9, 29)], m(9, 30),
     {"weekly_limit"}, m(10, 5)),                        # two of the three must leave
    # the day: 24 hours, not the calendar day
    ("late mon, tue 08:00 rolling", ROLLING, "voice", [m(9, 28, 21, 30)], m(9, 29, 8),
     {"daily_limit"}, m(9, 29, 21, 30)),
    ("late mon, tue 08:00 calendar", CALENDAR, "voice", [m(9, 28, 21, 30)], m(9, 29, 8),
     set(), m(9, 29, 8)),
    ("24 h less a second", ROLLING, "voice", [m(9, 28)], m(9, 29, 9, 59, 59),
     {"daily_limit"}, m(9, 29)),
    ("exactly 24 h later", ROLLING, "voice", [m(9, 28)], m(9, 29), set(), m(9, 29)),
    ("same calendar day", CALENDAR, "voice", [m(9, 28, 8)], m(9, 28, 21, 59),
     {"daily_limit"}, m(9, 29, 8)),
    # across a month boundary: eight in September
    ("8 in sep, mon 28 sep calendar", CALENDAR, "voice", SEPT_EIGHT, m(9, 28),
     {"monthly_limit"}, m(10, 1, 8)),                    # the 1st of the next month, 08:00
    ("8 in sep, mon 28 sep rolling", ROLLING, "voice", SEPT_EIGHT, m(9, 28),
     {"monthly_limit"}, m(10, 2)),                       # 1 Sep + 31 days
    ("8 in sep, thu 1 oct calendar", CALENDAR, "voice", SEPT_EIGHT, m(10, 1, 8), set(),
     m(10, 1, 8)),
    ("8 in sep, thu 1 oct rolling", ROLLING, "voice", SEPT_EIGHT, m(10, 1, 8),
     {"monthly_limit"}, m(10, 2)),
    ("31 days less a second", ROLLING, "voice", SEPT_EIGHT, m(10, 2, 9, 59, 59),
     {"monthly_limit"}, m(10, 2)),
    ("31 days exactly", ROLLING, "voice", SEPT_EIGHT, m(10, 2), set(), m(10, 2)),
    # messages: 2 in 24 h, 4 in 7 days, 16 in 31 days
    ("2 sms late mon, tue rolling", ROLLING, "sms", [m(9, 28, 20), m(9, 28, 21)], m(9, 29, 8),
     {"daily_limit"}, m(9, 29, 20)),
    ("2 sms late mon, tue calendar", CALENDAR, "sms", [m(9, 28, 20), m(9, 28, 21)],
     m(9, 29, 8), set(), m(9, 29, 8)),
    ("4 sms sat-mon, tue rolling", ROLLING, "sms", [m(9, 26), m(9, 26, 11), m(9, 27),
                                                    m(9, 28, 11)], m(9, 29, 12),
     {"weekly_limit"}, m(10, 3)),
    ("4 sms sat-mon, tue calendar", CALENDAR, "sms", [m(9, 26), m(9, 26, 11), m(9, 27),
                                                      m(9, 28, 11)], m(9, 29, 12), set(),
     m(9, 29, 12)),
    ("16 sms in sep, 1 oct rolling", ROLLING, "sms",
     [m(9, d, h) for d in SEPT_DAYS for h in (10, 11)], m(10, 1, 9),
     {"monthly_limit"}, m(10, 2)),
    ("16 sms in sep, 1 oct calendar", CALENDAR, "sms",
     [m(9, d, h) for d in SEPT_DAYS for h in (10, 11)], m(10, 1, 9), set(), m(10, 1, 9)),
]


@pytest.mark.parametrize("case,profile,channel,past,at,refusing,nxt", CASES,
                         ids=[c[0] for c in CASES])
def test_windows_at_the_edges(case, profile, channel, past, at, refusing, nxt):
    d = check(profile, LEAD, at=at, history=history(channel, past), channel=channel)
    assert {r.code for r in d.reasons} == refusing
    assert d.allowed is (not refusing)
    assert d.next_allowed_at == nxt
    reading = "rolling" if profile == ROLLING else "calendar"
    for r in d.reasons:  # the refusal names its window, its scope and what it counted
        assert r.window["reading"] == reading
        assert r.window["count"] >= r.window["maximum"]
        assert r.window["scope"] in ("person", "phone")
        assert r.window["window"] in r.text


def test_rolling_refusal_text_says_which_window():
    d = check(ROLLING, LEAD, at=m(9, 29), history=history("voice", [m(9, 27), m(9, 28)]))
    (person,) = [r for r in d.reasons if r.window["scope"] == "person"]
    assert person.text == (
        "2 conversations already with this person in the 7 days from 2026-09-22 10:00 to "
        "2026-09-29 10:00 (Europe/Moscow); the limit is at most 2 conversations in any 7 days; "
        "clear at 2026-10-04 10:00")
    assert person.window["window"] == "any 7 days" and person.window["maximum"] == 2


def _run(profile: str, start: datetime, end: datetime) -> list[datetime]:
    """A dialer that talks to the debtor whenever the profile allows; the conversations."""
    h, t, talks = InMemoryContactHistory(), start, []
    while t < end:
        d = check(profile, LEAD, at=t, history=h)
        if d.allowed:
            h.record_call(LEAD.debtor_id, t, conversation=True, phone=LEAD.phone)
            talks.append(t)
            t += timedelta(minutes=1)
        else:
            assert d.next_allowed_at > t
            t = d.next_allowed_at
    return talks


def _max_in_sliding(talks: list[datetime], span: timedelta) -> int:
    return max(sum(1 for u in talks if t - span < u <= t) for t in talks)


def _max_in_calendar(talks: list[datetime]) -> dict[str, int]:
    local = [t.astimezone(MSK).date() for t in talks]
    return {"day": max(Counter(local).values()),
            "week": max(Counter(d.isocalendar()[:2] for d in local).values()),
            "month": max(Counter((d.year, d.month) for d in local).values())}


def test_rolling_reading_also_keeps_the_calendar_one():
    talks = _run(ROLLING, m(8, 1, 0), m(12, 1, 0))
    assert len(talks) >= 30
    assert _max_in_sliding(talks, timedelta(hours=24)) == 1
    assert _max_in_sliding(talks, timedelta(days=7)) == 2
    assert _max_in_sliding(talks, timedelta(days=31)) == 8
    assert _max_in_calendar(talks) == {"day": 1, "week": 2, "month": 8}


def test_calendar_reading_breaks_the_rolling_one():
    talks = _run(CALENDAR, m(8, 1, 0), m(12, 1, 0))
    assert _max_in_calendar(talks) == {"day": 1, "week": 2, "month": 8}
    # Sunday + Monday + Tuesday happen: more than 2 in 7 days, two within 24 hours too.
    assert _max_in_sliding(talks, timedelta(days=7)) > 2
    assert _max_in_sliding(talks, timedelta(days=31)) > 8


def test_profiles_name_their_reading_and_version():
    assert get_profile(ROLLING).reading == "rolling" and get_profile(CALENDAR).reading == "calendar"
    assert get_profile(ROLLING).version == get_profile(CALENDAR).version
    assert [lim.describe() for lim in get_profile(ROLLING).voice.limits] == [
        "at most 1 conversation in any 24 hours", "at most 2 conversations in any 7 days",
        "at most 8 conversations in any 31 days"]
    assert [lim.describe() for lim in get_profile(CALENDAR).sms.limits] == [
        "at most 2 SMS in a calendar day", "at most 4 SMS in a calendar week",
        "at most 16 SMS in a calendar month"]


def test_a_campaign_may_choose_the_calendar_reading(tmp_path):
    from controller import campaigns
    from controller.store import Store
    from firmware.errors import InputError
    s = Store(tmp_path / "d.sqlite3")
    cfg = campaigns.create(s, "cal", who="anna", source="test", compliance=CALENDAR)
    assert get_profile(cfg.compliance).reading == "calendar"
    with pytest.raises(InputError, match="ru-230fz:calendar"):
        campaigns.create(s, "bad", who="anna", source="test", compliance="ru-230fz:weekly")
    s.close()
