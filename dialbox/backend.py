"""What the web admin's pages ask of the appliance (web_admin.backend.Backend), over the layers."""
from __future__ import annotations

import asyncio
import json
import re
import shutil
import sqlite3
import uuid
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import structlog

from controller import audit
from controller import campaigns as campaigns_mod
from controller import evidence as evidence_mod
from controller import kpi as kpi_mod
from controller import occupancy as occupancy_mod
from controller import refusals as refusals_mod
from controller import sms_inbox, sms_templates
from controller.sms import RULES as SMS_RULES
from controller.sms import TEMPLATES as SMS_TEMPLATES
from controller.sms import SmsReminders
from firmware.gsm.pdu import count_parts
from controller import users as users_mod
from controller.callers import account_of_caller
from controller.calllist import import_file, preview_file
from controller.store import Store
from controller.operators import Operator
from firmware.errors import InputError, UserError
from firmware.lineapi import LineError

log = structlog.get_logger("dialbox.backend")
_KPI_BY = ("campaign", "segment", "operator", "line", "day")
CARD_WAIT_S = 0.25  # the longest a call waits for the person's desk to show the card
_STAGE = {"seized": "ringing", "dialing": "ringing", "proceeding": "ringing",
          "alerting": "ringing", "inbound": "ringing", "answered": "answered",
          "bridged": "bridged"}


def _promise(details: dict, today: date) -> dict:
    """A promise's amount and date as typed ("15000.50" or "15 000,50"; YYYY-MM-DD), checked."""
    text = re.sub(r"[\s\u00a0\u202f]", "", str(details.get("amount", ""))).replace(",", ".")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise InputError("amount: enter the promised sum, e.g. 5000") from None
    if not amount.is_finite() or amount <= 0:
        raise InputError("amount: the promised sum must be above zero")
    try:
        day = date.fromisoformat(str(details.get("date", "")))
    except ValueError:
        raise InputError("date: choose the date of the promised payment") from None
    if day < today:
        raise InputError("date: the promised date is in the past")
    return {"amount": str(amount), "date": day.isoformat()}


def _record_outcome(store: Store, call_id: str, kind: str, username: str, note: str,
                    details: dict) -> None:
    """The operator's outcome and note on a call the box placed (an inbound call that matched
    no account has no record to hold them)."""
    if store.db.execute("SELECT 1 FROM attempts WHERE call_id=?", (call_id,)).fetchone() is None:
        return
    if note.strip():
        store.note_call(call_id, note)
    store.record_disposition(call_id, kind, by=username, **details)


def _set_segments(store: Store, name: str, segments: list, by: str) -> list[dict]:
    """A campaign's new segments, checked, written and audited in one transaction."""
    cid = store.campaign(name)
    before = [sg.to_json() for sg in store.segments(cid)]
    campaigns_mod.check_segments(store, cid, segments)
    store.set_segments(cid, segments)
    after = [sg.to_json() for sg in store.segments(cid)]
    audit.record(store, who=by, action="segments", obj="campaign", key=name, before=before,
                 after=after, source="web")
    return after


def _campaign_figures(store: Store, campaign_ids: list[int]) -> dict[int, tuple[dict, int]]:
    """Each campaign's tiles and backlog (counts over its calls and leads)."""
    return {cid: (store.counters(cid), sum(store.backlog(cid).values()))
            for cid in campaign_ids}


def _funnels(store: Store, campaign_ids: list[int], by: str) -> list[list[dict]]:
    return [kpi_mod.funnel(store, cid, by=by) for cid in campaign_ids]


def _used_today(store: Store, lines: list[str], now: float) -> tuple[dict, dict]:
    """Calls placed and SMS sent on each GSM line since the start of the shop's day."""
    return store.calls_today(lines, now), store.sms_today(lines, now)


def _dnc_entries(store: Store) -> list[dict]:
    """The do-not-call list, newest first, as the page shows it (the whole list)."""
    rows = store.list_entries("dnc")
    return sorted(({"e164": r["e164"], "reason": r["reason"], "by": r["added_by"],
                    "at": r["added_at"]} for r in rows), key=lambda r: -r["at"])


def _last_sms(store: Store, campaign_id: int) -> list[dict]:
    """The campaign's last 50 SMS, newest first (an index seek on the campaign)."""
    return [_said(dict(r)) for r in store.db.execute(
        "SELECT m.created_at, a.account_id, m.rule, m.number, m.text, m.state, m.detail, "
        "m.evidence FROM sms_messages m JOIN accounts a ON a.id = m.account_pk WHERE "
        "m.campaign_id=? ORDER BY m.id DESC LIMIT 50", (campaign_id,))]


def _no_outcome(store: Store, call_id: str, wrap_s: float, who: str, position: str,
                now: float) -> None:
    if store.record_no_outcome(call_id, wrap_s, who=who, now=now):
        log.info("wrap_up_timed_out", call_id=call_id, position=position,
                 wrap_s=round(wrap_s, 1))


class BackendMixin:
    """Mixed into :class:`dialbox.appliance.Appliance`."""

    # --- agent desk -------------------------------------------------------------------------
    def _seat(self, username: str, *, create: bool = False) -> Operator | None:
        """The person's operator position; made only when he says he is ready to work, so
        someone who just looks at the desk (an admin, say) is no operator on the floor."""
        row = self.store.db.execute("SELECT role, team FROM users WHERE username=?",
                                    (username,)).fetchone()
        if row is None:
            raise UserError("no user {username}", username=username)
        op = self.operators.human(username)
        if op is None and create:
            op = self.operators.login(username)
            op.team = row["team"]
        return op

    def _seated(self, username: str) -> Operator:
        op = self._seat(username)
        if op is None:
            raise UserError("you are not on the floor: press Ready first")
        return op

    def desk(self, username: str) -> dict:
        op = self._seat(username)
        if op is None:
            return {"operator": {"name": username, "position": None, "state": "not_ready",
                                 "reason": "", "pending": None, "since_s": 0.0}, "call": None}
        out: dict[str, Any] = {"operator": {
            "name": op.name, "position": op.position, "state": op.state,
            "reason": op.reason if op.state in ("not_ready", "break") else "",
            "pending": op.pending, "since_s": round(self.clock.now() - op.since, 1)},
            "call": None}
        if op.call_id is None:
            return out
        dialer = self.runner.dialer_of(op.call_id)
        preview = dialer.previews.get(op.call_id) if dialer is not None else None
        if preview is not None:
            out["call"] = {"call_id": op.call_id, "line": None, "stage": "preview",
                           "inbound": False, "account": self._card(preview[0].account_pk)}
            return out
        call = {"call_id": op.call_id, "line": None, "stage": "ended", "inbound": False,
                "account": None,
                "offered": dialer is not None and dialer.ringing.get(op.call_id) is op,
                "outcome": op.outcome_kind if op.outcome_saved == op.call_id else None}
        for ln in self.lines.lines():
            if ln.call_id == op.call_id:
                call["line"] = ln.name
                call["stage"] = _STAGE.get(ln.state, "ended")
        att = self.store.db.execute("SELECT account_pk, line FROM attempts WHERE call_id=?",
                                    (op.call_id,)).fetchone()
        if att is not None:
            call["line"] = call["line"] or att["line"]
            call["account"] = self._card(att["account_pk"])
        else:
            call["inbound"] = True
            caller = self._inbound_callers.get(op.call_id)
            call["caller"] = caller  # the number calling (None: hidden), for the person
            pk = self._account_by_phone(caller, op.call_id) if caller else None
            call["account"] = self._card(pk) if pk else None
        out["call"] = call
        return out

    def _card(self, account_pk: int) -> dict:
        db = self.store.db
        a = db.execute("SELECT * FROM accounts WHERE id=?", (account_pk,)).fetchone()
        phones = [{"e164": r["e164"], "kind": r["kind"]} for r in db.execute(
            "SELECT e164, kind FROM phones WHERE account_pk=? ORDER BY position", (account_pk,))]
        promises = [{"amount": r["amount"], "date": r["due_date"], "status": r["state"]}
                    for r in db.execute("SELECT amount, due_date, state FROM promises WHERE "
                                        "account_pk=? ORDER BY id DESC LIMIT 5", (account_pk,))]
        history = [{"at": r["created_at"], "outcome": r["outcome"], "operator": r["operator"],
                    "disposition": r["kind"], "note": r["note"]} for r in db.execute(
            "SELECT a.created_at, a.outcome, a.operator, d.kind, a.note FROM attempts a LEFT JOIN "
            "dispositions d ON d.call_id = a.call_id WHERE a.account_pk=? AND a.state='done' "
            "ORDER BY a.id DESC LIMIT 10", (account_pk,))]
        flags = [f["kind"] for f in self.store.open_flags(account_pk)]
        script = next((s.script for s in self.store.segments(a["campaign_id"])
                       if s.name == a["segment"]), "")
        recordings = [{"call_id": r["call_id"], "at": r["started_at"], "operator": r["operator"],
                       "duration_s": r["duration_s"]} for r in db.execute(
            "SELECT r.call_id, r.started_at, r.operator, r.duration_s FROM recordings r JOIN "
            "attempts a ON a.call_id = r.call_id WHERE a.account_pk=? AND r.state IN "
            "('done', 'interrupted') ORDER BY r.started_at DESC LIMIT 20", (account_pk,))]
        sms = [{"at": m["received_at"], "text": m["text"],
                "flagged": bool(m["stop_word"] and not m["decision"])}
               for m in sms_inbox.of_account(self.store, account_pk)[:5]]
        return {"account_id": a["account_id"], "debtor_name": a["debtor_name"],
                "debt_amount": a["debt_amount"], "currency": a["currency"], "dpd": a["dpd"],
                "region": a["region"], "segment": a["segment"], "phones": phones,
                "last_outcome": a["last_outcome"], "flags": flags, "promises": promises,
                "history": history, "script": script or None, "recordings": recordings,
                "sms_received": sms}

    async def recording_file(self, username: str, call_id: str, source: str,
                             playback: bool) -> Path:
        db = self.store.db
        rec = db.execute("SELECT r.path, a.account_pk FROM recordings r LEFT JOIN attempts a ON "
                         "a.call_id = r.call_id WHERE r.call_id=? AND r.state IN ('done', "
                         "'interrupted')", (call_id,)).fetchone()
        path = Path(self.settings.data) / rec["path"] if rec is not None else None
        if path is None or not path.is_file():
            raise FileNotFoundError(call_id)
        who = db.execute("SELECT role FROM users WHERE username=?", (username,)).fetchone()
        if who is None or who["role"] not in ("supervisor", "admin"):
            op = self.operators.human(username)
            if op is None or op.call_id is None or rec["account_pk"] is None or \
                    self._account_of_call(op.call_id) != rec["account_pk"]:
                raise PermissionError(call_id)
        if playback:
            await self.store.run(audit.record, who=username, action="play", obj="recording",
                                 key=call_id, source=source)
        return path

    def _account_of_call(self, call_id: str) -> int | None:
        """The debtor of a call in progress (dialed, previewed, or an inbound caller known)."""
        row = self.store.db.execute("SELECT account_pk FROM attempts WHERE call_id=?",
                                    (call_id,)).fetchone()
        if row is not None:
            return int(row["account_pk"])
        preview = self.dialer.previews.get(call_id)
        if preview is not None:
            return preview[0].account_pk
        caller = self._inbound_callers.get(call_id)
        return self._account_by_phone(caller, call_id) if caller else None

    def _account_by_phone(self, number: str, call_id: str | None = None) -> int | None:
        dialer = self.runner.dialer_of(call_id) if call_id else None
        return account_of_caller(self.store, number,
                                 dialer.campaign_id if dialer is not None else None)

    async def desk_ready(self, username: str, ready: bool) -> None:
        if ready and self._plane() is not None and not self._audio.get(username, (False, ""))[0]:
            raise UserError("your headset is not connected: allow the microphone in the browser "
                            "and wait until the desk says the audio is on")
        op = self._seat(username, create=ready)
        if op is not None:
            self.operators.set_ready(op, ready)

    async def desk_break(self, username: str, reason: str) -> None:
        reason = " ".join(str(reason).split())[:100]
        self.operators.take_break(self._seated(username), reason)

    async def desk_presence(self, username: str, present: bool) -> None:
        op = self._seat(username)
        if op is None or present:
            return  # back: he presses Ready himself
        self.operators.desk_gone(op)
        self.runner.operator_gone(op)

    def _previewer(self, username: str, call_id: str):
        """The dialer showing this card to this operator."""
        op = self._seated(username)
        dialer = self.runner.dialer_of(call_id) if op.call_id == call_id else None
        if dialer is None or call_id not in dialer.previews:
            raise UserError("this card is no longer waiting to be dialed")
        return dialer

    # --- the desk's headset (WebRTC in the web admin, a position leg in the media plane) ----
    def _plane(self):
        plane = getattr(self, "media", None)  # the appliance's MediaPlane
        return plane if plane is not None and plane.running else None

    @property
    def _audio(self) -> dict:
        """username -> (up, reason) of each desk's headset audio."""
        if "_desk_audio" not in self.__dict__:
            self.__dict__["_desk_audio"] = {}
        return self.__dict__["_desk_audio"]

    def desk_audio(self, username: str):
        op = self._seat(username)
        plane = self._plane()
        if plane is None:
            raise UserError("this box carries no audio: its media plane is not running")
        # the position the person gets on the floor when Ready (OperatorPool.login names it)
        name = op.position if op is not None else f"desk-{username}"
        return plane.legs.get(name) or plane.add_leg(name, "position")

    async def desk_audio_state(self, username: str, up: bool, reason: str) -> None:
        op = self._seat(username)
        self._audio[username] = (up, reason)
        if op is None:
            return
        # Down: paused at once (after the call in hand, if any: the operator pool's desk_gone);
        # Ready is refused until the audio is back.
        if not up:
            await self.desk_presence(username, False)

    async def desk_dial(self, username: str, call_id: str) -> None:
        """Preview mode: the operator read the card and places the call."""
        dialer = self._previewer(username, call_id)
        try:
            await dialer.preview_dial(call_id)
        except LineError as exc:
            raise UserError("the call could not be placed: {reason}", reason=str(exc)) from None

    async def desk_skip(self, username: str, call_id: str) -> None:
        """Preview mode: the operator passes on this card (recorded; due again in an hour)."""
        await self._previewer(username, call_id).preview_skip(call_id, username)

    async def desk_take(self, username: str, call_id: str) -> None:
        """The person takes the inbound call ringing on his desk."""
        op = self._seated(username)
        dialer = self.runner.dialer_of(call_id) if op.call_id == call_id else None
        if dialer is None:
            raise UserError("this call is no longer ringing for you")
        try:
            await dialer.take(call_id, op)
        except LineError:  # the caller hung up, or it rang out and went on
            raise UserError("this call is no longer ringing for you") from None

    # --- the desk's card, pushed --------------------------------------------------------------
    @property
    def _desk_feeds(self) -> dict:
        """username -> the pushes of his open desk feeds."""
        if "_desk_feed_pushes" not in self.__dict__:
            self.__dict__["_desk_feed_pushes"] = {}
        return self.__dict__["_desk_feed_pushes"]

    def desk_subscribe(self, username: str, push):
        feeds = self._desk_feeds.setdefault(username, set())
        feeds.add(push)
        return lambda: feeds.discard(push)

    def _desks_changed(self) -> None:
        """The floor changed: the desks of the people whose state or call changed are sent
        at once (a desk nobody changed is left to its feed's own pace)."""
        seen = self.__dict__.setdefault("_desk_seen", {})
        for op in self.operators.ops:
            if op.username is None:
                continue
            now = (op.state, op.call_id, op.reason, op.pending)
            if seen.get(op.username) != now:
                seen[op.username] = now
                for push in list(self._desk_feeds.get(op.username, ())):
                    push()

    async def _show_card(self, op: Operator, call_id: str) -> None:
        """Before a call is put through to a person: his open desks are sent the card (a
        closed or stuck page does not hold the call up longer than CARD_WAIT_S)."""
        sent = [push() for push in list(self._desk_feeds.get(op.username, ()))]
        if sent:
            await asyncio.wait(sent, timeout=CARD_WAIT_S)

    async def desk_hangup(self, username: str, call_id: str) -> None:
        op = self._seated(username)
        if op.call_id != call_id:
            raise UserError("this call is not yours (it may have ended already)")
        await self.lines.hangup(call_id)

    async def desk_disposition(self, username: str, call_id: str, kind: str,
                               details: dict) -> None:
        op = self._seat(username)
        if op is None or op.call_id != call_id:
            raise InputError("this call is no longer yours to record (already recorded?)")
        if op.outcome_saved == call_id:
            raise InputError("the outcome of this call is saved already: one outcome per call")
        if op.state == "reserved":
            raise InputError("the call is not through yet: choose the outcome once you talk")
        d = dict(details)
        if kind == "promise":
            d.update(_promise(d, datetime.fromtimestamp(self.clock.wall()).date()))
        if kind == "callback":
            try:
                d["at"] = datetime.fromisoformat(str(d.get("at", ""))).astimezone()
            except ValueError:
                raise InputError("callback: give the date and time to call back") from None
        note = str(d.pop("note", "") or "")
        try:  # on the store's writer, in order with the call's own records
            await self.store.run(_record_outcome, call_id, kind, username, note, d)
        except UserError as exc:
            raise InputError(exc.message, **exc.params) from None
        if op.call_id != call_id:
            return  # saved; meanwhile the wrap-up limit ended his part in this call
        if op.state == "wrap_up":
            wrap_s = self.clock.now() - op.since
            self.operators.finish_wrap(op)
            self.store.submit(Store.record_wrap, call_id, wrap_s)
        else:  # chosen during the conversation: it is the call's outcome, no wrap-up after
            op.outcome_saved, op.outcome_kind = call_id, kind

    def _wrap_timed_out(self, op: Operator, call_id: str, wrap_s: float) -> None:
        """The campaign's wrap-up limit passed with no outcome: "no outcome" is the call's one
        (written in order with the call's own records, off the event loop)."""
        self.store.submit(_no_outcome, call_id, wrap_s, op.username or op.position,
                          op.position, self.clock.wall())

    # --- supervisor -------------------------------------------------------------------------
    def listen_audio(self, username: str):
        plane = self._plane()
        if plane is None:
            raise UserError("this box carries no audio: its media plane is not running")
        name = f"sup-{username}"
        return plane.legs.get(name) or plane.add_leg(name, "position")

    async def monitor(self, username: str, position: str, mode: str, source: str) -> None:
        from firmware.media.plane import MediaError
        sup = self.listen_audio(username)
        plane = self._plane()
        if mode == "stop":
            plane.unmonitor(sup)
            await self.store.run(audit.record, who=username, action="monitor_stop", obj="call",
                                 key=position, source=source)
            return
        op = next((o for o in self.operators.ops if o.position == position), None)
        if op is None or op.call_id is None or op.state != "talking":
            raise UserError("no live call at {position} to listen to", position=position)
        try:
            plane.monitor(position, sup, mode)
        except MediaError as exc:
            raise UserError("the call cannot be listened to: {reason}", reason=str(exc)) from None
        await self.store.run(audit.record, who=username, action=f"monitor_{mode}", obj="call",
                             key=op.call_id, after={"position": position, "operator": op.name,
                                                    "mode": mode}, source=source)

    async def campaigns(self) -> list[dict]:
        cfgs = self.store.campaign_configs()
        counts = await self.store.read(_campaign_figures, [c.id for c in cfgs])  # scans
        out = []
        for c in cfgs:
            d = self.runner.dialers.get(c.id)
            counters, backlog = counts[c.id]
            out.append(dict(c.to_json(), dialing=bool(d and d.running), counters=counters,
                            backlog=backlog))
        return out

    async def campaign_action(self, name: str, action: str, by: str = "web",
                              source: str = "web") -> None:
        await self.store.run(campaigns_mod.act, name, action, who=by, source=source,
                             data=Path(self.settings.data))
        await self.runner.reconcile()

    async def campaign_create(self, name: str, creditor: str | None, mode: str,
                              compliance: str, by: str = "web", source: str = "web") -> dict:
        cfg = await self.store.run(campaigns_mod.create, name, creditor=creditor, mode=mode,
                                   compliance=compliance, who=by, source=source)
        return cfg.to_json()

    def campaign_settings(self, name: str) -> dict:
        return self.store.campaign_config(name).to_json()

    async def campaign_update(self, name: str, changes: dict, by: str = "web",
                              source: str = "web") -> dict:
        changes = dict(changes)
        if "schedule" in changes and changes["schedule"] is not None:
            sch = changes["schedule"]
            days = sch.get("days")
            changes["schedule"] = campaigns_mod.Schedule.parse(
                ",".join(campaigns_mod.DAY_NAMES[d - 1] for d in days) if isinstance(days, list)
                else days, f"{sch.get('from', '00:00')}-{sch.get('to', '23:59')}", sch.get("tz"))
        cfg = await self.store.run(campaigns_mod.update, name, who=by, source=source, **changes)
        await self.runner.reconcile()
        return cfg.to_json()

    def _creditor_of(self, campaign: str) -> str | None:
        try:
            row = self.store.db.execute("SELECT creditor FROM campaigns WHERE name=?",
                                        (campaign,)).fetchone()
        except sqlite3.OperationalError:  # a store without campaign creditors
            return None
        return row[0] if row else None

    def calllist_preview(self, campaign: str, path: Path, filename: str) -> dict:
        self.store.campaign(campaign)  # UserError for an unknown campaign
        creditor = self._creditor_of(campaign)
        try:
            out = preview_file(path, self.store.mapping_for(creditor) if creditor else None)
        except UserError as exc:
            if "file" in exc.params:
                exc.params["file"] = Path(filename).name
            raise
        return dict(out, creditor=creditor)

    async def import_calllist(self, campaign: str, path: Path, filename: str,
                              mapping: dict | None = None, lang: str | None = None,
                              progress: Any = None) -> dict:
        # Keep the creditor's file name for the reject report and the error messages.
        self.store.campaign(campaign)  # UserError for an unknown campaign
        named = Path(self.settings.data) / "uploads" / f"{uuid.uuid4().hex[:8]}-{Path(filename).name}"
        named.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, named)
        translate = None
        if lang:
            from web_admin import i18n
            translate = lambda message, params: i18n.message_of(  # noqa: E731
                lang, UserError(message, **params))
        creditor = self._creditor_of(campaign)

        try:  # its own connection, off the loop: the dialer keeps dialing
            result = await self.store.apart(
                import_file, campaign, named, creditor=creditor, mapping=mapping,
                report_dir=Path(self.settings.data) / "reports", progress=progress,
                translate=translate)
        except UserError as exc:
            if "file" in exc.params:
                exc.params["file"] = Path(filename).name
            raise
        finally:
            named.unlink(missing_ok=True)
        summary = result.summary() if hasattr(result, "summary") else dict(result)
        if summary.get("report"):
            summary["report"] = Path(summary["report"]).name
        return summary

    def report_file(self, name: str) -> Path:
        base = (Path(self.settings.data) / "reports").resolve()
        path = (base / Path(name).name).resolve()
        if path.parent != base or not path.is_file():
            raise FileNotFoundError(name)
        return path

    async def kpi(self, campaign: str | None, by: str) -> list[dict]:
        if by not in _KPI_BY:
            raise UserError("KPI grouping {by}: one of {known}", by=by, known=", ".join(_KPI_BY))
        ids = [self.store.campaign(campaign)] if campaign else \
            [c["id"] for c in self.store.campaigns()]
        funnels = await self.store.read(_funnels, ids, by)  # months of calls: off the loop
        rows = []
        for funnel in funnels:
            for r in funnel:
                rows.append({"key": r["key"], "attempts": r.get("attempts", 0),
                             "contact_rate": r.get("contact_rate"),
                             "rpc_rate": r.get("rpc_rate"), "ptp_rate": r.get("ptp_rate"),
                             "kept_ptp_rate": r.get("kept_rate"),
                             "promised": r.get("amount_promised"),
                             "collected": r.get("amount_collected"),
                             "abandon_rate": r.get("abandon_rate"), "aht_s": r.get("aht_s"),
                             "occupancy": self._occupancy(r["key"]) if by == "operator"
                             else None})
        return rows

    def _occupancy(self, position: str | None) -> float | None:
        return occupancy_mod.occupancy(self.store, self.operators, position)

    async def dnc_list(self) -> list[dict]:
        return await self.store.read(_dnc_entries)  # the whole list: off the event loop

    async def dnc_add(self, number: str, reason: str, by: str) -> None:
        await self.store.run(Store.dnc_add, number, reason, by)

    async def dnc_remove(self, number: str, by: str) -> None:
        if not await self.store.run(Store.dnc_remove, number, by):
            raise UserError("{number} is not on the do-not-call list", number=number)

    # --- compliance: refusals -----------------------------------------------------------------
    def refusals(self, account_id: str) -> list[dict]:
        return refusals_mod.of_person(self.store, self._person(account_id)[1])

    async def refusal_record(self, account_id: str, kind: str, channel: str, by: str,
                             phone: str = "", note: str = "") -> dict:
        if channel not in ("desk", "card"):
            raise UserError("channel {channel}: a person records a refusal on the desk or "
                            "the debtor's card", channel=repr(channel))
        pk, person = self._person(account_id)
        rid = await self.store.run(refusals_mod.record, kind=kind, channel=channel, by=by,
                                   person_key=person, account_pk=pk, phone=phone or None,
                                   note=note, source="web")
        # Nothing new is dialed from now: the law is asked before every dial, preview ones too.
        return next(r for r in refusals_mod.of_person(self.store, person) if r["id"] == rid)

    async def refusal_exception(self, refusal_id: int, kind: str, reference: str, by: str,
                                phone: str = "") -> dict:
        xid = await self.store.run(refusals_mod.add_exception, int(refusal_id), kind=kind,
                                   reference=reference, by=by, phone=phone or None,
                                   source="web")
        person = self.store.db.execute("SELECT person_key FROM refusals WHERE id=?",
                                       (int(refusal_id),)).fetchone()[0]
        entry = next(r for r in refusals_mod.of_person(self.store, person)
                     if r["id"] == int(refusal_id))
        return next(x for x in entry["exceptions"] if x["id"] == xid)

    def _person(self, account_id: str) -> tuple[int, str]:
        """(account pk, person key) of an account id; one person even across campaigns."""
        rows = self.store.db.execute("SELECT id, person_key FROM accounts WHERE account_id=? "
                                     "ORDER BY id", (account_id,)).fetchall()
        if not rows:
            raise UserError("no account {account}", account=repr(account_id))
        if len({r["person_key"] for r in rows}) > 1:
            raise UserError("account {account} is in several campaigns under different "
                            "people; record it from the call or the campaign's card",
                            account=repr(account_id))
        return rows[0]["id"], rows[0]["person_key"]

    def compliance_evidence(self, account_id: str) -> dict:
        return evidence_mod.of_person(self.store, self._person(account_id)[1])

    def sms_settings(self, campaign: str) -> dict:
        return sms_templates.settings(self.store, self.store.campaign(campaign))

    def campaign_segments(self, name: str) -> list[dict]:
        return [sg.to_json() for sg in self.store.segments(self.store.campaign(name))]

    async def campaign_set_segments(self, name: str, segments: list, by: str) -> list[dict]:
        return await self.store.run(_set_segments, name, segments, by)

    async def sms_overview(self, campaign: str) -> dict:
        cid = self.store.campaign(campaign)
        saved = sms_templates.settings(self.store, cid)["templates"]
        segments = [{"name": sg.name, "sms_rules": list(sg.strategy.sms_rules)}
                    for sg in self.store.segments(cid)]
        messages = await self.store.read(_last_sms, cid)
        return {"rules": list(SMS_RULES), "templates": {r: saved.get(r) or SMS_TEMPLATES[r]
                                                        for r in SMS_RULES},
                "saved": sorted(saved), "segments": segments, "messages": messages}

    def sms_preview(self, campaign: str, rule: str, text: str) -> dict:
        cid = self.store.campaign(campaign)
        sms_templates.check(text)
        row = self.store.db.execute(
            "SELECT a.*, p.amount AS p_amount, p.due_date AS p_date FROM accounts a LEFT JOIN "
            "promises p ON p.account_pk = a.id WHERE a.campaign_id=? ORDER BY p.id IS NULL, "
            "a.id LIMIT 1", (cid,)).fetchone()
        if row is None:
            raise UserError("the campaign has no debtor yet: upload its call list first")
        sender = sms_templates.settings(self.store, cid)
        fields = SmsReminders._fields(
            row, sender, amount=row["p_amount"] if row["p_amount"] is not None
            else row["debt_amount"], date=row["p_date"] or row["due_date"] or "")
        try:
            message = sms_templates.render(text, fields, max_parts=sender["max_parts"])
        except sms_templates.Refused as exc:
            raise UserError("this message would not be sent: {why}", why=str(exc)) from None
        return {"account_id": row["account_id"], "debtor_name": row["debtor_name"],
                "text": message, "parts": count_parts(message)}

    async def sms_settings_save(self, campaign: str, by: str, changes: dict) -> dict:
        unknown = set(changes) - {"creditor_name", "contact_phone", "max_parts", "template"}
        if unknown:
            raise UserError("unknown SMS setting(s): {names}", names=", ".join(sorted(unknown)))
        template = changes.get("template")
        if template is not None:
            rule, text = str(template.get("rule", "")), str(template.get("text", ""))
            if rule not in SMS_RULES:
                raise UserError("SMS rule {rule}: one of {rules}", rule=repr(rule),
                                rules=", ".join(SMS_RULES))
            template = (rule, text)
        parts = changes.get("max_parts")
        try:
            parts = int(parts) if parts not in (None, "") else None
        except (TypeError, ValueError):
            raise UserError("SMS parts per message: a whole number, got {parts}",
                            parts=repr(parts)) from None
        return await self.store.run(sms_templates.save, self.store.campaign(campaign), by=by,
                                    source="web", template=template,
                                    creditor_name=changes.get("creditor_name"),
                                    contact_phone=changes.get("contact_phone"),
                                    max_parts=parts)

    # --- technician -------------------------------------------------------------------------
    async def lines_detail(self) -> list[dict]:
        gsm = [ln.name for ln in self.lines.lines() if ln.kind == "gsm"]
        calls, sms = await self.store.read(_used_today, gsm, self.store.clock.wall())
        out = []
        for ln in self.lines.lines():
            d = {"name": ln.name, "kind": ln.kind, "state": ln.state,
                 "in_service": ln.in_service, "reason": ln.reason}
            for k in ("signal_dbm", "registration", "operator", "imei", "imsi", "iccid", "sim",
                      "balance", "span", "link"):
                if k in ln.details:
                    d[k] = ln.details[k]
            if ln.kind == "gsm":  # a SIM's day against the caps its operator tolerates
                limits = self._limits_of(ln.name)
                d.update(calls_today=calls.get(ln.name, 0), sms_today=sms.get(ln.name, 0),
                         calls_cap=limits.get("calls_per_sim_per_day"),
                         sms_cap=limits.get("sms_per_sim_per_day", 100))  # as the SMS pacer
                pacer = getattr(self, "sms_pacer", None)
                rest = pacer.rests.get(ln.name) if pacer is not None else None
                if rest is not None and rest.until > pacer.clock.now():
                    d["sms_rest"] = {"until": rest.until_wall, "reason": rest.reason}
            out.append(d)
        return out

    def _limits_of(self, line: str) -> dict:
        try:
            ch = self.lines.channels[self.lines._index(line)]
        except (KeyError, IndexError, LineError):
            return {}
        profile = getattr(ch.driver, "profile", None)
        return dict(getattr(profile, "limits", None) or {})

    async def line_action(self, line: str, action: str, **kw: Any) -> dict | None:
        try:
            if action == "block":
                self.lines.block(line)
                return None
            if action == "unblock":
                self.lines.unblock(line)
                return None
            if action == "test_call":
                return await self._test_call(line, str(kw.get("number", "")),
                                             progress=kw.get("progress"))
            if action == "test_sms":
                return await self._test_sms(line, str(kw.get("number", "")),
                                            str(kw.get("text", "")), progress=kw.get("progress"))
            if action == "reset":
                return await self._reset_line(line, str(kw.get("reason") or "asked on the web"))
            if action == "check_balance":
                ch = self.lines.channels[self.lines._index(line)]
                check = getattr(ch.driver, "check_balance", None)
                if check is None:
                    raise UserError("line {line} has no balance to check", line=line)
                if not ch.driver.balance_code():
                    raise UserError("{line}: the profile has no balance USSD code for this "
                                    "SIM's operator ({operator})", line=line,
                                    operator=ch.driver.info.get("operator") or "?")
                return await check()
        except LineError as exc:
            raise UserError("the line refused: {reason}", reason=str(exc)) from None
        raise UserError("unknown action {action}", action=action)

    async def _reset_line(self, line: str, reason: str) -> dict:
        """A GSM line's module re-initialised (its own recovery ladder), an E1 channel RESTARTed;
        a call up on the line ends. {"reset": "module" | "channel", "state": before}."""
        ch = self.lines.channels[self.lines._index(line)]
        before = self.lines.state(line)
        if hasattr(ch.driver, "reset"):
            await ch.driver.reset(ch.local, reason=reason)
            return {"reset": "module", "state": before}
        if hasattr(ch.driver, "restart"):
            ch.driver.restart(ch.local)
            return {"reset": "channel", "state": before}
        raise UserError("line {line} cannot be reset", line=line)

    async def _test_sms(self, line: str, number: str, text: str, *, progress=None) -> dict:
        from controller.phones import dialable
        try:
            number = dialable(number)
        except ValueError:
            raise UserError("{number} is not a phone number", number=number) from None
        if not text.strip():
            raise UserError("write the text of the test SMS")
        if progress:
            progress("sending")
        out = await self.lines.send_sms(line, number, text, sms_id=f"test-{uuid.uuid4().hex[:8]}")
        return dict(out or {})

    async def _test_call(self, line: str, number: str, *, progress=None) -> dict:
        from controller.phones import dialable
        try:
            number = dialable(number)
        except ValueError:
            raise UserError("{number} is not a phone number", number=number) from None
        import asyncio
        from firmware.lineapi import CallProgress, CallReleased, CallStage
        call_id = f"test-{uuid.uuid4().hex[:8]}"
        done: asyncio.Future = asyncio.get_running_loop().create_future()

        def watch(ev) -> None:
            if getattr(ev, "call_id", None) != call_id:
                return
            if isinstance(ev, CallProgress) and progress:
                progress(ev.stage.value)
            if isinstance(ev, CallProgress) and ev.stage == CallStage.ANSWERED:
                asyncio.get_running_loop().create_task(self.lines.hangup(call_id))
            elif isinstance(ev, CallReleased) and not done.done():
                done.set_result(ev)

        self.listeners.append(watch)
        try:
            if progress:
                progress("dialing")
            await self.lines.dial(line, number, call_id=call_id)
            ev = await asyncio.wait_for(done, 90)
        finally:
            self.listeners.remove(watch)
        return {"result": ev.outcome.value, "cause": ev.q850, "reason": ev.reason,
                "ring_s": ev.ring_s, "talk_s": ev.talk_s}

    def profile_library(self):
        from firmware.profile_library import ProfileLibrary
        return ProfileLibrary(Path(self.settings.data) / "profiles")

    async def apply_profile(self, name: str) -> dict:
        from firmware import profiles
        pending = self._applying.pop(name, None)
        if pending is not None:
            if self.lines.waiting_to_replace([n for d in self.devices[name]
                                              for n in d.channel_names()]):
                pending.cancel()  # a newer save wins over one still waiting for calls to end
            await asyncio.gather(pending, return_exceptions=True)  # else it is switching: let it
        old = self.devices.get(name)
        if not old:
            return {"when": "not_running", "lines": [], "busy": []}
        lines = [n for d in old for n in d.channel_names()]
        profile = await asyncio.to_thread(profiles.load, self._profile_source(name))  # YAML
        if _lines_of(profile) != lines:
            return {"when": "next_start", "lines": lines, "busy": []}
        k = self._profile_names.index(name)
        new = (await self._gsm_drivers(profile, seed_base=1000 * k) if profile.driver == "gsm"
               else self._e1_drivers(profile, seed_base=1000 * k))
        busy = [li.name for li in self.lines.lines() if li.name in lines and li.call_id]
        task = self._applying[name] = asyncio.get_running_loop().create_task(
            self._swap_devices(name, old, new))
        # Idle lines switch at once; with a call up the page answers soon and says it waits.
        await asyncio.wait([task], timeout=2 if busy else 10)
        if task.done():
            task.result()
            return {"when": "now", "lines": lines, "busy": []}
        busy = busy or [li.name for li in self.lines.lines() if li.name in lines and li.call_id]
        return {"when": "after_calls", "lines": lines, "busy": busy}

    async def _swap_devices(self, name: str, old: list, new: list) -> None:
        try:
            await self.lines.replace_drivers(old, new)
        except BaseException:
            for drv in new:  # never started, or half: nothing of them stays open
                await drv.stop()
            self.e1_spans[:] = [sp for sp in self.e1_spans if all(sp is not d for d in new)]
            if self._applying.get(name) is asyncio.current_task():
                del self._applying[name]
            raise
        self.devices[name] = new
        self.e1_spans[:] = [sp for sp in self.e1_spans if all(sp is not d for d in old)]
        if self._applying.get(name) is asyncio.current_task():
            del self._applying[name]
        log.info("profile_applied", profile=name, lines=len(new))

    # --- admin ------------------------------------------------------------------------------
    def settings_view(self) -> dict:
        import ifaddr
        s = self.settings
        addresses = sorted({ip.ip for a in ifaddr.get_adapters() for ip in a.ips
                            if isinstance(ip.ip, str)})
        zone = getattr(s, "time_zone", None) or _system_zone()
        return {"time_zone": zone, "addresses": addresses,
                # what the recorder applies: the campaigns' compliance profiles may want longer
                "retention_days": round(getattr(getattr(self, "recording", None),
                                                "retention_days", s.recording_retention_days)),
                "retention_setting_days": round(s.recording_retention_days),
                "disk_warn_free_mb": s.disk_warn_free_mb, "disk_stop_free_mb": s.disk_stop_free_mb,
                "backup": _backup_view(self),
                "languages": ["ru", "en"], "default_language": "ru",
                "https": bool(getattr(s, "https", None))}

    async def settings_change(self, changes: dict) -> dict:
        wanted = _checked_settings(changes, self.settings_view())
        cfg = getattr(getattr(self, "runtime", None), "config", None)
        path = getattr(cfg, "source", None)
        if path and wanted:  # kept for the next start: the config file, as the console does
            from dialbox import config as config_mod
            doc = await asyncio.to_thread(config_mod.raw, path)
            out: dict = {}
            if "time_zone" in wanted:
                out["timezone"] = wanted["time_zone"]
            if "retention_days" in wanted:
                out["retention"] = {**(doc.get("retention") or {}),
                                    "recordings_days": wanted["retention_days"]}
            disk = {k: wanted[f"disk_{k}"] for k in ("warn_free_mb", "stop_free_mb")
                    if f"disk_{k}" in wanted}
            if disk:
                out["disk"] = {**(doc.get("disk") or {}), **disk}
            try:
                await asyncio.to_thread(config_mod.update, path, out)
            except UserError as exc:
                raise UserError("the configuration file refused the change: {why}",
                                why=str(exc)) from None
            for key, value in (("timezone", "time_zone"), ("recordings_days", "retention_days"),
                               ("disk_warn_free_mb", "disk_warn_free_mb"),
                               ("disk_stop_free_mb", "disk_stop_free_mb")):
                if value in wanted:
                    setattr(cfg, key, wanted[value])
        s = self.settings
        if "time_zone" in wanted:  # local times on the pages and in the log from now on
            import os
            import time as time_mod
            os.environ["TZ"] = wanted["time_zone"]
            time_mod.tzset()
            nightly = (getattr(getattr(self, "runtime", None), "extras", None) or {}).get("backup")
            if nightly is not None:  # its wait for backup.at was computed in the old zone
                nightly.replan()
        if "retention_days" in wanted:
            s.recording_retention_days = wanted["retention_days"]
        for key in ("disk_warn_free_mb", "disk_stop_free_mb"):
            if key in wanted:
                setattr(s, key, wanted[key])
        recording = getattr(self, "recording", None)
        if recording is not None:  # the recorder's purge and disk check use them at once
            recording.retention_days = self._retention_days()
            recording.policy.warn_free_mb = s.disk_warn_free_mb
            recording.policy.stop_free_mb = s.disk_stop_free_mb
            recording.check_disk()
        return {"changed": sorted(wanted), "kept": bool(path), "view": self.settings_view()}

    def users(self) -> list[dict]:
        staff = self.store.campaign_configs()
        out = []
        for r in self.store.db.execute("SELECT username, role, disabled, created_at, team FROM "
                                       "users ORDER BY username"):
            works = [c.name for c in staff if c.status != "archived" and
                     c.staffs(r["username"], team=r["team"])] if r["role"] == "operator" else []
            out.append(dict(r, campaigns=works))
        return out

    async def user_team(self, username: str, team: str | None) -> None:
        await self.store.run(users_mod.set_team, username, team)

    async def user_add(self, username: str, password: str, role: str) -> None:
        await users_mod.new_user(self.store, username, password, role=role)

    async def user_disable(self, username: str, disabled: bool) -> None:
        await self.store.run(users_mod.set_disabled, username, disabled)

    async def user_password(self, username: str, password: str) -> None:
        await users_mod.new_password(self.store, username, password)


def _lines_of(profile) -> list[str]:
    """The line names a profile's drivers will carry (before any is made)."""
    if profile.driver == "gsm":
        return [m.name for m in profile.modules]
    from firmware.e1.profile import parse_channels
    return [f"{span['name']}/{ts}" for span in profile.raw.get("spans") or []
            for ts in parse_channels(span.get("channels", "1-15,17-31"))]


def _checked_settings(changes: dict, now: dict) -> dict:
    """The settings a person changed, checked: {key: value} of those that differ from `now`."""
    from zoneinfo import available_timezones
    out: dict[str, Any] = {}
    zone = str(changes.get("time_zone", now["time_zone"])).strip()
    if zone != now["time_zone"]:
        if zone not in available_timezones():
            raise InputError("time zone: {zone} is not a time zone; write it as "
                             "Region/City, e.g. Europe/Moscow or Asia/Yekaterinburg", zone=zone)
        out["time_zone"] = zone
    if "retention_days" in changes:
        try:
            days = int(str(changes["retention_days"]).strip())
        except ValueError:
            raise InputError("recordings: write a whole number of days, e.g. 1096") from None
        if not 1 <= days <= 36500:
            raise InputError("recordings: keep them between 1 and 36500 days")
        if days != now.get("retention_setting_days", now["retention_days"]):
            out["retention_days"] = days
    disk = {}
    for key in ("disk_warn_free_mb", "disk_stop_free_mb"):
        if key in changes:
            try:
                disk[key] = float(str(changes[key]).strip().replace(",", "."))
            except ValueError:
                raise InputError("disk: write a number of megabytes, e.g. 2048") from None
            if not 0 < disk[key] < 10 ** 9:
                raise InputError("disk: more than 0 megabytes")
    warn = disk.get("disk_warn_free_mb", now["disk_warn_free_mb"])
    stop = disk.get("disk_stop_free_mb", now["disk_stop_free_mb"])
    if not stop < warn:
        raise InputError("disk: dialing must stop at less free space than the warning "
                         "comes at ({warn} MB)", warn=round(warn))
    out.update({k: v for k, v in disk.items() if v != now[k]})
    return out


def _said(message: dict) -> dict:
    """A message kept back by the law: its reasons with their templates and values (the page
    says them in its language), from the evidence stored with it."""
    evidence = message.pop("evidence", None)
    try:
        reasons = (json.loads(evidence) or {}).get("reasons") or [] if evidence else []
    except (ValueError, AttributeError):
        reasons = []
    message["said"] = [r["said"] for r in reasons if isinstance(r, dict) and r.get("said")]
    return message


def _backup_view(app) -> dict | None:
    """The nightly backup as /settings shows it: when, how many are kept, how the last one
    went (no folder or error text: the console and the log have those); None without the
    runtime."""
    runtime = getattr(app, "runtime", None)
    cfg = getattr(runtime, "config", None)
    if cfg is None:
        return None
    nightly = runtime.extras.get("backup")
    last = nightly.last if nightly is not None else None
    return {"nightly": cfg.backup_nightly, "at": cfg.backup_at, "keep": cfg.backup_keep,
            "last": None if last is None else {"at": last["at"], "ok": last["ok"]}}


def _system_zone() -> str:
    """The zone the machine's clock is set to (the shop's), as an IANA name when known."""
    import os
    link = Path("/etc/localtime")
    if os.environ.get("TZ"):
        return os.environ["TZ"]
    try:
        target = str(link.resolve())
        if "zoneinfo/" in target:
            return target.split("zoneinfo/", 1)[1]
    except OSError:
        pass
    return "UTC"
