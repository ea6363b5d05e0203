"""SMS reminders: rules per segment, templates with fields, sent over GSM SIMs within the law.

Rules (names used in a segment strategy's ``sms_rules``):
- ``promise_confirmation``: right after a promise to pay is recorded;
- ``promise_reminder``: the day before the promised date (debtor's local date);
- ``not_reached``: once a day for an account whose last attempts found nobody;
- ``due_reminder``: once a week for an account past due that nobody has spoken to yet.
Each message is decided once (a unique key per rule and occasion), checked against the
compliance profile's SMS hours and limits and the do-not-call list, and sent on a GSM line whose
SIM still has room in its daily SMS limit, at the SIM's pace (controller.sms_pacing). Its status
(queued, sent, delivered, failed) is kept.
"""
from __future__ import annotations

import asyncio
import json
import uuid
from datetime import date, datetime, timedelta, timezone

import structlog
from babel.dates import format_date
from babel.numbers import format_decimal, get_currency_symbol

from controller import compliance, sms_templates
from controller.sms_pacing import SimPacer, hours_left_s
from controller.store import Store
from firmware.clock import Clock
from firmware.errors import Msg
from firmware.lineapi import LineAPI, LineError, SmsStatus

log = structlog.get_logger(__name__)

RULES = ("promise_confirmation", "promise_reminder", "not_reached", "due_reminder")
# Every message names the creditor and a contact phone (230-FZ art. 7 part 5); see
# controller.sms_templates for the checks on saving and before sending.
TEMPLATES = {
    "promise_confirmation": "{name}, вы обещали оплатить {amount} {currency} до {date} по "
                            "договору {account_id}. {creditor}, тел. {contact_phone}",
    "promise_reminder": "{name}, завтра, {date}, срок оплаты {amount} {currency} по договору "
                        "{account_id}. {creditor}, тел. {contact_phone}",
    "not_reached": "{name}, не смогли дозвониться по договору {account_id}. Перезвоните: "
                   "{creditor}, тел. {contact_phone}",
    "due_reminder": "{name}, по договору {account_id} просрочен платёж, долг {amount} "
                    "{currency}. {creditor}, тел. {contact_phone}",
}
NOT_REACHED = ("no_answer", "busy", "unreachable")
SPREAD = ("promise_reminder", "not_reached", "due_reminder")  # spread over the day's hours
PENDING_MAX = 512  # messages taken from one look at the list (the rest wait for the next)
SMS_LOCALE = "ru"  # the debtors' language: money as 146 400,13 ₽, dates as 05.12.2026


class SmsReminders:
    """Finds the reminders due, sends them, follows their delivery."""

    def __init__(self, store: Store, lines: LineAPI, clock: Clock, *, campaign_id: int,
                 compliance_profile: str, per_sim_per_day: int = 100,
                 templates: dict[str, str] | None = None, interval_s: float = 60.0,
                 pacer: SimPacer | None = None) -> None:
        self.store = store
        self.lines = lines
        self.clock = clock
        self.campaign_id = campaign_id
        self.compliance = compliance.get_profile(compliance_profile)
        self.per_sim_per_day = per_sim_per_day
        for text in (templates or {}).values():
            sms_templates.check(text)
        self.templates = dict(TEMPLATES, **(templates or {}))
        self.interval_s = interval_s
        self.pacer = pacer or SimPacer(clock)  # the box's one pacer, shared by the campaigns
        self._pending: list[dict] = []  # due at the last look, not yet decided
        self._task: asyncio.Task | None = None
        self._stopping = False
        self._sending: set[asyncio.Task] = set()
        self._held: dict[str, tuple[str, float]] = {}  # key -> (refusal recorded, held until)
        self._turn = asyncio.Lock()  # one pass at a time: the loop's, or one asked for meanwhile
        lines.subscribe(self._on_event)

    async def start(self) -> None:
        self._stopping = False
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        self._stopping = True  # the loop ends on it too: 3.11's wait_for can swallow a cancel
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        # A message a module is submitting is let finish (within the module's own time-out):
        # cut off, it could go out unrecorded. Its outcome comes back as an SmsStatus event.
        await asyncio.gather(*self._sending, return_exceptions=True)

    async def _loop(self) -> None:
        while not self._stopping:
            look_again = self.clock.now() + self.interval_s
            try:
                await self.run_once()
                # What is due goes out as SIMs become ready, until the next look.
                while self._pending and not self._stopping and self.clock.now() < look_again:
                    wait = self.pacer.wait_s(self._sms_lines())
                    wait = self.interval_s if wait is None else max(1.0, wait)
                    await self.clock.sleep(min(look_again - self.clock.now(), wait))
                    await self.send_due()
            except Exception:
                log.exception("sms_cycle_failed")
            await self.clock.sleep(max(0.0, look_again - self.clock.now()))

    # --- deciding ---------------------------------------------------------------------------
    def due(self, now: float | None = None) -> list[dict]:
        """Messages due now: {key, rule, account_pk, row, fields} (not yet decided)."""
        now = self.clock.wall() if now is None else now
        return self._scan(self.store, now, None, {})[0]

    def _scan(self, store: Store, now: float, limit: int | None, held: dict
              ) -> tuple[list[dict], int, set[str]]:
        """(the first ``limit`` messages due now and not held by the law until later, how many
        of the day's spread are due, every key due). Runs on the store's reader thread."""
        db = store.db
        sender = sms_templates.settings(store, self.campaign_id)
        rules_of = {seg.name: set(seg.strategy.sms_rules)
                    for seg in store.segments(self.campaign_id)}
        today = datetime.fromtimestamp(now, timezone.utc).date()
        week = today.isocalendar()
        decided = {r[0] for r in db.execute("SELECT key FROM sms_messages WHERE campaign_id=?",
                                            (self.campaign_id,))}
        out: list[dict] = []
        keys: set[str] = set()
        spread = 0

        def take(row, pk: int, key: str, rule: str, amount, day: str) -> None:
            nonlocal spread
            if key in decided:
                return
            keys.add(key)
            if held.get(key, (None, 0.0))[1] > now:
                return  # the law holds it until later: not looked at again before then
            spread += rule in SPREAD
            if limit is None or len(out) < limit:  # the fields only for what is taken now
                out.append({"key": key, "rule": rule, "account_pk": pk, "row": row,
                            "fields": self._fields(row, sender, amount=amount, date=day)})

        for p in db.execute(
                "SELECT p.id AS promise_id, p.account_pk, p.amount, p.due_date, a.account_id, "
                "a.debtor_name, a.currency, a.region, a.tz, a.segment, a.person_key, a.creditor "
                "FROM promises p "
                "JOIN accounts a ON a.id = p.account_pk WHERE p.campaign_id=? AND "
                "p.state='open'", (self.campaign_id,)):
            rules = rules_of.get(p["segment"], set())
            if "promise_confirmation" in rules:
                take(p, p["account_pk"], f"pc:{p['promise_id']}", "promise_confirmation",
                     p["amount"], p["due_date"])
            due_day = date.fromisoformat(p["due_date"])
            if "promise_reminder" in rules and due_day - timedelta(days=1) <= today < due_day:
                take(p, p["account_pk"], f"pr:{p['promise_id']}", "promise_reminder",
                     p["amount"], p["due_date"])
        # Only the accounts a rule can make due: a list of 200,000 is not walked in Python.
        segs = [name for name, rules in rules_of.items()
                if rules & {"not_reached", "due_reminder"}]
        if not segs:
            return out, spread, keys
        for a in db.execute(
                "SELECT * FROM accounts WHERE campaign_id=? AND status NOT IN ('done','stopped') "
                f"AND segment IN ({','.join('?' * len(segs))}) AND ((attempts >= 2 AND "
                "last_outcome IN ('no_answer', 'busy', 'unreachable')) OR "
                "(attempts = 0 AND dpd > 0))", (self.campaign_id, *segs)):
            rules = rules_of.get(a["segment"], set())
            if "not_reached" in rules and a["last_outcome"] in NOT_REACHED and a["attempts"] >= 2:
                take(a, a["id"], f"nr:{a['id']}:{today.isoformat()}", "not_reached",
                     a["debt_amount"], "")
            if "due_reminder" in rules and (a["dpd"] or 0) > 0 and a["attempts"] == 0:
                take(a, a["id"], f"dr:{a['id']}:{week.year}-{week.week}", "due_reminder",
                     a["debt_amount"], "")
        return out, spread, keys

    @staticmethod
    def _fields(row, sender: dict, *, amount, date) -> dict:
        name = (row["debtor_name"] or "").split()
        # Address by first name and patronymic when the list gives "Фамилия Имя Отчество".
        polite = " ".join(name[1:3]) if len(name) >= 3 else (row["debtor_name"] or "Клиент")
        currency = row["currency"] or "RUB"
        return {"name": polite,
                "amount": format_decimal(amount or 0, format="#,##0.00", locale=SMS_LOCALE),
                "currency": get_currency_symbol(currency, locale=SMS_LOCALE),
                "date": _ru_date(date), "account_id": row["account_id"],
                # who sends it: the debt's creditor, else the campaign's; the campaign's phone
                "creditor": row["creditor"] or sender["creditor_name"] or "",
                "contact_phone": sender["contact_phone"] or ""}

    async def run_once(self, now: float | None = None) -> int:
        """Look for what is due and send what the SIMs' pace allows now; how many were sent.

        The look runs on the store's reader thread and takes at most ``PENDING_MAX`` messages
        (the rest wait for the next look); messages the law holds until later are not looked
        at again before then.
        """
        async with self._turn:
            now = self.clock.wall() if now is None else now
            due, spread, keys, left = await self.store.read(self._look, now, dict(self._held))
            self._held = {k: v for k, v in self._held.items() if k in keys}  # forget the gone
            self._pending = due
            self.pacer.plan(self.campaign_id, spread, left)
            return await self._send_due(now)

    def _look(self, store: Store, now: float, held: dict) -> tuple[list, int, set, float]:
        # the hours left too: the law's calendars load on first use, never on the loop
        return (*self._scan(store, now, PENDING_MAX, held), hours_left_s(self.compliance, now))

    async def send_due(self, now: float | None = None) -> int:
        """Send what is due while a SIM may send; returns how many were sent."""
        async with self._turn:
            return await self._send_due(now)

    async def _send_due(self, now: float | None) -> int:
        now = self.clock.wall() if now is None else now
        sent = 0
        conf = sms_templates.settings(self.store, self.campaign_id)
        templates = dict(self.templates, **conf["templates"])
        # messages per SIM today (as the lines page counts them), on the reader: index seeks
        counts = await self.store.read(Store.sms_today, [ln.name for ln in self.lines.lines()
                                                         if ln.kind == "gsm"], now)
        try:
            while self._pending:
                spread = self._pending[0]["rule"] in SPREAD  # a confirmation goes at once
                if self._pick_line(counts, spread=spread) is None:
                    return sent  # every SIM busy, resting, at its pace or its daily limit
                item = self._pending.pop(0)
                judged = await self.store.read(self._judge, item, now)
                if judged is None:
                    continue  # no longer due: its segment's rules changed since the look
                number, code, why, until, evidence = judged
                if code is not None:
                    self._refuse(item, number, code, why, evidence, until=until)
                    continue
                line = self._pick_line(counts, spread=spread)
                if line is None:  # taken while the law was asked
                    self._pending.insert(0, item)
                    return sent
                try:
                    text = sms_templates.render(templates[item["rule"]], item["fields"],
                                                max_parts=conf["max_parts"])
                except sms_templates.Refused as exc:
                    self._refuse(item, number, "sms_sender", str(exc), evidence)
                    continue
                info = next((ln for ln in self.lines.lines() if ln.name == line), None)
                evidence["line"] = {"name": line,
                                    "number": info.details.get("number") if info else None}
                # On disk before it is sent: the law counts it, a power cut never resends it.
                sms_id = await self.store.run(self._record, item, number, "queued", "",
                                              line=line, text=text, evidence=evidence)
                counts[line] = counts.get(line, 0) + 1
                send = asyncio.ensure_future(self.lines.send_sms(line, number, text,
                                                                 sms_id=sms_id))
                self._sending.add(send)
                send.add_done_callback(self._sending.discard)
                try:  # a stop (a pause) stops the looking, not a message on the wire
                    result = await asyncio.shield(send) or {}
                except (LineError, Exception) as exc:  # a line problem must not stop the others
                    result = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
                    self._update(sms_id, "failed", result["error"])
                if result.get("status") != "failed":
                    sent += 1
                    self.pacer.sent(line)
                    continue
                self.pacer.failed(line, result.get("error") or "failed",
                                  blocked=bool(result.get("sender_blocked")))
                if result.get("action") not in ("never", "rejected"):
                    # our SIM or its network failed, not the number or the text
                    self.store.submit(_free_occasion, sms_id)
            return sent
        finally:
            await self.store.flush()  # the next look sees every decision taken here

    def _judge(self, store: Store, item: dict, now: float
               ) -> tuple[str | None, str | None, str, float | None, dict] | None:
        """(number, codes, reason, held until, evidence); codes None when the law allows it
        now; None when the account's segment no longer sends this rule. Runs on the store's
        reader thread."""
        seg = store.db.execute("SELECT segment FROM accounts WHERE id=?",
                               (item["account_pk"],)).fetchone()
        if seg is None or item["rule"] not in store.strategy(self.campaign_id,
                                                             seg[0]).sms_rules:
            return None
        phone = store.db.execute(
            "SELECT e164 FROM phones WHERE account_pk=? AND kind='mobile' AND status NOT IN "
            "('bad', 'invalid') ORDER BY position LIMIT 1", (item["account_pk"],)).fetchone()
        if phone is None:
            return None, "no_phone", *_said("no_phone", Msg("no mobile phone to send to"))
        number = phone[0]
        if store.is_dnc(number):
            return number, "dnc", *_said("dnc", Msg("the number is on the do-not-call list"))
        row = item["row"]
        person = row["person_key"] or store.person_of(item["account_pk"])
        ctx = compliance.LeadContext(person, phone=number,
                                     region=row["region"], tz=row["tz"])
        d = compliance.check(self.compliance, ctx, channel="sms",
                             at=datetime.fromtimestamp(now, timezone.utc), history=store)
        if d.allowed:
            return number, None, "", None, d.evidence()
        until = d.next_allowed_at.timestamp() if d.next_allowed_at is not None else None
        return (number, ",".join(r.code for r in d.reasons),
                "; ".join(r.text for r in d.reasons), until, d.evidence())

    def _refuse(self, item: dict, number: str | None, code: str, why: str, evidence: dict, *,
                until: float | None = None) -> None:
        """A decision not to send, recorded like one not to call; a hold that will pass (until
        ``until``) is recorded once (and decided again then), a final one closes the message."""
        if until is not None and self._held.get(item["key"], (None,))[0] == code:
            self._held[item["key"]] = (code, until)
            return
        self._held[item["key"]] = (code, until or 0.0)
        self.store.submit(Store.note_decision, item["account_pk"], code, why,
                          campaign_id=self.campaign_id, channel="sms",
                          evidence=dict(evidence, rule=item["rule"], key=item["key"]))
        if until is None:
            self.store.submit(self._record, item, number, "skipped", why, evidence=evidence)

    def _sms_lines(self) -> list[str]:
        return [ln.name for ln in self.lines.lines() if ln.kind == "gsm" and ln.in_service]

    def _pick_line(self, counts: dict[str, int], *, spread: bool = True) -> str | None:
        gsm = set(self._sms_lines())
        candidates = self.pacer.ready((ln for ln in self.lines.free_lines() if ln in gsm
                                       and counts.get(ln, 0) < self.per_sim_per_day),
                                      spread=spread)
        # Spread over the SIMs: the one that sent least today.
        return min(candidates, key=lambda ln: counts.get(ln, 0)) if candidates else None

    # --- records ----------------------------------------------------------------------------
    def _record(self, store: Store, item: dict, number: str | None, state: str, detail: str,
                *, line: str | None = None, text: str | None = None,
                evidence: dict | None = None) -> str:
        sms_id = f"sms-{uuid.uuid4().hex[:12]}"
        with store.tx():
            store.db.execute(
                "INSERT INTO sms_messages (sms_id, key, campaign_id, account_pk, rule, number, "
                "line, text, state, detail, created_at, updated_at, evidence) VALUES "
                "(?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (sms_id, item["key"], self.campaign_id, item["account_pk"], item["rule"], number,
                 line, text, state, detail, store.clock.wall(), store.clock.wall(),
                 json.dumps(evidence, ensure_ascii=False, separators=(",", ":"))
                 if evidence else None))
        log.info("sms_decided", sms_id=sms_id, rule=item["rule"], state=state, line=line)
        return sms_id

    def _update(self, sms_id: str, state: str, detail: str) -> None:
        self.store.submit(_set_state, sms_id, state, detail)

    def _on_event(self, ev) -> None:
        if isinstance(ev, SmsStatus) and ev.sms_id.startswith("sms-"):
            self._update(ev.sms_id, ev.status, ev.detail)


def _set_state(store: Store, sms_id: str, state: str, detail: str) -> None:
    # A delivery report never takes a message back to "sent".
    with store.tx():
        store.db.execute(
            "UPDATE sms_messages SET state=?, detail=?, updated_at=? WHERE sms_id=? AND "
            "state NOT IN ('delivered', 'failed')", (state, detail, store.clock.wall(), sms_id))


def _free_occasion(store: Store, sms_id: str) -> None:
    """The message failed on our side: it stays on record as failed, and its occasion is free
    to be decided again (on another SIM, at the next look)."""
    with store.tx():
        store.db.execute("UPDATE sms_messages SET key = key || ':failed:' || sms_id "
                         "WHERE sms_id=?", (sms_id,))


def _ru_date(iso: str) -> str:
    try:
        return format_date(date.fromisoformat(iso), "short", locale=SMS_LOCALE)
    except (TypeError, ValueError):
        return iso or ""


def _said(code: str, why: Msg) -> tuple[str, None, dict]:
    """(reason, held until, evidence) of a refusal decided before the law's engine is asked:
    the evidence keeps the reason as the engine's do (the pages say it in their language)."""
    return why, None, {"reasons": [compliance.Reason(code, why).to_json()]}
