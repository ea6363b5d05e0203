"""Call lists from CSV as creditors send them: UTF-8 or cp1251, `;` `,` or tab, Russian or English headers."""
from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import phonenumbers

from controller.store import Store
from firmware.errors import UserError

# Header words (lower case, no punctuation) -> field.
HEADERS = {
    "account_id": ("account_id", "account", "id", "contract", "номер договора", "договор",
                   "лицевой счет", "лицевой счёт", "счет", "счёт", "номер счета", "id клиента"),
    "debtor_name": ("name", "debtor", "debtor_name", "full name", "фио", "должник", "клиент",
                    "имя"),
    "phone": ("phone", "phones", "mobile", "phone1", "tel", "telephone", "телефон", "телефоны",
              "мобильный", "моб телефон", "телефон 1", "номер телефона"),
    "phone_home": ("home phone", "phone_home", "домашний", "домашний телефон", "телефон 2"),
    "phone_work": ("work phone", "phone_work", "рабочий", "рабочий телефон", "телефон 3"),
    "debt_amount": ("amount", "debt", "debt_amount", "balance", "сумма", "сумма долга", "долг",
                    "задолженность"),
    "currency": ("currency", "валюта"),
    "dpd": ("dpd", "days past due", "просрочка", "дней просрочки", "просрочка дней"),
    "region": ("region", "регион", "область", "субъект"),
    "tz": ("tz", "timezone", "time zone", "часовой пояс"),
}
_PHONE_FIELDS = (("phone", "mobile"), ("phone_home", "home"), ("phone_work", "work"))


@dataclass
class Reject:
    row: int  # line number in the file, the header is line 1
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

    def summary(self) -> dict:
        return {"imported": self.imported, "updated": self.updated, "rejected": self.rejected,
                "duplicates": self.duplicates, "report": self.report}


def normalize_phone(raw: str, region: str = "RU") -> str:
    """E.164 of ``raw`` or ValueError saying why not (``8 (912) 345-67-89`` -> ``+79123456789``)."""
    text = raw.strip()
    if not text:
        raise ValueError("empty")
    digits = re.sub(r"\D", "", text)
    if region == "RU" and not text.startswith("+"):
        if len(digits) == 11 and digits[0] in "78":
            text = "+7" + digits[1:]
        elif len(digits) == 10:
            text = "+7" + digits
    try:
        num = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"not a phone number ({exc})") from None
    if not phonenumbers.is_valid_number(num):
        raise ValueError("not a valid number")
    return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)


def read_text(path: Path) -> str:
    """Decode a creditor's file: UTF-8 (with or without BOM), else cp1251."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror}") from None
    if not raw.strip():
        raise UserError(f"{path}: the file is empty; expected a call list (CSV with a header row)")
    if b"\x00" in raw[:4096]:
        raise UserError(f"{path}: this is a binary file, not a CSV call list")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1251")


def _map_headers(header: list[str]) -> dict[str, int]:
    cols: dict[str, int] = {}
    for i, h in enumerate(header):
        key = re.sub(r"[^\w ]", " ", h.strip().lower()).strip()
        key = re.sub(r"\s+", " ", key)
        for fieldname, words in HEADERS.items():
            if key in words and fieldname not in cols:
                cols[fieldname] = i
    return cols


def parse_rows(path: Path) -> tuple[list[tuple[int, dict, list[tuple[str, str]]]], list[Reject]]:
    """Rows as (line, account record, phones) and the rejects, or UserError for a non-list."""
    text = read_text(path)
    sample = text[:8192]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=";,\t")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = max(";,\t", key=sample.count)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = next(reader, None)
    while header is not None and not any(c.strip() for c in header):
        header = next(reader, None)
    if header is None:
        raise UserError(f"{path}: no header row; expected columns such as "
                        "'account_id;name;phone' or 'договор;ФИО;телефон'")
    cols = _map_headers(header)
    if "phone" not in cols:
        raise UserError(f"{path}:1: no phone column among {header!r}; name one 'phone' or "
                        "'телефон'")
    if "account_id" not in cols:
        raise UserError(f"{path}:1: no account id column among {header!r}; name one "
                        "'account_id' or 'договор'")
    known = set(cols.values())
    rows, rejects = [], []
    for row in reader:
        line = reader.line_num
        if not any(c.strip() for c in row):
            continue
        get = lambda f: row[cols[f]].strip() if f in cols and cols[f] < len(row) else ""  # noqa: E731
        rec: dict = {"account_id": get("account_id")}
        if not rec["account_id"]:
            rejects.append(Reject(line, "account_id", "empty account id"))
            continue
        rec["debtor_name"] = get("debtor_name") or None
        rec["currency"] = get("currency") or "RUB"
        rec["region"] = get("region") or None
        rec["tz"] = get("tz") or None
        bad = False
        for fname, conv in (("debt_amount", _amount), ("dpd", _int)):
            value = get(fname)
            try:
                rec[fname] = conv(value) if value else None
            except ValueError:
                rejects.append(Reject(line, fname, f"not a number: {value!r}"))
                bad = True
        if bad:
            continue
        phones: list[tuple[str, str]] = []
        phone_errors = []
        for fname, kind in _PHONE_FIELDS:
            for raw in re.split(r"[,/]|\s{2,}", get(fname)) if get(fname) else []:
                if not raw.strip():
                    continue
                try:
                    e164 = normalize_phone(raw)
                except ValueError as exc:
                    phone_errors.append(Reject(line, fname, f"{exc}: {raw.strip()!r}"))
                    continue
                if e164 not in (p for p, _ in phones):
                    phones.append((e164, kind))
        if not phones:
            rejects.extend(phone_errors or [Reject(line, "phone", "no phone number")])
            continue
        for r in phone_errors:  # the row stays; its bad extra number is reported
            r.whole_row = False
        rejects.extend(phone_errors)
        rec["custom"] = {header[i]: row[i] for i in range(min(len(row), len(header)))
                         if i not in known and row[i].strip()}
        rows.append((line, rec, phones))
    return rows, rejects


def import_csv(store: Store, campaign_id: int, path: str | Path, *,
               report_dir: str | Path | None = None) -> ImportResult:
    """Import a list into a campaign; all or nothing for a file that is not a call list."""
    p = Path(path)
    rows, rejects = parse_rows(p)
    result = ImportResult(rejects=rejects)
    seen: set[str] = set()
    with store.tx():
        for line, rec, phones in rows:
            if rec["account_id"] in seen:
                result.duplicates += 1
            seen.add(rec["account_id"])
            if store.upsert_account(campaign_id, rec, phones):
                result.imported += 1
            else:
                result.updated += 1
    result.rejected = len({r.row for r in rejects if r.whole_row})
    if report_dir is not None:
        out = Path(report_dir) / f"{p.stem}.rejects.csv"
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh, delimiter=";")
            w.writerow(["row", "field", "reason", "row_rejected"])
            for r in rejects:
                w.writerow([r.row, r.field, r.reason, "yes" if r.whole_row else "no"])
        result.report = str(out)
    return result


def _amount(text: str) -> float:
    return float(text.replace("\u00a0", "").replace(" ", "").replace(",", "."))


def _int(text: str) -> int:
    return int(text.strip())


def summary_json(result: ImportResult) -> str:
    return json.dumps(result.summary(), ensure_ascii=False)
