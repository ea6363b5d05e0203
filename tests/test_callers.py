"""An inbound caller is matched to his account through the E.164 index, in any number format."""
from __future__ import annotations

import pytest

from controller import campaigns
from controller.callers import account_of_caller, accounts_of_caller, caller_e164
from controller.store import AccountWriter, Store

N = 30_000


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    s = Store(tmp_path_factory.mktemp("callers") / "d.sqlite3")
    ids = {}
    for name in ("A", "B"):
        ids[name] = campaigns.create(s, name, creditor="Банк", mode="progressive",
                                     compliance="none", who="t", source="test").id
    with s.tx():
        w = AccountWriter(s, ids["A"])
        for i in range(N):
            w.add({"account_id": f"A{i}", "tz": "Europe/Moscow"},
                  [(f"+7916{i:07d}", "mobile"), (f"+7495{i:07d}", "home")])
        w.finish()
        w = AccountWriter(s, ids["B"])
        # The same person owes campaign B too (newer account); a German number as well.
        w.add({"account_id": "B1", "tz": "Europe/Moscow"}, [("+79160012345", "mobile")])
        w.add({"account_id": "B2", "tz": "Europe/Berlin"}, [("+4915112345678", "mobile")])
        w.finish()
    s.ids = ids
    yield s
    s.close()


def _pk(store, account_id):
    return store.db.execute("SELECT id FROM accounts WHERE account_id=?",
                            (account_id,)).fetchone()[0]


@pytest.mark.parametrize("shown", ["+79160004242", "89160004242", "79160004242", "9160004242",
                                   "8 (916) 000-42-42", "+7 916 000 42 42", "007 916 0004242"])
def test_a_caller_is_matched_in_any_format_the_lines_give(store, shown):
    assert accounts_of_caller(store, shown) == [(_pk(store, "A4242"), store.ids["A"])]


def test_an_international_caller_without_his_plus_and_a_landline(store):
    assert account_of_caller(store, "4915112345678") == _pk(store, "B2")
    assert account_of_caller(store, "00 49 151 1234 5678") == _pk(store, "B2")
    assert account_of_caller(store, "8 495 001 2345") == _pk(store, "A12345")


def test_a_debtor_of_two_campaigns_is_shown_with_the_account_of_the_campaign_that_took_him(store):
    both = accounts_of_caller(store, "89160012345")
    assert both == [(_pk(store, "B1"), store.ids["B"]), (_pk(store, "A12345"), store.ids["A"])]
    assert account_of_caller(store, "89160012345") == _pk(store, "B1")  # newest
    assert account_of_caller(store, "89160012345", store.ids["A"]) == _pk(store, "A12345")


def test_unknown_hidden_and_garbage_callers_match_nothing(store):
    for shown in (None, "", "anonymous", "12", "+79169999999"):
        assert accounts_of_caller(store, shown) == []
    assert caller_e164("anonymous") is None


def test_the_match_is_an_index_search_not_a_scan(store):
    """The statement the match runs (traced) is planned on the index, and reads a handful of
    rows where the old leading-wildcard LIKE read every phone (SQLite's VM step counter)."""
    db = store.db
    ran: list[str] = []
    db.set_trace_callback(ran.append)
    try:
        assert accounts_of_caller(store, "8 916 000-42-42")
    finally:
        db.set_trace_callback(None)
    [sql] = [s for s in ran if "FROM phones" in s]
    plan = [r[3] for r in db.execute("EXPLAIN QUERY PLAN " + sql)]
    assert any("USING INDEX phones_e164 (e164=?)" in step for step in plan), plan
    assert not any(step.startswith("SCAN") for step in plan), plan

    def vm_steps(run) -> int:
        n = [0]

        def tick() -> int:
            n[0] += 1
            return 0
        db.set_progress_handler(tick, 10)
        try:
            run()
        finally:
            db.set_progress_handler(None, 10)
        return n[0] * 10

    indexed = vm_steps(lambda: accounts_of_caller(store, "89160004242"))
    scan = vm_steps(lambda: db.execute(
        "SELECT account_pk FROM phones WHERE e164 LIKE ? ORDER BY account_pk DESC LIMIT 1",
        ("%9160004242",)).fetchall())
    print(f"vm steps: indexed {indexed}, leading-wildcard LIKE {scan}")
    assert 0 < indexed < 1_000 and scan > 100 * indexed, (indexed, scan)
