"""Call lists as creditors send them, and files that are no call list at all."""
from __future__ import annotations

import pytest

from controller.calllist import import_csv, normalize_phone
from controller.store import Store
from firmware.errors import UserError


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "db.sqlite3")
    yield s
    s.close()


@pytest.mark.parametrize("raw", ["8 (912) 345-67-89", "+7 912 3456789", "89123456789",
                                 "9123456789", "+79123456789"])
def test_russian_formats_normalize_to_e164(raw):
    assert normalize_phone(raw) == "+79123456789"


@pytest.mark.parametrize("raw", ["12-34", "", "abc", "+7 912 345"])
def test_bad_numbers_are_refused(raw):
    with pytest.raises(ValueError):
        normalize_phone(raw)


def test_cp1251_semicolons_bom_less_with_a_broken_row(store, tmp_path):
    f = tmp_path / "list.csv"
    text = ("Договор;ФИО;Телефон;Сумма долга;Просрочка\r\n"
            "A-1;Иванов Иван;8 (912) 345-67-89;1 500,50;12\r\n"
            "\r\n"
            "A-2;Петров Пётр;12-34;200;5\r\n"
            "A-3;Сидоров;+7 916 000-11-22;300;x\r\n"
            "A-4;Козлов;9161234567, 12;400;40\r\n")
    f.write_bytes(text.encode("cp1251"))
    cid = store.campaign("c", create=True)
    res = import_csv(store, cid, f, report_dir=tmp_path)
    assert (res.imported, res.rejected) == (2, 2)
    rows = {r.row: r for r in res.rejects}
    # Rows are file lines (the header is line 1, line 3 is empty).
    assert rows[4].field == "phone" and "12-34" in rows[4].reason
    assert rows[5].field == "dpd"
    assert rows[6].whole_row is False  # A-4 imported, its bad second number reported
    acc = store.db.execute("SELECT debtor_name, debt_amount, dpd FROM accounts WHERE "
                           "account_id='A-1'").fetchone()
    assert tuple(acc) == ("Иванов Иван", 1500.5, 12)
    report = (tmp_path / "list.rejects.csv").read_text(encoding="utf-8")
    assert "4;phone;" in report


def test_reimport_updates_by_account_id_without_duplicates(store, tmp_path):
    f = tmp_path / "l.csv"
    f.write_text("\ufeffaccount_id,name,phone,amount\nX1,A,+79123456789,10\n", encoding="utf-8")
    cid = store.campaign("c", create=True)
    import_csv(store, cid, f)
    f.write_text("account_id,name,phone,amount\nX1,A,+79123456789,99\n", encoding="utf-8")
    res = import_csv(store, cid, f)
    assert (res.imported, res.updated) == (0, 1)
    assert store.db.execute("SELECT COUNT(*), MAX(debt_amount) FROM accounts").fetchone()[:] \
        == (1, 99.0)
    assert store.db.execute("SELECT COUNT(*) FROM phones").fetchone()[0] == 1


@pytest.mark.parametrize("content,words", [
    (b"", "empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
    ("name;amount\nIvan;10\n".encode(), "no phone column"),
])
def test_not_a_call_list_is_refused_whole_and_db_untouched(store, tmp_path, content, words):
    f = tmp_path / "x.csv"
    f.write_bytes(content)
    cid = store.campaign("c", create=True)
    with pytest.raises(UserError, match=words):
        import_csv(store, cid, f)
    assert store.db.execute("SELECT COUNT(*) FROM accounts").fetchone()[0] == 0
