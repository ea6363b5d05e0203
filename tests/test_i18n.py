"""Languages: every message the pages can show is in the catalogues, translated; Babel formats."""
from __future__ import annotations

import ast
import re
from decimal import Decimal
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from firmware.errors import InputError, UserError, UserErrors
from web_admin import i18n
from web_admin.labels import LABELS, label

ROOT = Path(__file__).resolve().parent.parent
# Modules whose messages reach a page: each message must be extractable (no f-string).
PAGE_MODULES = sorted({*ROOT.joinpath("web_admin").glob("*.py"), ROOT / "dialbox/backend.py",
                       *(ROOT / "controller" / f"{m}.py" for m in (
                           "users", "importer", "calllist", "store_outcomes", "store_lists",
                           "kpi", "segments")),
                       *(ROOT / "firmware" / f"{m}.py" for m in (
                           "profiles", "profile_library", "yamlsrc", "e1/profile")),
                       # the boot report and the supervisor's restarted tasks (the dashboard;
                       # backup.py's own errors are the CLI's: only its report line is shown)
                       *(ROOT / "dialbox" / f"{m}.py" for m in (
                           "boot", "service", "supervise", "clocksync", "console/__init__"))})
MESSAGE_CALLS = {"UserError", "InputError", "Msg", "problem", "t", "N_", "_"}


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    pot = tmp_path_factory.mktemp("i18n") / "messages.pot"
    i18n.extract(pot)
    with pot.open("rb") as f:
        return read_po(f)


def _key(m) -> tuple:
    return (m.context, m.id)


def test_every_message_in_the_code_is_translated_to_russian(extracted):
    with i18n.po_path("ru").open("rb") as f:
        ru = read_po(f, locale="ru")
    ids = {_key(m) for m in extracted if m.id}
    assert len(ids) > 200
    have = {_key(m): m for m in ru if m.id}
    missing = sorted(str(k) for k in ids - have.keys())
    untranslated = sorted(str(k) for k in ids & have.keys()
                          if not have[k].string or have[k].fuzzy
                          or (isinstance(have[k].string, tuple) and not all(have[k].string)))
    stale = sorted(str(k) for k in have.keys() - ids)
    hint = "run `python -m web_admin.i18n` and translate the empty msgstr in " \
           "web_admin/locales/ru/LC_MESSAGES/messages.po"
    assert not missing, f"not in the Russian catalogue ({hint}): {missing}"
    assert not untranslated, f"untranslated ({hint}): {untranslated}"
    assert not stale, f"no longer in the code ({hint}): {stale}"


def test_translations_keep_every_placeholder():
    with i18n.po_path("ru").open("rb") as f:
        ru = read_po(f, locale="ru")
    wrong = []
    fields = lambda s: sorted(re.findall(r"(?<!\{)\{(\w*)\}(?!\})", s))  # noqa: E731
    for m in ru:
        if m.id and m.string:
            ids = m.id if isinstance(m.id, tuple) else (m.id,)
            strings = m.string if isinstance(m.string, tuple) else (m.string,)
            if any(fields(ids[-1]) != fields(s) for s in strings if s):
                wrong.append(m.id)
    assert not wrong


def _message_problems(path: Path, root: Path = ROOT) -> list[str]:
    problems = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
        if name not in MESSAGE_CALLS:
            continue
        arg = node.args[1] if name in ("t", "problem") and len(node.args) > 1 else node.args[0]
        if isinstance(arg, ast.JoinedStr) or (isinstance(arg, ast.Call)
                                              and getattr(arg.func, "id", "") == "str"):
            problems.append(f"{path.relative_to(root)}:{node.lineno}: {name}() of a formatted "
                            "string cannot be translated; write UserError(\"... {name}\", "
                            "name=value)")
    return problems


def test_messages_that_reach_a_page_are_written_so_they_can_be_translated():
    problems = [p for path in PAGE_MODULES for p in _message_problems(path)]
    assert not problems, "\n".join(problems)



def test_the_guard_finds_a_formatted_message(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text('def f(x):\n    raise UserError(f"no {x}")\n')
    good = tmp_path / "good.py"
    good.write_text('def f(x):\n    raise UserError("no {x}", x=x)\n')
    assert len(_message_problems(bad, tmp_path)) == 1 and not _message_problems(good, tmp_path)


def test_a_user_error_is_shown_in_the_page_language_with_its_values():
    exc = UserError("user {username} already exists", username="anna")
    assert str(exc) == "user anna already exists"
    assert i18n.message_of("ru", exc) == "пользователь anna уже есть"
    assert i18n.message_of("en", exc) == "user anna already exists"
    assert isinstance(InputError("x"), ValueError)


def test_a_message_inside_a_message_is_translated_and_a_path_is_only_its_name():
    inner = UserError("a header but no rows under it; nothing to import")
    exc = UserError("{file}: no sheet has what is needed ({errors})",
                    file=Path("/var/lib/dialbox/tmp/calllist-x1.xlsx"),
                    errors=UserErrors([UserError("sheet '{sheet}': {what}", sheet="Лист1",
                                                 what=inner)]))
    ru = i18n.message_of("ru", exc)
    assert ru.startswith("calllist-x1.xlsx: ни на одном листе нет нужного (лист «Лист1»: ")
    assert "/var/lib" not in ru and "/var/lib" not in i18n.message_of("en", exc)


def test_every_label_has_a_russian_name_that_is_not_its_key():
    for family, names in LABELS.items():
        for key in names:
            ru, en = label("ru", family, key), label("en", family, key)
            assert ru and en and ru != key, (family, key)
            assert re.search("[а-яё]|[A-Z]{2,}", ru), (family, key)


@pytest.mark.parametrize("text,lang,want", [
    ("15 000,50", "ru", "15000.50"), ("15\u00a0000,50", "ru", "15000.50"),
    ("15000.50", "ru", "15000.50"), ("15000,5", "ru", "15000.5"), ("15 000,50 ₽", "ru", "15000.50"),
    ("15,000.50", "en", "15000.50"), ("15000.50", "en", "15000.50"), ("7", "en", "7")])
def test_money_is_read_as_the_person_types_it(text, lang, want):
    assert i18n.parse_amount(text, lang) == Decimal(want)


@pytest.mark.parametrize("text", ["", "abc", "15,000.50,1", "1.2.3"])
def test_what_is_not_money_is_refused(text):
    with pytest.raises(ValueError):
        i18n.parse_amount(text, "ru")


def test_money_numbers_and_dates_in_the_locale():
    assert i18n.money(15000.5, "ru", "RUB") == "15\u00a0000,50\u00a0₽"
    assert i18n.money(15000.5, "en") == "15,000.50"
    assert i18n.money("146400.13", "ru") == "146\u00a0400,13"
    assert i18n.percent(0.125, "ru") == "12,5\u00a0%"
    assert i18n.day("2026-12-05", "ru") == "05.12.2026"
    assert i18n.day("2026-12-05", "en") == "12/5/26"
    assert i18n.when("2026-12-05T14:30", "ru") == "05.12.2026, 14:30"


def russian_only(ru_text: str, locations: tuple[str, ...]) -> set[str]:
    """The English words of the messages written in `locations` found in `ru_text` (a page in
    Russian): words a translation keeps (key names, AT commands) are not counted."""
    with i18n.po_path("ru").open("rb") as f:
        ru = read_po(f, locale="ru")
    english: set[str] = set()
    kept: set[str] = set()

    def words(texts) -> set[str]:
        return {w for s in texts for w in re.findall(r"[A-Za-z_]+", re.sub(r"\{\w*\}", " ", s))}
    for m in ru:
        if not m.id or not any(loc.startswith(locations) for loc, _ in m.locations):
            continue
        english |= {w for w in words(m.id if isinstance(m.id, tuple) else (m.id,)) if len(w) > 1}
        kept |= words(m.string if isinstance(m.string, tuple) else (m.string,))
    return (english - kept) & set(re.findall(r"[A-Za-z_]+", ru_text))


def test_every_compliance_window_has_its_russian_words():
    from controller.compliance import profiles
    from web_admin.labels import window
    limits = [lim for p in (profiles.RU_230FZ, profiles.RU_230FZ_CALENDAR, profiles.US_REGF)
              for rules in (p.voice, p.sms) for lim in rules.limits]
    names = {lim.window_name() for lim in limits} | {"5 consecutive days", "any 1 hours"}
    assert {"any 24 hours", "any 7 days", "any 31 days", "a calendar month"} <= names
    for name in names:
        ru = window("ru", name)
        assert ru and not re.search(r"[A-Za-z]", ru), (name, ru)
        assert window("en", name) == name.replace("any 1 hours", "any 1 hour")
    assert window("ru", "any 24 hours") == "любые 24 часа"
    assert window("ru", "any 31 days") == "любой 31 день"
    assert window("ru", "any 7 days") == "любые 7 дней"
    assert window("ru", "a calendar week") == "календарная неделя"
    assert window("ru", "something else") == "something else"  # never hidden


def test_a_one_hour_or_one_day_window_is_singular_in_english_and_russian():
    from datetime import timedelta

    from controller.compliance.profiles import ATTEMPT, ROLLING, SLIDING, CountLimit
    from web_admin.labels import window

    def sliding(hours):
        return CountLimit("x", ATTEMPT, SLIDING, 1, span=timedelta(hours=hours))
    assert sliding(1).window_name() == "any 1 hour"
    assert sliding(1).describe() == "at most 1 call attempt in any 1 hour"
    assert CountLimit("x", ATTEMPT, ROLLING, 3, days=1).window_name() == "1 consecutive day"
    assert CountLimit("x", ATTEMPT, ROLLING, 3, days=1).describe() == \
        "at most 3 call attempts in 1 consecutive day"
    said = {h: (window("en", sliding(h).window_name()), window("ru", sliding(h).window_name()))
            for h in (1, 2, 5, 21)}
    assert said == {1: ("any 1 hour", "любой 1 час"), 2: ("any 2 hours", "любые 2 часа"),
                    5: ("any 5 hours", "любые 5 часов"), 21: ("any 21 hours", "любой 21 час")}
    assert window("ru", "1 consecutive day") == "1 календарный день подряд"
    # evidence stored before kept the plural: read back right all the same
    assert window("en", "any 1 hours") == "any 1 hour" and window("ru", "any 1 hours") == \
        "любой 1 час"
    assert window("en", "1 consecutive days") == "1 consecutive day"


def test_every_q850_cause_has_its_russian_name():
    """Each cause the line API names is labelled (a new one is not left in English); a cause
    nobody named is shown by its outcome; a driver's Msg is translated; English stays English."""
    from firmware.errors import Msg
    from firmware.lineapi import Q850_NAMES, cause_name
    from web_admin.labels import LABELS, release_reason
    assert {int(k) for k in LABELS["q850"]} == set(Q850_NAMES)
    for code, name in Q850_NAMES.items():
        assert LABELS["q850"][str(code)][1] == name
        ru = release_reason("ru", cause_name(code), code, "failed")
        assert ru and not russian_only(ru, ("web_admin/labels.py",)), (code, ru)
        assert release_reason("en", cause_name(code), code, "failed") == name
    assert release_reason("ru", "cause 50", 50, "congestion") == "сеть перегружена"
    assert release_reason("ru", Msg("out of service"), None, "failed") == "не в работе"


def test_a_sim_resting_from_sms_is_explained_in_russian():
    """The pacer's reasons (the driver's +CMS ERROR words, or failures in a row) read in Russian,
    the code kept; an unnamed code or another failure still reads in Russian; English as kept."""
    from firmware.gsm.errors import CMS_SENDER_BLOCKED, cms_error
    from web_admin.labels import sms_rest_reason
    for code in CMS_SENDER_BLOCKED:
        ru = sms_rest_reason("ru", cms_error(code).reason)
        assert f"(+CMS ERROR {code})" in ru and not russian_only(ru, ("web_admin/",)), ru
    many = sms_rest_reason("ru", "3 failures in a row; the last: +CMS ERROR 41: temporary failure")
    assert many == "неудач подряд: 3; последняя: временный сбой (+CMS ERROR 41)"
    assert sms_rest_reason("ru", "+CMS ERROR 98: message not compatible") == \
        "сеть отклонила сообщение (+CMS ERROR 98)"
    assert sms_rest_reason("ru", "LineError: gone") == "сообщение не отправлено"
    assert sms_rest_reason("en", "+CMS ERROR 21: x") == "+CMS ERROR 21: x"


async def test_why_a_gsm_dial_failed_is_told_in_russian_to_the_end():
    """A dial the module never answered: the reason the lines page shows is Russian to the end,
    the AT engine's own part too (it was English inside a Russian sentence), and it names no
    number."""
    import asyncio

    from firmware.errors import Msg, reason_of
    from firmware.gsm.engine import ATTimeout
    from tests.test_at_framer import make_engine
    e, _, _ = make_engine()
    try:
        await e.command("ATD+79161234567i;", timeout=0.05)
    except ATTimeout as exc:
        reason = Msg("dial failed: {error}", error=reason_of(exc))
    await asyncio.sleep(0)
    ru = i18n.message_of("ru", reason)
    assert ru == "набор не удался: ATD…i;: нет ответа за 0.05 с", ru
    assert not russian_only(ru, ("firmware/gsm/",))
    assert i18n.message_of("en", reason) == str(reason) == "dial failed: ATD…i;: no answer in 0.05s"


@pytest.mark.parametrize("code", ["EIO", "ENOENT", "EBUSY", "EACCES", "ECONNRESET", "EPIPE",
                                  "EREMOTEIO"])
def test_a_lost_port_is_told_in_russian_not_in_the_systems_english(code):
    """A module's USB port that fails: the lines page's reason carries what the system error
    means in the page's language, not the system's English text (a code with no wording of
    its own shows its symbolic name)."""
    import errno
    import os

    from firmware.errors import Msg, os_reason
    exc = OSError(getattr(errno, code), os.strerror(getattr(errno, code)))
    reason = Msg("serial port lost: {error}", error=os_reason(exc))
    ru = i18n.message_of("ru", reason)
    assert os.strerror(getattr(errno, code)) not in ru, ru
    assert not re.search(r"[A-Za-z]{3,}", ru.replace(code, "")), ru
    assert os.strerror(getattr(errno, code)) not in str(reason)  # the English is ours too
