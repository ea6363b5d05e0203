"""The line-state transition table as data: the single source both implementations compile.

Each row says, for one legal (state, event) pair: the next state, the actions to emit (each with
how its ``arg`` is computed) and the timer operations. A pair without a row is illegal: the core
rejects the event, counts it and emits ``ACT_REJECTED`` (arg = event), the state does not change.

Rules the engines apply on top of the rows (the same in both implementations):

- Exactly one ``ACT_NOTIFY_RELEASED`` per call: a row with ``opens_call`` opens a call on the
  channel (after its actions are emitted); ``ACT_NOTIFY_RELEASED`` is emitted only while a call
  is open, and closes it. Rows list the notify wherever a call can end; the flag drops repeats.
- ``ACT_HANGUP`` records its cause as the call's cause; ``ARG_CALL_CAUSE`` reports it later.
- Timer operations run after the actions: cancels first, then arms (an arm re-arms). Rows entering
  IDLE, OUT_OF_SERVICE or BLOCKED cancel every timer of the channel (added by :func:`rows`).
- Timers armed by an event run from that call's ``now_ms``; a timer of kind K fires
  ``EV_TIMER_FIRST + K`` with cause 0.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from cext.linestate_codes import (
    ACT_ANSWER, ACT_BRIDGE, ACT_DIAL, ACT_HANGUP, ACT_NOTIFY_ABANDONED, ACT_NOTIFY_ANSWER,
    ACT_NOTIFY_BRIDGED, ACT_NOTIFY_IN_SERVICE, ACT_NOTIFY_INBOUND, ACT_NOTIFY_OUT_OF_SERVICE,
    ACT_NOTIFY_PROGRESS, ACT_NOTIFY_RELEASED, ACT_RESET, ACTION_NAMES, ALERTING, ANSWERED, BLOCKED,
    BRIDGED, CAUSE_ABANDONED, CAUSE_GLARE, CAUSE_NETWORK_OUT_OF_ORDER, CAUSE_NO_ANSWER,
    CAUSE_NORMAL, CAUSE_RECOVERY_ON_TIMER, DIALING, EV_CTL_ANSWER, EV_CTL_BLOCK, EV_CTL_BRIDGE,
    EV_CTL_DIAL, EV_CTL_HANGUP, EV_CTL_UNBLOCK, EV_HW_ALERTING, EV_HW_ANSWER, EV_HW_BRIDGED,
    EV_HW_DIALING, EV_HW_IN_SERVICE, EV_HW_INBOUND, EV_HW_OUT_OF_SERVICE, EV_HW_PROCEEDING,
    EV_HW_RELEASE, EV_HW_RELEASED, EV_TIMER_BRIDGE, EV_TIMER_RELEASE, EV_TIMER_RING,
    EV_TIMER_WATCHDOG, EVENT_NAMES, IDLE, INBOUND, N_EVENTS, N_STATES, N_TIMERS, OUT_OF_SERVICE,
    PROCEEDING, RELEASING, SEIZED, STATE_NAMES, TIMER_BRIDGE, TIMER_NAMES, TIMER_RELEASE,
    TIMER_RING, TIMER_WATCHDOG,
)

# How an action's arg is computed.
ARG_CONST = 0  # the row's constant
ARG_CAUSE = 1  # the event's cause, or the constant when the event carries 0
ARG_STATE = 2  # the next state
ARG_CALL_CAUSE = 3  # the cause recorded for the call (by ACT_HANGUP), or the constant if none
ARG_KIND_NAMES = ("const", "cause", "state", "call_cause")

MAX_ACTIONS = 4  # per row; the compiled arrays have this stride
CALL_STATES = (SEIZED, DIALING, PROCEEDING, ALERTING, ANSWERED, BRIDGED, INBOUND)
REST_STATES = (IDLE, OUT_OF_SERVICE, BLOCKED)  # entering one cancels every timer


@dataclass(frozen=True)
class Transition:
    """One legal (state, event) pair and what it does."""

    state: int
    event: int
    next_state: int
    actions: tuple[tuple[int, int, int], ...] = ()  # (action, arg kind, constant)
    arm: tuple[int, ...] = ()  # timer kinds armed (re-armed) from now_ms
    cancel: tuple[int, ...] = ()  # timer kinds cancelled
    opens_call: bool = False


@dataclass
class _Builder:
    rows: list[Transition] = field(default_factory=list)

    def on(self, states, event, next_state, *actions, arm=(), cancel=(), opens_call=False):
        states = states if isinstance(states, tuple) else (states,)
        for state in states:
            nxt = state if next_state is SAME else next_state
            self.rows.append(Transition(state, event, nxt, tuple(actions), tuple(arm),
                                        tuple(cancel), opens_call))


SAME = object()  # next state = the current state


def const(action, value=0):
    return (action, ARG_CONST, value)


def cause(action, default):
    return (action, ARG_CAUSE, default)


def progress():
    return (ACT_NOTIFY_PROGRESS, ARG_STATE, 0)


def call_cause(action, default=CAUSE_NORMAL):
    return (action, ARG_CALL_CAUSE, default)


# Entering RELEASING: only the release guard may run, the driver must confirm with hw_released.
_RELEASING = dict(arm=(TIMER_RELEASE,), cancel=(TIMER_RING, TIMER_BRIDGE, TIMER_WATCHDOG))
_OUTBOUND_RINGING = (DIALING, PROCEEDING, ALERTING)


def _build() -> list[Transition]:
    t = _Builder()
    # Service.
    t.on(OUT_OF_SERVICE, EV_HW_IN_SERVICE, IDLE, const(ACT_NOTIFY_IN_SERVICE))
    t.on(IDLE, EV_HW_IN_SERVICE, IDLE)  # drivers repeat it at start-up: harmless
    t.on(OUT_OF_SERVICE, EV_HW_OUT_OF_SERVICE, OUT_OF_SERVICE)  # repeated report: no news
    t.on((IDLE, BLOCKED), EV_HW_OUT_OF_SERVICE, OUT_OF_SERVICE,
         const(ACT_NOTIFY_OUT_OF_SERVICE))
    t.on(CALL_STATES + (RELEASING,), EV_HW_OUT_OF_SERVICE, OUT_OF_SERVICE,
         cause(ACT_NOTIFY_RELEASED, CAUSE_NETWORK_OUT_OF_ORDER), const(ACT_NOTIFY_OUT_OF_SERVICE))
    t.on(IDLE, EV_CTL_BLOCK, BLOCKED)
    t.on(BLOCKED, EV_CTL_UNBLOCK, IDLE)
    # Outbound call.
    t.on(IDLE, EV_CTL_DIAL, SEIZED, const(ACT_DIAL), arm=(TIMER_WATCHDOG,), opens_call=True)
    t.on(SEIZED, EV_HW_DIALING, DIALING, cancel=(TIMER_WATCHDOG,), arm=(TIMER_RING,))
    # A driver may skip hw_dialing (an E1 SETUP answered at once by CALL PROCEEDING).
    t.on(SEIZED, EV_HW_PROCEEDING, PROCEEDING, progress(), cancel=(TIMER_WATCHDOG,),
         arm=(TIMER_RING,))
    t.on(DIALING, EV_HW_PROCEEDING, PROCEEDING, progress())
    # The ring timer restarts at alerting: the far end then rings for the full ring timeout
    # (rules such as "ring at least 15 s" count from the ringing, not from the dial).
    t.on(SEIZED, EV_HW_ALERTING, ALERTING, progress(), cancel=(TIMER_WATCHDOG,),
         arm=(TIMER_RING,))
    t.on((DIALING, PROCEEDING), EV_HW_ALERTING, ALERTING, progress(), arm=(TIMER_RING,))
    t.on(SEIZED, EV_HW_ANSWER, ANSWERED, const(ACT_NOTIFY_ANSWER),
         cancel=(TIMER_WATCHDOG,), arm=(TIMER_BRIDGE,))
    t.on(_OUTBOUND_RINGING, EV_HW_ANSWER, ANSWERED, const(ACT_NOTIFY_ANSWER),
         cancel=(TIMER_RING,), arm=(TIMER_BRIDGE,))
    t.on(_OUTBOUND_RINGING, EV_TIMER_RING, RELEASING, const(ACT_HANGUP, CAUSE_NO_ANSWER),
         **_RELEASING)
    t.on(SEIZED, EV_TIMER_WATCHDOG, OUT_OF_SERVICE, const(ACT_RESET),
         const(ACT_NOTIFY_RELEASED, CAUSE_RECOVERY_ON_TIMER), const(ACT_NOTIFY_OUT_OF_SERVICE))
    # Glare: the hardware offers an inbound call on a channel we seized but it has not dialed
    # yet. The hardware cannot place our call there any more, so the inbound call wins; the
    # outbound attempt ends with cause 44 (congestion: the controller retries on another line).
    t.on(SEIZED, EV_HW_INBOUND, INBOUND, const(ACT_NOTIFY_RELEASED, CAUSE_GLARE),
         const(ACT_NOTIFY_INBOUND), cancel=(TIMER_WATCHDOG,), arm=(TIMER_RING,), opens_call=True)
    # Inbound call: ringing until we answer; the ring timer drops a call nobody takes.
    t.on(IDLE, EV_HW_INBOUND, INBOUND, const(ACT_NOTIFY_INBOUND), arm=(TIMER_RING,),
         opens_call=True)
    t.on(INBOUND, EV_CTL_ANSWER, INBOUND, const(ACT_ANSWER), arm=(TIMER_WATCHDOG,))
    t.on(INBOUND, EV_HW_ANSWER, ANSWERED, const(ACT_NOTIFY_ANSWER),
         cancel=(TIMER_RING, TIMER_WATCHDOG), arm=(TIMER_BRIDGE,))
    t.on(INBOUND, EV_TIMER_RING, RELEASING, const(ACT_HANGUP, CAUSE_NO_ANSWER), **_RELEASING)
    t.on(INBOUND, EV_TIMER_WATCHDOG, OUT_OF_SERVICE, const(ACT_RESET),
         const(ACT_NOTIFY_RELEASED, CAUSE_RECOVERY_ON_TIMER), const(ACT_NOTIFY_OUT_OF_SERVICE))
    # Live answer: an operator must be bridged before the bridge timer (the 2-second rule).
    t.on(ANSWERED, EV_CTL_BRIDGE, ANSWERED, const(ACT_BRIDGE))
    t.on(ANSWERED, EV_HW_BRIDGED, BRIDGED, const(ACT_NOTIFY_BRIDGED), cancel=(TIMER_BRIDGE,))
    t.on(ANSWERED, EV_TIMER_BRIDGE, RELEASING, const(ACT_NOTIFY_ABANDONED),
         const(ACT_HANGUP, CAUSE_ABANDONED), **_RELEASING)
    # Release, from either side, in any call state.
    t.on(CALL_STATES, EV_HW_RELEASE, RELEASING, cause(ACT_NOTIFY_RELEASED, CAUSE_NORMAL),
         **_RELEASING)
    t.on(CALL_STATES, EV_CTL_HANGUP, RELEASING, cause(ACT_HANGUP, CAUSE_NORMAL), **_RELEASING)
    t.on(CALL_STATES, EV_HW_RELEASED, IDLE, cause(ACT_NOTIFY_RELEASED, CAUSE_NORMAL))
    # Releasing: the far end's release may cross our hangup, the controller's hangup may cross
    # the far end's release; both are normal races, not errors.
    t.on(RELEASING, EV_HW_RELEASE, SAME, cause(ACT_NOTIFY_RELEASED, CAUSE_NORMAL))
    t.on(RELEASING, EV_CTL_HANGUP, SAME)
    t.on(RELEASING, EV_HW_RELEASED, IDLE, call_cause(ACT_NOTIFY_RELEASED))
    t.on(RELEASING, EV_TIMER_RELEASE, OUT_OF_SERVICE, const(ACT_RESET),
         call_cause(ACT_NOTIFY_RELEASED), const(ACT_NOTIFY_OUT_OF_SERVICE))
    return t.rows


TABLE: tuple[Transition, ...] = tuple(_build())


def rows() -> tuple[Transition, ...]:
    """The table with the implicit rule applied: entering a rest state cancels every timer."""
    # Rows between rest states need no cancel: no timer ever runs in a rest state.
    out = []
    for row in TABLE:
        if row.next_state in REST_STATES and row.state not in REST_STATES:
            row = Transition(row.state, row.event, row.next_state, row.actions, (),
                             tuple(range(N_TIMERS)), row.opens_call)
        out.append(row)
    return tuple(out)


def validate(table: tuple[Transition, ...]) -> None:
    """Raise ValueError on a table the engines cannot run or that breaks a documented rule."""
    seen = set()
    for row in table:
        where = f"{STATE_NAMES[row.state]} + {EVENT_NAMES[row.event]}"
        if (row.state, row.event) in seen:
            raise ValueError(f"transition table: two rows for {where}")
        seen.add((row.state, row.event))
        if len(row.actions) > MAX_ACTIONS:
            raise ValueError(f"transition table: {where} emits more than {MAX_ACTIONS} actions")
        if set(row.arm) & set(row.cancel):
            raise ValueError(f"transition table: {where} both arms and cancels a timer")
        ends_call = row.next_state in REST_STATES and row.state in CALL_STATES + (RELEASING,)
        if ends_call and not any(a[0] == ACT_NOTIFY_RELEASED for a in row.actions):
            raise ValueError(f"transition table: {where} ends a call without notify_released")
        if not (0 <= row.next_state < N_STATES and 0 <= row.event < N_EVENTS):
            raise ValueError(f"transition table: {where} has a code out of range")


def compile_table() -> dict[str, list[int]]:
    """Flat arrays indexed ``state * N_EVENTS + event`` (actions with stride MAX_ACTIONS)."""
    table = rows()
    validate(table)
    size = N_STATES * N_EVENTS
    out = {
        "next_state": [-1] * size, "n_actions": [0] * size,
        "action": [0] * (size * MAX_ACTIONS), "arg_kind": [0] * (size * MAX_ACTIONS),
        "arg_const": [0] * (size * MAX_ACTIONS),
        "cancel_mask": [0] * size, "arm_mask": [0] * size, "opens_call": [0] * size,
    }
    for row in table:
        i = row.state * N_EVENTS + row.event
        out["next_state"][i] = row.next_state
        out["n_actions"][i] = len(row.actions)
        for j, (action, kind, value) in enumerate(row.actions):
            out["action"][i * MAX_ACTIONS + j] = action
            out["arg_kind"][i * MAX_ACTIONS + j] = kind
            out["arg_const"][i * MAX_ACTIONS + j] = value
        out["cancel_mask"][i] = sum(1 << k for k in row.cancel)
        out["arm_mask"][i] = sum(1 << k for k in row.arm)
        out["opens_call"][i] = int(row.opens_call)
    return out


def describe(row: Transition) -> dict:
    """One row in words, for people and for ``dialbox linestate table``."""
    def arg(kind: int, value: int) -> str:
        if kind == ARG_CONST:
            return str(value)
        if kind == ARG_STATE:
            return "next_state"
        return f"{ARG_KIND_NAMES[kind]}|{value}"

    return {
        "state": STATE_NAMES[row.state], "event": EVENT_NAMES[row.event],
        "next_state": STATE_NAMES[row.next_state],
        "actions": [f"{ACTION_NAMES[a]}({arg(k, v)})" for a, k, v in row.actions],
        "timers": (["cancel all"] if len(row.cancel) == N_TIMERS
                   else [f"cancel {TIMER_NAMES[k]}" for k in row.cancel])
        + [f"arm {TIMER_NAMES[k]}" for k in row.arm],
        "opens_call": row.opens_call,
    }


validate(rows())
