"""Differential test: the compiled core and its pure-Python twin agree at every step."""
from __future__ import annotations

import os
from array import array

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cext
from cext.linestate_codes import EV_TIMER_FIRST, N_EVENTS, N_TIMERS
from cext.linestate_table import rows
from tests.conftest import cext_module

LEGAL_BY_STATE: dict[int, list[int]] = {}
for _row in rows():
    if _row.event < EV_TIMER_FIRST:
        LEGAL_BY_STATE.setdefault(_row.state, []).append(_row.event)


@pytest.fixture(scope="module")
def both():
    """(compiled, twin) modules; the compiled one must exist unless disabled on purpose."""
    if cext.IMPLEMENTATION != "cython":
        if os.environ.get("DIALBOX_NO_EXTENSIONS"):
            pytest.skip("DIALBOX_NO_EXTENSIONS=1: no compiled core to compare")
        pytest.fail("the compiled cext core did not load (build it: pip install -e .)")
    return cext_module("cython", "linestate"), cext_module("python", "linestate")


def outcome(call):
    """The result of a call, or the error it raised (type and message), for comparison."""
    try:
        return ("ok", call())
    except (ValueError, TypeError) as exc:
        return (type(exc).__name__, str(exc))


def snapshot(core):
    n = core.n_channels
    return (core.states(), [core.rejected(ch) for ch in range(n)], core.total_rejected(),
            core.events_processed(), core.pending_timers(), core.next_deadline(),
            [core.timer_deadline(ch, k) for ch in range(n) for k in range(N_TIMERS)])


_TIME_STEP = st.one_of(st.just(0), st.integers(1, 50), st.integers(1_000, 12_000),
                       st.integers(25_000, 70_000), st.integers(-5, -1))


def _event(data, state_of, n):
    """Mostly an event legal for the channel's state (deep paths), sometimes anything."""
    ch = data.draw(st.integers(0, n - 1) | st.integers(-2, n + 2), "channel")
    legal = LEGAL_BY_STATE.get(state_of(ch), []) if 0 <= ch < n else []
    if legal and data.draw(st.integers(0, 7), "kind") > 0:
        ev = data.draw(st.sampled_from(legal), "event")
    else:
        ev = data.draw(st.integers(-1, N_EVENTS), "event")
    cause = data.draw(st.sampled_from([0, 16, 17, 19, 21, 34, 127, 128]), "cause")
    return ch, ev, cause


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_core_twins_agree_on_random_streams(both, data):
    compiled, twin = both
    n = data.draw(st.integers(1, 4), "n_channels")
    timeouts = data.draw(st.fixed_dictionaries({
        "ring_timeout_ms": st.integers(1, 40_000), "bridge_timeout_ms": st.integers(1, 3_000),
        "release_guard_ms": st.integers(1, 9_000), "watchdog_ms": st.integers(1, 80_000)}))
    cores = [compiled.LineCore(n, **timeouts), twin.LineCore(n, **timeouts)]
    now = 0
    for _ in range(data.draw(st.integers(1, 60), "steps")):
        dt = data.draw(_TIME_STEP, "dt")
        at = now + dt  # a negative step must be refused by both, and time stays where it was
        now = max(now, at)
        op = data.draw(st.sampled_from(["feed", "feed", "arrays", "one", "expire", "timeout"]))
        if op in ("feed", "arrays"):
            batch = [_event(data, lambda ch: cores[1].states()[ch], n)
                     for _ in range(data.draw(st.integers(0, 8), "batch"))]
        if op == "feed":
            results = [outcome(lambda c=c: c.feed(batch, at)) for c in cores]
        elif op == "arrays":
            cols = [array("i", col) for col in zip(*batch)] or [array("i")] * 3
            results = [outcome(lambda c=c: (c.feed_arrays(*cols, at), list(c.action_buffer)))
                       for c in cores]
        elif op == "one":
            ev = _event(data, lambda ch: cores[1].states()[ch], n)
            results = [outcome(lambda c=c: c.feed_one(*ev, at)) for c in cores]
        elif op == "expire":
            results = [outcome(lambda c=c: (c.expire(at), c.expire_arrays(at))) for c in cores]
        else:
            kind = data.draw(st.integers(-1, N_TIMERS), "timer kind")
            ms = data.draw(st.integers(0, 50_000), "ms")
            results = [outcome(lambda c=c: c.set_timeout(kind, ms)) for c in cores]
        assert results[0] == results[1], op
        assert snapshot(cores[0]) == snapshot(cores[1])
        assert list(cores[0].action_buffer) == list(cores[1].action_buffer)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_wheel_twins_agree(both, data):
    compiled, twin = both
    capacity = data.draw(st.integers(1, 40), "capacity")
    start = data.draw(st.integers(0, 100_000), "start")
    wheels = [compiled.TimerWheel(capacity, start), twin.TimerWheel(capacity, start)]
    now = start
    for _ in range(data.draw(st.integers(1, 80), "steps")):
        op = data.draw(st.sampled_from(["arm", "arm", "arm", "cancel", "expire", "deadline"]))
        key = data.draw(st.integers(-1, capacity), "key")
        if op == "arm":
            deadline = now + data.draw(_TIME_STEP | st.integers(60_000, 300_000), "in")
            results = [outcome(lambda w=w: w.arm(key, deadline)) for w in wheels]
        elif op == "cancel":
            results = [outcome(lambda w=w: w.cancel(key)) for w in wheels]
        elif op == "deadline":
            results = [outcome(lambda w=w: w.deadline(key)) for w in wheels]
        else:
            at = now + data.draw(_TIME_STEP | st.integers(60_000, 300_000), "dt")
            now = max(now, at)
            results = [outcome(lambda w=w: w.expire(at)) for w in wheels]
        assert results[0] == results[1], op
        assert len({(w.pending(), w.next_deadline()) for w in wheels}) == 1
