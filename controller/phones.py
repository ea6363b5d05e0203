"""Phone numbers to E.164: a fast path for clean Russian numbers, phonenumbers for the rest."""
from __future__ import annotations

import re

import phonenumbers

from firmware.errors import N_


def _russian_national() -> re.Pattern:
    """phonenumbers' own RU patterns (all number types of 10 digits), compiled once.

    +7 numbers whose national number starts with 3, 4, 8 or 9 are Russian in its metadata, so
    they are valid exactly when one of these patterns matches; anything else goes the slow way.
    """
    meta = phonenumbers.PhoneMetadata.metadata_for_region("RU")
    descs = (meta.fixed_line, meta.mobile, meta.toll_free, meta.premium_rate, meta.shared_cost,
             meta.personal_number, meta.voip, meta.pager, meta.uan, meta.voicemail)
    pats = [d.national_number_pattern for d in descs
            if d is not None and d.national_number_pattern and 10 in (d.possible_length or (10,))]
    return re.compile("|".join(f"(?:{p})" for p in pats))


_FAST = re.compile(r"(?:\+?7|8)?([3489]\d{9})")
_NATIONAL = _russian_national()
_JUNK = str.maketrans("", "", " -()\u00a0.\t")


def normalize_phone(raw: str, region: str = "RU") -> str:
    """E.164 of ``raw`` or ValueError saying why not (``8 (912) 345-67-89`` -> ``+79123456789``)."""
    text = raw.strip()
    if not text:
        raise ValueError(N_("empty"))
    if region == "RU":
        m = _FAST.fullmatch(text.translate(_JUNK))
        if m:
            if _NATIONAL.fullmatch(m.group(1)):
                return "+7" + m.group(1)
            raise ValueError(N_("not a valid number"))
        if not text.startswith("+"):
            digits = re.sub(r"\D", "", text)
            if len(digits) == 11 and digits[0] in "78":
                text = "+7" + digits[1:]
            elif len(digits) == 10:
                text = "+7" + digits
    try:
        num = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"not a phone number ({exc})") from None
    if not phonenumbers.is_valid_number(num):
        raise ValueError(N_("not a valid number"))
    return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)


def dialable(raw: str, region: str = "RU") -> str:
    """A number a technician typed, ready to dial: E.164 when it is a full number in any common
    format (``+7 900 000-00-00``, ``8 (912) 345-67-89``), else a short service number's digits
    (``0611``, ``900``); ValueError saying what is wrong otherwise."""
    try:
        return normalize_phone(raw, region)
    except ValueError:
        pass
    compact = re.sub(r"[\s().\-]", "", raw.strip())
    if re.fullmatch(r"\+?[0-9]{3,20}", compact):
        return compact
    raise ValueError(f"{raw.strip()!r} is not a phone number: type it as +7 900 000-00-00, "
                     "8 (912) 345-67-89, or a short service number")
