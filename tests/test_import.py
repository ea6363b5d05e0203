"""Importing creditors' call lists as they really come, and refusing files that are no list."""
from __future__ import annotations

import json
from pathlib import Path
from datetime import date, datetime

import openpyxl
import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller import importer
from controller.calllist import derived_account_id, import_file
from controller.phones import normalize_phone
from controller.store import AccountWriter, Store
from dialbox import cli
from firmware.errors import UserError

TODAY = date(2026, 11, 25)


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "db.sqlite3")
    yield s
    s.close()


@pytest.fixture(params=["calamine", "openpyxl"])
def xlsx_reader(request, monkeypatch):
    """Both XLSX readers: python-calamine (declared, fast) and openpyxl (the fallback)."""
    if request.param == "calamine":
        pytest.importorskip("python_calamine", reason="python-calamine is not installed")
    monkeypatch.setattr(importer, "XLSX_READER", request.param)
    return request.param


def accounts(store):
    return {r["account_id"]: r for r in store.db.execute("SELECT * FROM accounts")}


def phones(store, account_id):
    return [(r[0], r[1]) for r in store.db.execute(
        "SELECT p.e164, p.kind FROM phones p JOIN accounts a ON a.id=p.account_pk "
        "WHERE a.account_id=? ORDER BY p.position", (account_id,))]


def test_cp1251_semicolons_mixed_phones_empty_lines_duplicates_and_a_broken_row(store, tmp_path):
    f = tmp_path / "реестр.csv"
    text = ("Реестр должников ООО «Кредит» на 25.11.2026\r\n"  # a title row above the header
            "\r\n"
            "Номер договора;ФИО;Мобильный телефон;Домашний телефон;Сумма долга;Валюта;"
            "Дата выхода на просрочку;Регион;Продукт;Менеджер\r\n"
            "K-1;Иванов Иван;8 (912) 345-67-89;+7 (343) 371-11-11;1 500,50;руб.;26.10.2026;"
            "Свердловская область;кредитная карта;Петрова\r\n"
            ";;;;;;;;;\r\n"
            "K-2;Петров Пётр;89161234567;;200;RUB;15.11.2026;Москва;заём;\r\n"
            "K-3;Сидоров;12-34;;300;RUB;01.11.2026;Москва;заём;\r\n"  # the broken row
            "K-4;Козлов;+7 916 000-11-22;;abc;RUB;01.11.2026;Москва;заём;\r\n"
            "K-2;Петров Пётр;9161234568;;200;RUB;15.11.2026;Москва;заём;\r\n"  # duplicate
            "\r\n")
    f.write_bytes(text.encode("cp1251"))
    cid = store.campaign("c", create=True)
    res = import_file(store, cid, f, report_dir=tmp_path / "rep", today=TODAY)
    assert (res.imported, res.updated, res.duplicates, res.rejected) == (2, 0, 1, 2)
    acc = accounts(store)
    assert set(acc) == {"K-1", "K-2"}
    k1 = acc["K-1"]
    assert (k1["debtor_name"], k1["debt_amount"], k1["currency"], k1["dpd"], k1["due_date"],
            k1["product"]) == ("Иванов Иван", 1500.5, "RUB", 30, "2026-10-26", "кредитная карта")
    assert json.loads(k1["custom"]) == {"Менеджер": "Петрова"}
    assert phones(store, "K-1") == [("+79123456789", "mobile"), ("+73433711111", "home")]
    # The duplicate row's phone joins the account instead of making a second account.
    assert phones(store, "K-2") == [("+79161234567", "mobile"), ("+79161234568", "mobile")]
    report = (tmp_path / "rep" / "реестр.rejects.csv").read_text(encoding="utf-8")
    assert "7;phone_mobile;not a" in report and "8;debt_amount;not an amount" in report


def test_utf8_bom_commas_quoted_fields_with_commas_and_newlines(store, tmp_path):
    f = tmp_path / "list.csv"
    f.write_text('\ufeffAccount ID,Full name,Phone,Amount,DPD,Comment\n'
                 '"A,1","Smith, John","+7 912 3456789, 8 (916) 123-45-67","1,234.50",45,'
                 '"line one\nline two"\n', encoding="utf-8")
    cid = store.campaign("c", create=True)
    res = import_file(store, cid, f, today=TODAY)
    assert (res.imported, res.rejected) == (1, 0)
    a = accounts(store)["A,1"]
    assert (a["debtor_name"], a["debt_amount"], a["dpd"]) == ("Smith, John", 1234.5, 45)
    assert json.loads(a["custom"]) == {"Comment": "line one\nline two"}
    assert [p for p, _ in phones(store, "A,1")] == ["+79123456789", "+79161234567"]


def test_tab_separated_english_headers_with_phone_types(store, tmp_path):
    f = tmp_path / "list.tsv"
    f.write_text("account_id\tname\tmobile phone\twork phone\tthird party phone\tdue date\t"
                 "time zone\tcreditor\n"
                 "T1\tAnna\t9123456789\t+7 495 123-45-67\t+7 926 555-44-33\t2026-08-27\t"
                 "Asia/Yekaterinburg\tBank A\n", encoding="utf-8")
    cid = store.campaign("c", create=True)
    import_file(store, cid, f, today=TODAY)
    a = accounts(store)["T1"]
    assert (a["dpd"], a["tz"], a["creditor"], a["segment"]) == \
        (90, "Asia/Yekaterinburg", "Bank A", "dpd 61-90")
    assert phones(store, "T1") == [("+79123456789", "mobile"), ("+74951234567", "work"),
                                   ("+79265554433", "third_party")]


def test_long_format_one_phone_per_row_with_a_type_column(store, tmp_path):
    f = tmp_path / "long.csv"
    f.write_text("Договор;ФИО;Телефон;Тип телефона;Просрочка\n"
                 "L1;Анна;+79123456789;мобильный;100\n"
                 "L1;;+74951234567;рабочий;\n"
                 "L1;;+79265554433;контактное лицо;\n", encoding="utf-8")
    cid = store.campaign("c", create=True)
    res = import_file(store, cid, f, today=TODAY)
    assert (res.imported, res.duplicates) == (1, 2)
    a = accounts(store)["L1"]
    assert (a["debtor_name"], a["dpd"], a["segment"]) == ("Анна", 100, "dpd 90+")
    assert [k for _, k in phones(store, "L1")] == ["mobile", "work", "third_party"]


def test_xlsx_made_by_openpyxl_with_numbers_and_dates(store, tmp_path, xlsx_reader):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Выгрузка за ноябрь"])
    ws.append(["Номер договора", "ФИО", "Телефон", "Сумма долга", "Дата платежа"])
    ws.append([100234, "Иванов", 89123456789, 1500.5, datetime(2026, 11, 10)])
    ws.append([None, None, None, None, None])
    ws.append([100235, "Петров", "not a phone", 10, datetime(2026, 11, 1)])
    f = tmp_path / "list.xlsx"
    wb.save(f)
    cid = store.campaign("c", create=True)
    res = import_file(store, cid, f, today=TODAY)
    assert (res.imported, res.rejected) == (1, 1)
    assert res.rejects[0].row == 5  # the sheet's row number
    a = accounts(store)["100234"]
    assert (a["debt_amount"], a["dpd"], a["due_date"]) == (1500.5, 15, "2026-11-10")
    assert phones(store, "100234") == [("+79123456789", "mobile")]


def test_reimport_updates_by_account_id_and_never_duplicates(store, tmp_path):
    f = tmp_path / "l.csv"
    f.write_text("account_id;phone;amount;dpd\nX1;+79123456789;10;5\nX2;+79123456780;1;5\n",
                 encoding="utf-8")
    cid = store.campaign("c", create=True)
    import_file(store, cid, f, today=TODAY)
    f.write_text("account_id;phone;amount;dpd\nX1;+79123456789;99;70\nX3;+79123456781;1;5\n",
                 encoding="utf-8")
    res = import_file(store, cid, f, today=TODAY)
    assert (res.imported, res.updated, res.duplicates) == (1, 1, 0)
    acc = accounts(store)
    assert len(acc) == 3 and (acc["X1"]["debt_amount"], acc["X1"]["segment"]) == \
        (99.0, "dpd 61-90")
    assert store.db.execute("SELECT COUNT(*) FROM phones").fetchone()[0] == 3


@pytest.mark.parametrize("batch", [1, 2, 20_000])
def test_repeated_rows_merge_whether_or_not_the_first_is_written_yet(store, tmp_path,
                                                                    monkeypatch, batch):
    monkeypatch.setattr(AccountWriter, "BATCH", batch)
    f = tmp_path / "long.csv"
    f.write_text("Договор;ФИО;Телефон;Просрочка;Город\n"
                 "L1;Анна;+79123456789;;Пермь\n"
                 "L2;Борис;+79123456780;10;\n"
                 "L1;;+74951234567;100;\n", encoding="utf-8")
    cid = store.campaign("c", create=True)
    res = import_file(store, cid, f, today=TODAY)
    assert (res.imported, res.duplicates) == (2, 1)
    a = accounts(store)["L1"]
    assert (a["debtor_name"], a["dpd"], a["segment"], a["priority"]) == \
        ("Анна", 100, "dpd 90+", 40)
    assert json.loads(a["custom"]) == {"Город": "Пермь"}
    assert phones(store, "L1") == [("+79123456789", "mobile"), ("+74951234567", "mobile")]


def test_an_import_commits_in_batches_and_survives_a_concurrent_writer(store, tmp_path,
                                                                      monkeypatch):
    """Another connection adds accounts between batches: ids are renumbered, nothing is lost."""
    monkeypatch.setattr(AccountWriter, "BATCH", 2)
    cid = store.campaign("c", create=True)
    other = Store(store.path)
    w = AccountWriter(store, cid)
    for i in range(3):  # the first two fill a batch, committed in its own transaction
        w.add({"account_id": f"W{i}"}, [(f"+7912345670{i}", "mobile")])
    assert not store.db.in_transaction
    assert other.db.execute("SELECT COUNT(*) FROM accounts").fetchone()[0] == 2
    other.upsert_account(cid, {"account_id": "OTHER"}, [("+79161112233", "mobile")])
    other.close()
    for i in range(3, 5):
        w.add({"account_id": f"W{i}"}, [(f"+7912345670{i}", "mobile")])
    w.finish()
    assert phones(store, "OTHER") == [("+79161112233", "mobile")]
    assert {aid: phones(store, aid)[0][0] for aid in (f"W{i}" for i in range(5))} == \
        {f"W{i}": f"+7912345670{i}" for i in range(5)}


def test_a_mapping_is_saved_per_creditor_and_reused(store, tmp_path):
    f = tmp_path / "odd.csv"
    f.write_text("Ном;Кто;Куда звонить;Скока\nM1;Анна;89123456789;500\n", encoding="utf-8")
    cid = store.campaign("c", create=True)
    with pytest.raises(UserError, match="no phone column"):
        import_file(store, cid, f)
    mapping = {"Ном": "account_id", "Кто": "debtor_name", "Куда звонить": "phone_mobile",
               "Скока": "debt_amount"}
    import_file(store, cid, f, creditor="Банк Б", mapping=mapping)
    f.write_text("Ном;Кто;Куда звонить;Скока\nM2;Борис;89123456780;700\n", encoding="utf-8")
    res = import_file(store, cid, f, creditor="Банк Б")  # no mapping given: the saved one
    assert res.imported == 1
    assert accounts(store)["M2"]["debt_amount"] == 700.0
    assert accounts(store)["M2"]["creditor"] == "Банк Б"


def _xlsx_without_rows(path):
    wb = openpyxl.Workbook()
    wb.save(path)


@pytest.mark.parametrize("name,make,words", [
    ("empty.csv", lambda p: p.write_bytes(b" \r\n\r\n"), "empty"),
    ("pic.csv", lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), "binary"),
    ("old.xls", lambda p: p.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100),
     "old Excel"),
    ("names.csv", lambda p: p.write_text("name;amount\nIvan;10\n"), "no phone column"),
    ("header.csv", lambda p: p.write_text("account_id;phone\n\n"), "no rows under it"),
])
def test_a_file_that_is_no_call_list_is_refused_whole(store, tmp_path, name, make, words):
    f = tmp_path / name
    make(f)
    with pytest.raises(UserError, match=words) as err:
        import_file(store, "new campaign", f)
    assert str(f) in str(err.value)
    assert store.db.execute("SELECT COUNT(*) FROM campaigns").fetchone()[0] == 0
    assert store.db.execute("SELECT COUNT(*) FROM accounts").fetchone()[0] == 0


def _xlsx_of_names(path):
    wb = openpyxl.Workbook()
    wb.active.append(["name", "amount"])
    wb.active.append(["Ivan", 10])
    wb.create_sheet("empty")
    wb.save(path)


@pytest.mark.parametrize("make,words", [
    (_xlsx_without_rows, "no rows"),
    (_xlsx_of_names, "sheet 'Sheet': no phone column"),
    (lambda p: p.write_bytes(b"PK\x03\x04garbage" * 10), "not a readable XLSX"),
])
def test_an_xlsx_that_is_no_call_list_is_refused_whole(store, tmp_path, xlsx_reader, make,
                                                       words):
    f = tmp_path / "list.xlsx"
    make(f)
    with pytest.raises(UserError, match=words):
        import_file(store, "new campaign", f)
    assert store.db.execute("SELECT COUNT(*) FROM campaigns").fetchone()[0] == 0


def test_a_stray_quote_that_swallows_the_rest_leaves_the_database_untouched(store, tmp_path):
    f = tmp_path / "stray.csv"
    good = "".join(f"G{i};+7912{i:07d};10\n" for i in range(20))
    f.write_text("account_id;phone;amount\n" + good + 'B1;"+79123456789;10\n'
                 + "x;" * 70_000 + "\n", encoding="utf-8")
    cid = store.campaign("c", create=True)
    with pytest.raises(UserError, match=r"stray.csv:\d+: broken CSV"):
        import_file(store, cid, f)
    assert store.db.execute("SELECT COUNT(*) FROM accounts").fetchone()[0] == 0


def _cli(monkeypatch, argv):
    """``dialbox ...`` with this branch's commands registered (cli.py is not ours to edit)."""
    mine = ("dialbox.cmd_import", "dialbox.cmd_dnc", "dialbox.cmd_payments")
    monkeypatch.setattr(cli, "_COMMAND_MODULES", tuple(dict.fromkeys(
        cli._COMMAND_MODULES + mine)))
    return cli.main(argv)


def test_cli_import_creates_the_campaign_and_prints_a_summary(tmp_path, monkeypatch, capsys):
    f = tmp_path / "l.csv"
    f.write_text("account_id;phone\nA;89123456789\nB;123\n", encoding="utf-8")
    data = tmp_path / "d"
    assert _cli(monkeypatch, ["import", "--data", str(data), "--campaign", "Ноябрь",
                              str(f)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == {"imported": 1, "updated": 0, "rejected": 1, "duplicates": 0, "derived_ids": False,
                   "report": str(data / "reports" / "l.rejects.csv"),
                   "campaign": "Ноябрь", "campaign_created": True}
    assert "3;phone;" in (data / "reports" / "l.rejects.csv").read_text(encoding="utf-8")
    s = Store(data / "dialbox.sqlite3")
    row = s.db.execute("SELECT mode, compliance_profile FROM campaigns").fetchone()
    s.close()
    assert tuple(row) == ("progressive", "ru-230fz")
    assert _cli(monkeypatch, ["import", "--data", str(data), "--campaign", "Ноябрь",
                              str(f)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["imported"], out["updated"], out["campaign_created"]) == (0, 1, False)


def test_cli_refuses_a_non_list_in_one_line(tmp_path, monkeypatch, capsys):
    f = tmp_path / "x.bin"
    f.write_bytes(bytes(range(256)))
    assert _cli(monkeypatch, ["import", "--data", str(tmp_path / "d"), "--campaign", "c",
                              str(f)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "binary file" in err and "Traceback" not in err
    assert not (tmp_path / "d" / "dialbox.sqlite3").exists()


def test_cli_bad_mapping_file_is_a_clear_error(tmp_path, monkeypatch, capsys):
    f = tmp_path / "l.csv"
    f.write_text("account_id;phone\nA;89123456789\n", encoding="utf-8")
    m = tmp_path / "m.json"
    m.write_text('{"phone": "telephone"}', encoding="utf-8")
    assert _cli(monkeypatch, ["import", "--data", str(tmp_path / "d"), "--campaign", "c",
                              "--mapping", str(m), str(f)]) == 1
    assert "unknown fields telephone" in capsys.readouterr().err


@pytest.mark.parametrize("raw", ["8 (912) 345-67-89", "+7 912 3456789", "89123456789",
                                 "9123456789", "+79123456789", "7 912 345 67 89"])
def test_russian_formats_normalize_to_e164(raw):
    assert normalize_phone(raw) == "+79123456789"


def _reference(raw: str) -> str | None:
    """E.164 by phonenumbers alone, with the same Russian trunk-prefix reading."""
    digits = "".join(c for c in raw if c.isdigit())
    text = raw if raw.strip().startswith("+") else (
        "+7" + digits[1:] if len(digits) == 11 and digits[0] in "78" else
        "+7" + digits if len(digits) == 10 else raw)
    try:
        n = phonenumbers.parse(text, "RU")
    except phonenumbers.NumberParseException:
        return None
    return phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.E164) \
        if phonenumbers.is_valid_number(n) else None


@settings(max_examples=400, deadline=None)
@given(st.text("0123456789", min_size=10, max_size=10),
       st.sampled_from(["+7{}", "8{}", "7{}", "{}", "8 ({0}) {1}", "+7 {0} {1}"]))
def test_fast_path_agrees_with_phonenumbers(digits, form):
    raw = form.format(digits[:3], digits[3:]) if "{1}" in form else form.format(digits)
    try:
        got = normalize_phone(raw)
    except ValueError:
        got = None
    assert got == _reference(raw)


def test_a_list_without_account_numbers_gets_stable_ones_from_phone_and_name(store, tmp_path):
    f = tmp_path / "noid.csv"
    f.write_text("ФИО;Телефон;Сумма\nИванов Иван;8 912 345-67-89;1500\n"
                 "Петров Пётр;+7 912 000-11-22;700\nбез телефона;;5\n", encoding="utf-8")
    first = import_file(store, "c", f, report_dir=tmp_path / "r")
    assert first.derived_ids and first.imported == 2 and first.rejected == 1
    ids = sorted(r[0] for r in store.db.execute("SELECT account_id FROM accounts"))
    assert ids == sorted([derived_account_id("+79123456789", "Иванов Иван"),
                          derived_account_id("+79120001122", "Петров Пётр")])
    assert derived_account_id("+79123456789", "  иванов   ИВАН ") == ids[ids.index(
        derived_account_id("+79123456789", "Иванов Иван"))]
    again = import_file(store, "c", f)  # the same people are the same accounts
    assert again.imported == 0 and again.updated + again.duplicates == 2
    assert store.db.execute("SELECT COUNT(*) FROM accounts").fetchone()[0] == 2


def test_the_reject_report_has_the_row_and_the_reason_in_the_readers_language(store, tmp_path):
    from web_admin import i18n
    f = tmp_path / "list.csv"
    f.write_text("account_id;name;phone;amount\nA1;Иванов;89123456789;abc\n"
                 "A2;Петров;12;10\n", encoding="utf-8")
    res = import_file(store, "c", f, report_dir=tmp_path / "r", translate=lambda m, p:
                      i18n.message_of("ru", UserError(m, **p)))
    text = Path(res.report).read_text(encoding="utf-8-sig")
    head, *rows = text.splitlines()
    assert head == "строка;поле;причина;строка отклонена;account_id;name;phone;amount"
    assert rows[0] == "2;debt_amount;не сумма: 'abc';да;A1;Иванов;89123456789;abc"
    assert rows[1].startswith("3;phone;") and rows[1].endswith(";да;A2;Петров;12;10")
    assert "not" not in text  # no English left


async def test_two_imports_of_a_new_account_at_once_both_succeed_and_keep_it_once(store,
                                                                                 tmp_path):
    """Two lists imported into one campaign at the same time, each on its own connection (as the
    web admin and the API run them), both bringing an account the campaign did not have: both
    read the campaign before either wrote. The second to write updates the account the first
    wrote, with its own values, instead of failing on the unique account id."""
    import asyncio
    import threading
    cid = store.campaign("c", create=True)
    both_read = threading.Barrier(2, timeout=60)
    first_done = threading.Event()

    def csv_file(name: str, prefix: str, shared_name: str, amount: str) -> Path:
        rows = [f"{prefix}-{i};Должник {prefix}{i};+7912{i:07d};100" for i in range(250)]
        rows.insert(240, f"SHARED-1;{shared_name};+79160000001;{amount}")
        path = tmp_path / name
        path.write_text("Договор;ФИО;Телефон;Сумма\n" + "\n".join(rows) + "\n", encoding="utf-8")
        return path

    def progress(which: str):
        waited: list[int] = []

        def seen(done: int, total: int) -> None:
            if done == total or waited:
                return
            waited.append(done)
            both_read.wait()  # each import has read the campaign before either writes
            if which == "second":
                assert first_done.wait(60)  # and the second writes once the first is done
        return seen

    first = csv_file("first.csv", "A", "Иванов Иван", "1000")
    second = csv_file("second.csv", "B", "Иванов Иван Петрович", "2500")

    async def run(path: Path, which: str):
        result = await store.apart(import_file, cid, path, today=TODAY,
                                   progress=progress(which))
        if which == "first":
            first_done.set()
        return result
    one, two = await asyncio.gather(run(first, "first"), run(second, "second"))
    assert (one.imported, one.updated, one.rejected) == (251, 0, 0)
    assert (two.imported, two.updated, two.rejected) == (250, 1, 0)  # SHARED-1 was written
    rows = store.db.execute("SELECT debtor_name, debt_amount FROM accounts WHERE "
                            "account_id='SHARED-1'").fetchall()
    assert [tuple(r) for r in rows] == [("Иванов Иван Петрович", 2500)]  # once, the later data
    assert store.db.execute("SELECT COUNT(*) FROM accounts").fetchone()[0] == 501
    assert phones(store, "SHARED-1") == [("+79160000001", "mobile")]
    orphans = store.db.execute("SELECT COUNT(*) FROM phones WHERE account_pk NOT IN "
                               "(SELECT id FROM accounts)").fetchone()[0]
    assert orphans == 0
