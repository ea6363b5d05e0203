"""Refusals of interaction and withdrawn third-party consent (230-FZ art. 8 as of 137-FZ).

A debtor's refusal stops every call and message to him (all his accounts, phones, campaigns);
a third party's withdrawal of consent stops every call and message to that number. The law
gives the creditor 3 working days; the box stops at once. Two exceptions the law keeps are
recorded explicitly and audited: an enforcement document suspends a debtor's refusal for two
months, and a representative (a lawyer) may be named, whose number may still be called.
"""
from __future__ import annotations

from datetime import datetime, time, timezone
from zoneinfo import ZoneInfo

from controller import audit
from controller.compliance.engine import SUSPENSION_MONTHS, Refusal, add_months
from controller.phones import normalize_phone
from firmware.errors import UserError

KINDS = ("debtor", "third_party")            # a debtor's refusal; a third party's withdrawal
CHANNELS = ("desk", "card", "import", "sms")  # where it was received (sms: a reply a person read)
EXCEPTIONS = ("enforcement_document", "representative")
# A refusal dated by a calendar day counts from the first moment of that day anywhere in Russia.
_EARLIEST = ZoneInfo("Asia/Kamchatka")


def record(store, *, kind: str, channel: str, by: str, at: float | None = None,
           person_key: str | None = None, account_pk: int | None = None,
           phone: str | None = None, note: str = "", source: str = "") -> int:
    """Record a refusal (debtor: ``person_key``; third party: ``phone``); returns its id."""
    if kind not in KINDS:
        raise UserError("refusal kind {kind}: use one of {kinds}", kind=repr(kind),
                        kinds=", ".join(KINDS))
    if channel not in CHANNELS:
        raise UserError("refusal channel {channel}: use one of {channels}",
                        channel=repr(channel), channels=", ".join(CHANNELS))
    if kind == "debtor" and not person_key:
        raise UserError("a debtor's refusal needs the debtor (his account)")
    e164 = _phone(phone) if kind == "third_party" or phone else None
    if kind == "third_party" and not e164:
        raise UserError("a third party's withdrawal of consent needs the third party's phone")
    now = store.clock.wall()
    at = now if at is None else at
    with store.tx():
        cur = store.db.execute(
            "INSERT INTO refusals (kind, person_key, account_pk, e164, channel, at, note, "
            "recorded_by, recorded_at) VALUES (?,?,?,?,?,?,?,?,?)",
            (kind, person_key if kind == "debtor" else None, account_pk, e164, channel, at,
             note, by, now))
        rid = int(cur.lastrowid)
        audit.record(store, who=by, action="record", obj="refusal", key=str(rid), source=source,
                     after={"kind": kind, "channel": channel, "at": _iso(at),
                            "account_pk": account_pk, "phone": e164, "note": note})
    return rid


def add_exception(store, refusal_id: int, *, kind: str, reference: str, by: str,
                  at: float | None = None, phone: str | None = None, source: str = "") -> int:
    """An audited exception: an enforcement document (suspends the refusal for two months from
    ``at``) or a named representative whose ``phone`` may be called."""
    if kind not in EXCEPTIONS:
        raise UserError("exception kind {kind}: use one of {kinds}", kind=repr(kind),
                        kinds=", ".join(EXCEPTIONS))
    row = store.db.execute("SELECT kind FROM refusals WHERE id=?", (refusal_id,)).fetchone()
    if row is None:
        raise UserError("no refusal #{id}", id=refusal_id)
    if row[0] != "debtor":
        raise UserError("exceptions apply to a debtor's refusal, not to a third party's "
                        "withdrawal of consent")
    if not reference.strip():
        raise UserError("give the enforcement document's number and date, or the "
                        "representative's name")
    e164 = _phone(phone) if phone else None
    if kind == "representative" and not e164:
        raise UserError("a representative needs a phone number to be called on")
    now = store.clock.wall()
    starts = now if at is None else at
    ends = add_months(_dt(starts), SUSPENSION_MONTHS).timestamp() \
        if kind == "enforcement_document" else None
    with store.tx():
        cur = store.db.execute(
            "INSERT INTO refusal_exceptions (refusal_id, kind, reference, e164, starts_at, "
            "ends_at, recorded_by, recorded_at) VALUES (?,?,?,?,?,?,?,?)",
            (refusal_id, kind, reference.strip(), e164, starts, ends, by, now))
        xid = int(cur.lastrowid)
        # Accounts held for the refusal are looked at again (the law decides at each dial).
        store.db.execute(
            "UPDATE accounts SET status='active', hold_reason=NULL WHERE status='held' AND "
            "hold_reason LIKE '%refusal%' AND person_key=(SELECT person_key FROM refusals "
            "WHERE id=?)", (refusal_id,))
        audit.record(store, who=by, action=f"exception:{kind}", obj="refusal",
                     key=str(refusal_id), source=source,
                     after={"exception": xid, "reference": reference.strip(), "phone": e164,
                            "from": _iso(starts), "until": _iso(ends) if ends else None})
    return xid


def for_contact(store, person_key: str | None, phone: str | None) -> list[Refusal]:
    """The refusals that bear on contacting ``person_key`` on ``phone``, for the engine."""
    rows = store.db.execute(
        "SELECT * FROM refusals WHERE kind='debtor' AND person_key=? UNION ALL "
        "SELECT * FROM refusals WHERE kind='third_party' AND e164=? ORDER BY at",
        (person_key or "", phone or "")).fetchall()
    return [_refusal(store, r) for r in rows]


def of_person(store, person_key: str) -> list[dict]:
    """A debtor's refusals and those of the third parties on his accounts, for his card."""
    rows = store.db.execute(
        "SELECT * FROM refusals WHERE person_key=? OR account_pk IN (SELECT id FROM accounts "
        "WHERE person_key=?) OR e164 IN (SELECT p.e164 FROM phones p JOIN accounts a ON "
        "a.id=p.account_pk WHERE a.person_key=?) ORDER BY at, id",
        (person_key, person_key, person_key)).fetchall()
    out = []
    for r in rows:
        exc = store.db.execute("SELECT * FROM refusal_exceptions WHERE refusal_id=? ORDER BY id",
                               (r["id"],)).fetchall()
        out.append({"id": r["id"], "kind": r["kind"], "channel": r["channel"], "at": r["at"],
                    "phone": r["e164"], "note": r["note"], "by": r["recorded_by"],
                    "recorded_at": r["recorded_at"],
                    "exceptions": [{"id": x["id"], "kind": x["kind"],
                                    "reference": x["reference"], "phone": x["e164"],
                                    "from": x["starts_at"], "until": x["ends_at"],
                                    "by": x["recorded_by"]} for x in exc]})
    return out


def day_start(day) -> float:
    """The first instant of a calendar day anywhere in Russia (a refusal dated by day)."""
    return datetime.combine(day, time(), _EARLIEST).timestamp()


def _refusal(store, r) -> Refusal:
    suspended, representatives = [], []
    for x in store.db.execute("SELECT kind, e164, starts_at, ends_at FROM refusal_exceptions "
                              "WHERE refusal_id=?", (r["id"],)):
        if x["kind"] == "enforcement_document":
            suspended.append((_dt(x["starts_at"]), _dt(x["ends_at"])))
        elif x["e164"]:
            representatives.append(x["e164"])
    return Refusal(kind=r["kind"], at=_dt(r["at"]), channel=r["channel"], ident=r["id"],
                   phone=r["e164"], suspended=tuple(suspended),
                   representatives=tuple(representatives))


def _phone(raw: str | None) -> str | None:
    if raw is None or not str(raw).strip():
        return None
    try:
        return normalize_phone(str(raw))
    except ValueError as exc:
        raise UserError("phone {phone}: {why}", phone=repr(raw), why=str(exc)) from None


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, timezone.utc)


def _iso(ts: float) -> str:
    return _dt(ts).isoformat()
