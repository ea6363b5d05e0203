"""Tables as creditors send them (CSV in UTF-8/cp1251 with `;` `,` or tab, XLSX); header words."""
from __future__ import annotations

import csv
import io
import re
import warnings
import zipfile
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Callable, Iterable, Iterator

from firmware.errors import N_, UserError, UserErrors

# Exact header words (normalized: lower case, ё -> е, punctuation -> space) -> field.
HEADERS = {
    "account_id": ("account_id", "account id", "account", "id", "contract", "contract no",
                   "loan id", "номер договора", "договор", "договор номер", "номер кредита",
                   "лицевой счет", "номер счета", "счет", "id клиента", "id должника"),
    "debtor_name": ("name", "debtor", "debtor_name", "debtor name", "full name", "client", "фио",
                    "фио должника", "должник", "клиент", "имя", "заемщик"),
    "debt_amount": ("amount", "debt", "debt_amount", "debt amount", "balance", "outstanding",
                    "сумма", "сумма долга", "долг", "задолженность", "сумма задолженности",
                    "остаток долга"),
    "currency": ("currency", "валюта"),
    "dpd": ("dpd", "days past due", "просрочка", "дней просрочки", "просрочка дней",
            "дни просрочки", "срок просрочки"),
    "due_date": ("due date", "due_date", "due", "дата платежа", "дата просрочки",
                 "дата выхода на просрочку", "дата погашения", "срок оплаты"),
    "region": ("region", "регион", "область", "субъект", "субъект рф", "регион проживания"),
    "tz": ("tz", "timezone", "time zone", "часовой пояс"),
    "creditor": ("creditor", "кредитор", "банк"),
    "product": ("product", "продукт", "тип продукта", "вид кредита"),
    "birth_date": ("birth date", "birth_date", "date of birth", "dob", "birthday",
                   "дата рождения", "др", "день рождения"),
    "refusal_date": ("refusal date", "refusal_date", "refused", "отказ от взаимодействия",
                     "дата отказа", "дата отказа от взаимодействия", "отказ"),
}
_EXACT = {w: f for f, words in HEADERS.items() for w in words}
_EXACT.update({"домашний": "phone_home", "рабочий": "phone_work", "home": "phone_home",
               "work": "phone_work", "mobile": "phone_mobile", "мобильный": "phone_mobile"})
PHONE_FIELDS = {"phone": "mobile", "phone_mobile": "mobile", "phone_home": "home",
                "phone_work": "work", "phone_third_party": "third_party"}
FIELDS = (*HEADERS, *PHONE_FIELDS, "phone_type", "custom", "ignore")
# Words that make a header a phone column, and the words that tell its type.
_PHONE_WORDS = ("телефон", "тел", "phone", "tel", "telephone", "mobile", "мобильный", "сотовый")
_PHONE_KIND_WORDS = (("third_party", ("трет", "лиц", "third", "person", "поручител",
                                      "родствен", "reference", "referee")),
                     ("home", ("дом", "home")),
                     ("work", ("раб", "work", "office", "служеб")),
                     ("mobile", ("моб", "mobile", "сот", "cell")))


@dataclass
class Table:
    """A header and the rows under it (row number as the person sees it, cells as text)."""

    path: Path
    kind: str  # csv or xlsx
    header: list[str]
    header_row: int
    rows: Iterator[tuple[int, list[str]]]
    encoding: str | None = None
    delimiter: str | None = None
    data_rows: int | None = None  # non-empty rows under the header


def normalize_header(text: str) -> str:
    key = re.sub(r"[^\w]+", " ", str(text).lower().replace("ё", "е").replace("_", " "))
    return re.sub(r"\s+", " ", key).strip()


def field_of(header: str) -> str | None:
    """The field a column header names, if any (phones: phone_<type>)."""
    key = normalize_header(header)
    if key in _EXACT:
        return _EXACT[key]
    if key.replace(" ", "_") in FIELDS:
        return key.replace(" ", "_")
    words = key.split()
    if any(w.startswith(p) for w in words for p in _PHONE_WORDS) or "номер телефона" in key:
        if "тип" in words or "type" in words or "kind" in words:
            return "phone_type"
        for kind, stems in _PHONE_KIND_WORDS:
            if any(w.startswith(s) for w in words for s in stems):
                return f"phone_{kind}" if kind != "mobile" else "phone_mobile"
        return "phone"
    return None


def map_columns(header: list[str], mapping: dict[str, str] | None = None
                ) -> dict[str, list[int]]:
    """Field -> column indexes; an explicit mapping (header -> field) wins over the guess."""
    explicit = {normalize_header(h): f for h, f in (mapping or {}).items()}
    cols: dict[str, list[int]] = {}
    for i, h in enumerate(header):
        f = explicit.get(normalize_header(h)) or field_of(h)
        if f is None or f in ("custom", "ignore"):
            if f == "ignore":
                cols.setdefault("ignore", []).append(i)
            continue
        if f in PHONE_FIELDS or f not in cols:
            cols.setdefault(f, []).append(i)
    return cols


def check_mapping(mapping: object, where: str) -> dict[str, str]:
    """A mapping file's content: {"column header": "field"}."""
    if not isinstance(mapping, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                for k, v in mapping.items()):
        raise UserError('{where}: a mapping is a JSON object {{"column header": "field"}}',
                        where=where)
    bad = sorted(v for v in mapping.values() if v not in FIELDS)
    if bad:
        raise UserError("{where}: unknown fields {bad}; known: {known}", where=where,
                        bad=", ".join(bad), known=", ".join(FIELDS))
    return mapping


def open_table(path: Path, is_header: Callable[[list[str]], bool], what: str) -> Table:
    """Open a table whose header ``is_header`` accepts, or UserError saying ``what`` is missing.

    Title rows above the header are skipped (up to ten non-empty rows are tried).
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError("{file}: file not found", file=path) from None
    except IsADirectoryError:
        raise UserError("{file}: is a directory; give a CSV or XLSX call list",
                        file=path) from None
    except OSError as exc:
        raise UserError("{file}: cannot read: {error}", file=path, error=exc.strerror) from None
    if not raw.strip():
        raise UserError("{file}: the file is empty; expected a call list (CSV or XLSX with a "
                        "header row and one row per debtor)", file=path)
    if raw.startswith(b"PK\x03\x04"):
        return _open_xlsx(path, is_header, what)
    if raw.startswith(b"\xd0\xcf\x11\xe0"):
        raise UserError("{file}: an old Excel .xls file; save it as .xlsx or CSV and import "
                        "that", file=path)
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        text, encoding = raw.decode("utf-16"), "utf-16"  # Excel's "Unicode text" export
    elif b"\x00" in raw[:4096]:
        raise UserError("{file}: a binary file, not a call list; export the list as CSV or "
                        "XLSX", file=path)
    else:
        text, encoding = _decode(raw)
    del raw
    lines = io.StringIO(text, newline="")
    head = [next(lines, "") for _ in range(10)]
    sample = "\n".join(h for h in head if h.strip())
    delimiter = max(";,\t", key=lambda d: _count_outside_quotes(sample, d))
    lines.seek(0)
    rows = _csv_rows(path, csv.reader(lines, delimiter=delimiter))
    header, header_row = _find_header(path, rows, is_header, what)
    # A first pass over the whole file finds broken CSV and counts the rows before anything is
    # written, so that the import can commit in short batches (the dialer keeps writing).
    data_rows = sum(1 for _, row in rows if any(row) and any(c.strip() for c in row))
    _require_rows(path, data_rows)
    rows = _csv_rows(path, csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    for n, _ in rows:
        if n == header_row:
            break
    return Table(path, "csv", header, header_row, rows, encoding, delimiter, data_rows)


def _require_rows(path: Path, data_rows: int) -> None:
    if data_rows == 0:
        raise UserError("{file}: a header but no rows under it; nothing to import", file=path)


def _decode(raw: bytes) -> tuple[str, str]:
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8", errors="replace"), "utf-8-sig"
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return raw.decode("cp1251", errors="replace"), "cp1251"


def _count_outside_quotes(text: str, ch: str) -> int:
    return sum(part.count(ch) for part in text.split('"')[::2])


def _csv_rows(path: Path, reader) -> Iterator[tuple[int, list[str]]]:
    try:
        for row in reader:
            yield reader.line_num, row
    except csv.Error as exc:
        raise UserError("{file}:{line}: broken CSV ({error}); fix or remove that line "
                        "and import again", file=path, line=reader.line_num, error=exc) from None


def _find_header(path: Path, rows: Iterator[tuple[int, list[str]]],
                 is_header: Callable[[list[str]], bool], what: str) -> tuple[list[str], int]:
    first = None
    seen = 0
    for n, row in rows:
        if not any(c.strip() for c in row):
            continue
        first = first or row
        if is_header(row):
            return row, n
        seen += 1
        if seen >= 10:
            break
    if first is None:
        raise UserError("{file}: {what}", file=path, what=UserError(NO_ROWS))
    raise UserError("{file}: {what} (header: {header})", file=path, what=what,
                    header=" | ".join(first[:12]))


NO_ROWS = N_("no rows at all; expected a header row and a row per record")


def _open_xlsx(path: Path, is_header: Callable[[list[str]], bool], what: str) -> Table:
    sheets = _read_workbook(path)
    if not sheets:
        raise UserError("{file}: the workbook has no worksheet; nothing to import", file=path)
    errors = []
    for title, rows in sheets:
        it = iter(rows)
        try:
            header, n = _find_header(path, it, is_header, what)
        except UserError as exc:
            errors.append(UserError("sheet '{sheet}': {what}", sheet=title,
                                    what=exc.params["what"]))
            continue
        rest = [(i, row) for i, row in it if any(c.strip() for c in row)]
        _require_rows(path, len(rest))
        return Table(path, "xlsx", header, n, iter(rest), data_rows=len(rest))
    raise UserError("{file}: no sheet has what is needed ({errors})", file=path,
                    errors=UserErrors(errors))


def xlsx_reader() -> str:
    """python-calamine (about ten times faster) when installed, else openpyxl."""
    if XLSX_READER != "auto":
        return XLSX_READER
    import importlib.util
    return "calamine" if importlib.util.find_spec("python_calamine") else "openpyxl"


XLSX_READER = "auto"  # or "calamine" / "openpyxl" to force one


def _read_workbook(path: Path) -> list[tuple[str, list[tuple[int, list[str]]]]]:
    """Every sheet's rows as (row number, cells as text)."""
    if xlsx_reader() == "calamine":
        import python_calamine
        try:
            wb = python_calamine.CalamineWorkbook.from_path(str(path))
            try:
                return [(name, [(i, [_cell(v) for v in values]) for i, values in enumerate(
                    wb.get_sheet_by_name(name).to_python(skip_empty_area=False), 1)])
                        for name in wb.sheet_names]
            finally:
                wb.close()
        except python_calamine.CalamineError as exc:
            raise _unreadable(path, exc) from None
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # style warnings of files not made by Excel
            wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
            try:
                return [(ws.title, [(i, [_cell(v) for v in values]) for i, values in
                                    enumerate(ws.iter_rows(values_only=True), 1)])
                        for ws in wb.worksheets]
            finally:
                wb.close()
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
        raise _unreadable(path, exc) from None


def _unreadable(path: Path, exc: Exception) -> UserError:
    return UserError("{file}: not a readable XLSX workbook ({error}); open it in Excel and save "
                     "as .xlsx or CSV", file=path, error=exc)


def _cell(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float) and v.is_integer():
        return str(int(v))  # phones and ids typed as numbers
    if isinstance(v, datetime):
        return v.date().isoformat()
    if isinstance(v, date):
        return v.isoformat()
    return str(v)


def rows_of(table: Table) -> Iterable[tuple[int, list[str]]]:
    """The data rows, empty ones skipped."""
    for n, row in table.rows:
        for c in row:
            if c and not c.isspace():
                yield n, row
                break
