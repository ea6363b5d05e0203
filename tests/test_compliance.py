"""Compliance engine: hours, holidays, zones, frequency limits, Reg F, DNC, at the edges."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from controller.compliance import (
    ComplianceError, InMemoryContactHistory, LeadContext, check, get_profile)

UTC = timezone.utc
MSK = ZoneInfo("Europe/Moscow")
NY = ZoneInfo("America/New_York")


def local(zone: str | ZoneInfo, *args) -> datetime:
    """An instant given as wall-clock time in ``zone``."""
    tz = zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone)
    return datetime(*args, tzinfo=tz)


def decide(lead: LeadContext, at: datetime, history=None, **kw):
    return check(kw.pop("profile", "ru-230fz"), lead, at=at,
                 history=history if history is not None else InMemoryContactHistory(), **kw)


def codes(decision) -> set[str]:
    return {r.code for r in decision.reasons}


MOSCOW = LeadContext("d-msk", tz="Europe/Moscow")
CAL = "ru-230fz:calendar"  # the calendar reading; the default slides (test_compliance_windows)


# --- ru-230fz hours on working days (Monday 2026-01-12 is a working day) -----------------

@pytest.mark.parametrize("hh,mm,allowed", [(7, 59, False), (8, 0, True), (21, 59, True),
                                           (22, 0, False), (0, 0, False), (12, 0, True)])
def test_working_day_hours_edges(hh, mm, allowed):
    d = decide(MOSCOW, local(MSK, 2026, 1, 12, hh, mm))
    assert d.allowed is allowed
    assert (codes(d) == {"outside_hours"}) is not allowed
    assert d.local_time == local(MSK, 2026, 1, 12, hh, mm)


def test_before_hours_next_is_eight_same_day():
    d = decide(MOSCOW, local(MSK, 2026, 1, 12, 7, 59, 59))
    assert d.next_allowed_at == datetime(2026, 1, 12, 5, 0, tzinfo=UTC)
    assert "07:59" in d.reasons[0].text and "08:00-22:00" in d.reasons[0].text


def test_after_hours_next_is_eight_next_morning():
    d = decide(MOSCOW, local(MSK, 2026, 1, 12, 22, 0))
    assert d.next_allowed_at == local(MSK, 2026, 1, 13, 8, 0)


def test_allowed_now_means_next_allowed_is_now():
    at = local(MSK, 2026, 1, 12, 10, 0)
    d = decide(MOSCOW, at)
    assert d.allowed and d.reasons == () and d.next_allowed_at == at


# --- weekends, public holidays, transferred days off ----------------------------------------

@pytest.mark.parametrize("day", [(2026, 1, 17), (2026, 1, 18)])  # Saturday, Sunday
@pytest.mark.parametrize("hh,mm,allowed", [(8, 59, False), (9, 0, True), (19, 59, True),
                                           (20, 0, False)])
def test_weekend_hours_edges(day, hh, mm, allowed):
    d = decide(MOSCOW, local(MSK, *day, hh, mm))
    assert d.allowed is allowed
    if not allowed:
        assert codes(d) == {"holiday_hours"}
        assert "09:00-20:00" in d.reasons[0].text


def test_friday_night_next_is_saturday_nine():
    d = decide(MOSCOW, local(MSK, 2026, 1, 16, 22, 30))
    assert d.next_allowed_at == local(MSK, 2026, 1, 17, 9, 0)


def test_sunday_evening_next_is_monday_eight():
    d = decide(MOSCOW, local(MSK, 2026, 1, 18, 20, 0))
    assert d.next_allowed_at == local(MSK, 2026, 1, 19, 8, 0)


@pytest.mark.parametrize("day,name", [
    ((2026, 1, 2), "New Year"),        # a Friday inside the New Year holidays
    ((2026, 5, 9), "Victory Day"),     # Saturday and a public holiday
    ((2026, 5, 11), "Victory Day"),    # Monday off: the holiday fell on a Saturday
    ((2026, 1, 9), "substituted"),     # Friday off, transferred from Saturday 2026-01-03
    ((2025, 12, 31), "substituted"),   # Wednesday off, transferred from 2025-01-05
])
def test_holidays_and_transferred_days_off_have_rest_hours(day, name):
    early = decide(MOSCOW, local(MSK, *day, 8, 30))
    assert not early.allowed and codes(early) == {"holiday_hours"}
    assert name in early.reasons[0].text
    assert early.next_allowed_at == local(MSK, *day, 9, 0)
    assert not decide(MOSCOW, local(MSK, *day, 20, 0)).allowed
    assert decide(MOSCOW, local(MSK, *day, 19, 59)).allowed


def test_working_saturday_by_decree_has_working_hours():
    # 2025-11-01 was a working Saturday (its day off moved to Monday 2025-11-03).
    assert decide(MOSCOW, local(MSK, 2025, 11, 1, 8, 0)).allowed
    assert decide(MOSCOW, local(MSK, 2025, 11, 1, 21, 0)).allowed
    assert not decide(MOSCOW, local(MSK, 2025, 11, 3, 8, 30)).allowed


def test_new_year_holidays_evening_rolls_to_next_rest_day_morning():
    d = decide(MOSCOW, local(MSK, 2026, 1, 8, 20, 30))
    assert d.next_allowed_at == local(MSK, 2026, 1, 9, 9, 0)
    d = decide(MOSCOW, local(MSK, 2026, 1, 11, 20, 30))  # last day of the holidays, a Sunday
    assert d.next_allowed_at == local(MSK, 2026, 1, 12, 8, 0)


# --- the debtor's own zone ----------------------------------------------------------------

def test_kaliningrad_and_kamchatka_at_the_same_instant():
    kgd = LeadContext("d-kgd", region="Калининградская область")
    kam = LeadContext("d-kam", region="Kamchatka Krai")
    at = datetime(2026, 1, 12, 5, 30, tzinfo=UTC)   # 07:30 in Kaliningrad, 17:30 in Kamchatka
    a, b = decide(kgd, at), decide(kam, at)
    assert not a.allowed and a.next_allowed_at == datetime(2026, 1, 12, 6, 0, tzinfo=UTC)
    assert a.zones == ("Europe/Kaliningrad",) and a.zone_source == "region"
    assert b.allowed and b.local_time.hour == 17
    at = datetime(2026, 1, 12, 10, 30, tzinfo=UTC)  # 12:30 in Kaliningrad, 22:30 in Kamchatka
    a, b = decide(kgd, at), decide(kam, at)
    assert a.allowed and not b.allowed
    assert b.next_allowed_at == datetime(2026, 1, 12, 20, 0, tzinfo=UTC)  # Tue 08:00 +12


def test_rest_day_is_judged_by_the_local_date():
    # Sunday 20:30 UTC is already Monday 08:30 in Kamchatka: a working day there.
    kam = LeadContext("d-kam", tz="Asia/Kamchatka")
    assert decide(kam, datetime(2026, 1, 11, 20, 30, tzinfo=UTC)).allowed
    # and Monday 08:30 in Kamchatka on 2026-01-02 is still the New Year holidays
    d = decide(kam, datetime(2026, 1, 1, 20, 30, tzinfo=UTC))
    assert codes(d) == {"holiday_hours"}


def test_tz_wins_over_region_and_phone():
    lead = LeadContext("d", phone="+74012123456", region="Омская область", tz="Asia/Magadan")
    d = decide(lead, datetime(2026, 1, 12, 0, 0, tzinfo=UTC))
    assert d.zones == ("Asia/Magadan",) and d.zone_source == "tz" and d.allowed


def test_region_wins_over_phone():
    lead = LeadContext("d", phone="+74012123456", region="55")
    d = decide(lead, datetime(2026, 1, 12, 3, 0, tzinfo=UTC))  # 09:00 Omsk, 05:00 Kaliningrad
    assert d.zones == ("Asia/Omsk",) and d.allowed


def test_phone_landline_gives_its_zone():
    lead = LeadContext("d", phone="+74152123456")  # Petropavlovsk-Kamchatsky
    d = decide(lead, datetime(2026, 1, 12, 20, 0, tzinfo=UTC))
    assert d.zones == ("Asia/Kamchatka",) and d.zone_source == "phone" and d.allowed


def test_saratov_landline_is_utc_plus_4_not_moscow():
    # phonenumbers' own zone data still says Moscow; Saratov moved to UTC+4 in 2016.
    lead = LeadContext("d", phone="+78452123456")
    d = decide(lead, local(MSK, 2026, 1, 12, 21, 30))  # 22:30 in Saratov
    assert d.zones == ("Europe/Saratov",) and not d.allowed


def test_russian_mobile_allowed_only_when_allowed_in_every_zone():
    # +7 912 is a mobile number: phonenumbers allows all Russian zones, UTC+2 to UTC+12.
    lead = LeadContext("d", phone="+79123456789")
    d = decide(lead, datetime(2026, 1, 12, 5, 59, tzinfo=UTC))  # 07:59 in Kaliningrad
    assert not d.allowed and d.next_allowed_at == datetime(2026, 1, 12, 6, 0, tzinfo=UTC)
    assert len(d.zones) > 10 and d.zones[0] == "Europe/Kaliningrad"
    assert d.zones[-1] in ("Asia/Kamchatka", "Asia/Anadyr")
    assert "Europe/Kaliningrad" in d.reasons[0].text
    assert decide(lead, datetime(2026, 1, 12, 6, 0, tzinfo=UTC)).allowed
    assert decide(lead, datetime(2026, 1, 12, 9, 59, tzinfo=UTC)).allowed
    late = decide(lead, datetime(2026, 1, 12, 10, 0, tzinfo=UTC))  # 22:00 in Kamchatka
    assert not late.allowed and late.next_allowed_at == datetime(2026, 1, 13, 6, 0, tzinfo=UTC)
    # Saturday: 09:00 in Kaliningrad is 07:00 UTC, 20:00 in Kamchatka is 08:00 UTC.
    sat = decide(lead, datetime(2026, 1, 17, 6, 0, tzinfo=UTC))
    assert sat.next_allowed_at == datetime(2026, 1, 17, 7, 0, tzinfo=UTC)
    assert not decide(lead, datetime(2026, 1, 17, 8, 0, tzinfo=UTC)).allowed


def test_yakutia_spans_zones_and_is_ambiguous():
    lead = LeadContext("d", region="Якутия")
    at = local("Asia/Yakutsk", 2026, 1, 12, 20, 30)  # 22:30 in Srednekolymsk (UTC+11)
    d = decide(lead, at)
    assert set(d.zones) >= {"Asia/Yakutsk", "Asia/Srednekolymsk"}
    assert not d.allowed and "Asia/Srednekolymsk" in d.reasons[0].text


def test_us_number_spanning_two_zones():
    # Area code 208 is Idaho: Mountain time in the south, Pacific in the north.
    lead = LeadContext("d", phone="+12085551234")
    d = decide(lead, datetime(2026, 1, 12, 15, 30, tzinfo=UTC), profile="us-regf")
    assert set(d.zones) == {"America/Boise", "America/Los_Angeles"}
    assert not d.allowed  # 07:30 in Los Angeles although 08:30 in Boise
    assert d.next_allowed_at == datetime(2026, 1, 12, 16, 0, tzinfo=UTC)
    d = decide(lead, datetime(2026, 1, 13, 4, 0, tzinfo=UTC), profile="us-regf")
    assert not d.allowed  # 21:00 in Boise although 20:00 in Los Angeles
    assert d.next_allowed_at == datetime(2026, 1, 13, 16, 0, tzinfo=UTC)


def test_regf_hours_follow_daylight_saving_time():
    lead = LeadContext("d", tz="America/New_York")
    # Friday before the switch 12:00 UTC is 07:00 EST; Monday after it is 08:00 EDT.
    d = decide(lead, datetime(2026, 3, 6, 12, 0, tzinfo=UTC), profile="us-regf")
    assert not d.allowed and d.next_allowed_at == datetime(2026, 3, 6, 13, 0, tzinfo=UTC)
    assert decide(lead, datetime(2026, 3, 9, 12, 0, tzinfo=UTC), profile="us-regf").allowed
    # Reg F has no holiday or weekend hours: Sunday 08:00 is fine.
    assert decide(lead, local(NY, 2026, 3, 8, 8, 0), profile="us-regf").allowed


@pytest.mark.parametrize("lead", [
    LeadContext("d"),
    LeadContext("d", phone="+80012345678"),  # international freephone: no zone
    LeadContext("d", region="Нарния"),
    LeadContext("d", tz="Mars/Olympus"),
])
@pytest.mark.parametrize("channel", ["voice", "sms"])
def test_unknown_timezone_is_held_never_guessed(lead, channel):
    d = decide(lead, datetime(2026, 1, 12, 9, 0, tzinfo=UTC), channel=channel)
    assert not d.allowed and codes(d) == {"unknown_timezone"}
    assert d.next_allowed_at is None and d.zones == () and d.local_time is None
    assert "held" in d.reasons[0].text


def test_unknown_region_falls_back_to_the_phone_and_says_so():
    lead = LeadContext("d", phone="+74012123456", region="Нарния")
    d = decide(lead, datetime(2026, 1, 12, 9, 0, tzinfo=UTC))
    assert d.zones == ("Europe/Kaliningrad",) and d.zone_source == "phone"


# --- frequency limits (ru-230fz) ----------------------------------------------------------

def test_unanswered_attempts_are_not_interactions():
    h = InMemoryContactHistory()
    for minute in range(0, 50, 10):
        h.record_call("d-msk", local(MSK, 2026, 1, 12, 9, minute))
    assert decide(MOSCOW, local(MSK, 2026, 1, 12, 12, 0), h).allowed


def test_daily_limit_across_phones_and_campaigns():
    h = InMemoryContactHistory()
    # Campaign A reached the debtor on his work phone in the morning...
    h.record_call("debtor-7", local(MSK, 2026, 1, 12, 10, 0), conversation=True)
    # ...campaign B holds his mobile phone: same debtor, the day's interaction is used.
    other_phone = LeadContext("debtor-7", phone="+79161234567", tz="Europe/Moscow")
    d = decide(other_phone, local(MSK, 2026, 1, 12, 12, 0), h)
    assert not d.allowed and codes(d) == {"daily_limit"}
    assert d.next_allowed_at == local(MSK, 2026, 1, 13, 10, 0)  # 24 hours after it
    # another debtor is not affected
    assert decide(LeadContext("debtor-8", tz="Europe/Moscow"),
                  local(MSK, 2026, 1, 12, 12, 0), h).allowed


def test_daily_limit_clears_at_local_midnight():
    h = InMemoryContactHistory()
    h.record_call("d-msk", local(MSK, 2026, 1, 12, 21, 30), conversation=True)
    d = decide(MOSCOW, local(MSK, 2026, 1, 12, 23, 59), h, profile=CAL)
    assert codes(d) == {"daily_limit", "outside_hours"}
    midnight = decide(MOSCOW, local(MSK, 2026, 1, 13, 0, 0), h, profile=CAL)
    assert codes(midnight) == {"outside_hours"}
    assert midnight.next_allowed_at == local(MSK, 2026, 1, 13, 8, 0)


def test_daily_limit_counts_the_debtors_day_not_the_utc_day():
    kam = LeadContext("d-kam", tz="Asia/Kamchatka")
    h = InMemoryContactHistory()
    h.record_call("d-kam", local("Asia/Kamchatka", 2026, 1, 12, 9, 0), conversation=True)
    # 2026-01-12 11:30 UTC is 23:30 in Kamchatka: same local day, still blocked
    at = datetime(2026, 1, 12, 11, 30, tzinfo=UTC)
    assert "daily_limit" in codes(decide(kam, at, h, profile=CAL))
    # 12:30 UTC is 00:30 on the 13th there: only the hours remain
    d = decide(kam, datetime(2026, 1, 12, 12, 30, tzinfo=UTC), h, profile=CAL)
    assert codes(d) == {"outside_hours"}
    assert d.next_allowed_at == datetime(2026, 1, 12, 20, 0, tzinfo=UTC)


def test_weekly_limit_is_the_calendar_week():
    h = InMemoryContactHistory()
    h.record_call("d-msk", local(MSK, 2026, 1, 12, 10, 0), conversation=True)  # Monday
    h.record_call("d-msk", local(MSK, 2026, 1, 13, 10, 0), conversation=True)  # Tuesday
    d = decide(MOSCOW, local(MSK, 2026, 1, 14, 10, 0), h, profile=CAL)
    assert codes(d) == {"weekly_limit"}
    assert d.next_allowed_at == local(MSK, 2026, 1, 19, 8, 0)  # next Monday 08:00
    sunday = local(MSK, 2026, 1, 18, 19, 0)  # same calendar week
    assert not decide(MOSCOW, sunday, h, profile=CAL).allowed


def test_weekend_conversations_do_not_block_the_next_monday():
    h = InMemoryContactHistory()
    h.record_call("d-msk", local(MSK, 2026, 1, 17, 10, 0), conversation=True)  # Saturday
    h.record_call("d-msk", local(MSK, 2026, 1, 18, 10, 0), conversation=True)  # Sunday
    assert decide(MOSCOW, local(MSK, 2026, 1, 19, 8, 0), h, profile=CAL).allowed


def test_monthly_limit_is_the_calendar_month():
    h = InMemoryContactHistory()
    for day in (2, 3, 5, 6, 12, 13, 19, 20):  # two per calendar week, eight in January
        h.record_call("d-msk", local(MSK, 2026, 1, day, 12, 0), conversation=True)
    d = decide(MOSCOW, local(MSK, 2026, 1, 26, 10, 0), h, profile=CAL)  # a fresh week's Monday
    assert codes(d) == {"monthly_limit"}
    assert "8 conversations" in d.reasons[0].text
    # February 1st is a Sunday: rest-day hours.
    assert d.next_allowed_at == local(MSK, 2026, 2, 1, 9, 0)


def test_week_and_month_limits_together_take_the_later_end():
    h = InMemoryContactHistory()
    for day in (5, 6, 12, 13, 19, 20, 26, 27):
        h.record_call("d-msk", local(MSK, 2026, 1, day, 12, 0), conversation=True)
    d = decide(MOSCOW, local(MSK, 2026, 1, 28, 10, 0), h, profile=CAL)
    assert codes(d) == {"weekly_limit", "monthly_limit"}
    assert d.next_allowed_at == local(MSK, 2026, 2, 2, 8, 0)


def test_sms_limits_and_hours():
    h = InMemoryContactHistory()
    h.record_sms("d-msk", local(MSK, 2026, 1, 12, 9, 0))
    assert decide(MOSCOW, local(MSK, 2026, 1, 12, 10, 0), h, channel="sms", profile=CAL).allowed
    h.record_sms("d-msk", local(MSK, 2026, 1, 12, 10, 0))
    d = decide(MOSCOW, local(MSK, 2026, 1, 12, 11, 0), h, channel="sms", profile=CAL)
    assert codes(d) == {"daily_limit"}
    # SMS do not use up the voice limits, nor a conversation the SMS ones
    assert decide(MOSCOW, local(MSK, 2026, 1, 12, 11, 0), h, profile=CAL).allowed
    h.record_sms("d-msk", local(MSK, 2026, 1, 13, 9, 0))
    h.record_sms("d-msk", local(MSK, 2026, 1, 13, 10, 0))
    d = decide(MOSCOW, local(MSK, 2026, 1, 14, 10, 0), h, channel="sms", profile=CAL)
    assert codes(d) == {"weekly_limit"} and d.next_allowed_at == local(MSK, 2026, 1, 19, 8, 0)
    night = decide(MOSCOW, local(MSK, 2026, 1, 20, 22, 30), h, channel="sms", profile=CAL)
    assert codes(night) == {"outside_hours"}


# --- us-regf ------------------------------------------------------------------------------

NYC = LeadContext("d-ny", tz="America/New_York")


def test_regf_seven_attempts_in_seven_days():
    h = InMemoryContactHistory()
    for day in range(5, 12):  # one unanswered call a day, Jan 5..11
        h.record_call("d-ny", local(NY, 2026, 1, day, 12, 0))
    d = decide(NYC, local(NY, 2026, 1, 11, 15, 0), h, profile="us-regf")
    assert codes(d) == {"regf_7in7"}
    assert d.next_allowed_at == local(NY, 2026, 1, 12, 8, 0)  # Jan 5 leaves the window
    assert decide(NYC, local(NY, 2026, 1, 12, 8, 0), h, profile="us-regf").allowed


def test_regf_seven_in_seven_waits_for_enough_old_calls_to_leave():
    h = InMemoryContactHistory()
    h.record_call("d-ny", local(NY, 2026, 1, 5, 12, 0))
    for minute in range(7):
        h.record_call("d-ny", local(NY, 2026, 1, 10, 12, minute))
    d = decide(NYC, local(NY, 2026, 1, 11, 15, 0), h, profile="us-regf")
    # dropping Jan 5 leaves 7 in the window: wait until the Jan 10 calls are 7 days old
    assert d.next_allowed_at == local(NY, 2026, 1, 17, 8, 0)
    assert not decide(NYC, local(NY, 2026, 1, 16, 20, 59), h, profile="us-regf").allowed


def test_regf_six_attempts_leave_room_for_a_seventh():
    h = InMemoryContactHistory()
    for day in range(5, 11):
        h.record_call("d-ny", local(NY, 2026, 1, day, 12, 0))
    assert decide(NYC, local(NY, 2026, 1, 11, 12, 0), h, profile="us-regf").allowed


def test_regf_no_call_within_seven_days_after_a_conversation():
    h = InMemoryContactHistory()
    h.record_call("d-ny", local(NY, 2026, 1, 5, 14, 0), conversation=True)
    d = decide(NYC, local(NY, 2026, 1, 5, 15, 0), h, profile="us-regf")
    assert codes(d) == {"regf_after_conversation"}
    assert d.next_allowed_at == local(NY, 2026, 1, 12, 8, 0)  # the conversation day is day 1
    assert not decide(NYC, local(NY, 2026, 1, 11, 20, 59), h, profile="us-regf").allowed
    assert decide(NYC, local(NY, 2026, 1, 12, 8, 0), h, profile="us-regf").allowed


def test_regf_sms_has_hours_but_no_call_limits():
    h = InMemoryContactHistory()
    h.record_call("d-ny", local(NY, 2026, 1, 5, 14, 0), conversation=True)
    assert decide(NYC, local(NY, 2026, 1, 5, 15, 0), h, profile="us-regf", channel="sms").allowed
    d = decide(NYC, local(NY, 2026, 1, 5, 21, 0), h, profile="us-regf", channel="sms")
    assert codes(d) == {"outside_hours"}


def test_regf_profile_numbers():
    p = get_profile("us-regf")
    assert p.min_ring_seconds == 15 and p.abandon_window == timedelta(days=30)
    assert not p.abandon_rate_exceeded(3, 100) and p.abandon_rate_exceeded(4, 100)
    ru = get_profile("ru-230fz")
    assert ru.abandon_rate_exceeded(2, 100) and not ru.abandon_rate_exceeded(1, 100)
    assert ru.abandon_window == timedelta(days=1)


# --- none, dnc, bad input -----------------------------------------------------------------

def test_none_profile_has_no_limits():
    h = InMemoryContactHistory()
    for hour in range(10):
        h.record_call("d", datetime(2026, 1, 12, hour, tzinfo=UTC), conversation=True)
    for lead in (LeadContext("d"), LeadContext("d", tz="Europe/Moscow")):
        d = decide(lead, local(MSK, 2026, 1, 12, 3, 0), h, profile="none")
        assert d.allowed and d.next_allowed_at == local(MSK, 2026, 1, 12, 3, 0)


@pytest.mark.parametrize("profile", ["ru-230fz", "us-regf", "none"])
def test_dnc_blocks_with_its_reason_and_no_next_time(profile):
    d = decide(MOSCOW, local(MSK, 2026, 1, 12, 12, 0), profile=profile, dnc="asked by debtor")
    assert not d.allowed and codes(d) == {"dnc"} and d.next_allowed_at is None
    assert "asked by debtor" in d.reasons[0].text
    assert codes(decide(MOSCOW, local(MSK, 2026, 1, 12, 12, 0), dnc=True)) == {"dnc"}


def test_reasons_are_all_listed_not_just_the_first():
    h = InMemoryContactHistory()
    h.record_call("d-msk", local(MSK, 2026, 1, 12, 10, 0), conversation=True)
    h.record_call("d-msk", local(MSK, 2026, 1, 13, 10, 0), conversation=True)
    d = decide(MOSCOW, local(MSK, 2026, 1, 13, 23, 0), h)
    assert codes(d) == {"outside_hours", "daily_limit", "weekly_limit"}
    assert all(r.text for r in d.reasons)


def test_bad_input_is_a_compliance_error():
    with pytest.raises(ComplianceError, match="unknown compliance profile 'ru-999'"):
        get_profile("ru-999")
    with pytest.raises(ComplianceError, match="no UTC offset"):
        decide(MOSCOW, datetime(2026, 1, 12, 12, 0))
    with pytest.raises(ComplianceError, match="unknown channel"):
        decide(MOSCOW, datetime(2026, 1, 12, 12, 0, tzinfo=UTC), channel="fax")


def test_a_dialer_that_calls_whenever_allowed_keeps_every_limit():
    # Simulated clock over January and February 2026; the debtor answers every call.
    h = InMemoryContactHistory()
    t, end, talks = local(MSK, 2026, 1, 1, 0, 0), local(MSK, 2026, 3, 1, 12, 0), []
    while t < end:
        d = decide(MOSCOW, t, h, profile=CAL)
        if d.allowed:
            h.record_call("d-msk", t, conversation=True)
            talks.append(t.astimezone(MSK).strftime("%m-%d %H:%M"))
            t += timedelta(minutes=1)
        else:
            assert d.next_allowed_at > t
            t = d.next_allowed_at
    assert talks == [
        "01-01 09:00", "01-02 09:00",                  # New Year holidays: rest-day hours
        "01-05 09:00", "01-06 09:00",                  # two a calendar week
        "01-12 08:00", "01-13 08:00", "01-19 08:00", "01-20 08:00",  # eight in January
        "02-01 09:00",                                 # a Sunday, the first day of a new month
        "02-02 08:00", "02-03 08:00", "02-09 08:00", "02-10 08:00", "02-16 08:00",
        "02-17 08:00",
        "02-23 09:00",                                 # Defender of the Fatherland Day
        "03-01 09:00",                                 # eight in February: wait for March
    ]


class _SqlLikeStore:
    """A store that implements only the ContactHistory protocol, returning rows as SQL might."""

    def __init__(self, rows: list[tuple[str, str, datetime]]) -> None:
        self.rows = rows
        self.queries: list[tuple[str, datetime, datetime]] = []

    def contacts(self, debtor_id, kind, since, until):
        self.queries.append((kind, since, until))
        # naive UTC and unordered, as a careless SELECT without ORDER BY could return them
        return [at.astimezone(UTC).replace(tzinfo=None) for d, k, at in reversed(self.rows)
                if d == debtor_id and k == kind and since <= at < until]


def test_any_contact_history_implementation_is_enough():
    store = _SqlLikeStore([
        ("d-ny", "attempt", local(NY, 2026, 1, 5, 12, 0)),
        ("d-ny", "conversation", local(NY, 2026, 1, 6, 12, 0)),
        ("d-ny", "attempt", local(NY, 2026, 1, 6, 12, 0)),
    ])
    d = check("us-regf", NYC, at=local(NY, 2026, 1, 8, 12, 0), history=store)
    assert codes(d) == {"regf_after_conversation"}
    assert d.next_allowed_at == local(NY, 2026, 1, 13, 8, 0)
    # one query per kind of contact, however far ahead the answer had to be searched
    assert sorted(q[0] for q in store.queries) == ["attempt", "conversation"]
    # ...and reaching back at least a month, the longest window of any profile
    assert all(q[1] <= local(NY, 2026, 1, 8, 12, 0) - timedelta(days=31) for q in store.queries)
