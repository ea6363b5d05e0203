"""An in-memory backend behind the web admin, implementing web_admin.backend.Backend for tests."""
from __future__ import annotations

import asyncio
import datetime as dt
import re
from pathlib import Path

from controller import users as users_mod
from controller.calllist import NO_PHONE, normalize_phone, preview_file
from firmware.errors import InputError, UserError
from web_admin.backend import (CAMPAIGN_ACTIONS, CAMPAIGN_MODES, DISPOSITIONS, KPI_BY,
                               LINE_ACTIONS, REFUSAL_EXCEPTIONS, REFUSAL_KINDS, WRAP_AFTER)

TODAY = dt.date(2026, 11, 25)  # the fake's "today": promises in the past are refused


_SETTINGS = ("name", "creditor", "mode", "compliance", "status", "schedule", "weight",
             "wrap_limit_s", "wrap_after", "take_s", "abandon_target", "line_group", "operators",
             "teams", "demo")


def _settings(name, creditor, mode, status, compliance="ru-230fz") -> dict:
    return {"name": name, "creditor": creditor, "mode": mode, "compliance": compliance,
            "status": status, "schedule": None, "weight": 1, "wrap_limit_s": None,
            "wrap_after": "ready", "take_s": None, "abandon_target": None, "line_group": [],
            "operators": [], "teams": [],
            "demo": False}


def _settings_of(c: dict) -> dict:
    return {k: c[k] for k in _SETTINGS}


def _counters(**kw) -> dict:
    base = dict(attempts=0, answered=0, busy=0, no_answer=0, failed=0, abandoned=0,
                in_progress=0, leads_left=0, held=0)
    return {**base, **kw}


class FakeBackend:
    """The layer below, faked in memory: every call the web admin makes is recorded in `calls`."""

    def __init__(self, store, *, report_dir: Path | None = None, lines: int = 2):
        self.store = store
        self.report_dir = report_dir
        self.calls: list[tuple] = []
        self.mappings: dict[str, dict] = {}  # campaign -> the mapping its last import used
        self.segments: dict[str, list] = {}  # campaign -> its segments once set
        self.lines = [
            {"name": "gsm0", "kind": "gsm", "state": "alerting", "in_service": True, "reason": "",
             "signal_dbm": -77, "operator": "MegaFon"},
            {"name": "gsm1", "kind": "gsm", "state": "out_of_service", "in_service": False,
             "reason": "no SIM card", "signal_dbm": None, "operator": None}]
        for i in range(2, lines):
            state = ("idle", "dialing", "bridged", "alerting", "idle", "blocked")[i % 6]
            self.lines.append({"name": f"e1-{i // 30}.{i % 30 + 1}", "kind": "e1", "state": state,
                               "in_service": state != "blocked", "reason": "",
                               "signal_dbm": None, "operator": None})
        self.counters = _counters(attempts=7, answered=3, busy=1, no_answer=2, failed=1,
                                  in_progress=1, leads_left=40, held=5)
        self.operators = {"olga": {"name": "Оператор 1", "position": "pos1", "state": "not_ready",
                                   "calls": 2}}
        self.desk_calls: dict[str, dict | None] = {"olga": None}
        self.campaign_list = [
            dict(_settings("Тест", "Банк-1", "progressive", "running"), dialing=True,
                 counters=dict(self.counters), backlog=12),
            dict(_settings("Soft 1-30", "Банк-2", "predictive", "paused"), dialing=False,
                 counters=_counters(attempts=120, answered=40, leads_left=300), backlog=0)]
        self.dnc = [{"e164": "+79161234567", "reason": "просил не звонить", "by": "anna",
                     "at": 1764000000.0}]
        self.balance = "152.40 RUB"
        self.profiles_dir = (report_dir or Path(".")) / "profiles"
        self.settings = {"time_zone": "Europe/Moscow", "retention_days": 1096,
                         "retention_setting_days": 1096, "disk_warn_free_mb": 2048,
                         "disk_stop_free_mb": 512}
        self.law_retention_days = 0  # what the campaigns' compliance profiles keep at least
        self.settings_kept = True  # the box has a config file the change is written to
        self.applied = {"when": "now", "lines": ["gsm0"], "busy": []}  # apply_profile's answer
        self.test_stage_s = 0.0  # how long each stage of a test call or SMS takes here
        self.refusal_list: list[dict] = []
        self.sms_conf = {"creditor_name": "ООО «Кредит»", "contact_phone": "+74950000000",
                         "max_parts": 3, "templates": {}}
        self.plane = None  # a firmware.media.plane.MediaPlane when a test carries audio
        # call id -> {"path", "account_id", "operator", "at", "duration_s"}: recorded calls
        self.recordings: dict[str, dict] = {}
        self.audio: dict[str, bool] = {}  # username -> the desk's headset is up
        self.feeds: dict[str, set] = {}  # username -> the pushes of his open desk feeds

    # --- everyone -------------------------------------------------------------------------------
    def health(self):
        up = sum(1 for ln in self.lines if ln["in_service"])
        return {"status": "ok" if up == len(self.lines) else "degraded",
                "lines": {"total": len(self.lines), "in_service": up},
                "warnings": list(getattr(self, "warnings", []))}

    def status(self):
        return {"lines": [dict(ln) for ln in self.lines],
                "campaign": {"name": "Тест", "running": True, "counters": dict(self.counters),
                             "compliance": "ru-230fz"},
                "operators": [dict(op) for op in self.operators.values()],
                "health": self.health()}

    # --- desk -----------------------------------------------------------------------------------
    def _operator(self, username: str) -> dict:
        if username not in self.operators:
            raise UserError("no user {username}", username=username)
        return self.operators[username]

    def desk(self, username):
        op = self._operator(username)
        return {"operator": {k: op[k] for k in ("name", "position", "state")},
                "call": self.desk_calls.get(username)}

    def put_call(self, username: str, *, call_id: str = "c-1", stage: str = "bridged") -> dict:
        """The dialer bridged an answered call to this operator (test helper)."""
        call = {"call_id": call_id, "line": "gsm0", "stage": stage, "inbound": False,
                "account": {"account_id": "A-1001", "debtor_name": "Иванов Иван Иванович",
                            "debt_amount": 45210.5, "currency": "RUB", "dpd": 47,
                            "region": "Europe/Moscow", "segment": "31-60",
                            "phones": [{"e164": "+79123456789", "kind": "mobile"}],
                            "last_outcome": "answered", "flags": ["complaint"],
                            "promises": [{"amount": 5000, "date": "2026-10-01",
                                          "status": "broken"}],
                            # as the store keeps them: epoch seconds, internal keys
                            "history": [{"at": 1760958300.0, "outcome": "answered",
                                         "operator": "Оператор 2", "disposition": "callback",
                                         "note": "просил позже"},
                                        {"at": 1760871900.0, "outcome": "no_answer",
                                         "operator": None, "disposition": None, "note": None}],
                            "script": "Здравствуйте! Напоминаем о просроченном платеже."}}
        call["account"]["recordings"] = [
            {"call_id": cid, "at": r["at"], "operator": r["operator"],
             "duration_s": r["duration_s"]}
            for cid, r in self.recordings.items() if r["account_id"] == "A-1001"]
        call["offered"] = False
        self.desk_calls[username] = call
        self.operators[username]["state"] = "reserved" if stage == "preview" else "talking"
        self.push_desk(username)
        return call

    def ring_call(self, username: str, *, call_id: str = "in-1") -> dict:
        """An inbound call rings on this operator's desk, not taken yet (test helper)."""
        call = self.put_call(username, call_id=call_id, stage="ringing")
        call.update(inbound=True, offered=True, line="gsm0", caller="+79123456789")
        self.operators[username]["state"] = "reserved"
        self.push_desk(username)
        return call

    def push_desk(self, username: str) -> list:
        """The desk changed: its open feeds send it now (their futures: done once sent)."""
        return [push() for push in list(self.feeds.get(username, ()))]

    def desk_subscribe(self, username, push):
        feeds = self.feeds.setdefault(username, set())
        feeds.add(push)
        return lambda: feeds.discard(push)

    async def desk_take(self, username, call_id):
        self.calls.append(("desk_take", username, call_id))
        call = self._call(username, call_id, "this call is no longer ringing for you")
        if not call.get("offered") or getattr(self, "caller_gone", False):
            raise UserError("this call is no longer ringing for you")
        call.update(offered=False, stage="answered")
        self.push_desk(username)

    async def recording_file(self, username, call_id, source, playback):
        rec = self.recordings.get(call_id)
        if rec is None or not Path(rec["path"]).is_file():
            raise FileNotFoundError(call_id)
        role = self.store.db.execute("SELECT role FROM users WHERE username=?",
                                     (username,)).fetchone()["role"]
        mine = self.desk_calls.get(username)
        if role not in ("supervisor", "admin") and (
                mine is None or mine["account"]["account_id"] != rec["account_id"]):
            raise PermissionError(call_id)
        if playback:
            self.calls.append(("recording_played", username, call_id, source))
        return Path(rec["path"])

    async def desk_ready(self, username, ready):
        self.calls.append(("desk_ready", username, ready))
        op = self._operator(username)
        if ready and self.plane is not None and self.audio.get(username) is not True:
            raise UserError("your headset is not connected: allow the microphone and wait "
                            "for the audio")
        op.pop("pending", None)
        if op["state"] in ("free", "not_ready", "break"):
            op["state"] = "free" if ready else "not_ready"

    async def desk_break(self, username, reason):
        self.calls.append(("desk_break", username, reason))
        op = self._operator(username)
        if op["state"] in ("free", "not_ready", "break"):
            op.update(state="break", reason=reason)
        else:
            op["pending"] = reason

    async def desk_presence(self, username, present):
        self.calls.append(("desk_presence", username, present))
        op = self.operators.get(username)
        if op is not None and not present:
            if op["state"] in ("free", "not_ready", "break"):
                op.update(state="not_ready", reason="desk_gone")
            else:
                op["pending"] = "desk_gone"

    def desk_audio(self, username):
        op = self._operator(username)
        if self.plane is None:
            raise UserError("this box carries no audio: its media plane is not running")
        return self.plane.legs.get(op["position"]) or self.plane.add_leg(op["position"],
                                                                        "position")

    async def desk_audio_state(self, username, up, reason):
        self.calls.append(("desk_audio_state", username, up, reason))
        self.audio[username] = up
        if not up:
            await self.desk_presence(username, False)

    def _call(self, username, call_id,
              message="this call is not yours (it may have ended already)") -> dict:
        call = self.desk_calls.get(username)
        if call is None or call["call_id"] != call_id:
            raise InputError(message)
        return call

    async def desk_dial(self, username, call_id):
        self.calls.append(("desk_dial", username, call_id))
        call = self._call(username, call_id)
        if call["stage"] != "preview":
            raise UserError("this card is no longer waiting to be dialed")
        call["stage"] = "ringing"

    async def desk_skip(self, username, call_id):
        self.calls.append(("desk_skip", username, call_id))
        self._call(username, call_id)
        self.desk_calls.pop(username, None)
        self.operators[username]["state"] = "free"

    async def desk_hangup(self, username, call_id):
        self.calls.append(("desk_hangup", username, call_id))
        self._call(username, call_id)["stage"] = "ended"
        self.operators[username]["state"] = "wrap_up"

    async def desk_disposition(self, username, call_id, kind, details):
        self._call(username, call_id, "this call is no longer yours to record (already recorded?)")
        if kind not in DISPOSITIONS:
            raise InputError("disposition {kind}: one of {kinds}", kind=kind,
                             kinds=", ".join(DISPOSITIONS))
        if kind == "promise":
            try:
                amount = float(details.get("amount", "").replace(",", ".").replace(" ", ""))
            except ValueError:
                raise InputError("amount: enter the promised sum, e.g. 5000") from None
            if amount <= 0:
                raise InputError("amount: the promised sum must be above zero")
            try:
                date = dt.date.fromisoformat(details.get("date", ""))
            except ValueError:
                raise InputError("date: choose the date of the promised payment") from None
            if date < TODAY:
                raise InputError("date: the promised date is in the past")
        elif kind == "callback":
            try:
                dt.datetime.fromisoformat(details.get("at", ""))
            except ValueError:
                raise InputError("callback: give the date and time to call back") from None
        elif kind == "complaint" and not details.get("text", "").strip():
            raise InputError("a complaint needs its text: what the debtor complained about")
        self.calls.append(("desk_disposition", username, call_id, kind, dict(details)))
        self.desk_calls[username] = None
        self.operators[username]["state"] = "free"
        self.operators[username]["calls"] += 1

    # --- supervisor -----------------------------------------------------------------------------
    def listen_audio(self, username):
        if self.plane is None:
            raise UserError("this box carries no audio: its media plane is not running")
        name = f"sup-{username}"
        return self.plane.legs.get(name) or self.plane.add_leg(name, "position")

    async def monitor(self, username, position, mode, source):
        self.calls.append(("monitor", username, position, mode))
        sup = self.listen_audio(username)
        if mode == "stop":
            self.plane.unmonitor(sup)
            return
        if not any(op["position"] == position and op["state"] == "talking"
                   for op in self.operators.values()):
            raise UserError("no live call at {position} to listen to", position=position)
        self.plane.monitor(position, sup, mode)

    def campaigns(self):
        return [dict(c) for c in self.campaign_list]

    def _campaign(self, name) -> dict:
        for c in self.campaign_list:
            if c["name"] == name:
                return c
        raise UserError("There is no campaign named {name}.", name=name)

    async def campaign_action(self, name, action, by="web"):
        if action not in CAMPAIGN_ACTIONS:
            raise UserError("unknown action {action}: one of {actions}", action=action,
                            actions=", ".join(CAMPAIGN_ACTIONS))
        c = self._campaign(name)
        if action == "archive" and c["status"] == "running":
            raise UserError("campaign {name} is {status}: stop the campaign before archiving it",
                            name=name, status=c["status"])
        c["status"] = {"start": "running", "pause": "paused", "stop": "stopped",
                       "archive": "archived", "unarchive": "stopped"}[action]
        c["dialing"] = c["status"] == "running"
        self.calls.append(("campaign_action", name, action, by))

    async def campaign_create(self, name, creditor, mode, compliance, by="web"):
        name = (name or "").strip()
        if not name:
            raise InputError("name: give the campaign a name of 1-100 characters")
        if any(c["name"] == name for c in self.campaign_list):
            raise InputError("name: a campaign named {name} exists already", name=name)
        if mode not in CAMPAIGN_MODES:
            raise InputError("mode: {mode} is not a dialing mode; one of {modes}", mode=mode,
                             modes=", ".join(CAMPAIGN_MODES))
        if compliance not in ("ru-230fz", "ru-230fz:calendar", "us-regf", "none"):
            raise InputError("compliance: profile {name} is unknown; known: {known}",
                             name=compliance, known="ru-230fz, ru-230fz:calendar, us-regf, none")
        c = dict(_settings(name, creditor, mode, "draft", compliance), dialing=False,
                 counters=_counters(), backlog=0)
        self.campaign_list.append(c)
        self.calls.append(("campaign_create", name, by))
        return _settings_of(c)

    def campaign_settings(self, name):
        return _settings_of(self._campaign(name))

    async def campaign_update(self, name, changes, by="web"):
        c = self._campaign(name)
        for key, value in changes.items():
            if key not in _SETTINGS or key in ("status", "demo"):
                raise InputError("{key}: no such campaign setting", key=key)
            if key == "weight" and not (isinstance(value, int) and 1 <= value <= 100):
                raise InputError("weight: a whole number from 1 to 100, not {value}", value=value)
            if key == "mode" and value not in CAMPAIGN_MODES:
                raise InputError("mode: {mode} is not a dialing mode; one of {modes}", mode=value,
                                 modes=", ".join(CAMPAIGN_MODES))
            if key == "abandon_target" and value is not None:
                from controller.segments import check_target
                check_target(value, "abandon_target", 0.01 if c["compliance"].startswith(
                    "ru-") else 0.03)
            if key == "wrap_after" and value not in WRAP_AFTER:
                raise InputError("wrap_after: after the wrap-up limit the operator is made "
                                 "ready or paused, not {value}", value=value)
        c.update(changes)
        self.calls.append(("campaign_update", name, dict(changes), by))
        return _settings_of(c)

    def calllist_preview(self, campaign, path, filename):
        self._campaign(campaign)
        try:
            out = preview_file(path, self.mappings.get(campaign))
        except UserError as exc:
            if "file" in exc.params:
                exc.params["file"] = Path(filename).name
            raise
        return dict(out, creditor=None)

    async def import_calllist(self, campaign, path, filename, mapping=None, lang=None,
                              progress=None):
        self._campaign(campaign)
        if mapping:
            self.mappings[campaign] = dict(mapping)
        text = Path(path).read_bytes().decode("utf-8", errors="replace")
        rows = [r for r in text.splitlines() if r.strip()]
        mapped = mapping and any(f.startswith("phone") for f in mapping.values())
        if not rows or not mapped and "phone" not in rows[0].lower():
            raise UserError("{file}: {what} (header: {header})", file=Path(path),
                            what=UserError(NO_PHONE), header=rows[0] if rows else "")
        imported, rejected, seen, dup, bad = 0, 0, set(), 0, []
        for n, row in enumerate(rows[1:], start=2):
            phone = row.split(";")[-1].strip()
            if not re.fullmatch(r"\+?\d{10,15}", phone):
                rejected += 1
                bad.append(f"{n};bad phone")
            elif phone in seen:
                dup += 1
            else:
                seen.add(phone)
                imported += 1
        report = None
        if bad and self.report_dir is not None:
            out = self.report_dir / f"{Path(filename).stem}.rejects.csv"
            out.write_text("row;reason\n" + "\n".join(bad) + "\n", encoding="utf-8")
            report = str(out)
        if progress is not None:
            progress(len(rows) - 1, len(rows) - 1)
        self.calls.append(("import_calllist", campaign, filename))
        return {"imported": imported, "rejected": rejected, "duplicates": dup, "report": report,
                "derived_ids": False}

    def report_file(self, name):
        if self.report_dir is None or not (self.report_dir / name).is_file():
            raise FileNotFoundError(name)
        return self.report_dir / name

    def kpi(self, campaign, by):
        if by not in KPI_BY:
            raise UserError("KPI grouping {by}: one of {known}", by=by, known=", ".join(KPI_BY))
        self.calls.append(("kpi", campaign, by))
        keys = {"campaign": ["Тест", "Soft 1-30"], "segment": ["1-30", "31-60", "90+"],
                "operator": ["Оператор 1", "Оператор 2"], "line": ["gsm0", "gsm1"],
                "day": ["2026-11-24", "2026-11-25"]}[by]
        return [{"key": k, "attempts": 100 + i, "contact_rate": 0.42, "rpc_rate": 0.31,
                 "ptp_rate": 0.12, "kept_ptp_rate": 0.5, "promised": 125000.0,
                 "collected": 61000.0, "abandon_rate": 0.05 if i else 0.021, "aht_s": 185,
                 "occupancy": 0.83} for i, k in enumerate(keys)]

    def dnc_list(self):
        return list(self.dnc)

    def dnc_add(self, number, reason, by):
        try:
            e164 = normalize_phone(number)
        except ValueError as exc:
            raise UserError("{number} is not a phone number; give it as +79123456789 or "
                            "8 912 345-67-89", number=number) from None
        self.dnc.insert(0, {"e164": e164, "reason": reason, "by": by, "at": 1764050000.0})

    def dnc_remove(self, number, by):
        before = len(self.dnc)
        self.dnc = [e for e in self.dnc if e["e164"] != number]
        if len(self.dnc) == before:
            raise UserError("{number} is not on the do-not-call list", number=number)

    # --- compliance: refusals -------------------------------------------------------------------
    def refusals(self, account_id):
        self._known_account(account_id)
        return [dict(r, exceptions=[dict(x) for x in r["exceptions"]])
                for r in self.refusal_list if r["account_id"] == account_id]

    def refusal_record(self, account_id, kind, channel, by, phone="", note=""):
        self._known_account(account_id)
        if kind not in REFUSAL_KINDS:
            raise UserError(f"refusal kind {kind!r}")
        if channel not in ("desk", "card"):
            raise UserError(f"channel {channel!r}")
        e164 = None
        if kind == "third_party" or phone:
            try:
                e164 = normalize_phone(phone)
            except ValueError:
                raise UserError("{number} is not a phone number", number=repr(phone)) from None
        self.calls.append(("refusal_record", account_id, kind, channel, by, e164, note))
        entry = {"id": len(self.refusal_list) + 1, "account_id": account_id, "kind": kind,
                 "channel": channel, "at": 1764050000.0, "phone": e164, "note": note, "by": by,
                 "recorded_at": 1764050000.0, "exceptions": []}
        self.refusal_list.append(entry)
        return {k: v for k, v in entry.items() if k != "account_id"}

    def refusal_exception(self, refusal_id, kind, reference, by, phone=""):
        found = [r for r in self.refusal_list if r["id"] == int(refusal_id)]
        if not found or found[0]["kind"] != "debtor":
            raise UserError(f"no debtor's refusal #{refusal_id}")
        if kind not in REFUSAL_EXCEPTIONS or not reference.strip():
            raise UserError(f"exception {kind!r} needs a reference")
        if kind == "representative" and not phone:
            raise UserError("a representative needs a phone number")
        self.calls.append(("refusal_exception", int(refusal_id), kind, reference, by, phone))
        x = {"id": sum(len(r["exceptions"]) for r in self.refusal_list) + 1, "kind": kind,
             "reference": reference, "phone": normalize_phone(phone) if phone else None,
             "from": 1764050000.0,
             "until": 1764050000.0 + 61 * 86400 if kind == "enforcement_document" else None,
             "by": by}
        found[0]["exceptions"].append(x)
        return dict(x)

    def _known_account(self, account_id):
        if account_id not in ("A-1", "A-2") and not self.store.db.execute(
                "SELECT 1 FROM accounts WHERE account_id=?", (account_id,)).fetchone():
            raise UserError(f"no account {account_id!r}")

    def compliance_evidence(self, account_id):
        self._known_account(account_id)
        why = {"profile": "ru-230fz", "version": "2025-09-01", "zones": ["Europe/Moscow"],
               "local_times": {"Europe/Moscow": "2026-11-25T12:00:00+03:00"},
               "counters": [{"limit": "daily_limit", "window": "any 24 hours",
                             "scope": "person", "count": 0, "maximum": 1}],
               "notes": [], "reasons": [], "line": {"name": "gsm0", "number": "+79990001122"}}
        return {"calls": [{"call_id": "c-1", "campaign": "Тест", "account_id": account_id,
                           "number": "+79161234567", "line": "gsm0",
                           "created_at": 1764050000.0, "state": "done",
                           "outcome": "answered", "talk_s": 42.0, "evidence": why}],
                "not_called": [{"at": 1764060000.0, "campaign": "Тест",
                                "account_id": account_id, "channel": "voice",
                                "code": "daily_limit", "detail": "1 conversations already...",
                                "evidence": dict(why, reasons=[{"code": "daily_limit"}])}],
                "sms": [], "not_sent": []}

    def sms_settings(self, campaign):
        self._campaign(campaign)
        return dict(self.sms_conf, templates=dict(self.sms_conf["templates"]))

    def sms_settings_save(self, campaign, by, changes):
        from controller import sms_templates
        self._campaign(campaign)
        template = changes.get("template")
        if template is not None:
            sms_templates.check(str(template.get("text", "")))
            self.sms_conf["templates"][template["rule"]] = template["text"]
        for key in ("creditor_name", "contact_phone", "max_parts"):
            if key in changes:
                self.sms_conf[key] = changes[key]
        self.calls.append(("sms_settings_save", campaign, by, dict(changes)))
        return self.sms_settings(campaign)

    def campaign_segments(self, name):
        self._campaign(name)
        return [dict(sg) for sg in self.segments.get(name) or [
            {"name": "dpd 1-30", "rules": {"dpd": [1, 30]}, "script": "Добрый день!",
             "strategy": {"phone_order": ["mobile", "home", "work"], "attempts_per_day": 2,
                          "max_attempts": None, "retry_s": {}, "priority": 10, "mode": None,
                          "sms_rules": ["due_reminder"]}}]]

    async def campaign_set_segments(self, name, segments, by):
        from controller.segments import Segment
        self._campaign(name)
        checked = [Segment.from_json(sg).to_json() for sg in segments]
        names = [sg["name"] for sg in checked]
        if not names or len(set(names)) != len(names):
            raise UserError("segments {names}: give at least one, each name once",
                            names=", ".join(names))
        self.segments[name] = checked
        self.calls.append(("campaign_set_segments", name, by))
        return checked

    def sms_overview(self, campaign):
        from controller.sms import RULES, TEMPLATES
        self._campaign(campaign)
        saved = self.sms_conf["templates"]
        return {"rules": list(RULES), "templates": {r: saved.get(r) or TEMPLATES[r]
                                                    for r in RULES},
                "saved": sorted(saved),
                "segments": [{"name": "dpd 1-30", "sms_rules": ["due_reminder",
                                                                "promise_reminder"]}],
                "messages": [{"created_at": 1764000000.0, "account_id": "A-1001",
                              "rule": "promise_reminder", "number": "+79123456789",
                              "text": "Иван Иванович, завтра...", "state": "delivered",
                              "detail": None}]}

    def sms_preview(self, campaign, rule, text):
        from controller import sms_templates
        self._campaign(campaign)
        sms_templates.check(text)
        return {"account_id": "A-1001", "debtor_name": "Иванов Иван Иванович",
                "text": text.format(name="Иван Иванович", amount="5\u00a0000,00",
                                    currency="₽", date="05.12.2026", account_id="A-1001",
                                    creditor=self.sms_conf.get("creditor_name") or "Банк",
                                    contact_phone=self.sms_conf.get("contact_phone") or
                                    "+74950000000"), "parts": 1}

    # --- technician -----------------------------------------------------------------------------
    def lines_detail(self):
        out = []
        for ln in self.lines:
            d = dict(ln)
            if ln["kind"] == "gsm":
                d.update(registration="home" if ln["in_service"] else "not registered",
                         imei="861234567890123", imsi="250021234567890" if ln["in_service"]
                         else None, iccid="8970102123456789012" if ln["in_service"] else None,
                         sim="ready" if ln["in_service"] else "absent",
                         balance=self.balance if ln["in_service"] else None,
                         calls_today=12, calls_cap=200, sms_today=3, sms_cap=100)
            else:
                d.update(span="span 1", link="up")
            out.append(d)
        return out

    async def line_action(self, line, action, **kw):
        if action not in LINE_ACTIONS:
            raise UserError("unknown action {action}", action=action)
        ln = next((x for x in self.lines if x["name"] == line), None)
        if ln is None:
            raise UserError("the line refused: {reason}", reason=line)
        self.calls.append(("line_action", line, action, kw))
        if action == "block":
            ln.update(state="blocked", in_service=False, reason="blocked by a technician")
        elif action == "unblock":
            ln.update(state="idle", in_service=True, reason="")
        elif action == "reset":
            before = ln["state"]
            ln.update(state="out_of_service", in_service=False, reason="re-initialising")
            return {"reset": "module" if ln["kind"] == "gsm" else "channel", "state": before}
        elif action in ("test_call", "test_sms"):
            try:
                normalize_phone(kw["number"])
            except ValueError as exc:
                raise UserError("{number} is not a phone number", number=kw["number"]) from None
            progress = kw.get("progress") or (lambda stage: None)
            for stage in (("dialing", "alerting", "answered") if action == "test_call"
                          else ("sending",)):
                progress(stage)
                await asyncio.sleep(self.test_stage_s)
            return ({"result": "answered", "cause": 16, "reason": "normal call clearing",
                     "ring_s": 4.2, "talk_s": 0.4} if action == "test_call"
                    else {"status": "sent", "parts": 1})
        else:
            return {"balance": self.balance}
        return None

    def profile_library(self):
        from firmware.profile_library import ProfileLibrary
        return ProfileLibrary(self.profiles_dir)

    async def apply_profile(self, name):
        self.calls.append(("apply_profile", name))
        return dict(self.applied)

    # --- admin ----------------------------------------------------------------------------------
    def settings_view(self):
        return {"addresses": ["127.0.0.1", "192.168.1.20"], "backup": None,
                "languages": ["ru", "en"], "default_language": "ru", "https": False,
                **self.settings}

    async def settings_change(self, changes):
        from dialbox.backend import _checked_settings  # the box's own checks
        wanted = _checked_settings(changes, self.settings_view())
        self.calls.append(("settings_change", wanted))
        changed = sorted(wanted)
        if "retention_days" in wanted:
            wanted["retention_setting_days"] = wanted["retention_days"]
            wanted["retention_days"] = max(wanted["retention_days"], self.law_retention_days)
        self.settings.update(wanted)
        return {"changed": changed, "kept": self.settings_kept, "view": self.settings_view()}

    def users(self):
        rows = self.store.db.execute("SELECT username, role, disabled, created_at, team FROM "
                                     "users ORDER BY username").fetchall()
        return [dict(r, campaigns=["Тест"] if r["role"] == "operator" else []) for r in rows]

    def user_team(self, username, team):
        users_mod.set_team(self.store, username, team)

    def user_disable(self, username, disabled):
        users_mod.set_disabled(self.store, username, disabled)

    def user_password(self, username, password):
        users_mod.set_password(self.store, username, password)

    def user_add(self, username, password, role):
        users_mod.add(self.store, username, password, role=role)
