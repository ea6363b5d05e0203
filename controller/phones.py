"""Phone numbers to E.164: a cheap fast path for clean Russian mobiles, phonenumbers for the rest."""
from __future__ import annotations

import re

import phonenumbers

# Russian mobile numbers the phonenumbers metadata calls valid as a whole range: 9[0-24-9] and
# nine more digits (9 3x is only partly allocated, so it goes the slow way).
_FAST = re.compile(r"(?:\+?7|8)?(9[0-24-9]\d{8})")
_JUNK = str.maketrans("", "", " -()\u00a0.\t")


def normalize_phone(raw: str, region: str = "RU") -> str:
    """E.164 of ``raw`` or ValueError saying why not (``8 (912) 345-67-89`` -> ``+79123456789``)."""
    text = raw.strip()
    if not text:
        raise ValueError("empty")
    if region == "RU":
        m = _FAST.fullmatch(text.translate(_JUNK))
        if m:
            return "+7" + m.group(1)
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
        raise ValueError("not a valid number")
    return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)
