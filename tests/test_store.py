"""Storage: results survive, interrupted attempts are never redialed at once."""
from __future__ import annotations

import time

from controller.store import Store


def _one_lead(store):
    cid = store.campaign("c", create=True)
    store.upsert_account(cid, {"account_id": "A1"}, [("+79123456789", "mobile")])
    return cid, store.next_lead(cid, time.time())


def test_attempt_is_recorded_before_the_call_and_finished_after(tmp_path):
    s = Store(tmp_path / "d.sqlite3")
    cid, lead = _one_lead(s)
    s.begin_attempt(cid, lead, "gsm0", "call-1", "pos1")
    assert s.next_lead(cid, time.time()) is None  # the account is being dialed
    s.finish_attempt("call-1", outcome="busy", q850=17, reason="user busy", ring_s=1.0,
                     talk_s=0.0, abandoned=False)
    row = s.db.execute("SELECT state, outcome, q850 FROM attempts").fetchone()
    assert tuple(row) == ("done", "busy", 17)
    assert s.next_lead(cid, time.time()) is None  # retry later, not now
    assert s.next_lead(cid, time.time() + 601) is not None
    s.close()


def test_power_cut_in_the_middle_of_a_call_never_redials_at_once(tmp_path):
    s = Store(tmp_path / "d.sqlite3")
    cid, lead = _one_lead(s)
    s.begin_attempt(cid, lead, "gsm0", "call-1", "pos1")
    s.db.close()  # the box loses power: no finish_attempt
    s2 = Store(tmp_path / "d.sqlite3")
    assert s2.recover_interrupted(retry_after_s=900) == 1
    assert s2.db.execute("SELECT state FROM attempts").fetchone()[0] == "interrupted"
    assert s2.next_lead(cid, time.time()) is None
    assert s2.next_lead(cid, time.time() + 901) is not None
    s2.close()


def test_invalid_number_is_never_dialed_again(tmp_path):
    s = Store(tmp_path / "d.sqlite3")
    cid, lead = _one_lead(s)
    s.begin_attempt(cid, lead, "gsm0", "c1", None)
    s.finish_attempt("c1", outcome="invalid_number", q850=1, reason="unallocated", ring_s=0,
                     talk_s=0, abandoned=False)
    assert s.next_lead(cid, time.time() + 10 ** 6) is None
    assert s.db.execute("SELECT status FROM phones").fetchone()[0] == "invalid"
    s.close()


def test_counters(tmp_path):
    s = Store(tmp_path / "d.sqlite3")
    cid = s.campaign("c", create=True)
    for i, outcome in enumerate(["answered", "busy", "no_answer", "unreachable"]):
        s.upsert_account(cid, {"account_id": f"A{i}"}, [(f"+7912345678{i}", "mobile")])
        lead = s.next_lead(cid, time.time())
        s.begin_attempt(cid, lead, "gsm0", f"c{i}", None)
        s.finish_attempt(f"c{i}", outcome=outcome, q850=None, reason="", ring_s=0, talk_s=0,
                         abandoned=False)
    c = s.counters(cid)
    assert (c["attempts"], c["answered"], c["busy"], c["no_answer"], c["failed"]) == (4, 1, 1, 1, 1)
    s.close()


def test_calls_today_per_line_seek_the_index_and_skip_line_faults(tmp_path):
    s = Store(tmp_path / "d.sqlite3")
    cid, lead = _one_lead(s)
    s.begin_attempt(cid, lead, "gsm0", "c1", None)
    s.begin_attempt(cid, lead, "gsm1", "c2", None)
    s.requeue_attempt("c2", "the module rebooted")  # our fault: not a call of the SIM's day
    statements: list[str] = []
    s.db.set_trace_callback(statements.append)
    assert s.calls_today(["gsm0", "gsm1", "gsm2"]) == {"gsm0": 1}
    s.db.set_trace_callback(None)
    # Every call placed asks this: an index seek per line, never a scan of all attempts.
    plan = " ".join(r[3] for r in s.db.execute("EXPLAIN QUERY PLAN " + statements[-1]))
    assert "USING COVERING INDEX attempts_line_day" in plan, plan
    s.close()


def test_sms_today_per_line_and_a_campaigns_last_sms_seek_their_indexes(tmp_path):
    from dialbox.backend import _last_sms
    s = Store(tmp_path / "d.sqlite3")
    cid, lead = _one_lead(s)
    now = s.clock.wall()
    for i, (line, state) in enumerate([("gsm0", "delivered"), ("gsm0", "queued"),
                                       ("gsm1", "failed"), (None, "skipped"),
                                       ("gsm2", "skipped")]):
        s.db.execute("INSERT INTO sms_messages (sms_id, key, campaign_id, account_pk, rule, line, "
                     "state, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?)",
                     (f"sms-{i}", f"k{i}", cid, lead.account_pk, "due_reminder", line, state,
                      now, now))
    s.db.execute("UPDATE sms_messages SET created_at = created_at - 2 * 86400 WHERE sms_id='sms-2'")
    statements: list[str] = []
    s.db.set_trace_callback(statements.append)
    # what a SIM was given today counts against its daily cap; yesterday's and skipped do not
    assert s.sms_today(["gsm0", "gsm1", "gsm2"], now) == {"gsm0": 2}
    assert [m["state"] for m in _last_sms(s, cid)] == ["skipped", "skipped", "failed",
                                                       "queued", "delivered"]
    s.db.set_trace_callback(None)
    plans = [" ".join(r[3] for r in s.db.execute("EXPLAIN QUERY PLAN " + sql))
             for sql in statements]
    assert "USING INDEX sms_line_day (line=? AND created_at>?)" in plans[0], plans[0]
    # the SMS page's last 50: read in order from the campaign's index, never all sorted
    assert "USING INDEX sms_campaign (campaign_id=?)" in plans[1], plans[1]
    assert "TEMP B-TREE" not in plans[1], plans[1]
    s.close()
