"""The audio frame core, run against both implementations (compiled and pure-Python twin).

G.711 is checked bit for bit over every input against independent references: CPython's audioop
(the ITU-T/Sun reference coder, in the standard library up to 3.12) for both directions, and
FFmpeg's pcm_alaw/pcm_mulaw decoders through PyAV. (FFmpeg's *encoders* round at the decision
levels instead of truncating like G.711 does, so they are no reference for encoding.)
"""
from __future__ import annotations

import math
import os
import struct
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cext
from tests.conftest import cext_module

ALL_SAMPLES = struct.pack("<65536h", *range(-32768, 32768))
ALL_CODES = bytes(range(256))


def _audioop():
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import audioop
        return audioop
    except ImportError:  # Python 3.13+: the FFmpeg decoder check below still runs
        pytest.skip("audioop is gone from this Python's standard library")


@pytest.fixture
def mod(cext_impl):
    return cext_module(cext_impl, "media")


def frame(*samples: int) -> bytes:
    """A 160-sample frame: the samples given, repeated."""
    vals = (list(samples) * (160 // len(samples) + 1))[:160]
    return struct.pack("<160h", *vals)


def sine(amplitude: float, hz: float = 1000.0, n: int = 160, phase: int = 0) -> bytes:
    return struct.pack(f"<{n}h", *(int(round(amplitude * math.sin(2 * math.pi * hz * (i + phase)
                                                                   / 8000))) for i in range(n)))


def samples(pcm: bytes) -> list[int]:
    return list(struct.unpack(f"<{len(pcm) // 2}h", pcm))


def test_compiled_core_loaded():
    """Guard: CI must not silently test the twin twice."""
    if os.environ.get("DIALBOX_NO_EXTENSIONS"):
        pytest.skip("DIALBOX_NO_EXTENSIONS=1: the twin is wanted")
    import cext.media as selected
    assert cext.IMPLEMENTATION == "cython"
    assert selected.IMPLEMENTATION == "cython"
    assert selected.FrameSwitch.__module__ == "cext._media"


# --- G.711 ------------------------------------------------------------------------------------
def test_g711_encode_is_the_itu_reference_for_every_sample(mod):
    audioop = _audioop()
    assert mod.alaw_encode(ALL_SAMPLES) == audioop.lin2alaw(ALL_SAMPLES, 2)
    assert mod.ulaw_encode(ALL_SAMPLES) == audioop.lin2ulaw(ALL_SAMPLES, 2)


def test_g711_decode_is_the_itu_reference_for_every_code(mod):
    audioop = _audioop()
    assert mod.alaw_decode(ALL_CODES) == audioop.alaw2lin(ALL_CODES, 2)
    assert mod.ulaw_decode(ALL_CODES) == audioop.ulaw2lin(ALL_CODES, 2)


@pytest.mark.parametrize("codec", ["pcm_alaw", "pcm_mulaw"])
def test_g711_decode_matches_ffmpeg(mod, codec):
    import av
    ctx = av.CodecContext.create(codec, "r")
    ctx.sample_rate = 8000
    ctx.layout = "mono"
    decoded = b"".join(bytes(f.planes[0])[: 2 * f.samples] for f in ctx.decode(av.Packet(ALL_CODES)))
    ours = mod.alaw_decode if codec == "pcm_alaw" else mod.ulaw_decode
    assert decoded == ours(ALL_CODES)


def test_g711_known_values(mod):
    # A-law: 0xD5 and 0x55 are the two codes next to zero (+8 / -8); mu-law 0xFF is 0.
    assert samples(mod.alaw_decode(b"\xd5\x55")) == [8, -8]
    assert samples(mod.ulaw_decode(b"\xff\x7f\x80\x00")) == [0, 0, 32124, -32124]
    assert mod.alaw_encode(struct.pack("<2h", 32767, -32768)) == b"\xaa\x2a"
    assert mod.ulaw_encode(struct.pack("<2h", 32767, -32768)) == b"\x80\x00"


def test_g711_tandem_is_transparent(mod):
    """Decoding then encoding gives every code back (what E1 passes through must not drift)."""
    for enc, dec in ((mod.alaw_encode, mod.alaw_decode), (mod.ulaw_encode, mod.ulaw_decode)):
        codes = ALL_CODES if enc is mod.alaw_encode else bytes(c for c in range(256) if c != 0x7F)
        assert enc(dec(codes)) == codes


def test_g711_rejects_odd_pcm(mod):
    with pytest.raises(ValueError):
        mod.alaw_encode(b"\x00\x01\x02")


# --- gain and level ---------------------------------------------------------------------------
def test_level_of_known_signals(mod):
    assert mod.level_dbfs(mod.SILENCE) == mod.DBFS_FLOOR
    assert mod.level_dbfs(frame(32767, -32768)) == pytest.approx(0.0, abs=0.001)
    # a sine of amplitude A is 20*log10(A/32768) - 3.01 dBFS RMS
    assert mod.level_dbfs(sine(3277.0)) == pytest.approx(-20.0 - 3.01, abs=0.05)
    assert mod.level_dbfs(frame(1)) == pytest.approx(20 * math.log10(1 / 32768), abs=0.01)


def test_gain_scales_and_saturates(mod):
    assert samples(mod.apply_gain(frame(1000, -1000), 0.5)) == [500, -500] * 80
    assert samples(mod.apply_gain(frame(30000, -30000), 2.0)) == [32767, -32768] * 80
    assert mod.apply_gain(frame(1234), 1.0) == frame(1234)
    assert mod.apply_gain(frame(1234), 0.0) == frame(0)
    # 6 dB more gain is 6 dB more level
    quiet = sine(1000.0)
    assert mod.level_dbfs(mod.apply_gain(quiet, 2.0)) - mod.level_dbfs(quiet) == pytest.approx(
        6.02, abs=0.05)
    for bad in (-0.1, 16.5, float("nan")):
        with pytest.raises(ValueError):
            mod.apply_gain(quiet, bad)


# --- the frame switch -------------------------------------------------------------------------
def test_switch_routes_full_duplex_and_isolates_other_slots(mod):
    sw = mod.FrameSwitch(6)
    sw.set_sources(0, (1,))  # line 0 hears position 1
    sw.set_sources(1, (0,))  # position 1 hears line 0
    sw.set_sources(2, (3,))
    sw.set_sources(3, (2,))
    a, b, c, d = frame(100), frame(-200), frame(300), frame(-400)
    for slot, f in enumerate((a, b, c, d)):
        sw.set_input(slot, f)
    sw.tick()
    assert (sw.output(0), sw.output(1), sw.output(2), sw.output(3)) == (b, a, d, c)
    assert sw.output(4) == mod.SILENCE and sw.output(5) == mod.SILENCE
    assert sw.input(2) == c
    sw.set_input(0, None)
    sw.tick()
    assert sw.output(1) == mod.SILENCE and sw.output(0) == b


def test_switch_mixes_with_saturation_and_output_gain(mod):
    sw = mod.FrameSwitch(4)
    sw.set_sources(3, (0, 1, 2))
    sw.set_input(0, frame(20000, -20000))
    sw.set_input(1, frame(20000, -20000))
    sw.set_input(2, frame(-5000, 5000))
    sw.tick()
    assert samples(sw.output(3)) == [32767, -32768] * 80  # sum clamped before the gain
    sw.set_gain(3, 1.0, 0.5)
    sw.tick()
    assert samples(sw.output(3)) == [16383, -16384] * 80
    sw.set_gain(0, 0.5, 1.0)  # input gain applies from the next frame in
    sw.set_input(0, frame(20000, -20000))
    sw.set_gain(3, 1.0, 1.0)
    sw.tick()
    assert samples(sw.output(3)) == [25000, -25000] * 80
    sw.set_gain(3, 1.0, 0.0)
    sw.tick()
    assert sw.output(3) == mod.SILENCE and sw.level_out(3) == mod.DBFS_FLOOR


def test_switch_levels_and_stereo(mod):
    sw = mod.FrameSwitch(2)
    sw.set_sources(1, (0,))
    sw.set_input(0, sine(3277.0))
    sw.set_input(1, frame(7))
    sw.tick()
    assert sw.level_in(0) == pytest.approx(-23.01, abs=0.05)
    assert sw.level_out(1) == pytest.approx(sw.level_in(0))
    assert sw.level_out(0) == mod.DBFS_FLOOR
    st2 = samples(sw.stereo(1))
    assert st2[0::2] == [7] * 160 and st2[1::2] == samples(sine(3277.0))
    assert samples(sw.stereo(0))[1::2] == [0] * 160
    sw.reset(1)
    assert sw.sources(1) == () and sw.input(1) == mod.SILENCE


def test_switch_rejects_bad_use(mod):
    sw = mod.FrameSwitch(2)
    with pytest.raises(ValueError):
        mod.FrameSwitch(0)
    with pytest.raises(IndexError):
        sw.set_input(2, frame(0))
    with pytest.raises(IndexError):
        sw.set_sources(0, (5,))
    with pytest.raises(ValueError):
        sw.set_sources(0, (1,) * (mod.MAX_SOURCES + 1))
    with pytest.raises(ValueError):
        sw.set_input(0, b"\x00" * 319)
    with pytest.raises(ValueError):
        sw.set_gain(0, 1.0, 17.0)


_op = st.one_of(
    st.tuples(st.just("in"), st.integers(0, 4),
              st.one_of(st.none(), st.binary(min_size=320, max_size=320))),
    st.tuples(st.just("src"), st.integers(0, 4), st.lists(st.integers(0, 4), max_size=4)),
    st.tuples(st.just("gain"), st.integers(0, 4),
              st.tuples(st.sampled_from([0.0, 0.25, 1.0, 1.5, 3.0, 16.0]),
                        st.sampled_from([0.0, 0.5, 1.0, 2.0, 7.3]))),
    st.tuples(st.just("tick"), st.just(0), st.just(None)),
    st.tuples(st.just("reset"), st.integers(0, 4), st.just(None)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_op, max_size=40))
def test_twins_agree_bit_for_bit(ops):
    """Any sequence of operations gives the same frames, levels and stereo in both."""
    import cext.media_py as py
    impls = [py.FrameSwitch(5)]
    if cext.IMPLEMENTATION == "cython":
        import cext._media as cy
        impls.append(cy.FrameSwitch(5))
    for kind, slot, arg in ops + [("tick", 0, None)]:
        for sw in impls:
            if kind == "in":
                sw.set_input(slot, arg)
            elif kind == "src":
                sw.set_sources(slot, arg)
            elif kind == "gain":
                sw.set_gain(slot, *arg)
            elif kind == "tick":
                sw.tick()
            else:
                sw.reset(slot)
    snaps = [[(sw.input(s), sw.output(s), sw.stereo(s), sw.level_in(s), sw.level_out(s))
              for s in range(5)] for sw in impls]
    assert all(s == snaps[0] for s in snaps)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200).filter(lambda b: len(b) % 2 == 0),
       st.floats(0.0, 16.0, allow_nan=False))
def test_twins_agree_on_codecs_gain_and_level(pcm, gain):
    import cext.media_py as py
    if cext.IMPLEMENTATION != "cython":
        pytest.skip("the compiled core is not built")
    import cext._media as cy
    for name in ("alaw_encode", "ulaw_encode", "alaw_decode", "ulaw_decode"):
        assert getattr(py, name)(pcm) == getattr(cy, name)(pcm)
    assert py.apply_gain(pcm, gain) == cy.apply_gain(pcm, gain)
    assert py.level_dbfs(pcm) == cy.level_dbfs(pcm)
