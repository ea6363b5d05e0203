"""The contract between the web admin and the appliance: every method a page calls, with its shapes.

The real implementation is `dialbox.appliance.Appliance`; tests use `tests.fake_backend.FakeBackend`.
Errors a person can act on are raised as `ValueError` (desk validation) or
`firmware.errors.UserError` (everything else); the web admin shows their message next to the form.
Methods marked async are awaited; the web admin also awaits a plain method's result when it is
awaitable, so an implementation may make any of them async.
"""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Protocol

OPERATOR_STATES = ("free", "reserved", "talking", "wrap_up", "not_ready", "break")
CALL_STAGES = ("preview", "ringing", "answered", "bridged", "ended")
DISPOSITIONS = ("rpc", "promise", "callback", "refusal", "dispute", "third_party",
                "wrong_number", "complaint", "no_contact")
CAMPAIGN_ACTIONS = ("start", "pause", "stop", "archive", "unarchive")
CAMPAIGN_STATUSES = ("draft", "running", "paused", "stopped", "archived")
CAMPAIGN_MODES = ("preview", "progressive", "predictive")
WRAP_AFTER = ("ready", "paused")
# What a call list's column can be (controller.importer.FIELDS); the import needs a phone.
CALLLIST_FIELDS = ("account_id", "debtor_name", "debt_amount", "currency", "dpd", "due_date",
                   "region", "tz", "creditor", "product", "birth_date", "refusal_date",
                   "phone", "phone_mobile", "phone_home",
                   "phone_work", "phone_third_party", "phone_type", "custom", "ignore")
CALLLIST_REQUIRED = ("phone",)
MONITOR_MODES = ("listen", "whisper", "barge", "stop")
KPI_BY = ("campaign", "segment", "operator", "line", "day")
KPI_COLUMNS = ("attempts", "contact_rate", "rpc_rate", "ptp_rate", "kept_ptp_rate", "promised",
               "collected", "abandon_rate", "aht_s", "occupancy")
LINE_ACTIONS = ("block", "unblock", "reset", "test_call", "test_sms", "check_balance")
REFUSAL_KINDS = ("debtor", "third_party")
REFUSAL_CHANNELS = ("desk", "card", "import")
REFUSAL_EXCEPTIONS = ("enforcement_document", "representative")
LINE_STATES = ("out_of_service", "idle", "seized", "dialing", "proceeding", "alerting",
               "answered", "bridged", "releasing", "blocked", "inbound")


class Backend(Protocol):
    """What the web admin needs from the appliance."""

    store: Any
    """A `controller.store.Store`: pages read on `.db`; every write goes through `.run` (the
    store's writer thread, never the event loop), long scans through `.read`, imports through
    `.apart`."""

    # --- everyone ------------------------------------------------------------------------------
    def health(self) -> dict:
        """{"status": ok|degraded|down, "lines": {"total", "in_service"}, "warnings": [{"code",
        "free_mb", "limit_mb"}] (code: recordings_disk_low|recordings_disk_full), ...}; public."""

    def status(self) -> dict:
        """{"lines": [{"name","kind","state","in_service","reason","signal_dbm","operator"}],
        "campaign": {"name","running","compliance","counters": {attempts, answered, busy,
        no_answer, failed, abandoned, in_progress, leads_left, held}} (the first running
        campaign, kept for the old header), "campaigns": [{"name","creditor","status" in
        CAMPAIGN_STATUSES,"running","dialing" (false outside its schedule),"compliance","mode",
        "weight","demo","pacing": None | {"mode","reason","fallback","abandon_rate"},
        "counters": {as above},"operators": {state: count of its operators}}] (not archived),
        "operators": [{"name","position","state" in OPERATOR_STATES,"calls","human",
        "since_s" (seconds in this state),"reason" (break reason, "desk_gone", "wrap_limit" or
        "missed_call" when not ready/break),"pending" (break asked for during a call),"campaign"
        (of the call held, or None),"campaigns" (running campaigns he works),"team"}],
        "health": health()}."""

    # --- agent desk (operator; supervisors and admins may open it) -----------------------------
    def desk(self, username: str) -> dict:
        """{"operator": {"name","position","state" in OPERATOR_STATES}, "call": None | {"call_id",
        "line","stage" in CALL_STAGES,"inbound": bool,"account": {"account_id","debtor_name",
        "debt_amount","currency","dpd","region","segment","phones": [{"e164","kind"}],
        "last_outcome","flags": [str],"promises": [{"amount","date","status"}],
        "history": [{"at","outcome","operator","disposition","note"}],
        "script": the segment's script or None,"sms_received": [{"at","text","flagged": reads
        like a refusal and nobody decided yet}] (the newest five)},"offered": true while an
        inbound call rings on this desk, waiting to be taken,"caller": the number calling in
        (inbound; None: hidden),"outcome": the kind in DISPOSITIONS already saved for
        this call (one outcome per call), or None}}.
        Raises UserError when the user is not seated at an operator position."""

    async def desk_ready(self, username: str, ready: bool) -> None:
        """Ready (free, takes calls) or not ready (no calls are put through). Ready also ends
        a break, and cancels a break asked for during a call."""

    async def desk_break(self, username: str, reason: str) -> None:
        """A break with a reason: at once when idle; after the current call and its wrap-up
        otherwise (no new call is reserved meanwhile). Ready ends it."""

    async def desk_presence(self, username: str, present: bool) -> None:
        """The desk's WebSocket opened (True) or closed / missed its heartbeat (False). Gone:
        not ready until the person presses Ready (after the call in hand, if any)."""

    async def desk_dial(self, username: str, call_id: str) -> None:
        """Preview mode: place the call of the card shown (stage "preview"); UserError when
        the card is gone or no line is free."""

    async def desk_skip(self, username: str, call_id: str) -> None:
        """Preview mode: pass on the card shown; the operator gets the next one."""

    async def desk_hangup(self, username: str, call_id: str) -> None:
        """Hang up this operator's call; the operator goes to wrap-up."""

    async def desk_take(self, username: str, call_id: str) -> None:
        """Take the inbound call ringing on this desk (call "offered": true): the line is
        answered, the audio is put through when it confirms. UserError when it no longer rings
        here (the caller hung up, or it rang out and went to another operator)."""

    def desk_subscribe(self, username: str, push: Any) -> Any:
        """The desk feed of `username` is open: `push()` makes it send the desk now and returns
        a future done once it is sent. The box calls it when the person's state or call changes,
        and awaits it (briefly) before putting a call through, so the card never comes after
        the audio. Returns a function that ends the subscription."""

    def desk_audio(self, username: str) -> Any:
        """The operator position's leg in the media plane (firmware.media.plane.Leg, added when
        missing): the desk's headset (WebRTC) feeds it and hears it. UserError when the user has
        no position or this box carries no audio."""

    async def desk_audio_state(self, username: str, up: bool, reason: str) -> None:
        """The desk's headset audio came up, or went down for `reason` ("network", "tab_closed",
        "microphone", "replaced", "stopped"): down pauses the operator at once, with that reason,
        and no call is handed to them until the audio is back and they press Ready."""

    async def desk_disposition(self, username: str, call_id: str, kind: str,
                               details: dict) -> None:
        """Record the outcome of the call; ends wrap-up, the operator is free again.
        Given during the conversation it is the call's one outcome: no wrap-up follows the
        call, and a second outcome for the call is refused (ValueError); refused too while the
        call is not yet put through. kind in DISPOSITIONS; details are
        the strings as typed, only these keys: promise {"amount": "15000.50" (the web admin
        reads the locale's "15 000,50" first), "date": "YYYY-MM-DD"}, callback {"at":
        "YYYY-MM-DDTHH:MM"}, complaint {"text"}; any kind may carry "note" (free text kept in
        the history: history rows have "note").
        Raises ValueError("field: what is wrong") on bad details or a call that is not this
        operator's; the page shows the message next to the fields."""

    # --- supervisor ------------------------------------------------------------------------------
    async def recording_file(self, username: str, call_id: str, source: str,
                             playback: bool) -> Path:
        """The Ogg/Opus file of the recorded conversation `call_id`, for `username` to play.
        A supervisor or an admin may play any; an operator only the recordings of the debtor
        of the call they are on (PermissionError otherwise). `playback` (the player's first
        request, not a seek) is audited: object "recording", who, from `source`.
        FileNotFoundError when there is no such recording (or its file is gone)."""

    def listen_audio(self, username: str) -> Any:
        """The supervisor's own position leg in the media plane (added when missing), fed and
        heard by the dashboard's headset (WebRTC). UserError when this box carries no audio."""

    async def monitor(self, username: str, position: str, mode: str, source: str) -> None:
        """The supervisor listens to the live call at `position` (mode "listen"), speaks to the
        operator only ("whisper") or to both ("barge"); "stop" leaves it. Audited (object
        "call", who, from `source`). UserError when no live call is there to monitor."""

    def campaigns(self) -> list[dict]:
        """[{campaign_settings(), "dialing": bool, "counters": {as in status()},
        "backlog": int}] for every campaign, archived ones too."""

    async def campaign_action(self, name: str, action: str, by: str) -> None:
        """action in CAMPAIGN_ACTIONS, done by user `by` (audited); UserError for an unknown
        campaign or action, or one the status does not allow (archive a running one)."""

    async def campaign_create(self, name: str, creditor: str | None, mode: str,
                              compliance: str, by: str) -> dict:
        """A new draft campaign (dials once started); campaign_settings() of it. UserError on
        an empty or taken name, an unknown mode or compliance profile."""

    def campaign_settings(self, name: str) -> dict:
        """{"name","creditor","mode","compliance","status","schedule": None | {"days": [ISO
        weekdays 1-7],"from": "HH:MM","to": "HH:MM" (24:00 allowed),"tz"},"weight" (1-100),
        "wrap_limit_s" (None: no limit),"wrap_after" in WRAP_AFTER,"take_s" (seconds an
        offered call rings on a desk; None: 15),"abandon_target" (the
        pacing target, a share of live answers, at most the law's; None: the law's limit),
        "line_group": [line name
        patterns; empty: every line],"operators": [user names],"teams": [team names] (both
        empty: every operator),"demo": bool}; UserError for an unknown campaign."""

    async def campaign_update(self, name: str, changes: dict, by: str) -> dict:
        """Change any of the keys of campaign_settings() but status and demo ("name" renames);
        the running box follows at once. Returns the new settings; UserError says what is
        wrong (the message names the field)."""

    def calllist_preview(self, campaign: str, path: Path, filename: str) -> dict:
        """What the uploaded file at `path` holds: {"columns": [header], "rows": [first rows,
        cells as text], "mapping": {column: field in CALLLIST_FIELDS (guessed, or the
        campaign's creditor's saved mapping)}, "rows_total", "creditor"}. UserError when it is
        no table (its "file" param is the person's file name)."""

    async def import_calllist(self, campaign: str, path: Path, filename: str,
                              mapping: dict | None = None, lang: str | None = None,
                              progress: Any = None) -> dict:
        """Import the uploaded CSV/XLSX at `path` (original name `filename`) into `campaign`
        with `mapping` ({column: field}, saved for the campaign's creditor), without blocking
        the loop; `progress(rows read, rows)` as it goes; the reject report (the row's cells,
        the reason) in `lang`. {"imported","updated","rejected","duplicates","derived_ids"
        (the file had no account number: made from phone and name),"report": basename or None}.
        Raises UserError with a message when the file is not a call list."""

    def report_file(self, name: str) -> Path:
        """The reject report with this file name (a basename from import_calllist's "report");
        raises FileNotFoundError when there is none."""

    def kpi(self, campaign: str | None, by: str) -> list[dict]:
        """Funnel rows for `campaign` (None: all) grouped `by` (KPI_BY): {"key": group value,
        attempts, contact_rate, rpc_rate, ptp_rate, kept_ptp_rate (0..1), promised, collected
        (money), abandon_rate (0..1), aht_s (seconds), occupancy (0..1)}."""

    async def dnc_list(self) -> list[dict]:
        """[{"e164","reason","by","at" (epoch seconds)}], newest first."""

    def dnc_add(self, number: str, reason: str, by: str) -> None:
        """Put a number on the do-not-call list; UserError for a number that is not a phone."""

    def dnc_remove(self, number: str, by: str) -> None:
        """Take a number off the list; UserError when it is not there."""

    # --- compliance: refusals (the desk and the debtor's card record them) --------------------
    def refusals(self, account_id: str) -> list[dict]:
        """The debtor's refusals of interaction and his third parties' withdrawals of consent,
        oldest first: [{"id","kind" in REFUSAL_KINDS,"channel" in REFUSAL_CHANNELS,"at" (epoch
        seconds, in force from),"phone" (third party; else None),"note","by","recorded_at",
        "exceptions": [{"id","kind" in REFUSAL_EXCEPTIONS,"reference","phone","from","until"
        (epoch seconds; until None: no end),"by"}]}]. UserError for an unknown account."""

    def refusal_record(self, account_id: str, kind: str, channel: str, by: str,
                       phone: str = "", note: str = "") -> dict:
        """Record, audited, that the debtor refused interaction (kind "debtor") or that the
        third party on `phone` withdrew consent ("third_party"), in force now: every call and
        SMS to him (to that number) stops at once. channel "desk" or "card". Returns the entry as
        refusals() lists it. UserError for an unknown account, kind, channel or a bad phone."""

    def refusal_exception(self, refusal_id: int, kind: str, reference: str, by: str,
                          phone: str = "") -> dict:
        """An audited exception to a debtor's refusal: "enforcement_document" (reference: its
        number and date; contact allowed again for two months from now) or "representative"
        (reference: his name; he may be called on `phone`). Returns the exception as refusals()
        lists it; UserError on bad input or an unknown refusal."""

    def compliance_evidence(self, account_id: str) -> dict:
        """Why this debtor was (not) called or messaged, newest first, across his accounts:
        {"calls": [{"call_id","campaign","account_id","number","line","created_at","state",
        "outcome","talk_s","evidence"}], "not_called": [{"at","campaign","account_id",
        "channel","code","detail","evidence"}], "sms": [{"sms_id","campaign","account_id",
        "rule","number","line","created_at","state","detail","evidence"}], "not_sent": [as
        not_called]}. evidence: {"profile","version","zones","local_times","counters": [{"limit",
        "window","scope","count","maximum",...}],"notes","reasons","line": {"name","number"}}.
        UserError for an unknown account."""

    # --- compliance: who a campaign's SMS come from (the SMS page) ---------------------------
    def sms_settings(self, campaign: str) -> dict:
        """{"creditor_name","contact_phone" (E.164),"max_parts" (SMS per message, 1..10),
        "templates": {rule: text} (saved ones; the bundled ones apply to the other rules)}."""

    def campaign_segments(self, name: str) -> list[dict]:
        """The campaign's segments in matching order: [{"name","rules": {"dpd": [min, max],
        ...},"strategy": {"phone_order","attempts_per_day","max_attempts","retry_s": {outcome:
        seconds},"priority","mode","sms_rules"},"script"}]; UserError for an unknown one."""

    async def campaign_set_segments(self, name: str, segments: list, by: str) -> list[dict]:
        """Replace them (audited; accounts are re-assigned); UserError naming what is wrong."""

    async def sms_overview(self, campaign: str) -> dict:
        """{"rules": [rule], "templates": {rule: the text in use}, "saved": [rules with a
        saved template], "segments": [{"name","sms_rules"}], "messages": [{"created_at",
        "account_id","rule","number","text","state","detail","said": [the law's reasons for
        keeping it back, as firmware.errors.msg_json]}] (the last 50, newest first)}."""

    def sms_preview(self, campaign: str, rule: str, text: str) -> dict:
        """`text` rendered for a real debtor of the campaign (one with a promise if any):
        {"account_id","debtor_name","text","parts"}; UserError saying why it would not be
        sent or saved (no creditor or phone, too long, a bad field, no debtor yet)."""

    def sms_settings_save(self, campaign: str, by: str, changes: dict) -> dict:
        """Save (audited) any of "creditor_name", "contact_phone", "max_parts" and "template":
        {"rule","text"}; a template must contain {creditor} and {contact_phone}. Returns the
        settings as sms_settings(). UserError with the reason (what to add, a bad phone...)."""

    # --- technician ------------------------------------------------------------------------------
    async def lines_detail(self) -> list[dict]:
        """[{"name","kind" (gsm|e1),"state","in_service","reason", GSM: "signal_dbm",
        "registration","operator","imei","imsi","iccid","sim","balance", "calls_today","calls_cap",
        "sms_today","sms_cap" (caps None when the profile sets none); E1: "span","link"}]."""

    async def line_action(self, line: str, action: str, **kw: Any) -> dict | None:
        """block | unblock -> None; reset(reason=...) -> {"reset": "module" | "channel",
        "state": the state before} (a GSM module re-initialised, an E1 channel RESTARTed; a call
        up on the line ends); test_call(number=...) -> {"result", ...};
        check_balance -> {"balance", ...}. UserError for an unknown line or a bad number."""

    def profile_library(self) -> Any:
        """The box's hardware profiles, bundled and the shop's own
        (firmware.profile_library.ProfileLibrary)."""

    async def apply_profile(self, name: str) -> dict:
        """Put the saved profile `name` to use without touching the other devices (their lines
        and calls go on): {"when", "lines": its lines, "busy": those with a call up}. when:
        "now" (its lines restarted with it), "after_calls" (a call is up: its lines take no new
        call and switch when their calls end), "next_start" (it adds or removes lines),
        "not_running" (the box does not run it)."""

    # --- admin -----------------------------------------------------------------------------------
    def settings_view(self) -> dict:
        """What /settings shows: {"time_zone", "addresses": [str], "retention_days" (what the
        recorder keeps: the longer of the box's setting and its campaigns' law),
        "retention_setting_days", "disk_warn_free_mb", "disk_stop_free_mb",
        "backup": {"nightly": bool, "at": "HH:MM", "keep": int, "last": None | {"at", "ok"}}
        | None, "languages": [str], "default_language",
        "https": bool}."""

    async def settings_change(self, changes: dict) -> dict:
        """Change any of {"time_zone", "retention_days", "disk_warn_free_mb",
        "disk_stop_free_mb"} (text as typed): checked (InputError "field: ..."), applied at once
        (no restart), and written to the box's configuration file when it runs with one.
        {"changed": [keys that differed], "kept": bool (False: until the next start),
        "view": settings_view() after}."""

    def users(self) -> list[dict]:
        """[{"username","role","disabled","created_at","team" (or None),"campaigns": [names of
        the campaigns an operator works, by name or team]}]."""

    def user_team(self, username: str, team: str | None) -> None:
        """Put a user in a team (None: in none); UserError for a bad name."""

    def user_add(self, username: str, password: str, role: str) -> None:
        """UserError on a bad name, role, short password or an existing user."""

    def user_disable(self, username: str, disabled: bool) -> None:
        """Disable (cannot sign in; sessions end) or enable; UserError for the last admin."""

    def user_password(self, username: str, password: str) -> None:
        """An admin sets a new password (the user's sessions end); UserError when short."""


def contract_problems(impl: object) -> list[str]:
    """What `impl` lacks or spells differently from Backend (empty: it keeps the contract)."""
    problems = [] if hasattr(impl, "store") else ["store: missing"]
    for name, member in vars(Backend).items():
        if name.startswith("_") or not inspect.isfunction(member):
            continue
        got = getattr(impl, name, None)
        if not callable(got):
            problems.append(f"{name}: missing")
            continue
        want, have = _named_params(member)[1:], _named_params(got)
        if have[:len(want)] != want:
            problems.append(f"{name}: takes ({', '.join(have)}), the contract says "
                            f"({', '.join(want)})")
    return problems


def _named_params(fn) -> list[str]:
    return [p.name for p in inspect.signature(fn).parameters.values()
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
