"""Regulation F per debt: 7 calls in 7 days per debt, none within 7 days after a conversation
about that debt (12 CFR 1006.14(b)(2)); calls that never reached the network not counted;
08:00-21:00 at the consumer's location (1006.6(b)(1)(i))."""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from controller.compliance import InMemoryContactHistory, LeadContext, check
from controller.store import Lead, Store
from tests.test_dialer import FakeClock

NY = ZoneInfo("America/New_York")
LA = ZoneInfo("America/Los_Angeles")


def ny(day: int, hour: int = 12, minute: int = 0, month: int = 1) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=NY)


def lead(debt: str | None, tz: str = "America/New_York") -> LeadContext:
    return LeadContext("consumer", phone="+12125551234", tz=tz, debt=debt)


def history(calls) -> InMemoryContactHistory:
    h = InMemoryContactHistory()
    for debt, at, talked in calls:
        h.record_call("consumer", at, conversation=talked, debt=debt)
    return h


SEVEN_ON_A = [("A", ny(d), False) for d in range(5, 12)]  # one unanswered call a day, Jan 5-11

# (case, calls made, the lead's debt, instant, refusing codes, next allowed)
CASES = [
    ("7 in 7 on debt A", SEVEN_ON_A, "A", ny(11, 15), {"regf_7in7"}, ny(12, 8)),
    ("debt B has its own 7", SEVEN_ON_A, "B", ny(11, 15), set(), ny(11, 15)),
    ("6 leave room for a 7th", SEVEN_ON_A[:6], "A", ny(11, 15), set(), ny(11, 15)),
    ("no debt named: all of them", SEVEN_ON_A, None, ny(11, 15), {"regf_7in7"}, ny(12, 8)),
    ("talked about A", [("A", ny(5, 14), True)], "A", ny(5, 15),
     {"regf_after_conversation"}, ny(12, 8)),            # the conversation's date is day 1
    ("day 7 after talking", [("A", ny(5, 14), True)], "A", ny(11, 20, 59),
     {"regf_after_conversation"}, ny(12, 8)),
    ("day 8 after talking", [("A", ny(5, 14), True)], "A", ny(12, 8), set(), ny(12, 8)),
    ("talked about A, call about B", [("A", ny(5, 14), True)], "B", ny(5, 15), set(), ny(5, 15)),
    ("07:59 local", [], "A", ny(12, 7, 59), {"outside_hours"}, ny(12, 8)),
    ("08:00 local", [], "A", ny(12, 8), set(), ny(12, 8)),
    ("20:59 local", [], "A", ny(12, 20, 59), set(), ny(12, 20, 59)),
    ("21:00 local", [], "A", ny(12, 21), {"outside_hours"}, ny(13, 8)),
    ("21:00 in New York is 18:00 in LA", [], "A", ny(12, 21), set(), ny(12, 21)),
    ("summer time", [], "A", ny(10, 7, 59, month=7), {"outside_hours"}, ny(10, 8, month=7)),
]


@pytest.mark.parametrize("case,calls,debt,at,codes,nxt", CASES, ids=[c[0] for c in CASES])
def test_regf_per_debt(case, calls, debt, at, codes, nxt):
    tz = "America/Los_Angeles" if "LA" in case else "America/New_York"
    d = check("us-regf", lead(debt, tz), at=at, history=history(calls))
    assert {r.code for r in d.reasons} == codes
    assert d.next_allowed_at == nxt


def test_store_counts_per_debt_and_leaves_out_calls_that_never_left_the_box(tmp_path):
    s = Store(tmp_path / "d.sqlite3", FakeClock(ny(5).timestamp()))
    cid = s.campaign("us", create=True, compliance_profile="us-regf")
    for aid in ("A", "B"):
        s.upsert_account(cid, {"account_id": aid, "debtor_name": "John Smith",
                               "birth_date": "1970-01-01", "tz": "America/New_York"},
                         [("+12125551234", "mobile")])
    rows = s.db.execute("SELECT a.id, p.id, a.person_key FROM accounts a JOIN phones p ON "
                        "p.account_pk = a.id ORDER BY a.id").fetchall()
    (a_pk, a_phone, key), (b_pk, _, key_b) = rows
    assert key == key_b  # one consumer, two debts
    a = Lead(a_pk, a_phone, "+12125551234", "A", tz="America/New_York", person_key=key)
    for day in range(5, 12):
        s.begin_attempt(cid, a, "gsm0", f"c{day}", None, now=ny(day).timestamp())
        s.finish_attempt(f"c{day}", outcome="no_answer", q850=19, reason="", ring_s=30,
                         talk_s=0, abandoned=False, now=ny(day).timestamp() + 40)
    # Three more the module refused before they reached the network: not calls placed.
    for n in range(3):
        s.begin_attempt(cid, a, "gsm0", f"f{n}", None, now=ny(11, 13, n).timestamp())
        s.requeue_attempt(f"f{n}", "dial refused by the module: ERROR")

    def decide(pk, at):
        return check("us-regf", LeadContext(key, phone="+12125551234", tz="America/New_York",
                                            debt=str(pk)), at=at, history=s)
    assert {r.code for r in decide(a_pk, ny(11, 15)).reasons} == {"regf_7in7"}
    assert decide(b_pk, ny(11, 15)).allowed
    # Drop one placed call: six placed ones and three faults leave room for a seventh.
    s.db.execute("DELETE FROM attempts WHERE call_id='c5'")
    assert decide(a_pk, ny(11, 15)).allowed
    s.close()


def test_the_profile_is_per_debt_and_versioned():
    from controller.compliance import get_profile
    p = get_profile("us-regf")
    assert p.voice.scopes == ("debt",) and p.version
    assert p.voice.hours.window(False) == (datetime(1, 1, 1, 8).time(),
                                           datetime(1, 1, 1, 21).time())
    assert timedelta(days=30) == p.abandon_window
