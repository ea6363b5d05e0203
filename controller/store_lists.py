"""Do-not-call and inbound block lists (audited: who, when, why); creditor column mappings."""
from __future__ import annotations

import json

from controller.phones import normalize_phone
from firmware.errors import UserError

LISTS = {"dnc": "do-not-call list", "blocked": "inbound block list"}


class ListsMixin:
    """Store methods over phone_lists, phone_list_audit and creditor_mappings."""

    def list_add(self, list_name: str, number: str, reason: str, by: str, *,
                 now: float | None = None) -> str:
        """Put a number on a list (dnc: never dialed; blocked: inbound gets busy); its E.164."""
        e164 = _number(list_name, number)
        if not reason.strip() or not by.strip():
            raise UserError("{list}: say why (reason) and who (by) for {number}",
                            list=LISTS[list_name], number=number)
        now = self.clock.wall() if now is None else now
        with self.tx():
            self.db.execute(
                "INSERT INTO phone_lists (list, e164, reason, added_by, added_at) VALUES "
                "(?,?,?,?,?) ON CONFLICT (list, e164) DO UPDATE SET reason=excluded.reason, "
                "added_by=excluded.added_by, added_at=excluded.added_at",
                (list_name, e164, reason.strip(), by.strip(), now))
            self._audit(list_name, e164, "add", reason, by, now)
            if list_name == "dnc":
                self.db.execute("UPDATE phones SET status='dnc' WHERE e164=? AND status='ok'",
                                (e164,))
        return e164

    def list_remove(self, list_name: str, number: str, by: str, reason: str = "", *,
                    now: float | None = None) -> bool:
        """Take a number off a list; False when it was not on it."""
        e164 = _number(list_name, number)
        now = self.clock.wall() if now is None else now
        with self.tx():
            gone = self.db.execute("DELETE FROM phone_lists WHERE list=? AND e164=?",
                                   (list_name, e164)).rowcount
            if not gone:
                return False
            self._audit(list_name, e164, "remove", reason, by, now)
            if list_name == "dnc":
                self.db.execute("UPDATE phones SET status='ok' WHERE e164=? AND status='dnc'",
                                (e164,))
                # Accounts stopped for want of a dialable phone may dial again.
                self.db.execute(
                    "UPDATE accounts SET status='active', hold_reason=NULL, next_due_at=? "
                    "WHERE status='stopped' AND hold_reason LIKE 'no dialable phone%' AND id IN "
                    "(SELECT account_pk FROM phones WHERE e164=?)", (now, e164))
        return True

    def list_entries(self, list_name: str) -> list[dict]:
        _known(list_name)
        return [dict(r) for r in self.db.execute(
            "SELECT e164, reason, added_by, added_at FROM phone_lists WHERE list=? "
            "ORDER BY added_at, e164", (list_name,))]

    def list_audit(self, list_name: str) -> list[dict]:
        _known(list_name)
        return [dict(r) for r in self.db.execute(
            "SELECT e164, action, reason, by, at FROM phone_list_audit WHERE list=? ORDER BY id",
            (list_name,))]

    def listed(self, list_name: str, numbers: list[str]) -> dict[str, str]:
        """Which of these E.164 numbers are on the list, with the reason."""
        return dict(self.db.execute(
            f"SELECT e164, reason FROM phone_lists WHERE list=? AND e164 IN "
            f"({','.join('?' * len(numbers))})", (list_name, *numbers)).fetchall())

    def dnc_add(self, number: str, reason: str, by: str, *, now: float | None = None) -> str:
        return self.list_add("dnc", number, reason, by, now=now)

    def dnc_remove(self, number: str, by: str, reason: str = "", *,
                   now: float | None = None) -> bool:
        return self.list_remove("dnc", number, by, reason, now=now)

    def is_dnc(self, number: str) -> bool:
        try:
            return bool(self.listed("dnc", [normalize_phone(number)]))
        except ValueError:
            return False

    def block_caller(self, number: str, reason: str, by: str, *, now: float | None = None) -> str:
        return self.list_add("blocked", number, reason, by, now=now)

    def is_blocked(self, caller: str | None) -> bool:
        """Answer this inbound caller with busy? (a hidden or garbled number is not blocked)."""
        if not caller:
            return False
        try:
            return bool(self.listed("blocked", [normalize_phone(caller)]))
        except ValueError:
            return False

    def _audit(self, list_name: str, e164: str, action: str, reason: str, by: str,
               now: float) -> None:
        self.db.execute("INSERT INTO phone_list_audit (list, e164, action, reason, by, at) "
                        "VALUES (?,?,?,?,?,?)", (list_name, e164, action, reason, by, now))

    # --- creditor mappings ------------------------------------------------------------------
    def save_mapping(self, creditor: str, mapping: dict[str, str]) -> None:
        """Remember how this creditor's column headers map to fields."""
        with self.tx():
            self.db.execute(
                "INSERT INTO creditor_mappings (creditor, mapping, updated_at) VALUES (?,?,?) "
                "ON CONFLICT (creditor) DO UPDATE SET mapping=excluded.mapping, "
                "updated_at=excluded.updated_at",
                (creditor, json.dumps(mapping, ensure_ascii=False), self.clock.wall()))

    def mapping_for(self, creditor: str) -> dict[str, str] | None:
        row = self.db.execute("SELECT mapping FROM creditor_mappings WHERE creditor=?",
                              (creditor,)).fetchone()
        return json.loads(row[0]) if row else None


def _known(list_name: str) -> None:
    if list_name not in LISTS:
        raise UserError("unknown list {list}; known: {known}", list=list_name,
                        known=", ".join(LISTS))


def _number(list_name: str, number: str) -> str:
    _known(list_name)
    try:
        return normalize_phone(number)
    except ValueError as exc:
        raise UserError("{number} is not a phone number; give it as +79123456789 or "
                        "8 912 345-67-89", number=number) from None
