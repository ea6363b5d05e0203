"""The audio frame core, pure Python: twin of ``_media.pyx`` (same behaviour, bit for bit).

Audio inside the plane is 8 kHz mono s16le in 20 ms frames: 160 samples, 320 bytes.

G.711 follows the ITU-T reference (Sun's g711.c, as in CPython's audioop and ITU-T G.191):
A-law encodes the top 13 bits of a sample, mu-law the top 14. Gains are Q12 fixed point
(``round(gain * 4096)``), products are shifted right by 12 (floor) and saturated to s16.

``FrameSwitch(capacity)`` is the per-tick batch switch over all legs of the plane. Each slot has
an input (the frame its leg received this tick, times its input gain) and an output (the
saturated sum of its sources' inputs, times its output gain)::

    sw.set_input(slot, frame_or_None)    # None: silence
    sw.set_sources(slot, (src, ...))      # what this slot's output hears; () silence
    sw.set_gain(slot, gain_in, gain_out)  # linear, 0..MAX_GAIN
    sw.tick()                             # every output from this tick's inputs
    sw.output(slot) -> bytes              # 320 bytes
    sw.stereo(slot) -> bytes              # 640 bytes: (input, output) interleaved, for a recorder
    sw.level_in(slot) / sw.level_out(slot) -> dBFS of this tick's frame (DBFS_FLOOR for silence)
    sw.reset(slot)                        # silence, no sources, unity gains

``JitterBuffer(depth, prefill, max_prefill=0)`` is one leg's jitter buffer: frames pushed as they
arrive (``push(frame, now)``, ``now`` in seconds of the injected clock), one taken per tick
(``take()``: a frame, or None for silence). Playout starts once ``target`` frames wait; a take
that finds none while playing is an underrun, and playout waits for ``target`` frames again.
Over each window of ``JB_WINDOW`` takes, frames that stood in the buffer the whole window above
``target - 1`` are latency no jitter needed: they are dropped at the window's end ("drained").
With ``max_prefill > prefill`` the target adapts (the line's USB audio jitter is its module's):

- it grows by one frame, up to ``max_prefill``, at an underrun, or when the arrival jitter
  measured over a window of ``JB_WINDOW`` pushes (peak to peak, against a 20 ms grid) is wider
  than the target can hold (``target * 20 + JB_GROW_MARGIN_MS``) in two windows in a row (one
  stall is the underrun's business); the latter plays one tick of silence to build the extra
  frame (there is no packet-loss concealment);
- it shrinks by one frame, down to ``prefill``, after ``calm_needed`` windows with no underrun
  in which the buffer never went below one frame after a take (the last frame of reserve went
  unused) and the arrival jitter was well under what one frame less holds (at most
  ``(target - 1) * 20 - JB_SHRINK_MARGIN_MS``: pairs of frames every 40 ms that once caught the
  tick's edge stay at two frames); the frame is dropped at once, there being no voice activity
  detector. A growth soon
  after a shrink (within ``calm_needed`` windows) doubles ``calm_needed``, up to
  ``JB_CALM_MAX_WINDOWS``, so a module at the edge does not swing.

``flush()`` (a new call) empties it and starts again from ``prefill``; the counters stay.
"""
from __future__ import annotations

import math
import sys
from array import array
from collections import deque
from operator import mul

FRAME_SAMPLES = 160
FRAME_BYTES = 320
SILENCE = bytes(FRAME_BYTES)
DBFS_FLOOR = -96.0
MAX_GAIN = 16.0
MAX_SOURCES = 8
_Q = 12
_UNITY = 1 << _Q
_FULL_SCALE_SQ = float(FRAME_SAMPLES * 32768 * 32768)
_SWAP = sys.byteorder != "little"
FRAME_S = 0.02
JB_WINDOW = 50  # takes (and pushes) per window: 1 s of audio
JB_CALM_WINDOWS = 5  # calm windows before the adaptive target shrinks by one frame
JB_CALM_MAX_WINDOWS = 60  # calm_needed doubles up to this after a growth soon after a shrink
JB_GROW_MARGIN_MS = 10.0  # arrival jitter beyond target * 20 ms plus this grows the target
JB_SHRINK_MARGIN_MS = 5.0  # a window is calm only with jitter under (target - 1) * 20 ms - this

_SEG_AEND = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)
_SEG_UEND = (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF)


def _search(val: int, table: tuple) -> int:
    for i, end in enumerate(table):
        if val <= end:
            return i
    return len(table)


def _linear2alaw(pcm: int) -> int:
    pcm >>= 3
    if pcm >= 0:
        mask = 0xD5
    else:
        mask = 0x55
        pcm = -pcm - 1
    seg = _search(pcm, _SEG_AEND)
    if seg >= 8:
        return 0x7F ^ mask
    aval = seg << 4
    aval |= (pcm >> (1 if seg < 2 else seg)) & 0x0F
    return aval ^ mask


def _alaw2linear(code: int) -> int:
    code ^= 0x55
    t = (code & 0x0F) << 4
    seg = (code & 0x70) >> 4
    if seg == 0:
        t += 8
    elif seg == 1:
        t += 0x108
    else:
        t = (t + 0x108) << (seg - 1)
    return t if code & 0x80 else -t


def _linear2ulaw(pcm: int) -> int:
    pcm >>= 2
    if pcm < 0:
        pcm = -pcm
        mask = 0x7F
    else:
        mask = 0xFF
    pcm = min(pcm, 8159) + (0x84 >> 2)
    seg = _search(pcm, _SEG_UEND)
    if seg >= 8:
        return 0x7F ^ mask
    return ((seg << 4) | ((pcm >> (seg + 1)) & 0x0F)) ^ mask


def _ulaw2linear(code: int) -> int:
    code = ~code & 0xFF
    t = (((code & 0x0F) << 3) + 0x84) << ((code & 0x70) >> 4)
    return 0x84 - t if code & 0x80 else t - 0x84


def _s16(u: int) -> int:
    return u - 65536 if u >= 32768 else u


# Encoders: one table entry per s16 value, indexed by the sample read as unsigned 16 bits.
_ENC_A = bytes(_linear2alaw(_s16(u)) for u in range(65536))
_ENC_U = bytes(_linear2ulaw(_s16(u)) for u in range(65536))
# Decoders: the two little-endian bytes of each code's sample.
_DEC_A = [_alaw2linear(c).to_bytes(2, "little", signed=True) for c in range(256)]
_DEC_U = [_ulaw2linear(c).to_bytes(2, "little", signed=True) for c in range(256)]


def _samples(pcm, unsigned: bool = False) -> array:
    if len(pcm) % 2:
        raise ValueError(f"s16 PCM has an even number of bytes, got {len(pcm)}")
    a = array("H" if unsigned else "h")
    a.frombytes(pcm)
    if _SWAP:
        a.byteswap()
    return a


def _pcm(a: array) -> bytes:
    if _SWAP:
        a = array(a.typecode, a)
        a.byteswap()
    return a.tobytes()


def alaw_encode(pcm) -> bytes:
    """s16le PCM -> A-law, one byte per sample."""
    return bytes(map(_ENC_A.__getitem__, _samples(pcm, True)))


def ulaw_encode(pcm) -> bytes:
    """s16le PCM -> mu-law, one byte per sample."""
    return bytes(map(_ENC_U.__getitem__, _samples(pcm, True)))


def alaw_decode(data) -> bytes:
    """A-law -> s16le PCM."""
    return b"".join(map(_DEC_A.__getitem__, bytes(data)))


def ulaw_decode(data) -> bytes:
    """mu-law -> s16le PCM."""
    return b"".join(map(_DEC_U.__getitem__, bytes(data)))


def gain_q12(gain: float) -> int:
    """A linear gain as the Q12 integer both implementations multiply by."""
    g = float(gain)
    if not 0.0 <= g <= MAX_GAIN:
        raise ValueError(f"gain must be between 0 and {MAX_GAIN:g}, got {gain!r}")
    return int(round(g * _UNITY))


def _scaled(a, g: int) -> array:
    return array("h", [-32768 if v < -32768 else 32767 if v > 32767 else v
                       for v in [(s * g) >> _Q for s in a]])


def apply_gain(pcm, gain: float) -> bytes:
    """s16le PCM times a linear gain, saturated."""
    g = gain_q12(gain)
    if g == _UNITY:
        return bytes(pcm)
    return _pcm(_scaled(_samples(pcm), g))


def _dbfs(sumsq: int, n: int) -> float:
    if sumsq <= 0 or n <= 0:
        return DBFS_FLOOR
    v = 10.0 * math.log10(sumsq / (float(n) * 32768.0 * 32768.0))
    return v if v > DBFS_FLOOR else DBFS_FLOOR


def level_dbfs(pcm) -> float:
    """RMS level of s16le PCM in dBFS (0 is a full-scale square wave; DBFS_FLOOR for silence)."""
    a = _samples(pcm)
    return _dbfs(sum(map(mul, a, a)), len(a))


def _frame_level(frame: bytes) -> float:
    if frame is SILENCE:
        return DBFS_FLOOR
    a = _samples(frame)
    return _dbfs(sum(map(mul, a, a)), FRAME_SAMPLES)


class FrameSwitch:
    """Every leg's frame of one tick in, every leg's frame of that tick out."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self._n = capacity
        self._in = [SILENCE] * capacity
        self._out = [SILENCE] * capacity
        self._src: list[tuple[int, ...]] = [()] * capacity
        self._gin = [_UNITY] * capacity
        self._gout = [_UNITY] * capacity

    @property
    def capacity(self) -> int:
        return self._n

    def _check(self, slot: int) -> int:
        if not 0 <= slot < self._n:
            raise IndexError(f"slot {slot} out of range 0..{self._n - 1}")
        return slot

    def set_input(self, slot: int, frame) -> None:
        self._check(slot)
        if frame is None:
            self._in[slot] = SILENCE
            return
        if len(frame) != FRAME_BYTES:
            raise ValueError(f"a frame is {FRAME_BYTES} bytes, got {len(frame)}")
        g = self._gin[slot]
        if g == _UNITY:
            self._in[slot] = bytes(frame)
        elif g == 0:
            self._in[slot] = SILENCE
        else:
            self._in[slot] = _pcm(_scaled(_samples(frame), g))

    def set_sources(self, slot: int, sources) -> None:
        self._check(slot)
        src = tuple(int(s) for s in sources)
        if len(src) > MAX_SOURCES:
            raise ValueError(f"at most {MAX_SOURCES} sources, got {len(src)}")
        for s in src:
            self._check(s)
        self._src[slot] = src

    def sources(self, slot: int) -> tuple:
        return self._src[self._check(slot)]

    def set_gain(self, slot: int, gain_in: float, gain_out: float) -> None:
        self._check(slot)
        self._gin[slot] = gain_q12(gain_in)
        self._gout[slot] = gain_q12(gain_out)

    def reset(self, slot: int) -> None:
        self._check(slot)
        self._in[slot] = SILENCE
        self._out[slot] = SILENCE
        self._src[slot] = ()
        self._gin[slot] = _UNITY
        self._gout[slot] = _UNITY

    def tick(self) -> None:
        inputs = self._in
        out = self._out
        gout = self._gout
        for slot, src in enumerate(self._src):
            if not src:
                out[slot] = SILENCE
                continue
            g = gout[slot]
            if len(src) == 1:
                frame = inputs[src[0]]
                if g == _UNITY or frame is SILENCE:
                    out[slot] = frame
                    continue
                acc = _samples(frame)
            else:
                frames = [inputs[s] for s in src if inputs[s] is not SILENCE]
                if not frames:
                    out[slot] = SILENCE
                    continue
                if len(frames) == 1 and g == _UNITY:
                    out[slot] = frames[0]
                    continue
                acc = array("h", [-32768 if v < -32768 else 32767 if v > 32767 else v
                                  for v in map(sum, zip(*map(_samples, frames)))])
            if g == 0:
                out[slot] = SILENCE
            elif g == _UNITY:
                out[slot] = _pcm(acc)
            else:
                out[slot] = _pcm(_scaled(acc, g))

    def output(self, slot: int) -> bytes:
        return self._out[self._check(slot)]

    def input(self, slot: int) -> bytes:
        return self._in[self._check(slot)]

    def stereo(self, slot: int) -> bytes:
        self._check(slot)
        a, b = self._in[slot], self._out[slot]
        if a is SILENCE and b is SILENCE:
            return bytes(2 * FRAME_BYTES)
        st = array("h", bytes(2 * FRAME_BYTES))
        st[0::2] = _samples(a)
        st[1::2] = _samples(b)
        return _pcm(st)

    def level_in(self, slot: int) -> float:
        return _frame_level(self._in[self._check(slot)])

    def level_out(self, slot: int) -> float:
        return _frame_level(self._out[self._check(slot)])


class JitterBuffer:
    """One leg's jitter buffer: a fixed or adaptive target depth (see the module's doc)."""

    def __init__(self, depth: int, prefill: int, max_prefill: int = 0) -> None:
        if max_prefill < prefill:
            max_prefill = prefill
        if not 1 <= prefill <= max_prefill <= depth:
            raise ValueError(f"jitter buffer: need 1 <= prefill <= max_prefill <= depth, got "
                             f"{prefill}, {max_prefill}, {depth}")
        self.depth = depth
        self.prefill = prefill
        self.max_prefill = max_prefill
        self.target = prefill
        self.dropped = 0  # frames dropped because the buffer was full (too much latency)
        self.underruns = 0  # takes that found the buffer empty while playing
        self.drained = 0  # frames dropped because they stood in the buffer a whole window
        self.grown = 0
        self.shrunk = 0
        self.jitter_ms = 0.0  # arrival jitter, peak to peak, over the last window of pushes
        self.calm_needed = JB_CALM_WINDOWS
        self._buf: deque = deque()
        self._reset()

    def _reset(self) -> None:
        self._playing = False
        self._hold = False
        self._low = self.depth  # the fewest frames left after a take in this window
        self._window = 0  # takes in this window
        self._calm = 0  # calm windows in a row
        self._since_shrink = -1  # windows since the last shrink (-1: none yet)
        self._k = -1  # pushes in this jitter window, minus one (-1: none)
        self._wide = 0  # jitter windows in a row wider than the target holds
        self._ref = 0.0
        self._dmin = 0.0
        self._dmax = 0.0

    @property
    def adaptive(self) -> bool:
        return self.max_prefill > self.prefill

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def __len__(self) -> int:
        return len(self._buf)

    def push(self, frame: bytes, now: float) -> None:
        """A frame that arrived at ``now`` (seconds)."""
        buf = self._buf
        if len(buf) >= self.depth:
            buf.popleft()
            self.dropped += 1
        buf.append(frame)
        if self._k < 0:
            self._k = 0
            self._ref = now
            self._dmin = self._dmax = 0.0
            return
        self._k += 1
        d = now - self._ref - self._k * FRAME_S
        if d < self._dmin:
            self._dmin = d
        elif d > self._dmax:
            self._dmax = d
        if self._k >= JB_WINDOW - 1:
            self._k = -1
            self.jitter_ms = (self._dmax - self._dmin) * 1000.0
            if self.jitter_ms > self.target * FRAME_S * 1000.0 + JB_GROW_MARGIN_MS:
                self._wide += 1
            else:
                self._wide = 0
            if self._wide >= 2 and self.adaptive and self.target < self.max_prefill:
                self._wide = 0
                self._grow()
                self._hold = self._playing  # one tick of silence builds the extra frame

    def take(self):
        """This tick's frame, or None (silence: prefilling, an underrun, or a growth)."""
        buf = self._buf
        if not self._playing:
            if len(buf) < self.target:
                return None
            self._playing = True
            self._low, self._window = self.depth, 0
        if self._hold:
            self._hold = False
            return None
        if not buf:
            self._playing = False
            self.underruns += 1
            if self.adaptive:
                self._grow()
            return None
        frame = buf.popleft()
        if len(buf) < self._low:
            self._low = len(buf)
        self._window += 1
        if self._window >= JB_WINDOW:
            self._window_end()
        return frame

    def flush(self) -> None:
        """Forget what waits (a new call): start again from ``prefill``."""
        self._buf.clear()
        self.target = self.prefill
        self.calm_needed = JB_CALM_WINDOWS
        self.jitter_ms = 0.0
        self._reset()

    def _grow(self) -> None:
        self._calm = 0
        if 0 <= self._since_shrink < self.calm_needed:
            self.calm_needed = min(2 * self.calm_needed, JB_CALM_MAX_WINDOWS)
        self._since_shrink = -1
        if self.target < self.max_prefill:
            self.target += 1
            self.grown += 1

    def _window_end(self) -> None:
        buf = self._buf
        low = self._low
        if self._since_shrink >= 0:
            self._since_shrink += 1
        if self.target > self.prefill:
            calm = low >= 1 and self.jitter_ms <= ((self.target - 1) * FRAME_S * 1000.0
                                                   - JB_SHRINK_MARGIN_MS)
            self._calm = self._calm + 1 if calm else 0
            if self._calm >= self.calm_needed:
                self.target -= 1
                self.shrunk += 1
                self._calm = 0
                self._since_shrink = 0
                buf.popleft()  # one frame less of latency, at once: there is no VAD
                low -= 1
        for _ in range(low - (self.target - 1)):  # standing latency, not jitter
            buf.popleft()
            self.drained += 1
        self._low, self._window = self.depth, 0
