"""The line-state core and timer wheel, compiled when built, else the pure-Python twin.

API (the same in ``cext._linestate`` and ``cext.linestate_py``; codes in ``cext.linestate_codes``,
transitions in ``cext.linestate_table``)::

    core = LineCore(n_channels, *, ring_timeout_ms=30000, bridge_timeout_ms=2000,
                    release_guard_ms=5000, watchdog_ms=10000)
    core.n_channels; core.state(ch); core.states(); core.rejected(ch); core.total_rejected()
    core.events_processed(); core.pending_timers(); core.next_deadline()  # ms or -1
    core.timer_deadline(ch, kind)  # ms or -1; core.set_timeout(kind, ms); core.timeout(kind)
    core.feed([(ch, event, cause), ...], now_ms) -> [(ch, action, arg), ...]
    core.feed_one(ch, event, cause, now_ms) -> [(ch, action, arg), ...]
    core.expire(now_ms) -> [(ch, action, arg), ...]
    core.feed_arrays(channels, events, causes, now_ms) -> n_actions
    core.expire_arrays(now_ms) -> n_actions
    core.action_buffer  # array('i'): the last *_arrays call's actions as flat (ch, action, arg)

    wheel = TimerWheel(capacity, now_ms=0)   # keys 0..capacity-1, one deadline each
    wheel.arm(key, deadline_ms); wheel.cancel(key) -> bool; wheel.expire(now_ms) -> [key, ...]
    wheel.deadline(key); wheel.next_deadline(); wheel.pending()

Rules: every channel starts OUT_OF_SERVICE (the driver reports hw_in_service). ``now_ms`` is >= 0
and never goes backwards (ValueError). Only EV_HW_*/EV_CTL_* events are fed; timer events come
from ``expire``, which fires due timers in (deadline, channel, kind) order; call ``expire(now)``
before ``feed(..., now)`` so a timer due at ``now`` wins over an event at ``now``. A batch is
checked whole before any event runs (ValueError naming the channel/event/cause and its index).
An event illegal in the channel's state is rejected: state kept, counted, ``ACT_REJECTED``
(arg = event) emitted. ``feed_arrays`` takes int32 buffers (``array('i')``, memoryviews of C int)
of equal length; ``action_buffer`` is the same array object every time, resized by each
``*_arrays`` call (BufferError while a memoryview of it is alive); copy what you keep.
"""
from __future__ import annotations

from cext import select

_impl = select("linestate")

LineCore = _impl.LineCore
TimerWheel = _impl.TimerWheel
IMPLEMENTATION = "cython" if _impl.__name__ == "cext._linestate" else "python"

__all__ = ["IMPLEMENTATION", "LineCore", "TimerWheel"]
