"""One person across accounts, creditors' files and campaigns: a stable person key.

The law limits contact per person, so two loans of one debtor share one budget. A person is
matched by his normalised full name and date of birth when the file gives it, else by his name
and normalised phone number (a file without birth dates still joins his accounts that share a
number); the compliance engine also counts per phone number, whoever was called on it.
"""
from __future__ import annotations

import hashlib
import re
import unicodedata

_NOT_LETTERS = re.compile(r"[^\w]+|[\d_]+")


def normalize_name(name: str | None) -> str:
    """Case, ё, punctuation, spacing and word order do not matter: 'ИВАНОВ  Иван' = 'Иван Иванов'."""
    if not name:
        return ""
    text = unicodedata.normalize("NFKC", name).casefold().replace("ё", "е")
    return " ".join(sorted(w for w in _NOT_LETTERS.sub(" ", text).split() if w))


def person_key(name: str | None, birth_date: str | None, phone: str | None,
               fallback: str = "") -> str:
    """The key of the person with this name, ISO birth date and E.164 phone (any may be absent).

    A digest, so the key itself shows no personal data in logs or exports; ``fallback`` (the
    account id) keeps people without name and phone apart.
    """
    who = normalize_name(name)
    if birth_date:
        basis = f"n:{who}|b:{birth_date}"
    elif phone:
        basis = f"n:{who}|p:{phone}"
    else:
        basis = f"n:{who}|a:{fallback}"
    return "pk:" + hashlib.sha256(basis.encode()).hexdigest()[:20]
