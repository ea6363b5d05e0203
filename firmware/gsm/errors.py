"""+CME/+CMS ERROR codes (3GPP TS 27.007 §9.2, 27.005 §3.2.5) and Huawei ^CEND causes, classified."""
from __future__ import annotations

import enum
import re
from dataclasses import dataclass


class CmeAction(str, enum.Enum):
    """What the driver does after a ``+CME ERROR``."""

    RETRY = "retry"  # transient (SIM busy, init, network): back off and repeat the command
    NEEDS_PERSON = "needs_person"  # SIM missing/locked/blocked: take the port out of service with the name
    FATAL = "fatal"  # the module itself failed: run the recovery ladder
    OTHER = "other"  # the command was wrong or unsupported here: report, do not repeat


class CmsAction(str, enum.Enum):
    """What the dialer does with an SMS after a ``+CMS ERROR``."""

    RETRY_LATER = "retry_later"  # network/SC temporary: same SIM later is fine
    OTHER_SIM = "other_sim"  # this SIM/subscription/modem cannot send: send via another SIM
    NEVER = "never"  # the number is bad: never retry SMS to it
    REJECTED = "rejected"  # this message is unacceptable as built (our bug or content): do not resend as is


@dataclass(frozen=True, slots=True)
class ModemError:
    """One ``+CME ERROR``/``+CMS ERROR`` with its code kept (None when the modem gave only unknown text)."""

    kind: str  # "cme" or "cms"
    code: int | None
    name: str
    action: CmeAction | CmsAction
    needs_person: bool = False

    @property
    def reason(self) -> str:
        """One line for the port's out-of-service reason and logs."""
        code = "?" if self.code is None else self.code
        return f"+{self.kind.upper()} ERROR {code}: {self.name}"


R, P, F, O = CmeAction.RETRY, CmeAction.NEEDS_PERSON, CmeAction.FATAL, CmeAction.OTHER
CME: dict[int, tuple[str, CmeAction]] = {
    0: ("phone failure", F), 1: ("no connection to phone", F), 2: ("phone adaptor link reserved", R),
    3: ("operation not allowed", O), 4: ("operation not supported", O),
    5: ("PH-SIM PIN required", P), 6: ("PH-FSIM PIN required", P), 7: ("PH-FSIM PUK required", P),
    10: ("SIM not inserted", P), 11: ("SIM PIN required", P), 12: ("SIM PUK required", P),
    13: ("SIM failure", P), 14: ("SIM busy", R), 15: ("SIM wrong", P), 16: ("incorrect password", P),
    17: ("SIM PIN2 required", O), 18: ("SIM PUK2 required", O),
    20: ("memory full", O), 21: ("invalid index", O), 22: ("not found", O), 23: ("memory failure", F),
    24: ("text string too long", O), 25: ("invalid characters in text string", O),
    26: ("dial string too long", O), 27: ("invalid characters in dial string", O),
    30: ("no network service", R), 31: ("network timeout", R), 32: ("network not allowed, emergency calls only", P),
    40: ("network personalization PIN required", P), 41: ("network personalization PUK required", P),
    42: ("network subset personalization PIN required", P), 43: ("network subset personalization PUK required", P),
    44: ("service provider personalization PIN required", P),
    45: ("service provider personalization PUK required", P),
    46: ("corporate personalization PIN required", P), 47: ("corporate personalization PUK required", P),
    50: ("incorrect parameters", O), 51: ("command implemented but currently disabled", O),
    52: ("command aborted by user", O), 53: ("not attached to network due to MT functionality restrictions", R),
    54: ("modem not allowed, MT restricted to emergency calls only", P),
    55: ("operation not allowed because of MT functionality restrictions", O),
    56: ("fixed dial number only allowed", P), 57: ("temporarily out of service due to other MT usage", R),
    60: ("system failure", F), 62: ("call barred", P),
    100: ("unknown", O), 103: ("illegal MS", P), 106: ("illegal ME", P), 107: ("GPRS services not allowed", O),
    111: ("PLMN not allowed", P), 112: ("location area not allowed", R),
    113: ("roaming not allowed in this location area", R),
    134: ("service option temporarily out of order", R), 148: ("unspecified GPRS error", O),
    257: ("network rejected request", R), 258: ("retry operation", R), 261: ("unknown subscriber", P),
    # 262-264: vendor meanings on SIMCom/Quectel/Telit modules (27.007 has SS errors there);
    # seen in the field as a SIM that the module cannot unlock, so a person must look.
    262: ("SIM blocked", P), 263: ("invalid block", P), 264: ("SIM PIN2 blocked", O),
    515: ("please wait, init or command processing in progress", R),  # Wavecom/Sierra, SIMCom
}

RL, OS, NV, RJ = CmsAction.RETRY_LATER, CmsAction.OTHER_SIM, CmsAction.NEVER, CmsAction.REJECTED
CMS: dict[int, tuple[str, CmsAction]] = {
    # RP causes, 24.011 Table 8.4: on an MO SMS they mostly describe the *sender's* subscription;
    # only "unassigned number" condemns the destination.
    1: ("unassigned (unallocated) number", NV), 8: ("operator determined barring", OS), 10: ("call barred", OS),
    # 21: the network will not take this SM from this sender (anti-spam filter, no credit):
    # another SIM may succeed, the number is not at fault.
    21: ("short message transfer rejected", OS), 27: ("destination out of service", RL),
    28: ("unidentified subscriber", OS), 29: ("facility rejected", OS), 30: ("unknown subscriber", OS),
    38: ("network out of order", RL), 41: ("temporary failure", RL), 42: ("congestion", RL),
    47: ("resources unavailable, unspecified", RL), 50: ("requested facility not subscribed", OS),
    69: ("requested facility not implemented", OS), 81: ("invalid short message transfer reference value", RL),
    95: ("invalid message, unspecified", RJ), 96: ("invalid mandatory information", RJ),
    97: ("message type non-existent or not implemented", RJ),
    98: ("message not compatible with short message protocol state", RL),
    99: ("information element non-existent or not implemented", RJ), 111: ("protocol error, unspecified", RL),
    127: ("interworking, unspecified", RL),
    # TP-FCS, 23.040 §9.2.3.22
    128: ("telematic interworking not supported", RJ), 129: ("short message type 0 not supported", RJ),
    130: ("cannot replace short message", RJ), 143: ("unspecified TP-PID error", RJ),
    144: ("data coding scheme not supported", RJ), 145: ("message class not supported", RJ),
    159: ("unspecified TP-DCS error", RJ), 160: ("command cannot be actioned", RJ),
    161: ("command unsupported", RJ), 175: ("unspecified TP-Command error", RJ), 176: ("TPDU not supported", RJ),
    192: ("SC busy", RL), 193: ("no SC subscription", OS), 194: ("SC system failure", RL),
    195: ("invalid SME address", NV), 196: ("destination SME barred", NV),
    197: ("SM rejected, duplicate SM", RJ), 198: ("TP-VPF not supported", RJ), 199: ("TP-VP not supported", RJ),
    208: ("SIM SMS storage full", OS), 209: ("no SMS storage capability in SIM", OS), 210: ("error in MS", OS),
    211: ("memory capacity exceeded", OS), 212: ("SIM application toolkit busy", RL),
    213: ("SIM data download error", OS), 255: ("unspecified error cause", RL),
    # 27.005 §3.2.5
    300: ("ME failure", OS), 301: ("SMS service of ME reserved", OS), 302: ("operation not allowed", RJ),
    303: ("operation not supported", RJ), 304: ("invalid PDU mode parameter", RJ),
    305: ("invalid text mode parameter", RJ),
    310: ("SIM not inserted", OS), 311: ("SIM PIN required", OS), 312: ("PH-SIM PIN required", OS),
    313: ("SIM failure", OS), 314: ("SIM busy", RL), 315: ("SIM wrong", OS), 316: ("SIM PUK required", OS),
    317: ("SIM PIN2 required", OS), 318: ("SIM PUK2 required", OS),
    320: ("memory failure", OS), 321: ("invalid memory index", RJ), 322: ("memory full", OS),
    330: ("SMSC address unknown", OS), 331: ("no network service", RL), 332: ("network timeout", RL),
    340: ("no +CNMA acknowledgement expected", RJ), 500: ("unknown error", RL),
    512: ("manufacturer specific", RL),
}
del R, P, F, O, RL, OS, NV, RJ

# A person must fix the port (SIM missing, locked or dead) before it sends again.
CMS_NEEDS_PERSON = frozenset({310, 311, 312, 313, 315, 316})
# The operator refuses this SIM's messages (its anti-spam filter answers a burst with 21, 38 or
# 42; 8 and 10 are barring): the SIM must rest, whatever the code's usual meaning.
CMS_SENDER_BLOCKED = frozenset({8, 10, 21, 38, 42})


def sender_blocked(err: ModemError | None) -> bool:
    """Does this error say the operator refuses the SIM's messages (rest the SIM)?"""
    return err is not None and err.kind == "cms" and err.code in CMS_SENDER_BLOCKED

# Text forms seen from modems that differ from the spec names; (CME code, CMS code).
_ALIASES: dict[str, tuple[int, int]] = {
    "sim not present": (10, 310), "no sim": (10, 310), "no sim card": (10, 310),
    "sim pin": (11, 311), "sim puk": (12, 316), "sim not ready": (14, 314),
    "sim interface not started yet": (14, 314), "sim busy": (14, 314), "phone busy": (14, 314),
    "no network": (30, 331), "no network service": (30, 331), "network timeout": (31, 332),
    "unknown error": (100, 500), "unknown": (100, 500),
}
_LINE = re.compile(r"^\s*\+(CME|CMS) ERROR:\s*(.*?)\s*$", re.IGNORECASE)


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text.lower()).split())


_BY_NAME = {("cme", _norm(name)): code for code, (name, _) in CME.items()}
_BY_NAME.update({("cms", _norm(name)): code for code, (name, _) in CMS.items()})
for _alias, (_cme, _cms) in _ALIASES.items():
    _BY_NAME.setdefault(("cme", _norm(_alias)), _cme)
    _BY_NAME.setdefault(("cms", _norm(_alias)), _cms)


def cme_error(value: int | str) -> ModemError:
    """Classify a ``+CME ERROR`` value: a code, or the text form some modems send."""
    code = _code("cme", value)
    if code is None:
        return ModemError("cme", None, str(value).strip() or "unknown", CmeAction.OTHER)
    name, action = CME.get(code, (f"error {code}", CmeAction.OTHER))
    return ModemError("cme", code, name, action, needs_person=action is CmeAction.NEEDS_PERSON)


def cms_error(value: int | str) -> ModemError:
    """Classify a ``+CMS ERROR`` value; unknown codes are retried later (the caller caps attempts)."""
    code = _code("cms", value)
    if code is None:
        return ModemError("cms", None, str(value).strip() or "unknown", CmsAction.RETRY_LATER)
    if code in CMS:
        name, action = CMS[code]
    elif 128 <= code <= 255:
        name, action = f"TP failure cause {code}", CmsAction.REJECTED
    else:
        name, action = f"error {code}", CmsAction.RETRY_LATER
    return ModemError("cms", code, name, action, needs_person=code in CMS_NEEDS_PERSON)


def parse_error_line(line: str) -> ModemError | None:
    """A ``+CME ERROR: ...``/``+CMS ERROR: ...`` final result line, classified; None for other lines."""
    match = _LINE.match(line)
    if match is None:
        return None
    kind, value = match.group(1).lower(), match.group(2)
    return cme_error(value) if kind == "cme" else cms_error(value)


def _code(kind: str, value: int | str) -> int | None:
    if isinstance(value, int):
        return value
    text = value.strip().strip('"')
    if text.isascii() and text.isdigit():
        return int(text)
    return _BY_NAME.get((kind, _norm(text)))


# Huawei ^CEND end_status (Qualcomm CM call end status) when no cc_cause says more.
_CEND_STATUS: dict[int, int] = {
    0: 47,  # phone offline
    21: 34, 106: 34,  # no service on our side: try another line
    22: 41,  # radio link faded
    24: 42,  # reorder from the network
    25: 16,  # released by the network, no reason
    29: 16,  # we ended the call
    34: 47,  # SIM not present
    105: 47,  # no funds on the SIM
}
# Qualcomm-internal cc_cause values above 127 (radio and MM rejects) in Q.850 terms.
_CC_INTERNAL: dict[int, int] = {
    160: 41, 161: 41, 162: 41, 163: 41, 164: 41, 165: 41, 166: 41, 167: 41,
    168: 47, 169: 34, 170: 102, 171: 34, 172: 41, 173: 34, 174: 41, 175: 41, 176: 102, 177: 47,
}


def cend_to_q850(end_status: int | None, cc_cause: int | None) -> int | None:
    """Q.850 cause for a Huawei ``^CEND:id,dur,end_status[,cc_cause]``; 24.008 CC causes 1-127 match Q.850."""
    if cc_cause is not None and 1 <= cc_cause <= 127:
        return cc_cause
    if cc_cause in _CC_INTERNAL:
        return _CC_INTERNAL[cc_cause]
    if end_status in (100, 103, 104):  # network/lower layer ended it but gave no usable cause
        return 31
    return _CEND_STATUS.get(end_status) if end_status is not None else None
