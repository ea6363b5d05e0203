"""SQLite storage: campaigns, segments, accounts and phones, attempts, decisions. WAL, fsynced."""
from __future__ import annotations

import asyncio
import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime, time as dtime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterable, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog

from controller.persons import person_key
from controller.segments import DEFAULT_RETRY_S, DEFAULT_SEGMENTS, Segment, Strategy, assign
from controller.store_campaigns import CampaignsMixin
from controller.store_lists import ListsMixin
from controller.store_outcomes import CALLBACK_GRACE_S, OutcomesMixin
from controller.store_writer import StoreReader, StoreWriter, log_failure
from firmware.clock import Clock
from firmware.errors import UserError

log = structlog.get_logger(__name__)
T = TypeVar("T")

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
    # v2: segments and strategies, creditor mappings, flags, callbacks, DNC and block lists,
    # dispositions, promises, payments; the due index covers the segment for backlog counts.
    """
    ALTER TABLE accounts ADD COLUMN creditor TEXT;
    ALTER TABLE accounts ADD COLUMN product TEXT;
    ALTER TABLE accounts ADD COLUMN due_date TEXT;
    ALTER TABLE accounts ADD COLUMN day_key TEXT;
    ALTER TABLE accounts ADD COLUMN day_attempts INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE attempts ADD COLUMN segment TEXT;
    ALTER TABLE attempts ADD COLUMN wrap_s REAL;
    DROP INDEX accounts_due;
    CREATE INDEX accounts_due ON accounts (campaign_id, status, priority DESC, next_due_at,
                                           segment);
    CREATE INDEX accounts_account_id ON accounts (account_id);
    CREATE INDEX phones_e164 ON phones (e164);
    CREATE INDEX attempts_account ON attempts (account_pk, created_at);
    CREATE INDEX attempts_created ON attempts (campaign_id, created_at);
    CREATE TABLE segments (
        id INTEGER PRIMARY KEY,
        campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
        name TEXT NOT NULL,
        position INTEGER NOT NULL,
        rules TEXT NOT NULL DEFAULT '{}',
        strategy TEXT NOT NULL DEFAULT '{}',
        UNIQUE (campaign_id, name)
    );
    CREATE TABLE creditor_mappings (
        creditor TEXT PRIMARY KEY,
        mapping TEXT NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE flags (
        id INTEGER PRIMARY KEY,
        account_pk INTEGER NOT NULL REFERENCES accounts(id),
        kind TEXT NOT NULL,                     -- complaint, dispute
        text TEXT,
        prev_status TEXT NOT NULL,
        flagged_by TEXT,
        flagged_at REAL NOT NULL,
        cleared_by TEXT,
        cleared_at REAL
    );
    CREATE INDEX flags_account ON flags (account_pk, cleared_at);
    CREATE TABLE callbacks (
        id INTEGER PRIMARY KEY,
        campaign_id INTEGER NOT NULL,
        account_pk INTEGER NOT NULL REFERENCES accounts(id),
        at REAL NOT NULL,
        operator TEXT,
        state TEXT NOT NULL DEFAULT 'pending',  -- pending, fired, cancelled
        call_id TEXT,
        created_at REAL NOT NULL
    );
    CREATE INDEX callbacks_due ON callbacks (campaign_id, state, at);
    CREATE INDEX callbacks_account ON callbacks (account_pk, state);
    CREATE TABLE phone_lists (
        list TEXT NOT NULL,                     -- dnc: never dial; blocked: inbound gets busy
        e164 TEXT NOT NULL,
        reason TEXT NOT NULL,
        added_by TEXT NOT NULL,
        added_at REAL NOT NULL,
        PRIMARY KEY (list, e164)
    ) WITHOUT ROWID;
    CREATE TABLE phone_list_audit (
        id INTEGER PRIMARY KEY,
        list TEXT NOT NULL,
        e164 TEXT NOT NULL,
        action TEXT NOT NULL,                   -- add, remove
        reason TEXT,
        by TEXT NOT NULL,
        at REAL NOT NULL
    );
    CREATE TABLE dispositions (
        id INTEGER PRIMARY KEY,
        call_id TEXT NOT NULL,
        campaign_id INTEGER NOT NULL,
        account_pk INTEGER NOT NULL,
        kind TEXT NOT NULL,
        details TEXT NOT NULL DEFAULT '{}',
        operator TEXT,
        at REAL NOT NULL
    );
    CREATE INDEX dispositions_call ON dispositions (call_id);
    CREATE TABLE promises (
        id INTEGER PRIMARY KEY,
        campaign_id INTEGER NOT NULL,
        account_pk INTEGER NOT NULL REFERENCES accounts(id),
        call_id TEXT,
        operator TEXT,
        amount REAL NOT NULL,
        due_date TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'open',     -- open, kept, broken
        paid REAL NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        closed_at REAL
    );
    CREATE INDEX promises_state ON promises (state, account_pk);
    CREATE TABLE payments (
        id INTEGER PRIMARY KEY,
        account_id TEXT NOT NULL,
        amount REAL NOT NULL,
        paid_on TEXT NOT NULL,
        ref TEXT NOT NULL DEFAULT '',
        imported_at REAL NOT NULL,
        UNIQUE (account_id, paid_on, amount, ref)
    );
    """,
    """
    CREATE TABLE sms_messages (
        id INTEGER PRIMARY KEY,
        sms_id TEXT NOT NULL UNIQUE,
        key TEXT NOT NULL,                      -- rule and occasion: decided once
        campaign_id INTEGER NOT NULL,
        account_pk INTEGER NOT NULL,
        rule TEXT NOT NULL,
        number TEXT,
        line TEXT,
        text TEXT,
        state TEXT NOT NULL,                    -- skipped, queued, sent, delivered, failed
        detail TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        UNIQUE (campaign_id, key)
    );
    CREATE INDEX sms_account ON sms_messages (account_pk, created_at);
    CREATE INDEX sms_line_day ON sms_messages (line, created_at);
    """,
    """
    CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        who TEXT NOT NULL,
        source TEXT NOT NULL DEFAULT '',
        object TEXT NOT NULL,
        key TEXT NOT NULL DEFAULT '',
        action TEXT NOT NULL,
        before TEXT,
        after TEXT
    );
    CREATE INDEX audit_object ON audit_log (object, key);
    CREATE INDEX audit_at ON audit_log (at);
    CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    """,
    # sessions: idle expiry, where from (for the admin's list and revocation)
    """
    ALTER TABLE sessions ADD COLUMN last_seen REAL NOT NULL DEFAULT 0;
    ALTER TABLE sessions ADD COLUMN remote TEXT;
    ALTER TABLE sessions ADD COLUMN agent TEXT;
    CREATE INDEX sessions_user ON sessions (user_id);
    """,
    # integrations: scoped API tokens; change sequences that CRM cursors follow
    """
    CREATE TABLE api_tokens (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        token_hash TEXT NOT NULL UNIQUE,
        scopes TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_at REAL NOT NULL,
        last_used_at REAL,
        revoked_at REAL
    );
    ALTER TABLE attempts ADD COLUMN result_seq INTEGER;
    CREATE UNIQUE INDEX attempts_result_seq ON attempts (result_seq);
    CREATE TRIGGER attempts_result_seq_on_finish AFTER UPDATE OF state ON attempts
        WHEN OLD.state = 'dialing' AND NEW.state != 'dialing'
        BEGIN UPDATE attempts SET result_seq =
            (SELECT COALESCE(MAX(result_seq), 0) + 1 FROM attempts) WHERE id = NEW.id; END;
    CREATE TRIGGER attempts_result_seq_on_disposition AFTER INSERT ON dispositions
        BEGIN UPDATE attempts SET result_seq =
            (SELECT COALESCE(MAX(result_seq), 0) + 1 FROM attempts)
            WHERE call_id = NEW.call_id AND state != 'dialing'; END;
    ALTER TABLE promises ADD COLUMN change_seq INTEGER;
    CREATE UNIQUE INDEX promises_change_seq ON promises (change_seq);
    CREATE TRIGGER promises_seq_on_insert AFTER INSERT ON promises
        BEGIN UPDATE promises SET change_seq =
            (SELECT COALESCE(MAX(change_seq), 0) + 1 FROM promises) WHERE id = NEW.id; END;
    CREATE TRIGGER promises_seq_on_update AFTER UPDATE OF state, paid ON promises
        BEGIN UPDATE promises SET change_seq =
            (SELECT COALESCE(MAX(change_seq), 0) + 1 FROM promises) WHERE id = NEW.id; END;
    """,
    # debtor search: names and account numbers by word prefix, phones by any 3+ digits
    """
    CREATE VIRTUAL TABLE accounts_fts USING fts5(debtor_name, account_id, content='accounts',
        content_rowid='id', tokenize="unicode61 remove_diacritics 0 tokenchars '-_/.'");
    INSERT INTO accounts_fts (accounts_fts) VALUES ('rebuild');
    CREATE TRIGGER accounts_fts_insert AFTER INSERT ON accounts BEGIN
        INSERT INTO accounts_fts (rowid, debtor_name, account_id)
        VALUES (NEW.id, NEW.debtor_name, NEW.account_id); END;
    CREATE TRIGGER accounts_fts_delete AFTER DELETE ON accounts BEGIN
        INSERT INTO accounts_fts (accounts_fts, rowid, debtor_name, account_id)
        VALUES ('delete', OLD.id, OLD.debtor_name, OLD.account_id); END;
    CREATE TRIGGER accounts_fts_update AFTER UPDATE OF debtor_name, account_id ON accounts BEGIN
        INSERT INTO accounts_fts (accounts_fts, rowid, debtor_name, account_id)
        VALUES ('delete', OLD.id, OLD.debtor_name, OLD.account_id);
        INSERT INTO accounts_fts (rowid, debtor_name, account_id)
        VALUES (NEW.id, NEW.debtor_name, NEW.account_id); END;
    CREATE VIRTUAL TABLE phones_fts USING fts5(e164, content='phones', content_rowid='id',
        tokenize='trigram');
    INSERT INTO phones_fts (phones_fts) VALUES ('rebuild');
    CREATE TRIGGER phones_fts_insert AFTER INSERT ON phones BEGIN
        INSERT INTO phones_fts (rowid, e164) VALUES (NEW.id, NEW.e164); END;
    CREATE TRIGGER phones_fts_delete AFTER DELETE ON phones BEGIN
        INSERT INTO phones_fts (phones_fts, rowid, e164) VALUES ('delete', OLD.id, OLD.e164); END;
    CREATE TRIGGER phones_fts_update AFTER UPDATE OF e164 ON phones BEGIN
        INSERT INTO phones_fts (phones_fts, rowid, e164) VALUES ('delete', OLD.id, OLD.e164);
        INSERT INTO phones_fts (rowid, e164) VALUES (NEW.id, NEW.e164); END;
    """,
    # Call recordings (controller/recordings.py): linked to attempts by call_id.
    """
    CREATE TABLE recordings (
        id INTEGER PRIMARY KEY,
        call_id TEXT NOT NULL UNIQUE,
        line TEXT NOT NULL,
        operator TEXT,
        path TEXT NOT NULL,                     -- relative to the data directory
        started_at REAL NOT NULL,
        duration_s REAL,
        channels INTEGER NOT NULL DEFAULT 2,
        sha256 TEXT,
        bytes INTEGER,
        state TEXT NOT NULL DEFAULT 'recording', -- recording, done, interrupted, failed, purged
        error TEXT,
        finished_at REAL,
        purged_at REAL
    );
    CREATE INDEX recordings_started ON recordings (state, started_at);
    """,
    # search indexes filled in bulk after each write batch (a trigger per row made imports 4x
    # slower); a watermark says up to which row each index is filled
    """
    DROP TRIGGER accounts_fts_insert;
    DROP TRIGGER phones_fts_insert;
    DROP TRIGGER accounts_fts_update;
    CREATE TRIGGER accounts_fts_update AFTER UPDATE OF debtor_name, account_id ON accounts
        WHEN OLD.debtor_name IS NOT NEW.debtor_name OR OLD.account_id IS NOT NEW.account_id
        BEGIN
        INSERT INTO accounts_fts (accounts_fts, rowid, debtor_name, account_id)
        VALUES ('delete', OLD.id, OLD.debtor_name, OLD.account_id);
        INSERT INTO accounts_fts (rowid, debtor_name, account_id)
        VALUES (NEW.id, NEW.debtor_name, NEW.account_id); END;
    CREATE TABLE search_watermark (name TEXT PRIMARY KEY, last_id INTEGER NOT NULL);
    INSERT INTO search_watermark VALUES ('accounts', (SELECT COALESCE(MAX(id), 0) FROM accounts)),
                                        ('phones', (SELECT COALESCE(MAX(id), 0) FROM phones));
    """,
    # the operator's free-text note on a call, kept in the debtor's history
    """
    ALTER TABLE attempts ADD COLUMN note TEXT;
    ALTER TABLE segments ADD COLUMN script TEXT NOT NULL DEFAULT '';
    """,
    # the person behind accounts (limits per person across accounts, creditors and
    # campaigns; keys of older accounts are filled in at open) and contacts per phone number.
    """
    ALTER TABLE accounts ADD COLUMN birth_date TEXT;
    ALTER TABLE accounts ADD COLUMN person_key TEXT;
    CREATE INDEX accounts_person ON accounts (person_key);
    CREATE INDEX attempts_number ON attempts (number, created_at);
    CREATE INDEX sms_number ON sms_messages (number, created_at);
    """,
    # refusals of interaction and withdrawn third-party consent, with their exceptions.
    """
    CREATE TABLE refusals (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,                     -- debtor, third_party
        person_key TEXT,                        -- the debtor who refused
        account_pk INTEGER,                     -- the account it was recorded on
        e164 TEXT,                              -- the third party's number
        channel TEXT NOT NULL,                  -- desk, card, import
        at REAL NOT NULL,                       -- in force from
        note TEXT NOT NULL DEFAULT '',
        recorded_by TEXT NOT NULL,
        recorded_at REAL NOT NULL
    );
    CREATE INDEX refusals_person ON refusals (person_key);
    CREATE INDEX refusals_number ON refusals (e164);
    CREATE TABLE refusal_exceptions (
        id INTEGER PRIMARY KEY,
        refusal_id INTEGER NOT NULL REFERENCES refusals(id),
        kind TEXT NOT NULL,                     -- enforcement_document, representative
        reference TEXT NOT NULL,                -- document number and date; representative
        e164 TEXT,                              -- the representative's number
        starts_at REAL NOT NULL,
        ends_at REAL,                           -- an enforcement document: two months on
        recorded_by TEXT NOT NULL,
        recorded_at REAL NOT NULL
    );
    CREATE INDEX refusal_exceptions_refusal ON refusal_exceptions (refusal_id);
    """,
    # who sends a campaign's SMS: the creditor's name, a contact phone, templates, length
    """
    CREATE TABLE sms_settings (
        campaign_id INTEGER PRIMARY KEY REFERENCES campaigns(id),
        creditor_name TEXT,
        contact_phone TEXT,
        max_parts INTEGER NOT NULL DEFAULT 3,
        templates TEXT NOT NULL DEFAULT '{}',
        updated_by TEXT NOT NULL,
        updated_at REAL NOT NULL
    );
    """,
    # the evidence of every decision: why this debtor was called, messaged, or not
    """
    ALTER TABLE attempts ADD COLUMN evidence TEXT;
    ALTER TABLE sms_messages ADD COLUMN evidence TEXT;
    ALTER TABLE decisions ADD COLUMN channel TEXT NOT NULL DEFAULT 'voice';
    ALTER TABLE decisions ADD COLUMN evidence TEXT;
    CREATE INDEX decisions_account ON decisions (account_pk, at);
    """,
    # many campaigns at once: creditor, schedule, weight, wrap-up limit, line group, staff
    # (operators and teams), the demo flag; users' teams.
    """
    ALTER TABLE campaigns ADD COLUMN creditor TEXT;
    ALTER TABLE campaigns ADD COLUMN weight INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE campaigns ADD COLUMN schedule TEXT;
    ALTER TABLE campaigns ADD COLUMN wrap_limit_s REAL;
    ALTER TABLE campaigns ADD COLUMN wrap_after TEXT NOT NULL DEFAULT 'ready';
    ALTER TABLE campaigns ADD COLUMN line_group TEXT;
    ALTER TABLE campaigns ADD COLUMN demo INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE campaigns ADD COLUMN updated_at REAL;
    CREATE TABLE campaign_staff (
        campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
        kind TEXT NOT NULL,                     -- operator (a user name or position), team
        name TEXT NOT NULL,
        PRIMARY KEY (campaign_id, kind, name)
    ) WITHOUT ROWID;
    ALTER TABLE users ADD COLUMN team TEXT;
    """,
    # one outcome per call: a second disposition on a call is refused (older rows stay)
    """
    CREATE TRIGGER dispositions_one_per_call BEFORE INSERT ON dispositions
    WHEN EXISTS (SELECT 1 FROM dispositions WHERE call_id = NEW.call_id)
    BEGIN SELECT RAISE(ABORT, 'one outcome per call'); END;
    """,
    # operators' time per state and day (occupancy survives a restart)
    """
    CREATE TABLE operator_time (
        day TEXT NOT NULL,                      -- UTC date the seconds were counted on
        position TEXT NOT NULL,
        state TEXT NOT NULL,                    -- free, reserved, talking, wrap_up, ...
        seconds REAL NOT NULL,
        PRIMARY KEY (position, state, day)
    ) WITHOUT ROWID;
    """,
    # the campaign's pacing target (abandoned share of live answers) is a setting of its own
    """
    ALTER TABLE campaigns ADD COLUMN abandon_target REAL;
    UPDATE campaigns SET abandon_target = json_extract(settings, '$.abandon_target')
        WHERE json_valid(settings) AND json_extract(settings, '$.abandon_target') > 0;
    """,
    # SMS the box receives: kept once (uid), matched to an account by number, a reply that
    # reads like a refusal flagged for a person to decide
    """
    CREATE TABLE sms_inbox (
        id INTEGER PRIMARY KEY,
        uid TEXT UNIQUE,                        -- line, sender, SMSC time stamp, text
        line TEXT NOT NULL,
        sender TEXT NOT NULL,                   -- as the network gave it
        e164 TEXT,
        account_pk INTEGER,                     -- the newest account with that number
        campaign_id INTEGER,
        text TEXT NOT NULL,
        sent_at REAL,                           -- the service centre's time stamp
        received_at REAL NOT NULL,
        stop_word TEXT,                         -- why it is flagged ("стоп"), NULL: not
        decision TEXT,                          -- refusal_recorded, not_a_refusal
        decided_by TEXT,
        decided_at REAL
    );
    CREATE INDEX sms_inbox_account ON sms_inbox (account_pk, received_at);
    CREATE INDEX sms_inbox_received ON sms_inbox (received_at);
    """,
    # the refusal of interaction a person recorded from a received SMS
    """
    ALTER TABLE sms_inbox ADD COLUMN refusal_id INTEGER;
    """,
    # when a call was answered, as it happened (the dashboard counts conversations going on)
    """
    ALTER TABLE attempts ADD COLUMN answered_at REAL;
    """,
    # calls per line today (a SIM's daily cap), an index seek per line: without it every call
    # placed scanned the whole attempts table (66 ms at 500,000 attempts)
    """
    CREATE INDEX attempts_line_day ON attempts (line, created_at, state);
    """,
    # leads held by the law, counted for the dashboard 4 times a second: only the held ones
    """
    CREATE INDEX accounts_held ON accounts (campaign_id, status, next_due_at)
        WHERE hold_reason IS NOT NULL;
    """,
    # SIMs resting from SMS after their operator refused them (controller/sms_pacing.py): a
    # restart does not send on them again before the rest is over
    """
    CREATE TABLE sim_rests (
        line TEXT PRIMARY KEY,
        until_wall REAL NOT NULL,
        reason TEXT NOT NULL,
        times INTEGER NOT NULL                  -- rests in a row (each twice as long)
    ) WITHOUT ROWID;
    """,
)

# Seconds until the next attempt after an outcome (simulated time is scaled by the caller).
RETRY_DELAY_S = {k: v for k, v in DEFAULT_RETRY_S.items()
                 if k in ("busy", "no_answer", "unreachable", "congestion", "failed", "rejected",
                          "abandoned")}
FINAL_OUTCOMES = ("answered",)
DEFAULT_TZ = "Europe/Moscow"  # the local day of an account with no known time zone
# Account fields written by imports, in the order of the bulk statements.
ACCOUNT_FIELDS = ("debtor_name", "debt_amount", "currency", "dpd", "due_date", "region", "tz",
                  "creditor", "product", "birth_date", "person_key", "segment", "priority")
IMPORT_CACHE_KIB = -131072  # SQLite page cache during a bulk import: 128 MiB
# Statuses a disposition or flag can set during a call; finishing the call keeps them.
_STICKY = ("flagged", "promise", "callback")


@dataclass(frozen=True, slots=True)
class Lead:
    account_pk: int
    phone_pk: int
    number: str
    account_id: str
    region: str | None = None
    tz: str | None = None
    segment: str | None = None
    kind: str = "mobile"              # the phone's type
    callback_id: int | None = None    # set when this lead is an operator's callback
    operator: str | None = None       # the operator the callback was promised by
    person_key: str | None = None     # the person (see controller.persons)


class Store(CampaignsMixin, ListsMixin, OutcomesMixin):
    """One SQLite file under the data directory."""

    def __init__(self, path: str | Path, clock: Clock | None = None) -> None:
        self.path = Path(path)
        self.clock = clock or Clock()  # stamps every record: the one clock the box runs on
        self.writer: StoreWriter | None = None  # the box's writer thread, once started
        self.reader: StoreReader | None = None  # and its reader thread
        self.db = self.connect()
        self._segments: dict[int, tuple[Segment, ...]] = {}
        self._zones: dict[str, ZoneInfo] = {}
        self._data_version = -1
        self._migrate()
        self._fill_person_keys()

    def connect(self) -> sqlite3.Connection:
        """A connection to this store's file, set up as every connection of the box is."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")  # a recorded result survives a power cut
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA busy_timeout=5000")
        except (sqlite3.Error, OSError) as exc:
            raise UserError(f"{self.path}: cannot open the database: {exc}") from None
        db.row_factory = sqlite3.Row
        return db

    def start_writer(self) -> StoreWriter:
        """From now on ``run``/``submit`` work happens on a writer thread (the running box)."""
        if self.writer is None:
            self.writer = StoreWriter(self, asyncio.get_running_loop())
            self.reader = StoreReader(self, asyncio.get_running_loop())
        return self.writer

    async def run(self, fn: Callable[..., T], *args, **kw) -> T:
        """``fn(store, ...)`` off the event loop when the writer runs; when this returns, its
        writes are committed. Without a writer (the CLI, unit tests) it runs here and now."""
        if self.writer is None:
            return fn(self, *args, **kw)
        return await self.writer.submit(fn, *args, **kw)

    async def read(self, fn: Callable[..., T], *args, **kw) -> T:
        """``fn(store, ...)`` reading off the event loop (on the reader thread, which sees what
        is committed, not what waits in the writer's queue); here and now without threads."""
        if self.reader is None:
            return fn(self, *args, **kw)
        return await self.reader.call(fn, *args, **kw)

    async def flush(self) -> None:
        """Everything given to the writer so far is committed."""
        if self.writer is not None:
            await self.writer.drain()

    def submit(self, fn: Callable[..., object], *args, **kw) -> None:
        """Write later, in order with all other work given to the writer (here and now when
        there is none); a failure is logged."""
        if self.writer is None:
            fn(self, *args, **kw)
            return
        self.writer.submit(fn, *args, **kw).add_done_callback(log_failure)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()  # what was given to it is written first
            self.writer = None
        if self.reader is not None:
            self.reader.close()
            self.reader = None
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
                raise UserError(f"{self.path}: schema migration to v{i + 1} failed: {exc}"
                                ) from None
            log.info("schema_migrated", version=i + 1)

    def _fill_person_keys(self) -> None:
        """Accounts stored before v5 get their person key (one pass; none left after it)."""
        rows = self.db.execute(
            "SELECT a.id, a.account_id, a.debtor_name, a.birth_date, (SELECT e164 FROM phones p "
            "WHERE p.account_pk=a.id ORDER BY position LIMIT 1) FROM accounts a "
            "WHERE a.person_key IS NULL").fetchall()
        if rows:
            with self.tx():
                self.db.executemany("UPDATE accounts SET person_key=? WHERE id=?", [
                    (person_key(name, born, phone, aid), pk) for pk, aid, name, born, phone in rows])
            log.info("person_keys_filled", accounts=len(rows))

    def tx(self):
        """``with store.tx():`` one transaction; inside another one it joins it."""
        return _Tx(self.db, self._segments.clear)

    # --- campaigns --------------------------------------------------------------------------
    def campaign(self, name: str, *, create: bool = False, mode: str = "progressive",
                 compliance_profile: str = "ru-230fz") -> int:
        row = self.db.execute("SELECT id FROM campaigns WHERE name=?", (name,)).fetchone()
        if row:
            return int(row[0])
        if not create:
            raise UserError("no campaign named {name}", name=name)
        with self.tx():
            cur = self.db.execute(
                "INSERT INTO campaigns (name, mode, compliance_profile, status, created_at) "
                "VALUES (?,?,?,'draft',?)",
                (name, mode, compliance_profile, self.clock.wall()))
            cid = int(cur.lastrowid)
            self._write_segments(cid, DEFAULT_SEGMENTS)
        return cid

    def campaign_settings(self, campaign_id: int) -> dict:
        """The campaign's own settings (e.g. ``abandon_target``), {} when none."""
        row = self.db.execute("SELECT settings FROM campaigns WHERE id=?", (campaign_id,)
                              ).fetchone()
        return json.loads(row[0] or "{}") if row else {}

    def campaigns(self) -> list[sqlite3.Row]:
        return self.db.execute("SELECT * FROM campaigns ORDER BY id").fetchall()

    def set_campaign_status(self, campaign_id: int, status: str) -> None:
        with self.tx():
            self.db.execute("UPDATE campaigns SET status=? WHERE id=?", (status, campaign_id))

    # --- segments and strategies ------------------------------------------------------------
    def segments(self, campaign_id: int) -> tuple[Segment, ...]:
        """The campaign's segments in matching order (the DPD buckets unless set otherwise)."""
        version = self.db.execute("PRAGMA data_version").fetchone()[0]
        if version != self._data_version:  # another process committed: it may have set them
            self._segments.clear()
            self._data_version = version
        cached = self._segments.get(campaign_id)
        if cached is not None:
            return cached
        rows = self.db.execute("SELECT name, rules, strategy, script FROM segments WHERE "
                               "campaign_id=? ORDER BY position", (campaign_id,)).fetchall()
        if not rows:  # a campaign made before segments existed
            with self.tx():
                self._write_segments(campaign_id, DEFAULT_SEGMENTS)
            return self._segments[campaign_id]
        segs = tuple(Segment.from_json({"name": r[0], "rules": json.loads(r[1]),
                                        "strategy": json.loads(r[2]), "script": r[3]})
                     for r in rows)
        self._segments[campaign_id] = segs
        return segs

    def set_segments(self, campaign_id: int, segments: Iterable[Segment | dict]) -> int:
        """Replace the campaign's segments and re-assign every account; returns how many moved."""
        segs = tuple(s if isinstance(s, Segment) else Segment.from_json(s) for s in segments)
        names = [s.name for s in segs]
        if not segs or len(set(names)) != len(names):
            raise UserError("segments {names}: give at least one, each name once",
                            names=", ".join(names))
        with self.tx():
            self.db.execute("DELETE FROM segments WHERE campaign_id=?", (campaign_id,))
            self._write_segments(campaign_id, segs)
            return self.reassign_segments(campaign_id)

    def set_strategy(self, campaign_id: int, segment: str, strategy: Strategy) -> None:
        """Replace one segment's strategy (no account changes segment)."""
        with self.tx():
            self.db.execute("UPDATE segments SET strategy=? WHERE campaign_id=? AND name=?",
                            (json.dumps(strategy.to_json(), ensure_ascii=False), campaign_id,
                             segment))
        self._segments.pop(campaign_id, None)

    def reassign_segments(self, campaign_id: int, account_pks: Iterable[int] | None = None) -> int:
        """Put accounts in the segment their fields match now (all, or the ones given)."""
        segs = self.segments(campaign_id)
        sql = ("SELECT id, dpd, debt_amount, product, region, creditor, last_outcome, segment, "
               "priority FROM accounts WHERE campaign_id=?")
        if account_pks is None:
            batches = [self.db.execute(sql, (campaign_id,))]
        else:
            pks = list(account_pks)
            batches = (self.db.execute(sql + f" AND id IN ({','.join('?' * len(chunk))})",
                                       (campaign_id, *chunk))
                       for chunk in (pks[i:i + 500] for i in range(0, len(pks), 500)))
        changes = []
        for rows in batches:
            for r in rows.fetchall():
                seg = assign(segs, dict(r))
                name, prio = (seg.name, seg.strategy.priority) if seg else (None, 0)
                if (name, prio) != (r["segment"], r["priority"]):
                    changes.append((name, prio, r["id"]))
        with self.tx():
            self.db.executemany("UPDATE accounts SET segment=?, priority=? WHERE id=?", changes)
        return len(changes)

    def strategy(self, campaign_id: int, segment: str | None) -> Strategy:
        """The dialing strategy of a segment (the default one for an account in no segment)."""
        for seg in self.segments(campaign_id):
            if seg.name == segment:
                return seg.strategy
        return _DEFAULT_STRATEGY

    def _write_segments(self, campaign_id: int, segs: Iterable[Segment]) -> None:
        segs = tuple(segs)
        self.db.executemany(
            "INSERT INTO segments (campaign_id, name, position, rules, strategy, script) "
            "VALUES (?,?,?,?,?,?)",
            [(campaign_id, s.name, i, json.dumps(s.rules, ensure_ascii=False),
              json.dumps(s.strategy.to_json(), ensure_ascii=False), s.script)
             for i, s in enumerate(segs)])
        self._segments[campaign_id] = segs

    # --- accounts ---------------------------------------------------------------------------
    def upsert_account(self, campaign_id: int, rec: dict, phones: Iterable[tuple[str, str]]
                       ) -> bool:
        """Insert or update one account by account id; returns True when it was new."""
        with self.tx():
            w = AccountWriter(self, campaign_id, only=rec["account_id"])
            new = w.add(dict(rec), phones) == "new"
            w.finish()
        return new

    def next_lead(self, campaign_id: int, now: float, operator: str | None = None
                  ) -> Lead | None:
        """The highest-priority account due now and callable now, with its phone to dial.

        Callbacks come first: the operator's own, then ones promised by nobody, then other
        operators' ones left waiting over CALLBACK_GRACE_S. Accounts with no dialable phone left
        (DNC, bad, of no type the strategy dials) are stopped, with the decision recorded.
        """
        for _ in range(10_000):  # every pass without a lead takes one account out of the due set
            row = self._due_callback(campaign_id, now, operator) or \
                self._due_account(campaign_id, now)
            if row is None:
                return None
            lead = self._pick_phone(campaign_id, row, now)
            if lead is not None:
                return lead
        return None

    def _due_account(self, campaign_id: int, now: float) -> sqlite3.Row | None:
        # One index seek per priority level: never a scan over leads due later.
        prio = self.db.execute("SELECT MAX(priority) FROM accounts WHERE campaign_id=? AND "
                               "status='active'", (campaign_id,)).fetchone()[0]
        while prio is not None:
            row = self.db.execute(
                "SELECT id, account_id, region, tz, segment, person_key, NULL AS callback_id, "
                "NULL AS cb_operator FROM accounts WHERE campaign_id=? AND status='active' AND "
                "priority=? AND next_due_at<=? ORDER BY next_due_at LIMIT 1",
                (campaign_id, prio, now)).fetchone()
            if row is not None:
                return row
            prio = self.db.execute("SELECT MAX(priority) FROM accounts WHERE campaign_id=? AND "
                                   "status='active' AND priority<?", (campaign_id, prio)
                                   ).fetchone()[0]
        return None

    def _due_callback(self, campaign_id: int, now: float, operator: str | None
                      ) -> sqlite3.Row | None:
        return self.db.execute(
            "SELECT a.id, a.account_id, a.region, a.tz, a.segment, a.person_key, "
            "cb.id AS callback_id, "
            "cb.operator AS cb_operator FROM callbacks cb JOIN accounts a ON a.id=cb.account_pk "
            "WHERE cb.campaign_id=? AND cb.state='pending' AND cb.at<=? AND a.status='callback' "
            "AND (cb.operator IS NULL OR cb.operator IS ? OR cb.at<=?) "
            "ORDER BY cb.operator IS ? DESC, cb.operator IS NULL DESC, cb.at LIMIT 1",
            (campaign_id, now, operator, now - CALLBACK_GRACE_S, operator)).fetchone()

    def _pick_phone(self, campaign_id: int, acc: sqlite3.Row, now: float) -> Lead | None:
        strategy = self.strategy(campaign_id, acc["segment"])
        rank = {k: i for i, k in enumerate(strategy.phone_order)}
        phones = sorted((p for p in self.db.execute(
            "SELECT id, e164, kind, attempts, position FROM phones WHERE account_pk=? AND "
            "status='ok'", (acc["id"],)) if p["kind"] in rank),
            key=lambda p: (p["attempts"], rank[p["kind"]], p["position"]))
        barred = self.listed("dnc", [p["e164"] for p in phones]) if phones else {}
        if barred:
            with self.tx():
                for p in phones:
                    if p["e164"] in barred:
                        self.db.execute("UPDATE phones SET status='dnc' WHERE id=?", (p["id"],))
                        self._decide(now, campaign_id, acc["id"], "dnc",
                                     f"phone #{p['id']} ({p['kind']}) is on the do-not-call "
                                     f"list: {barred[p['e164']]}")
            phones = [p for p in phones if p["e164"] not in barred]
        withdrawn = self._consent_withdrawn([p["e164"] for p in phones]) if phones else set()
        if withdrawn:  # a third party's number: never again; the debtor's own phones remain
            with self.tx():
                for p in phones:
                    if p["e164"] in withdrawn:
                        self.db.execute("UPDATE phones SET status='withdrawn' WHERE id=?",
                                        (p["id"],))
                        self._decide(now, campaign_id, acc["id"], "consent_withdrawn",
                                     f"phone #{p['id']} ({p['kind']}): the third party on it "
                                     "withdrew consent to interaction")
            phones = [p for p in phones if p["e164"] not in withdrawn]
        if phones:
            p = phones[0]
            return Lead(acc["id"], p["id"], p["e164"], acc["account_id"], acc["region"],
                        acc["tz"], acc["segment"], p["kind"], acc["callback_id"],
                        acc["cb_operator"], acc["person_key"])
        why = (f"no dialable phone: none left of the types {', '.join(strategy.phone_order)} "
               "that is not invalid, wrong or on the do-not-call list")
        with self.tx():
            self.db.execute("UPDATE accounts SET status='stopped', hold_reason=?, updated_at=? "
                            "WHERE id=?", (why, now, acc["id"]))
            self.db.execute("UPDATE callbacks SET state='cancelled' WHERE account_pk=? AND "
                            "state='pending'", (acc["id"],))
            self._decide(now, campaign_id, acc["id"], "no_phone", why)
        return None

    def _decide(self, now: float, campaign_id: int | None, account_pk: int, code: str,
                detail: str, *, channel: str = "voice", evidence: dict | None = None) -> None:
        self.db.execute("INSERT INTO decisions (at, campaign_id, account_pk, decision, code, "
                        "detail, channel, evidence) VALUES (?,?,?,?,?,?,?,?)",
                        (now, campaign_id, account_pk, "skip", code, detail, channel,
                         _json(evidence)))

    def _consent_withdrawn(self, numbers: list[str]) -> set[str]:
        """Those of ``numbers`` whose third party withdrew consent to interaction."""
        marks = ",".join("?" * len(numbers))
        return {r[0] for r in self.db.execute(
            f"SELECT e164 FROM refusals WHERE kind='third_party' AND e164 IN ({marks}) "
            "AND at <= ?", (*numbers, self.clock.wall()))}

    def person_of(self, account_pk: int) -> str:
        """The person key of an account (a lead built without it still counts per person)."""
        row = self.db.execute("SELECT person_key FROM accounts WHERE id=?",
                              (account_pk,)).fetchone()
        if row is None or not row[0]:
            return f"account:{account_pk}"  # unknown to the store: on its own
        return row[0]

    def note_decision(self, account_pk: int, code: str, detail: str, *,
                      campaign_id: int | None, channel: str, evidence: dict | None = None
                      ) -> None:
        """Record a decision not to contact (an SMS not sent, say) with its evidence."""
        with self.tx():
            self._decide(self.clock.wall(), campaign_id, account_pk, code, detail,
                         channel=channel, evidence=evidence)

    def contacts(self, debtor_id: str, kind: str, since: datetime, until: datetime
                 ) -> list[datetime]:
        """The compliance engine's ContactHistory, across accounts, creditors and campaigns.

        ``debtor_id`` is a person key, ``tel:<E.164>`` (every call or SMS to that number) or
        ``debt:<account pk>`` (one account). Calls our own line failed never reached the
        network and do not count. A conversation is a call that connected to the debtor,
        whoever hung up and whether an operator or a recorded message spoke (an abandoned
        answer heard the abandon message), unless the operator marked it a third party or a
        wrong number; a call still in progress counts as one until it ends.
        """
        if debtor_id.startswith("tel:"):
            where, arg = "{t}.number = ?", debtor_id[4:]
        elif debtor_id.startswith("debt:"):
            where, arg = "{t}.account_pk = ?", int(debtor_id[5:])
        else:
            where, arg = ("{t}.account_pk IN (SELECT id FROM accounts WHERE person_key = ?)",
                          debtor_id)
        span = (since.timestamp(), until.timestamp())
        if kind == "sms":
            rows = self.db.execute(
                "SELECT m.created_at FROM sms_messages m WHERE " + where.format(t="m") +
                " AND m.created_at >= ? AND m.created_at < ? AND m.state IN ('queued', 'sent', "
                "'delivered', 'pending') ORDER BY m.created_at", (arg, *span))
            return [datetime.fromtimestamp(r[0], timezone.utc) for r in rows]
        sql = ("SELECT a.created_at FROM attempts a WHERE " + where.format(t="a") +
               " AND a.created_at >= ? AND a.created_at < ? AND a.state != 'line_fault'")
        if kind == "conversation":
            sql += (" AND (a.state = 'dialing' OR a.outcome = 'answered') AND NOT EXISTS "
                    "(SELECT 1 FROM dispositions d WHERE d.call_id = a.call_id AND "
                    "d.kind IN ('third_party', 'wrong_number'))")
        rows = self.db.execute(sql + " ORDER BY a.created_at", (arg, *span)).fetchall()
        return [datetime.fromtimestamp(r[0], timezone.utc) for r in rows]

    def refusals(self, debtor_id: str, phone: str | None) -> list:
        """The compliance engine's refusals bearing on this person and number."""
        from controller import refusals  # the compliance engine loads phone geodata: on use
        return refusals.for_contact(self, debtor_id, phone)

    def set_compliance(self, campaign_id: int, profile: str) -> None:
        with self.tx():
            self.db.execute("UPDATE campaigns SET compliance_profile=? WHERE id=?",
                            (profile, campaign_id))

    def hold(self, account_pk: int, code: str, detail: str, *, campaign_id: int | None,
             until: float | None = None, now: float | None = None,
             evidence: dict | None = None) -> None:
        """Record a decision not to dial, with its reason; hold the account until ``until``."""
        now = self.clock.wall() if now is None else now
        with self.tx():
            self._decide(now, campaign_id, account_pk, code, detail, evidence=evidence)
            if until is None:
                self.db.execute("UPDATE accounts SET status='held', hold_reason=?, updated_at=? "
                                "WHERE id=?", (f"{code}: {detail}", now, account_pk))
                self.db.execute("UPDATE callbacks SET state='cancelled' WHERE account_pk=? AND "
                                "state='pending'", (account_pk,))
            else:
                self.db.execute("UPDATE accounts SET next_due_at=?, hold_reason=?, updated_at=? "
                                "WHERE id=?", (until, f"{code}: {detail}", now, account_pk))
                # A callback the law does not allow now fires when it does.
                self.db.execute("UPDATE callbacks SET at=MAX(at, ?) WHERE account_pk=? AND "
                                "state='pending'", (until, account_pk))

    def backlog(self, campaign_id: int, now: float | None = None, *, fresh: bool = False
                ) -> dict[str | None, int]:
        """Leads due now and waiting for a call, per segment (callbacks due included).

        ``fresh``: only accounts never attempted yet (the untouched part of the list).
        """
        now = self.clock.wall() if now is None else now
        out: dict[str | None, int] = {}
        for seg, n in self.db.execute(
                "SELECT segment, COUNT(*) FROM accounts WHERE campaign_id=? AND status='active' "
                f"AND next_due_at<=? {'AND attempts=0' if fresh else ''} GROUP BY segment",
                (campaign_id, now)):
            out[seg] = n
        if fresh:
            return out
        for seg, n in self.db.execute(
                "SELECT a.segment, COUNT(*) FROM callbacks cb JOIN accounts a ON a.id=cb.account_pk"
                " WHERE cb.campaign_id=? AND cb.state='pending' AND cb.at<=? AND "
                "a.status='callback' GROUP BY a.segment", (campaign_id, now)):
            out[seg] = out.get(seg, 0) + n
        return out

    # --- attempts ---------------------------------------------------------------------------
    def begin_attempt(self, campaign_id: int, lead: Lead, line: str, call_id: str,
                      operator: str | None, *, now: float | None = None,
                      evidence: dict | None = None) -> None:
        """Record the attempt before the call is placed: a power cut never redials it.

        ``evidence``: why the law allowed it (the compliance decision, the line's number).
        """
        now = self.clock.wall() if now is None else now
        with self.tx():
            self.db.execute(
                "INSERT INTO attempts (call_id, campaign_id, account_pk, phone_pk, number, line, "
                "created_at, operator, segment, evidence) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (call_id, campaign_id, lead.account_pk, lead.phone_pk, lead.number, line,
                 now, operator, lead.segment, _json(evidence)))
            self.db.execute("UPDATE accounts SET status='dialing', hold_reason=NULL, updated_at=? "
                            "WHERE id=?", (now, lead.account_pk))
            if lead.callback_id is not None:
                self.db.execute("UPDATE callbacks SET state='fired', call_id=? WHERE id=?",
                                (call_id, lead.callback_id))

    def finish_attempt(self, call_id: str, *, outcome: str, q850: int | None, reason: str,
                       ring_s: float, talk_s: float, abandoned: bool, retry_scale: float = 1.0,
                       now: float | None = None) -> None:
        """Write the result (fsynced) and schedule the account's next attempt by its strategy."""
        now = self.clock.wall() if now is None else now
        with self.tx():
            row = self.db.execute(
                "SELECT a.account_pk, a.phone_pk, a.campaign_id, c.max_attempts, acc.attempts, "
                "acc.status, acc.segment, acc.tz, acc.day_key, acc.day_attempts "
                "FROM attempts a JOIN campaigns c ON c.id = a.campaign_id "
                "JOIN accounts acc ON acc.id = a.account_pk "
                "WHERE a.call_id=? AND a.state='dialing'",
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
            strategy = self.strategy(row["campaign_id"], row["segment"])
            attempts = row["attempts"] + 1
            local = datetime.fromtimestamp(now, self._zone(row["tz"]))
            day = local.date().isoformat()
            day_attempts = (row["day_attempts"] if row["day_key"] == day else 0) + 1
            key = "abandoned" if abandoned else outcome
            if outcome == "answered" and not abandoned:
                status, due = "done", now
            elif attempts >= (strategy.max_attempts or row["max_attempts"]):
                status, due = "done", now
            else:
                status = "active"
                due = now + strategy.retry_delay(key) * retry_scale
                if outcome == "invalid_number":
                    due = now  # try the next phone at once
                if day_attempts >= strategy.attempts_per_day:  # enough for today
                    midnight = datetime.combine(local.date() + timedelta(days=1), dtime(),
                                                local.tzinfo)
                    due = max(due, midnight.timestamp())
            if row["status"] in _STICKY:  # a disposition or flag during the call decided
                if row["status"] == "flagged":
                    self.db.execute("UPDATE flags SET prev_status=? WHERE account_pk=? AND "
                                    "cleared_at IS NULL AND prev_status='dialing'",
                                    (status, row["account_pk"]))
                status = row["status"]
            self.db.execute(
                "UPDATE accounts SET status=?, next_due_at=?, attempts=?, last_outcome=?, "
                "day_key=?, day_attempts=?, updated_at=? WHERE id=?",
                (status, due, attempts, key, day, day_attempts, now, row["account_pk"]))
            if status == "active":
                left = self.db.execute("SELECT COUNT(*) FROM phones WHERE account_pk=? AND "
                                       "status='ok'", (row["account_pk"],)).fetchone()[0]
                if left == 0:
                    self.db.execute("UPDATE accounts SET status='done', hold_reason=? WHERE id=?",
                                    ("no valid phone left", row["account_pk"]))
            self._apply_deferred(call_id, now)
            if any("last_outcome" in s.rules for s in self.segments(row["campaign_id"])):
                self.reassign_segments(row["campaign_id"], [row["account_pk"]])

    def _zone(self, tz: str | None) -> ZoneInfo:
        name = tz or DEFAULT_TZ
        z = self._zones.get(name)
        if z is None:
            try:
                z = ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                z = ZoneInfo(DEFAULT_TZ)
            self._zones[name] = z
        return z

    def mark_answered(self, call_id: str, at: float) -> None:
        """The call was answered (a person or a machine): the conversation is going on."""
        with self.tx():
            self.db.execute("UPDATE attempts SET answered_at=? WHERE call_id=? AND "
                            "answered_at IS NULL", (at, call_id))

    def assign_operator(self, call_id: str, operator: str) -> None:
        """A predictive call's live answer went to this operator's position."""
        with self.tx():
            self.db.execute("UPDATE attempts SET operator=? WHERE call_id=?", (operator, call_id))

    def requeue_attempt(self, call_id: str, reason: str) -> None:
        """Our own line failed the call: not an attempt on the debtor; he is due again now."""
        self._close_open_attempt(call_id, "line_fault", reason, due_in_s=0.0)

    def interrupt_attempt(self, call_id: str, reason: str) -> None:
        """The box stopped while this call was still ringing: no outcome; due again later."""
        self._close_open_attempt(call_id, "interrupted", reason, due_in_s=900.0)

    def _close_open_attempt(self, call_id: str, state: str, reason: str, *,
                            due_in_s: float) -> None:
        now = self.clock.wall()
        with self.tx():
            row = self.db.execute("SELECT account_pk FROM attempts WHERE call_id=? AND "
                                  "state='dialing'", (call_id,)).fetchone()
            if row is None:
                return
            self.db.execute("UPDATE attempts SET state=?, ended_at=?, reason=?, outcome=CASE "
                            "WHEN ?='line_fault' THEN 'failed' ELSE outcome END WHERE call_id=?",
                            (state, now, reason, state, call_id))
            self.db.execute("UPDATE accounts SET status='active', next_due_at=MAX(next_due_at, ?),"
                            " updated_at=? WHERE id=? AND status='dialing'",
                            (now + due_in_s, now, row[0]))

    def recover_interrupted(self, retry_after_s: float = 900) -> int:
        """After a crash or power cut: close attempts left open; never redial them at once."""
        now = self.clock.wall()
        with self.tx():
            rows = self.db.execute("SELECT account_pk FROM attempts WHERE state='dialing'"
                                   ).fetchall()
            self.db.execute("UPDATE attempts SET state='interrupted', ended_at=?, "
                            "reason='interrupted by restart' WHERE state='dialing'", (now,))
            for r in rows:
                self.db.execute("UPDATE accounts SET status='active', next_due_at=?, "
                                "attempts=attempts+1 WHERE id=? AND status='dialing'",
                                (now + retry_after_s, r[0]))
            # Cards an operator was looking at were never dialed: due again.
            self.db.execute("UPDATE accounts SET status='active' WHERE status='preview'")
        return len(rows)

    def set_preview(self, account_pk: int, previewing: bool) -> None:
        """An operator is looking at this account's card (preview mode): nobody else dials it."""
        with self.tx():
            if previewing:
                self.db.execute("UPDATE accounts SET status='preview', updated_at=? WHERE id=? "
                                "AND status='active'", (self.clock.wall(), account_pk))
            else:
                self.db.execute("UPDATE accounts SET status='active', updated_at=? WHERE id=? "
                                "AND status='preview'", (self.clock.wall(), account_pk))

    def calls_today(self, lines: Iterable[str], now: float | None = None) -> dict[str, int]:
        """Calls placed on each of ``lines`` since the box's local midnight (not line faults)."""
        lines = list(lines)
        if not lines:
            return {}
        now = self.clock.wall() if now is None else now
        midnight = datetime.fromtimestamp(now).replace(hour=0, minute=0, second=0,
                                                       microsecond=0).timestamp()
        return dict(self.db.execute(
            f"SELECT line, COUNT(*) FROM attempts WHERE line IN ({','.join('?' * len(lines))}) "
            "AND created_at >= ? AND state != 'line_fault' GROUP BY line",
            (*lines, midnight)).fetchall())

    def counters(self, campaign_id: int) -> dict:
        """The dashboard's tiles for a campaign, over its whole run; what each one counts is
        said in one sentence to the people who read them (web_admin/labels.py, counter_help).
        "answered" includes the conversations going on now."""
        rows = self.db.execute(
            "SELECT outcome, abandoned, state, answered_at IS NOT NULL, COUNT(*) FROM attempts "
            "WHERE campaign_id=? AND state != 'line_fault' "
            "GROUP BY outcome, abandoned, state, answered_at IS NOT NULL",
            (campaign_id,)).fetchall()
        c = {"attempts": 0, "answered": 0, "busy": 0, "no_answer": 0, "failed": 0,
             "abandoned": 0, "in_progress": 0}
        for outcome, abandoned, state, talking, n in rows:
            c["attempts"] += n
            if state == "dialing":
                c["in_progress"] += n
                c["answered"] += n if talking else 0
            elif outcome == "answered":
                c["answered"] += n
                c["abandoned"] += n if abandoned else 0
            elif outcome in ("busy", "no_answer"):
                c[outcome] += n
            else:
                c["failed"] += n
        left = self.db.execute("SELECT COUNT(*) FROM accounts WHERE campaign_id=? AND status IN "
                               "('active','dialing','callback')", (campaign_id,)).fetchone()[0]
        c["leads_left"] = left
        c["line_faults"] = self.db.execute(
            "SELECT COUNT(*) FROM attempts WHERE campaign_id=? AND state='line_fault'",
            (campaign_id,)).fetchone()[0]
        return c

    def held_count(self, campaign_id: int, now: float | None = None) -> int:
        """Leads not dialable now by the law (held, or waiting for their allowed time)."""
        now = self.clock.wall() if now is None else now
        return int(self.db.execute(
            "SELECT COUNT(*) FROM accounts WHERE campaign_id=? AND hold_reason IS NOT NULL AND "
            "(status='held' OR (status='active' AND next_due_at > ?))",
            (campaign_id, now)).fetchone()[0])

    def abandon_rate(self, campaign_id: int, *, now: float | None = None,
                     window_s: float = 30 * 86400, since: float | None = None,
                     until: float | None = None) -> float:
        """Abandoned calls / live answers over the last 30 days (or [since, until)), for pacing."""
        until = (self.clock.wall() if now is None else now) if until is None else until
        since = until - window_s if since is None else since
        answered, abandoned = self.db.execute(
            "SELECT COUNT(*), COALESCE(SUM(abandoned), 0) FROM attempts WHERE campaign_id=? AND "
            "created_at>=? AND created_at<? AND outcome='answered'",
            (campaign_id, since, until)).fetchone()
        return abandoned / answered if answered else 0.0

    def attempts(self, campaign_id: int | None = None) -> list[sqlite3.Row]:
        if campaign_id is None:
            return self.db.execute("SELECT * FROM attempts ORDER BY id").fetchall()
        return self.db.execute("SELECT * FROM attempts WHERE campaign_id=? ORDER BY id",
                               (campaign_id,)).fetchall()


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

    def _flush(self) -> None:
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
_DEFAULT_STRATEGY = Strategy()


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


class _Tx:
    def __init__(self, db: sqlite3.Connection, on_rollback=None) -> None:
        self.db = db
        self.outer = False
        self.on_rollback = on_rollback  # drops caches of what the rollback undid

    def __enter__(self):
        if not self.db.in_transaction:
            self.db.execute("BEGIN IMMEDIATE")
            self.outer = True
        return self.db

    def __exit__(self, exc_type, *_):
        if self.outer:
            self.db.execute("ROLLBACK" if exc_type else "COMMIT")
            if exc_type and self.on_rollback:
                self.on_rollback()
        return False
