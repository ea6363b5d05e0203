"""Bulk writes of accounts and phones (imports, the API), and the search indexes they feed."""
from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING, Iterable

from controller.persons import person_key
from controller.segments import assign

if TYPE_CHECKING:
    from controller.store import Store

# Account fields written by imports, in the order of the bulk statements.
ACCOUNT_FIELDS = ("debtor_name", "debt_amount", "currency", "dpd", "due_date", "region", "tz",
                  "creditor", "product", "birth_date", "person_key", "segment", "priority")
IMPORT_CACHE_KIB = -131072  # SQLite page cache during a bulk import: 128 MiB


class AccountWriter:
    """Batched upserts of accounts and phones for imports, a short transaction per batch.

    Inside a caller's transaction the batches join it (all or nothing); alone, each batch
    commits, so a long import never holds the write lock for long.
    """

    BATCH = 20_000
    _VALUES_AT = {"ins": 3, "upd": 0}  # where the ACCOUNT_FIELDS values start in a queued row

    def __init__(self, store: Store, campaign_id: int, *, only: str | None = None,
                 now: float | None = None) -> None:
        self.store, self.db, self.campaign_id = store, store.db, campaign_id
        self.now = store.clock.wall() if now is None else now
        if only is None:
            self.existing = dict(self.db.execute(
                "SELECT account_id, id FROM accounts WHERE campaign_id=?", (campaign_id,)))
        else:
            self.existing = dict(self.db.execute(
                "SELECT account_id, id FROM accounts WHERE campaign_id=? AND account_id=?",
                (campaign_id, only)))
        self.next_pk = (self.db.execute("SELECT MAX(id) FROM accounts").fetchone()[0] or 0) + 1
        self._cache = None
        if only is None:  # a bulk import: its index pages stay in memory
            self._cache = self.db.execute("PRAGMA cache_size").fetchone()[0]
            self.db.execute(f"PRAGMA cache_size={IMPORT_CACHE_KIB}")
        self.seen: set[str] = set()
        self.segments = store.segments(campaign_id)
        self._ins: list[list] = []
        self._upd: list[list] = []
        self._phones: list[list] = []
        self._queued: dict[str, list] = {}  # account id -> [kind, row, next phone position]
        self._dups: set[int] = set()  # accounts to put in their segment again at the end
        self.adopted = 0  # queued as new, written meanwhile by another import: updated instead
        # Segments by last outcome need the account's history, which a file row does not have.
        self._by_outcome = any("last_outcome" in seg.rules for seg in self.segments)

    def add(self, rec: dict, phones: Iterable[tuple[str, str]]) -> str:
        """Queue one account: 'new', 'updated' (was in the database), 'duplicate' (in this run)."""
        aid = rec["account_id"]
        phones = list(phones)
        rec["person_key"] = person_key(rec.get("debtor_name"), rec.get("birth_date"),
                                       phones[0][0] if phones else None, aid)
        if rec.get("segment") is None:
            seg = assign(self.segments, rec)
            rec["segment"], rec["priority"] = (seg.name, seg.strategy.priority) if seg \
                else (None, 0)
        values = (*map(rec.get, ACCOUNT_FIELDS[:-1]), rec.get("priority") or 0)
        custom = json.dumps(rec["custom"], ensure_ascii=False) if rec.get("custom") else "{}"
        pk = self.existing.get(aid)
        if aid in self.seen:
            kind = "duplicate"
            queued = self._queued.get(aid)
            if queued is not None:
                base = self._merge(queued, values, rec.get("custom"))
            else:  # the first row is written already: merge in the database
                base = self._merge_written(pk, values, custom)
        elif pk is None:
            pk = self.next_pk
            self.next_pk += 1
            self.existing[aid] = pk
            row = [pk, self.campaign_id, aid, *values, custom, self.now]
            self._ins.append(row)
            self._queued[aid] = ["ins", row, 0]
            kind, base = "new", 0
        else:
            row = [*values, custom, self.now, pk]
            self._upd.append(row)
            self._queued[aid] = ["upd", row, 0]
            kind, base = "updated", 0
            if self._by_outcome:
                self._dups.add(pk)
        self.seen.add(aid)
        pos = base
        for pos, (e164, ptype) in enumerate(phones, base):
            self._phones.append([pk, e164, ptype, pos])
        if aid in self._queued:
            self._queued[aid][2] = pos + 1
        if len(self._ins) + len(self._upd) >= self.BATCH:
            with self.store.tx():
                self._flush()
        return kind

    def finish(self) -> None:
        """Write what is queued; put merged duplicates in the segment of their merged fields."""
        with self.store.tx():
            self._flush()
            if self._dups:
                self.store.reassign_segments(self.campaign_id, self._dups)
            index_new_rows(self.db)
        if self._cache is not None:
            self.db.execute(f"PRAGMA cache_size={int(self._cache)}")

    def _merge(self, queued: list, values: tuple, custom: dict | None) -> int:
        """A repeated account id still queued: later non-empty values win, phones add up."""
        kind, row, next_pos = queued
        at = self._VALUES_AT[kind]
        n = len(ACCOUNT_FIELDS) - 2  # segment and priority follow from the merged fields
        for i, v in enumerate(_keep_person(values)[:n]):
            if v is not None:
                row[at + i] = v
        if custom:
            row[at + len(ACCOUNT_FIELDS)] = json.dumps(
                json.loads(row[at + len(ACCOUNT_FIELDS)]) | custom, ensure_ascii=False)
        seg = assign(self.segments, dict(zip(ACCOUNT_FIELDS[:n], row[at:at + n])))
        row[at + n], row[at + n + 1] = (seg.name, seg.strategy.priority) if seg else (None, 0)
        return next_pos

    def _merge_written(self, pk: int, values: tuple, custom: str) -> int:
        sets = ", ".join(f"{f}=COALESCE(?, {f})" for f in ACCOUNT_FIELDS)
        with self.store.tx():
            self.db.execute(f"UPDATE accounts SET {sets}, custom=json_patch(custom, ?), "
                            "updated_at=? WHERE id=?",
                            (*_keep_person(values)[:-2], None, None, custom, self.now, pk))
            self._dups.add(pk)
            return self.db.execute("SELECT COALESCE(MAX(position) + 1, 0) FROM phones "
                                   "WHERE account_pk=?", (pk,)).fetchone()[0]

    def _adopt_written(self) -> None:
        """Accounts queued as new that another import (on its own connection, after this one
        read the campaign) has written since: they are updated in place with this import's
        values, never inserted twice (the unique account id would fail the whole batch). The
        batch holds the write lock (BEGIN IMMEDIATE), so nothing is written between this look
        and the insert."""
        written = dict(self.db.execute(
            "SELECT a.account_id, a.id FROM json_each(?) j JOIN accounts a "
            "ON a.campaign_id = ? AND a.account_id = j.value",
            (json.dumps([row[2] for row in self._ins]), self.campaign_id)))
        if not written:
            return
        moved: dict[int, int] = {}
        new = []
        for row in self._ins:
            pk = written.get(row[2])
            if pk is None:
                new.append(row)
                continue
            moved[row[0]] = self.existing[row[2]] = pk
            self._upd.append([*row[3:], pk])  # the fields, custom, updated_at: as an update
            self.adopted += 1
            if self._by_outcome:
                self._dups.add(pk)
        self._ins = new
        for ph in self._phones:
            ph[0] = moved.get(ph[0], ph[0])

    def _flush(self) -> None:
        if self._ins:
            self._adopt_written()
        if self._ins:
            top = self.db.execute("SELECT MAX(id) FROM accounts").fetchone()[0] or 0
            if top >= self._ins[0][0]:  # another writer took these ids meanwhile: renumber
                shift = top + 1 - self._ins[0][0]
                moved = {}
                for row in self._ins:
                    moved[row[0]] = row[0] + shift
                    self.existing[row[2]] = row[0] = row[0] + shift
                for ph in self._phones:
                    ph[0] = moved.get(ph[0], ph[0])
                self.next_pk += shift
            self.db.executemany(_INSERT_ACCOUNT, self._ins)
        if self._upd:
            self.db.executemany(_UPDATE_ACCOUNT, self._upd)
        if self._phones:
            self.db.executemany(
                "INSERT INTO phones (account_pk, e164, kind, position) VALUES (?,?,?,?) "
                "ON CONFLICT (account_pk, e164) DO UPDATE SET kind=excluded.kind, "
                "position=excluded.position", self._phones)
        self._ins, self._upd, self._phones = [], [], []
        self._queued.clear()


def _json(value: dict | None) -> str | None:
    # compact: one of these is kept with every attempt and decision
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True,
                                                 separators=(",", ":"))


_PERSON_AT, _BORN_AT = ACCOUNT_FIELDS.index("person_key"), ACCOUNT_FIELDS.index("birth_date")


def _keep_person(values: tuple) -> tuple:
    """A repeated row changes the person only when it gives a birth date (else its first phone
    could differ from the first row's and split one person in two)."""
    if values[_BORN_AT]:
        return values
    return (*values[:_PERSON_AT], None, *values[_PERSON_AT + 1:])


_INSERT_ACCOUNT = (f"INSERT INTO accounts (id, campaign_id, account_id, "
                   f"{', '.join(ACCOUNT_FIELDS)}, custom, updated_at) "
                   f"VALUES ({', '.join('?' * (len(ACCOUNT_FIELDS) + 5))})")
_UPDATE_ACCOUNT = (f"UPDATE accounts SET {', '.join(f + '=?' for f in ACCOUNT_FIELDS)}, custom=?, "
                   "updated_at=? WHERE id=?")


def index_new_rows(db: sqlite3.Connection) -> None:
    """Put accounts and phones written since the last call into the search indexes, in bulk."""
    for table, fts, cols in (("accounts", "accounts_fts", "debtor_name, account_id"),
                             ("phones", "phones_fts", "e164")):
        last = db.execute("SELECT last_id FROM search_watermark WHERE name=?", (table,)
                          ).fetchone()[0]
        top = db.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}").fetchone()[0]
        if top > last:
            db.execute(f"INSERT INTO {fts} (rowid, {cols}) SELECT id, {cols} FROM {table} "
                       f"WHERE id > ? AND id <= ?", (last, top))
            db.execute("UPDATE search_watermark SET last_id=? WHERE name=?", (top, table))
