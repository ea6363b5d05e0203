"""Languages: gettext catalogues (Babel .po, compiled when loaded) and the locale's numbers and dates.

English is the source language: a message's msgid is its English text, so English needs no
catalogue; `locales/<lang>/LC_MESSAGES/messages.po` holds every other language. Mark a message
for extraction with `_()`/`N_()` (or raise `UserError("...", **params)`), then run
`python -m web_admin.i18n` to merge new messages into the catalogues and translate the empty ones.
"""
from __future__ import annotations

import gettext as gettext_mod
import io
import re
import subprocess
import sys
import tempfile
from datetime import date, datetime, timezone, tzinfo
from decimal import Decimal
from importlib.resources import files
from pathlib import Path, PurePath
from typing import Any

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import NumberFormatError, format_currency, format_decimal, parse_decimal

from firmware.errors import N_, Msg

__all__ = ["N_", "NP_", "LANGS", "gettext", "pgettext", "message_of", "money", "parse_amount"]

LANGS = ("ru", "en")
DEFAULT = "ru"
SOURCE = "en"
DOMAIN = "messages"
HERE = Path(str(files("web_admin")))
LOCALE_DIR = HERE / "locales"
ROOT = HERE.parent
# Where messages a page can show are written: pybabel extracts from these (see babel.cfg).
# A module whose UserErrors reach a page belongs here (the CLI's own messages stay English).
KEYWORDS = ("_", "N_", "gettext", "ngettext:1,2", "pgettext:1c,2", "NP_:1c,2", "UserError",
            "InputError", "Msg", "t:2")
# The hardware profiles' checks reach the hardware page (their problems are Msg or N_).
SOURCES = ("web_admin", "controller", "dialbox/backend.py", "dialbox/clocksync.py",
           "dialbox/recording.py", "firmware/profiles.py",
           "firmware/yamlsrc.py", "firmware/profile_library.py", "firmware/e1/profile.py",
           # why a line is out of service (the lines page): drivers and the line manager
           "firmware/gsm/driver.py", "firmware/gsm/engine.py", "firmware/linemanager.py",
           "firmware/e1/span.py",
           "firmware/e1/lapd.py", "firmware/e1/transports.py", "firmware/errors.py",
           # the boot report and the supervisor's restarted tasks (the dashboard)
           "dialbox/boot.py", "dialbox/service.py", "dialbox/supervise.py", "dialbox/backup.py",
           "dialbox/console/__init__.py")


def NP_(context: str, message: str) -> tuple[str, str]:
    """Marks a message with its context (a word that means two things in another language)."""
    return context, message


def po_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def _load(lang: str) -> gettext_mod.NullTranslations:
    path = po_path(lang)
    if lang == SOURCE or not path.exists():
        return gettext_mod.NullTranslations()
    with path.open("rb") as f:
        catalog = read_po(f, locale=lang, domain=DOMAIN)
    mo = io.BytesIO()
    write_mo(mo, catalog)
    mo.seek(0)
    return gettext_mod.GNUTranslations(mo)


TRANSLATIONS: dict[str, gettext_mod.NullTranslations] = {lang: _load(lang) for lang in LANGS}


def translations(lang: str) -> gettext_mod.NullTranslations:
    return TRANSLATIONS.get(lang) or TRANSLATIONS[DEFAULT]


def gettext(lang: str, message: str, **params: Any) -> str:
    """`message` in `lang`, with `{name}` placeholders filled from params."""
    text = translations(lang).gettext(message)
    return text.format(**params) if params else text


def pgettext(lang: str, context: str, message: str) -> str:
    return translations(lang).pgettext(context, message)


def message_of(lang: str, exc: Any) -> str:
    """What an error (or a Msg) says, in `lang`: its message and params, or its text translated."""
    message = getattr(exc, "message", None)
    params = getattr(exc, "params", None) or {}
    if not isinstance(message, str):
        message = str(exc)
    text = translations(lang).gettext(message)
    if params:
        try:
            return text.format(**{k: _param(lang, v) for k, v in params.items()})
        except (KeyError, IndexError, ValueError):
            return str(exc)
    return text


def _param(lang: str, value: Any) -> Any:
    """A message inside a message is translated too; a path shows as its file name only."""
    if isinstance(value, (BaseException, Msg)) and isinstance(getattr(value, "message", None),
                                                              str):
        return message_of(lang, value)
    if isinstance(value, tuple) and value and all(isinstance(v, BaseException) for v in value):
        return "; ".join(message_of(lang, v) for v in value)
    if isinstance(value, PurePath):
        return value.name
    return value


def js_messages(lang: str) -> dict[str, str]:
    """The translations of the messages the JavaScript uses (those found in static/*.js)."""
    return dict(_JS_MESSAGES.get(lang, {}))


def _js_messages(lang: str) -> dict[str, str]:
    path = po_path(lang)
    if lang == SOURCE or not path.exists():
        return {}
    with path.open("rb") as f:
        catalog = read_po(f, locale=lang, domain=DOMAIN)
    return {m.id: m.string for m in catalog
            if m.id and m.string and not m.context and isinstance(m.id, str)
            and any(loc.endswith(".js") for loc, _ in m.locations)}


_JS_MESSAGES = {lang: _js_messages(lang) for lang in LANGS}


# --- numbers, money, dates in the reader's locale ---------------------------------------------
def locale(lang: str) -> Locale:
    return Locale.parse(lang if lang in LANGS else DEFAULT)


def money(value: Any, lang: str, currency: str | None = None) -> str:
    if value is None or value == "":
        return "—"
    amount = Decimal(str(value))
    if currency:
        return format_currency(amount, currency, locale=locale(lang))
    return format_decimal(amount, format="#,##0.00", locale=locale(lang))


def number(value: Any, lang: str) -> str:
    if value is None or value == "":
        return "—"
    return format_decimal(value, locale=locale(lang))


def percent(value: Any, lang: str) -> str:
    if value is None:
        return "—"
    return format_decimal(float(value) * 100, format="0.0", locale=locale(lang)) + "\u00a0%"


def parse_amount(text: str, lang: str) -> Decimal:
    """What a person typed as money: `15 000,50` in ru, `15,000.50` in en; `15000.50` in both."""
    cleaned = re.sub(r"[\s\u00a0\u202f\u2009₽$€]|руб\.?|RUB", "", str(text), flags=re.I)
    if not cleaned:
        raise ValueError(text)
    try:
        return parse_decimal(cleaned, locale=locale(lang), strict=True)
    except NumberFormatError:
        pass
    if re.fullmatch(r"-?\d+([.,]\d{1,2})?", cleaned):  # a plain number with either decimal mark
        return Decimal(cleaned.replace(",", "."))
    raise ValueError(text)


def to_datetime(value: Any, tz: tzinfo | None = None) -> datetime | None:
    """Epoch seconds or an ISO string as an aware datetime in the box's local zone."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, (int, float, Decimal)):
        dt = datetime.fromtimestamp(float(value), timezone.utc)
    else:
        try:
            dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return None
    if dt.tzinfo is None:  # stored naive: already local wall time
        return dt
    return dt.astimezone(tz)


def when(value: Any, lang: str, tz: tzinfo | None = None) -> str:
    """A moment as the reader writes it: `30.11.2026, 10:00` in ru, `11/30/26, 10:00 AM` in en."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return format_date(value, "short", locale=locale(lang))
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return format_date(date.fromisoformat(value), "short", locale=locale(lang))
    dt = to_datetime(value, tz)
    if dt is None:
        return "—" if value in (None, "") else str(value)
    return format_datetime(dt, "short", tzinfo=dt.tzinfo, locale=locale(lang))


def day(value: Any, lang: str) -> str:
    """A calendar date (`2026-12-05`) as the reader writes it."""
    if value in (None, ""):
        return "—"
    try:
        d = value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
    except ValueError:
        return str(value)
    return format_date(d, "short", locale=locale(lang))


# --- keeping the catalogues in step with the code ----------------------------------------------
def extract(out: Path) -> None:
    """Every message in the code, templates and JavaScript into the template `out` (.pot)."""
    cmd = [sys.executable, "-m", "babel.messages.frontend", "extract", "-F",
           str(LOCALE_DIR / "babel.cfg"), "--no-wrap", "--omit-header",
           # sorted by message, file names without line numbers: additions merge cleanly
           "--sort-output", "--add-location=file",
           "-o", str(out), "--no-default-keywords"]
    for k in KEYWORDS:
        cmd += ["-k", k]
    cmd += list(SOURCES)
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)


def update() -> None:
    """Merge newly marked messages into every catalogue (translate the empty ones after)."""
    with tempfile.TemporaryDirectory() as tmp:
        pot = Path(tmp) / "messages.pot"
        extract(pot)
        for lang in LANGS:
            if lang == SOURCE:
                continue
            subprocess.run([sys.executable, "-m", "babel.messages.frontend", "update", "-i",
                            str(pot), "-o", str(po_path(lang)), "-l", lang, "--no-wrap",
                            "--ignore-obsolete", "--no-fuzzy-matching", "--ignore-pot-creation-date"],
                           check=True)


if __name__ == "__main__":
    update()
