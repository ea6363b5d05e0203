"""Finding a debtor by phone (any format, or some digits), account number or name, and the card."""
from __future__ import annotations

import pytest

from controller import audit, debtors
from controller.store import AccountWriter, Store
from firmware.errors import UserError


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "db.sqlite3")
    cid = s.campaign("Банк-Ноябрь", create=True)
    other = s.campaign("МФО-Декабрь", create=True)
    w = AccountWriter(s, cid)
    w.add({"account_id": "КД-2024/0017", "debtor_name": "Иванов Иван Иванович",
           "debt_amount": 15000.5, "currency": "RUB"}, [("+79123456789", "mobile"),
                                                         ("+74951234567", "work")])
    w.add({"account_id": "КД-2024/0018", "debtor_name": "Петрова Анна Сергеевна"},
          [("+79001112233", "mobile")])
    w.finish()
    w = AccountWriter(s, other)
    w.add({"account_id": "M-55", "debtor_name": "Иванова Мария"}, [("+79123456789", "mobile")])
    w.finish()
    yield s
    s.close()


def names(rows):
    return sorted(r["debtor_name"] for r in rows)


@pytest.mark.parametrize("typed", ["+7 912 345-67-89", "8 (912) 345-67-89", "89123456789",
                                   "9123456789", "345-67-89", "6789"])
def test_a_phone_in_any_common_format_finds_every_account_with_it(store, typed):
    assert names(debtors.search(store, typed)) == ["Иванов Иван Иванович", "Иванова Мария"]


@pytest.mark.parametrize("typed,expected", [
    ("Иванов", ["Иванов Иван Иванович", "Иванова Мария"]),  # a word's beginning
    ("иванов иван иванович", ["Иванов Иван Иванович"]),  # every word must match, any case
    ("иванова м", ["Иванова Мария"]),
    ("Анна Петрова", ["Петрова Анна Сергеевна"]),  # any order
    ("КД-2024/0018", ["Петрова Анна Сергеевна"]),  # the contract number as written
    ("кд-2024", ["Иванов Иван Иванович", "Петрова Анна Сергеевна"]),
    ("M-55", ["Иванова Мария"]),
    ("Сидоров", []),
    ("x", []),  # too short to mean anything
])
def test_names_and_account_numbers_by_word_prefix(store, typed, expected):
    assert names(debtors.search(store, typed)) == expected


def test_search_follows_renames_and_new_phones(store):
    pk = debtors.search(store, "Петрова")[0]["pk"]
    store.db.execute("UPDATE accounts SET debtor_name='Смирнова Анна Сергеевна' WHERE id=?",
                     (pk,))
    assert debtors.search(store, "Петрова") == []
    assert debtors.search(store, "Смирнова")[0]["pk"] == pk
    debtors.add_phone(store, pk, "8 (916) 000-11-22", "home", by="anna")
    assert debtors.search(store, "+7 916 000 11 22")[0]["pk"] == pk


def test_the_card_has_phones_history_and_edits_are_audited(store):
    hit = debtors.search(store, "Иванов Иван")[0]
    card = debtors.card(store, hit["pk"])
    assert card["account_id"] == "КД-2024/0017" and card["campaign"] == "Банк-Ноябрь"
    assert [(p["e164"], p["kind"], p["status"]) for p in card["phones"]] == [
        ("+79123456789", "mobile", "ok"), ("+74951234567", "work", "ok")]
    store.list_add("dnc", "+74951234567", "asked at work", "anna")
    work = next(p for p in debtors.card(store, hit["pk"])["phones"] if p["kind"] == "work")
    assert work["dnc"] is True
    debtors.set_phone_status(store, hit["pk"], work["id"], "bad", by="anna",
                             source="10.0.0.5")
    entry = audit.entries(store, obj="calllist")[0]
    assert (entry["who"], entry["action"], entry["key"], entry["source"]) == (
        "anna", "phone_status", "КД-2024/0017", "10.0.0.5")
    assert entry["before"]["status"] == "dnc" and entry["after"]["status"] == "bad"
    with pytest.raises(UserError, match="no such phone"):
        debtors.set_phone_status(store, hit["pk"], 99999, "ok", by="anna")
    with pytest.raises(UserError, match="no such debtor"):
        debtors.card(store, 424242)
