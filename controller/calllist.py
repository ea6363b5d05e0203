"""Call lists into a campaign: rows to accounts and phones, per-row rejects, re-imports update."""
from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import structlog

from controller.importer import PHONE_FIELDS, Table, map_columns, open_table, rows_of
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
    reason: str
    whole_row: bool = True  # False: the row was imported, one of its values was not


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

    def summary(self) -> dict:
        out = {"imported": self.imported, "updated": self.updated, "rejected": self.rejected,
               "duplicates": self.duplicates, "report": self.report}
        if self.campaign is not None:
            out.update(campaign=self.campaign, campaign_created=self.campaign_created)
        return out


def import_file(store: Store, campaign: int | str, path: str | Path, *,
                report_dir: str | Path | None = None, creditor: str | None = None,
                mapping: dict[str, str] | None = None, today: date | None = None
                ) -> ImportResult:
    """Import a CSV/XLSX list; a file that is no call list is refused whole, nothing written.

    ``campaign`` is an id, or a name (created when missing: progressive, ru-230fz). A mapping
    given with a creditor is saved for the creditor; a creditor's saved mapping is reused.
    """
    p = Path(path)
    if mapping is None and creditor:
        mapping = store.mapping_for(creditor)
    table = open_table(p, lambda row: any(f in PHONE_FIELDS for f in map_columns(row, mapping)),
                       UserError(NO_PHONE))
    cols = map_columns(table.header, mapping)
    if "account_id" not in cols:
        raise UserError("{file}:{line}: no account id column among {header}; name one "
                        "'account_id' or 'Номер договора', or give --mapping FILE", file=p,
                        line=table.header_row, header=" | ".join(table.header[:12]))
    result = ImportResult()
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
    write_records(store, campaign_id, table, cols, result, creditor, today or date.today())
    if creditor and mapping:
        store.save_mapping(creditor, mapping)
    result.rejected = len({r.row for r in result.rejects if r.whole_row})
    if report_dir is not None:
        result.report = str(write_report(Path(report_dir) / f"{p.stem}.rejects.csv",
                                          result.rejects))
    log.info("calllist_imported", file=p.name, campaign_id=campaign_id, imported=result.imported,
             updated=result.updated, rejected=result.rejected, duplicates=result.duplicates)
    return result


def write_records(store: Store, campaign_id: int, table: Table, cols: dict[str, list[int]],
                  result: ImportResult, creditor: str | None, today: date) -> None:
    """Check each row of ``table`` and write the good ones; counts and rejects go to ``result``."""
    writer = AccountWriter(store, campaign_id)
    for _, rec, phones in _records(table, cols, result.rejects, creditor, today):
        kind = writer.add(rec, phones)
        if kind == "new":
            result.imported += 1
        elif kind == "updated":
            result.updated += 1
        else:
            result.duplicates += 1
    writer.finish()


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
    c_aid = one["account_id"]
    optional = [(f, one[f]) for f in ("debtor_name", "region", "tz", "product", "creditor")
                if f in one]
    c_amount, c_dpd, c_due = one.get("debt_amount"), one.get("dpd"), one.get("due_date")
    c_cur, c_type = one.get("currency"), one.get("phone_type")
    dates: dict[str, date] = {}
    for n, row in rows_of(table):
        width = len(row)
        aid = row[c_aid].strip() if c_aid < width else ""
        if not aid:
            rejects.append(Reject(n, "account_id", "empty account id"))
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
        except ValueError as exc:
            rejects.append(Reject(n, f, f"{exc}: {v!r}"))
            continue
        kind_override = None
        if c_type is not None and c_type < width and row[c_type].strip():
            kind_override = _PHONE_TYPES.get(row[c_type].strip().lower().replace("ё", "е"))
            if kind_override is None:
                rejects.append(Reject(n, "phone_type", f"unknown phone type {row[c_type]!r}; "
                                      f"use one of mobile, home, work, third_party"))
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
                    errors.append(Reject(n, fname, f"{exc}: {raw.strip()!r}"))
                    continue
                if all(e164 != p for p, _ in phones):
                    phones.append((e164, kind_override or kind))
        if not phones:
            rejects.extend(errors or [Reject(n, "phone", "no phone number")])
            continue
        for r in errors:  # the row stays; its bad extra number is reported
            r.whole_row = False
            rejects.append(r)
        if custom_cols:
            custom = {h: row[i] for i, h in custom_cols if i < width and row[i].strip()}
            if custom:
                rec["custom"] = custom
        yield n, rec, phones


def write_report(out: Path, rejects: list[Reject]) -> Path:
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", newline="", encoding="utf-8-sig") as fh:  # Excel reads it right
            w = csv.writer(fh, delimiter=";")
            w.writerow(["row", "field", "reason", "row_rejected"])
            for r in rejects:
                w.writerow([r.row, r.field, r.reason, "yes" if r.whole_row else "no"])
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
        raise ValueError("not an amount (a number >= 0)")
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
        raise ValueError("not an amount") from None


def _dpd(text: str) -> int:
    try:
        value = int(float(text.replace(",", ".")))
    except ValueError:
        raise ValueError("days past due is not a number") from None
    if value < 0:
        raise ValueError("negative days past due")
    return value


def _currency(text: str) -> str:
    key = text.strip().lower().rstrip(".")
    if key in _CURRENCIES:
        return _CURRENCIES[key]
    if re.fullmatch(r"[a-z]{3}", key):
        return key.upper()
    raise ValueError("not a currency (use a code such as RUB)")


def parse_date(text: str) -> date:
    for fmt in ("%d.%m.%Y", "%Y-%m-%d", "%d/%m/%Y", "%d.%m.%y", "%Y-%m-%d %H:%M:%S",
                "%d.%m.%Y %H:%M:%S"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError("not a date (use DD.MM.YYYY or YYYY-MM-DD)")


def summary_json(result: ImportResult) -> str:
    return json.dumps(result.summary(), ensure_ascii=False)
