"""The line-state core, run against both implementations (compiled and pure-Python twin)."""
from __future__ import annotations

import json
import os
import re
from array import array

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cext
from cext.linestate_codes import (
    ACT_ANSWER, ACT_BRIDGE, ACT_DIAL, ACT_HANGUP, ACT_NOTIFY_ABANDONED, ACT_NOTIFY_ANSWER,
    ACT_NOTIFY_BRIDGED, ACT_NOTIFY_IN_SERVICE, ACT_NOTIFY_INBOUND, ACT_NOTIFY_OUT_OF_SERVICE,
    ACT_NOTIFY_PROGRESS, ACT_NOTIFY_RELEASED, ACT_REJECTED, ACT_RESET, ALERTING, ANSWERED,
    BLOCKED, BRIDGED, DIALING, EV_CTL_ANSWER, EV_CTL_BLOCK, EV_CTL_BRIDGE, EV_CTL_DIAL,
    EV_CTL_HANGUP, EV_HW_ALERTING, EV_HW_ANSWER, EV_HW_BRIDGED, EV_HW_DIALING, EV_HW_IN_SERVICE,
    EV_HW_INBOUND, EV_HW_OUT_OF_SERVICE, EV_HW_PROCEEDING, EV_HW_RELEASE, EV_HW_RELEASED,
    EV_TIMER_FIRST, EV_TIMER_WATCHDOG, IDLE, INBOUND, N_EVENTS, N_STATES,
    N_TIMERS, OUT_OF_SERVICE, PROCEEDING, RELEASING, SEIZED, TIMER_BRIDGE, TIMER_RELEASE,
    TIMER_RING, TIMER_WATCHDOG,
)
from cext.linestate_table import (
    ARG_CALL_CAUSE, ARG_CAUSE, ARG_STATE, CALL_STATES, REST_STATES, rows,
)
from tests.conftest import cext_module

TIMEOUTS = {TIMER_RING: 30000, TIMER_BRIDGE: 2000, TIMER_RELEASE: 5000, TIMER_WATCHDOG: 10000}
ROWS = rows()
LEGAL = {(r.state, r.event) for r in ROWS}

# How to bring a channel from the start (out of service) into each state with fed events only.
PATHS = {
    OUT_OF_SERVICE: [],
    IDLE: [EV_HW_IN_SERVICE],
    SEIZED: [EV_HW_IN_SERVICE, EV_CTL_DIAL],
    DIALING: [EV_HW_IN_SERVICE, EV_CTL_DIAL, EV_HW_DIALING],
    PROCEEDING: [EV_HW_IN_SERVICE, EV_CTL_DIAL, EV_HW_DIALING, EV_HW_PROCEEDING],
    ALERTING: [EV_HW_IN_SERVICE, EV_CTL_DIAL, EV_HW_DIALING, EV_HW_ALERTING],
    ANSWERED: [EV_HW_IN_SERVICE, EV_CTL_DIAL, EV_HW_DIALING, EV_HW_ANSWER],
    BRIDGED: [EV_HW_IN_SERVICE, EV_CTL_DIAL, EV_HW_DIALING, EV_HW_ANSWER, EV_HW_BRIDGED],
    RELEASING: [EV_HW_IN_SERVICE, EV_CTL_DIAL, EV_HW_DIALING, EV_CTL_HANGUP],
    BLOCKED: [EV_HW_IN_SERVICE, EV_CTL_BLOCK],
    INBOUND: [EV_HW_IN_SERVICE, EV_HW_INBOUND],
}
# The inbound watchdog only runs once we answered.
PATH_OVERRIDES = {(INBOUND, EV_TIMER_WATCHDOG): [EV_HW_IN_SERVICE, EV_HW_INBOUND, EV_CTL_ANSWER]}


@pytest.fixture
def mod(cext_impl):
    return cext_module(cext_impl, "linestate")


def drive(core, ch, path, now=0):
    for ev in path:
        out = core.feed_one(ch, ev, 0, now)
        assert all(a[1] != ACT_REJECTED for a in out), (path, ev)


def test_compiled_core_loaded():
    """Guard: CI must not silently test the twin twice."""
    if os.environ.get("DIALBOX_NO_EXTENSIONS"):
        pytest.skip("DIALBOX_NO_EXTENSIONS=1: the twin is wanted")
    import cext.linestate as selected
    assert cext.IMPLEMENTATION == "cython"
    assert selected.IMPLEMENTATION == "cython"
    assert selected.LineCore.__module__ == "cext._linestate"


def test_selector_follows_cext_implementation():
    import cext.linestate as selected
    assert selected.IMPLEMENTATION == cext.IMPLEMENTATION


def test_table_covers_every_state_and_the_spec_rows():
    assert {r.state for r in ROWS} == set(range(N_STATES))
    spec = {
        (IDLE, EV_CTL_DIAL): SEIZED, (SEIZED, EV_HW_DIALING): DIALING,
        (DIALING, EV_HW_PROCEEDING): PROCEEDING, (PROCEEDING, EV_HW_ALERTING): ALERTING,
        (ALERTING, EV_HW_ANSWER): ANSWERED, (ANSWERED, EV_CTL_BRIDGE): ANSWERED,
        (ANSWERED, EV_HW_BRIDGED): BRIDGED, (BRIDGED, EV_HW_RELEASE): RELEASING,
        (RELEASING, EV_HW_RELEASED): IDLE, (OUT_OF_SERVICE, EV_HW_IN_SERVICE): IDLE,
        (IDLE, EV_HW_INBOUND): INBOUND, (SEIZED, EV_HW_INBOUND): INBOUND,
        (INBOUND, EV_HW_ANSWER): ANSWERED,
    }
    by_pair = {(r.state, r.event): r.next_state for r in ROWS}
    for pair, nxt in spec.items():
        assert by_pair[pair] == nxt
    for state in range(N_STATES):
        assert by_pair[(state, EV_HW_OUT_OF_SERVICE)] == OUT_OF_SERVICE


def _expected_actions(row, ch, cause, call_cause):
    out = []
    for action, kind, value in row.actions:
        if kind == ARG_CAUSE:
            arg = cause or value
        elif kind == ARG_STATE:
            arg = row.next_state
        elif kind == ARG_CALL_CAUSE:
            arg = call_cause or value
        else:
            arg = value
        out.append((ch, action, arg))
    return out


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"{r.state}-{r.event}")
def test_every_legal_transition(mod, row):
    core = mod.LineCore(3)
    ch = 1
    drive(core, ch, PATH_OVERRIDES.get((row.state, row.event), PATHS[row.state]), now=100)
    assert core.state(ch) == row.state
    before = {k: core.timer_deadline(ch, k) for k in range(N_TIMERS)}
    if row.event >= EV_TIMER_FIRST:
        kind = row.event - EV_TIMER_FIRST
        now = before[kind]
        assert now == 100 + TIMEOUTS[kind]
        assert core.expire(now - 1) == []
        out = core.expire(now)
        cause = 0
    else:
        now, cause = 150, 21
        out = core.feed_one(ch, row.event, cause, now)
    assert core.state(ch) == row.next_state
    # RELEASING is reached by our hangup (cause 16 recorded), the call not yet reported.
    expected = _expected_actions(row, ch, cause, 16 if row.state == RELEASING else 0)
    assert out == expected
    for kind in range(N_TIMERS):
        if kind in row.arm:
            assert core.timer_deadline(ch, kind) == now + TIMEOUTS[kind]
        elif kind in row.cancel or (row.event >= EV_TIMER_FIRST and
                                    kind == row.event - EV_TIMER_FIRST):
            assert core.timer_deadline(ch, kind) == -1
        else:
            assert core.timer_deadline(ch, kind) == before[kind]
    if row.next_state in REST_STATES:
        assert core.pending_timers() == 0
    assert core.state(0) == OUT_OF_SERVICE and core.state(2) == OUT_OF_SERVICE
    assert core.total_rejected() == 0


ILLEGAL = [(s, e) for s in range(N_STATES) for e in range(EV_TIMER_FIRST) if (s, e) not in LEGAL]


@pytest.mark.parametrize("pair", ILLEGAL, ids=lambda p: f"{p[0]}-{p[1]}")
def test_illegal_event_is_rejected_and_counted(mod, pair):
    state, event = pair
    core = mod.LineCore(2)
    drive(core, 0, PATHS[state], now=5)
    timers = [core.timer_deadline(0, k) for k in range(N_TIMERS)]
    assert core.feed_one(0, event, 17, 6) == [(0, ACT_REJECTED, event)]
    assert core.feed_one(0, event, 17, 7) == [(0, ACT_REJECTED, event)]
    assert core.state(0) == state
    assert core.rejected(0) == 2 and core.rejected(1) == 0 and core.total_rejected() == 2
    assert [core.timer_deadline(0, k) for k in range(N_TIMERS)] == timers
    assert core.events_processed() == len(PATHS[state]) + 2


def test_timer_events_cannot_be_fed(mod):
    core = mod.LineCore(1)
    for ev in range(EV_TIMER_FIRST, N_EVENTS):
        with pytest.raises(ValueError, match="timer events come from expire"):
            core.feed_one(0, ev, 0, 0)


def test_outbound_call_answered_and_bridged(mod):
    core = mod.LineCore(4)
    ch = 3
    assert core.feed_one(ch, EV_HW_IN_SERVICE, 0, 0) == [(ch, ACT_NOTIFY_IN_SERVICE, 0)]
    assert core.feed_one(ch, EV_CTL_DIAL, 0, 10) == [(ch, ACT_DIAL, 0)]
    assert core.timer_deadline(ch, TIMER_WATCHDOG) == 10010
    assert core.feed_one(ch, EV_HW_DIALING, 0, 40) == []
    assert core.timer_deadline(ch, TIMER_WATCHDOG) == -1
    assert core.timer_deadline(ch, TIMER_RING) == 30040
    assert core.feed_one(ch, EV_HW_PROCEEDING, 0, 200) == [(ch, ACT_NOTIFY_PROGRESS, PROCEEDING)]
    assert core.feed_one(ch, EV_HW_ALERTING, 0, 900) == [(ch, ACT_NOTIFY_PROGRESS, ALERTING)]
    assert core.feed_one(ch, EV_HW_ANSWER, 0, 8000) == [(ch, ACT_NOTIFY_ANSWER, 0)]
    assert core.timer_deadline(ch, TIMER_RING) == -1
    assert core.next_deadline() == 10000
    assert core.feed_one(ch, EV_CTL_BRIDGE, 0, 8100) == [(ch, ACT_BRIDGE, 0)]
    assert core.feed_one(ch, EV_HW_BRIDGED, 0, 8600) == [(ch, ACT_NOTIFY_BRIDGED, 0)]
    assert core.pending_timers() == 0 and core.next_deadline() == -1
    assert core.expire(10000) == []  # the bridge timer was cancelled: nothing fires
    assert core.feed_one(ch, EV_HW_RELEASE, 16, 60000) == [(ch, ACT_NOTIFY_RELEASED, 16)]
    assert core.timer_deadline(ch, TIMER_RELEASE) == 65000
    assert core.feed_one(ch, EV_HW_RELEASED, 0, 60050) == []  # already reported once
    assert core.state(ch) == IDLE and core.pending_timers() == 0


def test_ring_timeout_hangs_up_with_cause_19_at_the_exact_ms(mod):
    core = mod.LineCore(1, ring_timeout_ms=15000)
    drive(core, 0, [EV_HW_IN_SERVICE, EV_CTL_DIAL], now=0)
    core.feed_one(0, EV_HW_DIALING, 0, 500)
    assert core.expire(15499) == []
    assert core.expire(15500) == [(0, ACT_HANGUP, 19)]
    assert core.state(0) == RELEASING
    assert core.feed_one(0, EV_HW_RELEASED, 16, 15600) == [(0, ACT_NOTIFY_RELEASED, 19)]
    assert core.state(0) == IDLE


def test_ring_timer_counts_from_alerting_not_from_proceeding(mod):
    core = mod.LineCore(1)
    drive(core, 0, PATHS[DIALING], now=10)
    core.feed_one(0, EV_HW_PROCEEDING, 0, 500)
    assert core.timer_deadline(0, TIMER_RING) == 30010
    core.feed_one(0, EV_HW_ALERTING, 0, 2000)
    assert core.timer_deadline(0, TIMER_RING) == 32000
    assert core.expire(31999) == []
    assert core.expire(32000) == [(0, ACT_HANGUP, 19)]


def test_bridge_deadline_abandons_the_call(mod):
    core = mod.LineCore(1)
    drive(core, 0, PATHS[ANSWERED], now=1000)
    assert core.expire(2999) == []
    assert core.expire(3000) == [(0, ACT_NOTIFY_ABANDONED, 0), (0, ACT_HANGUP, 16)]
    assert core.state(0) == RELEASING
    assert core.timer_deadline(0, TIMER_RELEASE) == 8000
    assert core.feed_one(0, EV_HW_RELEASED, 0, 3100) == [(0, ACT_NOTIFY_RELEASED, 16)]


def test_release_guard_resets_the_channel(mod):
    core = mod.LineCore(1, release_guard_ms=700)
    drive(core, 0, PATHS[BRIDGED], now=0)
    assert core.feed_one(0, EV_CTL_HANGUP, 31, 50) == [(0, ACT_HANGUP, 31)]
    assert core.expire(749) == []
    assert core.expire(750) == [(0, ACT_RESET, 0), (0, ACT_NOTIFY_RELEASED, 31),
                                (0, ACT_NOTIFY_OUT_OF_SERVICE, 0)]
    assert core.state(0) == OUT_OF_SERVICE
    assert core.feed_one(0, EV_HW_IN_SERVICE, 0, 900) == [(0, ACT_NOTIFY_IN_SERVICE, 0)]


def test_watchdog_when_the_hardware_never_takes_the_dial(mod):
    core = mod.LineCore(2, watchdog_ms=3000)
    drive(core, 1, PATHS[SEIZED], now=100)
    assert core.expire(3100) == [(1, ACT_RESET, 0), (1, ACT_NOTIFY_RELEASED, 102),
                                 (1, ACT_NOTIFY_OUT_OF_SERVICE, 0)]
    assert core.state(1) == OUT_OF_SERVICE and core.pending_timers() == 0


def test_glare_inbound_wins_and_the_outbound_call_is_reported_once(mod):
    core = mod.LineCore(1)
    drive(core, 0, PATHS[SEIZED], now=0)
    assert core.feed_one(0, EV_HW_INBOUND, 0, 5) == [(0, ACT_NOTIFY_RELEASED, 44),
                                                     (0, ACT_NOTIFY_INBOUND, 0)]
    assert core.state(0) == INBOUND
    assert core.timer_deadline(0, TIMER_WATCHDOG) == -1
    assert core.feed_one(0, EV_CTL_ANSWER, 0, 10) == [(0, ACT_ANSWER, 0)]
    assert core.feed_one(0, EV_HW_ANSWER, 0, 60) == [(0, ACT_NOTIFY_ANSWER, 0)]
    assert core.feed_one(0, EV_HW_RELEASE, 0, 90) == [(0, ACT_NOTIFY_RELEASED, 16)]
    assert core.feed_one(0, EV_HW_RELEASED, 0, 95) == []


def test_out_of_service_during_a_call(mod):
    core = mod.LineCore(1)
    drive(core, 0, PATHS[ALERTING], now=0)
    assert core.feed_one(0, EV_HW_OUT_OF_SERVICE, 0, 9) == [
        (0, ACT_NOTIFY_RELEASED, 38), (0, ACT_NOTIFY_OUT_OF_SERVICE, 0)]
    assert core.pending_timers() == 0
    assert core.feed_one(0, EV_HW_OUT_OF_SERVICE, 0, 10) == []


def test_set_timeout_applies_to_timers_armed_afterwards(mod):
    core = mod.LineCore(2)
    drive(core, 0, PATHS[ANSWERED], now=0)
    core.set_timeout(TIMER_BRIDGE, 1500)
    assert core.timeout(TIMER_BRIDGE) == 1500
    drive(core, 1, PATHS[ANSWERED], now=100)
    assert core.timer_deadline(0, TIMER_BRIDGE) == 2000
    assert core.timer_deadline(1, TIMER_BRIDGE) == 1600
    assert core.next_deadline() == 1600
    assert [a[0] for a in core.expire(2000) if a[1] == ACT_NOTIFY_ABANDONED] == [1, 0]


def test_timers_fire_in_deadline_then_channel_order(mod):
    core = mod.LineCore(5)
    for ch, t in ((4, 10), (2, 10), (3, 20), (0, 30)):
        drive(core, ch, PATHS[ANSWERED], now=t)
    out = core.expire(5000)
    assert [a[0] for a in out if a[1] == ACT_NOTIFY_ABANDONED] == [2, 4, 3, 0]


# Any events on one channel: a call is opened by dial/inbound and reported released exactly once.
_CALL_EVENTS = st.lists(st.tuples(st.integers(0, EV_TIMER_FIRST - 1), st.integers(0, 60_000)),
                        max_size=60)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # cext_impl is a name
@given(steps=_CALL_EVENTS)
def test_exactly_one_notify_released_per_call(cext_impl, steps):
    core = cext_module(cext_impl, "linestate").LineCore(1, ring_timeout_ms=900,
                                                         bridge_timeout_ms=300)
    now, open_calls, released = 0, 0, 0
    for ev, dt in [(EV_HW_IN_SERVICE, 0)] + steps + [(EV_HW_RELEASED, 100_000)]:
        now += dt
        before = core.state(0)
        out = core.expire(now) + core.feed_one(0, ev, 0, now)
        for _, action, _ in out:
            released += action == ACT_NOTIFY_RELEASED
            open_calls += action in (ACT_DIAL, ACT_NOTIFY_INBOUND)
        assert released <= open_calls
        if core.state(0) in REST_STATES:
            assert released == open_calls, (before, ev, out)
        if before in CALL_STATES and core.state(0) in CALL_STATES:
            assert released >= open_calls - 1


def test_batch_feed_matches_single_events(mod):
    events = [(0, EV_HW_IN_SERVICE, 0), (1, EV_HW_IN_SERVICE, 0), (0, EV_CTL_DIAL, 0),
              (1, EV_HW_INBOUND, 0), (0, EV_HW_ANSWER, 0), (1, EV_CTL_BLOCK, 0),
              (0, EV_HW_RELEASE, 17)]
    one = mod.LineCore(2)
    expected = [a for ch, ev, cause in events for a in one.feed_one(ch, ev, cause, 7)]
    batch = mod.LineCore(2)
    assert batch.feed(events, 7) == expected
    arrays = mod.LineCore(2)
    chs, evs, causes = (array("i", col) for col in zip(*events))
    n = arrays.feed_arrays(chs, evs, causes, 7)
    assert n == len(expected)
    assert list(arrays.action_buffer) == [x for a in expected for x in a]
    assert one.states() == batch.states() == arrays.states()
    assert arrays.events_processed() == len(events) and arrays.total_rejected() == 1
    assert arrays.feed_arrays(array("i"), array("i"), array("i"), 8) == 0
    assert len(arrays.action_buffer) == 0


def test_expire_arrays_fills_the_buffer(mod):
    core = mod.LineCore(3)
    for ch in range(3):
        drive(core, ch, PATHS[ANSWERED], now=ch)
    assert core.expire_arrays(2001) == 4
    assert list(core.action_buffer) == [0, ACT_NOTIFY_ABANDONED, 0, 0, ACT_HANGUP, 16,
                                        1, ACT_NOTIFY_ABANDONED, 0, 1, ACT_HANGUP, 16]
    assert core.pending_timers() == 3


def test_action_buffer_is_reused_and_never_resized_under_a_view(mod):
    core = mod.LineCore(2)
    buf = core.action_buffer
    one = array("i", [0])
    core.feed_arrays(one, array("i", [EV_HW_IN_SERVICE]), array("i", [0]), 0)
    assert core.action_buffer is buf and list(buf) == [0, ACT_NOTIFY_IN_SERVICE, 0]
    view = memoryview(buf)
    with pytest.raises(BufferError):
        core.feed_arrays(one, array("i", [EV_CTL_DIAL]), array("i", [0]), 1)
    with pytest.raises(BufferError):
        core.expire_arrays(1)
    assert core.state(0) == IDLE and core.events_processed() == 1
    assert core.feed_one(0, EV_CTL_DIAL, 0, 1) == [(0, ACT_DIAL, 0)]  # lists do not need it
    assert view.tolist() == [0, ACT_NOTIFY_IN_SERVICE, 0]
    view.release()
    assert core.feed_arrays(one, array("i", [EV_CTL_HANGUP]), array("i", [0]), 2) == 1
    assert list(core.action_buffer) == [0, ACT_HANGUP, 16]


def test_bad_input_names_what_and_where_and_changes_nothing(mod):
    core = mod.LineCore(4)
    with pytest.raises(ValueError, match="channel 9 out of range 0..3 .event #1"):
        core.feed([(0, EV_HW_IN_SERVICE, 0), (9, EV_HW_IN_SERVICE, 0)], 0)
    with pytest.raises(ValueError, match="cause 300"):
        core.feed_arrays(array("i", [0]), array("i", [EV_HW_IN_SERVICE]), array("i", [300]), 0)
    with pytest.raises(ValueError, match="differ in length"):
        core.feed_arrays(array("i", [0, 1]), array("i", [0]), array("i", [0]), 0)
    assert core.states() == [OUT_OF_SERVICE] * 4 and core.events_processed() == 0
    for call in (lambda: core.state(4), lambda: core.rejected(-1),
                 lambda: core.feed_one(7, EV_HW_IN_SERVICE, 0, 0)):
        with pytest.raises(ValueError, match="channel"):
            call()
    core.feed_one(0, EV_HW_IN_SERVICE, 0, 100)
    with pytest.raises(ValueError, match="backwards"):
        core.expire(99)
    with pytest.raises(ValueError, match="now_ms -1"):
        mod.LineCore(1).expire(-1)
    with pytest.raises(ValueError, match="ring timeout 0 ms"):
        mod.LineCore(1, ring_timeout_ms=0)
    with pytest.raises(ValueError, match="timer kind 4"):
        core.set_timeout(4, 100)
    with pytest.raises(ValueError, match="n_channels 0"):
        mod.LineCore(0)
    with pytest.raises(TypeError):
        core.feed_one(0.5, EV_HW_IN_SERVICE, 0, 100)


def test_many_channels_keep_their_own_state(mod):
    core = mod.LineCore(4096)
    chs = array("i", range(4096))
    core.feed_arrays(chs, array("i", [EV_HW_IN_SERVICE] * 4096), array("i", [0] * 4096), 0)
    core.feed_arrays(chs, array("i", [EV_CTL_DIAL] * 4096), array("i", [0] * 4096), 1)
    assert core.pending_timers() == 4096
    odd = array("i", range(1, 4096, 2))
    core.feed_arrays(odd, array("i", [EV_HW_DIALING] * 2048), array("i", [0] * 2048), 2)
    assert core.expire_arrays(10001) == 2048 * 3  # even channels: watchdog
    states = core.states()
    assert states[0::2] == [OUT_OF_SERVICE] * 2048 and states[1::2] == [DIALING] * 2048
    assert core.next_deadline() == 30002 and core.pending_timers() == 2048


# The standalone timer wheel.

@pytest.fixture
def wheel_cls(cext_impl):
    return cext_module(cext_impl, "linestate").TimerWheel


def test_wheel_arm_cancel_expire(wheel_cls):
    wheel = wheel_cls(100)
    wheel.arm(5, 300)
    wheel.arm(7, 100)
    wheel.arm(3, 100)
    wheel.arm(9, 200)
    assert wheel.pending() == 4 and wheel.next_deadline() == 100
    assert wheel.cancel(9) is True and wheel.cancel(9) is False
    wheel.arm(5, 150)  # re-arm replaces
    assert wheel.deadline(5) == 150
    assert wheel.expire(99) == []
    assert wheel.expire(150) == [3, 7, 5]
    assert wheel.pending() == 0 and wheel.next_deadline() == -1 and wheel.deadline(5) == -1


def test_wheel_past_deadline_fires_at_next_expire(wheel_cls):
    wheel = wheel_cls(4, now_ms=1000)
    wheel.expire(2000)
    wheel.arm(1, 1500)
    assert wheel.next_deadline() == 1500
    assert wheel.expire(2000) == [1]


def test_wheel_far_deadlines_and_big_jumps(wheel_cls):
    wheel = wheel_cls(10)
    wheel.arm(0, 200_000)  # several wheel turns away
    wheel.arm(1, 65_536 + 10)  # same slot as tick 10, next turn
    wheel.arm(2, 10)
    assert wheel.next_deadline() == 10
    assert wheel.expire(10) == [2]
    assert wheel.next_deadline() == 65_546
    assert wheel.expire(65_545) == []
    assert wheel.expire(199_999) == [1]
    assert wheel.next_deadline() == 200_000
    assert wheel.expire(10_000_000) == [0]


def test_wheel_tens_of_thousands_pending(wheel_cls):
    wheel = wheel_cls(50_000)
    for key in range(50_000):
        wheel.arm(key, 1 + (key * 7919) % 40_000)
    for key in range(0, 50_000, 2):
        wheel.cancel(key)
    assert wheel.pending() == 25_000
    fired, previous = [], -1
    for now in list(range(0, 40_001, 997)) + [40_001]:
        keys = wheel.expire(now)
        deadlines = [1 + (k * 7919) % 40_000 for k in keys]
        assert all(previous < d <= now for d in deadlines)
        assert list(zip(deadlines, keys)) == sorted(zip(deadlines, keys))
        fired += keys
        previous = now
    assert sorted(fired) == list(range(1, 50_000, 2))
    assert wheel.pending() == 0


_WHEEL_OPS = st.lists(st.tuples(st.sampled_from(["arm", "arm", "cancel", "expire"]),
                                st.integers(0, 15), st.integers(-100, 200_000)), max_size=80)


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # wheel_cls is a class
@given(ops=_WHEEL_OPS)
def test_wheel_matches_a_sorted_dict_model(wheel_cls, ops):
    wheel, model, now = wheel_cls(16), {}, 0
    for op, key, amount in ops:
        if op == "arm":
            deadline = max(0, now + amount)
            wheel.arm(key, deadline)
            model[key] = deadline
        elif op == "cancel":
            assert wheel.cancel(key) == (model.pop(key, None) is not None)
        else:
            now += abs(amount)
            due = sorted((d, k) for k, d in model.items() if d <= now)
            assert wheel.expire(now) == [k for _, k in due]
            for _, k in due:
                del model[k]
        assert wheel.pending() == len(model)
        assert wheel.next_deadline() == min(model.values(), default=-1)


def test_wheel_rejects_bad_keys_and_time(wheel_cls):
    wheel = wheel_cls(3)
    with pytest.raises(ValueError, match="timer key 3"):
        wheel.arm(3, 10)
    wheel.expire(50)
    with pytest.raises(ValueError, match="backwards"):
        wheel.expire(49)


# The table on the command line.

def _run_cli(monkeypatch, argv):
    from dialbox import cli
    monkeypatch.setattr(cli, "_COMMAND_MODULES", ("dialbox.cmd_linestate",))
    return cli.main(argv)


def test_cli_prints_the_table(monkeypatch, capsys):
    assert _run_cli(monkeypatch, ["linestate", "table"]) == 0
    text = capsys.readouterr().out
    assert re.search(r"idle \+ ctl_dial +-> seized ", text)
    assert "dial(0)" in text and "arm watchdog" in text
    assert len([line for line in text.splitlines() if " -> " in line]) == len(ROWS)


def test_cli_prints_the_table_as_json(monkeypatch, capsys):
    assert _run_cli(monkeypatch, ["linestate", "table", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["transitions"]) == len(ROWS)
    row = next(r for r in data["transitions"]
               if (r["state"], r["event"]) == ("answered", "timer_bridge"))
    assert row["next_state"] == "releasing"
    assert row["actions"] == ["notify_abandoned(0)", "hangup(16)"]
    assert data["timeouts_ms"]["bridge"] == 2000
