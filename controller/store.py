"""SQLite storage: campaigns, accounts and phones, attempts, decisions, users. WAL, results fsynced."""
from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

import structlog

from firmware.errors import UserError

log = structlog.get_logger(__name__)

# Versioned migrations: index + 1 is the schema version (PRAGMA user_version).
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE campaigns (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        mode TEXT NOT NULL DEFAULT 'progressive',
        compliance_profile TEXT NOT NULL DEFAULT 'ru-230fz',
        status TEXT NOT NULL DEFAULT 'paused',
        max_attempts INTEGER NOT NULL DEFAULT 3,
        settings TEXT NOT NULL DEFAULT '{}',
        created_at REAL NOT NULL
    );
    CREATE TABLE accounts (
        id INTEGER PRIMARY KEY,
        campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
        account_id TEXT NOT NULL,
        debtor_name TEXT,
        debt_amount REAL,
        currency TEXT,
        dpd INTEGER,
        region TEXT,
        tz TEXT,
        segment TEXT,
        custom TEXT NOT NULL DEFAULT '{}',
        status TEXT NOT NULL DEFAULT 'active',   -- active, dialing, done, held, stopped
        hold_reason TEXT,
        priority INTEGER NOT NULL DEFAULT 0,
        next_due_at REAL NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_outcome TEXT,
        updated_at REAL NOT NULL,
        UNIQUE (campaign_id, account_id)
    );
    CREATE INDEX accounts_due ON accounts (campaign_id, status, priority DESC, next_due_at);
    CREATE TABLE phones (
        id INTEGER PRIMARY KEY,
        account_pk INTEGER NOT NULL REFERENCES accounts(id),
        e164 TEXT NOT NULL,
        kind TEXT NOT NULL DEFAULT 'mobile',
        position INTEGER NOT NULL DEFAULT 0,
        status TEXT NOT NULL DEFAULT 'ok',      -- ok, invalid
        attempts INTEGER NOT NULL DEFAULT 0,
        last_outcome TEXT,
        UNIQUE (account_pk, e164)
    );
    CREATE TABLE attempts (
        id INTEGER PRIMARY KEY,
        call_id TEXT NOT NULL UNIQUE,
        campaign_id INTEGER NOT NULL,
        account_pk INTEGER NOT NULL,
        phone_pk INTEGER NOT NULL,
        number TEXT NOT NULL,
        line TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'dialing',  -- dialing, done, interrupted
        created_at REAL NOT NULL,
        ended_at REAL,
        outcome TEXT,
        q850 INTEGER,
        reason TEXT,
        ring_s REAL,
        talk_s REAL,
        operator TEXT,
        abandoned INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX attempts_campaign ON attempts (campaign_id, outcome);
    CREATE TABLE decisions (
        id INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        campaign_id INTEGER,
        account_pk INTEGER,
        decision TEXT NOT NULL,
        code TEXT NOT NULL,
        detail TEXT
    );
    CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        username TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        role TEXT NOT NULL DEFAULT 'supervisor',
        created_at REAL NOT NULL,
        disabled INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE sessions (
        token TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id),
        csrf TEXT NOT NULL,
        created_at REAL NOT NULL,
        expires_at REAL NOT NULL
    );
    """,
)

# Seconds until the next attempt after an outcome (simulated time is scaled by the caller).
RETRY_DELAY_S = {"busy": 600, "no_answer": 1800, "unreachable": 3600, "congestion": 300,
                 "failed": 900, "rejected": 4 * 3600, "abandoned": 3600}
FINAL_OUTCOMES = ("answered",)


@dataclass(frozen=True, slots=True)
class Lead:
    account_pk: int
    phone_pk: int
    number: str
    account_id: str
    region: str | None = None
    tz: str | None = None


class Store:
    """One SQLite file under the data directory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(str(self.path), isolation_level=None,
                                      check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")  # a recorded result survives a power cut
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.execute("PRAGMA busy_timeout=5000")
        except (sqlite3.Error, OSError) as exc:
            raise UserError(f"{self.path}: cannot open the database: {exc}") from None
        self.db.row_factory = sqlite3.Row
        self._migrate()

    def close(self) -> None:
        self.db.close()

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise UserError(f"{self.path}: database schema v{version} is newer than this "
                            f"dialbox (v{len(MIGRATIONS)}); upgrade dialbox")
        for i in range(version, len(MIGRATIONS)):
            try:
                self.db.executescript(f"BEGIN IMMEDIATE; {MIGRATIONS[i]}; "
                                      f"PRAGMA user_version={i + 1}; COMMIT;")
            except sqlite3.Error as exc:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                raise UserError(f"{self.path}: schema migration to v{i + 1} failed: {exc}") from None
            log.info("schema_migrated", version=i + 1)

    def tx(self):
        """``with store.tx():`` one transaction."""
        return _Tx(self.db)

    # --- campaigns --------------------------------------------------------------------------
    def campaign(self, name: str, *, create: bool = False, mode: str = "progressive",
                 compliance_profile: str = "ru-230fz") -> int:
        row = self.db.execute("SELECT id FROM campaigns WHERE name=?", (name,)).fetchone()
        if row:
            return int(row[0])
        if not create:
            raise UserError(f"no campaign named {name!r}")
        with self.tx():
            cur = self.db.execute(
                "INSERT INTO campaigns (name, mode, compliance_profile, created_at) VALUES (?,?,?,?)",
                (name, mode, compliance_profile, time.time()))
        return int(cur.lastrowid)

    def campaigns(self) -> list[sqlite3.Row]:
        return self.db.execute("SELECT * FROM campaigns ORDER BY id").fetchall()

    def set_campaign_status(self, campaign_id: int, status: str) -> None:
        with self.tx():
            self.db.execute("UPDATE campaigns SET status=? WHERE id=?", (status, campaign_id))

    # --- accounts ---------------------------------------------------------------------------
    def upsert_account(self, campaign_id: int, rec: dict, phones: Iterable[tuple[str, str]]
                       ) -> bool:
        """Insert or update one account by account id; returns True when it was new."""
        now = time.time()
        cur = self.db.execute("SELECT id FROM accounts WHERE campaign_id=? AND account_id=?",
                              (campaign_id, rec["account_id"]))
        row = cur.fetchone()
        fields = ("debtor_name", "debt_amount", "currency", "dpd", "region", "tz", "segment")
        values = [rec.get(f) for f in fields]
        custom = json.dumps(rec.get("custom") or {}, ensure_ascii=False)
        if row:
            pk = int(row[0])
            self.db.execute(
                f"UPDATE accounts SET {', '.join(f + '=?' for f in fields)}, custom=?, "
                "updated_at=? WHERE id=?", (*values, custom, now, pk))
            new = False
        else:
            cur = self.db.execute(
                f"INSERT INTO accounts (campaign_id, account_id, {', '.join(fields)}, custom, "
                f"updated_at) VALUES (?, ?, {', '.join('?' * len(fields))}, ?, ?)",
                (campaign_id, rec["account_id"], *values, custom, now))
            pk = int(cur.lastrowid)
            new = True
        for pos, (e164, kind) in enumerate(phones):
            self.db.execute(
                "INSERT INTO phones (account_pk, e164, kind, position) VALUES (?,?,?,?) "
                "ON CONFLICT (account_pk, e164) DO UPDATE SET kind=excluded.kind, "
                "position=excluded.position", (pk, e164, kind, pos))
        return new

    def next_lead(self, campaign_id: int, now: float) -> Lead | None:
        """The highest-priority account due now, with its first phone still worth dialing."""
        row = self.db.execute(
            "SELECT a.id, a.account_id, a.region, a.tz, p.id AS phone_pk, p.e164 FROM accounts a "
            "JOIN phones p ON p.account_pk = a.id AND p.status = 'ok' "
            "WHERE a.campaign_id=? AND a.status='active' AND a.next_due_at <= ? "
            "ORDER BY a.priority DESC, a.next_due_at, a.id, p.attempts, p.position LIMIT 1",
            (campaign_id, now)).fetchone()
        if row is None:
            return None
        return Lead(int(row["id"]), int(row["phone_pk"]), row["e164"], row["account_id"],
                    row["region"], row["tz"])

    def contacts(self, debtor_id: str, kind: str, since: datetime, until: datetime
                 ) -> list[datetime]:
        """The compliance engine's ContactHistory: a debtor's contacts across campaigns."""
        if kind == "sms":
            return []  # no SMS are sent by this build yet
        sql = ("SELECT a.created_at FROM attempts a JOIN accounts acc ON acc.id = a.account_pk "
               "WHERE acc.account_id = ? AND a.created_at >= ? AND a.created_at < ? "
               "AND a.state != 'line_fault'")
        if kind == "conversation":
            sql += " AND a.outcome = 'answered' AND a.abandoned = 0 AND a.talk_s > 0"
        rows = self.db.execute(sql + " ORDER BY a.created_at",
                               (debtor_id, since.timestamp(), until.timestamp())).fetchall()
        return [datetime.fromtimestamp(r[0], timezone.utc) for r in rows]

    def set_compliance(self, campaign_id: int, profile: str) -> None:
        with self.tx():
            self.db.execute("UPDATE campaigns SET compliance_profile=? WHERE id=?",
                            (profile, campaign_id))

    def hold(self, account_pk: int, code: str, detail: str, *, campaign_id: int | None,
             until: float | None = None) -> None:
        """Record a decision not to dial, with its reason; hold the account until ``until``."""
        with self.tx():
            self.db.execute("INSERT INTO decisions (at, campaign_id, account_pk, decision, code, "
                            "detail) VALUES (?,?,?,?,?,?)",
                            (time.time(), campaign_id, account_pk, "skip", code, detail))
            if until is None:
                self.db.execute("UPDATE accounts SET status='held', hold_reason=?, updated_at=? "
                                "WHERE id=?", (f"{code}: {detail}", time.time(), account_pk))
            else:
                self.db.execute("UPDATE accounts SET next_due_at=?, hold_reason=?, updated_at=? "
                                "WHERE id=?", (until, f"{code}: {detail}", time.time(),
                                               account_pk))

    # --- attempts ---------------------------------------------------------------------------
    def begin_attempt(self, campaign_id: int, lead: Lead, line: str, call_id: str,
                      operator: str | None) -> None:
        """Record the attempt before the call is placed: a power cut never redials it."""
        with self.tx():
            self.db.execute(
                "INSERT INTO attempts (call_id, campaign_id, account_pk, phone_pk, number, line, "
                "created_at, operator) VALUES (?,?,?,?,?,?,?,?)",
                (call_id, campaign_id, lead.account_pk, lead.phone_pk, lead.number, line,
                 time.time(), operator))
            self.db.execute("UPDATE accounts SET status='dialing', hold_reason=NULL, updated_at=? "
                            "WHERE id=?", (time.time(), lead.account_pk))

    def finish_attempt(self, call_id: str, *, outcome: str, q850: int | None, reason: str,
                       ring_s: float, talk_s: float, abandoned: bool, retry_scale: float = 1.0
                       ) -> None:
        """Write the result (fsynced) and schedule the account's next attempt."""
        now = time.time()
        with self.tx():
            row = self.db.execute(
                "SELECT a.account_pk, a.phone_pk, c.max_attempts, acc.attempts "
                "FROM attempts a JOIN campaigns c ON c.id = a.campaign_id "
                "JOIN accounts acc ON acc.id = a.account_pk WHERE a.call_id=? AND a.state='dialing'",
                (call_id,)).fetchone()
            if row is None:
                return
            self.db.execute(
                "UPDATE attempts SET state='done', ended_at=?, outcome=?, q850=?, reason=?, "
                "ring_s=?, talk_s=?, abandoned=? WHERE call_id=?",
                (now, outcome, q850, reason, ring_s, talk_s, int(abandoned), call_id))
            self.db.execute("UPDATE phones SET attempts=attempts+1, last_outcome=?, "
                            "status=CASE WHEN ?='invalid_number' THEN 'invalid' ELSE status END "
                            "WHERE id=?", (outcome, outcome, row["phone_pk"]))
            attempts = row["attempts"] + 1
            key = "abandoned" if abandoned else outcome
            if outcome == "answered" and not abandoned:
                status, due = "done", now
            elif attempts >= row["max_attempts"]:
                status, due = "done", now
            else:
                status = "active"
                due = now + RETRY_DELAY_S.get(key, 900) * retry_scale
                if outcome == "invalid_number":
                    due = now  # try the next phone at once
            self.db.execute(
                "UPDATE accounts SET status=?, next_due_at=?, attempts=?, last_outcome=?, "
                "updated_at=? WHERE id=?",
                (status, due, attempts, key, now, row["account_pk"]))
            if status == "active":
                left = self.db.execute("SELECT COUNT(*) FROM phones WHERE account_pk=? AND "
                                       "status='ok'", (row["account_pk"],)).fetchone()[0]
                if left == 0:
                    self.db.execute("UPDATE accounts SET status='done', hold_reason=? WHERE id=?",
                                    ("no valid phone left", row["account_pk"]))

    def requeue_attempt(self, call_id: str, reason: str) -> None:
        """Our own line failed the call: not an attempt on the debtor; he is due again now."""
        now = time.time()
        with self.tx():
            row = self.db.execute("SELECT account_pk FROM attempts WHERE call_id=? AND "
                                  "state='dialing'", (call_id,)).fetchone()
            if row is None:
                return
            self.db.execute("UPDATE attempts SET state='line_fault', ended_at=?, outcome='failed', "
                            "reason=? WHERE call_id=?", (now, reason, call_id))
            self.db.execute("UPDATE accounts SET status='active', updated_at=? WHERE id=? AND "
                            "status='dialing'", (now, row[0]))

    def recover_interrupted(self, retry_after_s: float = 900) -> int:
        """After a crash or power cut: close attempts left open; never redial them at once."""
        now = time.time()
        with self.tx():
            rows = self.db.execute("SELECT account_pk FROM attempts WHERE state='dialing'"
                                   ).fetchall()
            self.db.execute("UPDATE attempts SET state='interrupted', ended_at=?, "
                            "reason='interrupted by restart' WHERE state='dialing'", (now,))
            for r in rows:
                self.db.execute("UPDATE accounts SET status='active', next_due_at=?, "
                                "attempts=attempts+1 WHERE id=? AND status='dialing'",
                                (now + retry_after_s, r[0]))
        return len(rows)

    def counters(self, campaign_id: int) -> dict:
        rows = self.db.execute(
            "SELECT outcome, abandoned, state, COUNT(*) FROM attempts WHERE campaign_id=? "
            "AND state != 'line_fault' GROUP BY outcome, abandoned, state",
            (campaign_id,)).fetchall()
        c = {"attempts": 0, "answered": 0, "busy": 0, "no_answer": 0, "failed": 0,
             "abandoned": 0, "in_progress": 0}
        for outcome, abandoned, state, n in rows:
            c["attempts"] += n
            if state == "dialing":
                c["in_progress"] += n
            elif outcome == "answered":
                c["answered"] += n
                c["abandoned"] += n if abandoned else 0
            elif outcome in ("busy", "no_answer"):
                c[outcome] += n
            else:
                c["failed"] += n
        left = self.db.execute("SELECT COUNT(*) FROM accounts WHERE campaign_id=? AND status IN "
                               "('active','dialing')", (campaign_id,)).fetchone()[0]
        c["leads_left"] = left
        c["line_faults"] = self.db.execute(
            "SELECT COUNT(*) FROM attempts WHERE campaign_id=? AND state='line_fault'",
            (campaign_id,)).fetchone()[0]
        return c

    def attempts(self, campaign_id: int | None = None) -> list[sqlite3.Row]:
        if campaign_id is None:
            return self.db.execute("SELECT * FROM attempts ORDER BY id").fetchall()
        return self.db.execute("SELECT * FROM attempts WHERE campaign_id=? ORDER BY id",
                               (campaign_id,)).fetchall()


class _Tx:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, *_):
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")
        return False
