"""Properties of next_allowed_at over arbitrary instants, leads and histories."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.compliance import (
    ComplianceError, InMemoryContactHistory, LeadContext, check, normalize_phone)

UTC = timezone.utc

LEADS = [
    LeadContext("d", tz="Europe/Moscow"),
    LeadContext("d", region="Калининградская область"),
    LeadContext("d", tz="Asia/Kamchatka"),
    LeadContext("d", region="Якутия"),                # four zones
    LeadContext("d", phone="+79123456789"),           # a mobile: every Russian zone
    LeadContext("d", phone="+78452123456"),           # Saratov landline
    LeadContext("d", phone="+12085551234"),           # Idaho: Mountain and Pacific
    LeadContext("d", tz="America/New_York"),          # daylight saving time
]

instants = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31),
                        timezones=st.just(UTC))
contacts = st.lists(
    st.tuples(st.integers(min_value=0, max_value=40 * 24 * 60),
              st.sampled_from(["call", "conversation", "sms"])),
    max_size=40)


def _history(at: datetime, rows) -> InMemoryContactHistory:
    history = InMemoryContactHistory()
    for minutes_before, kind in rows:
        when = at - timedelta(minutes=minutes_before)
        if kind == "sms":
            history.record_sms("d", when)
        else:
            history.record_call("d", when, conversation=kind == "conversation")
    return history


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(profile=st.sampled_from(["ru-230fz", "ru-230fz:calendar", "us-regf"]), lead=st.sampled_from(LEADS),
       channel=st.sampled_from(["voice", "sms"]), at=instants, rows=contacts,
       fractions=st.lists(st.floats(min_value=0, max_value=1, exclude_max=True), max_size=12))
def test_next_allowed_is_allowed_and_nothing_earlier_is(profile, lead, channel, at, rows,
                                                         fractions):
    history = _history(at, rows)

    def decide(t: datetime):
        return check(profile, lead, at=t, history=history, channel=channel)

    first = decide(at)
    assert first.allowed == (not first.reasons)
    nxt = first.next_allowed_at
    assert nxt is not None  # every lead here has a known zone and some allowed hours ahead
    assert nxt >= at and (nxt == at) == first.allowed
    assert decide(nxt).allowed
    if nxt == at:
        return
    span = nxt - at
    samples = {at, nxt - timedelta(minutes=1), nxt - timedelta(microseconds=1)}
    samples |= {at + span * f for f in fractions}
    for t in sorted(s for s in samples if at <= s < nxt):
        between = decide(t)
        assert not between.allowed, (t, nxt)
        # the answer does not change while we wait for it
        assert between.next_allowed_at == nxt, (t, between.next_allowed_at, nxt)


@settings(max_examples=60, deadline=None)
@given(lead=st.sampled_from(LEADS), at=instants)
def test_ambiguous_number_is_allowed_only_when_every_zone_is(lead, at):
    # Each possible zone alone, as if it were known, must allow the call too.
    d = check("ru-230fz", lead, at=at, history=InMemoryContactHistory())
    alone = [check("ru-230fz", LeadContext("d", tz=z), at=at, history=InMemoryContactHistory())
             for z in d.zones]
    assert d.allowed == all(a.allowed for a in alone)
    assert d.next_allowed_at >= max(a.next_allowed_at for a in alone)


@settings(max_examples=300, deadline=None)
@given(tz=st.none() | st.text(max_size=30), region=st.none() | st.text(max_size=30),
       phone=st.none() | st.text(alphabet="+0123456789 ()-x#*abc", max_size=20),
       at=instants)
def test_garbage_in_a_lead_holds_it_and_never_crashes(tz, region, phone, at):
    d = check("ru-230fz", LeadContext("d", phone=phone, region=region, tz=tz), at=at,
              history=InMemoryContactHistory())
    if not d.zones:
        assert [r.code for r in d.reasons] == ["unknown_timezone"]
        assert d.next_allowed_at is None
    else:
        assert d.next_allowed_at is not None


@settings(max_examples=300, deadline=None)
@given(raw=st.text(max_size=25))
def test_normalize_phone_raises_only_compliance_error(raw):
    try:
        e164 = normalize_phone(raw)
    except ComplianceError as exc:
        assert repr(raw) in str(exc)
    else:
        assert e164.startswith("+") and e164[1:].isdigit()
        assert normalize_phone(e164) == e164
