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
"""
from __future__ import annotations

import math
import sys
from array import array
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
