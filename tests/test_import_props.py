"""Properties of the import over arbitrary files: a clear refusal or a faithful import, no crash."""
from __future__ import annotations

import csv
import io
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.calllist import import_file
from controller.store import Store
from firmware.errors import UserError

_SETTINGS = settings(max_examples=60, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])


def _fresh():
    d = Path(tempfile.mkdtemp(prefix="imp-"))
    return d, Store(d / "db.sqlite3")


@_SETTINGS
@given(st.one_of(
    st.binary(max_size=400),
    st.text(max_size=400).map(lambda t: t.encode("utf-8")),
    st.lists(st.lists(st.sampled_from(["account_id", "телефон", "phone", "", "x", '"', "8912",
                                       "+79123456789", "12", "ФИО", "сумма", "1,5", "\n"]),
                      max_size=6), max_size=6)
    .map(lambda rows: "\n".join(";".join(r) for r in rows).encode("cp1251")),
))
def test_any_file_is_imported_or_refused_with_a_user_error(content):
    d, store = _fresh()
    f = d / "list.csv"
    f.write_bytes(content)
    try:
        res = import_file(store, "c", f, report_dir=d)
    except UserError as exc:
        assert str(f) in str(exc)
        assert store.db.execute("SELECT COUNT(*) FROM accounts").fetchone()[0] == 0
        assert store.db.execute("SELECT COUNT(*) FROM campaigns").fetchone()[0] == 0
    else:
        n = store.db.execute("SELECT COUNT(*) FROM accounts").fetchone()[0]
        assert n == res.imported
    finally:
        store.close()
        shutil.rmtree(d)


_name = st.text(st.characters(whitelist_categories=("Lu", "Ll", "Zs", "Pd", "Po"),
                              whitelist_characters="\"'\n"), max_size=20) \
    .filter(lambda s: s.strip() == s)
_mobile = st.integers(0, 10 ** 7 - 1).map(lambda n: f"+7912{n:07d}")


@_SETTINGS
@given(st.lists(st.tuples(_name, _mobile, st.integers(0, 10 ** 6)), min_size=1, max_size=15),
       st.sampled_from([";", ",", "\t"]), st.sampled_from(["utf-8", "utf-8-sig", "cp1251"]))
def test_what_goes_in_comes_out(rows, delimiter, encoding):
    rows = [(n.encode("cp1251", "ignore").decode("cp1251").strip(), p, a) for n, p, a in rows]
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter)
    w.writerow(["Номер договора", "ФИО", "Телефон", "Сумма долга"])
    for i, (name, phone, amount) in enumerate(rows):
        w.writerow([f"A{i}", name, phone, amount])
    d, store = _fresh()
    f = d / "list.csv"
    f.write_bytes(buf.getvalue().encode(encoding))
    try:
        res = import_file(store, "c", f)
        assert (res.imported, res.rejected) == (len(rows), 0)
        got = {r[0]: (r[1] or "", r[2], r[3]) for r in store.db.execute(
            "SELECT a.account_id, a.debtor_name, p.e164, a.debt_amount FROM accounts a "
            "JOIN phones p ON p.account_pk=a.id")}
        assert got == {f"A{i}": (name, phone, float(amount))
                       for i, (name, phone, amount) in enumerate(rows)}
    finally:
        store.close()
        shutil.rmtree(d)
