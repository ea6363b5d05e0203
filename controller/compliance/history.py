"""What the engine needs to know about past contacts with a debtor, and an in-memory store.

Contacts are asked for by subject: a person key (one person across accounts, creditors' files
and campaigns, see controller.phones.person_key), ``tel:<E.164>`` (every contact on that number,
whoever was called) or ``debt:<account key>`` (the contacts about one debt). Kinds of contact:

- ``attempt``: every voice call placed to any of the debtor's phones, answered or not
  (Regulation F's 7-in-7 counts these; it leaves out calls that did not connect at all, e.g.
  busy or network failure, so counting every placed call is the stricter side).
- ``conversation``: a call that connected to the debtor, whoever hung up first. This is
  "взаимодействие посредством телефонных переговоров" of 230-FZ art. 7 part 3 and "telephone
  conversation" of Reg F 1006.14(b)(2). A robot or prerecorded voice message that was played
  to him (the abandon message too) counts, as the FSSP reads the law. A call answered by a
  third party or a wrong number, unanswered, busy, or failed on our side is not one.
  Every conversation is also an attempt: record the call once with the flag.
  Only calls the shop placed count: 230-FZ limits interaction at the creditor's initiative, so a
  debtor calling in (blended mode) is not recorded here.
- ``sms``: every message sent to any of the debtor's phones (230-FZ art. 7 part 5).
"""
from __future__ import annotations

import bisect
import json
from collections import defaultdict
from datetime import datetime, timezone
from typing import Protocol

from controller.compliance.errors import ComplianceError
from controller.compliance.zones import normalize_phone

KINDS = ("attempt", "conversation", "sms")
SCOPES = ("person", "phone", "debt")


def subject(scope: str, lead) -> str | None:
    """The history subject a limit of ``scope`` counts for ``lead`` (None: nothing to count)."""
    if scope == "person":
        return lead.debtor_id
    if scope == "phone":
        return f"tel:{lead.phone}" if lead.phone else None
    if scope == "debt":  # a lead that names no debt is counted over all the person's debts
        return f"debt:{lead.debt}" if lead.debt else lead.debtor_id
    raise ComplianceError(f"unknown scope {scope!r}: use one of {', '.join(SCOPES)}")


class ContactHistory(Protocol):
    """Read side of the contact record the compliance engine consults."""

    def contacts(self, debtor_id: str, kind: str, since: datetime,
                 until: datetime) -> list[datetime]:
        """UTC instants of the subject's contacts of ``kind`` with since <= t < until, ascending.

        ``debtor_id`` is a person key, ``tel:<E.164>`` or ``debt:<key>`` (see the module doc).
        """
        ...


class InMemoryContactHistory:
    """ContactHistory kept in lists; for the CLI and tests."""

    def __init__(self) -> None:
        self._by_kind: dict[tuple[str, str], list[datetime]] = defaultdict(list)
        self._refusals: list = []

    def record_refusal(self, debtor_id: str | None, refusal) -> None:
        """A debtor's refusal (``debtor_id``: who) or a third party's withdrawal (its phone)."""
        self._refusals.append((debtor_id, refusal))

    def refusals(self, debtor_id: str, phone: str | None) -> list:
        """The refusals bearing on contacting ``debtor_id`` on ``phone``."""
        return [r for who, r in self._refusals
                if (r.kind == "debtor" and who == debtor_id) or
                (r.kind == "third_party" and phone is not None and r.phone == phone)]

    def record_call(self, debtor_id: str, at: datetime, *, conversation: bool = False,
                    phone: str | None = None, debt: str | None = None) -> None:
        """A voice call was placed at ``at``; ``conversation``: it reached the debtor."""
        for key in self._subjects(debtor_id, phone, debt):
            self._add(key, "attempt", at)
            if conversation:
                self._add(key, "conversation", at)

    def record_sms(self, debtor_id: str, at: datetime, *, phone: str | None = None) -> None:
        """An SMS was sent at ``at``."""
        for key in self._subjects(debtor_id, phone, None):
            self._add(key, "sms", at)

    @staticmethod
    def _subjects(debtor_id: str, phone: str | None, debt: str | None) -> list[str]:
        return [debtor_id] + ([f"tel:{phone}"] if phone else []) + (
            [f"debt:{debt}"] if debt else [])

    def contacts(self, debtor_id: str, kind: str, since: datetime,
                 until: datetime) -> list[datetime]:
        """UTC instants of the debtor's contacts of ``kind`` with since <= t < until, ascending."""
        if kind not in KINDS:
            raise ComplianceError(f"unknown contact kind {kind!r}: use one of {', '.join(KINDS)}")
        times = self._by_kind.get((debtor_id, kind), [])
        return times[bisect.bisect_left(times, since):bisect.bisect_left(times, until)]

    def _add(self, debtor_id: str, kind: str, at: datetime) -> None:
        if at.tzinfo is None:
            raise ComplianceError(f"contact time {at.isoformat()} has no UTC offset")
        bisect.insort(self._by_kind[(debtor_id, kind)], at.astimezone(timezone.utc))


def load_history(path: str, debtor_id: str, *, default_debt: str | None = None
                 ) -> InMemoryContactHistory:
    """Read a JSON list of {"at": ISO 8601, "kind": "call"|"conversation"|"sms"} for one person.

    Optional keys: ``phone`` (the number called; counts for that number's limits too), ``debt``
    (the account it was about, for per-debt limits; ``default_debt`` when absent); ``campaign``
    is ignored.
    """
    try:
        with open(path, encoding="utf-8") as fh:
            rows = json.load(fh)
    except OSError as exc:
        raise ComplianceError(f"{path}: cannot read the history file ({exc.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ComplianceError(f"{path}: not a JSON file ({exc})") from None
    if not isinstance(rows, list):
        raise ComplianceError(
            f"{path}: expected a JSON list of contacts, got {type(rows).__name__}")
    history = InMemoryContactHistory()
    for i, row in enumerate(rows):
        where = f"{path}: contact #{i + 1}"
        if not isinstance(row, dict):
            raise ComplianceError(f"{where}: expected an object with 'at' and 'kind'")
        kind = row.get("kind")
        at = parse_instant(row.get("at"), f"{where}, field 'at'")
        phone = _phone(row.get("phone"), f"{where}, field 'phone'")
        debt = row.get("debt", default_debt)
        if debt is not None and not isinstance(debt, str):
            raise ComplianceError(f"{where}, field 'debt': expected a string, got {debt!r}")
        if kind in ("call", "attempt"):
            history.record_call(debtor_id, at, phone=phone, debt=debt)
        elif kind == "conversation":
            history.record_call(debtor_id, at, conversation=True, phone=phone, debt=debt)
        elif kind == "sms":
            history.record_sms(debtor_id, at, phone=phone)
        else:
            raise ComplianceError(
                f"{where}, field 'kind': {kind!r} is not one of call, conversation, sms")
    return history


def _phone(raw: object, where: str) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise ComplianceError(f"{where}: expected a phone number string, got {raw!r}")
    try:
        return normalize_phone(raw)
    except ComplianceError as exc:
        raise ComplianceError(f"{where}: {exc}") from None


def parse_instant(text: object, where: str) -> datetime:
    """An ISO 8601 instant with a UTC offset ('Z' or +03:00); ComplianceError naming ``where``."""
    if not isinstance(text, str):
        raise ComplianceError(f"{where}: expected an ISO 8601 time string, got {text!r}")
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ComplianceError(
            f"{where}: {text!r} is not an ISO 8601 time (e.g. 2026-01-02T10:00:00+03:00)") from None
    if value.tzinfo is None:
        raise ComplianceError(
            f"{where}: {text!r} has no UTC offset; add 'Z' for UTC or e.g. '+03:00'")
    return value
