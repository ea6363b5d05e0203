"""The audit log: entries are appended, found by filter, and can never be changed or removed."""
from __future__ import annotations

import sqlite3

import pytest

from controller import audit
from controller.store import Store


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "db.sqlite3")
    yield s
    s.close()


def test_entries_are_found_newest_first_with_before_and_after(store):
    audit.record(store, who="admin", action="create", obj="campaign", key="Банк", after={"mode":
                 "progressive"}, source="127.0.0.1", at=100.0)
    audit.record(store, who="sup", action="update", obj="campaign", key="Банк",
                 before={"mode": "progressive"}, after={"mode": "predictive"}, at=200.0)
    audit.record(store, who="admin", action="add", obj="dnc", key="+79000000000", at=300.0)
    rows = audit.entries(store, obj="campaign")
    assert [r["action"] for r in rows] == ["update", "create"]
    assert rows[0]["before"] == {"mode": "progressive"} and rows[0]["after"] == {"mode":
                                                                                "predictive"}
    assert rows[1]["source"] == "127.0.0.1"
    assert [r["key"] for r in audit.entries(store, text="predictive")] == ["Банк"]
    assert len(audit.entries(store, since=150.0, until=300.0)) == 1
    assert [r["who"] for r in audit.entries(store, who="admin")] == ["admin", "admin"]


def test_the_log_is_append_only(store):
    audit.record(store, who="admin", action="create", obj="user", key="ivan", at=1.0)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        store.db.execute("UPDATE audit_log SET who='nobody'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        store.db.execute("DELETE FROM audit_log")
    assert audit.entries(store)[0]["who"] == "admin"


def test_unknown_object_kind_is_refused(store):
    with pytest.raises(ValueError, match="unknown object kind"):
        audit.record(store, who="admin", action="x", obj="nonsense")
