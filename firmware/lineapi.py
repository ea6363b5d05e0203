"""The Line API: the only thing the controller and the hardware layer share.

The controller calls ``dial``, ``hangup``, ``bridge``, ``send_sms`` on a :class:`LineAPI` and
receives events (dataclasses below) through the callback it registers. Outcomes are normalized
here once, from Q.850 causes (ISDN and GSM call control share the numbering).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Callable, Protocol


class Outcome(str, enum.Enum):
    """Normalized result of a call attempt, the controller's vocabulary."""

    ANSWERED = "answered"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    REJECTED = "rejected"
    UNREACHABLE = "unreachable"  # not registered, switched off, out of order
    INVALID_NUMBER = "invalid_number"  # unallocated / bad format: never retry
    CONGESTION = "congestion"  # network or channel shortage: retry soon, maybe another line
    FAILED = "failed"  # anything else, with the reason kept


# Q.850 cause value -> outcome when the call was never answered.
_Q850_OUTCOME: dict[int, Outcome] = {
    1: Outcome.INVALID_NUMBER, 3: Outcome.INVALID_NUMBER, 22: Outcome.INVALID_NUMBER,
    28: Outcome.INVALID_NUMBER,
    17: Outcome.BUSY,
    18: Outcome.NO_ANSWER, 19: Outcome.NO_ANSWER, 20: Outcome.UNREACHABLE,
    21: Outcome.REJECTED,
    27: Outcome.UNREACHABLE, 38: Outcome.UNREACHABLE,
    34: Outcome.CONGESTION, 41: Outcome.CONGESTION, 42: Outcome.CONGESTION,
    44: Outcome.CONGESTION, 47: Outcome.CONGESTION,
}

Q850_NAMES: dict[int, str] = {
    1: "unallocated number", 3: "no route to destination", 16: "normal clearing",
    17: "user busy", 18: "no user responding", 19: "no answer from user", 20: "subscriber absent",
    21: "call rejected", 22: "number changed", 27: "destination out of order",
    28: "invalid number format", 31: "normal, unspecified", 34: "no circuit available",
    38: "network out of order", 41: "temporary failure", 42: "switching equipment congestion",
    44: "requested channel not available", 47: "resource unavailable",
    96: "mandatory information element missing", 97: "message type non-existent",
    98: "message not compatible with call state", 99: "information element non-existent",
    100: "invalid information element contents", 101: "message not compatible with call state",
    102: "recovery on timer expiry", 111: "protocol error", 127: "interworking, unspecified",
}


def classify_cause(q850: int | None, *, alerted: bool, answered: bool) -> Outcome:
    """Map a release cause to an outcome; 16/31 depend on how far the call got."""
    if answered:
        return Outcome.ANSWERED
    if q850 is None:
        return Outcome.NO_ANSWER if alerted else Outcome.FAILED
    if q850 in (16, 31):
        return Outcome.NO_ANSWER if alerted else Outcome.FAILED
    return _Q850_OUTCOME.get(q850, Outcome.FAILED)


def cause_name(q850: int | None) -> str:
    """Readable name of a Q.850 cause."""
    if q850 is None:
        return "unknown"
    return Q850_NAMES.get(q850, f"cause {q850}")


class CallStage(str, enum.Enum):
    DIALING = "dialing"
    PROCEEDING = "proceeding"
    ALERTING = "alerting"
    ANSWERED = "answered"
    BRIDGED = "bridged"


@dataclass(frozen=True, slots=True)
class LineStatus:
    """A line went in or out of service (reason says why, readable by a technician)."""

    line: str
    in_service: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class CallProgress:
    line: str
    call_id: str
    stage: CallStage
    at: float


@dataclass(frozen=True, slots=True)
class CallReleased:
    """The call is over; ``ring_s``/``talk_s`` are measured on the line's clock."""

    line: str
    call_id: str
    outcome: Outcome
    q850: int | None
    reason: str
    ring_s: float
    talk_s: float
    at: float
    abandoned: bool = False  # answered live, but no operator was bridged in time
    inbound: bool = False
    line_fault: bool = False  # our own line refused or failed the call: not the debtor's doing


@dataclass(frozen=True, slots=True)
class InboundCall:
    line: str
    call_id: str
    caller: str | None
    at: float


@dataclass(frozen=True, slots=True)
class SmsStatus:
    line: str
    sms_id: str
    status: str  # sent, delivered, failed, pending
    detail: str = ""
    at: float = 0.0


@dataclass(frozen=True, slots=True)
class InboundSms:
    """A received message. It stays on the SIM until the box calls ``sms_stored(line, uid)``;
    the same message handed up twice (after a restart) has the same ``uid``."""

    line: str
    sender: str
    text: str
    at: float
    sent_at: float | None = None  # the service centre's time stamp (wall seconds)
    uid: str = ""


LineEvent = LineStatus | CallProgress | CallReleased | InboundCall | SmsStatus | InboundSms
EventSink = Callable[[LineEvent], None]


class LineError(Exception):
    """A Line API request that cannot be carried out (no such line, line busy, out of service)."""


@dataclass(slots=True)
class LineInfo:
    """A line as a technician sees it."""

    name: str
    kind: str  # gsm, e1
    state: str
    in_service: bool
    reason: str = ""
    call_id: str | None = None
    details: dict = field(default_factory=dict)


class LineAPI(Protocol):
    """What the controller may ask of the hardware layer."""

    def subscribe(self, sink: EventSink) -> None: ...

    def lines(self) -> list[LineInfo]: ...

    def free_lines(self) -> list[str]: ...

    def ring_timeout_s(self, line: str) -> float: ...

    async def dial(self, line: str, number: str, *, call_id: str, min_ring_s: float = 0.0,
                   tags: dict | None = None) -> None:
        """Place a call; ``tags`` (e.g. the campaign) go on every log line about it."""

    def tag(self, call_id: str, **fields) -> None:
        """Fields every later log line about this call carries (an inbound call's campaign)."""

    async def hangup(self, call_id: str, cause: int = 16) -> None: ...

    async def bridge(self, call_id: str, position: str) -> None: ...

    async def answer(self, call_id: str) -> None: ...

    async def send_sms(self, line: str, number: str, text: str, *, sms_id: str) -> None: ...

    async def sms_stored(self, line: str, uid: str) -> None:
        """The box keeps the received message ``uid``: the line may now forget it."""
