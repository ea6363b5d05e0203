# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled line-state core and timer wheel; behaviour as cext/linestate_py.py (the twin)."""

from cpython.array cimport array, resize
from libc.stdlib cimport free, malloc, qsort, realloc
from libc.string cimport memset

from operator import index

from cext import linestate_codes as _codes
from cext.linestate_table import (
    ARG_CALL_CAUSE as _ARG_CALL_CAUSE, ARG_CAUSE as _ARG_CAUSE, ARG_STATE as _ARG_STATE,
    MAX_ACTIONS as _MAX_ACTIONS, compile_table,
)
from cext.linestate_codes import MAX_CAUSE, MAX_CHANNELS, MAX_KEYS, MAX_TIME_MS, MAX_TIMEOUT_MS

cdef extern from *:
    """
    #define __linestate_array_exports(a) (((arrayobject *)(a))->ob_exports)
    """
    int __builtin_ctzll(unsigned long long) nogil
    int __linestate_array_exports(array) noexcept

# Codes as C globals, read from the shared Python module so they cannot drift.
cdef int N_EVENTS = _codes.N_EVENTS
cdef int N_STATES = _codes.N_STATES
cdef int EV_TIMER_FIRST = _codes.EV_TIMER_FIRST
cdef int ACT_HANGUP = _codes.ACT_HANGUP
cdef int ACT_NOTIFY_RELEASED = _codes.ACT_NOTIFY_RELEASED
cdef int ACT_REJECTED = _codes.ACT_REJECTED
cdef int OUT_OF_SERVICE = _codes.OUT_OF_SERVICE
cdef int ARG_CAUSE = _ARG_CAUSE
cdef int ARG_STATE = _ARG_STATE
cdef int ARG_CALL_CAUSE = _ARG_CALL_CAUSE
cdef int MAX_ACTIONS = _MAX_ACTIONS

cdef enum:
    N_TIMERS = 4
    WHEEL_SLOTS = 1 << 16
    WHEEL_MASK = WHEEL_SLOTS - 1
    WHEEL_WORDS = WHEEL_SLOTS // 64

assert _codes.N_TIMERS == N_TIMERS, "timer kinds changed: update N_TIMERS in _linestate.pyx"

cdef struct Due:
    long long deadline
    int key


cdef int _cmp_due(const void *a, const void *b) noexcept nogil:
    cdef const Due *x = <const Due *>a
    cdef const Due *y = <const Due *>b
    if x.deadline != y.deadline:
        return -1 if x.deadline < y.deadline else 1
    return -1 if x.key < y.key else (1 if x.key > y.key else 0)


cdef long long _check_time(object now_ms, long long floor) except -1:
    now_ms = index(now_ms)
    if not 0 <= now_ms <= MAX_TIME_MS:
        raise ValueError(f"now_ms {now_ms} out of range 0..{MAX_TIME_MS}")
    if now_ms < floor:
        raise ValueError(f"now_ms {now_ms} is before the core's time {floor}: "
                         "time must not go backwards")
    return now_ms


cdef int _check_timeout(object kind, object ms) except -1:
    if not 0 <= kind < N_TIMERS:
        raise ValueError(f"timer kind {kind} out of range 0..{N_TIMERS - 1}")
    if not 1 <= ms <= MAX_TIMEOUT_MS:
        name = _codes.TIMER_NAMES[kind]
        raise ValueError(f"{name} timeout {ms} ms out of range 1..{MAX_TIMEOUT_MS}")
    return 0


cdef void *_alloc(size_t size) except NULL:
    cdef void *p = malloc(size if size else 1)
    if p == NULL:
        raise MemoryError()
    return p


cdef class TimerWheel:
    """Deadlines for integer keys 0..capacity-1, one each; fired in (deadline, key) order."""

    cdef readonly int capacity
    cdef long long *dl  # deadline per key
    cdef int *nx  # next key in the same slot, -1 at the end
    cdef int *pv  # previous key in the same slot, -1 at the head
    cdef int *slot_of
    cdef signed char *st  # 0 free, 1 linked in a slot, 2 collected by expire and not fired yet
    cdef int *head  # first key of each slot
    cdef unsigned long long *bits  # one bit per non-empty slot, to skip empty runs fast
    cdef long long cursor  # time of the last expire: every deadline <= cursor was collected
    cdef int n_pending
    cdef long long min_dl  # cached earliest deadline (-1: none) unless min_dirty
    cdef bint min_dirty
    cdef Due *due
    cdef int due_n, due_cap

    def __cinit__(self, capacity, now_ms=0):
        if not 1 <= capacity <= MAX_KEYS:
            raise ValueError(f"timer wheel capacity {capacity} out of range 1..{MAX_KEYS}")
        self.cursor = _check_time(now_ms, 0)
        self.capacity = capacity
        cdef size_t n = <size_t>self.capacity
        self.dl = <long long *>_alloc(n * sizeof(long long))
        self.nx = <int *>_alloc(n * sizeof(int))
        self.pv = <int *>_alloc(n * sizeof(int))
        self.slot_of = <int *>_alloc(n * sizeof(int))
        self.st = <signed char *>_alloc(n)
        self.head = <int *>_alloc(WHEEL_SLOTS * sizeof(int))
        self.bits = <unsigned long long *>_alloc(WHEEL_WORDS * sizeof(unsigned long long))
        memset(self.st, 0, n)
        memset(self.head, 0xFF, WHEEL_SLOTS * sizeof(int))  # all -1
        memset(self.bits, 0, WHEEL_WORDS * sizeof(unsigned long long))
        self.min_dl = -1
        self.due_cap = 64
        self.due = <Due *>_alloc(self.due_cap * sizeof(Due))

    def __dealloc__(self):
        free(self.dl)
        free(self.nx)
        free(self.pv)
        free(self.slot_of)
        free(self.st)
        free(self.head)
        free(self.bits)
        free(self.due)

    def arm(self, key, deadline_ms):
        """Set the key's deadline (replacing any); a deadline already past fires next expire."""
        self._check_key(key)
        if not 0 <= deadline_ms <= MAX_TIME_MS + MAX_TIMEOUT_MS:
            raise ValueError(f"deadline_ms {deadline_ms} out of range")
        self.c_arm(key, deadline_ms)

    def cancel(self, key):
        """Drop the key's deadline; True when one was pending."""
        self._check_key(key)
        return self.c_cancel(key)

    def expire(self, now_ms):
        """Remove and return the keys due at ``now_ms``, earliest deadline first."""
        self.c_collect(_check_time(now_ms, self.cursor))
        cdef int i
        cdef list keys = []
        for i in range(self.due_n):
            self.st[self.due[i].key] = 0
            self.n_pending -= 1
            keys.append(self.due[i].key)
        self.due_n = 0
        return keys

    def deadline(self, key):
        """The key's pending deadline, or -1."""
        self._check_key(key)
        return self.dl[<int>key] if self.st[<int>key] else -1

    def next_deadline(self):
        """Earliest pending deadline, or -1."""
        return self.c_next_deadline()

    def pending(self):
        """How many keys have a deadline."""
        return self.n_pending

    cdef int _check_key(self, key) except -1:
        if not 0 <= key < self.capacity:
            raise ValueError(f"timer key {key} out of range 0..{self.capacity - 1}")
        return 0

    cdef inline void _link(self, int key, long long deadline) noexcept:
        # A deadline already behind the cursor waits in the cursor's slot, scanned next expire.
        cdef long long tick = deadline if deadline > self.cursor else self.cursor
        cdef int s = <int>(tick & WHEEL_MASK)
        cdef int h = self.head[s]
        self.dl[key] = deadline
        self.slot_of[key] = s
        self.nx[key] = h
        self.pv[key] = -1
        if h >= 0:
            self.pv[h] = key
        self.head[s] = key
        self.bits[s >> 6] |= 1ULL << (s & 63)
        self.st[key] = 1
        self.n_pending += 1
        if not self.min_dirty and (self.min_dl < 0 or deadline < self.min_dl):
            self.min_dl = deadline

    cdef inline void _unlink(self, int key) noexcept:
        cdef int s = self.slot_of[key]
        cdef int p = self.pv[key]
        cdef int n = self.nx[key]
        if p >= 0:
            self.nx[p] = n
        else:
            self.head[s] = n
            if n < 0:
                self.bits[s >> 6] &= ~(1ULL << (s & 63))
        if n >= 0:
            self.pv[n] = p
        if self.dl[key] == self.min_dl:
            self.min_dirty = True

    cdef inline void c_arm(self, int key, long long deadline) noexcept:
        if self.st[key] == 1:
            self._unlink(key)
            self.n_pending -= 1
        elif self.st[key] == 2:
            self.n_pending -= 1
        self._link(key, deadline)

    cdef inline bint c_cancel(self, int key) noexcept:
        if self.st[key] == 0:
            return False
        if self.st[key] == 1:
            self._unlink(key)
        self.st[key] = 0
        self.n_pending -= 1
        return True

    cdef int _collect_slot(self, int s, long long now) except -1:
        cdef int k = self.head[s]
        cdef int nk
        cdef Due *grown
        while k >= 0:
            nk = self.nx[k]
            if self.dl[k] <= now:
                self._unlink(k)
                self.st[k] = 2
                if self.due_n == self.due_cap:
                    grown = <Due *>realloc(self.due, 2 * self.due_cap * sizeof(Due))
                    if grown == NULL:
                        raise MemoryError()
                    self.due = grown
                    self.due_cap *= 2
                self.due[self.due_n].deadline = self.dl[k]
                self.due[self.due_n].key = k
                self.due_n += 1
            k = nk
        return 0

    cdef int c_collect(self, long long now) except -1:
        """Unlink the keys due at ``now`` into ``due`` (state 2), sorted by (deadline, key)."""
        cdef long long t
        cdef int s, w
        cdef unsigned long long word
        self.due_n = 0
        if now - self.cursor + 1 >= WHEEL_SLOTS:
            for w in range(WHEEL_WORDS):
                word = self.bits[w]
                while word:
                    s = w * 64 + __builtin_ctzll(word)
                    word &= word - 1
                    self._collect_slot(s, now)
        else:
            t = self.cursor
            while t <= now:
                s = <int>(t & WHEEL_MASK)
                word = self.bits[s >> 6] >> (s & 63)
                if word == 0:
                    t += 64 - (s & 63)
                    continue
                t += __builtin_ctzll(word)
                if t > now:
                    break
                self._collect_slot(<int>(t & WHEEL_MASK), now)
                t += 1
        self.cursor = now
        if self.due_n > 1:
            qsort(self.due, self.due_n, sizeof(Due), _cmp_due)
        return 0

    cdef long long c_next_deadline(self) noexcept:
        cdef long long t, best
        cdef int s, k, w, i
        cdef unsigned long long word
        if not self.min_dirty:
            return self.min_dl
        best = -1
        # The first tick from the cursor whose slot holds a key placed at that tick has the
        # earliest deadline (later ticks hold later deadlines, other keys there are later rounds).
        t = self.cursor
        while t < self.cursor + WHEEL_SLOTS and best < 0:
            s = <int>(t & WHEEL_MASK)
            word = self.bits[s >> 6] >> (s & 63)
            if word == 0:
                t += 64 - (s & 63)
                continue
            t += __builtin_ctzll(word)
            s = <int>(t & WHEEL_MASK)
            k = self.head[s]
            while k >= 0:
                if self.dl[k] == t or (t == self.cursor and self.dl[k] <= t):
                    if best < 0 or self.dl[k] < best:
                        best = self.dl[k]
                k = self.nx[k]
            t += 1
        if best < 0:  # every deadline is a full wheel turn away or more: look at them all
            for s in range(WHEEL_SLOTS):
                k = self.head[s]
                while k >= 0:
                    if best < 0 or self.dl[k] < best:
                        best = self.dl[k]
                    k = self.nx[k]
        self.min_dl = best
        self.min_dirty = False
        return best


cdef class LineCore:
    """State of every channel, driven by events through the transition table."""

    cdef readonly int n_channels
    cdef int *state_
    cdef long long *rejected_
    cdef int *call_cause
    cdef unsigned char *call_open
    cdef TimerWheel wheel
    cdef long long now
    cdef long long n_events
    cdef long long n_rejected
    cdef int timeouts[N_TIMERS]
    cdef int *t_next
    cdef int *t_nact
    cdef int *t_act
    cdef int *t_kind
    cdef int *t_const
    cdef int *t_cancel
    cdef int *t_arm
    cdef int *t_open
    cdef int *in_ch
    cdef int *in_ev
    cdef int *in_cause
    cdef Py_ssize_t in_cap
    cdef readonly array action_buffer
    cdef int *out  # while a batch runs: action_buffer's data (array paths) or scratch (lists)
    cdef int *scratch
    cdef Py_ssize_t scratch_cap
    cdef bint to_array
    cdef Py_ssize_t out_n

    def __cinit__(self, n_channels, *, ring_timeout_ms=30000, bridge_timeout_ms=2000,
                  release_guard_ms=5000, watchdog_ms=10000):
        if not 1 <= n_channels <= MAX_CHANNELS:
            raise ValueError(f"n_channels {n_channels} out of range 1..{MAX_CHANNELS}")
        self.n_channels = n_channels
        for kind, ms in enumerate((ring_timeout_ms, bridge_timeout_ms, release_guard_ms,
                                   watchdog_ms)):
            self.set_timeout(kind, ms)
        cdef size_t n = <size_t>self.n_channels
        cdef size_t i
        self.state_ = <int *>_alloc(n * sizeof(int))
        self.rejected_ = <long long *>_alloc(n * sizeof(long long))
        self.call_cause = <int *>_alloc(n * sizeof(int))
        self.call_open = <unsigned char *>_alloc(n)
        for i in range(n):
            self.state_[i] = OUT_OF_SERVICE
        memset(self.rejected_, 0, n * sizeof(long long))
        memset(self.call_cause, 0, n * sizeof(int))
        memset(self.call_open, 0, n)
        self.wheel = TimerWheel(self.n_channels * N_TIMERS)
        compiled = compile_table()
        self.t_next = self._int_array(compiled["next_state"])
        self.t_nact = self._int_array(compiled["n_actions"])
        self.t_act = self._int_array(compiled["action"])
        self.t_kind = self._int_array(compiled["arg_kind"])
        self.t_const = self._int_array(compiled["arg_const"])
        self.t_cancel = self._int_array(compiled["cancel_mask"])
        self.t_arm = self._int_array(compiled["arm_mask"])
        self.t_open = self._int_array(compiled["opens_call"])
        self.action_buffer = array("i")

    def __dealloc__(self):
        free(self.state_)
        free(self.rejected_)
        free(self.call_cause)
        free(self.call_open)
        free(self.t_next)
        free(self.t_nact)
        free(self.t_act)
        free(self.t_kind)
        free(self.t_const)
        free(self.t_cancel)
        free(self.t_arm)
        free(self.t_open)
        free(self.in_ch)
        free(self.in_ev)
        free(self.in_cause)
        free(self.scratch)

    cdef int *_int_array(self, list values) except NULL:
        cdef int *p = <int *>_alloc(len(values) * sizeof(int))
        cdef Py_ssize_t i
        for i in range(len(values)):
            p[i] = values[i]
        return p

    def set_timeout(self, kind, ms):
        """Change one timer kind's timeout for timers armed from now on."""
        _check_timeout(kind, ms)
        self.timeouts[<int>kind] = ms

    def timeout(self, kind):
        """The timeout of one timer kind, in ms."""
        if not 0 <= kind < N_TIMERS:
            raise ValueError(f"timer kind {kind} out of range 0..{N_TIMERS - 1}")
        return self.timeouts[<int>kind]

    def state(self, ch):
        """State of one channel."""
        self._check_channel(ch)
        return self.state_[<int>ch]

    def states(self):
        """States of all channels."""
        return [self.state_[i] for i in range(self.n_channels)]

    def rejected(self, ch):
        """Events rejected on one channel."""
        self._check_channel(ch)
        return self.rejected_[<int>ch]

    def total_rejected(self):
        return self.n_rejected

    def events_processed(self):
        """Events run through the table (fed, rejected and fired by timers)."""
        return self.n_events

    def pending_timers(self):
        return self.wheel.n_pending

    def next_deadline(self):
        """Earliest pending timer deadline in ms, or -1."""
        return self.wheel.c_next_deadline()

    def timer_deadline(self, ch, kind):
        """Deadline of one channel's timer of one kind, or -1 when it is not running."""
        self._check_channel(ch)
        if not 0 <= kind < N_TIMERS:
            raise ValueError(f"timer kind {kind} out of range 0..{N_TIMERS - 1}")
        return self.wheel.deadline(ch * N_TIMERS + kind)

    def feed(self, events, now_ms):
        """Run (channel, event, cause) events at ``now_ms``; all are checked before any runs."""
        cdef list batch = list(events)
        cdef Py_ssize_t i, n = len(batch)
        self._reserve_input(n)
        for i in range(n):
            ch, ev, cause = batch[i]
            self._check_event(i, index(ch), index(ev), index(cause))
            self.in_ch[i] = ch
            self.in_ev[i] = ev
            self.in_cause[i] = cause
        self.now = _check_time(now_ms, self.now)
        self._run(self.in_ch, self.in_ev, self.in_cause, n, False)
        return self._output_tuples()

    def feed_one(self, channel, event, cause, now_ms):
        """Run one event at ``now_ms``."""
        self._check_event(0, index(channel), index(event), index(cause))
        self.now = _check_time(now_ms, self.now)
        cdef int c[3]
        c[0] = channel
        c[1] = event
        c[2] = cause
        self._run(&c[0], &c[1], &c[2], 1, False)
        return self._output_tuples()

    def feed_arrays(self, const int[:] channels, const int[:] events, const int[:] causes,
                    now_ms):
        """Batch path: parallel int arrays in; actions as flat triples in ``action_buffer``."""
        cdef Py_ssize_t i, n = channels.shape[0]
        self._check_buffer_free()
        if not n == events.shape[0] == causes.shape[0]:
            raise ValueError(f"feed_arrays: channels, events, causes differ in length "
                             f"({n}, {events.shape[0]}, {causes.shape[0]})")
        for i in range(n):
            if (channels[i] < 0 or channels[i] >= self.n_channels or events[i] < 0
                    or events[i] >= EV_TIMER_FIRST or causes[i] < 0 or causes[i] > MAX_CAUSE):
                self._check_event(i, channels[i], events[i], causes[i])
        self.now = _check_time(now_ms, self.now)
        if n == 0:
            self._begin_output(0, True)
            return self._end_output()
        return self._run(&channels[0], &events[0], &causes[0], n, True)

    def expire(self, now_ms):
        """Fire every timer due at ``now_ms`` through the table, earliest first."""
        self._expire(now_ms, False)
        return self._output_tuples()

    def expire_arrays(self, now_ms):
        """Like expire, with the actions as flat triples in ``action_buffer``."""
        self._check_buffer_free()
        return self._expire(now_ms, True)

    cdef int _check_channel(self, ch) except -1:
        if not 0 <= ch < self.n_channels:
            raise ValueError(f"channel {ch} out of range 0..{self.n_channels - 1}")
        return 0

    cdef int _check_event(self, Py_ssize_t i, ch, ev, cause) except -1:
        if not 0 <= ch < self.n_channels:
            raise ValueError(f"channel {ch} out of range 0..{self.n_channels - 1} (event #{i})")
        if not 0 <= ev < EV_TIMER_FIRST:
            raise ValueError(f"event {ev} is not a driver or controller event (event #{i}); "
                             "timer events come from expire()")
        if not 0 <= cause <= MAX_CAUSE:
            raise ValueError(f"cause {cause} out of range 0..{MAX_CAUSE} (event #{i})")
        return 0

    cdef int _reserve_input(self, Py_ssize_t n) except -1:
        if n <= self.in_cap:
            return 0
        free(self.in_ch)
        free(self.in_ev)
        free(self.in_cause)
        self.in_ch = self.in_ev = self.in_cause = NULL
        self.in_cap = 0
        self.in_ch = <int *>_alloc(n * sizeof(int))
        self.in_ev = <int *>_alloc(n * sizeof(int))
        self.in_cause = <int *>_alloc(n * sizeof(int))
        self.in_cap = n
        return 0

    cdef int _check_buffer_free(self) except -1:
        # Resizing under a live memoryview would leave it dangling (array.array refuses too).
        if __linestate_array_exports(self.action_buffer):
            raise BufferError("cannot resize an array that is exporting buffers")
        resize(self.action_buffer, 0)  # as the twin: empty until the call succeeds
        return 0

    cdef int _begin_output(self, Py_ssize_t max_actions, bint to_array) except -1:
        cdef int *grown
        self.to_array = to_array
        self.out_n = 0
        if to_array:
            self._check_buffer_free()
            resize(self.action_buffer, 3 * max_actions)
            self.out = self.action_buffer.data.as_ints
            return 0
        if 3 * max_actions > self.scratch_cap:
            grown = <int *>realloc(self.scratch, 3 * max_actions * sizeof(int))
            if grown == NULL:
                raise MemoryError()
            self.scratch = grown
            self.scratch_cap = 3 * max_actions
        self.out = self.scratch
        return 0

    cdef Py_ssize_t _end_output(self) except -1:
        if self.to_array:
            resize(self.action_buffer, 3 * self.out_n)
            self.out = self.action_buffer.data.as_ints
        return self.out_n

    cdef list _output_tuples(self):
        cdef int *a = self.out
        cdef Py_ssize_t i
        return [(a[3 * i], a[3 * i + 1], a[3 * i + 2]) for i in range(self.out_n)]

    cdef Py_ssize_t _run(self, const int *chs, const int *evs, const int *causes,
                         Py_ssize_t n, bint to_array) except -1:
        cdef Py_ssize_t i
        self._begin_output(n * MAX_ACTIONS, to_array)
        for i in range(n):
            self._step(chs[i], evs[i], causes[i])
        return self._end_output()

    cdef Py_ssize_t _expire(self, now_ms, bint to_array) except -1:
        self.now = _check_time(now_ms, self.now)
        cdef TimerWheel wheel = self.wheel
        wheel.c_collect(self.now)
        cdef int i, key, n = wheel.due_n
        self._begin_output(n * MAX_ACTIONS, to_array)
        for i in range(n):
            key = wheel.due[i].key
            if wheel.st[key] == 2:  # an earlier timer of this batch may have cancelled it
                wheel.st[key] = 0
                wheel.n_pending -= 1
                self._step(key // N_TIMERS, EV_TIMER_FIRST + key % N_TIMERS, 0)
        wheel.due_n = 0
        return self._end_output()

    cdef inline void _step(self, int ch, int ev, int cause) noexcept:
        cdef int idx = self.state_[ch] * N_EVENTS + ev
        cdef int nxt = self.t_next[idx]
        cdef int j, base, action, kind, arg, mask
        cdef int *out = self.out + 3 * self.out_n
        self.n_events += 1
        if nxt < 0:
            self.rejected_[ch] += 1
            self.n_rejected += 1
            out[0] = ch
            out[1] = ACT_REJECTED
            out[2] = ev
            self.out_n += 1
            return
        base = idx * MAX_ACTIONS
        for j in range(self.t_nact[idx]):
            action = self.t_act[base + j]
            kind = self.t_kind[base + j]
            arg = self.t_const[base + j]
            if kind == ARG_CAUSE:
                if cause:
                    arg = cause
            elif kind == ARG_STATE:
                arg = nxt
            elif kind == ARG_CALL_CAUSE:
                if self.call_cause[ch]:
                    arg = self.call_cause[ch]
            if action == ACT_NOTIFY_RELEASED:
                if not self.call_open[ch]:
                    continue  # this call was already reported released
                self.call_open[ch] = 0
            elif action == ACT_HANGUP:
                self.call_cause[ch] = arg
            out[0] = ch
            out[1] = action
            out[2] = arg
            out += 3
            self.out_n += 1
        self.state_[ch] = nxt
        mask = self.t_cancel[idx]
        base = ch * N_TIMERS
        j = 0
        while mask:
            if mask & 1:
                self.wheel.c_cancel(base + j)
            mask >>= 1
            j += 1
        mask = self.t_arm[idx]
        j = 0
        while mask:
            if mask & 1:
                self.wheel.c_arm(base + j, self.now + self.timeouts[j])
            mask >>= 1
            j += 1
        if self.t_open[idx]:
            self.call_open[ch] = 1
            self.call_cause[ch] = 0
