"""Pure-Python twin of ``cext._linestate``: the line-state core and its timer wheel.

Behaviour is defined by ``cext.linestate_table`` and must match the compiled module exactly
(tests/test_linestate_diff.py checks it). Time is injected: every call takes ``now_ms``, which
must be >= 0 and never go backwards. Timers fire in (deadline, key) order, key = channel*4+kind.
"""
from __future__ import annotations

from array import array
from operator import index

from cext.linestate_codes import (
    ACT_HANGUP, ACT_NOTIFY_RELEASED, ACT_REJECTED, EV_TIMER_FIRST, MAX_CAUSE, MAX_CHANNELS,
    MAX_KEYS, MAX_TIME_MS, MAX_TIMEOUT_MS, N_EVENTS, N_TIMERS, OUT_OF_SERVICE, TIMER_NAMES,
)
from cext.linestate_table import (
    ARG_CALL_CAUSE, ARG_CAUSE, ARG_STATE, MAX_ACTIONS, compile_table,
)

_WHEEL_SLOTS = 1 << 16
_WHEEL_MASK = _WHEEL_SLOTS - 1


def _check_time(now_ms, floor: int) -> int:
    now_ms = index(now_ms)
    if not 0 <= now_ms <= MAX_TIME_MS:
        raise ValueError(f"now_ms {now_ms} out of range 0..{MAX_TIME_MS}")
    if now_ms < floor:
        raise ValueError(f"now_ms {now_ms} is before the core's time {floor}: "
                         "time must not go backwards")
    return now_ms


def _check_timeout(kind, ms) -> None:
    if not 0 <= kind < N_TIMERS:
        raise ValueError(f"timer kind {kind} out of range 0..{N_TIMERS - 1}")
    if not 1 <= ms <= MAX_TIMEOUT_MS:
        raise ValueError(f"{TIMER_NAMES[kind]} timeout {ms} ms out of range 1..{MAX_TIMEOUT_MS}")


class TimerWheel:
    """Deadlines for integer keys 0..capacity-1, one each; fired in (deadline, key) order."""

    def __init__(self, capacity: int, now_ms: int = 0) -> None:
        if not 1 <= capacity <= MAX_KEYS:
            raise ValueError(f"timer wheel capacity {capacity} out of range 1..{MAX_KEYS}")
        self.capacity = capacity
        self._cursor = _check_time(now_ms, 0)
        self._deadline: dict[int, int] = {}
        self._slots: dict[int, set[int]] = {}
        self._due: set[int] = set()  # collected by expire, not yet fired (LineCore only)
        self._min = -1
        self._min_dirty = False

    def arm(self, key: int, deadline_ms: int) -> None:
        """Set the key's deadline (replacing any); a deadline already past fires next expire."""
        self._check_key(key)
        if not 0 <= deadline_ms <= MAX_TIME_MS + MAX_TIMEOUT_MS:
            raise ValueError(f"deadline_ms {deadline_ms} out of range")
        self._arm(key, deadline_ms)

    def cancel(self, key: int) -> bool:
        """Drop the key's deadline; True when one was pending."""
        self._check_key(key)
        return self._cancel(key)

    def expire(self, now_ms: int) -> list[int]:
        """Remove and return the keys due at ``now_ms``, earliest deadline first."""
        return self._collect(now_ms)

    def deadline(self, key: int) -> int:
        """The key's pending deadline, or -1."""
        self._check_key(key)
        return self._deadline.get(key, -1)

    def next_deadline(self) -> int:
        """Earliest pending deadline, or -1."""
        if self._min_dirty:
            self._min = min(self._deadline.values(), default=-1)
            self._min_dirty = False
        return self._min

    def pending(self) -> int:
        """How many keys have a deadline."""
        return len(self._deadline) + len(self._due)

    def _check_key(self, key) -> None:
        if not 0 <= key < self.capacity:
            raise ValueError(f"timer key {key} out of range 0..{self.capacity - 1}")

    def _arm(self, key: int, deadline: int) -> None:
        if key in self._deadline:
            self._unlink(key)
        else:
            self._due.discard(key)
        self._deadline[key] = deadline
        # A deadline already behind the cursor waits in the cursor's slot, scanned next expire.
        slot = max(deadline, self._cursor) & _WHEEL_MASK
        self._slots.setdefault(slot, set()).add(key)
        if not self._min_dirty and (self._min < 0 or deadline < self._min):
            self._min = deadline

    def _cancel(self, key: int) -> bool:
        if key in self._deadline:
            self._unlink(key)
            return True
        if key in self._due:
            self._due.discard(key)
            return True
        return False

    def _unlink(self, key: int) -> None:
        deadline = self._deadline.pop(key)
        slot = max(deadline, self._cursor) & _WHEEL_MASK
        # Same slot as _arm chose: an expire since then would have collected a key whose
        # deadline is behind the cursor, so max(deadline, cursor) has not changed.
        keys = self._slots[slot]
        keys.discard(key)
        if not keys:
            del self._slots[slot]
        if deadline == self._min:
            self._min_dirty = True

    def _collect(self, now_ms: int) -> list[int]:
        now = _check_time(now_ms, self._cursor)
        due: list[tuple[int, int]] = []
        if self._deadline:
            span = now - self._cursor + 1
            if span >= _WHEEL_SLOTS or span >= len(self._slots):
                buckets = list(self._slots.values())
            else:
                buckets = [self._slots[t & _WHEEL_MASK] for t in range(self._cursor, now + 1)
                           if t & _WHEEL_MASK in self._slots]
            deadlines = self._deadline
            due = [(deadlines[k], k) for keys in buckets for k in keys if deadlines[k] <= now]
            for _, key in due:
                self._unlink(key)
        self._cursor = now
        due.sort()
        return [key for _, key in due]


class LineCore:
    """State of every channel, driven by events through the transition table."""

    def __init__(self, n_channels: int, *, ring_timeout_ms: int = 30000,
                 bridge_timeout_ms: int = 2000, release_guard_ms: int = 5000,
                 watchdog_ms: int = 10000) -> None:
        if not 1 <= n_channels <= MAX_CHANNELS:
            raise ValueError(f"n_channels {n_channels} out of range 1..{MAX_CHANNELS}")
        self.n_channels = n_channels
        self._timeouts = [0] * N_TIMERS
        for kind, ms in enumerate((ring_timeout_ms, bridge_timeout_ms, release_guard_ms,
                                   watchdog_ms)):
            self.set_timeout(kind, ms)
        compiled = compile_table()
        self._rows: list[tuple | None] = []
        for i, nxt in enumerate(compiled["next_state"]):
            if nxt < 0:
                self._rows.append(None)
                continue
            base = i * MAX_ACTIONS
            actions = tuple((compiled["action"][base + j], compiled["arg_kind"][base + j],
                             compiled["arg_const"][base + j])
                            for j in range(compiled["n_actions"][i]))
            cancel = tuple(k for k in range(N_TIMERS) if compiled["cancel_mask"][i] >> k & 1)
            arm = tuple(k for k in range(N_TIMERS) if compiled["arm_mask"][i] >> k & 1)
            self._rows.append((nxt, actions, cancel, arm, bool(compiled["opens_call"][i])))
        self._state = [OUT_OF_SERVICE] * n_channels
        self._rejected = [0] * n_channels
        self._call_open = [False] * n_channels
        self._call_cause = [0] * n_channels
        self._wheel = TimerWheel(n_channels * N_TIMERS)
        self._now = 0
        self._events = 0
        self._total_rejected = 0
        self.action_buffer = array("i")

    def set_timeout(self, kind: int, ms: int) -> None:
        """Change one timer kind's timeout for timers armed from now on."""
        _check_timeout(kind, ms)
        self._timeouts[kind] = ms

    def timeout(self, kind: int) -> int:
        """The timeout of one timer kind, in ms."""
        if not 0 <= kind < N_TIMERS:
            raise ValueError(f"timer kind {kind} out of range 0..{N_TIMERS - 1}")
        return self._timeouts[kind]

    def state(self, ch: int) -> int:
        """State of one channel."""
        self._check_channel(ch)
        return self._state[ch]

    def states(self) -> list[int]:
        """States of all channels."""
        return list(self._state)

    def rejected(self, ch: int) -> int:
        """Events rejected on one channel."""
        self._check_channel(ch)
        return self._rejected[ch]

    def total_rejected(self) -> int:
        return self._total_rejected

    def events_processed(self) -> int:
        """Events run through the table (fed, rejected and fired by timers)."""
        return self._events

    def pending_timers(self) -> int:
        return self._wheel.pending()

    def next_deadline(self) -> int:
        """Earliest pending timer deadline in ms, or -1."""
        return self._wheel.next_deadline()

    def timer_deadline(self, ch: int, kind: int) -> int:
        """Deadline of one channel's timer of one kind, or -1 when it is not running."""
        self._check_channel(ch)
        if not 0 <= kind < N_TIMERS:
            raise ValueError(f"timer kind {kind} out of range 0..{N_TIMERS - 1}")
        return self._wheel.deadline(ch * N_TIMERS + kind)

    def feed(self, events, now_ms: int) -> list[tuple[int, int, int]]:
        """Run (channel, event, cause) events at ``now_ms``; all are checked before any runs."""
        batch = [(index(ch), index(ev), index(cause)) for ch, ev, cause in events]
        for i, (ch, ev, cause) in enumerate(batch):
            self._check_event(i, ch, ev, cause)
        self._now = _check_time(now_ms, self._now)
        out: list[tuple[int, int, int]] = []
        for ch, ev, cause in batch:
            self._step(ch, ev, cause, out)
        return out

    def feed_one(self, channel: int, event: int, cause: int, now_ms: int) -> list:
        """Run one event at ``now_ms``."""
        return self.feed(((channel, event, cause),), now_ms)

    def feed_arrays(self, channels, events, causes, now_ms: int) -> int:
        """Batch path: parallel int arrays in; actions as flat triples in ``action_buffer``."""
        if not len(channels) == len(events) == len(causes):
            raise ValueError(f"feed_arrays: channels, events, causes differ in length "
                             f"({len(channels)}, {len(events)}, {len(causes)})")
        del self.action_buffer[:]  # BufferError now, before any event runs, if it is exported
        out = self.feed(zip(channels, events, causes), now_ms)
        self._fill_buffer(out)
        return len(out)

    def expire(self, now_ms: int) -> list[tuple[int, int, int]]:
        """Fire every timer due at ``now_ms`` through the table, earliest first."""
        self._now = _check_time(now_ms, self._now)
        wheel = self._wheel
        keys = wheel._collect(now_ms)
        wheel._due.update(keys)
        out: list[tuple[int, int, int]] = []
        for key in keys:
            if key in wheel._due:  # an earlier timer of this batch may have cancelled it
                wheel._due.discard(key)
                self._step(key // N_TIMERS, EV_TIMER_FIRST + key % N_TIMERS, 0, out)
        return out

    def expire_arrays(self, now_ms: int) -> int:
        """Like expire, with the actions as flat triples in ``action_buffer``."""
        del self.action_buffer[:]  # BufferError now, before any timer fires, if it is exported
        out = self.expire(now_ms)
        self._fill_buffer(out)
        return len(out)

    def _fill_buffer(self, out: list[tuple[int, int, int]]) -> None:
        buf = self.action_buffer
        del buf[:]
        buf.extend([x for action in out for x in action])

    def _check_channel(self, ch: int) -> None:
        if not 0 <= ch < self.n_channels:
            raise ValueError(f"channel {ch} out of range 0..{self.n_channels - 1}")

    def _check_event(self, i: int, ch, ev, cause) -> None:
        if not 0 <= ch < self.n_channels:
            raise ValueError(f"channel {ch} out of range 0..{self.n_channels - 1} (event #{i})")
        if not 0 <= ev < EV_TIMER_FIRST:
            raise ValueError(f"event {ev} is not a driver or controller event (event #{i}); "
                             "timer events come from expire()")
        if not 0 <= cause <= MAX_CAUSE:
            raise ValueError(f"cause {cause} out of range 0..{MAX_CAUSE} (event #{i})")

    def _step(self, ch: int, ev: int, cause: int, out: list) -> None:
        self._events += 1
        row = self._rows[self._state[ch] * N_EVENTS + ev]
        if row is None:
            self._rejected[ch] += 1
            self._total_rejected += 1
            out.append((ch, ACT_REJECTED, ev))
            return
        nxt, actions, cancel, arm, opens_call = row
        for action, kind, value in actions:
            if kind == ARG_CAUSE:
                arg = cause or value
            elif kind == ARG_STATE:
                arg = nxt
            elif kind == ARG_CALL_CAUSE:
                arg = self._call_cause[ch] or value
            else:
                arg = value
            if action == ACT_NOTIFY_RELEASED:
                if not self._call_open[ch]:
                    continue  # this call was already reported released
                self._call_open[ch] = False
            elif action == ACT_HANGUP:
                self._call_cause[ch] = arg
            out.append((ch, action, arg))
        self._state[ch] = nxt
        wheel = self._wheel
        base = ch * N_TIMERS
        for kind in cancel:
            wheel._cancel(base + kind)
        for kind in arm:
            wheel._arm(base + kind, self._now + self._timeouts[kind])
        if opens_call:
            self._call_open[ch] = True
            self._call_cause[ch] = 0

