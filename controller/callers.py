"""Who is calling: an inbound caller's number, in whatever form the line gave it, matched to the
accounts that carry it, through the exact E.164 index on phones (never a scan)."""
from __future__ import annotations

import re

from controller.phones import normalize_phone

MAX_ACCOUNTS = 50  # one number on more accounts than this is a switchboard, not a debtor


def caller_e164(number: str | None, region: str = "RU") -> str | None:
    """E.164 of a caller ID as lines give it (``+79161234567``, ``89161234567``, a national
    ``9161234567``, an international ``4915112345678`` without its plus); None if it is none."""
    raw = (number or "").strip()
    if not raw:
        return None
    try:
        return normalize_phone(raw, region)
    except ValueError:
        pass
    digits = re.sub(r"\D", "", raw)
    for prefix in ("00", "810"):  # international call prefixes (Europe; Russia's old one)
        if digits.startswith(prefix):
            digits = digits[len(prefix):]
            break
    if len(digits) < 7:
        return None
    try:
        return normalize_phone("+" + digits, region)
    except ValueError:
        return None


def accounts_of_caller(store, number: str | None) -> list[tuple[int, int]]:
    """(account pk, campaign id) of every account with the caller's number, newest first."""
    e164 = caller_e164(number)
    if e164 is None:
        return []
    return [(int(r[0]), int(r[1])) for r in store.db.execute(
        "SELECT p.account_pk, a.campaign_id FROM phones p JOIN accounts a ON a.id = p.account_pk "
        "WHERE p.e164 = ? ORDER BY p.account_pk DESC LIMIT ?", (e164, MAX_ACCOUNTS))]


def account_of_caller(store, number: str | None, campaign_id: int | None = None) -> int | None:
    """The caller's account: in ``campaign_id`` (the campaign that took the call) when he has
    one there, else the newest; None when the number is on no account."""
    found = accounts_of_caller(store, number)
    for pk, cid in found:
        if cid == campaign_id:
            return pk
    return found[0][0] if found else None
