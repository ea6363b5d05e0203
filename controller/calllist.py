"""Call lists into a campaign: rows to accounts and phones, per-row rejects, re-imports update."""
from __future__ import annotations

import csv
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Callable

import structlog

from controller.importer import (PHONE_FIELDS, Table, field_of, map_columns, open_table,
                                 rows_of)
from controller.phones import normalize_phone
from controller.store import AccountWriter, Store
from firmware.errors import N_, UserError

__all__ = ["Reject", "ImportResult", "import_file", "import_csv", "normalize_phone",
           "summary_json"]

log = structlog.get_logger(__name__)

_SPLIT = re.compile(r"[,;/]|\s{2,}")
_CURRENCIES = {"rub": "RUB", "rur": "RUB", "руб": "RUB", "рубль": "RUB", "рубли": "RUB",
               "₽": "RUB", "р": "RUB", "usd": "USD", "$": "USD", "eur": "EUR", "€": "EUR",
               "kzt": "KZT", "byn": "BYN", "uah": "UAH", "cny": "CNY"}
_PHONE_TYPES = {"mobile": "mobile", "моб": "mobile", "мобильный": "mobile", "сотовый": "mobile",
                "cell": "mobile", "home": "home", "дом": "home", "домашний": "home",
                "work": "work", "раб": "work", "рабочий": "work",
                "third_party": "third_party", "third party": "third_party",
                "третье лицо": "third_party", "контактное лицо": "third_party",
                "контакт": "third_party"}


@dataclass
class Reject:
    row: int  # line number in a CSV (the header is line 1), row number in an XLSX sheet
    field: str
    reason: str  # in English, as the CLI, the API and the logs say it
    whole_row: bool = True  # False: the row was imported, one of its values was not
    message: str = ""  # the reason's catalogue message ({placeholders}), for other languages
    params: dict = field(default_factory=dict)
    data: list[str] = field(default_factory=list)  # the row as read from the file


def _reject(n: int, fname: str, message: str, row: list[str], **params) -> Reject:
    return Reject(n, fname, message.format(**params), message=message, params=params,
                  data=list(row))


def _bad_value(n: int, fname: str, exc: ValueError, value: str, row: list[str]) -> Reject:
    message = exc.args[0] if exc.args else ""
    return _reject(n, fname, N_("{error}: {value}"), row, error=UserError(message),
                   value=repr(value))


@dataclass
class ImportResult:
    imported: int = 0
    updated: int = 0
    rejected: int = 0
    duplicates: int = 0
    rejects: list[Reject] = field(default_factory=list)
    report: str | None = None
    campaign: str | None = None
    campaign_created: bool = False
    derived_ids: bool = False  # the file had no account number: made from phone and name
    refusals: int = 0  # debtors' refusals of interaction the file reported, newly recorded

    def summary(self) -> dict:
        out = {"imported": self.imported, "updated": self.updated, "rejected": self.rejected,
               "duplicates": self.duplicates, "report": self.report,
               "derived_ids": self.derived_ids}
        if self.refusals:
            out["refusals"] = self.refusals
        if self.campaign is not None:
            out.update(campaign=self.campaign, campaign_created=self.campaign_created)
        return out


def import_file(store: Store, campaign: int | str, path: str | Path, *,
                report_dir: str | Path | None = None, creditor: str | None = None,
                mapping: dict[str, str] | None = None, today: date | None = None,
                progress: Callable[[int, int], None] | None = None,
                translate: Callable[[str, dict], str] | None = None) -> ImportResult:
    """Import a CSV/XLSX list; a file that is no call list is refused whole, nothing written.

    ``campaign`` is an id, or a name (created when missing: progressive, ru-230fz). A mapping
    given with a creditor is saved for the creditor; a creditor's saved mapping is reused.
    A file without an account number column gets one per row, made from the phone and the name
    (the same row gives the same number on every import). ``progress(rows read, rows)`` is
    called as the rows go in; ``translate(message, params)`` writes the reject report in the
    reader's language.
    """
    p = Path(path)
    if mapping is None and creditor:
        mapping = store.mapping_for(creditor)
    table = open_table(p, lambda row: any(f in PHONE_FIELDS for f in map_columns(row, mapping)),
                       UserError(NO_PHONE))
    cols = map_columns(table.header, mapping)
    result = ImportResult(derived_ids="account_id" not in cols)
    # Past this point the file is known to be a call list; rows are written in batches of
    # their own transactions (re-running an interrupted import is safe: it updates by id).
    if isinstance(campaign, str):
        result.campaign = campaign
        try:
            campaign_id = store.campaign(campaign)
        except UserError:
            campaign_id = store.campaign(campaign, create=True)
            result.campaign_created = True
    else:
        campaign_id = campaign
    write_records(store, campaign_id, table, cols, result, creditor, today or date.today(),
                  progress)
    if creditor and mapping:
        store.save_mapping(creditor, mapping)
    result.rejected = len({r.row for r in result.rejects if r.whole_row})
    if report_dir is not None:
        result.report = str(write_report(Path(report_dir) / f"{p.stem}.rejects.csv",
                                          result.rejects, table.header, translate))
    log.info("calllist_imported", file=p.name, campaign_id=campaign_id, imported=result.imported,
             updated=result.updated, rejected=result.rejected, duplicates=result.duplicates)
    return result


def write_records(store: Store, campaign_id: int, table: Table, cols: dict[str, list[int]],
                  result: ImportResult, creditor: str | None, today: date,
                  progress: Callable[[int, int], None] | None = None) -> None:
    """Check each row of ``table`` and write the good ones; counts and rejects go to ``result``."""
    writer = AccountWriter(store, campaign_id)
    refused: dict[str, tuple[date, str]] = {}  # person key -> refusal date, account id
    total, start = table.data_rows or 0, table.header_row
    for n, rec, phones in _records(table, cols, result.rejects, creditor, today):
        if progress is not None and n % 200 == 0:
            progress(min(n - start, total), total)
        kind = writer.add(rec, phones)
        if rec.get("refusal_date"):
            refused[rec["person_key"]] = (rec["refusal_date"], rec["account_id"])
        if kind == "new":
            result.imported += 1
        elif kind == "updated":
            result.updated += 1
        else:
            result.duplicates += 1
    writer.finish()
    result.imported -= writer.adopted  # new when read, written meanwhile by another import
    result.updated += writer.adopted
    if progress is not None:
        progress(total, total)
    if refused:
        result.refusals = _record_refusals(store, campaign_id, refused, table.path.name)


def import_csv(store: Store, campaign_id: int, path: str | Path, *,
               report_dir: str | Path | None = None) -> ImportResult:
    """The appliance's demo import (CSV or XLSX alike)."""
    return import_file(store, campaign_id, path, report_dir=report_dir)


def _records(table: Table, cols: dict[str, list[int]], rejects: list[Reject],
             creditor: str | None, today: date):
    """(row, account record, phones) for each good row; rejects appended as found."""
    header = table.header
    one = {f: c[0] for f, c in cols.items() if f not in PHONE_FIELDS}
    phone_cols = [(i, PHONE_FIELDS[f], f) for f, cs in cols.items() if f in PHONE_FIELDS
                  for i in cs]
    known = {i for cs in cols.values() for i in cs}
    custom_cols = [(i, h) for i, h in enumerate(header) if i not in known and h.strip()]
    c_aid = one.get("account_id")
    c_name = one.get("debtor_name")
    optional = [(f, one[f]) for f in ("debtor_name", "region", "tz", "product", "creditor")
                if f in one]
    c_amount, c_dpd, c_due = one.get("debt_amount"), one.get("dpd"), one.get("due_date")
    c_cur, c_type, c_born = one.get("currency"), one.get("phone_type"), one.get("birth_date")
    c_refused = one.get("refusal_date")
    dates: dict[str, date] = {}
    for n, row in rows_of(table):
        width = len(row)
        aid = (row[c_aid].strip() if c_aid < width else "") if c_aid is not None else None
        if aid == "":
            rejects.append(_reject(n, "account_id", N_("empty account id"), row))
            continue
        rec: dict = {"account_id": aid, "debtor_name": None, "region": None, "tz": None,
                     "product": None, "creditor": creditor}
        for f, c in optional:
            v = row[c].strip() if c < width else ""
            if v:
                rec[f] = v
        try:
            f = "debt_amount"
            v = row[c_amount].strip() if c_amount is not None and c_amount < width else ""
            rec["debt_amount"] = parse_amount(v) if v else None
            f = "currency"
            v = row[c_cur].strip() if c_cur is not None and c_cur < width else ""
            rec["currency"] = _currency(v) if v else "RUB"
            f = "dpd"
            v = row[c_dpd].strip() if c_dpd is not None and c_dpd < width else ""
            rec["dpd"] = _dpd(v) if v else None
            f = "due_date"
            v = row[c_due].strip() if c_due is not None and c_due < width else ""
            due = None
            if v:
                due = dates.get(v) or dates.setdefault(v, parse_date(v))
                if rec["dpd"] is None:
                    rec["dpd"] = max(0, (today - due).days)
            rec["due_date"] = due.isoformat() if due else None
            f = "birth_date"
            v = row[c_born].strip() if c_born is not None and c_born < width else ""
            rec["birth_date"] = _birth_date(v, today) if v else None
            f = "refusal_date"
            v = row[c_refused].strip() if c_refused is not None and c_refused < width else ""
            rec["refusal_date"] = parse_date(v) if v else None
        except ValueError as exc:
            rejects.append(_bad_value(n, f, exc, v, row))
            continue
        kind_override = None
        if c_type is not None and c_type < width and row[c_type].strip():
            kind_override = _PHONE_TYPES.get(row[c_type].strip().lower().replace("ё", "е"))
            if kind_override is None:
                rejects.append(_reject(n, "phone_type", N_(
                    "unknown phone type {value}; use one of mobile, home, work, third_party"),
                    row, value=repr(row[c_type])))
                continue
        phones: list[tuple[str, str]] = []
        errors: list[Reject] = []
        for c, kind, fname in phone_cols:
            cell = row[c] if c < width else ""
            if not cell or cell.isspace():
                continue
            parts = _SPLIT.split(cell) if ("," in cell or ";" in cell or "/" in cell
                                          or "  " in cell) else (cell,)
            for raw in parts:
                if not raw or raw.isspace():
                    continue
                try:
                    e164 = normalize_phone(raw)
                except ValueError as exc:
                    errors.append(_bad_value(n, fname, exc, raw.strip(), row))
                    continue
                if all(e164 != p for p, _ in phones):
                    phones.append((e164, kind_override or kind))
        if not phones:
            rejects.extend(errors or [_reject(n, "phone", N_("no phone number"), row)])
            continue
        if aid is None:  # no account number in the file: the same person, the same number
            name = rec["debtor_name"] or (row[c_name].strip() if c_name is not None
                                          and c_name < width else "")
            rec["account_id"] = derived_account_id(phones[0][0], name)
        for r in errors:  # the row stays; its bad extra number is reported
            r.whole_row = False
            rejects.append(r)
        if custom_cols:
            custom = {h: row[i] for i, h in custom_cols if i < width and row[i].strip()}
            if custom:
                rec["custom"] = custom
        yield n, rec, phones


def preview_file(path: str | Path, mapping: dict[str, str] | None = None,
                 rows: int = 5) -> dict:
    """What an upload holds before it is imported: its columns, first rows, the guessed mapping.

    A file whose phone column has an unusual name still opens (its first row is taken as the
    header), so that the person can say which column is which.
    """
    p = Path(path)
    try:
        table = open_table(p, lambda row: any(f in PHONE_FIELDS
                                              for f in map_columns(row, mapping)),
                           UserError(NO_PHONE))
    except UserError as exc:
        if "what" not in exc.params:  # not a table at all: empty, binary, .xls...
            raise
        table = open_table(p, lambda row: sum(1 for c in row if c.strip()) >= 2,
                           UserError(NO_PHONE))
    explicit = {h: f for h, f in (mapping or {}).items()}
    guessed = {}
    for i, h in enumerate(table.header):
        f = explicit.get(h) or field_of(h)
        guessed[h] = f or "custom"
    first = []
    for _, row in rows_of(table):
        first.append(row[:len(table.header)] + [""] * (len(table.header) - len(row)))
        if len(first) >= rows:
            break
    return {"columns": list(table.header), "rows": first, "mapping": guessed,
            "rows_total": table.data_rows}


def derived_account_id(e164: str, name: str | None) -> str:
    """An account number for a list that has none: stable, from the first phone and the name."""
    key = f"{e164}|{' '.join((name or '').lower().replace('ё', 'е').split())}"
    return "P-" + hashlib.sha1(key.encode("utf-8")).hexdigest()[:12].upper()


def _record_refusals(store: Store, campaign_id: int, refused: dict[str, tuple[date, str]],
                     filename: str) -> int:
    """Refusals the creditor's file reports, in force from their date; a re-import of the
    same file records nothing twice."""
    from controller import refusals  # the compliance engine loads phone geodata: on use
    new = 0
    for person, (day, account_id) in refused.items():
        at = refusals.day_start(day)
        if store.db.execute("SELECT 1 FROM refusals WHERE kind='debtor' AND person_key=? AND "
                            "at=?", (person, at)).fetchone():
            continue
        pk = store.db.execute("SELECT id FROM accounts WHERE campaign_id=? AND account_id=?",
                              (campaign_id, account_id)).fetchone()
        refusals.record(store, kind="debtor", channel="import", by="import", at=at,
                        person_key=person, account_pk=pk[0] if pk else None,
                        note=f"{filename}, account {account_id}", source="import")
        new += 1
    return new


def write_report(out: Path, rejects: list[Reject], header: list[str] | None = None,
                 translate: Callable[[str, dict], str] | None = None) -> Path:
    """The rejected rows: where, which field, why (in the reader's language), and the row."""
    tr = translate or (lambda message, params: message.format(**params) if params else message)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", newline="", encoding="utf-8-sig") as fh:  # Excel reads it right
            w = csv.writer(fh, delimiter=";")
            w.writerow([tr(N_("row"), {}), tr(N_("field"), {}), tr(N_("reason"), {}),
                        tr(N_("row rejected"), {}), *(header or ())])
            yes, no = tr(N_("yes"), {}), tr(N_("no"), {})
            for r in rejects:
                reason = tr(r.message, r.params) if r.message else r.reason
                w.writerow([r.row, r.field, reason, yes if r.whole_row else no, *r.data])
    except OSError as exc:
        raise UserError("{file}: cannot write the reject report: {error}", file=out,
                        error=exc.strerror) from None
    return out


NO_PHONE = N_("no phone column; this is not a call list, or name the column 'phone'/'телефон', "
              "or give --mapping FILE")


def parse_amount(text: str) -> float:
    """``1 500,50``, ``1500.50``, ``1,234.50``, ``1 234 руб.``; a lone comma is a decimal one."""
    try:  # the usual cases first: no exception raised for them
        value = float(text.replace(",", ".") if "," in text and "." not in text
                      and text.count(",") == 1 else text)
    except ValueError:
        value = _loose_amount(text)
    if not math.isfinite(value) or value < 0:
        raise ValueError(N_("not an amount (a number >= 0)"))
    return value


def _loose_amount(text: str) -> float:
    t = re.sub(r"[^\d,.\-]", "", text)
    if "," in t and "." in t:  # the last one is the decimal separator
        t = t.replace(".", "").replace(",", ".") if t.rfind(",") > t.rfind(".") \
            else t.replace(",", "")
    elif t.count(",") == 1:
        t = t.replace(",", ".")
    else:
        t = t.replace(",", "")
    try:
        return float(t)
    except ValueError:
        raise ValueError(N_("not an amount")) from None


def _dpd(text: str) -> int:
    try:
        value = int(float(text.replace(",", ".")))
    except ValueError:
        raise ValueError(N_("days past due is not a number")) from None
    if value < 0:
        raise ValueError(N_("negative days past due"))
    return value


def _currency(text: str) -> str:
    key = text.strip().lower().rstrip(".")
    if key in _CURRENCIES:
        return _CURRENCIES[key]
    if re.fullmatch(r"[a-z]{3}", key):
        return key.upper()
    raise ValueError(N_("not a currency (use a code such as RUB)"))


def _birth_date(text: str, today: date) -> str:
    born = parse_date(text)
    if not date(1900, 1, 1) <= born <= today:
        raise ValueError(N_("a birth date from 1900 to today"))
    return born.isoformat()


def parse_date(text: str) -> date:
    for fmt in ("%d.%m.%Y", "%Y-%m-%d", "%d/%m/%Y", "%d.%m.%y", "%Y-%m-%d %H:%M:%S",
                "%d.%m.%Y %H:%M:%S"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError(N_("not a date (use DD.MM.YYYY or YYYY-MM-DD)"))


def summary_json(result: ImportResult) -> str:
    return json.dumps(result.summary(), ensure_ascii=False)
