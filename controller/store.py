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
from controller.schema import MIGRATIONS
from controller.store_accounts import (  # noqa: F401  (AccountWriter, index_new_rows: re-exported)
    AccountWriter, _json, index_new_rows)
from controller.segments import DEFAULT_RETRY_S, DEFAULT_SEGMENTS, Segment, Strategy, assign
from controller.store_campaigns import CampaignsMixin
from controller.store_lists import ListsMixin
from controller.store_outcomes import CALLBACK_GRACE_S, OutcomesMixin
from controller.store_writer import StoreReader, StoreWriter, log_failure
from firmware.clock import Clock
from firmware.errors import UserError

log = structlog.get_logger(__name__)
T = TypeVar("T")

# Seconds until the next attempt after an outcome (simulated time is scaled by the caller).
RETRY_DELAY_S = {k: v for k, v in DEFAULT_RETRY_S.items()
                 if k in ("busy", "no_answer", "unreachable", "congestion", "failed", "rejected",
                          "abandoned")}
FINAL_OUTCOMES = ("answered",)
DEFAULT_TZ = "Europe/Moscow"  # the local day of an account with no known time zone
# Statuses a disposition or flag can set during a call; finishing the call keeps them.
_STICKY = ("flagged", "promise", "callback")
_DEFAULT_STRATEGY = Strategy()


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

    async def apart(self, fn: Callable[..., T], *args, **kw) -> T:
        """``fn(store, ...)`` on a worker thread, on a connection of its own: bulk work (an
        import) that commits in batches of its own, so neither the event loop nor the writer's
        queue (the dialer's attempts) waits for all of it."""
        def work() -> T:
            store = Store(self.path, self.clock)
            try:
                return fn(store, *args, **kw)
            finally:
                store.close()
        return await asyncio.to_thread(work)

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
        return dict(self.db.execute(
            f"SELECT line, COUNT(*) FROM attempts WHERE line IN ({','.join('?' * len(lines))}) "
            "AND created_at >= ? AND state != 'line_fault' GROUP BY line",
            (*lines, self._midnight(now))).fetchall())

    def sms_today(self, lines: Iterable[str], now: float | None = None) -> dict[str, int]:
        """SMS given to each of ``lines`` since the box's local midnight (queued, sent,
        delivered or failed: what counts against a SIM's daily cap); an index seek per line."""
        lines = list(lines)
        if not lines:
            return {}
        return dict(self.db.execute(
            f"SELECT line, COUNT(*) FROM sms_messages WHERE line IN "
            f"({','.join('?' * len(lines))}) AND created_at >= ? AND state != 'skipped' "
            "GROUP BY line",
            (*lines, self._midnight(now))).fetchall())

    def _midnight(self, now: float | None) -> float:
        """The start of the box's local day of ``now`` (the clock's wall time by default)."""
        now = self.clock.wall() if now is None else now
        return datetime.fromtimestamp(now).replace(hour=0, minute=0, second=0,
                                                   microsecond=0).timestamp()

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
