"""Voices of simulated people: each speaker a tone pair unique among the living, keyed on the clock.

Every tone sits on a 100 Hz grid (400..3000 Hz): a 20 ms frame holds whole cycles of each, so one
frame computed once is the whole voice, and any 20 ms window of a mix splits cleanly into its
tones (Goertzel). A voice is keyed on a clock grid (on 0.4 s, off 0.1 s of every 0.5 s), so two
recorded channels can be checked for alignment by their edges. An :class:`Ear` keeps a sample of
what a simulated person heard, to say later whose voices reached them.
"""
from __future__ import annotations

import itertools
import math
import random
from array import array
from dataclasses import dataclass
from functools import lru_cache

from cext import media as core

RATE = 8000
FRAME_S = 0.02
GRID = tuple(range(400, 3100, 100))
KEY_PERIOD_S = 0.5
KEY_ON_S = 0.4
PRESENT = 0.15  # share of a window's power each tone of a pair must hold to count as heard
QUIET_DBFS = -45.0


@dataclass(frozen=True, slots=True)
class Signal:
    """A tone pair (Hz): one simulated speaker's recognisable voice."""

    f1: int
    f2: int

    def __str__(self) -> str:
        return f"{self.f1}+{self.f2}Hz"


class SignalBook:
    """Hands out tone pairs no living speaker holds (spread so neighbours differ in both tones)."""

    def __init__(self, seed: int = 7) -> None:
        pairs = [(a, b) for a, b in itertools.combinations(GRID, 2) if b - a >= 300]
        random.Random(seed).shuffle(pairs)
        self._pairs = [Signal(a, b) for a, b in pairs]
        self._next = 0
        self.owners: dict[Signal, str] = {}

    def take(self, owner: str) -> Signal:
        """A signal for ``owner`` (a call or a position), unique until released."""
        for _ in range(len(self._pairs)):
            sig = self._pairs[self._next]
            self._next = (self._next + 1) % len(self._pairs)
            if sig not in self.owners:
                self.owners[sig] = owner
                return sig
        raise RuntimeError("every simulated voice is in use")

    def release(self, sig: Signal) -> None:
        self.owners.pop(sig, None)


BOOK = SignalBook()


class Speaker:
    """Frames of one voice: s16le PCM (or A-law), sample-exact keying on the clock grid."""

    def __init__(self, signal: Signal, *, rate: int = RATE, law: str = "pcm",
                 level_dbfs: float = -12.0) -> None:
        self.signal, self.rate, self.law = signal, rate, law
        n = int(rate * FRAME_S)
        amp = 32767 * 10 ** (level_dbfs / 20)
        on = array("h", (int(round(amp * (math.sin(2 * math.pi * signal.f1 * i / rate)
                                          + math.sin(2 * math.pi * signal.f2 * i / rate))))
                         for i in range(n)))
        self._on = on.tobytes()
        self._off = bytes(2 * n)
        self._n = n

    def frame(self, t: float) -> bytes:
        """The frame whose first sample is spoken at clock time ``t``."""
        n, rate = self._n, self.rate
        phase = t % KEY_PERIOD_S
        # Sample index at which the key changes inside this frame, if it does.
        if phase < KEY_ON_S:
            edge = math.ceil((KEY_ON_S - phase) * rate)
            pcm = self._on if edge >= n else self._on[:2 * edge] + self._off[2 * edge:]
        else:
            edge = math.ceil((KEY_PERIOD_S - phase) * rate)
            pcm = self._off if edge >= n else self._off[:2 * edge] + self._on[2 * edge:]
        return alaw_encode(pcm) if self.law == "alaw" else pcm


class Ear:
    """What one simulated person heard: every ``every``-th frame (7: prime to the key period
    of 25 frames, so every phase of a voice is sampled), at most ``max_frames``."""

    def __init__(self, *, rate: int = RATE, law: str = "pcm", every: int = 7,
                 max_frames: int = 300) -> None:
        self.rate, self.law, self.every, self.max_frames = rate, law, every, max_frames
        self.frames = 0
        self.kept: list[bytes] = []

    def hear(self, frame: bytes) -> None:
        if self.frames % self.every == 0 and len(self.kept) < self.max_frames:
            self.kept.append(frame)
        self.frames += 1

    def samples(self) -> list[array]:
        return [alaw_decode(f) if self.law == "alaw" else _pcm(f) for f in self.kept]

    def voiced(self) -> int:
        """Kept frames with sound in them."""
        return sum(1 for s in self.samples() if _power_dbfs(s) > QUIET_DBFS)

    def presence(self, signal: Signal) -> float:
        """Share of the voiced kept frames in which ``signal`` is heard (0 when all was quiet)."""
        voiced = hits = 0
        for s in self.samples():
            if _power_dbfs(s) <= QUIET_DBFS:
                continue
            voiced += 1
            hits += has_signal(s, self.rate, signal)
        return hits / voiced if voiced else 0.0


KEEP_EARS = 100  # the last calls whose heard audio a simulated operator keeps (for the tests)


class PositionVoice:
    """A simulated operator at a position of the media plane: speaks his signal into the leg
    every tick and keeps what he hears, one ear per call (``call_of()`` names the call)."""

    def __init__(self, leg, clock, owner: str, *, call_of=lambda: None,
                 keep: int | None = None) -> None:
        self.leg, self.clock, self.call_of = leg, clock, call_of
        self.keep = KEEP_EARS if keep is None else keep
        self.signal = BOOK.take(owner)
        self.speaker = Speaker(self.signal)
        self.ears: dict[str, Ear] = {}
        self._remove = leg.on_output(self._tick)

    def _tick(self, frame: bytes) -> None:
        call = self.call_of()
        if call is not None:
            ear = self.ears.get(call)
            if ear is None:
                ear = self.ears[call] = Ear()
                if len(self.ears) > self.keep:
                    del self.ears[next(iter(self.ears))]
            ear.hear(frame)
        self.leg.push(self.speaker.frame(self.clock.now()))

    def close(self) -> None:
        self._remove()
        BOOK.release(self.signal)


def has_signal(samples, rate: int, signal: Signal) -> bool:
    """Both tones of ``signal`` hold a fair share of the window's power."""
    total = sum(x * x for x in samples)
    if not total:
        return False
    n = len(samples)
    return all(2 * goertzel(samples, rate, f) / (n * total) >= PRESENT
               for f in (signal.f1, signal.f2))


def goertzel(samples, rate: int, freq: float) -> float:
    """|X(freq)|^2 of the window."""
    w = 2 * math.cos(2 * math.pi * freq / rate)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + w * s1 - s2, s1
    return s1 * s1 + s2 * s2 - w * s1 * s2


def key_edges(samples, rate: int, signal: Signal, *, hop: int = 40) -> list[float]:
    """Times (seconds from the first sample) where the voice's key turns on: its syllables."""
    window = int(rate * FRAME_S)
    on = [has_signal(samples[i:i + window], rate, signal)
          for i in range(0, len(samples) - window, hop)]
    return [((i + 1) * hop + window / 2) / rate for i in range(len(on) - 1)
            if on[i + 1] and not on[i]]


def alignment(a: list[float], b: list[float]) -> float | None:
    """How far apart two voices spoken on one clock grid were carried: the median distance
    from each key edge of ``a`` to the nearest of ``b`` (None without edges on both)."""
    if not a or not b:
        return None
    gaps = sorted(min(abs(t - u) for u in b) for t in a)
    return gaps[len(gaps) // 2]


def _pcm(frame: bytes) -> array:
    a = array("h")
    a.frombytes(frame[:len(frame) // 2 * 2])
    return a


def _power_dbfs(samples) -> float:
    if not len(samples):
        return -120.0
    p = sum(x * x for x in samples) / len(samples)
    return 10 * math.log10(p / (32768.0 ** 2)) if p else -120.0


# --- G.711 A-law (what a DAHDI channel carries on E1): the media core's codec ------------------
def alaw_decode(data: bytes) -> array:
    """A-law bytes to 16-bit samples."""
    return _pcm(core.alaw_decode(data))


@lru_cache(maxsize=4096)
def alaw_encode(pcm: bytes) -> bytes:
    """s16le PCM to A-law (cached: a voice's frames repeat)."""
    return core.alaw_encode(pcm)
