"""Codes shared by the line-state core, its twin, the drivers and the line manager.

Plain Python ints, importable from both implementations (cdef constants are not importable from
Python, so the numbers live here and the .pyx mirrors them in its .pxd-free cdef enum).
"""
from __future__ import annotations

# Channel states.
OUT_OF_SERVICE = 0
IDLE = 1
SEIZED = 2  # the controller asked to dial; the driver has not confirmed the dial yet
DIALING = 3  # dial sent to the hardware
PROCEEDING = 4  # the network accepted the call (CALL PROCEEDING / ^ORIG)
ALERTING = 5  # the far end rings
ANSWERED = 6  # live answer, waiting for an operator (the 2-second rule runs)
BRIDGED = 7  # connected to an operator position
RELEASING = 8  # hangup sent or release received, waiting for the hardware to confirm
BLOCKED = 9  # taken out of use by a person or by maintenance
INBOUND = 10  # an inbound call is offered on this channel

STATE_NAMES = (
    "out_of_service", "idle", "seized", "dialing", "proceeding", "alerting", "answered",
    "bridged", "releasing", "blocked", "inbound",
)

# Events (from drivers: EV_HW_*, from the controller: EV_CTL_*, from the timer wheel: EV_TIMER_*).
EV_HW_IN_SERVICE = 0
EV_HW_OUT_OF_SERVICE = 1
EV_HW_DIALING = 2  # the hardware took the dial command
EV_HW_PROCEEDING = 3
EV_HW_ALERTING = 4
EV_HW_ANSWER = 5
EV_HW_RELEASE = 6  # far end or network released; cause = Q.850
EV_HW_RELEASED = 7  # release complete: the channel is free again
EV_HW_INBOUND = 8
EV_HW_BRIDGED = 9  # the hardware confirmed the bridge to an operator position
EV_CTL_DIAL = 10
EV_CTL_HANGUP = 11
EV_CTL_BRIDGE = 12
EV_CTL_BLOCK = 13
EV_CTL_UNBLOCK = 14
EV_CTL_ANSWER = 15  # answer an inbound call
EV_TIMER_RING = 16  # no answer within the ring timeout
EV_TIMER_BRIDGE = 17  # answered, but no operator bridged within the bridge deadline (2 s)
EV_TIMER_RELEASE = 18  # the hardware did not confirm a release within the guard time
EV_TIMER_WATCHDOG = 19  # the hardware did not respond to a request in time

EVENT_NAMES = (
    "hw_in_service", "hw_out_of_service", "hw_dialing", "hw_proceeding", "hw_alerting",
    "hw_answer", "hw_release", "hw_released", "hw_inbound", "hw_bridged",
    "ctl_dial", "ctl_hangup", "ctl_bridge", "ctl_block", "ctl_unblock", "ctl_answer",
    "timer_ring", "timer_bridge", "timer_release", "timer_watchdog",
)

# Actions the core returns for the caller to carry out.
ACT_DIAL = 0  # tell the driver to place the call
ACT_HANGUP = 1  # tell the driver to release the call (cause given)
ACT_BRIDGE = 2  # tell the driver to connect the call to the operator position
ACT_ANSWER = 3  # tell the driver to answer the inbound call
ACT_NOTIFY_PROGRESS = 4  # tell the controller the call progressed (new state in arg)
ACT_NOTIFY_ANSWER = 5  # tell the controller: live answer, find an operator now
ACT_NOTIFY_BRIDGED = 6
ACT_NOTIFY_RELEASED = 7  # tell the controller the call is over (cause in arg)
ACT_NOTIFY_ABANDONED = 8  # answered but no operator in time: abandoned call, hang up follows
ACT_NOTIFY_OUT_OF_SERVICE = 9
ACT_NOTIFY_IN_SERVICE = 10
ACT_NOTIFY_INBOUND = 11
ACT_RESET = 12  # the hardware stopped responding: reset the channel's module

ACT_REJECTED = 13  # the event was illegal in this state: rejected and counted (arg = event)

ACTION_NAMES = (
    "dial", "hangup", "bridge", "answer", "notify_progress", "notify_answer", "notify_bridged",
    "notify_released", "notify_abandoned", "notify_out_of_service", "notify_in_service",
    "notify_inbound", "reset", "rejected",
)

# Timer kinds (one deadline of each kind per channel at most).
TIMER_RING = 0
TIMER_BRIDGE = 1
TIMER_RELEASE = 2
TIMER_WATCHDOG = 3
TIMER_NAMES = ("ring", "bridge", "release", "watchdog")

# Q.850 causes the core itself produces.
CAUSE_NORMAL = 16
CAUSE_NO_ANSWER = 19
CAUSE_RECOVERY_ON_TIMER = 102
CAUSE_ABANDONED = 16  # we hang up an abandoned call with normal clearing toward the network
CAUSE_NETWORK_OUT_OF_ORDER = 38  # our own channel failed under a call (hw_out_of_service)
CAUSE_GLARE = 44  # "requested channel not available": an inbound call took the seized channel

# Sizes, derived from the names above so they cannot disagree with them.
N_STATES = len(STATE_NAMES)
N_EVENTS = len(EVENT_NAMES)
N_ACTIONS = len(ACTION_NAMES)
N_TIMERS = len(TIMER_NAMES)
EV_TIMER_FIRST = EV_TIMER_RING  # EV_TIMER_FIRST + kind is the event a timer of that kind fires

# Limits of the core's API, the same in both implementations.
MAX_TIME_MS = 1 << 53  # now_ms and deadlines stay exact in a double and in int64
MAX_TIMEOUT_MS = 86_400_000  # one day
MAX_KEYS = 1 << 22  # timer wheel keys; LineCore uses channel * N_TIMERS + kind
MAX_CHANNELS = MAX_KEYS // N_TIMERS
MAX_CAUSE = 127  # Q.850 cause values are 7 bits
