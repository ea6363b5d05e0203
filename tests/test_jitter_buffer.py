"""A leg's jitter buffer, fixed and adaptive, run against both implementations in virtual time.

Frames carry their number; arrivals and the plane's ticks are given as instants (ms) of the
injected clock, so every pattern (a steady grid, USB bursts, a stall) is exact and repeatable.
The plane-level test runs the media plane's own tick loop on a virtual-time loop.
"""
from __future__ import annotations

import random
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cext
from cext import media
from firmware.clock import run_virtual
from firmware.media.plane import MediaPlane
from tests.conftest import cext_module

WINDOW_MS = 20 * media.JB_WINDOW  # the buffer's window of takes, 1 s


@pytest.fixture
def mod(cext_impl):
    return cext_module(cext_impl, "media")


def numbered(n: int) -> bytes:
    return struct.pack("<i", n) + bytes(316)


def number(frame: bytes) -> int:
    return struct.unpack_from("<i", frame)[0]


class Feed:
    """Frames pushed at given instants, the buffer taken on a 20 ms tick: what was played."""

    def __init__(self, jb) -> None:
        self.jb = jb
        self.sent = 0
        self.t = 0  # the next tick, ms
        self.played: list[int | None] = []  # per tick: the frame's number, or None (silence)

    def run(self, arrivals_ms: list[float], until_ms: float | None = None) -> None:
        """Push a frame at each instant (in order) while ticking every 20 ms up to ``until_ms``
        (default: one tick after the last arrival). A tick and an arrival at the same instant:
        the arrival first."""
        end = (arrivals_ms[-1] + 20) if until_ms is None else until_ms
        i = 0
        while self.t <= end or i < len(arrivals_ms):
            while i < len(arrivals_ms) and arrivals_ms[i] <= self.t:
                self.jb.push(numbered(self.sent), arrivals_ms[i] / 1000.0)
                self.sent += 1
                i += 1
            f = self.jb.take()
            self.played.append(None if f is None else number(f))
            self.t += 20

    def heard(self, since_tick: int = 0) -> list[int]:
        return [n for n in self.played[since_tick:] if n is not None]


def grid(start_ms: float, n: int, phase_ms: float) -> list[float]:
    """n frames on a steady 20 ms grid from the first tick after ``start_ms``, at ``phase_ms``."""
    first = (int(start_ms) // 20 + 1) * 20 + phase_ms
    return [first + 20 * k for k in range(n)]


def then(arrivals_ms: list[float], n: int) -> list[float]:
    """n frames on a steady 20 ms grid going on from the last arrival."""
    return [arrivals_ms[-1] + 20 * (k + 1) for k in range(n)]


def bursts(start_ms: float, n: int, seed: int) -> list[float]:
    """n frames in pairs every 40 ms (a USB audio port's bursts), each pair within 1.5 ms of a
    tick, before or after it as it comes: the worst phase for a one-frame buffer."""
    rnd = random.Random(seed)
    first = (int(start_ms) // 40 + 1) * 40 + 20
    out = []
    for m in range(n // 2):
        at = first + 40 * m + rnd.choice((-1.5, 1.5))
        out += [at, at]
    return out


@pytest.mark.parametrize("phase_ms", [3, 10, 17])
def test_a_steady_grid_stays_at_one_frame(mod, phase_ms):
    jb = mod.JitterBuffer(6, 1, 4)
    feed = Feed(jb)
    feed.run(grid(0, 3000, phase_ms))  # a minute of a span-like clock
    assert jb.target == 1 and jb.grown == 0 and jb.shrunk == 0
    assert (jb.underruns, jb.dropped, jb.drained) == (0, 0, 0)
    assert feed.heard() == list(range(3000))
    assert jb.jitter_ms < 0.01
    # each frame is played at the first tick after it arrived: one frame of prefill, no more
    first = feed.played.index(0)
    assert feed.played[first:first + 3000] == list(range(3000))
    assert first * 20 - grid(0, 1, phase_ms)[0] < 20


def test_jitter_grows_the_target_then_nothing_is_lost_and_calm_shrinks_it(mod):
    jb = mod.JitterBuffer(6, 1, 4)
    feed = Feed(jb)
    feed.run(grid(0, 100, 10))  # 2 s steady: one frame
    assert jb.target == 1
    jittery = bursts(feed.t, 1500, seed=7)  # 30 s of bursts at the tick's edge
    feed.run(jittery, until_ms=jittery[-1])
    assert 2 <= jb.target <= 3 and jb.grown == jb.target - 1 and jb.shrunk == 0
    assert jb.underruns == jb.grown  # one underrun taught each frame of growth
    assert jb.jitter_ms > 20  # the pairs: a frame early, a frame late
    # after the last growth, not one frame lost: every one played, in order, none dropped
    grown_at = max(i for i, n in enumerate(feed.played) if n is None and i > 100)
    after = feed.heard(grown_at)
    assert after == list(range(after[0], after[-1] + 1)) and len(after) > 1400
    assert (jb.dropped, jb.drained) == (0, 0)

    calm_from = len(feed.played)
    shrunk0 = jb.shrunk
    feed.run(then(jittery, 1000))  # 20 s steady again
    assert jb.target == 1 and jb.shrunk - shrunk0 == jb.grown
    calm = feed.heard(calm_from)
    # the shrinks dropped one frame each, at once (no VAD), and lost nothing else
    assert calm == sorted(calm) and calm[-1] == feed.sent - 1
    assert jb.underruns == jb.grown
    # shrinking waited for calm_needed windows with the reserve frame untouched, one at a time
    first_shrink = next(i for i in range(calm_from + 1, len(feed.played))
                        if feed.played[i] - feed.played[i - 1] == 2)
    assert (first_shrink - calm_from) * 20 >= jb.calm_needed * WINDOW_MS - WINDOW_MS


def test_pairs_that_caught_the_ticks_edge_keep_their_second_frame(mod):
    """Pairs every 40 ms arriving 1 ms before a tick: one pair 2 ms late is an underrun and a
    growth. The second frame then goes unused for as long as the pairs keep time, but their
    arrival jitter (20 ms) is more than one frame less would hold: the buffer keeps two frames,
    and the next late pair, 30 s on, is absorbed."""
    jb = mod.JitterBuffer(5, 1, 3)
    feed = Feed(jb)
    arr = [t for m in range(1500) for t in [59 + 40 * m] * 2]  # a minute
    arr[100:102] = [arr[100] + 2] * 2
    arr[1600:1602] = [arr[1600] + 2] * 2
    feed.run(arr)
    assert (jb.underruns, jb.grown, jb.shrunk, jb.target) == (1, 1, 0, 2)
    assert jb.jitter_ms == pytest.approx(20, abs=0.01)
    heard = feed.heard()
    assert heard == list(range(len(heard))) and len(heard) + len(jb) == 3000


def test_a_stall_grows_it_and_the_standing_frames_drain(mod):
    """A port that stalls 100 ms and then hands over everything: an underrun grows the
    target, the pile drains at the window's end, and calm brings it back to one frame."""
    jb = mod.JitterBuffer(6, 1, 4)
    feed = Feed(jb)
    arr = grid(0, 1000, 10)
    arr[100:105] = [arr[105]] * 5  # five frames late, delivered with the sixth
    feed.run(arr[:110])
    assert jb.underruns == jb.grown == 1 and jb.target == 2
    feed.run(arr[110:])
    assert jb.target == 1 and jb.shrunk == jb.grown == 1 and jb.underruns == 1
    assert jb.jitter_ms < 0.01  # the last window's arrivals were steady
    heard = feed.heard()
    assert heard == sorted(heard) and heard[-1] == 999
    # what was not played was dropped by a rule the counters show, nothing else
    assert 1000 - len(heard) == jb.dropped + jb.drained + jb.shrunk


def test_arrival_jitter_wider_than_the_buffer_grows_it_before_an_underrun(mod):
    """Bursts of three every 60 ms spread arrivals 40 ms: more than one frame can hold
    whatever the phase, so after two such windows the target grows, with one tick of
    silence."""
    jb = mod.JitterBuffer(6, 1, 4)
    feed = Feed(jb)
    arr = [t for m in range(100) for t in [65 + 60 * m] * 3]  # 6 s
    feed.run(arr)
    assert jb.jitter_ms == pytest.approx(40, abs=0.01)
    assert jb.target == 2 and jb.grown == 1 and jb.underruns == 0
    heard = feed.heard()  # all in order, none lost; the last burst still waits
    assert heard == list(range(len(heard))) and len(heard) + len(jb) == 300
    assert feed.played.count(None) == 4 + 1  # the ticks before the first frame, the growth
    assert jb.adaptive


def test_a_growth_soon_after_a_shrink_makes_it_wait_longer(mod):
    jb = mod.JitterBuffer(6, 1, 4)
    feed = Feed(jb)
    jittery = bursts(0, 600, seed=3)
    feed.run(jittery, until_ms=jittery[-1])
    assert jb.target >= 2
    feed.run(then(jittery, 50 * (jb.calm_needed + 2) * (jb.target - 1)))
    assert jb.target == 1 and jb.calm_needed == mod.JB_CALM_WINDOWS
    needed = jb.calm_needed
    jittery = bursts(feed.t, 200, seed=5)  # the jitter is back at once: the shrink was wrong
    feed.run(jittery, until_ms=jittery[-1])
    assert jb.target >= 2 and jb.calm_needed == 2 * needed
    jb.flush()  # a new call starts from one frame, with the base calm period
    assert (jb.target, jb.calm_needed, len(jb)) == (1, needed, 0)
    assert jb.grown >= 2  # the counters stay


def test_a_fixed_buffer_keeps_its_prefill(mod):
    jb = mod.JitterBuffer(4, 2)
    assert not jb.adaptive and jb.max_prefill == 2
    feed = Feed(jb)
    jittery = bursts(0, 600, seed=7)
    feed.run(jittery)
    assert jb.target == 2 and jb.grown == jb.shrunk == 0
    with pytest.raises(ValueError):
        mod.JitterBuffer(3, 2, 4)
    with pytest.raises(ValueError):
        mod.JitterBuffer(3, 0)


_jb_op = st.one_of(
    st.tuples(st.just("push"), st.floats(0.0, 0.1, allow_nan=False)),
    st.tuples(st.just("take"), st.integers(1, 60)),
    st.tuples(st.just("flush"), st.just(0)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([(6, 1, 4), (4, 2, 2), (5, 1, 3), (4, 1, 1)]),
       st.lists(_jb_op, max_size=120))
def test_twins_agree_on_every_sequence(shape, ops):
    """Pushes at any instants, runs of takes, flushes: the same frames and state in both."""
    import cext.media_py as py
    if cext.IMPLEMENTATION != "cython":
        pytest.skip("the compiled core is not built")
    import cext._media as cy
    jbs = [py.JitterBuffer(*shape), cy.JitterBuffer(*shape)]
    outs: list[list] = [[], []]
    t, n = 0.0, 0
    for kind, arg in ops:
        if kind == "push":
            t += arg
            n += 1
        for jb, out in zip(jbs, outs):
            if kind == "push":
                jb.push(numbered(n), t)
            elif kind == "take":
                out += [None if (f := jb.take()) is None else number(f) for _ in range(arg)]
            else:
                jb.flush()
        if kind == "take":
            t += 0.02 * arg
    assert outs[0] == outs[1]
    state = [(jb.target, jb.grown, jb.shrunk, jb.underruns, jb.dropped, jb.drained,
              jb.jitter_ms, jb.calm_needed, len(jb)) for jb in jbs]
    assert state[0] == state[1]


async def _plane_run(clock, pattern: str) -> dict:
    plane = MediaPlane(clock)
    line = plane.add_leg("gsm0", "line", prefill=1, max_prefill=4)
    pos = plane.add_leg("pos1", "position")
    plane.connect(line, pos)
    heard: list[int] = []
    pos.on_output(lambda f: heard.append(number(f)) if f != media.SILENCE else None)
    await plane.start()

    async def port() -> None:  # the module's audio port, on its own clock and phase
        rnd = random.Random(11)
        due = 0.007
        for k in range(0, 1500, 2):  # 30 s
            if pattern == "bursts" and 250 <= k < 1000:  # pairs every 40 ms at a tick's edge
                await clock.sleep(due + 0.013 + rnd.choice((-0.0015, 0.0015)) - clock.now())
                line.push(numbered(k + 1))
                line.push(numbered(k + 2))
            else:
                await clock.sleep(due - clock.now())
                line.push(numbered(k + 1))
                await clock.sleep(due + 0.02 - clock.now())
                line.push(numbered(k + 2))
            due += 0.04
    try:
        await port()
        await clock.sleep(0.02)  # the last frame's tick, before the silence after the call
        return {"heard": heard, "stats": plane.snapshot()["legs"]["gsm0"]}
    finally:
        await plane.stop()


@pytest.mark.parametrize("pattern", ["grid", "bursts"])
def test_the_planes_gsm_leg_in_virtual_time(cext_impl, monkeypatch, pattern):
    """The plane's own tick loop on a virtual-time loop; the leg's counters in its snapshot."""
    monkeypatch.setattr(media, "JitterBuffer", cext_module(cext_impl, "media").JitterBuffer)
    got = run_virtual(lambda clock: _plane_run(clock, pattern), wall0=1.8e9)
    heard, stats = got["heard"], got["stats"]
    assert heard == sorted(heard) and heard[-1] == 1500
    assert stats["adaptive"] and stats["max_target"] == 4
    if pattern == "grid":
        assert len(heard) == 1500 and stats["target"] == 1 and stats["grown"] == 0
        assert stats["underruns"] == 0 and stats["jitter_ms"] < 1
    else:  # bursts from 5 s to 20 s, then 10 s steady: grown, and back to one frame
        assert stats["grown"] >= 1 and stats["shrunk"] == stats["grown"]
        assert stats["target"] == 1
        assert 1500 - len(heard) == stats["drained"] + stats["shrunk"] + stats["dropped"]
