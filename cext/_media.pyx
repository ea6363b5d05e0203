# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The audio frame core, compiled: twin of ``media_py.py`` (same behaviour, bit for bit).

See ``cext/media_py.py`` for the API and the rules (G.711 reference, Q12 gains, dBFS levels).
"""
from libc.math cimport log10
from libc.stdint cimport int16_t, int32_t, int64_t, uint8_t, uint16_t
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy, memset
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize

import sys
from collections import deque

FRAME_SAMPLES = 160
FRAME_BYTES = 320
SILENCE = bytes(320)
DBFS_FLOOR = -96.0
cdef double _FLOOR = -96.0
MAX_GAIN = 16.0
MAX_SOURCES = 8
FRAME_S = 0.02
JB_WINDOW = 50
JB_CALM_WINDOWS = 5
JB_CALM_MAX_WINDOWS = 60
JB_GROW_MARGIN_MS = 10.0
JB_SHRINK_MARGIN_MS = 5.0
cdef double _FRAME_S = 0.02
cdef int _JB_WINDOW = 50
cdef int _JB_CALM = 5
cdef int _JB_CALM_MAX = 60
cdef double _JB_MARGIN_MS = 10.0
cdef double _JB_SHRINK_MARGIN_MS = 5.0

cdef enum:
    NS = 160
    NB = 320
    NSRC = 8
    Q = 12
    UNITY = 4096

if sys.byteorder != "little":  # the PCM is s16le; the copies below assume a little-endian host
    raise ImportError("cext._media needs a little-endian host; the pure-Python twin works anywhere")

cdef uint8_t ENC_A[65536]
cdef uint8_t ENC_U[65536]
cdef int16_t DEC_A[256]
cdef int16_t DEC_U[256]
cdef int16_t SEG_AEND[8]
cdef int16_t SEG_UEND[8]
SEG_AEND[:] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF]
SEG_UEND[:] = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF]


cdef inline int _search(int val, int16_t *table) noexcept nogil:
    cdef int i
    for i in range(8):
        if val <= table[i]:
            return i
    return 8


cdef uint8_t _linear2alaw(int pcm) noexcept nogil:
    cdef int mask, seg, aval
    pcm = pcm >> 3
    if pcm >= 0:
        mask = 0xD5
    else:
        mask = 0x55
        pcm = -pcm - 1
    seg = _search(pcm, SEG_AEND)
    if seg >= 8:
        return <uint8_t>(0x7F ^ mask)
    aval = seg << 4
    if seg < 2:
        aval |= (pcm >> 1) & 0x0F
    else:
        aval |= (pcm >> seg) & 0x0F
    return <uint8_t>(aval ^ mask)


cdef int16_t _alaw2linear(int code) noexcept nogil:
    cdef int t, seg
    code ^= 0x55
    t = (code & 0x0F) << 4
    seg = (code & 0x70) >> 4
    if seg == 0:
        t += 8
    elif seg == 1:
        t += 0x108
    else:
        t = (t + 0x108) << (seg - 1)
    return <int16_t>(t if code & 0x80 else -t)


cdef uint8_t _linear2ulaw(int pcm) noexcept nogil:
    cdef int mask, seg
    pcm = pcm >> 2
    if pcm < 0:
        pcm = -pcm
        mask = 0x7F
    else:
        mask = 0xFF
    if pcm > 8159:
        pcm = 8159
    pcm += 0x84 >> 2
    seg = _search(pcm, SEG_UEND)
    if seg >= 8:
        return <uint8_t>(0x7F ^ mask)
    return <uint8_t>(((seg << 4) | ((pcm >> (seg + 1)) & 0x0F)) ^ mask)


cdef int16_t _ulaw2linear(int code) noexcept nogil:
    cdef int t
    code = (~code) & 0xFF
    t = (((code & 0x0F) << 3) + 0x84) << ((code & 0x70) >> 4)
    return <int16_t>(0x84 - t if code & 0x80 else t - 0x84)


cdef void _init_tables() noexcept nogil:
    cdef int u
    for u in range(65536):
        ENC_A[u] = _linear2alaw(<int16_t>(<uint16_t>u))
        ENC_U[u] = _linear2ulaw(<int16_t>(<uint16_t>u))
    for u in range(256):
        DEC_A[u] = _alaw2linear(u)
        DEC_U[u] = _ulaw2linear(u)


_init_tables()


cdef inline int16_t _sat(int64_t v) noexcept nogil:
    if v > 32767:
        return 32767
    if v < -32768:
        return -32768
    return <int16_t>v


cdef bytes _encode(const unsigned char[:] pcm, uint8_t *table):
    cdef Py_ssize_t n = pcm.shape[0]
    if n % 2:
        raise ValueError(f"s16 PCM has an even number of bytes, got {n}")
    cdef bytes out = PyBytes_FromStringAndSize(NULL, n // 2)
    cdef uint8_t *o = <uint8_t *>PyBytes_AS_STRING(out)
    cdef Py_ssize_t i
    with nogil:
        for i in range(n // 2):
            o[i] = table[<uint16_t>pcm[2 * i] | (<uint16_t>pcm[2 * i + 1] << 8)]
    return out


cdef bytes _decode(const unsigned char[:] data, int16_t *table):
    cdef Py_ssize_t n = data.shape[0]
    cdef bytes out = PyBytes_FromStringAndSize(NULL, 2 * n)
    cdef int16_t *o = <int16_t *>PyBytes_AS_STRING(out)
    cdef Py_ssize_t i
    with nogil:
        for i in range(n):
            o[i] = table[data[i]]
    return out


def alaw_encode(pcm) -> bytes:
    """s16le PCM -> A-law, one byte per sample."""
    return _encode(bytes(pcm) if not isinstance(pcm, (bytes, bytearray)) else pcm, ENC_A)


def ulaw_encode(pcm) -> bytes:
    """s16le PCM -> mu-law, one byte per sample."""
    return _encode(bytes(pcm) if not isinstance(pcm, (bytes, bytearray)) else pcm, ENC_U)


def alaw_decode(data) -> bytes:
    """A-law -> s16le PCM."""
    return _decode(bytes(data) if not isinstance(data, (bytes, bytearray)) else data, DEC_A)


def ulaw_decode(data) -> bytes:
    """mu-law -> s16le PCM."""
    return _decode(bytes(data) if not isinstance(data, (bytes, bytearray)) else data, DEC_U)


def gain_q12(gain) -> int:
    """A linear gain as the Q12 integer both implementations multiply by."""
    cdef double g = float(gain)
    if not 0.0 <= g <= MAX_GAIN:
        raise ValueError(f"gain must be between 0 and {MAX_GAIN:g}, got {gain!r}")
    return int(round(g * UNITY))


cdef inline void _scale(int16_t *dst, const int16_t *src, Py_ssize_t n, int32_t g) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        dst[i] = _sat((<int64_t>src[i] * g) >> Q)


cdef double _dbfs(int64_t sumsq, Py_ssize_t n) noexcept nogil:
    cdef double v
    if sumsq <= 0 or n <= 0:
        return _FLOOR
    v = 10.0 * log10(<double>sumsq / (<double>n * 32768.0 * 32768.0))
    return v if v > _FLOOR else _FLOOR


cdef int64_t _sumsq(const int16_t *a, Py_ssize_t n) noexcept nogil:
    cdef int64_t acc = 0
    cdef Py_ssize_t i
    for i in range(n):
        acc += <int64_t>a[i] * a[i]
    return acc


def apply_gain(pcm, gain) -> bytes:
    """s16le PCM times a linear gain, saturated."""
    cdef int32_t g = gain_q12(gain)
    cdef bytes src = bytes(pcm)
    cdef Py_ssize_t n = len(src)
    if n % 2:
        raise ValueError(f"s16 PCM has an even number of bytes, got {n}")
    if g == UNITY:
        return src
    cdef bytes out = PyBytes_FromStringAndSize(NULL, n)
    _scale(<int16_t *>PyBytes_AS_STRING(out), <const int16_t *>PyBytes_AS_STRING(src), n // 2, g)
    return out


def level_dbfs(pcm) -> float:
    """RMS level of s16le PCM in dBFS (0 is a full-scale square wave; DBFS_FLOOR for silence)."""
    cdef bytes src = bytes(pcm)
    cdef Py_ssize_t n = len(src)
    if n % 2:
        raise ValueError(f"s16 PCM has an even number of bytes, got {n}")
    return _dbfs(_sumsq(<const int16_t *>PyBytes_AS_STRING(src), n // 2), n // 2)


cdef class FrameSwitch:
    """Every leg's frame of one tick in, every leg's frame of that tick out."""

    cdef int _n
    cdef int16_t *_in
    cdef int16_t *_out
    cdef uint8_t *_in_silent
    cdef uint8_t *_out_silent
    cdef int32_t *_gin
    cdef int32_t *_gout
    cdef int32_t *_nsrc
    cdef int32_t *_src

    def __cinit__(self, int capacity):
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self._n = capacity
        self._in = <int16_t *>calloc(capacity * NS, sizeof(int16_t))
        self._out = <int16_t *>calloc(capacity * NS, sizeof(int16_t))
        self._in_silent = <uint8_t *>calloc(capacity, 1)
        self._out_silent = <uint8_t *>calloc(capacity, 1)
        self._gin = <int32_t *>calloc(capacity, sizeof(int32_t))
        self._gout = <int32_t *>calloc(capacity, sizeof(int32_t))
        self._nsrc = <int32_t *>calloc(capacity, sizeof(int32_t))
        self._src = <int32_t *>calloc(capacity * NSRC, sizeof(int32_t))
        if (not self._in or not self._out or not self._in_silent or not self._out_silent
                or not self._gin or not self._gout or not self._nsrc or not self._src):
            raise MemoryError()
        cdef int i
        for i in range(capacity):
            self._in_silent[i] = 1
            self._out_silent[i] = 1
            self._gin[i] = UNITY
            self._gout[i] = UNITY

    def __dealloc__(self):
        free(self._in)
        free(self._out)
        free(self._in_silent)
        free(self._out_silent)
        free(self._gin)
        free(self._gout)
        free(self._nsrc)
        free(self._src)

    @property
    def capacity(self):
        return self._n

    cdef inline int _check(self, int slot) except -1:
        if slot < 0 or slot >= self._n:
            raise IndexError(f"slot {slot} out of range 0..{self._n - 1}")
        return slot

    def set_input(self, int slot, frame):
        self._check(slot)
        if frame is None:
            self._in_silent[slot] = 1
            return
        cdef const unsigned char[:] view = frame
        if view.shape[0] != NB:
            raise ValueError(f"a frame is {NB} bytes, got {view.shape[0]}")
        cdef int32_t g = self._gin[slot]
        cdef int16_t *dst = self._in + slot * NS
        if g == 0:
            self._in_silent[slot] = 1
            return
        memcpy(dst, &view[0], NB)
        if g != UNITY:
            _scale(dst, dst, NS, g)
        self._in_silent[slot] = 0

    def set_sources(self, int slot, sources):
        self._check(slot)
        src = tuple(int(s) for s in sources)
        if len(src) > MAX_SOURCES:
            raise ValueError(f"at most {MAX_SOURCES} sources, got {len(src)}")
        for s in src:
            self._check(s)
        cdef int i
        for i in range(len(src)):
            self._src[slot * NSRC + i] = src[i]
        self._nsrc[slot] = len(src)

    def sources(self, int slot):
        self._check(slot)
        return tuple(self._src[slot * NSRC + i] for i in range(self._nsrc[slot]))

    def set_gain(self, int slot, gain_in, gain_out):
        self._check(slot)
        cdef int32_t gi = gain_q12(gain_in)
        cdef int32_t go = gain_q12(gain_out)
        self._gin[slot] = gi
        self._gout[slot] = go

    def reset(self, int slot):
        self._check(slot)
        self._in_silent[slot] = 1
        self._out_silent[slot] = 1
        self._nsrc[slot] = 0
        self._gin[slot] = UNITY
        self._gout[slot] = UNITY

    def tick(self):
        with nogil:
            self._tick()

    cdef void _tick(self) noexcept nogil:
        cdef int slot, k, n, s, live
        cdef int32_t g
        cdef Py_ssize_t i
        cdef int16_t *dst
        cdef const int16_t *one
        cdef int32_t acc[NS]
        for slot in range(self._n):
            n = self._nsrc[slot]
            g = self._gout[slot]
            dst = self._out + slot * NS
            live = 0
            one = NULL
            for k in range(n):
                s = self._src[slot * NSRC + k]
                if self._in_silent[s]:
                    continue
                if live == 0:
                    one = self._in + s * NS
                    for i in range(NS):
                        acc[i] = one[i]
                else:
                    one = self._in + s * NS
                    for i in range(NS):
                        acc[i] += one[i]
                live += 1
            if live == 0 or g == 0:
                self._out_silent[slot] = 1
                continue
            self._out_silent[slot] = 0
            if g == UNITY:
                for i in range(NS):
                    dst[i] = _sat(acc[i])
            else:
                for i in range(NS):
                    dst[i] = _sat((<int64_t>_sat(acc[i]) * g) >> Q)

    cdef bytes _frame(self, int16_t *buf, uint8_t silent):
        if silent:
            return SILENCE
        return PyBytes_FromStringAndSize(<char *>buf, NB)

    def output(self, int slot):
        self._check(slot)
        return self._frame(self._out + slot * NS, self._out_silent[slot])

    def input(self, int slot):
        self._check(slot)
        return self._frame(self._in + slot * NS, self._in_silent[slot])

    def stereo(self, int slot):
        self._check(slot)
        cdef bytes out = PyBytes_FromStringAndSize(NULL, 2 * NB)
        cdef int16_t *o = <int16_t *>PyBytes_AS_STRING(out)
        cdef int16_t *a = self._in + slot * NS
        cdef int16_t *b = self._out + slot * NS
        cdef uint8_t sa = self._in_silent[slot]
        cdef uint8_t sb = self._out_silent[slot]
        cdef Py_ssize_t i
        for i in range(NS):
            o[2 * i] = 0 if sa else a[i]
            o[2 * i + 1] = 0 if sb else b[i]
        return out

    def level_in(self, int slot):
        self._check(slot)
        if self._in_silent[slot]:
            return DBFS_FLOOR
        return _dbfs(_sumsq(self._in + slot * NS, NS), NS)

    def level_out(self, int slot):
        self._check(slot)
        if self._out_silent[slot]:
            return DBFS_FLOOR
        return _dbfs(_sumsq(self._out + slot * NS, NS), NS)


cdef class JitterBuffer:
    """One leg's jitter buffer: a fixed or adaptive target depth (see media_py's doc)."""

    cdef readonly int depth, prefill, max_prefill, target
    cdef readonly long long dropped, underruns, drained, grown, shrunk
    cdef readonly double jitter_ms
    cdef readonly int calm_needed
    cdef object _buf
    cdef bint _playing, _hold
    cdef int _low, _window, _calm, _since_shrink, _k, _wide
    cdef double _ref, _dmin, _dmax

    def __init__(self, int depth, int prefill, int max_prefill=0):
        if max_prefill < prefill:
            max_prefill = prefill
        if not 1 <= prefill <= max_prefill <= depth:
            raise ValueError(f"jitter buffer: need 1 <= prefill <= max_prefill <= depth, got "
                             f"{prefill}, {max_prefill}, {depth}")
        self.depth = depth
        self.prefill = prefill
        self.max_prefill = max_prefill
        self.target = prefill
        self.dropped = self.underruns = self.drained = self.grown = self.shrunk = 0
        self.jitter_ms = 0.0
        self.calm_needed = _JB_CALM
        self._buf = deque()
        self._reset()

    cdef void _reset(self):
        self._playing = False
        self._hold = False
        self._low = self.depth
        self._window = 0
        self._calm = 0
        self._since_shrink = -1
        self._k = -1
        self._wide = 0
        self._ref = 0.0
        self._dmin = 0.0
        self._dmax = 0.0

    @property
    def adaptive(self):
        return self.max_prefill > self.prefill

    @property
    def buffered(self):
        return len(self._buf)

    def __len__(self):
        return len(self._buf)

    def push(self, frame, double now):
        """A frame that arrived at ``now`` (seconds)."""
        cdef double d
        buf = self._buf
        if len(buf) >= self.depth:
            buf.popleft()
            self.dropped += 1
        buf.append(frame)
        if self._k < 0:
            self._k = 0
            self._ref = now
            self._dmin = 0.0
            self._dmax = 0.0
            return
        self._k += 1
        d = now - self._ref - self._k * _FRAME_S
        if d < self._dmin:
            self._dmin = d
        elif d > self._dmax:
            self._dmax = d
        if self._k >= _JB_WINDOW - 1:
            self._k = -1
            self.jitter_ms = (self._dmax - self._dmin) * 1000.0
            if self.jitter_ms > self.target * _FRAME_S * 1000.0 + _JB_MARGIN_MS:
                self._wide += 1
            else:
                self._wide = 0
            if (self._wide >= 2 and self.max_prefill > self.prefill
                    and self.target < self.max_prefill):
                self._wide = 0
                self._grow()
                self._hold = self._playing

    def take(self):
        """This tick's frame, or None (silence: prefilling, an underrun, or a growth)."""
        cdef Py_ssize_t n
        buf = self._buf
        n = len(buf)
        if not self._playing:
            if n < self.target:
                return None
            self._playing = True
            self._low = self.depth
            self._window = 0
        if self._hold:
            self._hold = False
            return None
        if n == 0:
            self._playing = False
            self.underruns += 1
            if self.max_prefill > self.prefill:
                self._grow()
            return None
        frame = buf.popleft()
        if n - 1 < self._low:
            self._low = n - 1
        self._window += 1
        if self._window >= _JB_WINDOW:
            self._window_end()
        return frame

    def flush(self):
        """Forget what waits (a new call): start again from ``prefill``."""
        self._buf.clear()
        self.target = self.prefill
        self.calm_needed = _JB_CALM
        self.jitter_ms = 0.0
        self._reset()

    cdef void _grow(self):
        self._calm = 0
        if 0 <= self._since_shrink < self.calm_needed:
            self.calm_needed = min(2 * self.calm_needed, _JB_CALM_MAX)
        self._since_shrink = -1
        if self.target < self.max_prefill:
            self.target += 1
            self.grown += 1

    cdef int _window_end(self) except -1:
        cdef int low = self._low
        cdef int i
        cdef bint calm
        buf = self._buf
        if self._since_shrink >= 0:
            self._since_shrink += 1
        if self.target > self.prefill:
            calm = low >= 1 and self.jitter_ms <= ((self.target - 1) * _FRAME_S * 1000.0
                                                   - _JB_SHRINK_MARGIN_MS)
            self._calm = self._calm + 1 if calm else 0
            if self._calm >= self.calm_needed:
                self.target -= 1
                self.shrunk += 1
                self._calm = 0
                self._since_shrink = 0
                buf.popleft()
                low -= 1
        for i in range(low - (self.target - 1)):
            buf.popleft()
            self.drained += 1
        self._low = self.depth
        self._window = 0
        return 0
