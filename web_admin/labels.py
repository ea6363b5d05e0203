"""The names people read for the internal keys of states, outcomes, roles and columns."""
from __future__ import annotations

import re

from controller.compliance.profiles import window_parts
from firmware.errors import Msg
from web_admin.i18n import N_, NP_, message_of, pgettext, translations

# family -> key -> (context, English); the context keeps apart words that differ in Russian.
LABELS: dict[str, dict[str, tuple[str, str]]] = {
    "st": {
        "out_of_service": NP_("line state", "out of service"),
        "idle": NP_("line state", "idle"),
        "seized": NP_("line state", "seized"),
        "dialing": NP_("line state", "dialing"),
        "proceeding": NP_("line state", "proceeding"),
        "alerting": NP_("line state", "ringing"),
        "answered": NP_("line state", "answered"),
        "bridged": NP_("line state", "talking"),
        "releasing": NP_("line state", "releasing"),
        "blocked": NP_("line state", "blocked"),
        "inbound": NP_("line state", "inbound"),
    },
    "op": {
        "free": NP_("operator state", "free"),
        "reserved": NP_("operator state", "waiting for a call"),
        "talking": NP_("operator state", "talking"),
        "wrap_up": NP_("operator state", "wrap-up"),
        "not_ready": NP_("operator state", "not ready"),
        "break": NP_("operator state", "on a break"),
    },
    "role": {
        "admin": NP_("role", "admin"),
        "supervisor": NP_("role", "supervisor"),
        "technician": NP_("role", "technician"),
        "operator": NP_("role", "operator"),
    },
    "desk": {
        "waiting": NP_("desk state", "Waiting for a call"),
        "reserved": NP_("desk state", "A call is being dialed"),
        "talking": NP_("desk state", "Talking"),
        "wrap_up": NP_("desk state", "Wrap-up"),
        "not_ready": NP_("desk state", "Not ready"),
        "break": NP_("desk state", "On a break"),
        "offline": NP_("desk state", "No desk"),
        "connecting": NP_("desk state", "Connecting…"),
        "preview": NP_("desk state", "Card: call when you are ready"),
        "ringing": NP_("desk state", "Incoming call: take it"),
    },
    "break": {  # the reasons an operator gives for a break (web_admin.desk.BREAK_REASONS)
        "lunch": NP_("break reason", "lunch"),
        "rest": NP_("break reason", "rest"),
        "training": NP_("break reason", "training"),
        "technical": NP_("break reason", "technical problem"),
        "other": NP_("break reason", "other"),
    },
    "stage": {
        "ringing": NP_("call stage", "ringing"),
        "answered": NP_("call stage", "answered"),
        "bridged": NP_("call stage", "connected"),
        "ended": NP_("call stage", "ended"),
        "preview": NP_("call stage", "card preview"),
        "starting": NP_("call stage", "starting"),
        "dialing": NP_("call stage", "dialing"),
        "proceeding": NP_("call stage", "network is connecting"),
        "alerting": NP_("call stage", "ringing"),
        "sending": NP_("call stage", "sending"),
    },
    "out": {
        "promise": NP_("outcome", "Promise to pay"),
        "rpc": NP_("outcome", "Right party contact"),
        "callback": NP_("outcome", "Call back"),
        "refusal": NP_("outcome", "Refuses to pay"),
        "dispute": NP_("outcome", "Disputes the debt"),
        "third_party": NP_("outcome", "Third party"),
        "wrong_number": NP_("outcome", "Wrong number"),
        "complaint": NP_("outcome", "Complaint"),
        "no_contact": NP_("outcome", "No contact"),
        "no_outcome": NP_("outcome", "No outcome chosen (wrap-up time ran out)"),
    },
    "attempt": {  # what became of a call attempt (firmware.lineapi.Outcome and the dialer's)
        "answered": NP_("call result", "answered"),
        "busy": NP_("call result", "busy"),
        "no_answer": NP_("call result", "no answer"),
        "rejected": NP_("call result", "rejected"),
        "unreachable": NP_("call result", "unreachable"),
        "invalid_number": NP_("call result", "invalid number"),
        "congestion": NP_("call result", "network busy"),
        "failed": NP_("call result", "failed"),
        "abandoned": NP_("call result", "abandoned"),
        "interrupted": NP_("call result", "interrupted"),
        "skipped": NP_("call result", "skipped"),
        "dialing": NP_("call result", "in progress"),
        "done": NP_("call result", "finished"),
        "line_fault": NP_("call result", "line fault (not counted)"),
    },
    "q850": {  # why the network ended a call: Q.850 cause values (firmware.lineapi.Q850_NAMES)
        "1": NP_("release cause", "unallocated number"),
        "3": NP_("release cause", "no route to destination"),
        "16": NP_("release cause", "normal clearing"),
        "17": NP_("release cause", "user busy"),
        "18": NP_("release cause", "no user responding"),
        "19": NP_("release cause", "no answer from user"),
        "20": NP_("release cause", "subscriber absent"),
        "21": NP_("release cause", "call rejected"),
        "22": NP_("release cause", "number changed"),
        "27": NP_("release cause", "destination out of order"),
        "28": NP_("release cause", "invalid number format"),
        "31": NP_("release cause", "normal, unspecified"),
        "34": NP_("release cause", "no circuit available"),
        "38": NP_("release cause", "network out of order"),
        "41": NP_("release cause", "temporary failure"),
        "42": NP_("release cause", "switching equipment congestion"),
        "44": NP_("release cause", "requested channel not available"),
        "47": NP_("release cause", "resource unavailable"),
        "96": NP_("release cause", "mandatory information element missing"),
        "97": NP_("release cause", "message type non-existent"),
        "98": NP_("release cause", "message not compatible with call state"),
        "99": NP_("release cause", "information element non-existent"),
        "100": NP_("release cause", "invalid information element contents"),
        "101": NP_("release cause", "message not compatible with call state"),
        "102": NP_("release cause", "recovery on timer expiry"),
        "111": NP_("release cause", "protocol error"),
        "127": NP_("release cause", "interworking, unspecified"),
    },
    "cms": {  # why the network refused an SMS: +CMS ERROR codes (firmware.gsm.errors.CMS)
        "8": NP_("SMS error", "operator determined barring"),
        "10": NP_("SMS error", "call barred"),
        "21": NP_("SMS error", "short message transfer rejected"),
        "27": NP_("SMS error", "destination out of service"),
        "28": NP_("SMS error", "unidentified subscriber"),
        "29": NP_("SMS error", "facility rejected"),
        "30": NP_("SMS error", "unknown subscriber"),
        "38": NP_("SMS error", "network out of order"),
        "41": NP_("SMS error", "temporary failure"),
        "42": NP_("SMS error", "congestion"),
        "47": NP_("SMS error", "resources unavailable, unspecified"),
        "50": NP_("SMS error", "requested facility not subscribed"),
        "69": NP_("SMS error", "requested facility not implemented"),
        "192": NP_("SMS error", "SC busy"),
        "193": NP_("SMS error", "no SC subscription"),
        "194": NP_("SMS error", "SC system failure"),
        "330": NP_("SMS error", "SMSC address unknown"),
        "331": NP_("SMS error", "no network service"),
        "332": NP_("SMS error", "network timeout"),
        "500": NP_("SMS error", "unknown error"),
    },
    "sms_decision": {  # a person's word on a received SMS that reads like a refusal
        "refusal_recorded": NP_("SMS decision", "refusal recorded"),
        "not_a_refusal": NP_("SMS decision", "not a refusal"),
    },
    "sms_decide": {  # the buttons that give it
        "refusal_recorded": NP_("SMS decision", "Record the refusal"),
        "not_a_refusal": NP_("SMS decision", "Not a refusal"),
    },
    "sms_state": {
        "skipped": NP_("SMS state", "not sent"),
        "queued": NP_("SMS state", "queued"),
        "sent": NP_("SMS state", "sent"),
        "delivered": NP_("SMS state", "delivered"),
        "failed": NP_("SMS state", "failed"),
        "received": NP_("SMS state", "received"),
    },
    "decision": {
        "skip": NP_("compliance decision", "not called"),
        "dial": NP_("compliance decision", "called"),
        "send": NP_("compliance decision", "sent"),
        "hold": NP_("compliance decision", "held"),
    },
    "reason": {
        "dnc": NP_("decision reason", "on the do-not-call list"),
        "unknown_timezone": NP_("decision reason", "local time unknown"),
        "outside_hours": NP_("decision reason", "outside the allowed hours"),
        "daily_limit": NP_("decision reason", "daily contact limit"),
        "weekly_limit": NP_("decision reason", "weekly contact limit"),
        "monthly_limit": NP_("decision reason", "monthly contact limit"),
        "over_limit": NP_("decision reason", "contact limit"),
        "no_phone": NP_("decision reason", "no usable phone"),
        "complaint": NP_("decision reason", "complaint"),
        "dispute": NP_("decision reason", "dispute"),
        "sms_reply": NP_("decision reason", "a reply SMS reads like a refusal: waiting for a person"),
        "refusal": NP_("decision reason", "refused interaction"),
        "consent_withdrawn": NP_("decision reason", "third party withdrew consent"),
        "holiday_hours": NP_("decision reason", "outside the hours of a day off"),
        "regf_7in7": NP_("decision reason", "7 calls in 7 days on this debt"),
        "regf_after_conversation": NP_("decision reason", "7 days after a conversation"),
        "sms_sender": NP_("decision reason", "the SMS would not say who sends it, or is too long"),
        "allowed": NP_("decision reason", "allowed by the law"),
    },
    "refusal_kind": {
        "debtor": NP_("who refused", "the debtor"),
        "third_party": NP_("who refused", "a third party (consent withdrawn)"),
    },
    "refusal_channel": {
        "desk": NP_("refusal taken", "on a call"),
        "card": NP_("refusal taken", "on the card"),
        "import": NP_("refusal taken", "from an imported list"),
        "sms": NP_("refusal taken", "in a reply SMS"),
    },
    "refusal_exception": {
        "enforcement_document": NP_("refusal exception", "enforcement document (2 months)"),
        "representative": NP_("refusal exception", "representative"),
    },
    "audit": {
        "campaign": NP_("audited object", "campaign"),
        "calllist": NP_("audited object", "call list"),
        "profile": NP_("audited object", "hardware profile"),
        "user": NP_("audited object", "user"),
        "setting": NP_("audited object", "setting"),
        "dnc": NP_("audited object", "do-not-call list"),
        "refusal": NP_("audited object", "refusal"),
        "complaint": NP_("audited object", "complaint"),
        "recording": NP_("audited object", "recording"),
        "call": NP_("audited object", "live call"),
        "line": NP_("audited object", "line"),
        "session": NP_("audited object", "session"),
        "api_token": NP_("audited object", "integration token"),
        "console": NP_("audited object", "console"),
        "backup": NP_("audited object", "backup"),
    },
    "report": {
        "funnel": NP_("report", "Funnel"),
        "heatmap": NP_("report", "Contacts by hour and weekday"),
        "lines": NP_("report", "Lines: ASR and ACD"),
        "abandons": NP_("report", "Abandoned calls, 30 days"),
        "operators": NP_("report", "Operators: talk and wrap-up"),
    },
    "sms": {  # SMS rules (controller.sms.RULES)
        "promise_confirmation": NP_("sms rule", "Promise confirmed"),
        "promise_reminder": NP_("sms rule", "Reminder the day before a promise"),
        "not_reached": NP_("sms rule", "We could not reach you"),
        "due_reminder": NP_("sms rule", "Payment overdue"),
    },
    "field": {  # what a call list's column holds (web_admin.backend.CALLLIST_FIELDS)
        "account_id": NP_("list field", "Account number"),
        "debtor_name": NP_("list field", "Debtor's name"),
        "debt_amount": NP_("list field", "Debt"),
        "currency": NP_("list field", "Currency"),
        "dpd": NP_("list field", "Days past due"),
        "due_date": NP_("list field", "Due date"),
        "region": NP_("list field", "Region"),
        "tz": NP_("list field", "Time zone"),
        "creditor": NP_("list field", "Creditor"),
        "product": NP_("list field", "Product"),
        "birth_date": NP_("list field", "Date of birth"),
        "refusal_date": NP_("list field", "Refused interaction on"),
        "phone": NP_("list field", "Phone"),
        "phone_mobile": NP_("list field", "Mobile phone"),
        "phone_home": NP_("list field", "Home phone"),
        "phone_work": NP_("list field", "Work phone"),
        "phone_third_party": NP_("list field", "Third party's phone"),
        "phone_type": NP_("list field", "Phone type"),
        "custom": NP_("list field", "Keep as extra data"),
        "ignore": NP_("list field", "Do not import"),
    },
    "flag": {
        "complaint": NP_("debtor flag", "complaint"),
        "dispute": NP_("debtor flag", "dispute"),
        "sms_reply": NP_("debtor flag", "reply SMS to decide"),
        "vulnerable": NP_("debtor flag", "vulnerable"),
        "bankrupt": NP_("debtor flag", "bankrupt"),
        "lawyer": NP_("debtor flag", "represented"),
    },
    "phone": {
        "mobile": NP_("phone kind", "mobile"),
        "home": NP_("phone kind", "home"),
        "work": NP_("phone kind", "work"),
        "other": NP_("phone kind", "other"),
        "third_party": NP_("phone kind", "third party"),
    },
    "phone_status": {
        "ok": NP_("phone status", "in use"),
        "bad": NP_("phone status", "wrong number"),
        "dnc": NP_("phone status", "do not call"),
        "invalid": NP_("phone status", "invalid"),
    },
    "ptp": {
        "pending": NP_("promise state", "pending"),
        "open": NP_("promise state", "pending"),
        "kept": NP_("promise state", "kept"),
        "broken": NP_("promise state", "broken"),
    },
    "mode": {
        "preview": NP_("dialing mode", "preview"),
        "progressive": NP_("dialing mode", "progressive"),
        "predictive": NP_("dialing mode", "predictive"),
        "blended": NP_("dialing mode", "blended"),
    },
    "warn": {
        "recordings_disk_low": NP_("warning", "Little disk space left for recordings"),
        "recordings_disk_full": NP_("warning", "The recordings disk is full: automatic "
                                               "dialing is paused until space is freed"),
    },
    "cs": {
        "draft": NP_("campaign state", "draft"),
        "running": NP_("campaign state", "dialing"),
        "paused": NP_("campaign state", "paused"),
        "stopped": NP_("campaign state", "stopped"),
        "archived": NP_("campaign state", "archived"),
        "finished": NP_("campaign state", "finished"),
    },
    "ca": {  # what a supervisor does to a campaign (web_admin.backend.CAMPAIGN_ACTIONS)
        "start": NP_("campaign action", "Start"),
        "pause": NP_("campaign action", "Pause"),
        "stop": NP_("campaign action", "Stop"),
        "archive": NP_("campaign action", "Archive"),
        "unarchive": NP_("campaign action", "Restore"),
    },
    "wrap": {  # what an operator becomes when the wrap-up limit passes
        "ready": NP_("after wrap-up", "ready for the next call"),
        "paused": NP_("after wrap-up", "not ready (paused)"),
    },
    "day": {
        "1": NP_("weekday", "Mon"), "2": NP_("weekday", "Tue"), "3": NP_("weekday", "Wed"),
        "4": NP_("weekday", "Thu"), "5": NP_("weekday", "Fri"), "6": NP_("weekday", "Sat"),
        "7": NP_("weekday", "Sun"),
    },
    "by": {
        "campaign": NP_("group by", "Campaign"),
        "segment": NP_("group by", "Segment"),
        "operator": NP_("group by", "Operator"),
        "line": NP_("group by", "Line"),
        "day": NP_("group by", "Day"),
    },
    "kpi": {
        "attempts": NP_("KPI column", "Attempts"),
        "contact_rate": NP_("KPI column", "Contact rate"),
        "rpc_rate": NP_("KPI column", "RPC rate"),
        "ptp_rate": NP_("KPI column", "PTP rate"),
        "kept_ptp_rate": NP_("KPI column", "Kept PTP"),
        "promised": NP_("KPI column", "Promised"),
        "collected": NP_("KPI column", "Collected"),
        "abandon_rate": NP_("KPI column", "Abandoned"),
        "aht_s": NP_("KPI column", "AHT"),
        "occupancy": NP_("KPI column", "Occupancy"),
    },
    "lr": {  # what a line action answers (the lines page's result panel)
        "balance": NP_("line result", "balance"),
        "text": NP_("line result", "the operator's answer"),
        "result": NP_("line result", "result"),
        "cause": NP_("line result", "network cause (Q.850)"),
        "reason": NP_("line result", "reason"),
        "ring_s": NP_("line result", "ringing, s"),
        "talk_s": NP_("line result", "talking, s"),
        "status": NP_("line result", "status"),
        "parts": NP_("line result", "parts"),
        "sms_id": NP_("line result", "SMS id"),
        "references": NP_("line result", "message references"),
        "mode": NP_("line result", "mode"),
    },
    "la": {
        "block": NP_("line action", "Block"),
        "unblock": NP_("line action", "Unblock"),
        "reset": NP_("line action", "Reset"),
        "test_call": NP_("line action", "Test call"),
        "check_balance": NP_("line action", "Check the balance"),
    },
    "lg": {
        "idle": NP_("line group", "idle"),
        "dialing": NP_("line group", "dialing"),
        "talking": NP_("line group", "talking"),
        "out_of_service": NP_("line group", "out of service"),
        "blocked": NP_("line group", "blocked"),
    },
    "counter": {
        "attempts": NP_("counter", "Attempts"),
        "answered": NP_("counter", "Answered"),
        "busy": NP_("counter", "Busy"),
        "no_answer": NP_("counter", "No answer"),
        "failed": NP_("counter", "Failed"),
        "abandoned": NP_("counter", "Abandoned"),
        "in_progress": NP_("counter", "In progress"),
        "leads_left": NP_("counter", "Leads left"),
        "held": NP_("counter", "Held by law"),
    },
    # What each dashboard tile counts, in one sentence (its tooltip); over the campaign's run.
    "counter_help": {
        "attempts": NP_("counter help", "Calls placed: ringing, talking or ended (our own "
                                        "line faults are not counted)."),
        "answered": NP_("counter help", "Calls a debtor answered, those still going on "
                                        "included."),
        "busy": NP_("counter help", "Calls that ended with the debtor's line busy."),
        "no_answer": NP_("counter help", "Calls that rang out with nobody answering."),
        "failed": NP_("counter help", "Calls that ended otherwise: unreachable, rejected, a bad "
                                      "number or a network failure."),
        "abandoned": NP_("counter help", "Answered calls no operator took within 2 seconds "
                                         "(the debtor heard the abandon message)."),
        "in_progress": NP_("counter help", "Calls placed and not ended yet: dialing, ringing "
                                           "or in conversation."),
        "leads_left": NP_("counter help", "Debtors still to be worked: due now, due later or "
                                          "being called."),
        "held": NP_("counter help", "Debtors the law does not allow to be called now (outside "
                                    "their hours, over a contact limit, a refusal), as the box "
                                    "found them; each waits for the time the law gives."),
    },
}


def label(lang: str, family: str, key: object) -> str:
    """The name of `key` in `family`, in `lang`; a key nobody named yet is shown as it is."""
    found = LABELS.get(family, {}).get(str(key))
    if found is None:
        return "" if key is None else str(key)
    return pgettext(lang, *found)


def release_reason(lang: str, reason: object, cause: object = None, outcome: object = None) -> str:
    """Why a call ended, in `lang`: a Msg translated; else, on a page not in English, the name of
    its Q.850 cause (or of its outcome) — the drivers' own English words stay on English pages."""
    if isinstance(reason, Msg):
        return message_of(lang, reason)
    if lang == "en":
        return "" if reason is None else str(reason)
    if cause is not None and str(cause) in LABELS["q850"]:
        return label(lang, "q850", cause)
    if outcome:
        return label(lang, "attempt", outcome)
    return "" if not reason else label(lang, "attempt", "failed")


_CMS = re.compile(r"\+CMS ERROR:? ?(\d+)")
_FAILURES = re.compile(r"^(\d+) failures in a row; the last: (.*)$", re.S)


def sms_rest_reason(lang: str, reason: object) -> str:
    """Why a SIM rests from SMS (controller.sms_pacing keeps the driver's words, e.g. "+CMS ERROR
    21: short message transfer rejected", or "3 failures in a row; the last: ..."), in `lang`:
    the error named by its code, the code kept for the technician."""
    text = "" if reason is None else str(reason)
    if lang == "en" or not text:
        return text
    tr = translations(lang)
    many = _FAILURES.match(text)
    if many:
        return tr.gettext(N_("{n} failures in a row; the last: {reason}")).format(
            n=many.group(1), reason=sms_rest_reason(lang, many.group(2)))
    code = _CMS.search(text)
    if code is None:
        return tr.gettext(N_("the SMS could not be sent"))
    name = label(lang, "cms", code.group(1)) if code.group(1) in LABELS["cms"] else \
        tr.gettext(N_("the network refused the SMS"))
    return f"{name} (+CMS ERROR {code.group(1)})"


def labels(lang: str) -> dict[str, dict[str, str]]:
    """Every family translated, for the pages' JavaScript."""
    return {family: {key: pgettext(lang, *found) for key, found in names.items()}
            for family, names in LABELS.items()}


def window(lang: str, name: object) -> str:
    """A compliance limit's window as the engine words it ('any 24 hours'), in `lang`."""
    parts = window_parts(str(name))
    if parts is None:
        return "" if name is None else str(name)
    kind, n = parts
    tr = translations(lang)
    if kind == "hours":
        return tr.ngettext("any {n} hour", "any {n} hours", n).format(n=n)
    if kind == "days":
        return tr.ngettext("any {n} day", "any {n} days", n).format(n=n)
    if kind == "consecutive":
        return tr.ngettext("{n} consecutive day", "{n} consecutive days", n).format(n=n)
    return pgettext(lang, *_CALENDAR[kind])


_CALENDAR = {"calendar day": NP_("limit window", "a calendar day"),
             "calendar week": NP_("limit window", "a calendar week"),
             "calendar month": NP_("limit window", "a calendar month")}


# Whose contacts a limit counts, in the words of a refusal (controller.compliance).
_SCOPE = {"person": NP_("contacts counted", "with this person"),
          "phone": NP_("contacts counted", "on this phone number"),
          "debt": NP_("contacts counted", "about this debt")}


def limit_words(lang: str, refused: dict | None) -> str:
    """A refusal by a count limit from its stored window, in `lang`: "2 conversations with this
    person in any 7 days, at most 2"; "" when the reason has no window (its label says it)."""
    if not isinstance(refused, dict):
        return ""
    tr, n = translations(lang), int(refused.get("count") or 0)
    kind = refused.get("counts")
    if kind == "conversation":
        counted = tr.ngettext("{n} conversation", "{n} conversations", n)
    elif kind == "attempt":
        counted = tr.ngettext("{n} call attempt", "{n} call attempts", n)
    elif kind == "sms":
        counted = tr.ngettext("{n} SMS", "{n} SMS", n)
    else:
        return ""
    scope = _SCOPE.get(str(refused.get("scope")))
    return tr.gettext("{counted} {scope} in {window}, at most {maximum}").format(
        counted=counted.format(n=n), scope=pgettext(lang, *scope) if scope else "",
        window=window(lang, refused.get("window")), maximum=refused.get("maximum"))
