"""The store's schema: versioned migrations, applied in order by ``Store`` at open.

Append a migration at the end of ``MIGRATIONS`` (never edit one that has shipped): index + 1 is
the schema version kept in ``PRAGMA user_version``.
"""
from __future__ import annotations

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
    # how long a call offered to a person rings on his desk before it goes to the next one
    # (controller/dialer.py; None: TAKE_S, 15 s)
    """
    ALTER TABLE campaigns ADD COLUMN take_s REAL;
    """,
    # the SMS page's last 50 messages of a campaign: an index seek in order, instead of
    # sorting every SMS the campaign ever sent
    """
    CREATE INDEX sms_campaign ON sms_messages (campaign_id, id);
    """,
)
